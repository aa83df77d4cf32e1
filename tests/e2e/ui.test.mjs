// The live dashboard (/ui/) in a real browser: Debian's chromium driven by
// playwright-core (from ui/node_modules) against the real billingd with a
// token file. It checks that numbers and the hourly chart follow an ingest
// within a second (StreamLiveUsage, no polling), that the cost to date is the
// draft invoice's usage subtotal, that gaps are marked, that a token of
// another customer shows permission_denied, that the token stays in the tab,
// and that the page says "reconnecting" when billingd goes away. A screenshot
// is kept at build/artifacts/ui.png.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import net from "node:net";
import { createRequire } from "node:module";
import path from "node:path";
import { after, before, test } from "node:test";
import { bearer, makeTokens, tokensFileArg } from "./lib/auth.mjs";
import { batchRequest } from "./lib/batch.mjs";
import { collectorClients, invoiceClient } from "./lib/clients.mjs";
import { ANCHOR_MS, makeMetric, ts, uniqueId } from "./lib/metrics.mjs";
import { REPO_ROOT } from "./lib/paths.mjs";
import { DIM } from "./lib/pricing.mjs";
import { startServer } from "./lib/server.mjs";

const UI_DIR = path.join(REPO_ROOT, "ui");
const BUILT_UI = path.join(REPO_ROOT, "build", "ui", "index.html");
const ARTIFACTS = path.join(REPO_ROOT, "build", "artifacts");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const require = createRequire(path.join(UI_DIR, "package.json"));

const now = new Date(ANCHOR_MS);
const MONTH_START_MS = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);

const customer = uniqueId("ui-acme");
const other = uniqueId("ui-globex");
const tokens = makeTokens({
  metald: "ingest",
  portal: `customer:${customer}`,
  otherPortal: `customer:${other}`,
  support: "admin",
});

let server;
let browser;
let collector;
let invoices;
before(async () => {
  assert.ok(existsSync(BUILT_UI), `${BUILT_UI} missing: scripts/build.sh builds the dashboard`);
  assert.ok(existsSync(path.join(UI_DIR, "node_modules", "playwright-core")), "ui/node_modules missing: run scripts/install-deps.sh");
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: scripts/install-deps.sh installs Debian's chromium`);
  server = await startServer({ args: [tokensFileArg(tokens)] });
  collector = collectorClients(server.baseUrl, bearer(tokens.metald.token)).binary;
  invoices = invoiceClient(server.baseUrl, bearer(tokens.support.token));
  const { chromium } = require("playwright-core");
  // --no-sandbox: chromium's sandbox cannot run as root (CI runs as root).
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
});
after(async () => {
  await browser?.close();
  await server?.cleanup();
});

let vm = 0;
async function ingest(customerId, minutesAgo, region = "us-east-1") {
  vm += 1;
  const metrics = minutesAgo.map((m) => makeMetric({ customerId, region, vmId: `vm-${vm}`, minutesAgo: m }));
  const response = await collector.sendMetricsBatch(batchRequest(metrics, { region }));
  assert.equal(response.acceptedCount, metrics.length);
  return metrics.filter((m) => Number(m.windowStart.seconds) * 1000 >= MONTH_START_MS);
}

async function openDashboard(token, customerId) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1500 } });
  const page = await context.newPage();
  const failures = [];
  page.on("pageerror", (error) => failures.push(error.message));
  await page.goto(`${server.baseUrl}/ui/`);
  await page.fill("#customer", customerId);
  await page.fill("#token", token);
  await page.click("#connect");
  return { context, page, failures };
}

