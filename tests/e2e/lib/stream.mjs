// Reading server streams in tests.
import assert from "node:assert/strict";

export const STREAM_WAIT_MS = 10_000;

// The next message of an async iterator, or a failure after `waitMs`.
export async function next(iterator, what, waitMs = STREAM_WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${waitMs} ms`)), waitMs);
  });
  try {
    const result = await Promise.race([iterator.next(), timeout]);
    assert.equal(result.done, false, `the stream ended before ${what}`);
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}
