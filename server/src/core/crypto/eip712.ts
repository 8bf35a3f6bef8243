// EIP-712 typed structured data (eips.ethereum.org/EIPS/eip-712): parse a document
// {types, primaryType, domain, message} from JSON text or an unknown value, validate it against the
// spec and explicit bounds, and hash it: digest = keccak256(0x19 0x01 ‖ domainSeparator ‖
// hashStruct(message)). A `types` object compiles once into encoding plans, cached by canonical form.

import { OpenKeyError, type ErrorCode } from '../errors.ts';
import { parseAddress } from './address.ts';
import { keccak256, keccak256Into } from './keccak.ts';

// ---- Bounds ------------------------------------------------------------------------------------

export interface Eip712Limits {
  /** Longest JSON text accepted, in UTF-16 code units (strings) or bytes (Uint8Array). */
  readonly maxJsonLength: number;
  /** Most struct types in `types` (EIP712Domain included). */
  readonly maxTypes: number;
  /** Most fields in one struct type. */
  readonly maxFieldsPerType: number;
  /** Longest type or field name, and longest type string (with array suffixes). */
  readonly maxNameLength: number;
  /** Deepest nesting of structs and arrays in a value; also the most array dimensions in a type. */
  readonly maxDepth: number;
  /** Longest array, fixed or dynamic. */
  readonly maxArrayLength: number;
  /** Most values (atomic, struct or array) encoded for one document. */
  readonly maxValues: number;
  /** Most bytes of `string` and `bytes` content hashed for one document. */
  readonly maxDynamicBytes: number;
}

export const DEFAULT_EIP712_LIMITS: Eip712Limits = Object.freeze({
  maxJsonLength: 256 * 1024,
  maxTypes: 64,
  maxFieldsPerType: 64,
  maxNameLength: 128,
  maxDepth: 32,
  maxArrayLength: 4096,
  maxValues: 20_000,
  maxDynamicBytes: 256 * 1024,
});

// ---- Results -----------------------------------------------------------------------------------

/** The domain, normalized for policy: chainId as bigint, verifyingContract lowercase. */
export interface Eip712Domain {
  readonly name?: string;
  readonly version?: string;
  readonly chainId?: bigint;
  readonly verifyingContract?: string;
  readonly salt?: Uint8Array;
}

export interface TypedDataHash {
  readonly primaryType: string;
  readonly domain: Eip712Domain;
  /** The message object as received, validated against `types[primaryType]`. */
  readonly message: Readonly<Record<string, unknown>>;
  readonly domainSeparator: Uint8Array;
  /** hashStruct(message). */
  readonly structHash: Uint8Array;
  /** keccak256(0x19 0x01 ‖ domainSeparator ‖ structHash): what the key signs. */
  readonly digest: Uint8Array;
}

// ---- Internal model ----------------------------------------------------------------------------

interface Ctx {
  readonly limits: Eip712Limits;
  depth: number;
  values: number;
  dynamicBytes: number;
  readonly path: (string | number)[];
}

/** Writes the 32-byte encodeData word of `value` at out[off]. */
type Encoder = (value: unknown, ctx: Ctx, out: Uint8Array, off: number) => void;

interface FieldPlan {
  readonly name: string;
  readonly type: string;
  readonly encode: Encoder;
}

interface StructPlan {
  readonly name: string;
  fields: readonly FieldPlan[];
  encodeType: string;
  typeHash: Uint8Array;
  readonly encode: Encoder;
}

interface Schema {
  readonly structs: ReadonlyMap<string, StructPlan>;
}

interface RawField {
  readonly name: string;
  readonly type: string;
}

function fail(code: ErrorCode, ctx: Ctx | undefined, msg: string): never {
  const where = ctx === undefined || ctx.path.length === 0 ? '' : `${ctx.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').slice(1)}: `;
  throw new OpenKeyError(code, `${where}${msg}`);
}
function invalid(ctx: Ctx | undefined, msg: string): never {
  return fail('INVALID_TYPED_DATA', ctx, msg);
}

