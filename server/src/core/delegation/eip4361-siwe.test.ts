// EIP-4361 messages: our formatter agrees byte for byte with the `siwe` library's, `siwe` parses our
// text back to the same fields, our strict parser round-trips, and hostile texts are refused with a
// clean code (never a crash).

import { describe, expect, it } from 'vitest';
import { SiweMessage } from 'siwe';
import { isOpenKeyError } from '../errors.ts';
import { checkCapabilities } from './capability.ts';
import { encodeRecap, siweStatementWithRecap } from './recap.ts';
import { formatSiwe, isoTime, parseSiwe, parseTime, type SiweFields } from './siwe.ts';
import { edKey, expectCode, res, secpOwner, T0 } from './test-helpers.ts';

const owner = secpOwner();
const delegate = edKey('backend');
const caps = checkCapabilities([
  { resource: res(owner.did, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' },
  { resource: res(owner.did, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/list' },
]);

const fields: SiweFields = {
  domain: 'openkey.example',
  address: owner.address,
  statement: siweStatementWithRecap(caps),
  uri: delegate.didUrl,
  version: '1',
  chainId: 1,
  nonce: '232ratJEc7Euq9sfv',
  issuedAt: isoTime(T0),
  expirationTime: isoTime(T0 + 3_600_000),
  notBefore: isoTime(T0 + 1000),
  requestId: 'req-1',
  resources: [encodeRecap(caps)],
};

describe('EIP-4361 messages', () => {
  it('formats exactly as the siwe library does, and siwe parses it back to the same fields', () => {
    const text = formatSiwe(fields);
    expect(new SiweMessage({ ...fields, resources: [...fields.resources] }).prepareMessage()).toBe(text);
    const parsed = new SiweMessage(text);
    expect(parsed.domain).toBe(fields.domain);
    expect(parsed.address).toBe(fields.address);
    expect(parsed.statement).toBe(fields.statement);
    expect(parsed.uri).toBe(fields.uri);
    expect(parsed.version).toBe('1');
    expect(parsed.chainId).toBe(1);
    expect(parsed.nonce).toBe(fields.nonce);
    expect(parsed.issuedAt).toBe(fields.issuedAt);
    expect(parsed.expirationTime).toBe(fields.expirationTime);
    expect(parsed.notBefore).toBe(fields.notBefore);
    expect(parsed.requestId).toBe(fields.requestId);
    expect(parsed.resources).toEqual(fields.resources);
  });

  it('lays out the TinyCloud shape: statement, DID URL as URI, Chain ID 1, one urn:recap resource', () => {
    const text = formatSiwe(fields);
    const lines = text.split('\n');
    expect(lines[0]).toBe('openkey.example wants you to sign in with your Ethereum account:');
    expect(lines[1]).toBe(owner.address);
    expect(lines[3]?.startsWith('I further authorize the stated URI to perform the following actions on my behalf: (1) ')).toBe(true);
    expect(lines).toContain(`URI: ${delegate.didUrl}`);
    expect(lines.at(-2)).toBe('Resources:');
    expect(lines.at(-1)?.startsWith('- urn:recap:')).toBe(true);
  });

  it('round-trips with and without the optional fields', () => {
    const minimal: SiweFields = { domain: 'localhost:4361', address: owner.address, uri: 'https://localhost/login', version: '1', chainId: 10, nonce: 'abcdefgh', issuedAt: '2021-12-07T18:28:18.807Z', resources: [] };
    for (const f of [fields, minimal, { ...minimal, statement: 'Sign in.' }]) {
      const text = formatSiwe(f);
      expect(parseSiwe(text)).toEqual(f);
      expect(new SiweMessage(text).prepareMessage()).toBe(text);
    }
  });

  it('parses RFC 3339 times strictly', () => {
    expect(parseTime('2026-08-03T11:09:48.243Z')).toBe(T0);
    expect(parseTime('2026-08-03T13:09:48.243+02:00')).toBe(T0);
    expect(parseTime('0001-01-01T00:00:00Z')).toBe(Date.UTC(2001, 0, 1) - 2000 * 365.2425 * 86_400_000);
    for (const bad of ['2026-02-30T00:00:00Z', '2026-13-01T00:00:00Z', '2026-08-03T24:00:00Z', '2026-08-03T11:09:60Z', '2026-08-03 11:09:48Z', '2026-08-03T11:09:48', '2026-08-03T11:09:48.Z', '+002026-08-03T11:09:48Z']) {
      expectCode(() => parseTime(bad), 'MALFORMED_REQUEST');
    }
  });
});

describe('EIP-4361 hostile messages', () => {
  const good = formatSiwe(fields);
  const table: [string, string][] = [
    ['CRLF line ends', good.replace(/\n/g, '\r\n')],
    ['trailing newline', `${good}\n`],
    ['scheme prefix', `https://${good}`],
    ['lowercase address', good.replace(owner.address, owner.address.toLowerCase())],
    ['bad checksum', good.replace(owner.address, owner.address.slice(0, -1) + (owner.address.endsWith('a') ? 'b' : 'a'))],
    ['fields out of order', good.replace(/Version: 1\nChain ID: 1/, 'Chain ID: 1\nVersion: 1')],
    ['version 2', good.replace('Version: 1', 'Version: 2')],
    ['chain id with leading zero', good.replace('Chain ID: 1', 'Chain ID: 01')],
    ['short nonce', good.replace(fields.nonce, 'abc')],
    ['non-alphanumeric nonce', good.replace(fields.nonce, 'abc-defgh')],
    ['impossible date', good.replace(fields.issuedAt, '2026-02-30T00:00:00.000Z')],
    ['percent in statement', good.replace('(1)', '(1%)')],
    ['statement split over lines', good.replace(' (1) ', '\n(1) ')],
    ['resource without dash', good.replace('- urn:recap:', 'urn:recap:')],
    ['empty resources list', good.slice(0, good.indexOf('\n- urn:recap:'))],
    ['unknown field', good.replace('Request ID:', 'Request Id:')],
    ['missing issued at', good.replace(/Issued At: [^\n]*\n/, '')],
    ['header only', good.split('\n')[0] as string],
    ['oversized', good + 'x'.repeat(70 * 1024)],
  ];
  it.each(table.map(([name, text]) => ({ name, text })))('$name', ({ text }) => {
    let err: unknown;
    try {
      parseSiwe(text);
    } catch (e) {
      err = e;
    }
    expect(isOpenKeyError(err)).toBe(true);
  });

  it('truncating the message anywhere never crashes: a clean refusal, or a shorter message that round-trips', () => {
    let refused = 0;
    for (let cut = 0; cut < good.length; cut++) {
      const text = good.slice(0, cut);
      try {
        expect(formatSiwe(parseSiwe(text))).toBe(text); // e.g. cut inside the ReCap resource: still a URI
      } catch (e) {
        expect(isOpenKeyError(e), `cut at ${cut}`).toBe(true);
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(good.length / 2);
  });

  it('refuses to format invalid fields', () => {
    expectCode(() => formatSiwe({ ...fields, domain: 'evil.example/path' }), 'MALFORMED_REQUEST');
    expectCode(() => formatSiwe({ ...fields, statement: 'line\nbreak' }), 'MALFORMED_REQUEST');
    expectCode(() => formatSiwe({ ...fields, uri: 'not a uri' }), 'MALFORMED_REQUEST');
    expectCode(() => formatSiwe({ ...fields, chainId: 0 }), 'MALFORMED_REQUEST');
    expectCode(() => formatSiwe({ ...fields, requestId: 'a b' }), 'MALFORMED_REQUEST');
    expectCode(() => formatSiwe({ ...fields, resources: ['- injected'] }), 'MALFORMED_REQUEST');
  });
});
