// CACAO (CAIP-74) for a signed SIWE: `{h:{t:"eip4361"}, p:{domain, iss, aud, version, nonce, iat,
// exp?, nbf?, statement?, requestId?, resources}, s:{t:"eip191", s:<65 bytes>}}` in DAG-CBOR, as
// TinyCloud's `SiweCacao` encodes it; the Authorization header is padded base64url of those bytes and
// the delegation CID is CIDv1(raw 0x55, BLAKE3-256 0x1e) of the same bytes.

import * as dagCbor from '@ipld/dag-cbor';
import { blake3 } from '@noble/hashes/blake3';
import { CID } from 'multiformats/cid';
import { create as createDigest } from 'multiformats/hashes/digest';
import { OpenKeyError } from '../errors.ts';
import { equalBytes } from '../bytes.ts';
import { addressFromPublicKey } from '../crypto/address.ts';
import { hashPersonalMessage } from '../crypto/eip191.ts';
import { createNobleSecp256k1Backend, type Secp256k1Backend } from '../crypto/secp256k1.ts';
import { base64urlDecode, base64urlEncode } from './base64url.ts';
import { isPlainObject } from './jcs.ts';
import { parseOwnerDid } from './resource.ts';
import { formatSiwe, MAX_SIWE_CHARS, type SiweFields } from './siwe.ts';

export const RAW_CODEC = 0x55;
export const BLAKE3_256 = 0x1e;
export const MAX_CACAO_BYTES = 64 * 1024;
const MAX_AUTHORIZATION_CHARS = Math.ceil(MAX_CACAO_BYTES / 3) * 4;

export interface CacaoPayload {
  readonly domain: string;
  /** `did:pkh:eip155:<chain id>:<EIP-55 address>` of the signer. */
  readonly iss: string;
  /** The SIWE URI: the delegate's DID URL. */
  readonly aud: string;
  readonly version: '1';
  readonly nonce: string;
  readonly iat: string;
  readonly exp?: string;
  readonly nbf?: string;
  readonly statement?: string;
  readonly requestId?: string;
  readonly resources: readonly string[];
}

export interface SiweCacao {
  readonly h: { readonly t: 'eip4361' };
  readonly p: CacaoPayload;
  readonly s: { readonly t: 'eip191'; readonly s: Uint8Array };
}

/** The CACAO of a SIWE message and its 65-byte EIP-191 signature (r‖s‖v). */
export function cacaoFromSiwe(fields: SiweFields, signature: Uint8Array): SiweCacao {
  if (!(signature instanceof Uint8Array) || signature.length !== 65) throw new OpenKeyError('MALFORMED_REQUEST', 'EIP-191 signature must be 65 bytes');
  formatSiwe(fields); // checks every field
  const p: CacaoPayload = {
    domain: fields.domain,
    iss: `did:pkh:eip155:${fields.chainId}:${fields.address}`,
    aud: fields.uri,
    version: fields.version,
    nonce: fields.nonce,
    iat: fields.issuedAt,
    ...(fields.expirationTime !== undefined ? { exp: fields.expirationTime } : {}),
    ...(fields.notBefore !== undefined ? { nbf: fields.notBefore } : {}),
    ...(fields.statement !== undefined ? { statement: fields.statement } : {}),
    ...(fields.requestId !== undefined ? { requestId: fields.requestId } : {}),
    resources: [...fields.resources],
  };
  return { h: { t: 'eip4361' }, p, s: { t: 'eip191', s: Uint8Array.from(signature) } };
}

/** The SIWE fields a CACAO signs (inverse of cacaoFromSiwe). */
export function siweFromCacao(cacao: SiweCacao): SiweFields {
  const iss = parseOwnerDid(cacao.p.iss);
  if (iss.method !== 'pkh') throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO iss must be did:pkh');
  const p = cacao.p;
  return {
    domain: p.domain,
    address: iss.address,
    ...(p.statement !== undefined ? { statement: p.statement } : {}),
    uri: p.aud,
    version: p.version,
    chainId: iss.chainId,
    nonce: p.nonce,
    issuedAt: p.iat,
    ...(p.exp !== undefined ? { expirationTime: p.exp } : {}),
    ...(p.nbf !== undefined ? { notBefore: p.nbf } : {}),
    ...(p.requestId !== undefined ? { requestId: p.requestId } : {}),
    resources: [...p.resources],
  };
}

/** DAG-CBOR bytes of a CACAO (map keys in DAG-CBOR canonical order; absent fields omitted). */
export function encodeCacao(cacao: SiweCacao): Uint8Array {
  const bytes = dagCbor.encode(cacao);
  if (bytes.length > MAX_CACAO_BYTES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `CACAO over ${MAX_CACAO_BYTES} bytes`);
  return bytes;
}

const PAYLOAD_KEYS = new Set(['domain', 'iss', 'aud', 'version', 'nonce', 'iat', 'exp', 'nbf', 'statement', 'requestId', 'resources']);
const OPTIONAL_KEYS = ['exp', 'nbf', 'statement', 'requestId'] as const;

function exactKeys(v: Record<string, unknown>, keys: readonly string[], label: string): void {
  const got = Object.keys(v);
  if (got.length !== keys.length || !keys.every((k) => Object.hasOwn(v, k))) throw new OpenKeyError('MALFORMED_REQUEST', `CACAO ${label} members`);
}

