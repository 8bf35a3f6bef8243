// Composition root: builds the appliance from configuration — TEE (the embedded dstack simulator
// or the real guest agent, both through @phala/dstack-sdk), the appliance secrets derived from it,
// the LevelDB store, the domain services, and the Connect and gRPC listeners — and tears it all
// down again in order. The only module that knows every concrete adapter.

import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDstackTee } from './adapters/dstack-tee.ts';
import { GroupCommitStore } from './adapters/group-commit.ts';
import { openLevelStore } from './adapters/level-store.ts';
import { createLogger, type Logger } from './adapters/logger.ts';
import { createPasskeyCeremonies } from './adapters/webauthn.ts';
import { createDelegateAttestationVerifier, loadDelegatePolicies } from './adapters/delegate-attestation.ts';
import { Delegations } from './core/delegations.ts';
import { importKeyStatement } from '../../proto/protocol/key-import.ts';
import { deriveApplianceSecrets, IDENTITY_KEY_PURPOSE } from './core/appliance-keys.ts';
import { AttestationService, type CollateralProvider } from './core/attestation.ts';
import { pcsCollateral, writeDevPolicy } from './attestation-setup.ts';
import { AuditLog } from './core/audit.ts';
import { Authenticator } from './core/auth.ts';
import { KeyPolicies } from './core/key-policies.ts';
import { People } from './core/people.ts';
import { zeroize } from './core/bytes.ts';
import { UnsealedKeyCache } from './core/key-cache.ts';
import { createApplianceCrypto } from './core/key-material.ts';
import { KeyService } from './core/keys.ts';
import type { Clock, Random, Store } from './core/ports.ts';
import { PrincipalService } from './core/principals.ts';
import { ReceiptSigner } from './core/receipts.ts';
import { SealingKeyring, seal, unseal } from './core/sealing.ts';
import { hpkeSeal } from './core/crypto/hpke.ts';
import { ServiceSessions, type ServiceSessionsPort, type SharedServiceSessions } from './core/service-sessions.ts';
import { SignService, type DecisionReads } from './core/signing.ts';
import type { Config } from './config.ts';
import { ApplianceRpc } from './service/rpc.ts';
import { startSimulator, type RunningSimulator } from './simulator/simulator.ts';
import { startConnectServer, type RunningServer } from './transport/connect.ts';
import { loadWebPage, webPageHandler } from './transport/web-page.ts';
import { startGrpcServer } from './transport/grpc.ts';
import { Admission } from './transport/invoke.ts';

export interface RunningAppliance {
  /** 0 for a cluster owner, which listens on no port. */
  readonly connectPort: number;
  readonly grpcPort: number;
  /** Ed25519 public key that signs receipts (and is bound into attestation quotes). */
  readonly identityPublicKey: Uint8Array;
  readonly logger: Logger;
  /** A cluster owner's state, served to its workers (cluster/remote.ts). */
  readonly owned?: OwnedState;
  close(): Promise<void>;
}

/** What a cluster owner holds for every worker: the store, the service sessions, the TEE. */
export interface OwnedState {
  readonly store: Store;
  readonly serviceSessions: SharedServiceSessions;
  readonly collateral: CollateralProvider | undefined;
  /** Where workers reach the TEE (the simulator's socket, or the dstack guest agent). */
  readonly teeEndpoint: string;
}

/** A worker's view of the owner's state, and where its signing decisions read from. */
export interface WorkerState {
  readonly store: Store;
  readonly serviceSessions: ServiceSessionsPort;
  readonly collateral: CollateralProvider | undefined;
  readonly teeEndpoint: string;
  /** Cached reads whose versions the owner checks at commit (cluster/worker-reads.ts). */
  readonly reads: DecisionReads;
}

/**
 * The process's part in a multi-core appliance (server/src/cluster). `owner`: build everything,
 * listen on no port, and expose the state (RunningAppliance.owned). `worker`: use the owner's state
 * and TEE endpoint, listen, and leave the one-time work (simulator, administrators, development
 * policy, pruning) to the owner.
 */
export type ApplianceRole = { readonly kind: 'owner' } | ({ readonly kind: 'worker' } & WorkerState);

export interface ApplianceOverrides {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Wraps the store every service uses (after group commit), e.g. to observe or fail commits. */
  readonly storeDecorator?: (store: Store) => Store;
  /** Default: a single process that does everything. */
  readonly role?: ApplianceRole;
}

