// Tables and messages, built with textContent only (no server text is ever
// parsed as HTML).
import { ConnectError, Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { GetCustomerUsageResponse, UsageGap, UsageTotals } from "@gen/billing/v1/billing_pb";
import { type Invoice, LineKind, Dimension } from "@gen/billing/v1/invoice_pb";
import { coreHours, exact, gibHours, gigabytes, utc, vmHours } from "./format";

type Cell = string | { num: string };

function table(headers: Cell[], rows: Cell[][], empty: string): HTMLElement {
  if (rows.length === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = empty;
    return p;
  }
  const t = document.createElement("table");
  const head = t.createTHead().insertRow();
  for (const h of headers) {
    const th = document.createElement("th");
    th.textContent = typeof h === "string" ? h : h.num;
    if (typeof h !== "string") th.className = "num";
    head.appendChild(th);
  }
  const body = t.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) {
      const td = tr.insertCell();
      td.textContent = typeof cell === "string" ? cell : cell.num;
      if (typeof cell !== "string") td.className = "num";
    }
  }
  return t;
}

// "permission_denied: token acme-portal may not read customer globex".
export function describeError(error: unknown): string {
  const e = ConnectError.from(error);
  const code = Code[e.code].replace(/[A-Z]/g, (c, i) => (i ? "_" : "") + c.toLowerCase());
  return `${code}: ${e.rawMessage}`;
}

export function showError(target: HTMLElement, what: string, error: unknown) {
  const div = document.createElement("div");
  div.className = "error";
  const code = document.createElement("code");
  const text = describeError(error);
  const colon = text.indexOf(":");
  code.textContent = text.slice(0, colon);
  div.append(`${what}: `, code, text.slice(colon));
  target.replaceChildren(div);
}

const usageColumns: Cell[] = [{ num: "core-hours" }, { num: "GiB-hours" }, { num: "VM-hours" }, { num: "net GB" }, { num: "disk GB" }];
function usageCells(t: UsageTotals | undefined): Cell[] {
  return [
    { num: coreHours(exact(t, "cpuTimeNanos")) },
    { num: gibHours(exact(t, "memoryBytesSeconds")) },
    { num: vmHours(exact(t, "vmActiveNanos")) },
    { num: gigabytes(exact(t, "networkRxBytes") + exact(t, "networkTxBytes")) },
    { num: gigabytes(exact(t, "diskReadBytes") + exact(t, "diskWriteBytes")) },
  ];
}

export function renderRegions(target: HTMLElement, usage: GetCustomerUsageResponse) {
  target.replaceChildren(
    table(["region", ...usageColumns], usage.regions.map((r) => [r.region, ...usageCells(r.totals)]), "no usage this month"),
  );
}

export function renderVms(target: HTMLElement, usage: GetCustomerUsageResponse) {
  const rows = usage.vms.map((vm) => [
    vm.vmId,
    vm.region,
    ...usageCells(vm.totals),
    vm.lastSeen ? utc(timestampDate(vm.lastSeen)) : "–",
  ]);
  target.replaceChildren(table(["VM", "region", ...usageColumns, "last seen"], rows, "no VMs this month"));
}

export function renderGaps(target: HTMLElement, gaps: UsageGap[]) {
  const rows = gaps.map((g) => {
    const from = g.startTime ? timestampDate(g.startTime) : undefined;
    const to = g.endTime ? timestampDate(g.endTime) : undefined;
    const minutes = from && to ? ((to.getTime() - from.getTime()) / 60_000).toFixed(1) : "–";
    return [g.vmId, g.region, utc(from), utc(to), { num: minutes }];
  });
  target.replaceChildren(table(["VM", "region", "from", "to", { num: "minutes" }], rows, "no gaps this month"));
}

function lineLabel(line: Invoice["lines"][number]): string {
  switch (line.kind) {
    case LineKind.USAGE:
      return `${Dimension[line.dimension]?.toLowerCase() ?? "usage"} · ${line.region} · tier ${line.tier}`;
    case LineKind.BASE_FEE:
      return "base fee (prorated)";
    case LineKind.MINIMUM:
      return "minimum commitment top-up";
    case LineKind.ADJUSTMENT:
      return `adjustment for ${line.adjustedPeriodStart ? utc(timestampDate(line.adjustedPeriodStart)).slice(0, 7) : "an earlier period"}`;
    default:
      return "line";
  }
}

export function renderDraft(target: HTMLElement, invoice: Invoice | undefined) {
  if (!invoice) {
    target.replaceChildren(table([], [], "no draft"));
    return;
  }
  const rows: Cell[][] = invoice.lines.map((l) => [lineLabel(l), { num: l.quantity ? `${l.quantity} ${l.unit}` : "" }, { num: l.rate }, { num: l.multiplier }, { num: l.amount }]);
  rows.push(["usage subtotal", { num: "" }, { num: "" }, { num: "" }, { num: invoice.usageSubtotal }]);
  rows.push(["subtotal", { num: "" }, { num: "" }, { num: "" }, { num: invoice.subtotal }]);
  if (invoice.adjustments && invoice.adjustments !== "0") rows.push(["adjustments", { num: "" }, { num: "" }, { num: "" }, { num: invoice.adjustments }]);
  rows.push(["total", { num: "" }, { num: "" }, { num: "" }, { num: invoice.total }]);
  const t = table(["line", { num: "quantity" }, { num: "rate" }, { num: "×" }, { num: "amount" }], rows, "");
  t.id = "draft-lines";
  target.dataset.usageSubtotal = invoice.usageSubtotal;
  target.replaceChildren(t);
}

export function renderFinalized(target: HTMLElement, list: Invoice[]) {
  const rows = list.map((inv) => [
    `#${inv.number}`,
    inv.periodStart ? utc(timestampDate(inv.periodStart)).slice(0, 7) : "–",
    { num: inv.subtotal },
    { num: inv.adjustments },
    { num: inv.total },
    inv.finalizedAt ? utc(timestampDate(inv.finalizedAt)) : "–",
  ]);
  target.replaceChildren(
    table(["number", "period", { num: "subtotal" }, { num: "adjustments" }, { num: "total" }, "finalized at"], rows, "no finalized invoices yet"),
  );
}
