// The subset check as a table (issue 5): each row issues through issueDelegation with a counting
// signer, so a refusal is shown to carry its specific code and to produce no signature. Then path
// rules, a property test against an independent segment-by-segment oracle, manifests composed into
// one grant with per-backend scopes, and hostile grants and requests.

import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../errors.ts';
import { checkCapabilities, fromPermissions, type CapabilityEntry } from './capability.ts';
import { checkGrant, composeGrant, resolveManifest, revokeGrant, type DelegationGrant } from './grant.ts';
import { issueDelegation, type IssueParams } from './issue.ts';
import { pathCovers } from './resource.ts';
import { authorizeDelegation, capabilitySubset, checkDelegationRequest } from './subset.ts';
import { counting, edKey, expectCode, expectCodeAsync, fixedClock, grantFor, Prng, res, secpOwner, seededRandom, T0 } from './test-helpers.ts';

const owner = secpOwner();
const backend = edKey('backend');
const stranger = edKey('stranger');
const otherOwner = secpOwner('other-owner');
const grant = grantFor(owner.did);
const R = (space: string, service: string, path = ''): string => res(owner.did, space, service, path);

async function attempt(g: DelegationGrant, request: Record<string, unknown>, extra: Partial<IssueParams> = {}): Promise<{ code: ErrorCode | 'OK'; calls: number }> {
  const signer = counting((m: Uint8Array) => owner.personalSign(m));
  try {
    await issueDelegation({
      grant: g,
      request: checkDelegationRequest({ delegate: backend.did, lifetimeSeconds: 600, ...request }, g.owner),
      owner: { algorithm: 'secp256k1', publicKey: owner.publicKey },
      sign: signer.sign,
      clock: fixedClock(),
      random: seededRandom(),
      domain: 'openkey.example',
      ...extra,
    });
    return { code: 'OK', calls: signer.calls() };
  } catch (e) {
    return { code: (e as { code: ErrorCode }).code, calls: signer.calls() };
  }
}

const cap = (resource: string, ability: string, caveats?: unknown[]): Record<string, unknown> => ({ capabilities: [{ resource, ability, ...(caveats ? { caveats } : {}) }] });