function count(ctx: Ctx): void {
  if (++ctx.values > ctx.limits.maxValues) fail('PAYLOAD_TOO_LARGE', ctx, `more than ${ctx.limits.maxValues} values`);
}
function enter(ctx: Ctx): void {
  if (++ctx.depth > ctx.limits.maxDepth) fail('PAYLOAD_TOO_LARGE', ctx, `nesting deeper than ${ctx.limits.maxDepth}`);
}
function addDynamic(ctx: Ctx, n: number): void {
  ctx.dynamicBytes += n;
  if (ctx.dynamicBytes > ctx.limits.maxDynamicBytes) fail('PAYLOAD_TOO_LARGE', ctx, `more than ${ctx.limits.maxDynamicBytes} bytes of string/bytes content`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---- Hex -----------------------------------------------------------------------------------------

const NIBBLE = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) NIBBLE[48 + i] = i;
for (let i = 0; i < 6; i++) {
  NIBBLE[65 + i] = 10 + i;
  NIBBLE[97 + i] = 10 + i;
}

/** Decodes `nbytes` bytes of hex from s[start…] into out[off…]; false on a non-hex digit. */
function decodeHexInto(s: string, start: number, nbytes: number, out: Uint8Array, off: number): boolean {
  for (let i = 0; i < nbytes; i++) {
    const a = s.charCodeAt(start + 2 * i);
    const b = s.charCodeAt(start + 2 * i + 1);
    const hi = a < 128 ? (NIBBLE[a] as number) : -1;
    const lo = b < 128 ? (NIBBLE[b] as number) : -1;
    if ((hi | lo) < 0) return false;
    out[off + i] = (hi << 4) | lo;
  }
  return true;
}

/** 0x-prefixed hex (even number of digits) or a Uint8Array, as bytes. */
function bytesValue(v: unknown, ctx: Ctx, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== 'string' || v.length % 2 !== 0 || !(v.startsWith('0x'))) return invalid(ctx, `${what} must be 0x-prefixed hex with an even number of digits`);
  const n = (v.length - 2) / 2;
  if (n > ctx.limits.maxDynamicBytes) fail('PAYLOAD_TOO_LARGE', ctx, `${what} too long`);
  const out = new Uint8Array(n);
  if (!decodeHexInto(v, 2, n, out, 0)) invalid(ctx, `${what} is not hex`);
  return out;
}

// ---- Atomic types (EIP-712 "Definition of encodeData": atomic values are encoded as 32 bytes) ----

const TWO_256 = 1n << 256n;

/** Writes v (in [−2^255, 2^256)) as a 32-byte big-endian two's-complement word. */
function writeWord(out: Uint8Array, off: number, v: bigint): void {
  const hex = (v < 0n ? TWO_256 + v : v).toString(16).padStart(64, '0');
  decodeHexInto(hex, 0, 32, out, off);
}

/** Writes a non-negative safe integer as a 32-byte word without going through BigInt. */
function writeSmall(out: Uint8Array, off: number, n: number): void {
  out.fill(0, off, off + 24);
  for (let i = 31; i >= 24; i--) {
    out[off + i] = n % 256;
    n = Math.floor(n / 256);
  }
}

const DEC_RE = /^-?(?:0|[1-9][0-9]{0,77})$/;
const HEX_INT_RE = /^0x[0-9a-fA-F]{1,64}$/;

/**
 * uint<M>/int<M>: a JSON number that is a safe integer, a decimal string ("-" allowed for int), a
 * 0x hex string (non-negative, 1–64 digits) or a bigint; range-checked against M bits.
 */
