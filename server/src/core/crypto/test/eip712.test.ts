// EIP-712 typed data: the specification's own example (encodeType, typeHash, domain separator,
// hashStruct, digest, and the published signature under keccak256("cow")); agreement with viem
// hashTypedData and ethers TypedDataEncoder.hash on a table of documents and on generated ones;
// a hostile-input table (spec violations ⇒ INVALID_TYPED_DATA, bounds ⇒ PAYLOAD_TOO_LARGE); caches.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { getAddress, hashStruct as viemHashStruct, hashTypedData as viemHashTypedData, recoverTypedDataAddress } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { TypedDataEncoder } from 'ethers';
import { createEip712Hasher, hashTypedData, type Eip712Limits } from '../eip712.ts';
import { keccak256 } from '../keccak.ts';
import { loadSecp256k1 } from '../secp256k1.ts';
import { isOpenKeyError } from '../../errors.ts';
import { Prng, expectCode, hex, hex0x } from './helpers.ts';

type Field = { name: string; type: string };
type Types = Record<string, Field[]>;
interface Doc {
  types: Types;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
}

const { backend } = loadSecp256k1();

// ---- Oracle adapters: an independent walk that turns integer values into bigints ---------------

const INT_RE = /^u?int[0-9]+$/;
function splitType(t: string): { base: string; dims: string[] } {
  const m = /^([^[]+)((?:\[[0-9]*\])*)$/.exec(t);
  if (m === null) throw new Error(`bad type ${t}`);
  return { base: m[1] as string, dims: [...(m[2] as string).matchAll(/\[([0-9]*)\]/g)].map((d) => d[1] as string) };
}
function oracleValue(types: Types, type: string, v: unknown): unknown {
  const { base, dims } = splitType(type);
  if (dims.length > 0) {
    const inner = base + dims.slice(0, -1).map((d) => `[${d}]`).join('');
    return (v as unknown[]).map((x) => oracleValue(types, inner, x));
  }
  if (INT_RE.test(base)) return BigInt(v as string | number);
  const fields = types[base];
  if (fields !== undefined) return oracleStruct(types, base, v as Record<string, unknown>);
  return v;
}
function oracleStruct(types: Types, name: string, v: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of types[name] ?? []) out[f.name] = oracleValue(types, f.type, v[f.name]);
  return out;
}
const DOMAIN_TYPES: Record<string, string> = { name: 'string', version: 'string', chainId: 'uint256', verifyingContract: 'address', salt: 'bytes32' };
function oracleDomain(d: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) out[k] = k === 'chainId' ? BigInt(v as string | number) : v;
  return out;
}
function viemDigest(doc: Doc): string {
  return viemHashTypedData({
    domain: oracleDomain(doc.domain),
    types: doc.types,
    primaryType: doc.primaryType,
    message: oracleStruct(doc.types, doc.primaryType, doc.message),
  } as Parameters<typeof viemHashTypedData>[0]);
}
function ethersDigest(doc: Doc): string {
  const { EIP712Domain: _omit, ...types } = doc.types;
  return TypedDataEncoder.hash(oracleDomain(doc.domain), types, oracleStruct(doc.types, doc.primaryType, doc.message));
}
const ours = (doc: unknown): string => hex0x(hashTypedData(doc).digest);

// ---- The specification's example -----------------------------------------------------------

// The spec's Mail document, the same file the README's walk-through signs.
const MAIL = JSON.parse(readFileSync(fileURLToPath(new URL('../../../../../clients/examples/mail.json', import.meta.url)), 'utf8')) as Doc;
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

describe('the EIP-712 specification example (Mail)', () => {
  it('encodeType, typeHash, domainSeparator, hashStruct and digest', () => {
    const h = createEip712Hasher();
    const encodeType = h.encodeType(MAIL.types, 'Mail');
    expect(encodeType).toBe('Mail(Person from,Person to,string contents)Person(string name,address wallet)');
    expect(hex(keccak256(Buffer.from(encodeType)))).toBe('a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2');
    const r = h.hash(MAIL);
    expect(hex(r.domainSeparator)).toBe('f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f');
    expect(hex(r.structHash)).toBe('c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e');
    expect(hex0x(r.structHash)).toBe(viemHashStruct({ data: MAIL.message, primaryType: 'Mail', types: MAIL.types }));
    expect(hex(r.digest)).toBe('be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2');
    expect(r.primaryType).toBe('Mail');
    expect(r.domain).toEqual({ name: 'Ether Mail', version: '1', chainId: 1n, verifyingContract: '0xcccccccccccccccccccccccccccccccccccccccc' });
  });

  it('signed with keccak256("cow") gives the published signature, and viem recovers the address', async () => {
    const key = keccak256(Buffer.from('cow'));
    const sig = backend.sign(hashTypedData(JSON.stringify(MAIL)).digest, key);
    expect(hex(sig)).toBe(
      '4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c',
    );
    const address = await recoverTypedDataAddress({ ...MAIL, signature: hex0x(sig) } as Parameters<typeof recoverTypedDataAddress>[0]);
    expect(address).toBe('0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826');
  });

  it('JSON text, UTF-8 bytes and the parsed object hash the same', () => {
    const text = JSON.stringify(MAIL);
    expect(ours(text)).toBe(ours(MAIL));
    expect(ours(new TextEncoder().encode(text))).toBe(ours(MAIL));
  });
});