describe('subset check (issue 5 table): allowed, or refused with its code and no signature', () => {
  const rows: [string, Record<string, unknown>, ErrorCode | 'OK', Partial<IssueParams>?, DelegationGrant?][] = [
    ['equal', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), 'OK'],
    ['equal, several entries', { capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }, { resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/list' }, { resource: R('applications', 'capabilities'), ability: 'tinycloud.capabilities/read' }] }, 'OK'],
    ['narrower path under a directory grant', cap(R('applications', 'kv', 'app/x/notes.json'), 'tinycloud.kv/get'), 'OK'],
    ['narrower directory under a directory grant', cap(R('applications', 'kv', 'app/x/'), 'tinycloud.kv/list'), 'OK'],
    ['narrower path under a whole-service grant', cap(R('applications', 'capabilities', 'app/'), 'tinycloud.capabilities/read'), 'OK'],
    ['same caveat branch', cap(R('applications', 'sql', 'app/db.sqlite'), 'tinycloud.sql/read', [{ tables: ['notes'] }]), 'OK'],
    ['sibling path (app/x granted, app/xy asked)', cap(R('applications', 'kv', 'app/xy'), 'tinycloud.kv/put'), 'DELEGATION_NOT_SUBSET'],
    ['child of a non-directory grant (app/x granted, app/x/y asked)', cap(R('applications', 'kv', 'app/x/y'), 'tinycloud.kv/put'), 'DELEGATION_NOT_SUBSET'],
    ['sibling directory (app/ granted, apps/ asked)', cap(R('applications', 'kv', 'apps/'), 'tinycloud.kv/get'), 'DELEGATION_NOT_SUBSET'],
    ['the directory itself without its slash (app/ granted, app asked)', cap(R('applications', 'kv', 'app'), 'tinycloud.kv/get'), 'DELEGATION_NOT_SUBSET'],
    ['wider path (whole service)', cap(R('applications', 'kv'), 'tinycloud.kv/get'), 'DELEGATION_NOT_SUBSET'],
    ['other space of the owner', cap(R('default', 'kv', 'app/'), 'tinycloud.kv/get'), 'DELEGATION_NOT_SUBSET'],
    ['same space name of another owner', cap(res(otherOwner.did, 'applications', 'kv', 'app/'), 'tinycloud.kv/get'), 'DELEGATION_NOT_SUBSET'],
    ['other service, same path', cap(R('applications', 'sql', 'app/'), 'tinycloud.sql/read'), 'DELEGATION_NOT_SUBSET'],
    ['other ability', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/del'), 'DELEGATION_NOT_SUBSET'],
    ['one entry outside among allowed ones', { capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }, { resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/put' }] }, 'DELEGATION_NOT_SUBSET'],
    ['extra caveat on an unconstrained grant', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get', [{ maxBytes: 10 }]), 'DELEGATION_NOT_SUBSET'],
    ['caveat dropped (wider)', cap(R('applications', 'sql', 'app/db.sqlite'), 'tinycloud.sql/read'), 'DELEGATION_NOT_SUBSET'],
    ['caveat changed', cap(R('applications', 'sql', 'app/db.sqlite'), 'tinycloud.sql/read', [{ tables: ['notes', 'users'] }]), 'DELEGATION_NOT_SUBSET'],
    ['extra caveat branch', cap(R('applications', 'sql', 'app/db.sqlite'), 'tinycloud.sql/read', [{ tables: ['notes'] }, { tables: ['users'] }]), 'DELEGATION_NOT_SUBSET'],
    ['lifetime at the maximum', { ...cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), lifetimeSeconds: 3600 }, 'OK'],
    ['longer lifetime', { ...cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), lifetimeSeconds: 3601 }, 'LIFETIME_TOO_LONG'],
    ['lifetime outliving the grant', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), 'LIFETIME_TOO_LONG', {}, grantFor(owner.did, { expiresAt: T0 + 300_000 })],
    ['expired grant', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), 'GRANT_EXPIRED', { clock: fixedClock(grant.expiresAt) }],
    ['revoked grant', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), 'GRANT_REVOKED', {}, revokeGrant(grant)],
    ['wrong delegate', { ...cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), delegate: stranger.did }, 'DELEGATE_NOT_ALLOWED'],
    ['the owner as its own delegate', { ...cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), delegate: owner.did }, 'DELEGATE_NOT_ALLOWED'],
    ['delegate given as its DID URL', { ...cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), delegate: backend.didUrl }, 'OK'],
    ['key that is not the grant owner', cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), 'PERMISSION_DENIED', { owner: { algorithm: 'secp256k1', publicKey: otherOwner.publicKey } }],
    ['notBefore in the past', { ...cap(R('applications', 'kv', 'app/'), 'tinycloud.kv/get'), notBefore: T0 - 1 }, 'MALFORMED_REQUEST'],
  ];
  it.each(rows.map(([name, request, code, extra, g]) => ({ name, request, code, extra, g })))('$name → $code', async ({ request, code, extra, g }) => {
    const { code: got, calls } = await attempt(g ?? grant, request, extra ?? {});
    expect(got).toBe(code);
    expect(calls).toBe(code === 'OK' ? 1 : 0);
  });

  it('refusals follow a fixed precedence: revoked, expired, delegate, subset, lifetime', async () => {
    const everythingWrong = { ...cap(R('applications', 'kv', 'other/'), 'tinycloud.kv/del'), delegate: stranger.did, lifetimeSeconds: 999_999 };
    expect((await attempt(revokeGrant(grant), everythingWrong, { clock: fixedClock(grant.expiresAt) })).code).toBe('GRANT_REVOKED');
    expect((await attempt(grant, everythingWrong, { clock: fixedClock(grant.expiresAt) })).code).toBe('GRANT_EXPIRED');
    expect((await attempt(grant, everythingWrong)).code).toBe('DELEGATE_NOT_ALLOWED');
    expect((await attempt(grant, { ...everythingWrong, delegate: backend.did })).code).toBe('DELEGATION_NOT_SUBSET');
  });
});

