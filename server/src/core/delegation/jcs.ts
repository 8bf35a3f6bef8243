// Canonical JSON (RFC 8785, JCS) for the JSON subset delegations carry, and a bounded checker that
// turns parsed JSON (`unknown`) into that subset. The subset is null, booleans, safe integers,
// well-formed strings, arrays and plain objects: floats are refused because their shortest form is
// where JSON implementations (JS, Rust serde_jcs) are most likely to disagree byte for byte.

import { OpenKeyError } from '../errors.ts';

export type JsonValue = null | boolean | number | string | readonly JsonValue[] | JsonObject;
export interface JsonObject {
  readonly [key: string]: JsonValue;
}

export interface JsonBounds {
  /** Deepest nesting of arrays/objects (the top-level value is depth 1). */
  readonly maxDepth: number;
  /** Most values (every scalar, array and object counts one). */
  readonly maxNodes: number;
  /** Longest string (keys and values), in UTF-16 code units. */
  readonly maxStringLength: number;
  /** Most members of one array or object. */
  readonly maxMembers: number;
}

const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/** Object keys are printable ASCII so every implementation sorts them the same way (RFC 8785 §3.2.3). */
const KEY_RE = /^[\x20-\x7e]+$/;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks that `value` is in the JSON subset and within `bounds`, and returns a deep copy built only
 * from own enumerable data. MALFORMED_REQUEST for values outside the subset, PAYLOAD_TOO_LARGE for
 * exceeded bounds.
 */
export function checkJson(value: unknown, bounds: JsonBounds, label: string): JsonValue {
  let nodes = 0;
  const walk = (v: unknown, depth: number): JsonValue => {
    if (++nodes > bounds.maxNodes) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: more than ${bounds.maxNodes} values`);
    if (depth > bounds.maxDepth) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: nested deeper than ${bounds.maxDepth}`);
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: numbers must be safe integers`);
      return v === 0 ? 0 : v; // -0 and 0 are one value
    }
    if (typeof v === 'string') return checkString(v, bounds.maxStringLength, label);
    if (Array.isArray(v)) {
      if (v.length > bounds.maxMembers) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: array longer than ${bounds.maxMembers}`);
      const out: JsonValue[] = [];
      for (let i = 0; i < v.length; i++) out.push(walk(v[i], depth + 1));
      return out;
    }
    if (isPlainObject(v)) {
      const keys = Object.keys(v);
      if (keys.length > bounds.maxMembers) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: object with more than ${bounds.maxMembers} members`);
      const entries: [string, JsonValue][] = [];
      for (const k of keys) {
        if (!KEY_RE.test(k)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: object keys must be printable ASCII`);
        checkString(k, bounds.maxStringLength, label);
        entries.push([k, walk(v[k], depth + 1)]);
      }
      return Object.fromEntries(entries);
    }
    throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not a JSON value`);
  };
  return walk(value, 1);
}

function checkString(s: string, max: number, label: string): string {
  if (s.length > max) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: string longer than ${max}`);
  if (LONE_SURROGATE_RE.test(s)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: string with a lone surrogate`);
  return s;
}

/**
 * RFC 8785 serialization of a value already in the subset: object members sorted by UTF-16 code
 * units (§3.2.3), strings and integers as ECMAScript JSON.stringify writes them (§3.2.2), no
 * whitespace.
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'number' || typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v: JsonValue) => canonicalJson(v)).join(',')}]`;
  const obj = value as JsonObject;
  // Array.prototype.sort without a comparator orders by UTF-16 code units, exactly as JCS requires.
  const keys = Object.keys(obj).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k] as JsonValue)}`).join(',')}}`;
}

/** JSON.parse of at most `maxChars` characters into `unknown`; syntax errors are MALFORMED_REQUEST. */
export function parseJsonText(text: string, maxChars: number, label: string): unknown {
  if (text.length > maxChars) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: ${text.length} > ${maxChars} characters`);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not JSON`, { cause: e });
  }
}

/** Strict UTF-8 decoding (a malformed sequence is MALFORMED_REQUEST, never U+FFFD). */
export function decodeUtf8(bytes: Uint8Array, label: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (e) {
    throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not UTF-8`, { cause: e });
  }
}