// ---- Oracle table ----------------------------------------------------------------------------

const A1 = '0x1111111111111111111111111111111111111111';
const A2 = getAddress('0xabcdefabcdefabcdefabcdefabcdefabcdefabcd');
const table: { name: string; doc: Doc; ethers?: false }[] = [
  { name: 'Mail with EIP712Domain declared', doc: MAIL },
  { name: 'Mail with EIP712Domain omitted (derived from the domain keys)', doc: { ...MAIL, types: { Person: MAIL.types['Person'] ?? [], Mail: MAIL.types['Mail'] ?? [] } } },
  {
    name: 'EIP-2612 Permit, integers as decimal, hex and number',
    doc: {
      types: {
        Permit: [
          { name: 'owner', type: 'address' },
          { name: 'spender', type: 'address' },
          { name: 'value', type: 'uint256' },
          { name: 'nonce', type: 'uint256' },
          { name: 'deadline', type: 'uint256' },
        ],
      },
      primaryType: 'Permit',
      domain: { name: 'USD Coin', version: '2', chainId: '0x1', verifyingContract: A2 },
      message: { owner: A1, spender: A2, value: '115792089237316195423570985008687907853269984665640564039457584007913129639935', nonce: '0x00ff', deadline: 1_700_000_000 },
    },
  },
  {
    name: 'signed integers at their bounds, negatives as strings and numbers',
    doc: {
      types: {
        Ints: [
          { name: 'a', type: 'int8' },
          { name: 'b', type: 'int8' },
          { name: 'c', type: 'int256' },
          { name: 'd', type: 'int256' },
          { name: 'e', type: 'int64' },
          { name: 'f', type: 'uint8' },
          { name: 'g', type: 'int24' },
          { name: 'h', type: 'uint256' },
        ],
      },
      primaryType: 'Ints',
      domain: { chainId: 10 },
      message: {
        a: -128,
        b: '127',
        c: (-(2n ** 255n)).toString(),
        d: (2n ** 255n - 1n).toString(),
        e: -1,
        f: 255,
        g: '-8388608',
        h: '0',
      },
    },
  },
  {
    name: 'bytes, bytesN, bool, string (empty, unicode, long)',
    doc: {
      types: {
        Blob: [
          { name: 'empty', type: 'bytes' },
          { name: 'data', type: 'bytes' },
          { name: 'one', type: 'bytes1' },
          { name: 'word', type: 'bytes32' },
          { name: 'flag', type: 'bool' },
          { name: 'off', type: 'bool' },
          { name: 'nothing', type: 'string' },
          { name: 'text', type: 'string' },
          { name: 'long', type: 'string' },
        ],
      },
      primaryType: 'Blob',
      domain: { name: 'blobs' },
      message: {
        empty: '0x',
        data: '0x' + 'ab'.repeat(300),
        one: '0x7f',
        word: '0x' + '01'.repeat(32),
        flag: true,
        off: false,
        nothing: '',
        text: 'ünïcødé ✓ 🦊 日本',
        long: 'x'.repeat(5000),
      },
    },
  },
  {
    name: 'nested and fixed arrays, arrays of structs, empty arrays',
    doc: {
      types: {
        Item: [
          { name: 'id', type: 'uint32' },
          { name: 'tags', type: 'string[]' },
        ],
        Bag: [
          { name: 'matrix', type: 'uint256[][]' },
          { name: 'pairs', type: 'Item[2][]' },
          { name: 'triple', type: 'bytes32[3]' },
          { name: 'items', type: 'Item[]' },
          { name: 'none', type: 'Item[]' },
          { name: 'noWords', type: 'bytes[]' },
          { name: 'owners', type: 'address[2]' },
        ],
      },
      primaryType: 'Bag',
      domain: { name: 'bag', version: '3', chainId: 5, verifyingContract: A1, salt: '0x' + 'aa'.repeat(32) },
      message: {
        matrix: [[1, 2, 3], [], ['4']],
        pairs: [
          [
            { id: 1, tags: ['a', 'b'] },
            { id: 2, tags: [] },
          ],
          [
            { id: 3, tags: [''] },
            { id: 4, tags: ['z'] },
          ],
        ],
        triple: ['0x' + '00'.repeat(32), '0x' + 'ff'.repeat(32), '0x' + '12'.repeat(32)],
        items: [{ id: 9, tags: ['x'] }],
        none: [],
        noWords: [],
        owners: [A1, A2],
      },
    },
  },
  {
    name: 'deeply nested structs (a chain of five types)',
    doc: {
      types: {
        L0: [{ name: 'next', type: 'L1' }, { name: 'v', type: 'uint8' }],
        L1: [{ name: 'next', type: 'L2' }],
        L2: [{ name: 'next', type: 'L3' }, { name: 'w', type: 'string' }],
        L3: [{ name: 'next', type: 'L4[]' }],
        L4: [{ name: 'leaf', type: 'bool' }],
      },
      primaryType: 'L0',
      domain: { version: '1' },
      message: { v: 1, next: { next: { w: 'deep', next: { next: [{ leaf: true }, { leaf: false }] } } } },
    },
  },
  {
    name: 'EIP712Domain declared in a non-standard order (ethers always uses the standard order)',
    ethers: false,
    doc: {
      ...MAIL,
      types: {
        ...MAIL.types,
        EIP712Domain: [
          { name: 'verifyingContract', type: 'address' },
          { name: 'chainId', type: 'uint256' },
          { name: 'name', type: 'string' },
          { name: 'version', type: 'string' },
        ],
      },
    },
  },
  {
    name: 'recursive type through a dynamic array (ethers refuses recursion)',
    ethers: false,
    doc: {
      types: { Tree: [{ name: 'label', type: 'string' }, { name: 'children', type: 'Tree[]' }] },
      primaryType: 'Tree',
      domain: { name: 'trees' },
      message: { label: 'root', children: [{ label: 'a', children: [] }, { label: 'b', children: [{ label: 'c', children: [] }] }] },
    },
  },
  {
    name: 'mutual recursion through dynamic arrays; names with $ and _ sort by code unit',
    ethers: false,
    doc: {
      types: {
        Node: [{ name: 'edges', type: '_Edge[]' }, { name: 'tag', type: '$Tag' }],
        _Edge: [{ name: 'to', type: 'Node[]' }, { name: 'w', type: 'int16' }],
        $Tag: [{ name: 'v', type: 'bytes2' }],
      },
      primaryType: 'Node',
      domain: { chainId: 1 },
      message: { tag: { v: '0xbeef' }, edges: [{ w: -3, to: [{ tag: { v: '0x0000' }, edges: [] }] }] },
    },
  },
  {
    name: 'an unused type alongside the primary one (ethers refuses unused types)',
    ethers: false,
    doc: { ...MAIL, types: { ...MAIL.types, Unused: [{ name: 'x', type: 'uint8' }] } },
  },
];