function intEncoder(signed: boolean, bits: number): Encoder {
  const hi = signed ? 1n << BigInt(bits - 1) : 1n << BigInt(bits); // exclusive upper bound
  const lo = signed ? -hi : 0n;
  const smallMax = bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** (signed ? bits - 1 : bits) - 1;
  const label = `${signed ? '' : 'u'}int${bits}`;
  return (v, ctx, out, off) => {
    count(ctx);
    if (typeof v === 'number' && v >= 0 && v <= smallMax && Number.isInteger(v)) return writeSmall(out, off, v);
    let n: bigint;
    if (typeof v === 'bigint') n = v;
    else if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) return invalid(ctx, `${label}: numbers must be safe integers; send larger values as strings`);
      n = BigInt(v);
    } else if (typeof v === 'string' && (DEC_RE.test(v) || HEX_INT_RE.test(v))) n = BigInt(v);
    else return invalid(ctx, `${label}: expected an integer (number, decimal or 0x hex string)`);
    if (n < lo || n >= hi) invalid(ctx, `${label}: out of range`);
    writeWord(out, off, n);
  };
}

function bytesNEncoder(size: number): Encoder {
  return (v, ctx, out, off) => {
    count(ctx);
    out.fill(0, off, off + 32);
    if (v instanceof Uint8Array) {
      if (v.length !== size) invalid(ctx, `bytes${size}: expected ${size} bytes`);
      out.set(v, off); // left-aligned, zero-padded on the right
      return;
    }
    if (typeof v !== 'string' || v.length !== 2 + 2 * size || !v.startsWith('0x')) return invalid(ctx, `bytes${size}: expected 0x and exactly ${2 * size} hex digits`);
    if (!decodeHexInto(v, 2, size, out, off)) invalid(ctx, `bytes${size}: not hex`);
  };
}

const encodeBool: Encoder = (v, ctx, out, off) => {
  count(ctx);
  if (typeof v !== 'boolean') invalid(ctx, 'bool: expected true or false');
  out.fill(0, off, off + 32);
  out[off + 31] = v ? 1 : 0;
};

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const SINGLE_CASE_RE = /^0x(?:[0-9a-f]{40}|[0-9A-F]{40})$/;
/** Mixed-case addresses whose EIP-55 checksum already verified (bounded; cleared when full). */
const checkedAddresses = new Set<string>();
const MAX_CHECKED_ADDRESSES = 4096;

const encodeAddress: Encoder = (v, ctx, out, off) => {
  count(ctx);
  if (typeof v !== 'string' || !ADDRESS_RE.test(v)) return invalid(ctx, 'address: expected 0x and 40 hex digits');
  if (!SINGLE_CASE_RE.test(v) && !checkedAddresses.has(v)) {
    try {
      parseAddress(v, 'INVALID_TYPED_DATA');
    } catch {
      // parseAddress only rejects a bad checksum here (the shape was checked above).
      return invalid(ctx, 'address: mixed case with an invalid EIP-55 checksum');
    }
    if (checkedAddresses.size >= MAX_CHECKED_ADDRESSES) checkedAddresses.clear();
    checkedAddresses.add(v);
  }
  out.fill(0, off, off + 12);
  decodeHexInto(v, 2, 20, out, off + 12);
};

const LONE_SURROGATE_RE = /\p{Cs}/u;

/** Dynamic `string`: keccak256 of its UTF-8 encoding. Lone surrogates have no UTF-8 form: rejected. */
const encodeString: Encoder = (v, ctx, out, off) => {
  count(ctx);
  if (typeof v !== 'string') return invalid(ctx, 'string: expected a string');
  if (LONE_SURROGATE_RE.test(v)) invalid(ctx, 'string: contains a lone surrogate (not valid Unicode)');
  const utf8 = Buffer.from(v, 'utf8');
  addDynamic(ctx, utf8.length);
  keccak256Into(utf8, 0, utf8.length, out, off);
};

/** Dynamic `bytes`: keccak256 of the content. */
const encodeBytes: Encoder = (v, ctx, out, off) => {
  count(ctx);
  const b = bytesValue(v, ctx, 'bytes');
  addDynamic(ctx, b.length);
  keccak256Into(b, 0, b.length, out, off);
};

