// Raw HTTP for protocol-level tests (status codes, content types, malformed
// bodies), to 127.0.0.1 only.
import assert from "node:assert/strict";
import http from "node:http";

// POST (or `method`) `body` to `path` and collect the whole answer. Uses
// node:http with a fresh connection per call so that a server closing the
// connection after an error cannot disturb later requests.
export function rawRequest(baseUrl, path, { method = "POST", headers = {}, body, timeoutMs = 10_000 } = {}) {
  const url = new URL(path, baseUrl);
  assert.equal(url.hostname, "127.0.0.1", "raw requests go to loopback only");
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) || body instanceof Uint8Array ? Buffer.from(body) : Buffer.from(String(body));
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method,
        agent: false,
        headers: { ...(payload ? { "content-length": payload.length } : {}), ...headers },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString("utf8");
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, contentType: res.headers["content-type"] ?? "", body: buf, text, json });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    if (payload) req.write(payload);
    req.end();
  });
}

// Asserts a Connect unary error: HTTP `status`, a JSON body with `code` and a
// string message.
export function assertConnectError(res, status, code) {
  const what = `HTTP ${res.status} ${res.contentType} ${res.text.slice(0, 300)}`;
  assert.equal(res.status, status, `expected HTTP ${status}, got ${what}`);
  assert.match(res.contentType, /^application\/json/, `error content type: ${what}`);
  assert.ok(res.json && typeof res.json === "object", `error body is not a JSON object: ${what}`);
  assert.equal(res.json.code, code, `error code: ${what}`);
  if ("message" in res.json) assert.equal(typeof res.json.message, "string", `error message: ${what}`);
}
