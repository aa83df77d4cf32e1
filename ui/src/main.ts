// The live usage dashboard: one customer's month to date, updated by
// StreamLiveUsage (no polling). Every stream update also refreshes the
// panels the stream does not carry, one refresh at a time (updates arriving
// meanwhile fold into one more): per region and VM and the hourly chart
// (rollups, cheap) at once; gaps (a scan of the month's raw windows) and the
// draft invoice (computed and audited per call) at most every 10 s.
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Granularity, type UsageUpdate } from "@gen/billing/v1/billing_pb";
import { invoices, queries, session } from "./api";
import { HourlyChart } from "./chart";
import { coreHours, exact, gibHours, gigabytes, utc, vmHours } from "./format";
import { type ConnectionState, LiveUsage } from "./live";
import { Refresher } from "./refresh";
import { describeError, renderDraft, renderFinalized, renderGaps, renderRegions, renderVms, showError } from "./panels";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let live: LiveUsage | undefined;
let chart: HourlyChart | undefined;
let customerId = "";
let monthStart = new Date(0);
const SLOW_PANELS_INTERVAL_MS = 10_000;

function setText(id: string, text: string) {
  $(id).textContent = text;
}

function showState(state: ConnectionState) {
  const badge = $("connection");
  badge.dataset.state = state.kind === "stopped" ? "error" : state.kind;
  switch (state.kind) {
    case "connecting":
      badge.textContent = "connecting…";
      break;
    case "live":
      badge.textContent = "live";
      $("errors").replaceChildren();
      break;
    case "reconnecting":
      badge.textContent = `reconnecting in ${(state.delayMs / 1000).toFixed(1)} s (attempt ${state.attempt})`;
      badge.title = describeError(state.error);
      break;
    case "stopped":
      badge.textContent = "stopped";
      showError($("errors"), "live usage", state.error);
      // Each panel then shows its own answer (often the same refusal).
      refresh();
      break;
  }
}

function monthOf(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1));
}
function nextMonth(date: Date): Date {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1));
}

function showUpdate(update: UsageUpdate) {
  const t = update.monthToDate;
  setText("cost-to-date", update.monthToDateCost === "" ? "no plan" : update.monthToDateCost);
  $("cost-to-date").dataset.cost = update.monthToDateCost;
  setText("mtd-cpu", coreHours(exact(t, "cpuTimeNanos")));
  $("mtd-cpu").dataset.nanos = String(exact(t, "cpuTimeNanos"));
  setText("mtd-memory", gibHours(exact(t, "memoryBytesSeconds")));
  setText("mtd-vm", vmHours(exact(t, "vmActiveNanos")));
  setText("mtd-network", gigabytes(exact(t, "networkRxBytes") + exact(t, "networkTxBytes")));
  setText("mtd-disk", gigabytes(exact(t, "diskReadBytes") + exact(t, "diskWriteBytes")));
  setText("mtd-sequence", `#${update.sequence}`);
  setText("mtd-as-of", `as of ${utc(update.asOf ? timestampDate(update.asOf) : undefined)}`);
  const month = monthOf(update.asOf ? timestampDate(update.asOf) : new Date());
  if (month.getTime() !== monthStart.getTime()) monthStart = month;
  refresh();
}

function monthRange() {
  return { start: timestampFromDate(monthStart), end: timestampFromDate(nextMonth(monthStart)) };
}

// Each panel answers on its own: one failing shows its error, the others
// still show; an answer for a customer the page has left is dropped.
async function panel<T>(customer: string, call: Promise<T>, show: (answer: T) => void, fail: (error: unknown) => void) {
  try {
    const answer = await call;
    if (customer === customerId) show(answer);
  } catch (error) {
    if (customer === customerId) fail(error);
  }
}

async function refreshUsage() {
  const customer = customerId;
  const { start, end } = monthRange();
  await panel(
    customer,
    queries.getCustomerUsage({ customerId: customer, startTime: start, endTime: end, granularity: Granularity.HOUR }),
    (usage) => {
      chart?.setUsage(usage);
      $("chart-error").replaceChildren();
      renderRegions($("regions"), usage);
      renderVms($("vms"), usage);
    },
    (e) => {
      showError($("chart-error"), "hourly usage", e);
      showError($("regions"), "per region", e);
      showError($("vms"), "per VM", e);
    },
  );
}

async function refreshSlowPanels() {
  const customer = customerId;
  const { start, end } = monthRange();
  await Promise.all([
    panel(
      customer,
      queries.getBillingWindow({ customerId: customer, startTime: start, endTime: end }),
      (window) => {
        chart?.setGaps(window.gaps);
        renderGaps($("gaps"), window.gaps);
      },
      (e) => showError($("gaps"), "gaps", e),
    ),
    panel(
      customer,
      invoices.getInvoice({ customerId: customer, periodStart: start }),
      (answer) => renderDraft($("draft"), answer.invoice),
      (e) => showError($("draft"), "draft invoice", e),
    ),
    panel(
      customer,
      invoices.listInvoices({ customerId: customer }),
      (answer) => renderFinalized($("finalized"), answer.invoices),
      (e) => showError($("finalized"), "finalized invoices", e),
    ),
  ]);
}

const usageRefresher = new Refresher(refreshUsage, 0);
const slowRefresher = new Refresher(refreshSlowPanels, SLOW_PANELS_INTERVAL_MS);
function refresh() {
  usageRefresher.request();
  slowRefresher.request();
}

function start(customer: string) {
  live?.stop();
  usageRefresher.cancel();
  slowRefresher.cancel();
  customerId = customer;
  monthStart = monthOf(new Date());
  chart?.clear();
  for (const id of ["regions", "vms", "gaps", "draft", "finalized", "chart-error", "errors"]) $(id).replaceChildren();
  for (const id of ["cost-to-date", "mtd-cpu", "mtd-memory", "mtd-vm", "mtd-network", "mtd-disk", "mtd-sequence"]) setText(id, "–");
  live = new LiveUsage(customer, showUpdate, showState);
}

function main() {
  chart = new HourlyChart($("chart"));
  const form = $<HTMLFormElement>("login");
  const customerInput = $<HTMLInputElement>("customer");
  const tokenInput = $<HTMLInputElement>("token");
  const params = new URLSearchParams(window.location.search);
  customerInput.value = params.get("customer") ?? session.customer();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const customer = customerInput.value.trim();
    session.save(customer, tokenInput.value);
    tokenInput.value = "";
    tokenInput.placeholder = session.token() ? "token set for this tab" : "kept in this tab only";
    if (customer) start(customer);
  });
  $("forget").addEventListener("click", () => {
    session.forgetToken();
    tokenInput.placeholder = "kept in this tab only";
    live?.stop();
    showState({ kind: "connecting" });
    $("connection").dataset.state = "idle";
    $("connection").textContent = "not connected";
  });
  if (session.token()) tokenInput.placeholder = "token set for this tab";
  if (customerInput.value) start(customerInput.value);
}

main();