/** The encoder of an atomic or dynamic base type name, or undefined if it is not one. */
function atomicEncoder(base: string): Encoder | undefined {
  switch (base) {
    case 'address':
      return encodeAddress;
    case 'bool':
      return encodeBool;
    case 'string':
      return encodeString;
    case 'bytes':
      return encodeBytes;
  }
  let m = /^bytes([1-9][0-9]?)$/.exec(base);
  if (m !== null) {
    const size = Number(m[1]);
    return size <= 32 ? bytesNEncoder(size) : undefined;
  }
  m = /^(u?)int([1-9][0-9]{0,2})$/.exec(base);
  if (m !== null) {
    const bits = Number(m[2]);
    return bits % 8 === 0 && bits <= 256 ? intEncoder(m[1] === '', bits) : undefined;
  }
  return undefined;
}

/** Names a struct may not take: the atomic types and anything that looks like a malformed one. */
const RESERVED_RE = /^(?:u?int[0-9]*|bytes[0-9]*|address|bool|string|u?fixed(?:[0-9]+x[0-9]+)?|function)$/;
const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const TYPE_RE = /^([A-Za-z_$][A-Za-z0-9_$]*)((?:\[[0-9]*\])*)$/;
const DIM_RE = /\[([0-9]*)\]/g;

interface ParsedType {
  readonly base: string;
  /** Array dimensions, innermost first (`T[2][]` is a dynamic array of T[2]): null for dynamic. */
  readonly dims: readonly (number | null)[];
}

function parseTypeString(type: string, limits: Eip712Limits): ParsedType {
  const m = TYPE_RE.exec(type);
  if (m === null) return invalid(undefined, `type "${type.slice(0, 64)}" is not a type name with optional [] / [n] suffixes`);
  const dims: (number | null)[] = [];
  for (const d of (m[2] as string).matchAll(DIM_RE)) {
    const digits = d[1] as string;
    if (digits === '') dims.push(null);
    else {
      if (!/^[1-9][0-9]*$/.test(digits)) invalid(undefined, `type "${type}": array length must be a positive integer without leading zeros`);
      const n = Number(digits);
      if (n > limits.maxArrayLength) fail('PAYLOAD_TOO_LARGE', undefined, `type "${type}": array length above ${limits.maxArrayLength}`);
      dims.push(n);
    }
  }
  if (dims.length > limits.maxDepth) fail('PAYLOAD_TOO_LARGE', undefined, `type "${type}": more than ${limits.maxDepth} array dimensions`);
  return { base: m[1] as string, dims };
}

/** Arrays: keccak256 of the concatenated encodeData of the elements (EIP-712, "Definition of encodeData"). */
function arrayEncoder(element: Encoder, length: number | null): Encoder {
  return (v, ctx, out, off) => {
    count(ctx);
    if (!Array.isArray(v)) return invalid(ctx, 'expected an array');
    if (length !== null && v.length !== length) invalid(ctx, `expected exactly ${length} elements, got ${v.length}`);
    if (v.length > ctx.limits.maxArrayLength) fail('PAYLOAD_TOO_LARGE', ctx, `array longer than ${ctx.limits.maxArrayLength}`);
    enter(ctx);
    const buf = new Uint8Array(32 * v.length);
    for (let i = 0; i < v.length; i++) {
      ctx.path.push(i);
      element(v[i], ctx, buf, 32 * i);
      ctx.path.pop();
    }
    ctx.depth--;
    keccak256Into(buf, 0, buf.length, out, off);
  };
}

/** hashStruct(s) = keccak256(typeHash ‖ encodeData(s)). Fields must match the type exactly. */
function structEncoder(plan: () => StructPlan): Encoder {
  return (v, ctx, out, off) => {
    count(ctx);
    const p = plan();
    if (!isPlainObject(v)) return invalid(ctx, `expected an object of type ${p.name}`);
    const fields = p.fields;
    const n = fields.length;
    const keys = Object.keys(v);
    if (keys.length !== n) {
      // Extra fields are rejected: a field that is shown to the user or to policy but not signed
      // would be a way to mislead. Find the culprit for the operator's log.
      for (const k of keys) if (!fields.some((f) => f.name === k)) invalid(ctx, `field "${k.slice(0, 64)}" is not in type ${p.name}`);
    }
    enter(ctx);
    const buf = new Uint8Array(32 * (n + 1));
    buf.set(p.typeHash, 0);
    for (let i = 0; i < n; i++) {
      const f = fields[i] as FieldPlan;
      if (!Object.hasOwn(v, f.name)) invalid(ctx, `missing field "${f.name}" of type ${p.name}`);
      ctx.path.push(f.name);
      f.encode(v[f.name], ctx, buf, 32 * (i + 1));
      ctx.path.pop();
    }
    ctx.depth--;
    keccak256Into(buf, 0, buf.length, out, off);
  };
}

