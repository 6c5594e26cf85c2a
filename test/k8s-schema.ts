// Strict, offline validation of rendered Kubernetes objects against the vendored JSON Schemas in
// test/schemas/ (see the README there), with ajv: an unknown field fails, as `kubectl apply`'s strict
// field validation does.
//
// The schemas are OpenAPI-flavoured, so ajv (strict mode) is taught their extensions explicitly; a keyword
// that is not listed here makes compilation fail, rather than being ignored silently:
// - `nullable` is ajv's own (OpenAPI) keyword;
// - `x-kubernetes-list-type` is checked: `set` items unique, `map` items unique on `x-kubernetes-list-map-keys`;
// - `x-kubernetes-validations` (CEL) is checked for the rules these schemas use (a Go duration >= 1ms, and the
//   DestinationRule's no-wildcard and non-empty-key rules);
//   any other rule fails compilation, so a schema update cannot quietly skip one;
// - `x-kubernetes-preserve-unknown-fields: true` lifts `additionalProperties: false` where it stands;
// - the rest are merge/patch annotations with nothing to check.
// The Istio CRD schemas describe only `spec` and `status` and leave the root open, so their root is rebuilt
// here: apiVersion and kind pinned, metadata as Kubernetes' ObjectMeta (from the Deployment schema),
// and no other top-level key.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { DataValidateFunction } from 'ajv/dist/types/index.js';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const schemaDir = join(dirname(fileURLToPath(import.meta.url)), 'schemas');

function loadSchema(file: string): JsonObject {
  return JSON.parse(readFileSync(join(schemaDir, file), 'utf8')) as JsonObject;
}

const ANNOTATION_KEYWORDS = [
  'x-kubernetes-group-version-kind',
  'x-kubernetes-patch-strategy',
  'x-kubernetes-patch-merge-key',
  'x-kubernetes-map-type',
  'x-kubernetes-unions',
  'x-kubernetes-list-map-keys', // read by x-kubernetes-list-type
  'x-kubernetes-int-or-string', // always beside an anyOf [integer, string] that does the check
  'x-kubernetes-preserve-unknown-fields', // applied by preprocess()
];

/** A Go duration (time.ParseDuration), in nanoseconds; undefined if it is not one. */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, μs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const match = /^([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|0)$/.exec(text);
  if (!match) return undefined;
  if (match[2] === '0') return 0;
  let total = 0;
  for (const [, value, unit] of match[2]!.matchAll(/(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(value) * units[unit!]!;
  }
  return match[1] === '-' ? -total : total;
}

/** The CEL rules these schemas use, as predicates on the value. */
const CEL_RULES: Record<string, (value: unknown) => boolean> = {
  "duration(self) >= duration('1ms')": (value) => {
    const ns = typeof value === 'string' ? parseGoDuration(value) : undefined;
    return ns !== undefined && ns >= 1e6;
  },
  // DestinationRule: a `host` without wildcards, subset `labels` keys neither empty nor wildcards
  '!self.contains("*")': (value) => typeof value === 'string' && !value.includes('*'),
  'self.all(key, !key.contains("*"))': (value) => typeof value === 'object' && value !== null && Object.keys(value).every((k) => !k.includes('*')),
  'self.all(key, key.size() != 0)': (value) => typeof value === 'object' && value !== null && Object.keys(value).every((k) => k.length !== 0),
};

function preprocess(node: Json): Json {
  if (Array.isArray(node)) return node.map(preprocess);
  if (node === null || typeof node !== 'object') return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === '$schema') continue; // draft-04 style "http://json-schema.org/schema#": ajv's default draft reads them
    out[key] = preprocess(value);
  }
  if (out['x-kubernetes-preserve-unknown-fields'] === true && out.additionalProperties === false) delete out.additionalProperties;
  return out;
}