function str(v: unknown, label: string): string {
  if (typeof v !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', `CACAO ${label} must be a string`);
  return v;
}

/**
 * Decodes DAG-CBOR bytes into a checked CACAO: strict DAG-CBOR (the decoder refuses non-canonical
 * encodings), exactly the members above, a 65-byte signature, a payload that is a well-formed SIWE,
 * and bytes that re-encode identically.
 */
export function decodeCacao(bytes: Uint8Array): SiweCacao {
  if (!(bytes instanceof Uint8Array)) throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO bytes');
  if (bytes.length > MAX_CACAO_BYTES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `CACAO over ${MAX_CACAO_BYTES} bytes`);
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch (e) {
    throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO is not DAG-CBOR', { cause: e });
  }
  if (!isPlainObject(value)) throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO is not a map');
  exactKeys(value, ['h', 'p', 's'], 'top-level');
  const h = value['h'];
  const s = value['s'];
  const p = value['p'];
  if (!isPlainObject(h) || !isPlainObject(s) || !isPlainObject(p)) throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO h, p and s must be maps');
  exactKeys(h, ['t'], 'header');
  if (h['t'] !== 'eip4361') throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO header type must be eip4361');
  exactKeys(s, ['t', 's'], 'signature');
  if (s['t'] !== 'eip191') throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO signature type must be eip191');
  const sig = s['s'];
  if (!(sig instanceof Uint8Array) || sig.length !== 65) throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO signature must be 65 bytes');
  for (const k of Object.keys(p)) if (!PAYLOAD_KEYS.has(k)) throw new OpenKeyError('MALFORMED_REQUEST', `CACAO payload member ${k}`);
  const resources = p['resources'];
  if (!Array.isArray(resources)) throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO resources must be a list');
  const optional: Partial<Record<(typeof OPTIONAL_KEYS)[number], string>> = {};
  for (const k of OPTIONAL_KEYS) if (Object.hasOwn(p, k)) optional[k] = str(p[k], k);
  if (p['version'] !== '1') throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO version must be "1"');
  const payload: CacaoPayload = {
    domain: str(p['domain'], 'domain'),
    iss: str(p['iss'], 'iss'),
    aud: str(p['aud'], 'aud'),
    version: '1',
    nonce: str(p['nonce'], 'nonce'),
    iat: str(p['iat'], 'iat'),
    ...(optional.exp !== undefined ? { exp: optional.exp } : {}),
    ...(optional.nbf !== undefined ? { nbf: optional.nbf } : {}),
    ...(optional.statement !== undefined ? { statement: optional.statement } : {}),
    ...(optional.requestId !== undefined ? { requestId: optional.requestId } : {}),
    resources: resources.map((r: unknown) => str(r, 'resource')),
  };
  const cacao: SiweCacao = { h: { t: 'eip4361' }, p: payload, s: { t: 'eip191', s: Uint8Array.from(sig) } };
  formatSiwe(siweFromCacao(cacao)); // the payload must be a valid SIWE message
  if (!equalBytes(encodeCacao(cacao), bytes)) throw new OpenKeyError('MALFORMED_REQUEST', 'CACAO is not in canonical form');
  return cacao;
}

/** The SIWE message text a CACAO's signature covers. */
export function cacaoMessage(cacao: SiweCacao): string {
  const text = formatSiwe(siweFromCacao(cacao));
  if (text.length > MAX_SIWE_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', 'SIWE message too long');
  return text;
}

let recoverer: Secp256k1Backend | undefined;

/**
 * The EIP-55 address that signed `message` with EIP-191 personal_sign, or undefined when the
 * signature is not 65 bytes with v ∈ {27, 28} or does not recover.
 */
export function recoverPersonalSigner(message: Uint8Array, signature: Uint8Array): string | undefined {
  const v = signature[64];
  if (signature.length !== 65 || (v !== 27 && v !== 28)) return undefined;
  recoverer ??= createNobleSecp256k1Backend();
  try {
    return addressFromPublicKey(recoverer.recover(hashPersonalMessage(message), signature));
  } catch (e) {
    if (e instanceof OpenKeyError) return undefined; // r or s out of range, or no curve point: not a signature
    throw e;
  }
}

/** True iff the CACAO's EIP-191 signature over its SIWE text recovers to the address in `iss`. */
export function verifyCacaoSignature(cacao: SiweCacao): boolean {
  const fields = siweFromCacao(cacao);
  return recoverPersonalSigner(new TextEncoder().encode(formatSiwe(fields)), cacao.s.s) === fields.address;
}

/** CIDv1, raw codec, BLAKE3-256 multihash of `bytes`, in its default base32 ('b…') string form. */
export function blake3RawCid(bytes: Uint8Array): string {
  return CID.createV1(RAW_CODEC, createDigest(BLAKE3_256, blake3(bytes, { dkLen: 32 }))).toString();
}

/** The `Authorization` header value TinyCloud expects for a CACAO: padded base64url (Rust URL_SAFE). */
export function cacaoAuthorization(bytes: Uint8Array): string {
  return base64urlEncode(bytes, true);
}

/** The CACAO bytes inside an Authorization header value. */
export function cacaoFromAuthorization(header: unknown): Uint8Array {
  return base64urlDecode(header, { padded: true, maxChars: MAX_AUTHORIZATION_CHARS, label: 'CACAO Authorization' });
}