// ---- EIP712Domain ------------------------------------------------------------------------------

/** The standard domain fields, in the order EIP-712 lists them ("Definition of domainSeparator"). */
const DOMAIN_FIELDS: readonly RawField[] = [
  { name: 'name', type: 'string' },
  { name: 'version', type: 'string' },
  { name: 'chainId', type: 'uint256' },
  { name: 'verifyingContract', type: 'address' },
  { name: 'salt', type: 'bytes32' },
];
const DOMAIN_TYPE = 'EIP712Domain';

// ---- Schema compilation ------------------------------------------------------------------------

/**
 * Checks the shape of `types` and returns its entries with a canonical key: type names sorted, each
 * with its fields in declared order (order is part of the encoding). Equal keys ⇒ equal schemas.
 */
function canonicalTypes(types: unknown, limits: Eip712Limits): { key: string; entries: [string, RawField[]][] } {
  if (!isPlainObject(types)) return invalid(undefined, 'types must be an object');
  const names = Object.keys(types);
  if (names.length > limits.maxTypes) fail('PAYLOAD_TOO_LARGE', undefined, `more than ${limits.maxTypes} types`);
  names.sort();
  const entries: [string, RawField[]][] = [];
  for (const name of names) {
    const list = types[name];
    if (!Array.isArray(list)) return invalid(undefined, `types.${name.slice(0, 64)} must be an array of fields`);
    if (list.length > limits.maxFieldsPerType) fail('PAYLOAD_TOO_LARGE', undefined, `type ${name.slice(0, 64)} has more than ${limits.maxFieldsPerType} fields`);
    const fields: RawField[] = [];
    for (const f of list) {
      if (!isPlainObject(f) || typeof f['name'] !== 'string' || typeof f['type'] !== 'string' || Object.keys(f).length !== 2) {
        return invalid(undefined, `type ${name.slice(0, 64)}: each field must be exactly {name, type} with string values`);
      }
      fields.push({ name: f['name'], type: f['type'] });
    }
    entries.push([name, fields]);
  }
  return { key: JSON.stringify(entries.map(([n, fs]) => [n, fs.map((f) => [f.name, f.type])])), entries };
}