describe('agrees with viem hashTypedData and ethers TypedDataEncoder.hash', () => {
  it.each(table)('$name', ({ doc, ethers }) => {
    const digest = ours(JSON.stringify(doc));
    expect(digest).toBe(viemDigest(doc));
    if (ethers !== false) expect(digest).toBe(ethersDigest(doc));
  });

  it('every subset of the five domain fields, declared or derived', () => {
    const values: Record<string, unknown> = { name: 'Dapp', version: '7', chainId: 137, verifyingContract: A2, salt: '0x' + '5a'.repeat(32) };
    const names = Object.keys(values);
    for (let mask = 0; mask < 32; mask++) {
      const present = names.filter((_, i) => (mask & (1 << i)) !== 0);
      const domain = Object.fromEntries(present.map((k) => [k, values[k]]));
      const base: Doc = { types: { Note: [{ name: 'text', type: 'string' }] }, primaryType: 'Note', domain, message: { text: 'hi' } };
      const declared: Doc = { ...base, types: { ...base.types, EIP712Domain: present.map((k) => ({ name: k, type: DOMAIN_TYPES[k] as string })) } };
      const expected = ethersDigest(base);
      expect(viemDigest(base)).toBe(expected);
      expect(ours(base), `derived ${present.join(',')}`).toBe(expected);
      expect(ours(declared), `declared ${present.join(',')}`).toBe(expected);
    }
  });
});

// ---- Generated documents (property test) -------------------------------------------------------

const NAME_POOL = ['Alpha', 'beta', 'Gamma', '_under', 'Zed', 'Order', 'Item', 'Person', 'a1', 'Q', 'Mail', 'Asset', '$dollar'];
const ATOMIC = ['uint8', 'uint16', 'uint64', 'uint256', 'uint160', 'int8', 'int32', 'int128', 'int256', 'bool', 'address', 'bytes1', 'bytes4', 'bytes20', 'bytes32', 'bytes', 'string'];
const STRINGS = ['', 'a', 'hello world', 'ünïcødé', '🦊🦊', 'x'.repeat(200), '"quoted"\\', 'line\nbreak'];