// A raw HTTP/1.1 GET of `target` exactly as written (fetch would normalize "..").
function rawGet(baseUrl, target) {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`);
    });
    let answer = "";
    socket.on("data", (chunk) => (answer += chunk));
    socket.on("end", () => resolve(answer));
    socket.on("error", reject);
  });
}

const dataset = (page, selector, key) => page.$eval(selector, (el, k) => el.dataset[k] ?? "", key);

test("the dashboard follows ingest live, with the cost to date, the chart, gaps and invoices", async () => {
  await invoices.setCustomerPlan({
    customerId: customer,
    version: {
      effectiveFrom: ts(MONTH_START_MS),
      prices: [
        { dimension: DIM.cpu, tiers: [{ upTo: "0.02", price: "0.05" }, { price: "0.03" }] },
        { dimension: DIM.vm_time, tiers: [{ price: "0.01" }] },
      ],
      regionMultipliers: { "eu-west-1": "1.2" },
    },
  });
  // Two VMs; the second has a hole from 9 to 3 minutes ago (a gap).
  const sent = [...(await ingest(customer, [12, 13, 14])), ...(await ingest(customer, [2, 9, 10], "eu-west-1"))];
  const { context, page, failures } = await openDashboard(tokens.portal.token, customer);
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });
  const cpuSum = (metrics) => metrics.reduce((total, m) => total + m.cpuTimeNanos, 0n).toString();
  await page.waitForFunction((n) => document.querySelector("#mtd-cpu").dataset.nanos === n, cpuSum(sent), { timeout: 5_000 });
  await page.waitForFunction(() => Number(document.querySelector("#chart").dataset.renders ?? 0) > 0, null, { timeout: 5_000 });
  assert.equal(await dataset(page, "#chart", "cpuNanos"), cpuSum(sent));

  // An ingest through the API shows within a second: numbers, cost and chart.
  const rendersBefore = Number(await dataset(page, "#chart", "renders"));
  const costBefore = await page.textContent("#cost-to-date");
  const started = Date.now();
  sent.push(...(await ingest(customer, [4, 5, 6, 7])));
  await page.waitForFunction((n) => document.querySelector("#mtd-cpu").dataset.nanos === n, cpuSum(sent), { timeout: 5_000 });
  await page.waitForFunction(
    ({ n, renders }) => {
      const chart = document.querySelector("#chart");
      return chart.dataset.cpuNanos === n && Number(chart.dataset.renders) > renders;
    },
    { n: cpuSum(sent), renders: rendersBefore },
    { timeout: 5_000 },
  );
  const elapsed = Date.now() - started;
  assert.ok(elapsed <= 1000, `the page showed the ingest after ${elapsed} ms`);
  const cost = await page.textContent("#cost-to-date");
  assert.notEqual(cost, costBefore);

  // The cost to date is the draft's usage subtotal, and the draft panel shows the draft.
  const draft = (await invoices.getInvoice({ customerId: customer, periodStart: ts(MONTH_START_MS) })).invoice;
  assert.equal(cost, draft.usageSubtotal);
  // The draft panel refreshes at most every 10 s (a draft is computed and audited per call).
  await page.waitForFunction((s) => document.querySelector("#draft").dataset.usageSubtotal === s, draft.usageSubtotal, { timeout: 15_000 });
  assert.match(await page.textContent("#draft"), /usage subtotal/);
  assert.match(await page.textContent("#finalized"), /no finalized invoices yet/);

  // Per region and per VM tables; the gap in the eu-west-1 VM is listed and drawn.
  assert.match(await page.textContent("#regions"), /us-east-1[\s\S]*eu-west-1|eu-west-1[\s\S]*us-east-1/);
  assert.equal(await page.locator("#vms tbody tr").count(), 3);
  await page.waitForFunction(() => Number(document.querySelector("#chart").dataset.gaps ?? 0) >= 1, null, { timeout: 5_000 });
  assert.match(await page.textContent("#gaps"), /eu-west-1/);
  assert.equal(await page.locator("#errors .error").count(), 0);
  assert.deepEqual(failures, []);

  // The token is kept in this tab only: sessionStorage, never localStorage or the URL.
  assert.equal(await page.evaluate(() => sessionStorage.getItem("billing-ui.token")), tokens.portal.token);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!page.url().includes(tokens.portal.token));

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, "ui.png"), fullPage: true });
  await context.close();
});

test("billingd serves the built files with types, validators and caching, and nothing else", async () => {
  const index = await fetch(`${server.baseUrl}/ui/`);
  assert.equal(index.status, 200);
  assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(index.headers.get("cache-control"), "no-cache");
  assert.match(index.headers.get("content-security-policy"), /default-src 'self'/);
  const html = await index.text();
  const script = html.match(/src="(main-[A-Z0-9]+\.js)"/)?.[1];
  assert.ok(script, "index.html names the bundle");
  const asset = await fetch(`${server.baseUrl}/ui/${script}`);
  assert.equal(asset.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
  const etag = asset.headers.get("etag");
  const again = await fetch(`${server.baseUrl}/ui/${script}`, { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  const bare = await fetch(`${server.baseUrl}/ui`, { redirect: "manual" });
  assert.equal(bare.status, 301);
  assert.equal(bare.headers.get("location"), "/ui/");
  for (const target of ["/ui/../../etc/passwd", "/ui/..%2f..%2fetc%2fpasswd", "/ui/%2e%2e/CMakeLists.txt", "/ui/../ui-gen/billing/v1/billing_pb.ts", "/ui//etc/passwd"]) {
    const answer = await rawGet(server.baseUrl, target);
    assert.match(answer, /^HTTP\/1\.1 404 /, target);
    assert.doesNotMatch(answer, /root:|cmake_minimum_required|GenMessage/, target);
  }
});

test("a token of another customer shows permission_denied, not blank panels", async () => {
  const { context, page } = await openDashboard(tokens.otherPortal.token, customer);
  await page.waitForSelector('#connection[data-state="error"]', { timeout: 10_000 });
  assert.match(await page.textContent("#errors"), /permission_denied: /);
  // Every panel says why it is empty.
  for (const panel of ["#regions", "#vms", "#gaps", "#draft", "#finalized", "#chart-error"]) {
    await page.waitForFunction((p) => document.querySelector(p).textContent.includes("permission_denied: "), panel, { timeout: 5_000 });
  }
  assert.equal(await page.textContent("#cost-to-date"), "–");
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, "ui-permission-denied.png"), fullPage: true });
  await context.close();
});

test("the page says reconnecting, with backoff, when billingd goes away", async () => {
  const { context, page } = await openDashboard(tokens.portal.token, customer);
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });
  await server.kill();
  await page.waitForSelector('#connection[data-state="reconnecting"]', { timeout: 10_000 });
  assert.match(await page.textContent("#connection"), /reconnecting in \d+(\.\d)? s \(attempt \d+\)/);
  await context.close();
});