function compileSchema(entries: readonly [string, readonly RawField[]][], limits: Eip712Limits): Schema {
  const raw = new Map<string, readonly RawField[]>(entries);
  const plans = new Map<string, StructPlan>();
  const parsed = new Map<string, ParsedType[]>();

  for (const [name, fields] of raw) {
    if (name.length > limits.maxNameLength) fail('PAYLOAD_TOO_LARGE', undefined, 'type name too long');
    if (!IDENT_RE.test(name)) invalid(undefined, `type name "${name.slice(0, 64)}" is not an identifier`);
    if (RESERVED_RE.test(name)) invalid(undefined, `type name "${name}" is reserved for an atomic type`);
    const seen = new Set<string>();
    const types: ParsedType[] = [];
    for (const f of fields) {
      if (f.name.length > limits.maxNameLength || f.type.length > limits.maxNameLength) fail('PAYLOAD_TOO_LARGE', undefined, `${name}: field name or type too long`);
      if (!IDENT_RE.test(f.name)) invalid(undefined, `${name}: field name "${f.name.slice(0, 64)}" is not an identifier`);
      if (seen.has(f.name)) invalid(undefined, `${name}: duplicate field "${f.name}"`);
      seen.add(f.name);
      const t = parseTypeString(f.type, limits);
      if (atomicEncoder(t.base) === undefined) {
        if (!raw.has(t.base)) invalid(undefined, `${name}.${f.name}: unknown type "${t.base.slice(0, 64)}"`);
        if (t.base === DOMAIN_TYPE) invalid(undefined, `${name}.${f.name}: ${DOMAIN_TYPE} cannot be used as a field type`);
      }
      types.push(t);
    }
    parsed.set(name, types);
  }

  const domainFields = raw.get(DOMAIN_TYPE);
  if (domainFields !== undefined) {
    for (const f of domainFields) {
      const std = DOMAIN_FIELDS.find((d) => d.name === f.name);
      if (std === undefined) invalid(undefined, `${DOMAIN_TYPE}: "${f.name}" is not a standard domain field`);
      if (std.type !== f.type) invalid(undefined, `${DOMAIN_TYPE}: ${f.name} must have type ${std.type}`);
    }
  }

  // A struct that must contain itself through plain fields or fixed-size arrays has no finite value.
  // Recursion through a dynamic array ([]) is legal EIP-712 (the empty array ends it); the depth
  // bound keeps values finite.
  const state = new Map<string, 1 | 2>(); // 1: on the DFS stack, 2: done
  const visit = (name: string, trail: string[]): void => {
    const s = state.get(name);
    if (s === 2) return;
    if (s === 1) invalid(undefined, `types ${[...trail, name].join(' → ')} form a cycle that no finite value can satisfy`);
    state.set(name, 1);
    for (const t of parsed.get(name) ?? []) if (raw.has(t.base) && t.dims.every((d) => d !== null)) visit(t.base, [...trail, name]);
    state.set(name, 2);
  };
  for (const name of raw.keys()) visit(name, []);

  for (const [name, fields] of raw) {
    const types = parsed.get(name) as ParsedType[];
    const fieldPlans: FieldPlan[] = fields.map((f, i) => {
      const t = types[i] as ParsedType;
      let enc = atomicEncoder(t.base) ?? structEncoder(() => plans.get(t.base) as StructPlan);
      for (const d of t.dims) enc = arrayEncoder(enc, d);
      return { name: f.name, type: f.type, encode: enc };
    });
    const plan: StructPlan = { name, fields: fieldPlans, encodeType: '', typeHash: new Uint8Array(32), encode: structEncoder(() => plan) };
    plans.set(name, plan);
  }

  // encodeType (EIP-712 "Definition of encodeType"): the type's own "Name(type1 name1,…)" followed by
  // every struct type it references, directly or transitively, sorted by name.
  const member = (name: string): string => `${name}(${(raw.get(name) ?? []).map((f) => `${f.type} ${f.name}`).join(',')})`;
  for (const [name, plan] of plans) {
    const deps = new Set<string>();
    const stack = [name];
    while (stack.length > 0) {
      const cur = stack.pop() as string;
      for (const t of parsed.get(cur) ?? []) {
        if (raw.has(t.base) && t.base !== name && !deps.has(t.base)) {
          deps.add(t.base);
          stack.push(t.base);
        }
      }
    }
    plan.encodeType = member(name) + [...deps].sort().map(member).join('');
    plan.typeHash = keccak256(Buffer.from(plan.encodeType, 'utf8'));
  }
  return { structs: plans };
}

// ---- LRU ---------------------------------------------------------------------------------------

class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.set(k, v);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (oldest.done !== true) this.map.delete(oldest.value);
    }
  }
  get size(): number {
    return this.map.size;
  }
}

// ---- The hasher --------------------------------------------------------------------------------

export interface Eip712HasherOptions {
  readonly limits?: Partial<Eip712Limits>;
  /** Compiled schemas kept (LRU). Default 256. */
  readonly schemaCacheSize?: number;
  /** Domain separators kept (LRU). Default 1024. */
  readonly domainCacheSize?: number;
}

export interface Eip712CacheStats {
  readonly schemaHits: number;
  readonly schemaMisses: number;
  readonly domainHits: number;
  readonly domainMisses: number;
}

