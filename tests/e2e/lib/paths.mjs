// Where the repository, the billingd binary and the npm-installed tools are.
// CTest passes REPO_ROOT and BILLINGD; running `node --test` by hand falls back
// to this checkout and build/billingd.
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

export const E2E_DIR = path.resolve(here, "..");
export const REPO_ROOT = path.resolve(process.env.REPO_ROOT ?? path.join(E2E_DIR, "..", ".."));
export const PROTOCOL_DIR = path.join(REPO_ROOT, "protocol");
export const BILLINGD = path.resolve(process.env.BILLINGD ?? path.join(REPO_ROOT, "build", "billingd"));
export const BUF = path.join(E2E_DIR, "node_modules", ".bin", "buf");

export function requireNodeModules() {
  if (!existsSync(path.join(E2E_DIR, "node_modules", "@connectrpc", "connect-node")) || !existsSync(BUF)) {
    throw new Error(`tests/e2e/node_modules is missing: run scripts/install-deps.sh (npm ci in ${E2E_DIR})`);
  }
}

export function requireBillingd() {
  if (!existsSync(BILLINGD)) {
    throw new Error(`billingd not found at ${BILLINGD}: build it (cmake --build build --target billingd) or set BILLINGD`);
  }
}
