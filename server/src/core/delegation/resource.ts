// TinyCloud names: owner DIDs, space ids (`tinycloud:<did without "did:">:<name>`), resource URIs
// (`<space id>/<service>[/<path>]`), abilities (`tinycloud.<service>/<action>`) and delegate DIDs.
// Every parser accepts only the one canonical spelling of a name and refuses anything else, so two
// different strings never name the same thing and string comparison is name comparison.

import { OpenKeyError } from '../errors.ts';
import { didKey, parseDidKey, parseDidPkh } from '../crypto/did.ts';

export const MAX_RESOURCE_LENGTH = 512;
export const MAX_PATH_LENGTH = 384;
export const MAX_PATH_SEGMENTS = 32;
export const MAX_ABILITY_LENGTH = 96;
const MAX_DID_LENGTH = 160;

// ---- Owner DIDs ---------------------------------------------------------------------------------

export type OwnerDid =
  | { readonly method: 'pkh'; readonly did: string; readonly chainId: number; readonly address: string }
  | { readonly method: 'key'; readonly did: string; readonly publicKey: Uint8Array };

/**
 * An owner (root authority) DID: `did:pkh:eip155:<chain>:<EIP-55 address>` for secp256k1 owners or
 * `did:key:z…` (Ed25519) for Ed25519 owners. Only the canonical spelling is accepted (checksummed
 * address, no leading zeros in the chain id); MALFORMED_REQUEST otherwise.
 */
export function parseOwnerDid(did: unknown): OwnerDid {
  if (typeof did !== 'string' || did.length > MAX_DID_LENGTH) throw new OpenKeyError('MALFORMED_REQUEST', 'owner DID');
  if (did.startsWith('did:pkh:')) {
    const { chainId, address } = parseDidPkh(did);
    if (chainId > BigInt(Number.MAX_SAFE_INTEGER)) throw new OpenKeyError('MALFORMED_REQUEST', 'owner DID chain id out of range');
    if (`did:pkh:eip155:${chainId}:${address}` !== did) throw new OpenKeyError('MALFORMED_REQUEST', 'owner DID is not canonical (EIP-55 address)');
    return { method: 'pkh', did, chainId: Number(chainId), address };
  }
  if (did.startsWith('did:key:')) {
    const { algorithm, publicKey } = parseDidKey(did);
    if (algorithm !== 'ed25519') throw new OpenKeyError('UNSUPPORTED_ALGORITHM', 'an owner did:key must be Ed25519');
    return { method: 'key', did, publicKey };
  }
  throw new OpenKeyError('MALFORMED_REQUEST', 'owner DID must be did:pkh:eip155 or did:key');
}

// ---- Delegate DIDs ------------------------------------------------------------------------------

export interface DelegateDid {
  /** The DID itself, no fragment: what grants list and what a UCAN's `aud` carries. */
  readonly did: string;
  /** The DID URL a SIWE `URI:` carries: `did:key:z…#z…` for did:key, the DID itself for did:pkh. */
  readonly didUrl: string;
  /** Ed25519 public key of a did:key delegate (TinyCloud session keys are Ed25519 only). */
  readonly publicKey?: Uint8Array;
}

/**
 * A delegate: an Ed25519 `did:key` (optionally as its own verification method `did:key:z…#z…`), or
 * an eip155 `did:pkh` (user-to-user delegation). Other methods, other key types, other fragments:
 * refused.
 */
export function parseDelegateDid(input: unknown): DelegateDid {
  if (input === undefined || input === '') throw new OpenKeyError('MISSING_FIELD', 'delegate DID');
  if (typeof input !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'delegate DID');
  if (input.length > 2 * MAX_DID_LENGTH) throw new OpenKeyError('MALFORMED_REQUEST', 'delegate DID too long');
  const hash = input.indexOf('#');
  const did = hash === -1 ? input : input.slice(0, hash);
  if (did.startsWith('did:key:')) {
    const { algorithm, publicKey } = parseDidKey(did);
    if (algorithm !== 'ed25519') throw new OpenKeyError('UNSUPPORTED_ALGORITHM', 'a delegate did:key must be Ed25519');
    const fragment = did.slice('did:key:'.length);
    if (hash !== -1 && input.slice(hash + 1) !== fragment) throw new OpenKeyError('MALFORMED_REQUEST', 'did:key fragment must repeat the key');
    return { did, didUrl: `${did}#${fragment}`, publicKey };
  }
  if (did.startsWith('did:pkh:')) {
    if (hash !== -1) throw new OpenKeyError('MALFORMED_REQUEST', 'did:pkh delegate must not carry a fragment');
    const owner = parseOwnerDid(did);
    return { did: owner.did, didUrl: owner.did };
  }
  throw new OpenKeyError('MALFORMED_REQUEST', 'delegate must be did:key (Ed25519) or did:pkh:eip155');
}

// ---- Spaces and resources -----------------------------------------------------------------------

const SPACE_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SERVICE_RE = /^[a-z][a-z0-9-]{0,31}$/;
const SEGMENT_RE = /^[A-Za-z0-9._~-]+$/;
const NAME_PART = '[a-z][a-z0-9-]*(?:\\.[a-z][a-z0-9-]*)*';
const ABILITY_RE = new RegExp(`^(${NAME_PART})/(${NAME_PART})$`);

export function checkSpaceName(name: unknown): string {
  if (typeof name !== 'string' || !SPACE_NAME_RE.test(name)) throw new OpenKeyError('MALFORMED_REQUEST', 'space name');
  return name;
}

export function checkService(service: unknown): string {
  if (typeof service !== 'string' || !SERVICE_RE.test(service)) throw new OpenKeyError('MALFORMED_REQUEST', 'service name');
  return service;
}

