// Runs the real billingd: a fresh temporary data dir, port 0 on loopback, and
// the port taken from its "listening on 127.0.0.1:PORT" log line. Every child
// and temporary dir is also cleaned up when the test process exits, so a failed
// test leaves nothing behind.
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BILLINGD, requireBillingd } from "./paths.mjs";

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;
const MAX_LOG_CHARS = 1 << 20;

const liveChildren = new Set();
const tempDirs = new Set();

process.on("exit", () => {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

// A new empty directory under the system temp dir, removed by removeTempDir()
// or at the latest when the test process exits.
export function makeTempDir(prefix = "billingd-e2e-") {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// Starts billingd and resolves once it listens. `dataDir` defaults to a fresh
// temporary dir owned by the server (removed by cleanup()); pass one to restart
// on existing data. `args` are extra command-line options; unless they
// configure authentication themselves (--auth-tokens-file, --insecure-no-auth),
// billingd runs in the explicit --insecure-no-auth dev mode. `binary` runs
// another server program that takes --listen and logs "listening on" the same
// way (a test fixture); it gets no data dir and no auth flag. `env` adds to
// (or overrides) the environment it inherits.
export async function startServer({ dataDir, args = [], readyTimeoutMs = READY_TIMEOUT_MS, binary, env } = {}) {
  if (binary === undefined) requireBillingd();
  const program = binary ?? BILLINGD;
  const ownsDataDir = binary === undefined && dataDir === undefined;
  const dir = binary === undefined ? (dataDir ?? makeTempDir()) : dataDir;
  const configuresAuth = args.some((arg) => arg.startsWith("--auth-tokens-file") || arg.startsWith("--insecure-no-auth"));
  const auth = binary === undefined && !configuresAuth ? ["--insecure-no-auth"] : [];
  const argv = ["--listen=127.0.0.1:0", ...(binary === undefined ? [`--data-dir=${dir}`] : []), ...auth, ...args];
  const child = spawn(program, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  liveChildren.add(child);

  let stderr = "";
  let stdout = "";
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk) => {
    if (stdout.length < MAX_LOG_CHARS) stdout += chunk;
  });

  const port = await new Promise((resolve, reject) => {
    let pending = "";
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };
    const fail = (why) => {
      if (settled) return;
      child.kill("SIGKILL");
      settle(reject, new Error(`${program} ${argv.join(" ")}: ${why}\n--- stderr ---\n${stderr}--- end of stderr ---`));
    };
    const timer = setTimeout(() => fail(`not listening after ${readyTimeoutMs} ms`), readyTimeoutMs);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk) => {
      if (stderr.length < MAX_LOG_CHARS) stderr += chunk;
      if (settled) return;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines) {
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) return settle(resolve, Number(m[1]));
      }
    });
    child.once("error", (err) => fail(`could not be started: ${err.message}`));
    exited.then(({ code, signal }) => fail(`exited before listening (code ${code}, signal ${signal})`));
  });
  if (!(port > 0 && port < 65536)) throw new Error(`billingd announced an invalid port ${port}`);

  const server = {
    port,
    dataDir: dir,
    baseUrl: `http://127.0.0.1:${port}`,
    child,
    exited,
    get stderr() {
      return stderr;
    },
    get stdout() {
      return stdout;
    },
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    // Sends `signal` (SIGTERM: drain and exit) and resolves with {code, signal}
    // once the process is gone; SIGKILLs it and throws if it does not exit in time.
    async stop({ signal = "SIGTERM", timeoutMs = STOP_TIMEOUT_MS } = {}) {
      if (!server.running) return exited;
      child.kill(signal);
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(() => resolve("timeout"), timeoutMs);
      });
      const outcome = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        child.kill("SIGKILL");
        await exited;
        throw new Error(`billingd did not exit within ${timeoutMs} ms of ${signal}\n--- stderr ---\n${stderr}`);
      }
      return outcome;
    },
    // Hard crash: no draining, no shutdown code runs.
    kill() {
      return server.stop({ signal: "SIGKILL" });
    },
    // Stops the process if still running and removes the data dir if the
    // server created it. For after() hooks; never throws on a stuck process.
    async cleanup() {
      if (server.running) {
        try {
          await server.stop();
        } catch {
          // already SIGKILLed by stop()
        }
      }
      if (ownsDataDir) removeTempDir(dir);
    },
  };
  return server;
}

// Runs a one-shot billingd command (not a server) and resolves with its output;
// rejects with its stderr when it fails or takes longer than `timeoutMs`.
export function runBillingd(args, { timeoutMs = 30_000 } = {}) {
  requireBillingd();
  return new Promise((resolve, reject) => {
    execFile(BILLINGD, args, { timeout: timeoutMs, maxBuffer: 256 << 20, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`billingd ${args.join(" ")} failed (${err.code ?? err.signal}): ${err.message}\n--- stderr ---\n${stderr}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

// The stored windows of one customer, read from a stopped server's data dir
// with --dump-windows: one proto3-JSON BillingMetrics object per line.
export async function dumpWindows(dataDir, customerId) {
  const { stdout } = await runBillingd([`--data-dir=${dataDir}`, `--dump-windows=${customerId}`]);
  return stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line, i) => {
      try {
        return JSON.parse(line);
      } catch (err) {
        throw new Error(`--dump-windows=${customerId}: line ${i + 1} is not JSON (${err.message}): ${line}`);
      }
    });
}