function newAjv(): Ajv {
  const ajv = new Ajv({
    strict: true,
    strictTypes: false, // generated schemas put `properties` beside oneOf branches without `type: object`
    strictRequired: false, // Istio's oneOf branches say `required: [x]` of properties defined one level up
    allowUnionTypes: true, // Kubernetes' ["string", "null"]
    allErrors: true,
  });
  ajv.addVocabulary(ANNOTATION_KEYWORDS);
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat('double', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);
  ajv.addFormat('binary', true);
  // a Secret's `data` values: standard base64 as Go's decoder reads it, which skips line breaks (kustomize
  // wraps long values at 70 characters)
  ajv.addFormat('byte', {
    type: 'string',
    validate: (s: string) => {
      const b64 = s.replace(/[\r\n]/g, '');
      return b64.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(b64);
    },
  });
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-type',
    type: 'array',
    schemaType: 'string',
    errors: true,
    compile(listType: string, parentSchema) {
      if (listType === 'atomic') return () => true;
      const keys = (parentSchema as JsonObject)['x-kubernetes-list-map-keys'];
      if (listType === 'map' && !Array.isArray(keys)) throw new Error('x-kubernetes-list-type: map without x-kubernetes-list-map-keys');
      const identity = (item: unknown): string =>
        listType === 'set' ? JSON.stringify(item) : JSON.stringify((keys as string[]).map((k) => (item as Record<string, unknown>)?.[k] ?? null));
      if (listType !== 'set' && listType !== 'map') throw new Error(`unknown x-kubernetes-list-type ${listType}`);
      const validate: DataValidateFunction = (items: unknown[]): boolean => {
        validate.errors = undefined;
        const seen = new Set<string>();
        for (const item of items) {
          const id = identity(item);
          if (seen.has(id)) {
            validate.errors = [{ keyword: 'x-kubernetes-list-type', message: `duplicate entry ${id} in a list of type ${listType}`, params: { id } }];
            return false;
          }
          seen.add(id);
        }
        return true;
      };
      return validate;
    },
  });
  ajv.addKeyword({
    keyword: 'x-kubernetes-validations',
    schemaType: 'array',
    errors: true,
    compile(rules: Array<{ rule: string; message?: string }>) {
      const checks = rules.map(({ rule, message }) => {
        const check = CEL_RULES[rule];
        if (!check) throw new Error(`x-kubernetes-validations: CEL rule not supported here: ${rule}`);
        return { check, message: message ?? rule };
      });
      const validate: DataValidateFunction = (value: unknown): boolean => {
        const failed = checks.find(({ check }) => !check(value));
        validate.errors = failed ? [{ keyword: 'x-kubernetes-validations', message: failed.message, params: {} }] : undefined;
        return !failed;
      };
      return validate;
    },
  });
  return ajv;
}

export interface KubeObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: { name?: unknown; [key: string]: unknown };
  [key: string]: unknown;
}

export class SchemaSet {
  private readonly validators = new Map<string, ValidateFunction>();

  constructor() {
    const ajv = newAjv();
    const deployment = preprocess(loadSchema('deployment-apps-v1.json')) as JsonObject;
    const service = preprocess(loadSchema('service-v1.json')) as JsonObject;
    const secret = preprocess(loadSchema('secret-v1.json')) as JsonObject;
    const objectMeta = (deployment.properties as JsonObject).metadata!;
    const istioRoot = (crd: JsonObject, apiVersions: string[], kind: string): JsonObject => ({
      type: 'object',
      additionalProperties: false,
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
      properties: {
        apiVersion: { enum: apiVersions },
        kind: { const: kind },
        metadata: objectMeta,
        spec: (crd.properties as JsonObject).spec!,
        status: (crd.properties as JsonObject).status!,
      },
    });
    const virtualService = istioRoot(
      preprocess(loadSchema('virtualservice_v1.json')) as JsonObject,
      // byte-identical schemas in the source (test/schemas/README.md)
      ['networking.istio.io/v1', 'networking.istio.io/v1beta1'],
      'VirtualService',
    );
    this.validators.set('apps/v1/Deployment', ajv.compile(deployment));
    this.validators.set('v1/Service', ajv.compile(service));
    this.validators.set('v1/Secret', ajv.compile(secret));
    const vs = ajv.compile(virtualService);
    this.validators.set('networking.istio.io/v1/VirtualService', vs);
    this.validators.set('networking.istio.io/v1beta1/VirtualService', vs);
    // the manifests' version only (v1beta1 and v1alpha3 are byte-identical in the source: test/schemas/README.md)
    const gateway = istioRoot(preprocess(loadSchema('gateway_v1.json')) as JsonObject, ['networking.istio.io/v1'], 'Gateway');
    this.validators.set('networking.istio.io/v1/Gateway', ajv.compile(gateway));
    const destinationRule = istioRoot(preprocess(loadSchema('destinationrule_v1.json')) as JsonObject, ['networking.istio.io/v1'], 'DestinationRule');
    this.validators.set('networking.istio.io/v1/DestinationRule', ajv.compile(destinationRule));
  }

  kinds(): string[] {
    return [...this.validators.keys()];
  }

  /** Every problem with the object, one line each (`Kind/name: /path message`); empty when valid. */
  validate(object: KubeObject): string[] {
    const id = `${String(object.kind)}/${String(object.metadata?.name ?? '?')}`;
    const validator = this.validators.get(`${String(object.apiVersion)}/${String(object.kind)}`);
    if (!validator) return [`${id}: no vendored schema for apiVersion ${String(object.apiVersion)} kind ${String(object.kind)}`];
    if (validator(object)) return [];
    return (validator.errors ?? []).map((e) => `${id}: ${e.instancePath || '/'} ${e.message ?? e.keyword}${describeParams(e)}`);
  }
}

function describeParams(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `: ${JSON.stringify(p.additionalProperty)}`;
  if (e.keyword === 'enum' || e.keyword === 'const') return `: ${JSON.stringify(p.allowedValues ?? p.allowedValue)}`;
  return '';
}
