// Wire compatibility of the gateway's Connect server streaming with the stock
// client (@connectrpc/connect-node over HTTP/1.1, JSON and binary). billingd
// does not serve a streaming procedure yet, so this drives
// build/tests/gateway_stream_fixture: the real connect_server with a scripted
// BillingQueryService/StreamLiveUsage (see its main.cpp).
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, expectConnectError, queryClient } from "./lib/clients.mjs";
import { REPO_ROOT } from "./lib/paths.mjs";
import { startServer } from "./lib/server.mjs";
import { makeCertificates } from "./lib/tls.mjs";

const FIXTURE = path.resolve(
  process.env.GATEWAY_STREAM_FIXTURE ?? path.join(REPO_ROOT, "build", "tests", "gateway_stream_fixture", "gateway_stream_fixture"),
);
const WAIT_MS = 5_000;
// The fixture caps every stream's deadline at this (its max_timeout).
const FIXTURE_MAX_TIMEOUT_MS = 3_000;

let server;

before(async () => {
  if (!existsSync(FIXTURE)) {
    throw new Error(`${FIXTURE} not found: cmake --build build --target gateway_stream_fixture (or set GATEWAY_STREAM_FIXTURE)`);
  }
  server = await startServer({ binary: FIXTURE });
});

after(async () => {
  await server?.cleanup();
});

async function collect(stream) {
  const updates = [];
  for await (const update of stream) updates.push(update);
  return updates;
}

const logCount = (target, line) => target.stderr.split("\n").filter((l) => l === line).length;

// Resolves once the fixture's stderr has `count` lines equal to `line`.
async function waitForLog(target, line, count = 1, waitMs = WAIT_MS) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (logCount(target, line) >= count) return;
    if (Date.now() > deadline) assert.fail(`no ${count} x "${line}" in the fixture's log:\n${target.stderr}`);
    await sleep(10);
  }
}

for (const binary of [false, true]) {
  const codec = binary ? "binary" : "JSON";

  test(`${codec}: messages arrive in order, then the stream ends ok`, async () => {
    const client = queryClient(server.baseUrl, { binary });
    const customerId = `acme-${codec}`;
    const updates = await collect(client.streamLiveUsage({ customerId }));
    assert.deepEqual(
      updates.map((u) => [u.customerId, u.sequence, u.snapshot, u.monthToDate?.windowCount]),
      [
        [customerId, 1n, true, 1n],
        [customerId, 2n, false, 2n],
        [customerId, 3n, false, 3n],
      ],
    );
    assert.equal(updates[2].delta.cpuTimeNanos, 3_000_000_000n);
    assert.equal(updates[0].asOf.seconds, 1_795_000_000n);
  });

  test(`${codec}: an error after a message reaches the client with its code and message`, async () => {
    const client = queryClient(server.baseUrl, { binary });
    const received = [];
    const err = await expectConnectError(
      (async () => {
        for await (const update of client.streamLiveUsage({ customerId: "fail" })) received.push(update);
      })(),
      Code.InvalidArgument,
    );
    assert.equal(err.rawMessage, "customer fail cannot stream");
    assert.deepEqual(received.map((u) => u.sequence), [1n]);
  });

  test(`${codec}: the server's deadline ends the stream with deadline_exceeded`, async () => {
    const client = queryClient(server.baseUrl, { binary });
    const closedBefore = logCount(server, "stream closed: slow");
    const started = Date.now();
    // The client's own timer is far away: the end-of-stream error is the server's.
    const err = await expectConnectError(collect(client.streamLiveUsage({ customerId: "slow" }, { timeoutMs: 60_000 })), Code.DeadlineExceeded);
    assert.equal(err.rawMessage, "the stream reached its deadline");
    assert.ok(Date.now() - started >= FIXTURE_MAX_TIMEOUT_MS - 50, `ended after ${Date.now() - started} ms`);
    await waitForLog(server, "stream closed: slow", closedBefore + 1);
  });

  test(`${codec}: a client that cancels closes the stream on the server`, async () => {
    const client = queryClient(server.baseUrl, { binary });
    const openedBefore = logCount(server, "stream opened: slow");
    const closedBefore = logCount(server, "stream closed: slow");
    const abort = new AbortController();
    const canceled = expectConnectError(collect(client.streamLiveUsage({ customerId: "slow" }, { signal: abort.signal })), Code.Canceled);
    await waitForLog(server, "stream opened: slow", openedBefore + 1);
    abort.abort();
    await canceled;
    // Well before the stream's deadline: the server noticed the connection close.
    await waitForLog(server, "stream closed: slow", closedBefore + 1, FIXTURE_MAX_TIMEOUT_MS / 2);
  });
}

test("SIGTERM ends open streams with unavailable and the server exits promptly", async () => {
  const own = await startServer({ binary: FIXTURE });
  try {
    // Each outcome is awaited from the start, so neither rejection goes unhandled.
    const outcomes = [false, true].map((binary) =>
      expectConnectError(collect(queryClient(own.baseUrl, { binary }).streamLiveUsage({ customerId: "slow" })), Code.Unavailable),
    );
    await waitForLog(own, "stream opened: slow", 2);
    const started = Date.now();
    const stopped = own.stop();
    for (const err of await Promise.all(outcomes)) {
      assert.equal(err.rawMessage, "the server is shutting down");
    }
    assert.deepEqual(await stopped, { code: 0, signal: null });
    assert.ok(Date.now() - started < 4_000, `stop took ${Date.now() - started} ms`);
  } finally {
    await own.cleanup();
  }
});

test("streams work over TLS too (the session's stream is plain or TLS)", async () => {
  const certs = makeCertificates();
  const tls = await startServer({ binary: FIXTURE, args: [`--tls-cert-file=${certs.file("server.crt")}`, `--tls-key-file=${certs.file("server.key")}`] });
  try {
    for (const binary of [false, true]) {
      const client = queryClient(`https://127.0.0.1:${tls.port}`, { binary, nodeOptions: { ca: certs.pem("test-ca.crt") } });
      const updates = await collect(client.streamLiveUsage({ customerId: "acme-tls" }));
      assert.deepEqual(updates.map((u) => u.sequence), [1n, 2n, 3n]);
      await expectConnectError(collect(client.streamLiveUsage({ customerId: "fail" })), Code.InvalidArgument);
    }
  } finally {
    await tls.cleanup();
  }
});