describe('delegate rules: DIDs, attestation policy, calling principal, scopes', () => {
  const principal = `svc_${'ab'.repeat(16)}`;
  const g = grantFor(owner.did, {
    delegates: [
      { kind: 'attested', policy: 'tdx-backend-v1', scope: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }] },
      { kind: 'principal', principalId: principal },
    ],
  });
  const ask = cap(R('applications', 'kv', 'app/x'), 'tinycloud.kv/get');

  it('an attested delegate is allowed only with a verdict for this policy and this DID, within its scope', async () => {
    expect((await attempt(g, ask, { attestation: { policy: 'tdx-backend-v1', subjectDid: backend.did } })).code).toBe('OK');
    expect((await attempt(g, ask)).code).toBe('DELEGATE_NOT_ALLOWED');
    expect((await attempt(g, ask, { attestation: { policy: 'tdx-backend-v0', subjectDid: backend.did } })).code).toBe('DELEGATE_NOT_ALLOWED');
    expect((await attempt(g, ask, { attestation: { policy: 'tdx-backend-v1', subjectDid: stranger.did } })).code).toBe('DELEGATE_NOT_ALLOWED');
    const outsideScope = cap(R('applications', 'kv', 'app/x'), 'tinycloud.kv/put');
    expect(await attempt(g, outsideScope, { attestation: { policy: 'tdx-backend-v1', subjectDid: backend.did } })).toEqual({ code: 'DELEGATION_NOT_SUBSET', calls: 0 });
  });

  it('a principal rule admits any delegate DID the authenticated caller names (its session key)', async () => {
    const session = edKey('session');
    expect((await attempt(g, { ...cap(R('applications', 'kv', 'app/x'), 'tinycloud.kv/put'), delegate: session.did }, { callerPrincipalId: principal })).code).toBe('OK');
    expect((await attempt(g, { ...ask, delegate: session.did }, { callerPrincipalId: `svc_${'cd'.repeat(16)}` })).code).toBe('DELEGATE_NOT_ALLOWED');
  });
});

