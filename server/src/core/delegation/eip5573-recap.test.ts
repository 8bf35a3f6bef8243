// EIP-5573 ReCaps: the resource encoding and the statement against TinyCloud's published fixture
// (reference §4.2) and siwe-recap's canonical JSON vector, JCS ordering, round trips, and a table of
// hostile resources that must each fail with a clean code.

import { describe, expect, it } from 'vitest';
import { isOpenKeyError } from '../errors.ts';
import { checkCapabilities, type CapabilityEntry } from './capability.ts';
import { canonicalJson, checkJson } from './jcs.ts';
import { checkRecapStatement, decodeRecap, encodeRecap, recapJson, recapStatement, siweStatementWithRecap } from './recap.ts';
import { expectCode, Prng } from './test-helpers.ts';

const ADDR = '0xd559CCd9EB87c530A9a349262669386dE93cf412';
const SPACE = `tinycloud:pkh:eip155:1:${ADDR}`;

// The capabilities of openkey:packages/capability-review/test/fixtures/explorer-permission-popup.ts
// (first three lines of its statement).
const explorer = checkCapabilities([
  { resource: `${SPACE}:account/kv/applications/`, ability: 'tinycloud.kv/put' },
  { resource: `${SPACE}:account/capabilities`, ability: 'tinycloud.capabilities/read' },
  { resource: `${SPACE}:account/kv/applications/`, ability: 'tinycloud.kv/get' },
  { resource: `${SPACE}:account/delegation`, ability: 'tinycloud.delegation/list' },
  { resource: `${SPACE}:account/kv/applications/`, ability: 'tinycloud.kv/list' },
]);

const b64json = (value: unknown): string => `urn:recap:${Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')}`;

