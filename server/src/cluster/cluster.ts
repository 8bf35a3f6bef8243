// The appliance on every core (OPENKEY_WORKERS ≥ 2). node:cluster forks the workers; they share the
// Connect and gRPC ports (the primary hands out connections round-robin) and each runs the whole
// per-call path: transport, decoding, authentication checks, policy evaluation, unsealing, signing
// and receipts, with its own unsealed-key cache. The primary is the store owner (cluster/remote.ts):
// it opens LevelDB, runs group commit, the audit chain, counters and the service sessions, runs the
// embedded simulator in development, and answers the workers over IPC. It listens on no port.
// Workers keep what signing decisions read and check session MACs themselves; the owner validates
// both when a call commits (remote.ts, worker-reads.ts), so a warm Sign is one round trip to it.
//
// Lifecycle: a worker reports `ready` with its ports once listening; the primary logs "appliance
// listening" when all are. A worker that crashes is replaced (at most MAX_RESTARTS within a minute,
// then the whole appliance stops rather than flap). On SIGINT/SIGTERM the primary asks every worker
// to stop; each closes its listeners, lets in-flight calls finish (their commits still reach the
// owner, which keeps serving until the last worker is gone), and exits; only then does the primary
// close the store. Nothing is killed inside a native call unless a worker overstays the drain limit.

import cluster, { type Worker } from 'node:cluster';
import { startAppliance, type RunningAppliance } from '../app.ts';
import { createLogger, type Logger } from '../adapters/logger.ts';
import { withNodeFlags, type Config } from '../config.ts';
import { ChannelClient, serveChannel, type IpcPort } from './channel.ts';
import { RemoteServiceSessions, RemoteStore, isSessionClosedMessage, ownerHandlers, remoteCollateral, sessionClosedMessage } from './remote.ts';
import { WorkerReads, isStaleKeysMessage, staleKeysOf } from './worker-reads.ts';
import { METHODS } from '../service/rpc.ts';

const LIFECYCLE = 'openkey.lifecycle';
const TEE_ENDPOINT_ENV = 'OPENKEY_CLUSTER_TEE_ENDPOINT';
const MAX_RESTARTS = 5;

type Lifecycle =
  | { readonly tag: typeof LIFECYCLE; readonly event: 'ready'; readonly connectPort: number; readonly grpcPort: number }
  | { readonly tag: typeof LIFECYCLE; readonly event: 'failed'; readonly message: string }
  | { readonly tag: typeof LIFECYCLE; readonly event: 'stop' };

function isLifecycle(m: unknown): m is Lifecycle {
  return typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === LIFECYCLE;
}

export interface RunningCluster {
  readonly connectPort: number;
  readonly grpcPort: number;
  readonly logger: Logger;
  readonly workers: number;
  /** Drains every worker, then closes the store. */
  close(): Promise<void>;
}

