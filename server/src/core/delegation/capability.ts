// Capability sets: (resource, ability, caveats) entries in one canonical form — sorted, merged,
// bounded — shared by grants, requests, ReCaps and UCANs, plus the TinyCloud `permissions` view
// ({service, space, path, actions}). Caveats are ReCap "nota bene" branches: a non-empty list of
// JSON objects, alternatives of each other; `[{}]` means unconstrained (EIP-5573, UCAN caveats).

import { OpenKeyError } from '../errors.ts';
import { canonicalJson, checkJson, isPlainObject, type JsonObject, type JsonBounds } from './jcs.ts';
import { checkPath, checkService, checkSpaceName, formatResource, parseAbility, parseResource, parseSpaceId, spaceIdFor, type ResourceId } from './resource.ts';

export const MAX_CAPABILITIES = 256;
export const MAX_CAVEAT_BRANCHES = 8;
export const MAX_ACTIONS_PER_PERMISSION = 32;
export const CAVEAT_BOUNDS: JsonBounds = { maxDepth: 8, maxNodes: 256, maxStringLength: 1024, maxMembers: 64 };
/** Canonical JSON of one caveat branch may not exceed this many characters. */
export const MAX_CAVEAT_CHARS = 4096;

export type Caveat = JsonObject;

export interface CapabilityEntry {
  /** Canonical resource URI (see resource.ts). */
  readonly resource: string;
  /** `tinycloud.<service>/<action>`. */
  readonly ability: string;
  /** Non-empty, sorted by canonical JSON, no duplicates; `[{}]` when unconstrained. */
  readonly caveats: readonly Caveat[];
}

const UNCONSTRAINED: readonly Caveat[] = Object.freeze([Object.freeze({})]);

/** Canonical JSON of each branch, in the entry's order. */
export function caveatKeys(caveats: readonly Caveat[]): string[] {
  return caveats.map((c) => canonicalJson(c));
}

export function isUnconstrained(caveats: readonly Caveat[]): boolean {
  return caveats.length === 1 && Object.keys(caveats[0] as Caveat).length === 0;
}

/**
 * Checks caveats from untrusted input. Absent (`undefined`) means unconstrained. An empty list is
 * refused (ReCap forbids it; it would read as "no way to use this"), as is anything that is not a
 * list of plain JSON objects within CAVEAT_BOUNDS.
 */
export function checkCaveats(input: unknown, label = 'caveats'): Caveat[] {
  if (input === undefined) return [{}];
  if (!Array.isArray(input)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not a list`);
  if (input.length === 0) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: empty list (use [{}] or omit for unconstrained)`);
  if (input.length > MAX_CAVEAT_BRANCHES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: more than ${MAX_CAVEAT_BRANCHES} branches`);
  return input.map((branch: unknown) => {
    if (!isPlainObject(branch)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: each branch must be an object`);
    const checked = checkJson(branch, CAVEAT_BOUNDS, label) as Caveat;
    if (canonicalJson(checked).length > MAX_CAVEAT_CHARS) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: branch over ${MAX_CAVEAT_CHARS} characters`);
    return checked;
  });
}

function sortCaveats(caveats: readonly Caveat[]): Caveat[] {
  const byKey = new Map<string, Caveat>();
  for (const c of caveats) byKey.set(canonicalJson(c), c);
  if (byKey.size > MAX_CAVEAT_BRANCHES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_CAVEAT_BRANCHES} caveat branches`);
  return [...byKey.keys()].sort().map((k) => byKey.get(k) as Caveat);
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Puts already-checked entries into canonical form: one entry per (resource, ability) — duplicates
 * merge by uniting their caveat branches — sorted by resource then ability.
 */
export function canonicalizeEntries(entries: readonly CapabilityEntry[]): CapabilityEntry[] {
  const merged = new Map<string, { resource: string; ability: string; caveats: Caveat[] }>();
  for (const e of entries) {
    const key = `${e.resource}\u0000${e.ability}`;
    const existing = merged.get(key);
    if (existing === undefined) merged.set(key, { resource: e.resource, ability: e.ability, caveats: [...e.caveats] });
    else existing.caveats.push(...e.caveats);
  }
  if (merged.size > MAX_CAPABILITIES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_CAPABILITIES} capabilities`);
  return [...merged.values()]
    .map((e) => ({ resource: e.resource, ability: e.ability, caveats: isUnconstrained(e.caveats) ? UNCONSTRAINED : sortCaveats(e.caveats) }))
    .sort((a, b) => compareStrings(a.resource, b.resource) || compareStrings(a.ability, b.ability));
}

/**
 * Checks a capability list from untrusted input: `[{resource, ability, caveats?}]`, 1 to
 * MAX_CAPABILITIES entries, each resource canonical and each ability in its resource's service.
 * Returns the canonical form. Unknown fields in an entry are refused.
 */
export function checkCapabilities(input: unknown, label = 'capabilities'): CapabilityEntry[] {
  if (!Array.isArray(input)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not a list`);
  if (input.length === 0) throw new OpenKeyError('MISSING_FIELD', label);
  if (input.length > MAX_CAPABILITIES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: more than ${MAX_CAPABILITIES} entries`);
  const entries = input.map((raw: unknown): CapabilityEntry => {
    if (!isPlainObject(raw)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: entry is not an object`);
    for (const k of Object.keys(raw)) if (k !== 'resource' && k !== 'ability' && k !== 'caveats') throw new OpenKeyError('MALFORMED_REQUEST', `${label}: unknown field ${k}`);
    const resource = parseResource(raw['resource']);
    return { resource: resource.uri, ability: parseAbility(raw['ability'], resource.service), caveats: checkCaveats(raw['caveats']) };
  });
  return canonicalizeEntries(entries);
}

