// The month's hourly usage (GetCustomerUsage, hourly buckets) as a uPlot chart,
// with the gaps GetBillingWindow reports shaded.
import uPlot from "uplot";
import type { GetCustomerUsageResponse, UsageGap } from "@gen/billing/v1/billing_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { approxCoreHours, approxGibHours, exact } from "./format";

export class HourlyChart {
  private plot: uPlot | undefined;
  private gaps: Array<[number, number]> = [];
  private renders = 0;

  constructor(private readonly container: HTMLElement) {}

  // Another customer: nothing of the previous one stays drawn.
  clear() {
    this.plot?.destroy();
    this.plot = undefined;
    this.gaps = [];
    for (const key of ["gaps", "cpuNanos", "buckets"]) delete this.container.dataset[key];
  }

  setGaps(gaps: UsageGap[]) {
    this.gaps = gaps
      .filter((g) => g.startTime && g.endTime)
      .map((g) => [timestampDate(g.startTime!).getTime() / 1000, timestampDate(g.endTime!).getTime() / 1000]);
    this.container.dataset.gaps = String(this.gaps.length);
    this.plot?.redraw(false);
  }

  setUsage(usage: GetCustomerUsageResponse) {
    const xs: number[] = [];
    const cpu: number[] = [];
    const memory: number[] = [];
    let cpuNanos = 0n;
    for (const bucket of usage.buckets) {
      if (!bucket.bucketStart) continue;
      xs.push(timestampDate(bucket.bucketStart).getTime() / 1000);
      cpu.push(approxCoreHours(exact(bucket.totals, "cpuTimeNanos")));
      memory.push(approxGibHours(exact(bucket.totals, "memoryBytesSeconds")));
      cpuNanos += exact(bucket.totals, "cpuTimeNanos");
    }
    const data: uPlot.AlignedData = [xs, cpu, memory];
    if (!this.plot) {
      this.plot = new uPlot(this.options(), data, this.container);
    } else {
      this.plot.setData(data);
    }
    // What the test (and a curious reader) can see of what is drawn.
    this.renders += 1;
    this.container.dataset.renders = String(this.renders);
    this.container.dataset.cpuNanos = cpuNanos.toString();
    this.container.dataset.buckets = String(xs.length);
  }

  private options(): uPlot.Options {
    const width = Math.max(320, this.container.clientWidth - 16);
    return {
      width,
      height: 260,
      scales: { x: { time: true } },
      series: [
        {},
        { label: "CPU core-hours", stroke: "#0969da", fill: "rgba(9,105,218,0.08)", width: 1.5, paths: uPlot.paths.stepped!({ align: 1 }) },
        { label: "Memory GiB-hours", stroke: "#8250df", width: 1.5, scale: "mem", paths: uPlot.paths.stepped!({ align: 1 }) },
      ],
      axes: [{}, { label: "core-hours" }, { side: 1, scale: "mem", label: "GiB-hours", grid: { show: false } }],
      hooks: {
        drawClear: [
          (u) => {
            const ctx = u.ctx;
            ctx.save();
            ctx.fillStyle = "rgba(207,34,46,0.18)";
            for (const [from, to] of this.gaps) {
              const left = u.valToPos(from, "x", true);
              const right = u.valToPos(to, "x", true);
              ctx.fillRect(left, u.bbox.top, Math.max(2, right - left), u.bbox.height);
            }
            ctx.restore();
          },
        ],
      },
    };
  }
}