const systemClock: Clock = { now: () => Date.now() };
const systemRandom: Random = { bytes: (n) => new Uint8Array(randomBytes(n)) };

/**
 * The dev simulator's seed lives beside the store, created once with mode 0600, so the simulated
 * KMS root (and with it the sealing key) survives restarts without being a published constant.
 */
function simulatorSeed(dir: string): Uint8Array {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'seed');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex'), { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  const hex = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${file} is not a 32-byte hex seed`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export async function startAppliance(config: Config, overrides: ApplianceOverrides = {}): Promise<RunningAppliance> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const random = systemRandom;
  const role = overrides.role;
  const worker = role?.kind === 'worker' ? role : undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  const closeAll = async () => {
    for (const c of cleanups.reverse()) await c();
  };

  try {
    // TEE: the embedded simulator in development, the dstack guest agent in production.
    let endpoint: string;
    let collateral: CollateralProvider | undefined;
    let sim: RunningSimulator | undefined;
    if (worker !== undefined) {
      endpoint = worker.teeEndpoint;
      collateral = worker.collateral;
    } else if (config.tee.kind === 'simulator') {
      const running = await startSimulator({ socketPath: join(config.tee.dir, 'dstack.sock'), seed: simulatorSeed(config.tee.dir) });
      sim = running;
      cleanups.push(() => running.close());
      endpoint = running.socketPath ?? '';
      // Mock collateral, signed under the simulator's mock root: only a client that explicitly
      // trusts that root accepts it.
      collateral = { forQuote: () => Promise.resolve(JSON.stringify(running.collateral())) };
      logger.warn({ appId: running.appId }, 'development mode: keys are sealed by the embedded dstack simulator, not a TEE');
    } else {
      endpoint = config.tee.endpoint;
      if (config.pccsUrl !== undefined) collateral = pcsCollateral(config.pccsUrl, logger);
    }
    const tee = createDstackTee({ endpoint });
    const secrets = await deriveApplianceSecrets(tee, config.sealingVersion);
    const keyring = SealingKeyring.fromSecrets(
      secrets.sealing.map((s, i) => ({ version: i + 1, secret: s.key })),
      config.sealingVersion,
    );
    for (const s of secrets.sealing) zeroize(s.key);

    const crypto = createApplianceCrypto();
    logger.info({ secp256k1: crypto.secp256k1Backend }, 'crypto backends');
    const identityPublicKey = crypto.material.publicKey('ed25519', secrets.identity.key);
    const identity = crypto.material.usable('ed25519', secrets.identity.key);
    zeroize(secrets.identity.key);
    const importOpener = crypto.importOpener(secrets.importKey.key);
    zeroize(secrets.importKey.key);
    const attestation = new AttestationService({
      tee,
      identity: {
        publicKey: identityPublicKey,
        signatureChain: secrets.identity.signatureChain,
        purpose: IDENTITY_KEY_PURPOSE,
        importPublicKey: importOpener.publicKey,
        importKeySignature: identity.sign(importKeyStatement(importOpener.publicKey)),
      },
      ...(collateral ? { collateral } : {}),
    });

    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    // Group commit: concurrent requests share one fsync'd LevelDB write, each still durable
    // before its response.
    const grouped: Store = worker?.store ?? new GroupCommitStore(await openLevelStore(join(config.dataDir, 'store'), { cacheEntries: config.storeCacheEntries }));
    const store: Store = overrides.storeDecorator?.(grouped) ?? grouped;
    cleanups.push(() => store.close());

    // Passkey ceremonies name the origins the browser reports; by default the appliance's own page.
    let origins: readonly string[] = config.origins ?? [];
    const people = new People({
      store,
      clock,
      random,
      webauthn: createPasskeyCeremonies({
        rpId: config.rpId,
        rpName: config.rpName,
        get origins() {
          return origins;
        },
      }),
      registration: config.registration,
      sessionTtlMs: config.sessionTtlMs,
      validatePublicKey: crypto.validatePrincipalPublicKey,
    });
    const localSessions = worker !== undefined ? undefined : new ServiceSessions({
      store,
      clock,
      random,
      seal: (o) => hpkeSeal(o),
      principal: (id) => store.getPrincipal(id),
      defaultTtlMs: Math.min(config.serviceSessionTtlMs, config.serviceSessionMaxTtlMs),
      maxTtlMs: config.serviceSessionMaxTtlMs,
      maxSessions: config.maxServiceSessions,
      maxPerPrincipal: config.maxServiceSessionsPerPrincipal,
    });
    if (localSessions !== undefined) cleanups.push(() => localSessions.clear());
    const serviceSessions: ServiceSessionsPort = worker?.serviceSessions ?? (localSessions as ServiceSessions);
    const auth = new Authenticator({
      store,
      clock,
      verify: crypto.verifyPrincipalSignature,
      windowMs: config.stampWindowMs,
      session: (id) => people.session(id),
      serviceSession: (req) => serviceSessions.authenticate(req),
    });
    const principals = new PrincipalService({
      store,
      clock,
      auth,
      registration: config.registration,
      validatePublicKey: crypto.validatePrincipalPublicKey,
    });
    if (worker === undefined) await principals.ensureAdmins(config.adminKeys.map((k) => ({ ...k, name: 'configured administrator' })));
    const keys = new KeyService({
      store,
      clock,
      random,
      material: crypto.material,
      sealer: {
        seal: (p, secret) => seal({ ...p, keyring, random, secret }),
        unseal: (p, blob) => unseal({ ...p, keyring, blob }),
      },
      openImport: importOpener.open,
      importPublicKey: importOpener.publicKey,
    });
    const cache = new UnsealedKeyCache({ clock, maxEntries: config.keyCacheEntries, ttlMs: config.keyCacheTtlMs });
    cleanups.push(() => cache.clear());
    const policies = new KeyPolicies({ store, clock });
    const signing = new SignService({ store, clock, keys, policies, cache, hash: crypto.hasher, ...(worker === undefined ? {} : { reads: worker.reads }) });
    const receipts = new ReceiptSigner(identity, clock);
    const audit = new AuditLog({ store, clock, sign: (m) => identity.sign(m) });
    cleanups.push(() => identity.destroy());
    const delegatePolicies = loadDelegatePolicies(config.delegatePoliciesFile);
    const delegations = new Delegations({
      store,
      clock,
      random,
      keys,
      cache,
      hash: crypto.hasher,
      policies,
      verifyAttestation: createDelegateAttestationVerifier(() => delegatePolicies, () => clock.now()),
      domain: config.siweDomain,
    });
    const rpc = new ApplianceRpc({ auth, principals, keys, signing, receipts, attestation, people, policies, audit, delegations, serviceSessions, auditReaders: config.auditReaders });
    if (sim !== undefined) await writeDevPolicy(config.tee.kind === 'simulator' ? config.tee.dir : '', sim, attestation, logger);

    // Consumed nonces are only needed while their stamps could still be accepted. (One process
    // prunes: the owner of a cluster, or the single process.)
    if (worker === undefined) {
      const prune = setInterval(() => {
        store.pruneNonces(clock.now()).catch((err: unknown) => logger.error({ err }, 'nonce pruning failed'));
        store.pruneDocs(clock.now()).catch((err: unknown) => logger.error({ err }, 'challenge and session pruning failed'));
      }, 60_000);
      prune.unref();
      cleanups.push(() => clearInterval(prune));
    }
    let closed: Promise<void> | undefined;
    const close = () => (closed ??= closeAll());

    if (role?.kind === 'owner' && localSessions !== undefined) {
      const teeEndpoint = endpoint;
      return { connectPort: 0, grpcPort: 0, identityPublicKey, logger, owned: { store, serviceSessions: localSessions, collateral, teeEndpoint }, close };
    }

    const limits = {
      maxRequestBytes: config.maxRequestBytes,
      maxResponseBytes: 4 * config.maxRequestBytes,
      callTimeoutMs: config.callTimeoutMs,
      admission: new Admission(config.maxInFlight, 50),
    };
    // The passkey page (clients/web), bundled once per process; a failed build only disables the page.
    const fallback = webPageHandler(config.webPage ? await loadWebPage(logger) : undefined);
    const connect: RunningServer = await startConnectServer({ rpc, logger, limits, fallback }, config.host, config.connectPort);
    cleanups.push(() => connect.close());
    const grpc: RunningServer = await startGrpcServer({ rpc, logger, limits }, config.host, config.grpcPort);
    cleanups.push(() => grpc.close());
    if (config.origins === undefined) origins = [`http://localhost:${connect.port}`];

    logger.info(
      { connect: `${config.host}:${connect.port}`, grpc: `${config.host}:${grpc.port}`, registration: config.registration, rpId: config.rpId, origins },
      worker === undefined ? 'appliance listening' : 'worker listening',
    );
    return { connectPort: connect.port, grpcPort: grpc.port, identityPublicKey, logger, close };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
