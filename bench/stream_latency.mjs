// billing stream latency: how long after an ingest is acknowledged its
// StreamLiveUsage update reaches a subscriber (stock connect-node client,
// binary Connect over HTTP/1.1). Usage: node bench/stream_latency.mjs
// HOST:PORT [COUNT]. One subscriber; COUNT single-window batches sent one
// after another; for each, the time from sending to the ack and from sending
// to the update whose delta matches. Prints p50/p99 of both and of
// update - ack, and fails unless every update arrived with its exact delta.
import { performance } from "node:perf_hooks";
import { batchRequest } from "../tests/e2e/lib/batch.mjs";
import { collectorClients, queryClient } from "../tests/e2e/lib/clients.mjs";
import { makeMetric, uniqueId } from "../tests/e2e/lib/metrics.mjs";

const [target, countArg] = process.argv.slice(2);
if (!target) {
  console.error("usage: node bench/stream_latency.mjs HOST:PORT [COUNT]");
  process.exit(2);
}
const count = Number(countArg ?? 200);
const baseUrl = `http://${target}`;
const customerId = uniqueId("stream-latency");
const ingest = collectorClients(baseUrl).binary;
const stream = queryClient(baseUrl).streamLiveUsage({ customerId })[Symbol.asyncIterator]();
if (!(await stream.next()).value?.snapshot) throw new Error("no snapshot");

const percentile = (values, q) => [...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))];
const ack = [];
const update = [];
for (let i = 0; i < count; i++) {
  const metric = makeMetric({ customerId, vmId: "vm-latency", minutesAgo: 2 + i });
  const sent = performance.now();
  const next = stream.next().then((r) => ({ at: performance.now(), value: r.value }));
  const answer = await ingest.sendMetricsBatch(batchRequest([metric]));
  const acked = performance.now();
  if (answer.acceptedCount !== 1) throw new Error(`window ${i} not accepted`);
  const received = await next;
  if (received.value?.delta?.cpuTimeNanos !== metric.cpuTimeNanos) throw new Error(`update ${i} has the wrong delta`);
  ack.push(acked - sent);
  update.push(received.at - sent);
}
await stream.return?.();
const gaps = update.map((u, i) => u - ack[i]);
const line = (name, values) => console.log(`${name}_ms p50 ${percentile(values, 0.5).toFixed(3)} p99 ${percentile(values, 0.99).toFixed(3)}`);
console.log(`updates ${count}`);
line("ack", ack);
line("update", update);
line("update_after_ack", gaps);
process.exit(0);