describe('EIP-5573 ReCap resource and statement', () => {
  it('reproduces the statement TinyCloud signed in its explorer fixture', () => {
    expect(recapStatement(explorer)).toBe(
      'I further authorize the stated URI to perform the following actions on my behalf: ' +
        `(1) 'tinycloud.capabilities': 'read' for '${SPACE}:account/capabilities'. ` +
        `(2) 'tinycloud.delegation': 'list' for '${SPACE}:account/delegation'. ` +
        `(3) 'tinycloud.kv': 'get', 'list', 'put' for '${SPACE}:account/kv/applications/'.`,
    );
  });

  it('encodes canonical JSON {"att":…,"prf":[]} as unpadded base64url, like the fixture', () => {
    const uri = encodeRecap(explorer);
    expect(uri.startsWith('urn:recap:eyJhdHQiOnsidGlueWNsb3Vk')).toBe(true); // the fixture's visible prefix
    expect(uri).not.toContain('=');
    const json = Buffer.from(uri.slice('urn:recap:'.length), 'base64url').toString('utf8');
    expect(json).toBe(
      `{"att":{"${SPACE}:account/capabilities":{"tinycloud.capabilities/read":[{}]},` +
        `"${SPACE}:account/delegation":{"tinycloud.delegation/list":[{}]},` +
        `"${SPACE}:account/kv/applications/":{"tinycloud.kv/get":[{}],"tinycloud.kv/list":[{}],"tinycloud.kv/put":[{}]}},"prf":[]}`,
    );
    expect(decodeRecap(uri).capabilities).toEqual(explorer);
    expect(decodeRecap(uri).proofs).toEqual([]);
  });

  it('canonicalizes like serde_jcs (siwe-recap tests/serialized_cap.json)', () => {
    const expected =
      '{"att":{"http://example.com/public/photos/":{"crud/delete":[{}]},"mailto:username@example.com":{"msg/receive":[{"max_count":5,"templates":["newsletter","marketing"]}],"msg/send":[{"to":"someone@email.com"},{"to":"joe@email.com"}]}},"prf":["zM5K3WPEexRZN9x7ikg5LoijNjU2ytFTGJ6eeruGiN3Q9xkfGpMVei9cz5jMZAFUsmxXi9k"]}';
    const shuffled = JSON.parse(
      '{"prf":["zM5K3WPEexRZN9x7ikg5LoijNjU2ytFTGJ6eeruGiN3Q9xkfGpMVei9cz5jMZAFUsmxXi9k"],"att":{"mailto:username@example.com":{"msg/send":[{"to":"someone@email.com"},{"to":"joe@email.com"}],"msg/receive":[{"templates":["newsletter","marketing"],"max_count":5}]},"http://example.com/public/photos/":{"crud/delete":[{}]}}}',
    ) as unknown;
    expect(canonicalJson(checkJson(shuffled, { maxDepth: 10, maxNodes: 100, maxStringLength: 200, maxMembers: 10 }, 'vector'))).toBe(expected);
  });

  it('JCS sorts members by UTF-16 code units and writes strings like JSON.stringify', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'é\u2028"'], A: {}, _: -0 })).toBe('{"A":{},"_":0,"a":[true,null,"é\u2028\\""],"b":1}');
  });

  it('appends the ReCap statement to a caller statement with one space, and checks it back', () => {
    const s = siweStatementWithRecap(explorer, 'Delegate to the notes backend.');
    expect(s).toBe(`Delegate to the notes backend. ${recapStatement(explorer)}`);
    checkRecapStatement(s, explorer);
    checkRecapStatement(recapStatement(explorer), explorer);
    expectCode(() => checkRecapStatement(s.replace("'get'", "'del'"), explorer), 'MALFORMED_REQUEST');
    expectCode(() => checkRecapStatement(`x${recapStatement(explorer)}`, explorer), 'MALFORMED_REQUEST');
    expectCode(() => checkRecapStatement(undefined, explorer), 'MALFORMED_REQUEST');
    expectCode(() => checkRecapStatement(recapStatement(explorer.slice(1)), explorer), 'MALFORMED_REQUEST');
  });

  it('round-trips generated capability sets, caveats included', () => {
    const rng = new Prng('recap-roundtrip');
    const services: [string, string[]][] = [
      ['kv', ['get', 'put', 'del', 'list', 'metadata']],
      ['sql', ['read', 'write', 'admin']],
      ['capabilities', ['read']],
    ];
    for (let round = 0; round < 50; round++) {
      const raw: unknown[] = [];
      const n = 1 + rng.int(12);
      for (let i = 0; i < n; i++) {
        const [svc, actions] = rng.pick(services);
        const path = rng.pick(['', 'app/', 'app/x', 'app/x/y.json', 'a-b_c~d/']);
        const caveats = rng.bool() ? undefined : [{ tables: [rng.pick(['a', 'b'])] }, ...(rng.bool() ? [{ n: rng.int(100) }] : [])];
        raw.push({ resource: `${SPACE}:${rng.pick(['applications', 'default'])}/${svc}${path === '' ? '' : `/${path}`}`, ability: `tinycloud.${svc}/${rng.pick(actions)}`, ...(caveats ? { caveats } : {}) });
      }
      const caps = checkCapabilities(raw);
      const uri = encodeRecap(caps);
      expect(decodeRecap(uri).capabilities).toEqual(caps);
      expect(JSON.parse(recapJson(caps)) as unknown).toEqual(JSON.parse(Buffer.from(uri.slice(10), 'base64url').toString()) as unknown);
    }
  });

  it('truncating the resource anywhere is a clean refusal, never a crash', () => {
    const uri = encodeRecap(explorer);
    for (let cut = 0; cut < uri.length; cut++) {
      let err: unknown;
      try {
        decodeRecap(uri.slice(0, cut));
      } catch (e) {
        err = e;
      }
      expect(isOpenKeyError(err), `cut at ${cut}`).toBe(true);
    }
  });
});

