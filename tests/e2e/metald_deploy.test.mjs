// Real metald as it is deployed (issue 14): its later proto package names,
// its SPIFFE X.509 SVID instead of a bearer token (certificates made here
// with the openssl CLI), and the rotation of server and client certificates
// while a client keeps calling and a stream stays open.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import tls from "node:tls";
import { after, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { bearer, makeTokens, sha256Hex } from "./lib/auth.mjs";
import { Code, ConnectError, expectConnectError, queryClient, transport } from "./lib/clients.mjs";
import { HOUR_MS, MS, SECOND, expectedUsage, makeSamples, sampleMessage } from "./lib/metald.mjs";
import { ts, uniqueId } from "./lib/metrics.mjs";
import { MetaldService, metaldServiceIn } from "./lib/schema.mjs";
import { makeTempDir, startServer } from "./lib/server.mjs";
import { makeCa, makeSigned } from "./lib/tls.mjs";
import path from "node:path";

const servers = [];
after(async () => {
  for (const server of servers) await server.cleanup();
});

const REGION = "eu-test";
const BASE_NS = BigInt(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 2 * HOUR_MS) * MS;
const PACKAGES = ["billing.v1", "deploy.billaged.v1", "billaged.v1"];
const serviceOf = (pkg) => (pkg === "billing.v1" ? MetaldService : metaldServiceIn(pkg));
const stringify = (v) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? String(x) : x));

async function vmTotals(baseUrl, customerId, vmId, options = {}) {
  const day = 24 * HOUR_MS;
  const today = Math.floor(Date.now() / day) * day;
  const usage = await queryClient(baseUrl, options).getCustomerUsage({
    customerId,
    startTime: ts(today - 3 * day),
    endTime: ts(today + day),
    granularity: 2,
  });
  return usage.vms.find((v) => v.vmId === vmId)?.totals ?? null;
}

test("metald's service answers under billing.v1, deploy.billaged.v1 and billaged.v1, JSON and binary, with one implementation", async () => {
  const server = await startServer({ args: [`--metald-region=${REGION}`] });
  servers.push(server);
  const customer = uniqueId("pkg");
  let offset = 0n;
  for (const pkg of PACKAGES) {
    const service = serviceOf(pkg);
    assert.equal(service.typeName, `${pkg}.BillingService`);
    for (const binary of [false, true]) {
      const client = createClient(service, transport(server.baseUrl, { binary }));
      const vm = uniqueId(`vm-${pkg}-${binary ? "bin" : "json"}`);
      const samples = makeSamples(BASE_NS + offset, 5, (i) => ({ cpu: BigInt(1_000_000 * (i + 1)), memory: 4096n, tx: BigInt(10 * i) }));
      offset += SECOND;
      const request = { vmId: vm, customerId: customer, metrics: samples.map(sampleMessage) };
      const first = await client.sendMetricsBatch(request);
      assert.deepEqual([first.success, first.message], [true, "stored 5 new samples of 5 (0 already seen)"], `${pkg} ${binary}`);
      // The same state behind every path: a retry under another package is a duplicate.
      const other = createClient(serviceOf(PACKAGES[(PACKAGES.indexOf(pkg) + 1) % PACKAGES.length]), transport(server.baseUrl, { binary: !binary }));
      assert.equal((await other.sendMetricsBatch(request)).message, "stored 0 new samples of 5 (5 already seen)");
      assert.equal((await client.notifyVmStopped({ vmId: vm, stopTime: samples[4].at + SECOND })).success, true);
      assert.equal((await client.sendHeartbeat({ instanceId: uniqueId(`inst-${pkg}`), activeVms: [vm] })).success, true);
      const totals = await vmTotals(server.baseUrl, customer, vm);
      const expected = expectedUsage([samples]);
      assert.equal(totals?.cpuTimeNanos, expected.cpuTimeNanos, `${pkg} cpu`);
      assert.equal(totals?.networkTxBytes, expected.networkTxBytes, `${pkg} tx`);
      // Errors are the same too.
      await expectConnectError(client.notifyVmStopped({ vmId: uniqueId("unknown-vm"), stopTime: BASE_NS }), Code.NotFound);
    }
  }
});

