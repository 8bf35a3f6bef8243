// ReCap (EIP-5573): a capability set as the SIWE resource `urn:recap:<base64url(JCS JSON)>` with
// JSON `{"att":{<resource>:{<ability>:[<caveat>…]}},"prf":[…]}`, and the human-readable statement
// that must match it ("I further authorize the stated URI to perform the following actions on my
// behalf: (1) 'ns': 'a', 'b' for 'resource'. …"), as TinyCloud's siwe-recap generates and checks it.

import { OpenKeyError } from '../errors.ts';
import { base64urlDecode, base64urlEncode } from './base64url.ts';
import { canonicalizeEntries, checkCaveats, MAX_CAPABILITIES, type CapabilityEntry, type Caveat } from './capability.ts';
import { canonicalJson, decodeUtf8, isPlainObject, parseJsonText, type JsonObject } from './jcs.ts';
import { parseAbility, parseResource } from './resource.ts';
import { base58btcDecode } from '../crypto/base58.ts';

export const RECAP_PREFIX = 'urn:recap:';
export const RECAP_STATEMENT_PREFIX = 'I further authorize the stated URI to perform the following actions on my behalf:';
/** Longest `urn:recap:` resource we build or parse. */
export const MAX_RECAP_CHARS = 48 * 1024;
const MAX_PROOFS = 16;

/** The `att` object: resource → ability → caveats (ReCap and UCAN share this shape). */
export function recapAttenuations(entries: readonly CapabilityEntry[]): JsonObject {
  const att: Record<string, Record<string, readonly Caveat[]>> = {};
  for (const e of entries) {
    const abilities = (att[e.resource] ??= {});
    abilities[e.ability] = e.caveats;
  }
  return att;
}

/** The canonical (RFC 8785) JSON of a ReCap with these capabilities and proofs. */
export function recapJson(entries: readonly CapabilityEntry[], proofs: readonly string[] = []): string {
  return canonicalJson({ att: recapAttenuations(entries), prf: [...proofs] });
}

/** `urn:recap:` + base64url (unpadded) of the canonical JSON. Entries must be canonical (capability.ts). */
export function encodeRecap(entries: readonly CapabilityEntry[], proofs: readonly string[] = []): string {
  if (entries.length === 0) throw new OpenKeyError('MISSING_FIELD', 'a ReCap needs at least one capability');
  const uri = RECAP_PREFIX + base64urlEncode(new TextEncoder().encode(recapJson(entries, proofs)));
  if (uri.length > MAX_RECAP_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `ReCap resource over ${MAX_RECAP_CHARS} characters`);
  return uri;
}

/**
 * The statement siwe-recap derives from a capability set: resources in order; within a resource,
 * abilities grouped by namespace (namespaces in order), action names in order; lines numbered from
 * 1. Our resources and abilities are ASCII, so JCS order, Rust BTreeMap order and this order agree.
 */
export function recapStatement(entries: readonly CapabilityEntry[]): string {
  const lines: string[] = [];
  const byResource = new Map<string, Map<string, string[]>>();
  for (const e of entries) {
    const slash = e.ability.indexOf('/');
    const namespaces = byResource.get(e.resource) ?? new Map<string, string[]>();
    byResource.set(e.resource, namespaces);
    const ns = e.ability.slice(0, slash);
    const names = namespaces.get(ns) ?? [];
    namespaces.set(ns, names);
    names.push(e.ability.slice(slash + 1));
  }
  for (const resource of [...byResource.keys()].sort()) {
    const namespaces = byResource.get(resource) as Map<string, string[]>;
    for (const ns of [...namespaces.keys()].sort()) {
      const names = (namespaces.get(ns) as string[]).sort().map((n) => `'${n}'`);
      lines.push(`'${ns}': ${names.join(', ')} for '${resource}'.`);
    }
  }
  return RECAP_STATEMENT_PREFIX + lines.map((l, i) => ` (${i + 1}) ${l}`).join('');
}

