// HTTP-level abuse against the real billingd, on loopback and bounded in
// time: slow headers (slowloris), huge headers, garbage pipelined after a
// valid request, and many idle connections. The server must answer or close
// such connections promptly and keep serving everyone else.
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";
import { batchRequest, expectedSummary, summarize } from "./lib/batch.mjs";
import { collectorClients } from "./lib/clients.mjs";
import { makeMetric, uniqueId } from "./lib/metrics.mjs";
import { startServer } from "./lib/server.mjs";

const HEADER_TIMEOUT_MS = 800;
let server;
before(async () => {
  server = await startServer({ args: [`--header-timeout-ms=${HEADER_TIMEOUT_MS}`, "--idle-timeout-ms=1500"] });
});
after(async () => {
  await server?.cleanup();
});

// A raw connection that records what it receives and when it is closed.
function connect() {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port: server.port });
    const conn = { socket, received: "", closed: false };
    conn.closedAt = new Promise((res) => socket.once("close", () => {
      conn.closed = true;
      res(Date.now());
    }));
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => (conn.received += chunk));
    socket.on("error", () => {}); // a reset is a close too
    socket.once("connect", () => resolve(conn));
    socket.once("error", reject);
  });
}

async function closedWithin(conn, ms) {
  const timer = new Promise((resolve) => setTimeout(() => resolve("open"), ms));
  const outcome = await Promise.race([conn.closedAt, timer]);
  if (outcome === "open") conn.socket.destroy();
  return outcome !== "open";
}

// A normal call on a fresh connection (a pooled keep-alive connection may
// have been closed by the short idle timeout of this server).
async function stillServes() {
  const clients = collectorClients(server.baseUrl, { nodeOptions: { agent: false } });
  const response = await clients.binary.sendMetricsBatch(batchRequest([makeMetric({ customerId: uniqueId("cust-abuse") })]));
  assert.deepEqual(summarize(response), expectedSummary(1));
}

test("slowloris: headers trickled byte by byte are cut off at --header-timeout-ms", async () => {
  const conn = await connect();
  const started = Date.now();
  const request = "POST /billing.v1.BillingCollectorService/SendMetricsBatch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
  conn.socket.write(request);
  const trickle = setInterval(() => {
    if (!conn.closed) conn.socket.write("a");
  }, 50);
  try {
    assert.ok(await closedWithin(conn, HEADER_TIMEOUT_MS + 3000), "the slow connection is still open");
    const took = Date.now() - started;
    assert.ok(took >= HEADER_TIMEOUT_MS - 100, `closed after ${took} ms, before the header timeout`);
  } finally {
    clearInterval(trickle);
  }
  await stillServes();
});

test("headers above the limit get 431 resource_exhausted and the connection is closed", async () => {
  const conn = await connect();
  conn.socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Huge: ${"h".repeat(64 * 1024)}\r\n\r\n`);
  assert.ok(await closedWithin(conn, 5000), "the connection is still open");
  assert.match(conn.received, /^HTTP\/1\.1 431 /);
  assert.match(conn.received, /"code":"resource_exhausted"/);
  // Many headers adding up past the limit are the same.
  const many = await connect();
  const headers = Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${"v".repeat(10)}\r\n`).join("");
  many.socket.write(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
  assert.ok(await closedWithin(many, 5000));
  assert.match(many.received, /^HTTP\/1\.1 431 /);
  await stillServes();
});

test("garbage pipelined after a valid request: the request is answered, the garbage gets 400, then close", async () => {
  const conn = await connect();
  conn.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\x00\x01GARBAGE \xff\xfe / HTTP/9\r\n\r\n");
  assert.ok(await closedWithin(conn, 5000), "the connection is still open");
  const statuses = [...conn.received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 400], conn.received);
  assert.match(conn.received, /"code":"invalid_argument"/);
  // Garbage alone, and a binary blob, are answered the same way.
  for (const junk of ["\r\n\r\n\r\n\r\nNOT HTTP AT ALL\r\n\r\n", Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37) % 256))]) {
    const other = await connect();
    other.socket.write(junk);
    assert.ok(await closedWithin(other, HEADER_TIMEOUT_MS + 3000));
  }
  await stillServes();
});

test("many idle connections neither block others nor stay open past the timeouts", async () => {
  const idle = await Promise.all(Array.from({ length: 200 }, () => connect()));
  // A keep-alive connection that went idle after one request is closed too.
  const kept = await connect();
  kept.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  await stillServes();
  const started = Date.now();
  const closed = await Promise.all([...idle, kept].map((conn) => closedWithin(conn, 6000)));
  assert.equal(closed.filter((c) => !c).length, 0, "some idle connections are still open");
  assert.match(kept.received, /^HTTP\/1\.1 200 /);
  assert.ok(Date.now() - started < 6000);
  await stillServes();
});