// A CA and certificates for the mTLS tests, all made here with openssl.
function pki() {
  const dir = makeTempDir("billingd-spiffe-");
  const file = (name) => path.join(dir, name);
  const pem = (name) => readFileSync(file(name));
  makeCa(dir, "spire-ca");
  makeSigned(dir, "spire-ca", "server", { serverIp: "127.0.0.1" });
  makeSigned(dir, "spire-ca", "metald-eu", { uri: `spiffe://example.org/metald/${REGION}` });
  makeSigned(dir, "spire-ca", "metald-us", { uri: "spiffe://example.org/metald/us-east-1" });
  makeSigned(dir, "spire-ca", "metald-expired", { uri: `spiffe://example.org/metald/${REGION}`, days: -1 });
  makeSigned(dir, "spire-ca", "legacy", { cn: "metald-legacy" });
  makeSigned(dir, "spire-ca", "unmapped", { uri: "spiffe://example.org/something-else" });
  makeCa(dir, "other-ca");
  makeSigned(dir, "other-ca", "impostor", { uri: `spiffe://example.org/metald/${REGION}` });
  return { dir, file, pem };
}

// Token file lines: certificate identities, plus bearer tokens.
function authFile(dir, certificateLines, tokens = {}) {
  const lines = [...certificateLines];
  for (const [name, { token, scopes }] of Object.entries(tokens)) lines.push(`${sha256Hex(token)} ${scopes} ${name}`);
  const file = path.join(dir, "auth");
  writeFileSync(file, lines.join("\n") + "\n");
  return `--auth-tokens-file=${file}`;
}

const metaldWithCert = (baseUrl, certs, name, pkg = "deploy.billaged.v1", extra = {}) =>
  createClient(serviceOf(pkg), transport(baseUrl, { nodeOptions: { ca: certs.pem("spire-ca.crt"), cert: certs.pem(`${name}.crt`), key: certs.pem(`${name}.key`), agent: false }, ...extra }));

