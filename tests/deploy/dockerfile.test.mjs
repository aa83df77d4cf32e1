// The Dockerfile, checked without a Docker engine (none runs here): what it
// copies exists, is not ignored and is enough for cmake to configure; its
// packages follow scripts/install-deps.sh and the libraries billingd links; it
// runs as the non-root user the helm chart expects. The image is never built
// here, so a failing apt-get or compiler in the image is not caught.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import { aptPackages, copyOf, dockerignore, parseDockerfile, stagesOf } from "./lib/dockerfile.mjs";
import { repoRoot } from "./lib/helm.mjs";

const read = (file) => readFileSync(path.join(repoRoot, file), "utf8");
const stages = stagesOf(parseDockerfile(read("Dockerfile")));
const [build, runtime] = [stages[0], stages.at(-1)];
const ignored = dockerignore(read(".dockerignore"));
const copies = build.instructions.filter((i) => i.name === "COPY").map(copyOf);
const chartValues = parseYaml(read("helm/values.yaml"));

// install-deps.sh packages the image does not need to build billingd, and why.
const testOnlyPackages = new Map([
  ["clang", "fuzz targets"],
  ["libclang-rt-14-dev", "fuzz targets' sanitizer runtimes"],
  ["git", "development"],
  ["curl", "development"],
  ["ca-certificates", "npm and apt over https on the host"],
  ["openssl", "the TLS e2e tests make certificates with the CLI"],
  ["chromium", "the dashboard's browser test (e2e.ui)"],
  ["postgresql", "the PostgreSQL baseline of bench/pg_compare.sh"],
  ["etcd-server", "the real etcd that unit.cluster and e2e.etcd_cluster start (billingd talks to an etcd it is given)"],
]);