/** `tinycloud:<owner DID without "did:">:<name>` (TinyCloud `SpaceId` display form). */
export function spaceIdFor(ownerDid: string, name: string): string {
  const owner = parseOwnerDid(ownerDid);
  return `tinycloud:${owner.did.slice('did:'.length)}:${checkSpaceName(name)}`;
}

/** Parses a space id back into its owner DID and name. */
export function parseSpaceId(spaceId: unknown): { readonly spaceId: string; readonly owner: string; readonly name: string } {
  if (typeof spaceId !== 'string' || !spaceId.startsWith('tinycloud:') || spaceId.length > MAX_RESOURCE_LENGTH) throw new OpenKeyError('MALFORMED_REQUEST', 'space id');
  const colon = spaceId.lastIndexOf(':');
  const name = checkSpaceName(spaceId.slice(colon + 1));
  const owner = parseOwnerDid(`did:${spaceId.slice('tinycloud:'.length, colon)}`).did;
  return { spaceId, owner, name };
}

/**
 * A canonical path: empty (the whole service), or segments of RFC 3986 unreserved characters joined
 * by '/', optionally ending in '/' (a directory: it covers everything beneath it). Refused: a leading
 * '/', empty segments ('//'), dot segments ('.', '..'), percent-encoding and every other character —
 * so a path can neither escape its prefix nor be spelled two ways.
 */
export function checkPath(path: unknown): string {
  if (typeof path !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'path');
  if (path === '') return path;
  if (path.length > MAX_PATH_LENGTH) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `path longer than ${MAX_PATH_LENGTH}`);
  const segments = path.split('/');
  if (segments[segments.length - 1] === '') segments.pop(); // a trailing '/' marks a directory
  if (segments.length > MAX_PATH_SEGMENTS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `path with more than ${MAX_PATH_SEGMENTS} segments`);
  for (const s of segments) {
    if (!SEGMENT_RE.test(s) || s === '.' || s === '..') throw new OpenKeyError('MALFORMED_REQUEST', 'path is not canonical');
  }
  return path;
}

export interface ResourceId {
  readonly uri: string;
  readonly spaceId: string;
  /** The owner DID of the space. */
  readonly owner: string;
  /** The space name, e.g. "applications". */
  readonly space: string;
  /** The short service name, e.g. "kv". */
  readonly service: string;
  /** '' for the whole service. */
  readonly path: string;
}

export function formatResource(spaceId: string, service: string, path: string): string {
  return path === '' ? `${spaceId}/${service}` : `${spaceId}/${service}/${path}`;
}

/** Parses `<space id>/<service>[/<path>]`; no query, no fragment. MALFORMED_REQUEST otherwise. */
export function parseResource(uri: unknown): ResourceId {
  if (typeof uri !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'resource');
  if (uri.length > MAX_RESOURCE_LENGTH) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `resource longer than ${MAX_RESOURCE_LENGTH}`);
  const slash = uri.indexOf('/');
  if (slash === -1) throw new OpenKeyError('MALFORMED_REQUEST', 'resource has no service');
  const { spaceId, owner, name } = parseSpaceId(uri.slice(0, slash));
  const rest = uri.slice(slash + 1);
  const slash2 = rest.indexOf('/');
  const service = checkService(slash2 === -1 ? rest : rest.slice(0, slash2));
  const path = slash2 === -1 ? '' : checkPath(rest.slice(slash2 + 1));
  // `…/kv/` (an empty path after the service) would name the same thing as `…/kv`: refuse it.
  if (formatResource(spaceId, service, path) !== uri) throw new OpenKeyError('MALFORMED_REQUEST', 'resource is not canonical');
  return { uri, spaceId, owner, space: name, service, path };
}

/**
 * Path containment by segments: the empty path covers the whole service; a path ending in '/'
 * covers itself and everything beneath it; any other path covers only itself. So `app/` covers
 * `app/x`, `app/x` covers neither `app/xy` nor `app/x/y`, and nothing covers a wider path.
 */
export function pathCovers(granted: string, requested: string): boolean {
  if (granted === '' || granted === requested) return true;
  return granted.endsWith('/') && requested.startsWith(granted);
}

/** Same space (hence same owner), same service, and a covering path. */
export function resourceCovers(granted: ResourceId, requested: ResourceId): boolean {
  return granted.spaceId === requested.spaceId && granted.service === requested.service && pathCovers(granted.path, requested.path);
}

// ---- Abilities ----------------------------------------------------------------------------------

/**
 * An ability `<namespace>/<action>` of lowercase dotted names. There are no wildcards: `*` (and any
 * other character outside the grammar) is refused, so a grant never silently covers an action the
 * owner did not name. When `service` is given, the namespace must be `tinycloud.<service>`.
 */
export function parseAbility(ability: unknown, service?: string): string {
  if (typeof ability !== 'string' || ability.length > MAX_ABILITY_LENGTH) throw new OpenKeyError('MALFORMED_REQUEST', 'ability');
  const m = ABILITY_RE.exec(ability);
  if (m === null) throw new OpenKeyError('MALFORMED_REQUEST', ability.includes('*') ? 'wildcard abilities are not supported' : 'ability');
  if (service !== undefined && m[1] !== `tinycloud.${service}`) throw new OpenKeyError('MALFORMED_REQUEST', `ability ${ability} does not belong to service ${service}`);
  return ability;
}

/** did:key of an Ed25519 public key as its own verification method (`did:key:z…#z…`). */
export function ed25519DidUrl(publicKey: Uint8Array): string {
  const did = didKey('ed25519', publicKey);
  return `${did}#${did.slice('did:key:'.length)}`;
}
