// Sign-In with Ethereum (EIP-4361) messages, for what the appliance issues: no scheme prefix, an
// EIP-55 address, a statement, the delegate's DID URL as URI, Version 1, and RFC 3339 times. The
// parser is strict and line-exact: it accepts a message only if formatting its fields reproduces the
// text byte for byte, so what a wallet/user reads and what a verifier parses cannot differ.

import { OpenKeyError } from '../errors.ts';
import { normalizeAddress } from '../crypto/address.ts';

export const MAX_SIWE_CHARS = 64 * 1024;
export const MAX_SIWE_RESOURCES = 16;
const MAX_STATEMENT_CHARS = 48 * 1024; // the ReCap statement lists every capability
const MAX_URI_CHARS = 512;
const MAX_RESOURCE_CHARS = 48 * 1024;

export interface SiweFields {
  /** RFC 3986 authority (host[:port]) of the relying party. */
  readonly domain: string;
  /** EIP-55 checksummed. */
  readonly address: string;
  readonly statement?: string;
  readonly uri: string;
  readonly version: '1';
  readonly chainId: number;
  readonly nonce: string;
  readonly issuedAt: string;
  readonly expirationTime?: string;
  readonly notBefore?: string;
  readonly requestId?: string;
  readonly resources: readonly string[];
}

const HEADER_SUFFIX = ' wants you to sign in with your Ethereum account:';
// EIP-4361 ABNF: domain is an RFC 3986 authority; we accept host names/IPv4 and an optional port.
const DOMAIN_RE = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?$/;
// statement = *( reserved / unreserved / " " ) — no '%', no line breaks.
const STATEMENT_RE = /^[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;= ]*$/;
// URI characters of RFC 3986 (reserved, unreserved, '%'), starting with a scheme.
const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]*$/;
const NONCE_RE = /^[A-Za-z0-9]{8,64}$/;
const REQUEST_ID_RE = /^[A-Za-z0-9\-._~]{1,128}$/;
const CHAIN_ID_RE = /^[1-9][0-9]{0,15}$/;
const RFC3339_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$/;

/** The latest instant an RFC 3339 / ISO 8601 four-digit-year timestamp can name. */
export const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** `YYYY-MM-DDTHH:MM:SS.sssZ` for a millisecond epoch time (what TinyCloud and viem write). */
export function isoTime(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_TIME_MS) throw new OpenKeyError('MALFORMED_REQUEST', 'time out of range');
  return new Date(ms).toISOString();
}

