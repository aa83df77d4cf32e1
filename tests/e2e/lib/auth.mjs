// Bearer tokens for tests: a token file (digests only, as billingd wants it)
// and client options that send a token.
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { makeTempDir } from "./server.mjs";

// A fresh random token per scope set: {name: {token, scopes}}.
export function makeTokens(scopesByName) {
  const tokens = {};
  for (const [name, scopes] of Object.entries(scopesByName)) tokens[name] = { token: randomBytes(24).toString("base64url"), scopes };
  return tokens;
}

export const sha256Hex = (text) => createHash("sha256").update(text).digest("hex");

// Writes the token file for `tokens` and returns the --auth-tokens-file flag.
export function tokensFileArg(tokens) {
  const file = path.join(makeTempDir("billingd-tokens-"), "tokens");
  const lines = ["# test tokens: sha256(token) scopes name"];
  for (const [name, { token, scopes }] of Object.entries(tokens)) lines.push(`${sha256Hex(token)} ${scopes} ${name}`);
  writeFileSync(file, lines.join("\n") + "\n");
  return `--auth-tokens-file=${file}`;
}

// Client options (for collectorClients/adminClient/queryClient) sending `token`.
export function bearer(token) {
  return {
    interceptors: [
      (next) => async (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  };
}