function genDoc(rng: Prng): Doc {
  const n = 1 + rng.int(4);
  const names: string[] = [];
  while (names.length < n) {
    const c = rng.pick(NAME_POOL);
    if (!names.includes(c)) names.push(c);
  }
  const types: Types = {};
  const dims = (): string => {
    const k = rng.int(10);
    const count = k < 7 ? 0 : k < 9 ? 1 : 2;
    let s = '';
    for (let i = 0; i < count; i++) s += rng.bool() ? '[]' : `[${1 + rng.int(3)}]`;
    return s;
  };
  // Struct i may only reference structs j > i (acyclic), and each struct j ≥ 1 is referenced by an
  // earlier one (a single root, as ethers requires).
  names.forEach((name, i) => {
    const fields: Field[] = [];
    const count = 1 + rng.int(5);
    for (let f = 0; f < count; f++) {
      const base = i < n - 1 && rng.int(4) === 0 ? (names[i + 1 + rng.int(n - 1 - i)] as string) : rng.pick(ATOMIC);
      fields.push({ name: `f${f}`, type: base + dims() });
    }
    types[name] = fields;
  });
  for (let j = 1; j < n; j++) {
    const target = names[j] as string;
    const referenced = names.slice(0, j).some((s) => (types[s] ?? []).some((f) => splitType(f.type).base === target));
    if (!referenced) {
      const i = rng.int(j);
      const list = types[names[i] as string] as Field[];
      list.push({ name: `r${j}`, type: target + dims() });
    }
  }

  const genAtomic = (t: string): unknown => {
    const m = /^(u?)int([0-9]+)$/.exec(t);
    if (m !== null) {
      const bits = Number(m[2]);
      const signed = m[1] === '';
      const raw = BigInt(hex0x(rng.bytes(bits / 8)));
      let v = signed ? raw - (1n << BigInt(bits - 1)) : raw;
      if (rng.int(3) === 0) v = BigInt(rng.int(100)) * (signed && rng.bool() ? -1n : 1n);
      const style = rng.int(3);
      if (style === 0 && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
      if (style === 1 && v >= 0n) return '0x' + v.toString(16);
      return v.toString();
    }
    if (t === 'bool') return rng.bool();
    if (t === 'address') {
      const a = hex0x(rng.bytes(20));
      return rng.bool() ? getAddress(a) : a;
    }
    if (t === 'bytes') return hex0x(rng.bytes(rng.int(70)));
    if (t === 'string') return rng.pick(STRINGS);
    const b = /^bytes([0-9]+)$/.exec(t);
    if (b !== null) return hex0x(rng.bytes(Number(b[1])));
    throw new Error(`no generator for ${t}`);
  };
  const genValue = (type: string, depth: number): unknown => {
    const { base, dims: ds } = splitType(type);
    if (ds.length > 0) {
      const last = ds[ds.length - 1] as string;
      const inner = base + ds.slice(0, -1).map((d) => `[${d}]`).join('');
      const len = last === '' ? (depth > 6 ? 0 : rng.int(4)) : Number(last);
      return Array.from({ length: len }, () => genValue(inner, depth + 1));
    }
    if (types[base] !== undefined) return genStruct(base, depth + 1);
    return genAtomic(base);
  };
  const genStruct = (name: string, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const f of types[name] ?? []) out[f.name] = genValue(f.type, depth);
    return out;
  };

  const domain: Record<string, unknown> = {};
  if (rng.bool()) domain['name'] = rng.pick(STRINGS);
  if (rng.bool()) domain['version'] = String(rng.int(10));
  if (rng.bool()) domain['chainId'] = rng.bool() ? 1 + rng.int(100000) : String(1 + rng.int(100000));
  if (rng.bool()) domain['verifyingContract'] = getAddress(hex0x(rng.bytes(20)));
  if (rng.int(4) === 0) domain['salt'] = hex0x(rng.bytes(32));
  if (rng.bool()) types['EIP712Domain'] = Object.keys(DOMAIN_TYPES).filter((k) => k in domain).map((k) => ({ name: k, type: DOMAIN_TYPES[k] as string }));
  const primaryType = names[0] as string;
  return { types, primaryType, domain, message: genStruct(primaryType, 0) };
}

