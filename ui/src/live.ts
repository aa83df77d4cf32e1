// The StreamLiveUsage subscription: live while messages flow; on a transient
// failure (network, unavailable, deadline) it reconnects with exponential
// backoff and jitter; on an answer no retry can change (permission_denied,
// unauthenticated, invalid_argument, ...) it stops and reports it.
import { Code, ConnectError } from "@connectrpc/connect";
import type { UsageUpdate } from "@gen/billing/v1/billing_pb";
import { queries } from "./api";

export type ConnectionState =
  | { kind: "connecting" }
  | { kind: "live" }
  | { kind: "reconnecting"; attempt: number; delayMs: number; error: ConnectError }
  | { kind: "stopped"; error: ConnectError };

const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Unknown, Code.Internal, Code.Aborted, Code.Canceled, Code.ResourceExhausted]);
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;

export function backoffDelay(attempt: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

export class LiveUsage {
  private readonly abort = new AbortController();

  constructor(
    private readonly customerId: string,
    private readonly onUpdate: (update: UsageUpdate) => void,
    private readonly onState: (state: ConnectionState) => void,
  ) {
    void this.run();
  }

  stop() {
    this.abort.abort();
  }

  private async run() {
    let attempt = 0;
    while (!this.abort.signal.aborted) {
      this.onState({ kind: "connecting" });
      try {
        for await (const update of queries.streamLiveUsage({ customerId: this.customerId }, { signal: this.abort.signal })) {
          if (attempt !== 0 || update.snapshot) this.onState({ kind: "live" });
          attempt = 0;
          this.onUpdate(update);
        }
        // The server ended the stream without an error: subscribe again.
        throw new ConnectError("the stream ended", Code.Unavailable);
      } catch (thrown) {
        if (this.abort.signal.aborted) return;
        const error = ConnectError.from(thrown);
        if (!RETRYABLE.has(error.code)) {
          this.onState({ kind: "stopped", error });
          return;
        }
        attempt += 1;
        const delayMs = backoffDelay(attempt);
        this.onState({ kind: "reconnecting", attempt, delayMs, error });
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }
}