describe('path rules', () => {
  const table: [string, string, boolean][] = [
    ['', '', true],
    ['', 'anything/below', true],
    ['app/', 'app/', true],
    ['app/', 'app/x', true],
    ['app/', 'app/x/y/', true],
    ['app/', 'app', false],
    ['app/', 'apps/', false],
    ['app/x', 'app/x', true],
    ['app/x', 'app/xy', false],
    ['app/x', 'app/x/', false],
    ['app/x', 'app/x/y', false],
    ['app/x', 'app', false],
    ['app/x/', 'app/', false],
    ['app/x', '', false],
  ];
  it.each(table.map(([granted, requested, covers]) => ({ granted, requested, covers })))('"$granted" covers "$requested": $covers', ({ granted, requested, covers }) => {
    expect(pathCovers(granted, requested)).toBe(covers);
  });

  it('agrees with an independent segment-by-segment oracle on generated capability sets', () => {
    const rng = new Prng('subset-property');
    const segs = ['a', 'b', 'ab', 'a.b'];
    const randPath = (): string => {
      const n = rng.int(4);
      const parts = Array.from({ length: n }, () => rng.pick(segs));
      return parts.length === 0 ? '' : parts.join('/') + (rng.bool() ? '/' : '');
    };
    // Oracle: compare segment lists; a granted directory covers any longer-or-equal list with its
    // segments as prefix; a granted file only the identical list-with-kind; '' covers all.
    const covers = (g: string, r: string): boolean => {
      if (g === '') return true;
      const gDir = g.endsWith('/');
      const gs = g.split('/').filter((s) => s !== '');
      const rDir = r.endsWith('/');
      const rs = r.split('/').filter((s) => s !== '');
      if (!gDir) return gs.length === rs.length && gs.every((s, i) => s === rs[i]) && !rDir;
      return rs.length >= gs.length && gs.every((s, i) => s === rs[i]) && (rs.length > gs.length || rDir);
    };
    const entry = (space: string, path: string, ability: string, caveats?: unknown[]): Record<string, unknown> => ({ resource: R(space, 'kv', path), ability, ...(caveats ? { caveats } : {}) });
    const outcomes = { true: 0, false: 0 };
    for (let round = 0; round < 400; round++) {
      const granted = checkCapabilities(Array.from({ length: 1 + rng.int(4) }, () => entry(rng.pick(['applications', 'default']), randPath(), rng.pick(['tinycloud.kv/get', 'tinycloud.kv/put']), rng.bool() ? undefined : [{ t: rng.int(2) }])));
      const derived = (): Record<string, unknown> => {
        // Narrow a granted entry: same ability and a branch of its caveats, a path at or below it.
        const g = rng.pick(granted);
        const path = pathOf(g);
        const below = path === '' || path.endsWith('/') ? path + rng.pick(['', 'a', 'b/', 'ab/a']) : path;
        return { resource: g.resource.slice(0, g.resource.length - path.length).replace(/\/$/, '') + (below === '' ? '' : `/${below}`), ability: g.ability, caveats: [rng.pick(g.caveats)] };
      };
      const requested = checkCapabilities(Array.from({ length: 1 + rng.int(3) }, () => (rng.int(4) > 0 ? derived() : entry(rng.pick(['applications', 'default']), randPath(), rng.pick(['tinycloud.kv/get', 'tinycloud.kv/put']), rng.bool() ? undefined : [{ t: rng.int(2) }]))));
      const expected = requested.every((r) =>
        r.caveats.every((branch) =>
          granted.some((g) => g.ability === r.ability && g.resource.split('/kv')[0] === r.resource.split('/kv')[0] && covers(pathOf(g), pathOf(r)) && g.caveats.some((c) => JSON.stringify(c) === JSON.stringify(branch))),
        ),
      );
      expect(capabilitySubset(requested, granted).ok, JSON.stringify({ granted, requested })).toBe(expected);
      expect(capabilitySubset(granted, granted).ok).toBe(true);
      outcomes[`${expected}`]++;
    }
    expect(Math.min(outcomes.true, outcomes.false)).toBeGreaterThan(40); // both verdicts exercised
  });
});