test("metald authenticates by its SPIFFE certificate alone; other CAs, expired, other-region or unmapped certificates are refused", async () => {
  const certs = pki();
  const tokens = makeTokens({ reader: "admin", metaldToken: "ingest" });
  const server = await startServer({
    args: [
      `--metald-region=${REGION}`,
      `--tls-cert-file=${certs.file("server.crt")}`,
      `--tls-key-file=${certs.file("server.key")}`,
      `--tls-client-ca-file=${certs.file("spire-ca.crt")}`,
      "--tls-client-auth=optional",
      authFile(certs.dir, [`cert:spiffe://example.org/metald/${REGION} ingest:${REGION} metald-eu`, "cert:spiffe://example.org/metald/us-east-1 ingest:us-east-1", "cert:metald-legacy ingest"], tokens),
    ],
  });
  servers.push(server);
  assert.match(server.stderr, /HTTPS with optional client certificates/);
  const url = `https://127.0.0.1:${server.port}`;
  const customer = uniqueId("svid");
  const batch = (vm, at = BASE_NS) => ({ vmId: vm, customerId: customer, metrics: makeSamples(at, 3, (i) => ({ cpu: BigInt(1000 * (i + 1)), memory: 1n })).map(sampleMessage) });

  // Only a client certificate: every metald call succeeds, JSON and binary.
  for (const binary of [false, true]) {
    const metald = metaldWithCert(url, certs, "metald-eu", "deploy.billaged.v1", { binary });
    const vm = uniqueId("vm-svid");
    assert.equal((await metald.notifyVmStarted({ vmId: vm, customerId: customer, startTime: BASE_NS - SECOND })).success, true);
    assert.equal((await metald.sendMetricsBatch(batch(vm))).message, "stored 3 new samples of 3 (0 already seen)");
    assert.equal((await metald.sendHeartbeat({ instanceId: "metald-eu-1", activeVms: [vm] })).success, true);
    assert.equal((await metald.getActiveBillingSessions({ instanceId: "metald-eu-1" })).sessions.length, 1);
  }
  // The subject CN when the certificate has no URI SAN.
  assert.equal((await metaldWithCert(url, certs, "legacy", "billaged.v1").sendMetricsBatch(batch(uniqueId("vm-cn")))).success, true);
  // The SVID of another region: verified, but its scope does not cover this region.
  const us = await expectConnectError(metaldWithCert(url, certs, "metald-us").sendMetricsBatch(batch(uniqueId("vm-us"))), Code.PermissionDenied);
  assert.match(us.message, /client certificate 'spiffe:\/\/example.org\/metald\/us-east-1' may not send metrics of region 'eu-test'/);
  // Verified but mapped to nothing.
  const unmapped = await expectConnectError(metaldWithCert(url, certs, "unmapped").sendMetricsBatch(batch(uniqueId("vm-x"))), Code.PermissionDenied);
  assert.match(unmapped.message, /spiffe:\/\/example.org\/something-else.*not mapped/);
  // Another CA, or expired: the handshake fails, nothing is called.
  for (const name of ["impostor", "metald-expired"]) {
    await assert.rejects(metaldWithCert(url, certs, name).sendMetricsBatch(batch(uniqueId("vm-bad"))), (err) => {
      assert.ok(!(err instanceof ConnectError) || err.code === Code.Unavailable || err.code === Code.Internal || err.code === Code.Unknown, `${name}: ${err}`);
      return true;
    }, name);
  }
  // Optional client certificates: a token alone still works; neither is unauthenticated.
  const noCert = (extra) => createClient(serviceOf("billing.v1"), transport(url, { nodeOptions: { ca: certs.pem("spire-ca.crt"), agent: false }, ...extra }));
  assert.equal((await noCert(bearer(tokens.metaldToken.token)).sendMetricsBatch(batch(uniqueId("vm-token")))).success, true);
  const none = await expectConnectError(noCert({}).sendMetricsBatch(batch(uniqueId("vm-none"))), Code.Unauthenticated);
  assert.match(none.message, /client certificate/);
  // Nothing refused was stored.
  const reader = { nodeOptions: { ca: certs.pem("spire-ca.crt") }, ...bearer(tokens.reader.token) };
  for (const vm of ["vm-us", "vm-x", "vm-bad", "vm-none"]) {
    const usage = await queryClient(url, reader).getCustomerUsage({ customerId: customer, startTime: ts(Number(BASE_NS / MS) - HOUR_MS), endTime: ts(Number(BASE_NS / MS) + 2 * HOUR_MS), granularity: 1 });
    assert.ok(!usage.vms.some((v) => v.vmId.startsWith(vm)), `${vm} was stored: ${stringify(usage.vms.map((v) => v.vmId))}`);
  }
});

// The SHA-256 fingerprint of the certificate the server presents to a new connection.
function serverFingerprint(port, ca) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca, checkServerIdentity: () => undefined }, () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      socket.end();
      resolve(fingerprint);
    });
    socket.on("error", reject);
  });
}
const fingerprintOf = (pemText) => new X509Certificate(pemText).fingerprint256;

