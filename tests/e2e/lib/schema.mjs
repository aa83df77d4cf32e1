// The contract, loaded at run time: `buf build protocol/` into a temporary
// FileDescriptorSet and a protobuf-es v2 registry over it. Nothing generated is
// kept in the repository.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { BUF, PROTOCOL_DIR, requireNodeModules } from "./paths.mjs";

function buildRegistry() {
  requireNodeModules();
  const dir = mkdtempSync(path.join(os.tmpdir(), "billing-e2e-schema-"));
  try {
    const out = path.join(dir, "billing.binpb");
    execFileSync(BUF, ["build", PROTOCOL_DIR, "-o", out], { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
    return createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const registry = buildRegistry();

function must(kind, name, value) {
  if (!value) throw new Error(`${kind} ${name} not found in the schema built from protocol/`);
  return value;
}
const message = (name) => must("message", name, registry.getMessage(`billing.v1.${name}`));
const enumOf = (name) => must("enum", name, registry.getEnum(`billing.v1.${name}`));

export const CollectorService = must("service", "BillingCollectorService", registry.getService("billing.v1.BillingCollectorService"));
export const QueryService = must("service", "BillingQueryService", registry.getService("billing.v1.BillingQueryService"));
export const InvoiceService = must("service", "BillingInvoiceService", registry.getService("billing.v1.BillingInvoiceService"));
export const InvoiceSchema = message("Invoice");
// metald's legacy surface (protocol/billing/v1/metald.proto).
export const MetaldService = must("service", "BillingService", registry.getService("billing.v1.BillingService"));
export const AdminService = must("service", "BillingAdminService", registry.getService("billing.v1.BillingAdminService"));

export const BillingMetricsSchema = message("BillingMetrics");
export const SendMetricsRequestSchema = message("SendMetricsRequest");
export const SendMetricsResponseSchema = message("SendMetricsResponse");
export const SendMetricsBatchRequestSchema = message("SendMetricsBatchRequest");
export const SendMetricsBatchResponseSchema = message("SendMetricsBatchResponse");

const ItemStatusEnum = enumOf("ItemStatus");
const RejectReasonEnum = enumOf("RejectReason");

// Enum values by their full proto name, e.g. ItemStatus.ITEM_STATUS_DUPLICATE.
function byName(desc) {
  return Object.freeze(Object.fromEntries(desc.values.map((v) => [v.name, v.number])));
}
export const ItemStatus = byName(ItemStatusEnum);
export const RejectReason = byName(RejectReasonEnum);

// The proto name of an enum number, for readable assertion messages.
export const itemStatusName = (n) => ItemStatusEnum.values.find((v) => v.number === n)?.name ?? `ItemStatus(${n})`;
export const rejectReasonName = (n) => RejectReasonEnum.values.find((v) => v.number === n)?.name ?? `RejectReason(${n})`;

// metald's BillingService as later metald versions declare it, under another
// proto package (e.g. "deploy.billaged.v1"): metald.proto with only its
// package line changed, built at test time, so the client's paths, type names
// and codecs are exactly those of a metald compiled from such a file.
export function metaldServiceIn(protoPackage) {
  const source = readFileSync(path.join(PROTOCOL_DIR, "billing", "v1", "metald.proto"), "utf8");
  const renamed = source.replace(/^package billing\.v1;$/m, `package ${protoPackage};`);
  if (renamed === source) throw new Error("metald.proto has no 'package billing.v1;' line to rename");
  const dir = mkdtempSync(path.join(os.tmpdir(), "billing-e2e-metald-"));
  try {
    const protoDir = path.join(dir, "proto", ...protoPackage.split("."));
    mkdirSync(protoDir, { recursive: true });
    writeFileSync(path.join(protoDir, "metald.proto"), renamed);
    const out = path.join(dir, "metald.binpb");
    execFileSync(BUF, ["build", path.join(dir, "proto"), "-o", out], { stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
    const renamedRegistry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
    return must("service", `${protoPackage}.BillingService`, renamedRegistry.getService(`${protoPackage}.BillingService`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