describe('generated documents agree with viem and ethers', () => {
  it('300 random documents', () => {
    const rng = new Prng('eip712-property');
    const hasher = createEip712Hasher({ schemaCacheSize: 8 });
    for (let i = 0; i < 300; i++) {
      const doc = genDoc(rng);
      const text = JSON.stringify(doc);
      const digest = hex0x(hasher.hash(text).digest);
      expect(digest, text).toBe(viemDigest(doc));
      expect(digest, text).toBe(ethersDigest(doc));
    }
  });

  it('signatures over generated documents recover with viem', async () => {
    const rng = new Prng('eip712-sign');
    const key = rng.bytes(32);
    for (let i = 0; i < 10; i++) {
      const doc = genDoc(rng);
      const sig = backend.sign(hashTypedData(doc).digest, key);
      const recovered = await recoverTypedDataAddress({
        domain: oracleDomain(doc.domain),
        types: doc.types,
        primaryType: doc.primaryType,
        message: oracleStruct(doc.types, doc.primaryType, doc.message),
        signature: hex0x(sig),
      } as Parameters<typeof recoverTypedDataAddress>[0]);
      expect(recovered).toBe(privateKeyToAddress(hex0x(key)));
    }
  });
});

// ---- Hostile inputs ------------------------------------------------------------------------------

type Mutate = (d: Doc & Record<string, unknown>) => unknown;
const mail = (): Doc & Record<string, unknown> => clone(MAIL) as Doc & Record<string, unknown>;
const withMessage = (types: Types, message: Record<string, unknown>, primaryType = Object.keys(types)[0] as string): Doc => ({ types, primaryType, domain: {}, message });

