// Delegations end to end (issue 5) on a real appliance with real clients. Independent libraries
// judge the output: `siwe` parses and verifies the SIWE, viem recovers the owner, @ipld/dag-cbor and
// @didtools/cacao decode the CACAO, multiformats + BLAKE3 recompute the CID, @ucans/ucans verifies
// Ed25519-owner UCANs. The subset table runs over the RPC: every refusal has its code, records no
// delegation and leaves a deny audit record. A TEE backend, attested by a second dstack simulator
// against the appliance's OPENKEY_DELEGATE_POLICIES, gets its delegation with no owner call.

import { create } from '@bufbuild/protobuf';
import * as dagCbor from '@ipld/dag-cbor';
import { blake3 } from '@noble/hashes/blake3';
import { isVerifierError, parseCollateral, parsePolicy, parseQuote, verifyAppliance } from '@openkey/verifier';
import { DstackClient } from '@phala/dstack-sdk';
import { Cacao, SiweMessage as DidtoolsSiwe } from '@didtools/cacao';
import * as ucans from '@ucans/ucans';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CID } from 'multiformats/cid';
import { SiweMessage } from 'siwe';
import { verifyMessage, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyAlgorithm, type KeyInfo } from '../proto/gen/openkey/v1/common_pb.ts';
import {
  DelegateAttestationSchema,
  DelegateRequestSchema,
  DelegationService,
  type DelegateRequest,
  type DelegateResponse,
} from '../proto/gen/openkey/v1/delegation_pb.ts';
import { PrincipalKeyAlgorithm } from '../proto/gen/openkey/v1/principals_pb.ts';
import {
  DelegateKey,
  attestDelegateKey,
  checkReceipt,
  createOpenKeyClient,
  generateCredentials,
  openKeyErrorCode,
  parseDelegationWrapper,
  startTeeBackend,
  type CapabilityRequest,
  type Credentials,
  type OpenKeyClient,
} from '../clients/src/index.ts';
import { decodeRecap } from '../server/src/core/delegation/recap.ts';
import { startSimulator, type RunningSimulator } from '../server/src/simulator/index.ts';
import { startTestAppliance, type TestAppliance } from './support/appliance.ts';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const hex0x = (b: Uint8Array): Hex => `0x${hex(b)}`;
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** CIDv1(raw 0x55, BLAKE3-256 0x1e) recomputed with multiformats, as TinyCloud computes it. */
function expectBlake3RawCid(cid: string, bytes: Uint8Array): void {
  const parsed = CID.parse(cid);
  expect([parsed.version, parsed.code, parsed.multihash.code]).toEqual([1, 0x55, 0x1e]);
  expect(parsed.multihash.digest).toEqual(blake3(bytes, { dkLen: 32 }));
}

const compose = (name: string): string =>
  JSON.stringify({ manifest_version: 2, name, runner: 'docker-compose', docker_compose_file: `# ${name}\n`, kms_enabled: true, key_provider: 'kms', gateway_enabled: false, public_logs: false, public_sysinfo: false, public_tcbinfo: true, allowed_envs: [], no_instance_id: false, secure_time: false });

/**
 * The verifier policy a simulator's quotes satisfy, derived as writeDevPolicy does for the
 * appliance's own simulator: its mock root as the (dangerous, explicit) trust anchor, the boot
 * measurements of a quote it gives, and its app identity. No KMS pin: the delegate key is not a
 * dstack KMS key.
 */
async function devPolicyFor(sim: RunningSimulator): Promise<Record<string, unknown>> {
  const dstack = new DstackClient(sim.socketPath);
  const info = await dstack.info();
  const { quote } = await dstack.getQuote(new Uint8Array(64));
  const q = parseQuote(new Uint8Array(Buffer.from(quote.replace(/^0x/, ''), 'hex')));
  if (q.report.type === 'sgx') throw new Error('simulator produced an SGX quote');
  const td = q.report.td;
  return {
    note: 'DEVELOPMENT ONLY: the backend simulator’s mock Intel root.',
    trustAnchorDerHex: hex(sim.mockRootCaDer),
    dangerouslyAllowCustomTrustAnchor: true,
    allowedTcbStatuses: ['UpToDate'],
    mrtd: [hex(td.mrTd)],
    rtmr0: [hex(td.rtmr0)],
    rtmr1: [hex(td.rtmr1)],
    rtmr2: [hex(td.rtmr2)],
    appId: info.app_id,
    composeHashes: [info.compose_hash],
    keyProvider: { name: 'openkey-dev-simulator' },
  };
}

