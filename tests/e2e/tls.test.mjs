// HTTPS on the gateway (--tls-cert-file/--tls-key-file) and client
// certificates (--tls-client-ca-file), with connect-node over https and a
// certificate chain generated at test time with the openssl CLI.
import assert from "node:assert/strict";
import https from "node:https";
import { after, before, test } from "node:test";
import { bearer, makeTokens, tokensFileArg } from "./lib/auth.mjs";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { collectorClients, ConnectError } from "./lib/clients.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { makeTempDir, runBillingd, startServer } from "./lib/server.mjs";
import { makeCertificates } from "./lib/tls.mjs";

let certs;
const servers = [];
before(() => {
  certs = makeCertificates();
});
after(async () => {
  for (const server of servers) await server.cleanup();
});

const tlsArgs = () => [`--tls-cert-file=${certs.file("server.crt")}`, `--tls-key-file=${certs.file("server.key")}`];
const httpsUrl = (server) => `https://127.0.0.1:${server.port}`;

// A plain GET over https with node's client; resolves {status} or rejects.
function httpsGet(server, path, tlsOptions) {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port: server.port, path, agent: false, timeout: 10_000, ...tlsOptions }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
  });
}

test("with a certificate the gateway serves Connect over HTTPS, with bearer tokens inside", async () => {
  const tokens = makeTokens({ metald: "ingest" });
  const server = await startServer({ args: [...tlsArgs(), tokensFileArg(tokens)] });
  servers.push(server);
  assert.match(server.stderr, /HTTPS; listening on/);
  const clients = collectorClients(httpsUrl(server), { nodeOptions: { ca: certs.pem("test-ca.crt") }, ...bearer(tokens.metald.token) });
  const metrics = [makeMetric({ customerId: uniqueId("cust-tls") }), makeMetric({ customerId: uniqueId("cust-tls") })];
  assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batchRequest(metrics))), expectedSummary(2));
  assert.deepEqual(summarize(await clients.json.sendMetricsBatch(batchRequest(metrics))), expectedSummary(2, { duplicates: [0, 1] }));
  // A client that does not trust the server's CA refuses the connection.
  await assert.rejects(httpsGet(server, "/healthz", {}), /self[- ]signed|unable to verify|certificate/i);
  // Plain HTTP to the TLS port gets no answer; the server goes on serving.
  const plain = collectorClients(`http://127.0.0.1:${server.port}`, { defaultTimeoutMs: 3000, ...bearer(tokens.metald.token) });
  await assert.rejects(plain.binary.sendMetricsBatch(batchRequest(metrics)), (err) => err instanceof ConnectError || err instanceof Error);
  assert.equal((await httpsGet(server, "/healthz", { ca: certs.pem("test-ca.crt") })).status, 200);
});

test("with a client CA only clients presenting a certificate it signed get through (mTLS)", async () => {
  const server = await startServer({ args: [...tlsArgs(), `--tls-client-ca-file=${certs.file("test-ca.crt")}`] });
  servers.push(server);
  assert.match(server.stderr, /HTTPS with client certificates/);
  const ca = certs.pem("test-ca.crt");
  const withClientCert = { ca, cert: certs.pem("client.crt"), key: certs.pem("client.key") };
  assert.equal((await httpsGet(server, "/healthz", withClientCert)).status, 200);
  const clients = collectorClients(httpsUrl(server), { nodeOptions: withClientCert });
  assert.deepEqual(summarize(await clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-mtls") })]))), expectedSummary(1));
  // No certificate, or one from another CA: the handshake fails.
  await assert.rejects(httpsGet(server, "/healthz", { ca }));
  await assert.rejects(httpsGet(server, "/healthz", { ca, cert: certs.pem("stranger.crt"), key: certs.pem("stranger.key") }));
  const strangers = collectorClients(httpsUrl(server), { nodeOptions: { ca, cert: certs.pem("stranger.crt"), key: certs.pem("stranger.key") } });
  await assert.rejects(strangers.binary.sendMetricsBatch(batchRequest([makeMetric()])));
  assert.equal((await httpsGet(server, "/healthz", withClientCert)).status, 200);
});

test("unreadable or incomplete TLS settings stop billingd at start with a clear message", async () => {
  const base = ["--listen=127.0.0.1:0", `--data-dir=${makeTempDir()}`, "--insecure-no-auth"];
  await assert.rejects(runBillingd([...base, `--tls-cert-file=${certs.file("server.crt")}`], { timeoutMs: 15_000 }), /needs both a certificate and a key/);
  await assert.rejects(
    runBillingd([...base, `--tls-cert-file=${certs.file("missing.crt")}`, `--tls-key-file=${certs.file("server.key")}`], { timeoutMs: 15_000 }),
    /cannot load the TLS certificate/,
  );
  await assert.rejects(runBillingd([...base, `--tls-client-ca-file=${certs.file("test-ca.crt")}`], { timeoutMs: 15_000 }), /TLS is off/);
});