const hostile: [string, Mutate][] = [
  ['not JSON', () => '{"types":'],
  ['JSON but not an object', () => '[1,2,3]'],
  ['null', () => null],
  ['a number', () => 42],
  ['missing message', (d) => ({ types: d.types, primaryType: d.primaryType, domain: d.domain })],
  ['extra top-level member', (d) => ({ ...d, extra: 1 })],
  ['types not an object', (d) => ({ ...d, types: [] })],
  ['a type is not an array', (d) => ({ ...d, types: { ...d.types, Person: {} } })],
  ['a field is not {name,type}', (d) => ({ ...d, types: { ...d.types, Person: [{ name: 'name' }] } })],
  ['a field has an extra member', (d) => ({ ...d, types: { ...d.types, Person: [{ name: 'name', type: 'string', x: 1 }, { name: 'wallet', type: 'address' }] } })],
  ['unknown field type', (d) => ({ ...d, types: { ...d.types, Person: [{ name: 'name', type: 'Human' }] } })],
  ['malformed atomic type uint7', () => withMessage({ T: [{ name: 'x', type: 'uint7' }] }, { x: 1 })],
  ['uint (no width) is not an EIP-712 type', () => withMessage({ T: [{ name: 'x', type: 'uint' }] }, { x: 1 })],
  ['uint264', () => withMessage({ T: [{ name: 'x', type: 'uint264' }] }, { x: 1 })],
  ['bytes33', () => withMessage({ T: [{ name: 'x', type: 'bytes33' }] }, { x: '0x' })],
  ['bytes0', () => withMessage({ T: [{ name: 'x', type: 'bytes0' }] }, { x: '0x' })],
  ['zero-length fixed array', () => withMessage({ T: [{ name: 'x', type: 'uint8[0]' }] }, { x: [] })],
  ['array length with a leading zero', () => withMessage({ T: [{ name: 'x', type: 'uint8[01]' }] }, { x: [1] })],
  ['whitespace in a type', () => withMessage({ T: [{ name: 'x', type: 'uint8 []' }] }, { x: [] })],
  ['field name not an identifier', () => withMessage({ T: [{ name: 'a b', type: 'uint8' }] }, { 'a b': 1 })],
  ['type name not an identifier', () => withMessage({ 'My Type': [{ name: 'x', type: 'uint8' }] }, { x: 1 })],
  ['struct named like an atomic type', () => withMessage({ address: [{ name: 'x', type: 'uint8' }] }, { x: 1 })],
  ['duplicate field name', () => withMessage({ T: [{ name: 'x', type: 'uint8' }, { name: 'x', type: 'uint16' }] }, { x: 1 })],
  ['primaryType missing from types', (d) => ({ ...d, primaryType: 'Letter' })],
  ['primaryType not a string', (d) => ({ ...d, primaryType: 7 })],
  ['primaryType EIP712Domain', (d) => ({ ...d, primaryType: 'EIP712Domain', message: d.domain })],
  ['EIP712Domain used as a field type', (d) => ({ ...d, types: { ...d.types, Mail: [{ name: 'd', type: 'EIP712Domain' }] }, message: { d: d.domain } })],
  ['EIP712Domain with a non-standard field', (d) => ({ ...d, types: { ...d.types, EIP712Domain: [{ name: 'owner', type: 'address' }] }, domain: { owner: A1 } })],
  ['EIP712Domain chainId with a non-standard type', (d) => ({ ...d, types: { ...d.types, EIP712Domain: [{ name: 'chainId', type: 'uint64' }] }, domain: { chainId: 1 } })],
  ['domain member not declared in EIP712Domain', (d) => ({ ...d, domain: { ...d.domain, salt: '0x' + '00'.repeat(32) } })],
  ['domain member missing', (d) => ({ ...d, domain: { name: 'Ether Mail' } })],
  ['unknown domain member when EIP712Domain is derived', (d) => ({ ...d, types: { Person: d.types['Person'], Mail: d.types['Mail'] }, domain: { ...d.domain, owner: A1 } })],
  ['domain not an object', (d) => ({ ...d, domain: 'x' })],
  ['message not an object', (d) => ({ ...d, message: [] })],
  ['missing field', (d) => ({ ...d, message: { from: d.message['from'], to: d.message['to'] } })],
  ['extra field (rejected: unsigned data must not ride along)', (d) => ({ ...d, message: { ...d.message, bcc: 'eve' } })],
  ['extra field in a nested struct', (d) => ({ ...d, message: { ...d.message, to: { name: 'Bob', wallet: A1, age: 3 } } })],
  ['struct value is an array', (d) => ({ ...d, message: { ...d.message, to: ['Bob', A1] } })],
  ['string value is a number', (d) => ({ ...d, message: { ...d.message, contents: 5 } })],
  ['address: bad checksum', (d) => ({ ...d, message: { ...d.message, to: { name: 'Bob', wallet: '0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb' } } })],
  ['address: 19 bytes', (d) => ({ ...d, message: { ...d.message, to: { name: 'Bob', wallet: '0x' + '11'.repeat(19) } } })],
  ['address: no 0x', (d) => ({ ...d, message: { ...d.message, to: { name: 'Bob', wallet: '11'.repeat(20) } } })],
  ['address: not hex', (d) => ({ ...d, message: { ...d.message, to: { name: 'Bob', wallet: '0x' + 'zz'.repeat(20) } } })],
  ['uint8 = 256', () => withMessage({ T: [{ name: 'x', type: 'uint8' }] }, { x: 256 })],
  ['uint8 = -1', () => withMessage({ T: [{ name: 'x', type: 'uint8' }] }, { x: '-1' })],
  ['int8 = -129', () => withMessage({ T: [{ name: 'x', type: 'int8' }] }, { x: -129 })],
  ['int8 = 128', () => withMessage({ T: [{ name: 'x', type: 'int8' }] }, { x: '128' })],
  ['uint256 = 2^256', () => withMessage({ T: [{ name: 'x', type: 'uint256' }] }, { x: (2n ** 256n).toString() })],
  ['int256 = 2^255', () => withMessage({ T: [{ name: 'x', type: 'int256' }] }, { x: (2n ** 255n).toString() })],
  ['integer as a fraction', () => withMessage({ T: [{ name: 'x', type: 'uint64' }] }, { x: 1.5 })],
  ['integer as an unsafe JSON number', () => '{"types":{"T":[{"name":"x","type":"uint256"}]},"primaryType":"T","domain":{},"message":{"x":12345678901234567890}}'],
  ['integer as an exponent string', () => withMessage({ T: [{ name: 'x', type: 'uint64' }] }, { x: '1e3' })],
  ['integer with a leading zero', () => withMessage({ T: [{ name: 'x', type: 'uint64' }] }, { x: '010' })],
  ['integer as an empty string', () => withMessage({ T: [{ name: 'x', type: 'uint64' }] }, { x: '' })],
  ['negative hex integer', () => withMessage({ T: [{ name: 'x', type: 'int64' }] }, { x: '-0x1' })],
  ['integer as a boolean', () => withMessage({ T: [{ name: 'x', type: 'uint64' }] }, { x: true })],
  ['bool as a string', () => withMessage({ T: [{ name: 'x', type: 'bool' }] }, { x: 'true' })],
  ['bool as 1', () => withMessage({ T: [{ name: 'x', type: 'bool' }] }, { x: 1 })],
  ['bytes: odd hex length', () => withMessage({ T: [{ name: 'x', type: 'bytes' }] }, { x: '0xabc' })],
  ['bytes: not hex', () => withMessage({ T: [{ name: 'x', type: 'bytes' }] }, { x: '0xzz' })],
  ['bytes: no 0x', () => withMessage({ T: [{ name: 'x', type: 'bytes' }] }, { x: 'abcd' })],
  ['bytes32 too short', () => withMessage({ T: [{ name: 'x', type: 'bytes32' }] }, { x: '0x' + '11'.repeat(31) })],
  ['bytes4 too long', () => withMessage({ T: [{ name: 'x', type: 'bytes4' }] }, { x: '0x1122334455' })],
  ['string with a lone surrogate', () => '{"types":{"T":[{"name":"x","type":"string"}]},"primaryType":"T","domain":{},"message":{"x":"\\ud800"}}'],
  ['fixed array of the wrong length', () => withMessage({ T: [{ name: 'x', type: 'uint8[2]' }] }, { x: [1, 2, 3] })],
  ['array value is an object', () => withMessage({ T: [{ name: 'x', type: 'uint8[]' }] }, { x: { 0: 1 } })],
  ['array element of the wrong type', () => withMessage({ T: [{ name: 'x', type: 'address[]' }] }, { x: [A1, 5] })],
  ['cycle through plain fields', () => withMessage({ A: [{ name: 'b', type: 'B' }], B: [{ name: 'a', type: 'A' }] }, { b: {} })],
  ['self-reference through a fixed array', () => withMessage({ A: [{ name: 'a', type: 'A[1]' }] }, { a: [] })],
  ['self-reference through a plain field', () => withMessage({ A: [{ name: 'x', type: 'uint8' }, { name: 'a', type: 'A' }] }, { x: 1, a: { x: 1 } })],
  ['__proto__ as a message', (d) => '{"types":' + JSON.stringify(d.types) + ',"primaryType":"Person","domain":{},"message":{"__proto__":{"name":"x","wallet":"' + A1 + '"}}}'],
];

