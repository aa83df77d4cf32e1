// Just enough of Dockerfile and .dockerignore syntax to check ours without a
// Docker engine: instructions with line continuations, stages, the packages of
// `apt-get install`, and .dockerignore patterns (*, ?, ** and ! exceptions).

// [{ name, stage, args }] per instruction; stage is the index of its FROM.
export function parseDockerfile(text) {
  const logical = text
    .split("\n")
    .filter((line) => !/^\s*#/.test(line))
    .join("\n")
    .replace(/\\\n/g, " ");
  const instructions = [];
  let stage = -1;
  for (const line of logical.split("\n")) {
    const match = /^\s*([A-Za-z]+)\s+(.*?)\s*$/.exec(line);
    if (!match) continue;
    const name = match[1].toUpperCase();
    if (name === "FROM") stage += 1;
    instructions.push({ name, stage, args: match[2] });
  }
  return instructions;
}

// The stages: { image, alias, instructions }.
export function stagesOf(instructions) {
  const stages = [];
  for (const instruction of instructions) {
    if (instruction.name === "FROM") {
      const [image, as, alias] = instruction.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      stages.push({ image, alias: as?.toUpperCase() === "AS" ? alias : undefined, instructions: [] });
    } else {
      stages[instruction.stage].instructions.push(instruction);
    }
  }
  return stages;
}

// Packages named by `apt-get install` in a stage's RUN instructions.
export function aptPackages(stage) {
  const packages = [];
  for (const { name, args } of stage.instructions) {
    if (name !== "RUN") continue;
    for (const command of args.split(/&&|;/)) {
      const words = command.trim().split(/\s+/);
      const install = words.indexOf("install");
      if (!words.includes("apt-get") || install < 0) continue;
      packages.push(...words.slice(install + 1).filter((w) => !w.startsWith("-")));
    }
  }
  return packages;
}

// COPY sources and destination (JSON or plain form), and its --from stage.
export function copyOf(instruction) {
  const words = instruction.args.startsWith("[")
    ? JSON.parse(instruction.args)
    : instruction.args.split(/\s+/);
  const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
  const paths = words.filter((w) => !w.startsWith("--"));
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1) };
}

function patternToRegExp(pattern) {
  const body = pattern
    .split("/")
    .map((segment) =>
      segment === "**"
        ? "\u0000"
        : segment.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]"))
    .join("/")
    .replace(/\u0000\//g, "(?:.*/)?")
    .replace(/\/\u0000/g, "(?:/.*)?")
    .replace(/\u0000/g, ".*");
  return new RegExp(`^${body}$`);
}

// A predicate: is this path (relative to the context, with /) excluded? As in
// Docker, a pattern that matches a directory excludes everything below it, and
// the last matching pattern decides.
export function dockerignore(text) {
  const rules = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const negated = line.startsWith("!");
      const pattern = (negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, "");
      return { negated, regexp: patternToRegExp(pattern) };
    });
  return (relativePath) => {
    const segments = relativePath.split("/");
    const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join("/"));
    let excluded = false;
    for (const { negated, regexp } of rules) {
      if (prefixes.some((prefix) => regexp.test(prefix))) excluded = !negated;
    }
    return excluded;
  };
}