describe('delegations end to end', () => {
  let dir: string;
  let app: TestAppliance;
  let backendSim: RunningSimulator;
  let rogueSim: RunningSimulator;
  let backendPolicy: Record<string, unknown>;
  let offsetMs = 0;
  const clock = { now: () => Date.now() + offsetMs };

  const ownerCreds = generateCredentials();
  const appCreds = generateCredentials();
  const backendCreds = generateCredentials();
  const strangerCreds = generateCredentials();
  let owner: OpenKeyClient;
  let appClient: OpenKeyClient;
  let backend: OpenKeyClient;
  let stranger: OpenKeyClient;
  let key: KeyInfo;
  let edKey: KeyInfo;
  let SPACE: string;
  const R = (path: string): string => `${SPACE}/kv/${path}`;
  const cap = (resource: string, ability: string, caveats?: unknown[]) => ({ resource, ability, caveatsJson: caveats === undefined ? '' : JSON.stringify(caveats) });
  /** The session key the grant names by DID. */
  const session = DelegateKey.generate();

  const register = async (c: Credentials, name: string): Promise<OpenKeyClient> => {
    const client = createOpenKeyClient({ baseUrl: app.connectUrl, credentials: c });
    await client.principals.createPrincipal({ algorithm: PrincipalKeyAlgorithm.ED25519, publicKey: c.publicKey, name });
    return client;
  };

  /** Delegate through `client`, with the receipt checked against the appliance identity key. */
  const delegate = async (client: OpenKeyClient, init: Parameters<typeof create<typeof DelegateRequestSchema>>[1]): Promise<{ req: DelegateRequest; res: DelegateResponse }> => {
    const req = create(DelegateRequestSchema, init);
    const res = await client.delegations.delegate(req);
    checkReceipt(app.identityPublicKey, DelegationService, DelegationService.method.delegate, req, res);
    return { req, res };
  };
  const codeOf = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'OK';
    } catch (e) {
      return openKeyErrorCode(e) ?? `not an appliance error: ${String(e)}`;
    }
  };
  const issuedCount = async (keyId = key.keyId): Promise<number> => (await owner.delegations.listDelegations({ keyId })).delegations.length;
  /** Audit records other than the reads of the log itself. */
  const auditRecords = async () => {
    const exp = await owner.audit.exportAudit({ from: 1n });
    expect(exp.records.length).toBeLessThan(1000);
    return exp.records.filter((r) => r.operation !== 'audit_export');
  };
  const lastAudit = async () => (await auditRecords()).at(-1);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'openkey-deleg-'));
    const seed = utf8('e2e-delegation backend simulator seed');
    [backendSim, rogueSim] = await Promise.all([
      startSimulator({ socketPath: join(dir, 'backend.sock'), seed, appCompose: compose('notes-backend') }),
      // Same mock PKI, another app: its quotes are genuine under the mock root but not "backend-v1".
      startSimulator({ socketPath: join(dir, 'rogue.sock'), seed, appCompose: compose('notes-backend-rogue') }),
    ]);
    const policies = join(dir, 'delegate-policies.json');
    backendPolicy = await devPolicyFor(backendSim);
    writeFileSync(policies, JSON.stringify({ 'backend-v1': backendPolicy }));
    app = await startTestAppliance({ env: { OPENKEY_DELEGATE_POLICIES: policies, OPENKEY_STAMP_WINDOW_MS: '600000' }, clock });
    [owner, appClient, backend, stranger] = await Promise.all([register(ownerCreds, 'owner'), register(appCreds, 'notes-app'), register(backendCreds, 'notes-backend'), register(strangerCreds, 'stranger')]);
    key = (await owner.keys.sealKey({ algorithm: KeyAlgorithm.SECP256K1, label: 'tinycloud' })).key as KeyInfo;
    edKey = (await owner.keys.sealKey({ algorithm: KeyAlgorithm.ED25519, label: 'tinycloud-ed' })).key as KeyInfo;
    SPACE = `tinycloud:pkh:eip155:1:${key.address}:applications`;
  }, 60_000);
  afterAll(async () => {
    await app?.dispose();
    await Promise.all([backendSim?.close(), rogueSim?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the owner creates a grant with three kinds of delegate rule; a receipt covers it', async () => {
    const req = create(DelegationService.method.createGrant.input, {
      keyId: key.keyId,
      grantId: 'g1',
      capabilities: [cap(R('app/'), 'tinycloud.kv/get'), cap(R('app/'), 'tinycloud.kv/list')],
      delegates: [{ kind: { case: 'principalId', value: appCreds.principalId } }, { kind: { case: 'did', value: session.did } }, { kind: { case: 'attestationPolicy', value: 'backend-v1' } }],
      maxLifetimeSeconds: 3600,
    });
    const res = await owner.delegations.createGrant(req);
    checkReceipt(app.identityPublicKey, DelegationService, DelegationService.method.createGrant, req, res);
    expect(res.grant).toMatchObject({ id: 'g1', keyId: key.keyId, ownerDid: `did:pkh:eip155:1:${key.address}`, maxLifetimeSeconds: 3600, revoked: false });
    expect(res.grant?.capabilities.map((c) => [c.resource, c.ability, c.caveatsJson])).toEqual([
      [R('app/'), 'tinycloud.kv/get', '[{}]'],
      [R('app/'), 'tinycloud.kv/list', '[{}]'],
    ]);
    expect(res.grant?.delegates.map((d) => d.kind.case)).toEqual(['principalId', 'did', 'attestationPolicy']);
    const grants = await owner.delegations.listGrants({ keyId: key.keyId });
    expect(grants.grants.map((g) => g.id)).toEqual(['g1']);
  });

  describe('a SIWE + ReCap CACAO for a secp256k1 owner, judged by independent libraries', () => {
    let res: DelegateResponse;
    let sig: Hex;
    beforeAll(async () => {
      const requested = [cap(R('app/inbox/'), 'tinycloud.kv/list'), cap(R('app/inbox/'), 'tinycloud.kv/get')];
      ({ res } = await delegate(owner, { keyId: key.keyId, grantId: 'g1', delegateDid: session.did, capabilities: requested, lifetimeSeconds: 900, requestId: 'req-e2e-1' }));
      sig = hex0x(res.signature);
    });

    it('siwe parses the message and verifies the signature; viem recovers the owner address', async () => {
      expect(res.format).toBe('siwe-cacao');
      const msg = new SiweMessage(res.siwe);
      expect(msg).toMatchObject({ domain: 'localhost', address: key.address, uri: session.didUrl, version: '1', chainId: 1, requestId: 'req-e2e-1' });
      const verified = await msg.verify({ signature: sig, domain: 'localhost', time: new Date(Number(res.issuedAtMs) + 1000).toISOString() });
      expect(verified.success).toBe(true);
      expect(verified.data.address).toBe(key.address);
      expect(Date.parse(msg.expirationTime as string) - Date.parse(msg.issuedAt as string)).toBe(900_000);
      const late = await msg.verify({ signature: sig, time: new Date(Number(res.expiresAtMs) + 1000).toISOString() }, { suppressExceptions: true });
      expect(late.success).toBe(false);
      expect(await verifyMessage({ address: key.address as Hex, message: res.siwe, signature: sig })).toBe(true);
    });

    it('the CACAO decodes (dag-cbor, @didtools/cacao) to exactly this message, and its CID recomputes', () => {
      const wrapper = parseDelegationWrapper(res.wrapperJson);
      const fromHeader = new Uint8Array(Buffer.from(wrapper.delegationHeader.Authorization, 'base64url'));
      expect(Buffer.from(fromHeader).equals(Buffer.from(res.cacao))).toBe(true);
      expect(res.authorization).toBe(wrapper.delegationHeader.Authorization);
      expect(res.authorization).not.toContain('.');
      const decoded = dagCbor.decode(res.cacao) as { h: { t: string }; p: Record<string, unknown> & { resources: string[] }; s: { t: string; s: Uint8Array } };
      expect(decoded.h).toEqual({ t: 'eip4361' });
      expect(decoded.p).toMatchObject({ iss: `did:pkh:eip155:1:${key.address}`, aud: session.didUrl, domain: 'localhost', version: '1' });
      expect(decoded.s.t).toBe('eip191');
      expect(hex0x(decoded.s.s)).toBe(sig);
      const back = DidtoolsSiwe.fromCacao({ h: decoded.h, p: decoded.p, s: { t: 'eip191', s: hex0x(decoded.s.s) } } as unknown as Cacao);
      expect(back.signMessage()).toBe(res.siwe);
      expectBlake3RawCid(res.cid, res.cacao);
      expect(wrapper.delegationCid).toBe(res.cid);
    });

    it('the ReCap payload is exactly the requested subset, not the grant', () => {
      const resources = new SiweMessage(res.siwe).resources ?? [];
      expect(resources).toHaveLength(1);
      const recap = resources[0] as string;
      expect(JSON.parse(Buffer.from(recap.slice('urn:recap:'.length), 'base64url').toString('utf8'))).toEqual({
        att: { [R('app/inbox/')]: { 'tinycloud.kv/get': [{}], 'tinycloud.kv/list': [{}] } },
        prf: [],
      });
      expect(decodeRecap(recap).capabilities).toEqual([
        { resource: R('app/inbox/'), ability: 'tinycloud.kv/get', caveats: [{}] },
        { resource: R('app/inbox/'), ability: 'tinycloud.kv/list', caveats: [{}] },
      ]);
    });

    it('wrapper_json carries the TinyCloud fields', () => {
      const w = parseDelegationWrapper(res.wrapperJson);
      expect(w).toMatchObject({
        delegationCid: res.cid,
        ownerDid: `did:pkh:eip155:1:${key.address}`,
        spaceId: SPACE,
        delegateDid: session.did,
        verificationMethod: session.didUrl,
        address: key.address,
        chainId: 1,
        siwe: res.siwe,
        signature: sig,
        expiresAt: new Date(Number(res.expiresAtMs)).toISOString(),
      });
      expect(w.permissions).toEqual([{ service: 'tinycloud.kv', space: 'applications', path: 'app/inbox/', actions: ['tinycloud.kv/get', 'tinycloud.kv/list'] }]);
    });
  });

  it('an Ed25519 owner key issues a UCAN that @ucans/ucans verifies', async () => {
    const grant = await owner.delegations.createGrant({
      keyId: edKey.keyId,
      grantId: 'ed',
      capabilities: [cap(`tinycloud:${edKey.did.slice(4)}:applications/kv/app/`, 'tinycloud.kv/get')],
      delegates: [{ kind: { case: 'did', value: session.did } }],
    });
    const ownerDid = grant.grant?.ownerDid ?? '';
    expect(ownerDid).toBe(edKey.did);
    const resource = `tinycloud:${ownerDid.slice(4)}:applications/kv/app/x/`;
    const { res } = await delegate(owner, { keyId: edKey.keyId, grantId: 'ed', delegateDid: session.did, capabilities: [cap(resource, 'tinycloud.kv/get')], lifetimeSeconds: 600 });
    expect(res.format).toBe('ucan');
    expect(res.siwe).toBe('');
    const [h, p, s] = res.ucan.split('.') as [string, string, string];
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>;
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
    const issuer = (payload['iss'] as string).split('#')[0] as string;
    expect(issuer).toBe(ownerDid);
    expect(ucans.defaults.verifyIssuerAlg(issuer, header['alg'] as string)).toBe(true);
    expect(await ucans.defaults.verifySignature(issuer, utf8(`${h}.${p}`), new Uint8Array(Buffer.from(s, 'base64url')))).toBe(true);
    expect(await ucans.defaults.verifySignature(session.did, utf8(`${h}.${p}`), new Uint8Array(Buffer.from(s, 'base64url')))).toBe(false);
    expect(ucans.isUcanHeader({ ...header, ucv: { major: 0, minor: 10, patch: 0 } })).toBe(true);
    expect(payload).toMatchObject({ aud: session.did, exp: Math.floor(Number(res.expiresAtMs) / 1000), prf: [], att: { [resource]: { 'tinycloud.kv/get': [{}] } } });
    expectBlake3RawCid(res.cid, utf8(res.ucan));
    const w = parseDelegationWrapper(res.wrapperJson);
    expect(w).toMatchObject({ delegationHeader: { Authorization: res.ucan }, delegationCid: res.cid, ownerDid, delegateDid: session.did });
    expect(w.siwe).toBeUndefined();
  });

  describe('the subset table over the RPC', () => {
    beforeAll(async () => {
      await owner.delegations.createGrant({ keyId: key.keyId, grantId: 'gx', capabilities: [cap(R('app/x/'), 'tinycloud.kv/get')], delegates: [{ kind: { case: 'principalId', value: appCreds.principalId } }] });
      await owner.delegations.createGrant({ keyId: key.keyId, grantId: 'grev', capabilities: [cap(R('app/'), 'tinycloud.kv/get')], delegates: [{ kind: { case: 'principalId', value: appCreds.principalId } }] });
      await owner.delegations.revokeGrant({ keyId: key.keyId, grantId: 'grev' });
    });
    const sessionDid = () => DelegateKey.generate().did;
    const base = (over: Record<string, unknown> = {}) => ({ keyId: key.keyId, grantId: 'g1', delegateDid: sessionDid(), capabilities: [cap(R('app/'), 'tinycloud.kv/get')], lifetimeSeconds: 600, ...over });
    type Row = [name: string, call: () => Promise<unknown>, code: string, op?: string];
    const rows: Row[] = [
      ['equal', () => delegate(appClient, base({ capabilities: [cap(R('app/'), 'tinycloud.kv/get'), cap(R('app/'), 'tinycloud.kv/list')] })), 'OK'],
      ['narrower path (app/inbox/)', () => delegate(appClient, base({ capabilities: [cap(R('app/inbox/'), 'tinycloud.kv/get')] })), 'OK'],
      ['lifetime at the maximum', () => delegate(appClient, base({ lifetimeSeconds: 3600 })), 'OK'],
      ['sibling path (grant app/x/, request app/xy/)', () => delegate(appClient, base({ grantId: 'gx', capabilities: [cap(R('app/xy/'), 'tinycloud.kv/get')] })), 'DELEGATION_NOT_SUBSET'],
      ['wider path (the whole kv service)', () => delegate(appClient, base({ capabilities: [cap(`${SPACE}/kv`, 'tinycloud.kv/get')] })), 'DELEGATION_NOT_SUBSET'],
      ['wider path (the parent of app/x/)', () => delegate(appClient, base({ grantId: 'gx', capabilities: [cap(R('app/'), 'tinycloud.kv/get')] })), 'DELEGATION_NOT_SUBSET'],
      ['other space of the owner', () => delegate(appClient, base({ capabilities: [cap(`tinycloud:pkh:eip155:1:${key.address}:default/kv/app/`, 'tinycloud.kv/get')] })), 'DELEGATION_NOT_SUBSET'],
      ['other ability', () => delegate(appClient, base({ capabilities: [cap(R('app/'), 'tinycloud.kv/put')] })), 'DELEGATION_NOT_SUBSET'],
      ['extra caveat', () => delegate(appClient, base({ capabilities: [cap(R('app/'), 'tinycloud.kv/get', [{ maxBytes: 1024 }])] })), 'DELEGATION_NOT_SUBSET'],
      ['longer lifetime', () => delegate(appClient, base({ lifetimeSeconds: 3601 })), 'LIFETIME_TOO_LONG'],
      ['revoked grant', () => delegate(appClient, base({ grantId: 'grev' })), 'GRANT_REVOKED'],
      ['wrong delegate DID (a caller no rule admits)', () => delegate(stranger, base()), 'DELEGATE_NOT_ALLOWED'],
      ['the owner asking for a DID the grant does not name', () => delegate(owner, base()), 'DELEGATE_NOT_ALLOWED'],
      ['unknown grant', () => delegate(appClient, base({ grantId: 'nope' })), 'GRANT_NOT_FOUND'],
      ['a non-owner creating a grant on the key', () => stranger.delegations.createGrant({ keyId: key.keyId, grantId: 'mine', capabilities: [cap(R('app/'), 'tinycloud.kv/get')], delegates: [{ kind: { case: 'principalId', value: strangerCreds.principalId } }] }), 'KEY_NOT_FOUND', 'delegation_grant'],
    ];
    it.each(rows.map(([name, call, code, op]) => ({ name, call, code, op: op ?? 'delegate' })))('$name → $code', async ({ call, code, op }) => {
      const before = await issuedCount();
      const grantsBefore = (await owner.delegations.listGrants({ keyId: key.keyId })).grants.length;
      expect(await codeOf(call())).toBe(code);
      expect(await issuedCount()).toBe(before + (code === 'OK' ? 1 : 0));
      expect((await owner.delegations.listGrants({ keyId: key.keyId })).grants.length).toBe(grantsBefore);
      const last = await lastAudit();
      expect(last).toMatchObject({ operation: op, keyId: key.keyId, decision: code === 'OK' ? 'allow' : 'deny', reason: code === 'OK' ? 'GRANT' : code });
    });

    it('an expired grant → GRANT_EXPIRED (controllable clock), nothing recorded, a deny audited', async () => {
      const now = clock.now();
      await owner.delegations.createGrant({ keyId: key.keyId, grantId: 'gexp', capabilities: [cap(R('app/'), 'tinycloud.kv/get')], delegates: [{ kind: { case: 'principalId', value: appCreds.principalId } }], expiresAtMs: BigInt(now + 30_000) });
      expect(await codeOf(delegate(appClient, base({ grantId: 'gexp', lifetimeSeconds: 10 })))).toBe('OK');
      offsetMs += 31_000; // within the stamp window the test appliance allows
      const before = await issuedCount();
      expect(await codeOf(delegate(appClient, base({ grantId: 'gexp', lifetimeSeconds: 10 })))).toBe('GRANT_EXPIRED');
      expect(await issuedCount()).toBe(before);
      expect(await lastAudit()).toMatchObject({ operation: 'delegate', decision: 'deny', reason: 'GRANT_EXPIRED', principal: appCreds.principalId });
      const listed = (await owner.delegations.listDelegations({ keyId: key.keyId, grantId: 'gexp' })).delegations;
      expect(listed.map((d) => d.status)).toEqual(['expired']);
    });
  });

  describe('a grant composed from an app manifest and a backend manifest', () => {
    const backendKey = DelegateKey.generate();
    const appManifest = { manifest_version: 1, app_id: 'com.example.notes', name: 'Notes', defaults: false, permissions: [{ service: 'tinycloud.kv', path: 'notes/', actions: ['get', 'list', 'put'] }] };
    const backendManifest = { manifest_version: 1, app_id: 'com.example.notes', name: 'Notes backend', did: backendKey.did, defaults: false, permissions: [{ service: 'tinycloud.kv', path: 'inbox/', actions: ['get'] }] };
    const P = 'com.example.notes';

    it('one grant for the union (plus an explicit capability), the backend scoped to its manifest', async () => {
      const res = await owner.delegations.createGrant({
        keyId: key.keyId,
        grantId: 'notes',
        manifestsJson: [JSON.stringify(appManifest), JSON.stringify(backendManifest)],
        capabilities: [cap(R('shared/'), 'tinycloud.kv/get')],
        delegates: [{ kind: { case: 'principalId', value: appCreds.principalId } }],
      });
      const g = res.grant;
      expect(g?.capabilities.map((c) => `${c.resource.slice(SPACE.length + 1)} ${c.ability}`)).toEqual([
        'capabilities tinycloud.capabilities/read',
        `kv/${P}/inbox/ tinycloud.kv/get`,
        `kv/${P}/notes/ tinycloud.kv/get`,
        `kv/${P}/notes/ tinycloud.kv/list`,
        `kv/${P}/notes/ tinycloud.kv/put`,
        'kv/shared/ tinycloud.kv/get',
      ]);
      const [backendRule, appRule] = g?.delegates ?? [];
      expect(backendRule?.kind).toEqual({ case: 'did', value: backendKey.did });
      expect(backendRule?.scope.map((c) => `${c.resource.slice(SPACE.length + 1)} ${c.ability}`)).toEqual(['capabilities tinycloud.capabilities/read', `kv/${P}/inbox/ tinycloud.kv/get`]);
      expect(appRule?.kind).toEqual({ case: 'principalId', value: appCreds.principalId });
    });

    it('explicit capabilities joining manifests are checked like any other input (MALFORMED_REQUEST, not INTERNAL)', async () => {
      const attempt = (caveatsJson: string) =>
        owner.delegations.createGrant({ keyId: key.keyId, grantId: 'notes-bad', manifestsJson: [JSON.stringify(appManifest)], capabilities: [{ resource: R('shared/'), ability: 'tinycloud.kv/get', caveatsJson }], delegates: [{ kind: { case: 'principalId', value: appCreds.principalId } }] });
      expect(await codeOf(attempt('{"not":"a list"}'))).toBe('MALFORMED_REQUEST');
      expect(await codeOf(attempt('[]'))).toBe('MALFORMED_REQUEST');
      expect(await lastAudit()).toMatchObject({ operation: 'delegation_grant', decision: 'deny', reason: 'MALFORMED_REQUEST' });
    });

    it('the backend receives its manifest’s capabilities and nothing else of the union; the app the rest', async () => {
      const { res } = await delegate(backend, { keyId: key.keyId, grantId: 'notes', delegateDid: backendKey.did, capabilities: [cap(R(`${P}/inbox/`), 'tinycloud.kv/get'), cap(`${SPACE}/capabilities`, 'tinycloud.capabilities/read')], lifetimeSeconds: 600 });
      expect(parseDelegationWrapper(res.wrapperJson).delegateDid).toBe(backendKey.did);
      const before = await issuedCount();
      expect(await codeOf(delegate(backend, { keyId: key.keyId, grantId: 'notes', delegateDid: backendKey.did, capabilities: [cap(R(`${P}/notes/`), 'tinycloud.kv/get')], lifetimeSeconds: 600 }))).toBe('DELEGATION_NOT_SUBSET');
      expect(await issuedCount()).toBe(before);
      expect(await lastAudit()).toMatchObject({ operation: 'delegate', decision: 'deny', reason: 'DELEGATION_NOT_SUBSET' });
      expect(await codeOf(delegate(appClient, { keyId: key.keyId, grantId: 'notes', delegateDid: session.did, capabilities: [cap(R(`${P}/notes/`), 'tinycloud.kv/put'), cap(R('shared/'), 'tinycloud.kv/get')], lifetimeSeconds: 600 }))).toBe('OK');
    });
  });

  describe('a TEE backend attested by its own dstack agent', () => {
    // Built when run: the owner's space is known only after beforeAll.
    const scope = () => [cap(R('app/inbox/'), 'tinycloud.kv/get'), cap(R('app/inbox/'), 'tinycloud.kv/list')];
    const inbox = (): CapabilityRequest[] => [{ resource: R('app/inbox/'), ability: 'tinycloud.kv/get' }];
    const collateral = () => Promise.resolve(JSON.stringify(backendSim.collateral()));
    const options = () => ({ applianceUrl: app.connectUrl, credentials: backendCreds, dstackEndpoint: backendSim.socketPath ?? '', keyId: key.keyId, grantId: 'tee', capabilities: inbox(), lifetimeSeconds: 600, collateral, identityPublicKey: app.identityPublicKey });
    let first: Awaited<ReturnType<typeof startTeeBackend>>;

    it('receives its delegation with no owner call in between: the log shows only the delegate allow', async () => {
      await owner.delegations.createGrant({ keyId: key.keyId, grantId: 'tee', capabilities: [cap(R('app/'), 'tinycloud.kv/get'), cap(R('app/'), 'tinycloud.kv/list')], delegates: [{ kind: { case: 'attestationPolicy', value: 'backend-v1' }, scope: scope() }] });
      const grantSeq = (await auditRecords()).findLast((r) => r.operation === 'delegation_grant' && r.decision === 'allow')?.seq ?? 0n;
      first = await startTeeBackend(options());
      const { delegation, delegateKey, request, response } = first;
      checkReceipt(app.identityPublicKey, DelegationService, DelegationService.method.delegate, request, response);
      expect(delegation.delegateDid).toBe(delegateKey.did);
      expect(delegation.permissions).toEqual([{ service: 'tinycloud.kv', space: 'applications', path: 'app/inbox/', actions: ['tinycloud.kv/get'] }]);
      expect(new SiweMessage(delegation.siwe as string).uri).toBe(delegateKey.didUrl);
      expect(await verifyMessage({ address: key.address as Hex, message: delegation.siwe as string, signature: delegation.signature as Hex })).toBe(true);
      expect(JSON.stringify(delegateKey)).toBe(JSON.stringify({ did: delegateKey.did })); // the secret never serializes
      const after = (await auditRecords()).filter((r) => r.seq > grantSeq);
      expect(after.map((r) => [r.operation, r.decision, r.reason, r.principal, r.keyId])).toEqual([['delegate', 'allow', 'GRANT', backendCreds.principalId, key.keyId]]);
      const listed = (await owner.delegations.listDelegations({ keyId: key.keyId, grantId: 'tee' })).delegations;
      expect(listed.map((d) => [d.cid, d.delegateDid, d.status])).toEqual([[response.cid, delegateKey.did, 'active']]);
    });

    it('the policy file tells the two simulators apart by app identity, not by PKI (local verifier)', async () => {
      const verdict = async (sim: RunningSimulator): Promise<string> => {
        const k = DelegateKey.generate();
        const nonce = crypto.getRandomValues(new Uint8Array(32));
        const ev = await attestDelegateKey({ dstack: sim.socketPath ?? '', delegatePublicKey: k.publicKey, nonce, collateral });
        try {
          verifyAppliance({ quote: ev.quote, eventLog: ev.eventLog, collateral: parseCollateral(ev.collateralJson), identityPublicKey: k.publicKey }, { ...parsePolicy(backendPolicy), nonce }, Math.floor(Date.now() / 1000));
          return 'OK';
        } catch (e) {
          return isVerifierError(e) ? e.code : String(e);
        }
      };
      expect(await verdict(backendSim)).toBe('OK');
      expect(await verdict(rogueSim)).toBe('POLICY_APP_ID');
    });

    const refusals: [string, () => Promise<unknown>, string][] = [
      ['asking for more than its scope', () => startTeeBackend({ ...options(), capabilities: [{ resource: R('app/'), ability: 'tinycloud.kv/get' }] }), 'DELEGATION_NOT_SUBSET'],
      ['a backend of another app (same mock PKI, other app id and compose)', () => startTeeBackend({ ...options(), dstackEndpoint: rogueSim.socketPath ?? '' }), 'DELEGATE_NOT_ALLOWED'],
      ['replaying the same request (same nonce and quote)', () => delegate(backend, first.request), 'DELEGATE_NOT_ALLOWED'],
      [
        'the same quote with a fresh nonce',
        async () => {
          const { nonce } = await backend.delegations.getDelegationNonce({});
          const a = first.request.attestation;
          if (a === undefined) throw new Error('the first request carried no attestation');
          return delegate(backend, { ...first.request, attestation: create(DelegateAttestationSchema, { ...a, nonce }) });
        },
        'DELEGATE_NOT_ALLOWED',
      ],
      [
        'a tampered quote',
        async () => {
          const k = DelegateKey.generate();
          const { nonce } = await backend.delegations.getDelegationNonce({});
          const ev = await attestDelegateKey({ dstack: backendSim.socketPath ?? '', delegatePublicKey: k.publicKey, nonce, collateral });
          const quote = Uint8Array.from(ev.quote);
          quote[200] = (quote[200] as number) ^ 1; // inside the TD report the quote signature covers
          return delegate(backend, { keyId: key.keyId, grantId: 'tee', delegateDid: k.did, capabilities: scope().slice(0, 1), lifetimeSeconds: 600, attestation: { ...ev, quote } });
        },
        'DELEGATE_NOT_ALLOWED',
      ],
      [
        'a genuine quote for one key, used for another DID',
        async () => {
          const k = DelegateKey.generate();
          const { nonce } = await backend.delegations.getDelegationNonce({});
          const ev = await attestDelegateKey({ dstack: backendSim.socketPath ?? '', delegatePublicKey: k.publicKey, nonce, collateral });
          return delegate(backend, { keyId: key.keyId, grantId: 'tee', delegateDid: DelegateKey.generate().did, capabilities: scope().slice(0, 1), lifetimeSeconds: 600, attestation: ev });
        },
        'DELEGATE_NOT_ALLOWED',
      ],
      ['no attestation at all', () => delegate(backend, { keyId: key.keyId, grantId: 'tee', delegateDid: DelegateKey.generate().did, capabilities: scope().slice(0, 1), lifetimeSeconds: 600 }), 'DELEGATE_NOT_ALLOWED'],
    ];
    it.each(refusals.map(([name, call, code]) => ({ name, call, code })))('$name → $code, nothing recorded, a deny audited', async ({ call, code }) => {
      const before = await issuedCount();
      expect(await codeOf(call())).toBe(code);
      expect(await issuedCount()).toBe(before);
      expect(await lastAudit()).toMatchObject({ operation: 'delegate', decision: 'deny', reason: code, principal: backendCreds.principalId });
    });
  });

  it('ListDelegations shows active, then revoked after RevokeGrant; revoked grants issue nothing', async () => {
    const listed = async () => (await owner.delegations.listDelegations({ keyId: key.keyId, grantId: 'g1' })).delegations;
    const active = await listed();
    expect(active.length).toBeGreaterThanOrEqual(4);
    expect(new Set(active.map((d) => d.status))).toEqual(new Set(['active']));
    expect(active.every((d) => d.grantId === 'g1' && d.format === 'siwe-cacao')).toBe(true);
    const req = create(DelegationService.method.revokeGrant.input, { keyId: key.keyId, grantId: 'g1' });
    const res = await owner.delegations.revokeGrant(req);
    checkReceipt(app.identityPublicKey, DelegationService, DelegationService.method.revokeGrant, req, res);
    expect(res.grant?.revoked).toBe(true);
    const revoked = await listed();
    expect(revoked.map((d) => d.cid)).toEqual(active.map((d) => d.cid));
    expect(new Set(revoked.map((d) => d.status))).toEqual(new Set(['revoked']));
    expect(await codeOf(delegate(owner, { keyId: key.keyId, grantId: 'g1', delegateDid: session.did, capabilities: [cap(R('app/'), 'tinycloud.kv/get')], lifetimeSeconds: 60 }))).toBe('GRANT_REVOKED');
    expect(await codeOf(stranger.delegations.listDelegations({ keyId: key.keyId }))).toBe('KEY_NOT_FOUND');
  });
});