describe('hostile documents fail with INVALID_TYPED_DATA, never a crash', () => {
  it.each(hostile)('%s', (_name, mutate) => {
    expectCode(() => hashTypedData(mutate(mail())), 'INVALID_TYPED_DATA');
  });
});

describe('fuzz: never anything but a clean OpenKeyError', () => {
  const clean = (input: unknown): void => {
    try {
      hashTypedData(input);
    } catch (e) {
      if (!isOpenKeyError(e) || (e.code !== 'INVALID_TYPED_DATA' && e.code !== 'PAYLOAD_TOO_LARGE')) throw e;
    }
  };
  it('truncate the Mail JSON anywhere', () => {
    const text = JSON.stringify(MAIL);
    for (let n = 0; n < text.length; n++) expectCode(() => hashTypedData(text.slice(0, n)), 'INVALID_TYPED_DATA');
  });
  it('flip characters of generated documents', () => {
    const rng = new Prng('eip712-fuzz');
    const junk = ['"', '{', '}', '[', ']', ',', ':', '0', '9', '-', 'x', '\\', ' ', 'e', 'n', '1'];
    for (let i = 0; i < 300; i++) {
      const text = JSON.stringify(genDoc(rng));
      const chars = [...text];
      for (let k = 0; k < 1 + rng.int(3); k++) chars[rng.int(chars.length)] = rng.pick(junk);
      clean(chars.join(''));
    }
  });
  it('replace a random leaf value with a value of another kind', () => {
    const rng = new Prng('eip712-leaf');
    const replacements: unknown[] = [null, true, 0, -1, 1.5, '', '0x', 'zz', [], {}, [[]], { a: 1 }, 2 ** 60, '-0', '0x' + 'f'.repeat(65)];
    for (let i = 0; i < 300; i++) {
      const doc = genDoc(rng) as unknown as Record<string, unknown>;
      let node: unknown = doc['message'];
      let parent: Record<string, unknown> | unknown[] = doc;
      let key: string | number = 'message';
      for (let depth = 0; depth < 6 && typeof node === 'object' && node !== null; depth++) {
        const keys: (string | number)[] = Array.isArray(node) ? node.map((_, j) => j) : Object.keys(node);
        if (keys.length === 0) break;
        parent = node as Record<string, unknown>;
        key = rng.pick(keys);
        node = (node as Record<string | number, unknown>)[key];
      }
      (parent as Record<string | number, unknown>)[key] = rng.pick(replacements);
      clean(doc);
    }
  });
  it('JSON nested 100 000 levels deep is refused without a stack overflow', () => {
    expectCode(() => hashTypedData('['.repeat(100_000) + ']'.repeat(100_000)), 'INVALID_TYPED_DATA');
    const deep = '{"types":{"T":[{"name":"x","type":"string"}]},"primaryType":"T","domain":{},"message":{"x":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}}';
    expectCode(() => hashTypedData(deep), 'INVALID_TYPED_DATA');
  });
});

