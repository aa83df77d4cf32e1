// Builds the dashboard into build/ui (or --out=DIR): TypeScript generated
// from protocol/ by `buf generate` (protoc-gen-es), type-checked by tsc,
// bundled and minified by esbuild with content-hashed names, and an
// index.html that names them. billingd serves the directory at /ui/.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..");
const outArg = process.argv.find((a) => a.startsWith("--out="));
const out = path.resolve(outArg ? outArg.slice("--out=".length) : path.join(repo, "build", "ui"));
// Next to the output, where tsconfig.json's @gen/* path points for build/ui.
const gen = path.join(path.dirname(out), "ui-gen");
const bin = (name) => path.join(here, "node_modules", ".bin", name);

rmSync(gen, { recursive: true, force: true });
execFileSync(bin("buf"), ["generate", path.join(repo, "protocol"), "--template", path.join(here, "buf.gen.yaml"), "-o", gen],
  { cwd: here, stdio: "inherit" });
// The generated files import @bufbuild/protobuf: from here they find this folder's.
symlinkSync(path.join(here, "node_modules"), path.join(gen, "node_modules"), "dir");
if (gen === path.join(repo, "build", "ui-gen")) {
  execFileSync(bin("tsc"), ["-p", path.join(here, "tsconfig.json")], { cwd: here, stdio: "inherit" });
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await esbuild.build({
  entryPoints: [path.join(here, "src", "main.ts")],
  bundle: true,
  minify: true,
  sourcemap: true,
  format: "esm",
  target: ["es2022"],
  outdir: out,
  entryNames: "[name]-[hash]",
  metafile: true,
  alias: { "@gen": gen },
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const script = outputs.find((f) => f.endsWith(".js"));
const style = outputs.find((f) => f.endsWith(".css"));
if (!script || !style) throw new Error(`esbuild produced ${outputs.join(", ")}: no script or stylesheet`);
const html = readFileSync(path.join(here, "src", "index.html"), "utf8")
  .replace("{{script}}", script)
  .replace("{{style}}", style);
writeFileSync(path.join(out, "index.html"), html);
console.log(`ui: built ${[...outputs, "index.html"].join(", ")} into ${out}`);