describe("Dockerfile", () => {
  test("multi-stage on Debian bookworm: built on bookworm, run on bookworm-slim", () => {
    assert.ok(stages.length >= 2);
    assert.equal(build.image, "debian:bookworm");
    assert.equal(runtime.image, "debian:bookworm-slim");
    for (const stage of stages) assert.match(stage.image, /^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$/);
  });

  test("every COPY source exists in the context and is not ignored", () => {
    for (const { from, sources } of copies) {
      assert.equal(from, undefined);
      for (const source of sources) {
        assert.ok(existsSync(path.join(repoRoot, source)), `${source} does not exist`);
        assert.ok(!ignored(source), `${source} is excluded by .dockerignore`);
      }
    }
    assert.ok(ignored("tests/e2e/node_modules/x") && ignored("build/billingd") && ignored(".git/HEAD"));
  });

  test("what the build stage copies is enough for cmake to configure", () => {
    const context = mkdtempSync(path.join(tmpdir(), "billing-docker-context-"));
    try {
      for (const { sources, destination } of copies) {
        for (const source of sources) {
          const target = path.join(context, destination.endsWith("/") ? path.basename(source) : destination);
          cpSync(path.join(repoRoot, source), target, {
            recursive: true,
            filter: (file) => !ignored(path.relative(repoRoot, file) || "."),
          });
        }
      }
      const configure = spawnSync("cmake", ["-S", context, "-B", path.join(context, "build"), "-G", "Ninja"],
                                  { encoding: "utf8", timeout: 120_000 });
      assert.equal(configure.status, 0, configure.stdout + configure.stderr);
    } finally {
      rmSync(context, { recursive: true, force: true });
    }
  });

  test("the build stage installs install-deps.sh's packages, minus test-only ones", () => {
    const script = read("scripts/install-deps.sh");
    const listed = /debian_packages=\(([^)]*)\)/.exec(script)[1].split(/\s+/).filter(Boolean);
    const installed = aptPackages(build);
    assert.deepEqual(installed.filter((p) => !listed.includes(p)), [], "not in install-deps.sh");
    const left = listed.filter((p) => !installed.includes(p));
    assert.deepEqual(left.sort(), [...testOnlyPackages.keys()].sort(),
                     "a package install-deps.sh gained: install it in the image or list it as test-only");
  });

  test("the runtime stage installs the package of every library billingd links", (t) => {
    if (!process.env.BILLINGD) return t.skip("BILLINGD is not set (CTest sets it)");
    if (!/VERSION_CODENAME=bookworm/.test(readFileSync("/etc/os-release", "utf8"))) {
      return t.skip("the host is not Debian bookworm: its libraries say nothing about the image's");
    }
    const installed = aptPackages(runtime);
    const ldd = execFileSync("ldd", [process.env.BILLINGD], { encoding: "utf8" });
    assert.doesNotMatch(ldd, /not found/);
    const libraries = [...ldd.matchAll(/=>\s+(\/\S+)/g)].map((m) => m[1]);
    assert.ok(libraries.length > 5);
    // dpkg knows a file under the path it installed (usrmerge: /lib links to /usr/lib).
    const realPaths = new Map(libraries.map((l) => [l, execFileSync("readlink", ["-f", l], { encoding: "utf8" }).trim()]));
    const search = spawnSync("dpkg", ["-S", ...libraries, ...realPaths.values()], { encoding: "utf8" });
    const owners = new Map(search.stdout.split("\n").filter(Boolean).map((line) => {
      const [owner, file] = line.split(": ");
      return [file, owner.split(":")[0]];
    }));
    for (const library of libraries) {
      const owner = owners.get(library) ?? owners.get(realPaths.get(library));
      assert.ok(owner, `no Debian package owns ${library}`);
      if (owner === "libc6") continue; // in every Debian image
      assert.ok(installed.includes(owner), `${library} comes from ${owner}, which the runtime stage does not install`);
    }
  });

  test("runs billingd as the non-root user the chart expects, with its ports and volume", () => {
    const last = (name) => runtime.instructions.filter((i) => i.name === name).at(-1)?.args;
    const [uid, gid] = last("USER").split(":").map(Number);
    assert.ok(uid > 0 && gid > 0, "USER must be numeric and not root (runAsNonRoot checks a numeric uid)");
    const runs = runtime.instructions.filter((i) => i.name === "RUN").map((i) => i.args).join(" ");
    assert.match(runs, new RegExp(`useradd .*--uid ${uid}\\b`), "the uid must exist in /etc/passwd");
    assert.equal(chartValues.podSecurityContext.runAsUser, uid);
    assert.equal(chartValues.podSecurityContext.runAsGroup, gid);
    assert.equal(chartValues.podSecurityContext.fsGroup, gid);

    const exposed = last("EXPOSE").split(/\s+/).map(Number);
    assert.ok(exposed.includes(chartValues.httpPort) && exposed.includes(chartValues.cluster.port), exposed.join());
    assert.deepEqual(JSON.parse(last("VOLUME")), ["/data"]);
    const binary = runtime.instructions.map((i) => i.name === "COPY" && copyOf(i)).find((c) => c && c.from === build.alias);
    assert.deepEqual(binary?.sources, ["/src/build/billingd"]);
    assert.deepEqual(JSON.parse(last("ENTRYPOINT")), [binary.destination]);
    assert.match(build.instructions.map((i) => i.args).join(" "), /cmake --build build --target billingd/);
  });

  test("a ui stage builds the dashboard and the runtime serves it from --ui-dir's default", () => {
    const ui = stages.find((s) => s.alias === "ui");
    assert.ok(ui, "no stage named ui");
    assert.ok(aptPackages(ui).includes("nodejs") && aptPackages(ui).includes("npm"));
    const uiCopies = ui.instructions.filter((i) => i.name === "COPY").map(copyOf);
    for (const source of ["protocol", "ui"]) {
      assert.ok(uiCopies.some((c) => c.sources.includes(source)), `the ui stage does not copy ${source}`);
      assert.ok(!ignored(source) && ignored(`${source}/node_modules/x`));
    }
    assert.match(ui.instructions.map((i) => i.args).join(" "), /npm ci .*node build\.mjs --out=\/src\/build\/ui/);
    const served = runtime.instructions.map((i) => i.name === "COPY" && copyOf(i)).find((c) => c && c.from === "ui");
    assert.deepEqual(served?.sources, ["/src/build/ui"]);
    const binary = runtime.instructions.map((i) => i.name === "COPY" && copyOf(i)).find((c) => c && c.from === build.alias);
    assert.equal(served.destination, path.join(path.dirname(binary.destination), "ui"));
  });
});
