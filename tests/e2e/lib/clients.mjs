// Stock Connect clients (connect-node over HTTP/1.1) in both codecs.
import assert from "node:assert/strict";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AdminService, CollectorService, InvoiceService, MetaldService, QueryService } from "./schema.mjs";

export function transport(baseUrl, { binary = true, ...options } = {}) {
  return createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: binary, defaultTimeoutMs: 15_000, ...options });
}

// {json, binary} clients of BillingCollectorService.
export function collectorClients(baseUrl, options = {}) {
  return {
    json: createClient(CollectorService, transport(baseUrl, { ...options, binary: false })),
    binary: createClient(CollectorService, transport(baseUrl, { ...options, binary: true })),
  };
}

// {json, binary} clients of metald's billing.v1.BillingService.
export function metaldClients(baseUrl, options = {}) {
  return {
    json: createClient(MetaldService, transport(baseUrl, { ...options, binary: false })),
    binary: createClient(MetaldService, transport(baseUrl, { ...options, binary: true })),
  };
}

export function adminClient(baseUrl, options = {}) {
  return createClient(AdminService, transport(baseUrl, options));
}

export function invoiceClient(baseUrl, options = {}) {
  return createClient(InvoiceService, transport(baseUrl, options));
}

export function queryClient(baseUrl, options = {}) {
  return createClient(QueryService, transport(baseUrl, options));
}

// Awaits `promise`, which must fail with a ConnectError of `code`
// (e.g. Code.InvalidArgument); returns the error.
export async function expectConnectError(promise, code) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    assert.ok(err instanceof ConnectError, `expected a ConnectError, got ${err?.stack ?? err}`);
    assert.equal(err.code, code, `expected Connect code ${Code[code]}, got ${Code[err.code]}: ${err.message}`);
    return err;
  }
  assert.fail(`expected Connect error ${Code[code]}, but the call succeeded: ${JSON.stringify(result, (_, v) => (typeof v === "bigint" ? v.toString() : v))}`);
}

export { Code, ConnectError };