/** Parses an RFC 3339 date-time (no leap seconds) to epoch milliseconds; MALFORMED_REQUEST otherwise. */
export function parseTime(text: unknown, label = 'time'): number {
  const m = typeof text === 'string' ? RFC3339_RE.exec(text) : null;
  if (m === null) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not an RFC 3339 date-time`);
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || s > 59) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not a valid date-time`);
  const zone = m[8] as string;
  let offset = 0;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: bad offset`);
    offset = (zone[0] === '+' ? 1 : -1) * (oh * 60 + om) * 60_000;
  }
  const frac = m[7] === undefined ? 0 : Number(`${m[7].slice(1)}00`.slice(0, 3)); // milliseconds, truncated
  const utc = new Date(0);
  utc.setUTCFullYear(y, mo - 1, d); // setUTCFullYear keeps years 0–99 literal (Date.UTC would add 1900)
  utc.setUTCHours(h, mi, s, frac);
  return utc.getTime() - offset;
}

function checkFields(f: SiweFields): void {
  const bad = (field: string): never => {
    throw new OpenKeyError('MALFORMED_REQUEST', `SIWE ${field}`);
  };
  if (typeof f.domain !== 'string' || !DOMAIN_RE.test(f.domain)) bad('domain');
  if (typeof f.address !== 'string' || normalizeAddress(f.address) !== f.address) bad('address (must be EIP-55)');
  if (f.statement !== undefined) {
    if (typeof f.statement !== 'string' || f.statement.length > MAX_STATEMENT_CHARS || !STATEMENT_RE.test(f.statement)) bad('statement');
  }
  if (typeof f.uri !== 'string' || f.uri.length > MAX_URI_CHARS || !URI_RE.test(f.uri)) bad('URI');
  if (f.version !== '1') bad('version');
  if (!Number.isSafeInteger(f.chainId) || f.chainId < 1) bad('chain id');
  if (typeof f.nonce !== 'string' || !NONCE_RE.test(f.nonce)) bad('nonce');
  parseTime(f.issuedAt, 'SIWE Issued At');
  if (f.expirationTime !== undefined) parseTime(f.expirationTime, 'SIWE Expiration Time');
  if (f.notBefore !== undefined) parseTime(f.notBefore, 'SIWE Not Before');
  if (f.requestId !== undefined && (typeof f.requestId !== 'string' || !REQUEST_ID_RE.test(f.requestId))) bad('request id');
  if (!Array.isArray(f.resources) || f.resources.length > MAX_SIWE_RESOURCES) bad('resources');
  for (const r of f.resources) if (typeof r !== 'string' || r.length > MAX_RESOURCE_CHARS || !URI_RE.test(r)) bad('resource');
}

/** The EIP-4361 text of `fields` (checked first; MALFORMED_REQUEST for any invalid field). */
export function formatSiwe(fields: SiweFields): string {
  checkFields(fields);
  const lines = [`${fields.domain}${HEADER_SUFFIX}`, fields.address, ''];
  if (fields.statement !== undefined) lines.push(fields.statement, '');
  else lines.push('');
  lines.push(`URI: ${fields.uri}`, `Version: ${fields.version}`, `Chain ID: ${fields.chainId}`, `Nonce: ${fields.nonce}`, `Issued At: ${fields.issuedAt}`);
  if (fields.expirationTime !== undefined) lines.push(`Expiration Time: ${fields.expirationTime}`);
  if (fields.notBefore !== undefined) lines.push(`Not Before: ${fields.notBefore}`);
  if (fields.requestId !== undefined) lines.push(`Request ID: ${fields.requestId}`);
  if (fields.resources.length > 0) lines.push('Resources:', ...fields.resources.map((r) => `- ${r}`));
  const text = lines.join('\n');
  if (text.length > MAX_SIWE_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `SIWE message over ${MAX_SIWE_CHARS} characters`);
  return text;
}

/**
 * Parses EIP-4361 text in the form formatSiwe writes (fields in the specification's order, LF line
 * ends, no scheme). MALFORMED_REQUEST for anything else, including a text that formats differently.
 */
export function parseSiwe(text: unknown): SiweFields {
  if (typeof text !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE message is not text');
  if (text.length > MAX_SIWE_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `SIWE message over ${MAX_SIWE_CHARS} characters`);
  const lines = text.split('\n');
  let i = 0;
  const next = (): string => {
    const l = lines[i++];
    if (l === undefined) throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE message is truncated');
    return l;
  };
  const field = (prefix: string): string => {
    const l = next();
    if (!l.startsWith(prefix)) throw new OpenKeyError('MALFORMED_REQUEST', `SIWE expected "${prefix.trim()}"`);
    return l.slice(prefix.length);
  };
  const optional = (prefix: string): string | undefined => (lines[i]?.startsWith(prefix) === true ? field(prefix) : undefined);

  const header = next();
  if (!header.endsWith(HEADER_SUFFIX)) throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE header');
  const domain = header.slice(0, header.length - HEADER_SUFFIX.length);
  const address = next();
  if (next() !== '') throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE expected a blank line');
  let statement: string | undefined;
  const l3 = next();
  if (l3 !== '') {
    statement = l3;
    if (next() !== '') throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE expected a blank line after the statement');
  }
  const uri = field('URI: ');
  const version = field('Version: ');
  const chainText = field('Chain ID: ');
  const nonce = field('Nonce: ');
  const issuedAt = field('Issued At: ');
  const expirationTime = optional('Expiration Time: ');
  const notBefore = optional('Not Before: ');
  const requestId = optional('Request ID: ');
  const resources: string[] = [];
  if (i < lines.length) {
    if (next() !== 'Resources:') throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE unexpected line');
    while (i < lines.length) {
      if (resources.length >= MAX_SIWE_RESOURCES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_SIWE_RESOURCES} SIWE resources`);
      resources.push(field('- '));
    }
  }
  if (version !== '1') throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE version must be 1');
  if (!CHAIN_ID_RE.test(chainText)) throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE chain id');
  const fields: SiweFields = {
    domain,
    address,
    ...(statement !== undefined ? { statement } : {}),
    uri,
    version,
    chainId: Number(chainText),
    nonce,
    issuedAt,
    ...(expirationTime !== undefined ? { expirationTime } : {}),
    ...(notBefore !== undefined ? { notBefore } : {}),
    ...(requestId !== undefined ? { requestId } : {}),
    resources,
  };
  if (formatSiwe(fields) !== text) throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE message is not in canonical form');
  return fields;
}