describe('bounds ⇒ PAYLOAD_TOO_LARGE', () => {
  const small: Partial<Eip712Limits> = { maxDepth: 8, maxArrayLength: 16, maxValues: 100, maxTypes: 4, maxFieldsPerType: 4, maxJsonLength: 2000, maxDynamicBytes: 64, maxNameLength: 16 };
  const h = createEip712Hasher({ limits: small });
  const deepTree = (levels: number): unknown => (levels === 0 ? { label: 'leaf', children: [] } : { label: 'n', children: [deepTree(levels - 1)] });
  const tree = { Tree: [{ name: 'label', type: 'string' }, { name: 'children', type: 'Tree[]' }] };
  it.each([
    ['nesting deeper than maxDepth', withMessage(tree, deepTree(10) as Record<string, unknown>)],
    ['array longer than maxArrayLength', withMessage({ T: [{ name: 'x', type: 'uint8[]' }] }, { x: new Array(17).fill(1) })],
    ['fixed array type longer than maxArrayLength', withMessage({ T: [{ name: 'x', type: 'uint8[17]' }] }, { x: [] })],
    ['more than maxValues', withMessage({ T: [{ name: 'x', type: 'uint8[][]' }] }, { x: new Array(10).fill(new Array(12).fill(0)) })],
    ['more than maxTypes', withMessage(Object.fromEntries(['A', 'B', 'C', 'D', 'E'].map((n) => [n, [{ name: 'x', type: 'uint8' }]])), { x: 1 })],
    ['more than maxFieldsPerType', withMessage({ T: ['a', 'b', 'c', 'd', 'e'].map((n) => ({ name: n, type: 'uint8' })) }, {})],
    ['more dimensions than maxDepth', withMessage({ T: [{ name: 'x', type: 'uint8' + '[]'.repeat(9) }] }, { x: [] })],
    ['dynamic content beyond maxDynamicBytes', withMessage({ T: [{ name: 'x', type: 'string' }, { name: 'y', type: 'bytes' }] }, { x: 'a'.repeat(40), y: '0x' + '00'.repeat(40) })],
    ['name longer than maxNameLength', withMessage({ T: [{ name: 'x'.repeat(17), type: 'uint8' }] }, {})],
    ['JSON text longer than maxJsonLength', JSON.stringify(withMessage({ T: [{ name: 'x', type: 'string' }] }, { x: 'a'.repeat(3000) }))],
  ])('%s', (_name, doc) => {
    expectCode(() => h.hash(doc), 'PAYLOAD_TOO_LARGE');
  });

  it('the default limits survive a hostile deep recursion without a stack overflow', () => {
    const nested = deepTree(5000);
    let thrown: unknown;
    try {
      hashTypedData(withMessage(tree, nested as Record<string, unknown>));
    } catch (e) {
      thrown = e;
    }
    expect(isOpenKeyError(thrown) && thrown.code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('within the limits, the same documents hash', () => {
    expect(h.hash(withMessage(tree, deepTree(2) as Record<string, unknown>)).digest.length).toBe(32);
  });
});

describe('caches', () => {
  it('a schema compiles once; the domain separator is computed once per domain', () => {
    const h = createEip712Hasher();
    const a = h.hash(JSON.stringify(MAIL));
    const b = h.hash(JSON.stringify(MAIL));
    expect(hex(a.digest)).toBe(hex(b.digest));
    expect(h.stats()).toEqual({ schemaHits: 1, schemaMisses: 1, domainHits: 1, domainMisses: 1 });
    // Same types with the keys in another order: same canonical schema.
    const reordered = { ...MAIL, types: { Person: MAIL.types['Person'], Mail: MAIL.types['Mail'], EIP712Domain: MAIL.types['EIP712Domain'] } };
    expect(hex(h.hash(reordered).digest)).toBe(hex(a.digest));
    expect(h.stats().schemaHits).toBe(2);
  });

  it('a cached domain never lets an invalid domain through', () => {
    const h = createEip712Hasher();
    h.hash(MAIL);
    expectCode(() => h.hash({ ...MAIL, domain: { ...MAIL.domain, extra: 'x' } }), 'INVALID_TYPED_DATA');
    expectCode(() => h.hash({ ...MAIL, domain: { ...MAIL.domain, chainId: 1.5 } }), 'INVALID_TYPED_DATA');
  });

  it('field order is part of the schema: swapping two fields changes the hash', () => {
    const swapped = clone(MAIL);
    swapped.types['Person'] = [
      { name: 'wallet', type: 'address' },
      { name: 'name', type: 'string' },
    ];
    expect(ours(swapped)).not.toBe(ours(MAIL));
    expect(ours(swapped)).toBe(viemDigest(swapped));
  });

  it('results do not alias cached state', () => {
    const doc = { ...MAIL, domain: { ...MAIL.domain, salt: '0x' + '07'.repeat(32) }, types: { Person: MAIL.types['Person'] ?? [], Mail: MAIL.types['Mail'] ?? [] } };
    const r1 = hashTypedData(doc);
    r1.domain.salt?.fill(0);
    r1.domainSeparator.fill(0);
    const r2 = hashTypedData(doc);
    expect(hex(r2.domain.salt ?? new Uint8Array())).toBe('07'.repeat(32));
    expect(hex0x(r2.digest)).toBe(viemDigest(doc));
  });
});