test("server and client certificates and the CA bundle rotate without a restart while a client keeps calling and a stream stays open", async () => {
  const certs = pki();
  const vmIdentity = `spiffe://example.org/metald/${REGION}`;
  const customer = uniqueId("rotate");
  const serverCert = certs.file("server.crt");
  const serverKey = certs.file("server.key");
  const bundle = certs.file("bundle.crt");
  writeFileSync(bundle, certs.pem("spire-ca.crt"));
  const server = await startServer({
    args: [
      `--metald-region=${REGION}`,
      `--tls-cert-file=${serverCert}`,
      `--tls-key-file=${serverKey}`,
      `--tls-client-ca-file=${bundle}`,
      authFile(certs.dir, [`cert:${vmIdentity} ingest:${REGION},customer:${customer} metald-eu`]),
    ],
  });
  servers.push(server);
  const url = `https://127.0.0.1:${server.port}`;
  const firstServerPem = certs.pem("server.crt");
  // Both CAs are trusted by the client from the start (SPIRE's bundle lists the next CA before it signs).
  makeCa(certs.dir, "next-ca");
  const trusted = Buffer.concat([certs.pem("spire-ca.crt"), certs.pem("next-ca.crt")]);
  assert.equal(await serverFingerprint(server.port, trusted), fingerprintOf(firstServerPem));

  // A keep-alive client calling all along, and an open live-usage stream.
  const oldCert = { ca: trusted, cert: certs.pem("metald-eu.crt"), key: certs.pem("metald-eu.key") };
  const steady = createClient(MetaldService, transport(url, { nodeOptions: oldCert }));
  const vm = uniqueId("vm-rotate");
  let at = BASE_NS;
  let calls = 0;
  const failures = [];
  let calling = true;
  const loop = (async () => {
    while (calling) {
      try {
        const res = await steady.sendMetricsBatch({ vmId: vm, customerId: customer, metrics: [sampleMessage({ at, cpu: at - BASE_NS, memory: 1n })] });
        if (!res.success) failures.push(res.message);
        at += 100n * MS;
        calls += 1;
      } catch (err) {
        failures.push(String(err));
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const abort = new AbortController();
  const stream = queryClient(url, { nodeOptions: oldCert })
    .streamLiveUsage({ customerId: customer }, { signal: abort.signal })
    [Symbol.asyncIterator]();
  await stream.next(); // the snapshot
  const waitCalls = async (n) => {
    const until = calls + n;
    while (calls < until && failures.length === 0) await new Promise((r) => setTimeout(r, 10));
  };
  await waitCalls(3);

  // SPIRE rotates: the new CA joins the bundle, then the server's certificate and key are rewritten.
  makeSigned(certs.dir, "next-ca", "server-next", { serverIp: "127.0.0.1" });
  makeSigned(certs.dir, "next-ca", "metald-eu-next", { uri: vmIdentity });
  writeFileSync(bundle, trusted);
  writeFileSync(serverKey, certs.pem("server-next.key")); // a moment where key and certificate do not match
  writeFileSync(serverCert, certs.pem("server-next.crt"));
  assert.equal(await serverFingerprint(server.port, trusted), fingerprintOf(certs.pem("server-next.crt")), "a new handshake presents the new certificate");
  // The rotated client certificate (signed by the new CA) gets through on a new connection.
  const rotated = createClient(MetaldService, transport(url, { nodeOptions: { ca: trusted, cert: certs.pem("metald-eu-next.crt"), key: certs.pem("metald-eu-next.key"), agent: false } }));
  assert.equal((await rotated.sendHeartbeat({ instanceId: "metald-eu-1", activeVms: [vm] })).success, true);
  await waitCalls(3);
  // The stream opened before the rotation still delivers updates.
  const update = await Promise.race([stream.next(), new Promise((_, reject) => setTimeout(() => reject(new Error("no update on the old stream")), 10_000))]);
  assert.equal(update.done, false);

  // The old CA leaves the bundle: new connections with the old certificate are refused, the open ones go on.
  writeFileSync(bundle, certs.pem("next-ca.crt"));
  const stale = createClient(MetaldService, transport(url, { nodeOptions: { ...oldCert, agent: false } }));
  await assert.rejects(stale.sendHeartbeat({ instanceId: "metald-eu-1", activeVms: [vm] }));
  await waitCalls(3);
  calling = false;
  await loop;
  abort.abort();
  assert.deepEqual(failures, [], "the keep-alive client never failed across the rotations");
  assert.ok(calls >= 9, `calls: ${calls}`);
  assert.match(server.stderr, /reloaded the TLS certificate/);
  const reloads = server.stderr.match(/reloaded the TLS certificate/g).length;
  assert.ok(reloads >= 2, `reloads: ${reloads}`);
  // Every acknowledged sample billed exactly once: the cpu counter is the time since BASE_NS.
  const totals = await vmTotals(url, customer, vm, { nodeOptions: { ca: trusted, cert: certs.pem("metald-eu-next.crt"), key: certs.pem("metald-eu-next.key") } });
  assert.equal(totals.cpuTimeNanos, at - 100n * MS - BASE_NS);
});

test("any sampling cadence: every 5 minutes (one sample per batch) or every 100 ms (600 per batch), gaps are missing data only", async () => {
  // The default --expected-cadence-seconds=60.
  const server = await startServer({ args: [`--metald-region=${REGION}`] });
  servers.push(server);
  const metald = createClient(serviceOf("deploy.billaged.v1"), transport(server.baseUrl));
  const customer = uniqueId("cadence");
  const MINUTE = 60n * SECOND;

  // Every 5 minutes, one sample per batch; the batch of minute 15 never arrives.
  const slowVm = uniqueId("vm-5min");
  const slowAt = [0n, 5n, 10n, 20n, 25n, 30n].map((m) => BASE_NS + m * MINUTE);
  for (const [i, at] of slowAt.entries()) {
    const res = await metald.sendMetricsBatch({ vmId: slowVm, customerId: customer, metrics: [sampleMessage({ at, cpu: BigInt(1000 * (i + 1)), memory: 64n })] });
    assert.equal(res.message, "stored 1 new samples of 1 (0 already seen)");
  }
  // Every 100 ms, 600 per batch; one minute of batches is lost.
  const fastVm = uniqueId("vm-100ms");
  const fastBatches = [0n, 1n, 3n].map((m) => makeSamples(BASE_NS + m * MINUTE, 600, (i) => ({ cpu: m * 1_000_000n + BigInt(i), memory: 64n })));
  for (const batch of fastBatches) {
    const res = await metald.sendMetricsBatch({ vmId: fastVm, customerId: customer, metrics: batch.map(sampleMessage) });
    assert.equal(res.message, "stored 600 new samples of 600 (0 already seen)");
  }
  // Both stop, so no open session shows a gap up to now.
  assert.equal((await metald.notifyVmStopped({ vmId: slowVm, stopTime: slowAt.at(-1) + SECOND })).success, true);
  assert.equal((await metald.notifyVmStopped({ vmId: fastVm, stopTime: fastBatches[2][599].at + 100n * MS })).success, true);

  const report = await queryClient(server.baseUrl).getBillingWindow({ customerId: customer, startTime: ts(Number(BASE_NS / MS)), endTime: ts(Number(BASE_NS / MS) + HOUR_MS) });
  const toNs = (t) => t.seconds * SECOND + BigInt(t.nanos);
  const gapsOf = (vm) => report.gaps.filter((g) => g.vmId === vm).map((g) => [toNs(g.startTime), toNs(g.endTime)]);
  // The 5-minute sampler's regular intervals are not gaps; the missing batch is.
  assert.deepEqual(gapsOf(slowVm), [[BASE_NS + 10n * MINUTE, BASE_NS + 20n * MINUTE]], stringify(report.gaps));
  // The 100 ms sampler: only the lost minute (from its last sample before it).
  assert.deepEqual(gapsOf(fastVm), [[fastBatches[1][599].at, BASE_NS + 3n * MINUTE]], stringify(report.gaps));
  // Usage is counted either way (cumulative counters).
  assert.equal((await vmTotals(server.baseUrl, customer, slowVm)).cpuTimeNanos, 5000n);
});