/** Primary: starts the owner, forks `config.workers` workers, resolves once all of them listen. */
export async function startCluster(config: Config, logger: Logger = createLogger(config.logLevel)): Promise<RunningCluster> {
  const owner: RunningAppliance = await startAppliance(config, { logger, role: { kind: 'owner' } });
  const owned = owner.owned;
  if (owned === undefined) throw new Error('owner role returned no state');
  const live = new Set<Worker>();
  const tellWorkers = (message: object): void => {
    for (const w of live) {
      try {
        w.send(message);
      } catch {
        // A worker that is going away has nothing left to keep fresh.
      }
    }
  };
  const handlers = ownerHandlers({
    store: owned.store,
    sessions: owned.serviceSessions,
    collateral: owned.collateral,
    // Workers drop what they cached of keys a commit changed. Only to make stale entries rare: a
    // decision on a stale entry is refused at commit whether or not this arrives first.
    written: (changes) => {
      const stale = staleKeysOf(changes);
      if (stale !== undefined) tellWorkers(stale);
    },
    // Workers zeroize their copies of a closed session's secret and end its streams. Calls that
    // race this message are refused anyway: their commits find the session ended at the owner.
    sessionClosed: (sessionId) => tellWorkers(sessionClosedMessage(sessionId)),
  });

  // Records travel with their Uint8Arrays: structured clone, not JSON. Workers serve the calls:
  // they get the V8 flags whichever way the primary was started.
  cluster.setupPrimary({ serialization: 'advanced', execArgv: withNodeFlags(process.execArgv) });
  let stopping = false;
  let restarts: number[] = [];
  let ports: { connectPort: number; grpcPort: number } | undefined;
  let fatal: ((e: Error) => void) | undefined;

  const fork = (): Promise<{ connectPort: number; grpcPort: number }> => {
    const w = cluster.fork({ [TEE_ENDPOINT_ENV]: owned.teeEndpoint });
    live.add(w);
    const stopServing = serveChannel(w as unknown as IpcPort, handlers, (op, err) => logger.error({ op, err, worker: w.id }, 'store owner operation failed'));
    return new Promise((resolve, reject) => {
      let ready = false;
      w.on('message', (m: unknown) => {
        if (!isLifecycle(m)) return;
        if (m.event === 'ready') {
          ready = true;
          resolve({ connectPort: m.connectPort, grpcPort: m.grpcPort });
        } else if (m.event === 'failed') reject(new Error(`worker failed to start: ${m.message}`));
      });
      w.on('exit', (code, signal) => {
        live.delete(w);
        stopServing();
        if (!ready) {
          reject(new Error(`worker exited during start-up (code ${code}, signal ${signal ?? 'none'})`));
          return;
        }
        if (stopping || (code === 0 && signal === null)) return;
        logger.error({ worker: w.id, code, signal }, 'worker died; starting a replacement');
        const now = Date.now();
        restarts = [...restarts.filter((t) => now - t < 60_000), now];
        if (restarts.length > MAX_RESTARTS) {
          fatal?.(new Error(`${restarts.length} worker crashes within a minute`));
          return;
        }
        fork().catch((err: unknown) => fatal?.(err instanceof Error ? err : new Error(String(err))));
      });
    });
  };

  const closeAll = async (): Promise<void> => {
    stopping = true;
    const exits = [...live].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          const force = setTimeout(() => w.process.kill('SIGKILL'), config.callTimeoutMs + 5_000);
          w.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          try {
            w.send({ tag: LIFECYCLE, event: 'stop' } satisfies Lifecycle);
          } catch {
            w.process.kill('SIGTERM');
          }
        }),
    );
    await Promise.all(exits);
    await owner.close();
  };

  try {
    // The first worker binds the ports (0 = any free port); the rest share its handles.
    ports = await fork();
    await Promise.all(Array.from({ length: config.workers - 1 }, () => fork()));
  } catch (e) {
    await closeAll();
    throw e;
  }
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= closeAll());
  fatal = (e) => {
    logger.error({ err: e }, 'stopping: workers keep failing');
    void close().then(() => process.exit(1));
  };
  logger.info({ connect: `${config.host}:${ports.connectPort}`, grpc: `${config.host}:${ports.grpcPort}`, workers: config.workers, registration: config.registration, rpId: config.rpId }, 'appliance listening');
  return { ...ports, logger, workers: config.workers, close };
}

/** Worker: runs the appliance on the owner's state until the primary says stop (or goes away). */
export async function runWorker(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel).child({ worker: cluster.worker?.id, pid: process.pid });
  const port = process as unknown as IpcPort;
  const channel = new ChannelClient(port);
  const tell = (m: Lifecycle) => process.send?.(m);
  const teeEndpoint = process.env[TEE_ENDPOINT_ENV] ?? '';
  // Sign and SignBatch commit the caller's nonceChanges with their decision (core/signing.ts), so
  // their session calls are checked here and their sequence numbers spent by the owner at commit.
  const sessions = new RemoteServiceSessions(channel, { localMethods: new Set([METHODS.sign, METHODS.signBatch]) });
  const store = new RemoteStore(channel, { sessionEnded: (id) => sessions.forget(id) });
  const reads = new WorkerReads(store);
  process.on('message', (m: unknown) => {
    if (isStaleKeysMessage(m)) reads.forget(m.keyIds);
    else if (isSessionClosedMessage(m)) sessions.forget(m.sessionId);
  });
  let app: RunningAppliance;
  try {
    app = await startAppliance(config, {
      logger,
      role: { kind: 'worker', store, serviceSessions: sessions, collateral: remoteCollateral(channel), teeEndpoint, reads },
    });
  } catch (e) {
    tell({ tag: LIFECYCLE, event: 'failed', message: e instanceof Error ? e.message : String(e) });
    process.exit(1);
  }
  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ why }, 'worker draining');
    // Without an owner nothing in flight can finish: fail it now rather than wait it out.
    if (why === 'owner gone') channel.close();
    app.close().then(
      () => {
        channel.close();
        sessions.clear();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'worker shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('message', (m: unknown) => {
    if (isLifecycle(m) && m.event === 'stop') stop('asked by the owner');
  });
  // The primary coordinates shutdown; a signal sent to the whole group (Ctrl-C) drains here too.
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('disconnect', () => stop('owner gone'));
  tell({ tag: LIFECYCLE, event: 'ready', connectPort: app.connectPort, grpcPort: app.grpcPort });
}
