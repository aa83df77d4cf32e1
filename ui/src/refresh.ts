// Runs a refresh when asked, never two at once and never more often than
// every `minIntervalMs`: requests while one runs or inside the interval fold
// into one more run at the earliest allowed moment. Stream updates can come
// many times a second; the panels they trigger must not load billingd as often.
export class Refresher {
  private running = false;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastStart = -Infinity;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly minIntervalMs: number,
  ) {}

  request() {
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) return;
    const wait = this.lastStart + this.minIntervalMs - Date.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.request();
      }, wait);
      return;
    }
    void this.start();
  }

  cancel() {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.again = false;
  }

  private async start() {
    this.running = true;
    this.lastStart = Date.now();
    try {
      await this.run();
    } finally {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.request();
      }
    }
  }
}
