// billingctl (build/billingctl) against the real billingd: every command's
// --help, tables and --json, tokens from --token and BILLING_TOKEN, https
// with --ca-file, `tail` of a live stream, and the exit codes that say what
// failed (usage 2, unreachable 3, Connect errors 10 + code).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { makeTokens, tokensFileArg } from "./lib/auth.mjs";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients } from "./lib/clients.mjs";
import { makeMetric, MINUTE_MS, uniqueId } from "./lib/metrics.mjs";
import { REPO_ROOT } from "./lib/paths.mjs";
import { makeTempDir, startServer } from "./lib/server.mjs";
import { bearer } from "./lib/auth.mjs";
import { makeCertificates } from "./lib/tls.mjs";

const BILLINGCTL = path.resolve(process.env.BILLINGCTL ?? path.join(REPO_ROOT, "build", "billingctl"));
const EXIT = { usage: 2, transport: 3, invalidArgument: 13, permissionDenied: 17, failedPrecondition: 19, unauthenticated: 26 };

// Runs billingctl; resolves {code, stdout, stderr} whatever the exit code.
function ctl(args, { env = {} } = {}) {
  return new Promise((resolve) => {
    execFile(BILLINGCTL, args, { timeout: 20_000, env: { PATH: process.env.PATH, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? -1) : 0, stdout, stderr });
    });
  });
}

const tokens = makeTokens({ metald: "ingest", support: "admin", acme: "customer:acme-ctl" });
const customer = "acme-ctl";
let server;
let url;
let backupDir;
before(async () => {
  backupDir = path.join(makeTempDir("billingctl-backup-"), "backups");
  server = await startServer({ args: [tokensFileArg(tokens), `--backup-dir=${backupDir}`] });
  url = server.baseUrl;
});
after(async () => {
  await server?.cleanup();
});

const admin = () => ["--server", url, "--token", tokens.support.token];
const monthStart = () => {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
};
const month = (date) => date.toISOString().slice(0, 7);
const nextMonth = (date) => new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1));
const previousMonth = (date) => new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - 1, 1));

async function ingest(metrics) {
  const client = collectorClients(url, bearer(tokens.metald.token)).binary;
  for (const region of new Set(metrics.map((m) => m.region))) {
    const ofRegion = metrics.filter((m) => m.region === region);
    const response = await client.sendMetricsBatch(batchRequest(ofRegion, { region }));
    assert.equal(response.acceptedCount, ofRegion.length);
  }
}

test("every command answers --help with its usage (exit 0)", async () => {
  for (const command of [["usage"], ["window"], ["invoice"], ["invoices"], ["finalize"], ["plan"], ["plan", "get"], ["plan", "set"], ["backup"], ["verify-audit"], ["tail"], []]) {
    const run = await ctl([...command, "--help"]);
    assert.equal(run.code, 0, `${command.join(" ")} --help: ${run.stderr}`);
    assert.match(run.stdout, new RegExp(`Usage: billingctl${command.length ? " " + command.join(" ") : ""}`));
  }
});

test("bad command lines are usage errors (exit 2) that say what is wrong", async () => {
  const cases = [
    [["usage", customer], /--from is required/],
    [["usage", customer, "--from", "yesterday", "--to", "2026-11-02"], /not YYYY-MM/],
    [["usage", customer, "--from", "2026-11-01", "--to", "2026-11-02", "--by", "week"], /week/],
    [["frobnicate"], /subcommand is required/],
    [["--server", "ftp://127.0.0.1:1", "verify-audit"], /only http/],
  ];
  for (const [args, why] of cases) {
    const run = await ctl(args);
    assert.equal(run.code, EXIT.usage, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr + run.stdout, why);
  }
});

test("an unreachable server is exit 3, a refused token exit 26, another customer's data exit 17", async () => {
  const closed = await ctl(["--server", "http://127.0.0.1:1", "verify-audit"]);
  assert.equal(closed.code, EXIT.transport, closed.stderr);
  assert.match(closed.stderr, /cannot reach the server/);

  const badToken = await ctl(["--server", url, "--token", "not-a-token", "verify-audit"]);
  assert.equal(badToken.code, EXIT.unauthenticated, badToken.stderr);
  assert.match(badToken.stderr, /unauthenticated/);
  const noToken = await ctl(["--server", url, "usage", customer, "--from", "2026-11-01", "--to", "2026-11-02"]);
  assert.equal(noToken.code, EXIT.unauthenticated, noToken.stderr);

  const other = await ctl(["--server", url, "usage", "someone-else", "--from", "2026-11-01", "--to", "2026-11-02"], { env: { BILLING_TOKEN: tokens.acme.token } });
  assert.equal(other.code, EXIT.permissionDenied, other.stderr);
  assert.match(other.stderr, /permission_denied/);

  const unaligned = await ctl([...admin(), "usage", customer, "--from", "2026-11-01T10:30:00Z", "--to", "2026-11-02", "--by", "day"]);
  assert.equal(unaligned.code, EXIT.invalidArgument, unaligned.stderr);
});

