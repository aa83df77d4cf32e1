// Validates rendered manifests against the Kubernetes API schemas packaged by
// kubernetes-models (JSON schemas generated from Kubernetes' OpenAPI, compiled
// with ajv), and rejects fields the schema does not know, as `kubectl
// --validate=strict` would: a misspelled field (readinesProbe) passes plain JSON
// schema validation and is then silently dropped by the API server.
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";

// The kinds the chart renders; a template of a new kind must be added here.
const models = new Map([
  ["apps/v1 StatefulSet", StatefulSet],
  ["v1 ConfigMap", ConfigMap],
  ["v1 Service", Service],
  ["policy/v1 PodDisruptionBudget", PodDisruptionBudget],
]);

// The compiled validators read every property their schema defines (to test it
// for undefined) and enumerate the keys of maps (labels, annotations, data). So
// wrapping the manifest in proxies that record those reads tells which keys of
// an object the schema knows: any own key never read is unknown. An object
// whose keys the validator neither read nor enumerated is free-form in the
// schema (e.g. preserve-unknown-fields) and is not judged.
function trackReads(value, path, records) {
  if (value === null || typeof value !== "object") return value;
  const record = { path, value, reads: new Set(), enumerated: false };
  records.push(record);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      const result = Reflect.get(target, key, receiver);
      if (typeof key !== "string" || !Object.hasOwn(target, key)) return result;
      record.reads.add(key);
      if (!children.has(key)) {
        const childPath = Array.isArray(target) ? `${path}[${key}]` : `${path}.${key}`;
        children.set(key, trackReads(result, childPath, records));
      }
      return children.get(key);
    },
    has(target, key) {
      if (typeof key === "string") record.reads.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      record.enumerated = true;
      return Reflect.ownKeys(target);
    },
  });
}

// Returns a list of problems (empty when the manifest is valid and strict).
export function validateManifest(manifest) {
  const kind = `${manifest?.apiVersion} ${manifest?.kind}`;
  const model = models.get(kind);
  if (!model) return [`no schema for ${kind} (add it to tests/deploy/lib/k8s_schema.mjs)`];
  const name = `${manifest.kind}/${manifest.metadata?.name}`;
  const records = [];
  try {
    model.prototype.validate.call(trackReads(manifest, "", records));
  } catch (error) {
    return [`${name}: ${error.message}`];
  }
  const unknown = [];
  for (const { path, value, reads, enumerated } of records) {
    if (Array.isArray(value) || enumerated || reads.size === 0) continue;
    for (const key of Object.keys(value)) {
      if (!reads.has(key)) unknown.push(`${name}: unknown field ${path}.${key}`.replace(": unknown field .", ": unknown field "));
    }
  }
  return unknown;
}