function pathOf(e: CapabilityEntry): string {
  const i = e.resource.indexOf('/kv');
  return e.resource.slice(i + 3).replace(/^\//, '');
}

describe('manifests composed into one grant', () => {
  const appManifest = { manifest_version: 1, app_id: 'com.example.notes', name: 'Notes', permissions: [{ service: 'tinycloud.sql', path: 'db.sqlite', actions: ['read'] }] };
  const backendManifest = { app_id: 'com.example.notes', name: 'Notes backend', did: backend.did, defaults: false, permissions: [{ service: 'tinycloud.kv', path: 'inbox/', actions: ['get', 'list'] }] };
  const principal = `svc_${'ef'.repeat(16)}`;
  const composed = composeGrant({ id: 'notes', owner: owner.did, manifests: [appManifest, backendManifest], createdAt: T0 - 1000, delegates: [{ kind: 'principal', principalId: principal }] });
  const P = 'com.example.notes';

  it('resolves like the TinyCloud SDK: prefix, default tier on "/", short actions, capabilities/read per space', () => {
    const names = composed.capabilities.map((c) => `${c.resource.slice(c.resource.indexOf(':applications/') + 1)} ${c.ability}`);
    expect(names).toEqual([
      'applications/capabilities tinycloud.capabilities/read',
      `applications/kv/${P}/ tinycloud.kv/del`,
      `applications/kv/${P}/ tinycloud.kv/get`,
      `applications/kv/${P}/ tinycloud.kv/list`,
      `applications/kv/${P}/ tinycloud.kv/metadata`,
      `applications/kv/${P}/ tinycloud.kv/put`,
      `applications/kv/${P}/inbox/ tinycloud.kv/get`,
      `applications/kv/${P}/inbox/ tinycloud.kv/list`,
      `applications/sql/${P}/ tinycloud.sql/read`,
      `applications/sql/${P}/ tinycloud.sql/write`,
      `applications/sql/${P}/db.sqlite tinycloud.sql/read`,
    ]);
    expect(composed.expiresAt).toBe(T0 - 1000 + 30 * 86_400_000);
    expect(composed.maxLifetimeSeconds).toBe(3600);
    expect(composed.delegates[0]).toMatchObject({ kind: 'did', did: backend.did });
    expect(composed.delegates[1]).toEqual({ kind: 'principal', principalId: principal });
  });

  it('a backend receives its own manifest’s capabilities and nothing else of the union', async () => {
    expect((await attempt(composed, cap(R('applications', 'kv', `${P}/inbox/msg-1`), 'tinycloud.kv/get'))).code).toBe('OK');
    expect((await attempt(composed, cap(R('applications', 'capabilities'), 'tinycloud.capabilities/read'))).code).toBe('OK');
    expect(await attempt(composed, cap(R('applications', 'kv', `${P}/`), 'tinycloud.kv/put'))).toEqual({ code: 'DELEGATION_NOT_SUBSET', calls: 0 });
    expect((await attempt(composed, { ...cap(R('applications', 'kv', `${P}/`), 'tinycloud.kv/put'), delegate: edKey('session').did }, { callerPrincipalId: principal })).code).toBe('OK');
  });

  it('accepts TinyCloud permission rows as a request', () => {
    const req = checkDelegationRequest({ delegate: backend.did, lifetimeSeconds: 60, permissions: [{ service: 'tinycloud.kv', space: 'applications', path: `${P}/inbox/`, actions: ['get', 'tinycloud.kv/list'] }] }, owner.did);
    expect(req.capabilities).toEqual(fromPermissions(owner.did, [{ service: 'kv', space: `tinycloud:${owner.did.slice(4)}:applications`, path: `${P}/inbox/`, actions: ['list', 'get'] }]));
    expect(authorizeDelegation(composed, req, { now: T0 }).capabilities).toHaveLength(2);
  });

  it('refuses manifest features it would have to half-apply, and hostile manifests', () => {
    const bad: [unknown, ErrorCode][] = [
      [{ ...appManifest, secrets: { OPENAI_KEY: true } }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, unknown: 1 }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, defaults: 'standard' }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, manifest_version: 2 }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: [{ service: 'tinycloud.vault', path: 'x', actions: ['read'] }] }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: [{ service: 'tinycloud.kv', path: 'x', actions: ['get'], expiry: '2h' }] }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: [{ service: 'tinycloud.kv', path: '../secrets/', actions: ['get'] }] }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: [{ service: 'tinycloud.kv', path: 'x', actions: ['*'] }] }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: [{ service: 'tinycloud.kv', path: 'x', actions: ['tinycloud.sql/read'] }] }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: [{ service: 'tinycloud.kv', space: `tinycloud:${otherOwner.did.slice(4)}:applications`, path: 'x', actions: ['get'] }] }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, prefix: '../up' }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, expiry: '10000d' }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, did: 'did:web:example.com' }, 'MALFORMED_REQUEST'],
      [{ ...appManifest, permissions: Array.from({ length: 65 }, () => ({ service: 'tinycloud.kv', path: 'x', actions: ['get'] })) }, 'PAYLOAD_TOO_LARGE'],
      [{ ...appManifest, app_id: '' }, 'MALFORMED_REQUEST'],
      ['not an object', 'MALFORMED_REQUEST'],
    ];
    for (const [m, code] of bad) expectCode(() => resolveManifest(owner.did, m), code);
    expectCode(() => composeGrant({ id: 'x', owner: owner.did, manifests: Array.from({ length: 17 }, () => appManifest), createdAt: T0 }), 'PAYLOAD_TOO_LARGE');
    expectCode(() => composeGrant({ id: 'x', owner: owner.did, manifests: [appManifest], createdAt: T0 }), 'MISSING_FIELD'); // no delegate at all
  });
});