test("usage per hour/day/month, per region and VM, as tables and as JSON, exact", async () => {
  const metrics = [1, 2, 3].map((m) => makeMetric({ customerId: customer, vmId: "vm-ctl-1", region: "eu-west-1", minutesAgo: m + 5 }));
  metrics.push(makeMetric({ customerId: customer, vmId: "vm-ctl-2", region: "us-east-1", minutesAgo: 7 }));
  await ingest(metrics);
  const inMonth = metrics.filter((m) => Number(m.windowStart.seconds) * 1000 >= monthStart().getTime());
  const cpu = inMonth.reduce((sum, m) => sum + m.cpuTimeNanos, 0n);

  const json = await ctl(["--server", url, "--json", "usage", customer, "--from", month(monthStart()), "--to", month(nextMonth(monthStart())), "--by", "month"], { env: { BILLING_TOKEN: tokens.acme.token } });
  assert.equal(json.code, 0, json.stderr);
  const usage = JSON.parse(json.stdout);
  assert.equal(usage.totals.cpuTimeNanos, cpu.toString());
  assert.equal(usage.totals.windowCount, String(inMonth.length));
  assert.equal(usage.buckets.length, 1);
  assert.deepEqual(usage.regions.map((r) => r.region).sort(), [...new Set(inMonth.map((m) => m.region))].sort());

  const table = await ctl([...admin(), "usage", customer, "--from", month(monthStart()), "--to", month(nextMonth(monthStart())), "--by", "month"]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /vm_hours\s+cpu_ns/);
  assert.ok(table.stdout.includes(cpu.toString()), table.stdout);
  assert.match(table.stdout, /vm-ctl-1\s+eu-west-1/);

  // Hourly buckets over the last two whole hours.
  const hourEnd = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000);
  const hourStart = new Date(hourEnd.getTime() - 2 * 3_600_000);
  const hourly = await ctl([...admin(), "--json", "usage", customer, "--from", hourStart.toISOString(), "--to", hourEnd.toISOString(), "--by", "hour"]);
  assert.equal(hourly.code, 0, hourly.stderr);
  const hours = JSON.parse(hourly.stdout);
  assert.equal(hours.buckets.length, 2);
  assert.equal(hours.totals.windowCount, String(metrics.length));

  // An unknown customer has zero usage, not an error.
  const nobody = await ctl([...admin(), "--json", "usage", uniqueId("nobody"), "--from", "2026-11-01", "--to", "2026-11-02"]);
  assert.equal(nobody.code, 0, nobody.stderr);
  assert.equal(JSON.parse(nobody.stdout).totals.windowCount, "0");
});

test("window shows active spans and the gap between two windows", async () => {
  const vmId = uniqueId("vm-gap");
  const first = makeMetric({ customerId: customer, vmId, minutesAgo: 30 });
  const second = makeMetric({ customerId: customer, vmId, minutesAgo: 20 });
  await ingest([first, second]);
  const from = new Date(Number(first.windowStart.seconds) * 1000 - MINUTE_MS).toISOString();
  const to = new Date(Number(second.windowEnd.seconds) * 1000 + MINUTE_MS).toISOString();
  const json = await ctl([...admin(), "--json", "window", customer, "--from", from, "--to", to]);
  assert.equal(json.code, 0, json.stderr);
  const window = JSON.parse(json.stdout);
  const gaps = window.gaps.filter((g) => g.vmId === vmId);
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0].startTime, new Date(Number(first.windowEnd.seconds) * 1000).toISOString().replace(".000Z", "Z"));
  assert.equal(gaps[0].endTime, new Date(Number(second.windowStart.seconds) * 1000).toISOString().replace(".000Z", "Z"));
  const table = await ctl([...admin(), "window", customer, "--from", from, "--to", to]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /gaps\nvm\s+region\s+start\s+end/);
  assert.ok(table.stdout.includes(vmId));
});