describe('EIP-5573 hostile ReCap resources', () => {
  const R = `${SPACE}:applications/kv/app/`;
  const ok = { att: { [R]: { 'tinycloud.kv/get': [{}] } }, prf: [] };
  const canonicalOk = canonicalJson(ok);
  const table: [string, unknown, string][] = [
    ['not a recap URN', 'urn:other:e30', 'MALFORMED_REQUEST'],
    ['padded base64url', `urn:recap:${Buffer.from(`${canonicalOk} `).toString('base64url')}=`, 'MALFORMED_REQUEST'],
    ['non-zero trailing bits', `${b64json(canonicalOk).slice(0, -1)}${String.fromCharCode(b64json(canonicalOk).charCodeAt(b64json(canonicalOk).length - 1) + 1)}`, 'MALFORMED_REQUEST'],
    ['standard base64 alphabet', `urn:recap:${Buffer.from(`${canonicalOk}??>`).toString('base64')}`, 'MALFORMED_REQUEST'],
    ['whitespace in JSON', b64json(JSON.stringify(ok, null, 1)), 'MALFORMED_REQUEST'],
    ['members out of order', b64json(`{"prf":[],"att":${canonicalJson(ok.att)}}`), 'MALFORMED_REQUEST'],
    ['duplicate member', b64json(`{"att":${canonicalJson(ok.att)},"att":${canonicalJson(ok.att)},"prf":[]}`), 'MALFORMED_REQUEST'],
    ['extra member', b64json({ ...ok, nb: 1 }), 'MALFORMED_REQUEST'],
    ['missing prf', b64json({ att: ok.att }), 'MALFORMED_REQUEST'],
    ['empty att', b64json({ att: {}, prf: [] }), 'MALFORMED_REQUEST'],
    ['empty caveat list', b64json({ att: { [R]: { 'tinycloud.kv/get': [] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['caveat that is not an object', b64json({ att: { [R]: { 'tinycloud.kv/get': ['x'] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['float caveat', b64json({ att: { [R]: { 'tinycloud.kv/get': [{ n: 1.5 }] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['deeply nested caveat', b64json({ att: { [R]: { 'tinycloud.kv/get': [JSON.parse(`${'{"a":'.repeat(40)}1${'}'.repeat(40)}`) as unknown] } }, prf: [] }), 'PAYLOAD_TOO_LARGE'],
    ['wildcard ability', b64json({ att: { [R]: { 'tinycloud.kv/*': [{}] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['ability of another service', b64json({ att: { [R]: { 'tinycloud.sql/read': [{}] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['dot-dot path', b64json({ att: { [`${SPACE}:applications/kv/app/../secrets/`]: { 'tinycloud.kv/get': [{}] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['percent-encoded path', b64json({ att: { [`${SPACE}:applications/kv/app%2F..%2F`]: { 'tinycloud.kv/get': [{}] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['lowercase (non-EIP-55) owner', b64json({ att: { [`tinycloud:pkh:eip155:1:${ADDR.toLowerCase()}:applications/kv/app/`]: { 'tinycloud.kv/get': [{}] } }, prf: [] }), 'MALFORMED_REQUEST'],
    ['non-base58 proof', b64json({ ...ok, prf: ['bafy0OIl'] }), 'MALFORMED_REQUEST'],
    ['invalid UTF-8', `urn:recap:${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}`, 'MALFORMED_REQUEST'],
    ['oversized', `urn:recap:${'A'.repeat(64 * 1024)}`, 'PAYLOAD_TOO_LARGE'],
    ['not a string', 42, 'MALFORMED_REQUEST'],
  ];
  it.each(table.map(([name, input, code]) => ({ name, input, code })))('$name → $code', ({ input, code }) => {
    expectCode(() => decodeRecap(input), code as 'MALFORMED_REQUEST');
  });

  it('the untampered base case decodes (so the table tests what it says)', () => {
    expect(decodeRecap(b64json(canonicalOk)).capabilities).toEqual([{ resource: R, ability: 'tinycloud.kv/get', caveats: [{}] }] satisfies CapabilityEntry[]);
  });
});