describe('hostile grants and requests', () => {
  const base = { id: 'g', owner: owner.did, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }], delegates: [{ kind: 'did', did: backend.did }], maxLifetimeSeconds: 60, createdAt: T0, expiresAt: T0 + 1000, revoked: false };

  it('grants', () => {
    checkGrant(base);
    const bad: [Record<string, unknown>, ErrorCode][] = [
      [{ ...base, capabilities: [{ resource: res(otherOwner.did, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }] }, 'MALFORMED_REQUEST'],
      [{ ...base, delegates: [] }, 'MISSING_FIELD'],
      [{ ...base, delegates: Array.from({ length: 33 }, () => ({ kind: 'did', did: backend.did })) }, 'PAYLOAD_TOO_LARGE'],
      [{ ...base, delegates: [{ kind: 'did', did: backend.did, scope: [{ resource: R('applications', 'kv'), ability: 'tinycloud.kv/get' }] }] }, 'MALFORMED_REQUEST'],
      [{ ...base, delegates: [{ kind: 'anyone' }] }, 'MALFORMED_REQUEST'],
      [{ ...base, delegates: [{ kind: 'principal', principalId: 'svc_nothex' }] }, 'MALFORMED_REQUEST'],
      [{ ...base, delegates: [{ kind: 'attested', policy: 'has space' }] }, 'MALFORMED_REQUEST'],
      [{ ...base, delegates: [{ kind: 'did', did: owner.did }] }, 'MALFORMED_REQUEST'],
      [{ ...base, maxLifetimeSeconds: 0 }, 'MALFORMED_REQUEST'],
      [{ ...base, maxLifetimeSeconds: 30 * 86400 + 1 }, 'MALFORMED_REQUEST'],
      [{ ...base, expiresAt: T0 }, 'MALFORMED_REQUEST'],
      [{ ...base, expiresAt: T0 + 367 * 86_400_000 }, 'MALFORMED_REQUEST'],
      [{ ...base, revoked: 'no' }, 'MALFORMED_REQUEST'],
      [{ ...base, extra: true }, 'MALFORMED_REQUEST'],
      [{ ...base, owner: owner.did.toLowerCase() }, 'MALFORMED_REQUEST'],
      [{ ...base, owner: `did:pkh:eip155:01:${owner.address}` }, 'MALFORMED_REQUEST'],
      [{ ...base, owner: 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme' }, 'UNSUPPORTED_ALGORITHM'],
      [{ ...base, id: 'has space' }, 'MALFORMED_REQUEST'],
    ];
    for (const [g, code] of bad) expectCode(() => checkGrant(g), code);
  });

  it('requests: malformed DIDs, resource URIs, non-canonical paths, over-long lists', () => {
    const ok = { delegate: backend.did, lifetimeSeconds: 60, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' }] };
    checkDelegationRequest(ok, owner.did);
    const withResource = (resource: string): Record<string, unknown> => ({ ...ok, capabilities: [{ resource, ability: 'tinycloud.kv/get' }] });
    const bad: [Record<string, unknown>, ErrorCode][] = [
      [{ ...ok, delegate: '' }, 'MISSING_FIELD'],
      [{ ...ok, delegate: 'did:web:backend.example' }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme' }, 'UNSUPPORTED_ALGORITHM'],
      [{ ...ok, delegate: `${backend.did}#key-1` }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: `${backend.did}0` }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: backend.did.replace('did:key:z', 'did:key:1') }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: `did:key:z${'1'.repeat(300)}` }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: `${owner.did}#frag` }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: 42 }, 'MALFORMED_REQUEST'],
      [{ ...ok, delegate: undefined }, 'MISSING_FIELD'],
      [withResource(R('applications', 'kv', 'app/../secrets/')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app/./x')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app//x')), 'MALFORMED_REQUEST'],
      [withResource(`${R('applications', 'kv')}//app/`), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app%2F..%2Fsecrets')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', '%2e%2e/')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app/x?y=1')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app/x#f')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app/ x')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app/é')), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', 'app\\x')), 'MALFORMED_REQUEST'],
      [withResource(`${R('applications', 'kv')}/`), 'MALFORMED_REQUEST'],
      [withResource(R('applications', 'kv', `${'a/'.repeat(33)}`)), 'PAYLOAD_TOO_LARGE'],
      [withResource(R('applications', 'kv', 'a'.repeat(600))), 'PAYLOAD_TOO_LARGE'],
      [withResource(R('applications', 'KV', 'app/')), 'MALFORMED_REQUEST'],
      [withResource(R('app lications', 'kv', 'app/')), 'MALFORMED_REQUEST'],
      [withResource(res(owner.did.toLowerCase(), 'applications', 'kv', 'app/')), 'MALFORMED_REQUEST'],
      [withResource(`https://example.com/kv/app/`), 'MALFORMED_REQUEST'],
      [withResource(`urn:tinycloud:encryption:${owner.did}:net`), 'MALFORMED_REQUEST'],
      [{ ...ok, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/*' }] }, 'MALFORMED_REQUEST'],
      [{ ...ok, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: '*' }] }, 'MALFORMED_REQUEST'],
      [{ ...ok, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get', caveats: [] }] }, 'MALFORMED_REQUEST'],
      [{ ...ok, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get', caveats: Array.from({ length: 9 }, (_, i) => ({ i })) }] }, 'PAYLOAD_TOO_LARGE'],
      [{ ...ok, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get', caveats: [{ s: 'x'.repeat(5000) }] }] }, 'PAYLOAD_TOO_LARGE'],
      [{ ...ok, capabilities: [{ resource: R('applications', 'kv', 'app/'), ability: 'tinycloud.kv/get', extra: 1 }] }, 'MALFORMED_REQUEST'],
      [{ ...ok, capabilities: Array.from({ length: 257 }, (_, i) => ({ resource: R('applications', 'kv', `k${i}`), ability: 'tinycloud.kv/get' })) }, 'PAYLOAD_TOO_LARGE'],
      [{ ...ok, capabilities: [] }, 'MISSING_FIELD'],
      [{ ...ok, capabilities: undefined }, 'MISSING_FIELD'],
      [{ ...ok, permissions: [] }, 'MALFORMED_REQUEST'],
      [{ ...ok, capabilities: undefined, permissions: [{ service: 'tinycloud.kv', space: 'applications', path: 'x', actions: Array.from({ length: 33 }, () => 'get') }] }, 'PAYLOAD_TOO_LARGE'],
      [{ ...ok, lifetimeSeconds: 0 }, 'MALFORMED_REQUEST'],
      [{ ...ok, lifetimeSeconds: 1.5 }, 'MALFORMED_REQUEST'],
      [{ ...ok, lifetimeSeconds: '60' }, 'MALFORMED_REQUEST'],
      [{ ...ok, lifetimeSeconds: undefined }, 'MISSING_FIELD'],
      [{ ...ok, notBefore: -1 }, 'MALFORMED_REQUEST'],
      [{ ...ok, requestId: 'a\nb' }, 'MALFORMED_REQUEST'],
      [{ ...ok, unknown: 1 }, 'MALFORMED_REQUEST'],
    ];
    for (const [r, code] of bad) expectCode(() => checkDelegationRequest(r, owner.did), code);
  });

  it('a refused request never reaches the signer, even through issueDelegation', async () => {
    const signer = counting((m: Uint8Array) => owner.personalSign(m));
    await expectCodeAsync(
      issueDelegation({
        grant,
        request: checkDelegationRequest({ delegate: backend.did, lifetimeSeconds: 60, capabilities: [{ resource: R('secrets', 'kv', 'app/'), ability: 'tinycloud.kv/get' }] }, owner.did),
        owner: { algorithm: 'secp256k1', publicKey: owner.publicKey },
        sign: signer.sign,
        clock: fixedClock(),
        random: seededRandom(),
        domain: 'openkey.example',
      }),
      'DELEGATION_NOT_SUBSET',
    );
    expect(signer.calls()).toBe(0);
  });
});