export interface Eip712Hasher {
  /**
   * Parses, validates and hashes a typed-data document: JSON text (string or UTF-8 bytes) or an
   * already parsed value. Throws INVALID_TYPED_DATA for a document that breaks the spec or our
   * rules, PAYLOAD_TOO_LARGE for one beyond the limits.
   */
  hash(input: unknown): TypedDataHash;
  /** encodeType(primaryType) for a `types` object, e.g. "Mail(Person from,…)Person(…)". */
  encodeType(types: unknown, primaryType: string): string;
  readonly limits: Eip712Limits;
  stats(): Eip712CacheStats;
}

const DOCUMENT_KEYS = ['domain', 'message', 'primaryType', 'types'];

interface CachedDomain {
  readonly separator: Uint8Array;
  readonly domain: Eip712Domain;
}

export function createEip712Hasher(options: Eip712HasherOptions = {}): Eip712Hasher {
  const limits: Eip712Limits = Object.freeze({ ...DEFAULT_EIP712_LIMITS, ...options.limits });
  const schemas = new Lru<Schema>(options.schemaCacheSize ?? 256);
  const domains = new Lru<CachedDomain>(options.domainCacheSize ?? 1024);
  /** EIP712Domain plans derived from the domain's keys when `types` omits the type, by field mask. */
  const derivedDomainPlans = new Map<number, StructPlan>();
  const stats = { schemaHits: 0, schemaMisses: 0, domainHits: 0, domainMisses: 0 };

  function schemaFor(types: unknown): Schema {
    const { key, entries } = canonicalTypes(types, limits);
    const hit = schemas.get(key);
    if (hit !== undefined) {
      stats.schemaHits++;
      return hit;
    }
    stats.schemaMisses++;
    const schema = compileSchema(entries, limits);
    schemas.set(key, schema);
    return schema;
  }

  /** Without an EIP712Domain type, its fields are the standard ones present in `domain`, in standard order. */
  function derivedDomainPlan(domain: Record<string, unknown>): StructPlan {
    let mask = 0;
    for (const k of Object.keys(domain)) {
      const i = DOMAIN_FIELDS.findIndex((d) => d.name === k);
      if (i < 0) invalid(undefined, `domain: "${k.slice(0, 64)}" is not a standard domain field`);
      mask |= 1 << i;
    }
    let plan = derivedDomainPlans.get(mask);
    if (plan === undefined) {
      const fields = DOMAIN_FIELDS.filter((_, i) => (mask & (1 << i)) !== 0);
      plan = compileSchema([[DOMAIN_TYPE, fields]], limits).structs.get(DOMAIN_TYPE) as StructPlan;
      derivedDomainPlans.set(mask, plan);
    }
    return plan;
  }

  /** A cache key for the domain's values, or undefined if a value is of a kind we do not key on. */
  function domainKey(plan: StructPlan, domain: Record<string, unknown>): string | undefined {
    // Same key ⇒ same members with the same values, so a hit may skip validation: it passed before.
    if (Object.keys(domain).length !== plan.fields.length) return undefined;
    let key = plan.encodeType;
    for (const f of plan.fields) {
      if (!Object.hasOwn(domain, f.name)) return undefined;
      const v = domain[f.name];
      if (typeof v === 'string') key += ',' + JSON.stringify(v);
      else if (typeof v === 'number') key += `,n${v}`;
      else if (typeof v === 'bigint') key += `,b${v}`;
      else return undefined;
    }
    return key;
  }

  function normalizeDomain(domain: Record<string, unknown>): Eip712Domain {
    const out: { -readonly [K in keyof Eip712Domain]: Eip712Domain[K] } = {};
    const { name, version, chainId, verifyingContract, salt } = domain;
    if (typeof name === 'string') out.name = name;
    if (typeof version === 'string') out.version = version;
    if (chainId !== undefined) out.chainId = BigInt(chainId as string | number | bigint); // already validated as uint256
    if (typeof verifyingContract === 'string') out.verifyingContract = verifyingContract.toLowerCase();
    if (salt !== undefined) out.salt = salt instanceof Uint8Array ? Uint8Array.from(salt) : new Uint8Array(Buffer.from((salt as string).slice(2), 'hex'));
    return Object.freeze(out);
  }

  function domainSeparator(plan: StructPlan, domain: Record<string, unknown>, ctx: Ctx): CachedDomain {
    const key = domainKey(plan, domain);
    if (key !== undefined) {
      const hit = domains.get(key);
      if (hit !== undefined) {
        stats.domainHits++;
        return hit;
      }
    }
    stats.domainMisses++;
    const separator = new Uint8Array(32);
    ctx.path.push('domain');
    plan.encode(domain, ctx, separator, 0);
    ctx.path.pop();
    const result: CachedDomain = { separator, domain: normalizeDomain(domain) };
    if (key !== undefined) domains.set(key, result);
    return result;
  }

  function parseInput(input: unknown): Record<string, unknown> {
    let doc: unknown = input;
    if (typeof input === 'string' || input instanceof Uint8Array) {
      if (input.length > limits.maxJsonLength) fail('PAYLOAD_TOO_LARGE', undefined, `typed data longer than ${limits.maxJsonLength}`);
      let text: string;
      try {
        text = typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input);
        doc = JSON.parse(text);
      } catch {
        // Not UTF-8, or not JSON: either way, not a typed-data document.
        return invalid(undefined, 'typed data is not valid JSON');
      }
    }
    if (!isPlainObject(doc)) return invalid(undefined, 'typed data must be an object');
    const keys = Object.keys(doc).sort();
    if (keys.length !== DOCUMENT_KEYS.length || keys.some((k, i) => k !== DOCUMENT_KEYS[i])) {
      invalid(undefined, 'typed data must have exactly the members types, primaryType, domain, message');
    }
    return doc;
  }

  function hash(input: unknown): TypedDataHash {
    const doc = parseInput(input);
    const { types, primaryType, domain, message } = doc;
    const schema = schemaFor(types);
    if (typeof primaryType !== 'string') return invalid(undefined, 'primaryType must be a string');
    // A document whose primary type is the domain would sign the domain alone; we do not offer that.
    if (primaryType === DOMAIN_TYPE) invalid(undefined, `primaryType cannot be ${DOMAIN_TYPE}`);
    const plan = schema.structs.get(primaryType);
    if (plan === undefined) return invalid(undefined, `primaryType "${primaryType.slice(0, 64)}" is not in types`);
    if (!isPlainObject(domain)) return invalid(undefined, 'domain must be an object');
    if (!isPlainObject(message)) return invalid(undefined, 'message must be an object');

    const ctx: Ctx = { limits, depth: 0, values: 0, dynamicBytes: 0, path: [] };
    const domainPlan = schema.structs.get(DOMAIN_TYPE) ?? derivedDomainPlan(domain);
    const { separator, domain: normalized } = domainSeparator(domainPlan, domain, ctx);

    // 0x19 0x01 ‖ domainSeparator ‖ hashStruct(message) (EIP-712, "Specification"; EIP-191 version 0x01).
    const buf = new Uint8Array(66);
    buf[0] = 0x19;
    buf[1] = 0x01;
    buf.set(separator, 2);
    ctx.path.push('message');
    plan.encode(message, ctx, buf, 34);
    ctx.path.pop();
    const digest = keccak256(buf);
    return {
      primaryType,
      // The cached normalized domain is frozen; its one mutable member (salt) is copied per result.
      domain: normalized.salt === undefined ? normalized : { ...normalized, salt: Uint8Array.from(normalized.salt) },
      message,
      domainSeparator: buf.slice(2, 34),
      structHash: buf.slice(34, 66),
      digest,
    };
  }

  return {
    hash,
    encodeType(types, primaryType) {
      const plan = schemaFor(types).structs.get(primaryType);
      if (plan === undefined) return invalid(undefined, `type "${String(primaryType).slice(0, 64)}" is not in types`);
      return plan.encodeType;
    },
    limits,
    stats: () => ({ ...stats }),
  };
}

const defaultHasher = createEip712Hasher();

/** Hashes a typed-data document with the process-wide hasher (default limits and caches). */
export function hashTypedData(input: unknown): TypedDataHash {
  return defaultHasher.hash(input);
}
