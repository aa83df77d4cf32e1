// Certificates for TLS tests, made at test time with the openssl CLI: a test
// CA, a server certificate for 127.0.0.1 signed by it, a client certificate
// signed by it, and a client certificate from an unrelated CA.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { makeTempDir } from "./server.mjs";

function openssl(args, cwd) {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"], timeout: 30_000 });
}

export function makeCa(dir, name) {
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.crt`], dir);
}

// `${name}.crt`/`.key` signed by `ca`: a server certificate for `serverIp`, or
// a client one; `uri` adds a URI SAN (a SPIFFE ID, as in an X.509 SVID);
// `days: -1` makes one that has already expired; `cn` overrides the subject CN.
export function makeSigned(dir, ca, name, { serverIp, clientToo = false, uri, days = 2, cn = name } = {}) {
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=${cn}`, "-keyout", `${name}.key`, "-out", `${name}.csr`], dir);
  const usage = clientToo ? "serverAuth,clientAuth" : "serverAuth";
  let ext = serverIp ? `subjectAltName=IP:${serverIp}\nextendedKeyUsage=${usage}\n` : "extendedKeyUsage=clientAuth\n";
  if (uri) ext += `subjectAltName=URI:${uri}\n`;
  writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-days", String(days), "-extfile", `${name}.ext`, "-out", `${name}.crt`], dir);
}

// A cluster node's certificate is used both ways (it accepts and opens
// node-to-node connections): node (signed by test-ca) and stranger-node
// (signed by stranger-ca), in makeCertificates({ nodes: true }).
// {dir, file(name), pem(name)} with test-ca, server, client, stranger-ca, stranger.
export function makeCertificates({ nodes = false } = {}) {
  const dir = makeTempDir("billingd-tls-");
  makeCa(dir, "test-ca");
  makeSigned(dir, "test-ca", "server", { serverIp: "127.0.0.1" });
  makeSigned(dir, "test-ca", "client");
  makeCa(dir, "stranger-ca");
  makeSigned(dir, "stranger-ca", "stranger");
  if (nodes) {
    makeSigned(dir, "test-ca", "node", { serverIp: "127.0.0.1", clientToo: true });
    makeSigned(dir, "stranger-ca", "stranger-node", { serverIp: "127.0.0.1", clientToo: true });
  }
  const file = (name) => path.join(dir, name);
  return { dir, file, pem: (name) => readFileSync(file(name)) };
}