test("plans, draft and finalized invoices, finalize, backup and verify-audit", async () => {
  const planFile = path.join(makeTempDir("billingctl-plan-"), "plan.json");
  writeFileSync(planFile, JSON.stringify({ effectiveFrom: "2020-01-01T00:00:00Z", rates: { cpuPerCoreHour: 0.05, memoryPerGbHour: 0.01 }, monthlyBaseFee: "10" }));
  const set = await ctl([...admin(), "plan", "set", customer, "--file", planFile]);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /version effective from 2020-01-01T00:00:00Z\s+base fee 10/);
  const got = await ctl([...admin(), "--json", "plan", "get", customer]);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(JSON.parse(got.stdout).versions[0].monthlyBaseFee, "10");

  const draft = await ctl([...admin(), "--json", "invoice", customer, "--period", month(monthStart())]);
  assert.equal(draft.code, 0, draft.stderr);
  const invoice = JSON.parse(draft.stdout).invoice;
  assert.equal(invoice.finalized, false);
  assert.ok(invoice.lines.length > 0);
  const draftTable = await ctl([...admin(), "invoice", customer, "--period", month(monthStart())]);
  assert.match(draftTable.stdout, /invoice \(draft\) for acme-ctl/);
  assert.ok(draftTable.stdout.includes(`total          ${invoice.total}`), draftTable.stdout);

  // This month has not ended: finalize refuses (failed_precondition, exit 19).
  const early = await ctl([...admin(), "finalize", "--period", month(monthStart()), "--customer", customer]);
  assert.equal(early.code, EXIT.failedPrecondition, early.stderr);
  const last = month(previousMonth(monthStart()));
  const finalized = await ctl([...admin(), "--json", "finalize", "--period", last, "--customer", customer]);
  assert.equal(finalized.code, 0, finalized.stderr);
  const [bill] = JSON.parse(finalized.stdout).invoices;
  assert.equal(bill.finalized, true);
  const listed = await ctl([...admin(), "--json", "invoices", customer]);
  assert.deepEqual(JSON.parse(listed.stdout).invoices.map((i) => i.number), [bill.number]);
  const listTable = await ctl([...admin(), "invoices", customer]);
  assert.ok(listTable.stdout.includes(bill.contentHash), listTable.stdout);

  const backup = await ctl([...admin(), "--json", "backup"]);
  assert.equal(backup.code, 0, backup.stderr);
  assert.equal(JSON.parse(backup.stdout).backupId, 1);
  const audit = await ctl([...admin(), "verify-audit"]);
  assert.equal(audit.code, 0, audit.stderr);
  assert.match(audit.stdout, /audit chain intact: \d+ entries verified/);
  // A customer token may not run admin calls.
  const denied = await ctl(["--server", url, "--token", tokens.acme.token, "backup"]);
  assert.equal(denied.code, EXIT.permissionDenied, denied.stderr);
});

test("tail prints the snapshot, then each ingest as it is acknowledged, until Ctrl-C", async () => {
  const child = spawn(BILLINGCTL, ["--server", url, "--json", "tail", customer], { env: { PATH: process.env.PATH, BILLING_TOKEN: tokens.acme.token } });
  let out = "";
  const lines = [];
  const waiters = [];
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    out += chunk;
    const parts = out.split("\n");
    out = parts.pop();
    for (const line of parts) lines.push(JSON.parse(line));
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const lineCount = async (n) => {
    const deadline = Date.now() + 10_000;
    while (lines.length < n) {
      assert.ok(Date.now() < deadline, `only ${lines.length} lines from tail`);
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  try {
    await lineCount(1);
    assert.equal(lines[0].snapshot, true);
    const metrics = [makeMetric({ customerId: customer, vmId: uniqueId("vm-tail"), minutesAgo: 3 }), makeMetric({ customerId: customer, vmId: uniqueId("vm-tail"), minutesAgo: 3 })];
    await ingest(metrics);
    await lineCount(2);
    assert.equal(lines[1].snapshot, false);
    assert.equal(lines[1].delta.windowCount, "2");
    assert.equal(lines[1].delta.cpuTimeNanos, (metrics[0].cpuTimeNanos + metrics[1].cpuTimeNanos).toString());
    assert.equal(BigInt(lines[1].monthToDate.windowCount), BigInt(lines[0].monthToDate.windowCount) + 2n);
  } finally {
    child.kill("SIGINT");
  }
  const { signal } = await exited;
  assert.equal(signal, "SIGINT");
});

test("https with --ca-file; without it the server's certificate is refused (exit 3)", async () => {
  const certs = makeCertificates();
  const tls = await startServer({ args: [`--tls-cert-file=${certs.file("server.crt")}`, `--tls-key-file=${certs.file("server.key")}`] });
  try {
    const httpsUrl = `https://127.0.0.1:${tls.port}`;
    const trusted = await ctl(["--server", httpsUrl, "--ca-file", certs.file("test-ca.crt"), "verify-audit"]);
    assert.equal(trusted.code, 0, trusted.stderr);
    const untrusted = await ctl(["--server", httpsUrl, "verify-audit"]);
    assert.equal(untrusted.code, EXIT.transport, untrusted.stderr);
    assert.match(untrusted.stderr, /certificate verify failed/);
  } finally {
    await tls.cleanup();
  }
});