/** Parses each entry's resource once (entries are canonical, so this cannot fail for checked sets). */
export function withResources(entries: readonly CapabilityEntry[]): { entry: CapabilityEntry; resource: ResourceId }[] {
  return entries.map((entry) => ({ entry, resource: parseResource(entry.resource) }));
}

// ---- The TinyCloud `permissions` view -----------------------------------------------------------

/**
 * One row of TinyCloud's permission wire shape (OpenKey `/api/delegate`, manifests):
 * `{service: "tinycloud.kv", space: "applications", path: "app/x/", actions: ["tinycloud.kv/get"]}`.
 * `caveats` is present only when constrained.
 */
export interface Permission {
  readonly service: string;
  readonly space: string;
  readonly path: string;
  readonly actions: readonly string[];
  readonly caveats?: readonly Caveat[];
}

/** Groups entries by (resource, caveats) into permission rows, in canonical order. */
export function toPermissions(entries: readonly CapabilityEntry[]): Permission[] {
  const rows = new Map<string, { r: ResourceId; caveats: readonly Caveat[]; actions: string[] }>();
  for (const { entry, resource } of withResources(entries)) {
    const key = `${entry.resource}\u0000${caveatKeys(entry.caveats).join('\u0000')}`;
    const row = rows.get(key);
    if (row === undefined) rows.set(key, { r: resource, caveats: entry.caveats, actions: [entry.ability] });
    else row.actions.push(entry.ability);
  }
  return [...rows.values()].map(({ r, caveats, actions }) => ({
    service: `tinycloud.${r.service}`,
    space: r.space,
    path: r.path,
    actions: actions.sort(),
    ...(isUnconstrained(caveats) ? {} : { caveats }),
  }));
}

/**
 * Reads TinyCloud permission rows for `ownerDid`: `service` long (`tinycloud.kv`) or short (`kv`);
 * `space` a short name or the owner's full space id (another owner's space is refused); `path`
 * canonical, with "/" meaning the whole service as in the TinyCloud SDK; `actions` short (`get`)
 * or full (`tinycloud.kv/get`).
 */
export function fromPermissions(ownerDid: string, input: unknown, label = 'permissions'): CapabilityEntry[] {
  if (!Array.isArray(input)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: not a list`);
  if (input.length === 0) throw new OpenKeyError('MISSING_FIELD', label);
  if (input.length > MAX_CAPABILITIES) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `${label}: more than ${MAX_CAPABILITIES} entries`);
  const entries: CapabilityEntry[] = [];
  for (const raw of input as unknown[]) {
    if (!isPlainObject(raw)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: entry is not an object`);
    for (const k of Object.keys(raw)) if (!['service', 'space', 'path', 'actions', 'caveats'].includes(k)) throw new OpenKeyError('MALFORMED_REQUEST', `${label}: unknown field ${k}`);
    const service = shortService(raw['service']);
    const spaceId = resolveSpace(ownerDid, raw['space']);
    const path = normalizeRootPath(raw['path']);
    const caveats = checkCaveats(raw['caveats']);
    for (const ability of expandActions(service, raw['actions'])) entries.push({ resource: formatResource(spaceId, service, path), ability, caveats });
  }
  return canonicalizeEntries(entries);
}

/** `tinycloud.kv` or `kv` → `kv`. */
export function shortService(input: unknown): string {
  if (typeof input !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'service');
  return checkService(input.startsWith('tinycloud.') ? input.slice('tinycloud.'.length) : input);
}

/** A short space name or a full space id owned by `ownerDid` → the full space id. */
export function resolveSpace(ownerDid: string, space: unknown): string {
  if (typeof space === 'string' && space.startsWith('tinycloud:')) {
    const parsed = parseSpaceId(space);
    if (parsed.owner !== ownerDid) throw new OpenKeyError('MALFORMED_REQUEST', 'space belongs to another owner');
    return parsed.spaceId;
  }
  return spaceIdFor(ownerDid, checkSpaceName(space));
}

/** TinyCloud writes the whole service as "" or "/"; both become "". Anything else must be canonical. */
export function normalizeRootPath(path: unknown): string {
  return path === '/' ? '' : checkPath(path);
}

/** Short or full actions → full abilities of `service`, 1 to MAX_ACTIONS_PER_PERMISSION of them. */
export function expandActions(service: string, actions: unknown): string[] {
  if (!Array.isArray(actions) || actions.length === 0) throw new OpenKeyError('MALFORMED_REQUEST', 'actions must be a non-empty list');
  if (actions.length > MAX_ACTIONS_PER_PERMISSION) throw new OpenKeyError('PAYLOAD_TOO_LARGE', `more than ${MAX_ACTIONS_PER_PERMISSION} actions`);
  return actions.map((a: unknown) => {
    if (typeof a !== 'string') throw new OpenKeyError('MALFORMED_REQUEST', 'action');
    return parseAbility(a.includes('/') ? a : `tinycloud.${service}/${a}`, service);
  });
}