/** The SIWE statement: an optional caller statement, a space, then the ReCap statement (EIP-5573). */
export function siweStatementWithRecap(entries: readonly CapabilityEntry[], statement?: string): string {
  const recap = recapStatement(entries);
  return statement === undefined || statement === '' ? recap : `${statement} ${recap}`;
}

export interface DecodedRecap {
  readonly capabilities: CapabilityEntry[];
  /** Parent delegation CIDs (base58btc strings); empty for a root delegation. */
  readonly proofs: string[];
}

/**
 * Parses a `urn:recap:` resource into checked capabilities. Strict: canonical base64url of canonical
 * JSON (re-encoding must reproduce the input exactly), exactly the members `att` and `prf`, every
 * resource and ability in TinyCloud's grammar, every caveat list non-empty objects.
 */
export function decodeRecap(uri: unknown): DecodedRecap {
  if (typeof uri !== 'string' || !uri.startsWith(RECAP_PREFIX)) throw new OpenKeyError('MALFORMED_REQUEST', 'not a urn:recap: resource');
  if (uri.length > MAX_RECAP_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `ReCap resource over ${MAX_RECAP_CHARS} characters`);
  const bytes = base64urlDecode(uri.slice(RECAP_PREFIX.length), { padded: false, maxChars: MAX_RECAP_CHARS, label: 'ReCap' });
  const json = decodeUtf8(bytes, 'ReCap');
  const value = parseJsonText(json, MAX_RECAP_CHARS, 'ReCap');
  if (!isPlainObject(value) || Object.keys(value).length !== 2 || !('att' in value) || !('prf' in value)) throw new OpenKeyError('MALFORMED_REQUEST', 'ReCap must have exactly "att" and "prf"');
  const att = value['att'];
  if (!isPlainObject(att) || Object.keys(att).length === 0) throw new OpenKeyError('MALFORMED_REQUEST', 'ReCap att must be a non-empty object');
  const entries: CapabilityEntry[] = [];
  for (const [resourceUri, abilities] of Object.entries(att)) {
    const resource = parseResource(resourceUri);
    if (!isPlainObject(abilities) || Object.keys(abilities).length === 0) throw new OpenKeyError('MALFORMED_REQUEST', 'ReCap abilities must be a non-empty object');
    for (const [ability, caveats] of Object.entries(abilities)) {
      if (entries.length >= MAX_CAPABILITIES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `ReCap with more than ${MAX_CAPABILITIES} capabilities`);
      entries.push({ resource: resource.uri, ability: parseAbility(ability, resource.service), caveats: checkCaveats(caveats, 'ReCap caveats') });
    }
  }
  const prf = value['prf'];
  if (!Array.isArray(prf) || prf.length > MAX_PROOFS) throw new OpenKeyError('MALFORMED_REQUEST', 'ReCap prf must be a short list');
  const proofs = prf.map((p: unknown) => checkProofCid(p));
  const capabilities = canonicalizeEntries(entries);
  if (recapJson(capabilities, proofs) !== json) throw new OpenKeyError('MALFORMED_REQUEST', 'ReCap JSON is not canonical');
  return { capabilities, proofs };
}

/** A parent CID in a ReCap `prf`: base58btc multibase ('z…'), as siwe-recap writes it. */
function checkProofCid(p: unknown): string {
  if (typeof p !== 'string' || !p.startsWith('z') || p.length > 128) throw new OpenKeyError('MALFORMED_REQUEST', 'ReCap proof must be a base58btc CID');
  base58btcDecode(p.slice(1), 127);
  return p;
}

/**
 * Checks a SIWE statement against the capabilities of its ReCap: it must end with the canonical
 * statement (what TinyCloud's `extract_and_verify` requires; any caller text may only precede it).
 */
export function checkRecapStatement(statement: string | undefined, entries: readonly CapabilityEntry[]): void {
  const expected = recapStatement(entries);
  if (statement === undefined || !statement.endsWith(expected)) throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE statement does not match its ReCap');
  const head = statement.slice(0, statement.length - expected.length);
  if (head !== '' && !head.endsWith(' ')) throw new OpenKeyError('MALFORMED_REQUEST', 'SIWE statement does not match its ReCap');
}
