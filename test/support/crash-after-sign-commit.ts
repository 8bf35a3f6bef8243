// Test fixture for audit-crash.test.ts, run as its own process: the real appliance on the LevelDB
// data directory in argv[2], with its store wrapped so that the moment the first commit carrying a
// Sign decision's audit record (appendAudit of a sign operation) is durable, the process SIGKILLs
// itself — after the decision is on disk, before the key is unsealed or any response is written.
// Prints one JSON line {connectPort, identityPublicKey} on stdout once it listens.

import { startAppliance } from '../../server/src/app.ts';
import { createLogger } from '../../server/src/adapters/logger.ts';
import { loadConfig } from '../../server/src/config.ts';
import { SIGN_OPERATIONS } from '../../server/src/core/policy.ts';
import type { Change, ListPage, Store } from '../../server/src/core/ports.ts';

const isSignOperation = (op: string): boolean => (SIGN_OPERATIONS as readonly string[]).includes(op);
const carriesSignDecision = (changes: readonly Change[]): boolean => changes.some((c) => c.kind === 'appendAudit' && isSignOperation(c.entry.operation));

/** Forwards everything to `inner`; dies right after a Sign decision's commit resolves. */
class CrashAfterSignCommit implements Store {
  constructor(private readonly inner: Store) {}

  async commit(changes: readonly Change[]): Promise<void> {
    await this.inner.commit(changes);
    if (carriesSignDecision(changes)) process.kill(process.pid, 'SIGKILL'); // durable, unanswered
  }
  async commitEach(groups: readonly (readonly Change[])[]): ReturnType<Store['commitEach']> {
    const results = await this.inner.commitEach(groups);
    if (groups.some((g, i) => results[i] === undefined && carriesSignDecision(g))) process.kill(process.pid, 'SIGKILL');
    return results;
  }
  getPrincipal(id: string): ReturnType<Store['getPrincipal']> {
    return this.inner.getPrincipal(id);
  }
  getKey(keyId: string): ReturnType<Store['getKey']> {
    return this.inner.getKey(keyId);
  }
  listKeys(owner: string, page: ListPage): ReturnType<Store['listKeys']> {
    return this.inner.listKeys(owner, page);
  }
  pruneNonces(now: number): ReturnType<Store['pruneNonces']> {
    return this.inner.pruneNonces(now);
  }
  getCounter(counter: string): ReturnType<Store['getCounter']> {
    return this.inner.getCounter(counter);
  }
  getTokenBucket(bucket: string): ReturnType<Store['getTokenBucket']> {
    return this.inner.getTokenBucket(bucket);
  }
  getAuditHead(): ReturnType<Store['getAuditHead']> {
    return this.inner.getAuditHead();
  }
  getDoc(...a: Parameters<Store['getDoc']>): ReturnType<Store['getDoc']> {
    return this.inner.getDoc(...a);
  }
  listDocs(...a: Parameters<Store['listDocs']>): ReturnType<Store['listDocs']> {
    return this.inner.listDocs(...a);
  }
  pruneDocs(now: number): ReturnType<Store['pruneDocs']> {
    return this.inner.pruneDocs(now);
  }
  readAudit(from: number, to: number): ReturnType<Store['readAudit']> {
    return this.inner.readAudit(from, to);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: crash-after-sign-commit <data dir>');
const config = loadConfig({ OPENKEY_DATA_DIR: dataDir, OPENKEY_CONNECT_PORT: '0', OPENKEY_GRPC_PORT: '0', OPENKEY_LOG_LEVEL: 'warn' });
const app = await startAppliance(config, { logger: createLogger('warn', process.stderr), storeDecorator: (s) => new CrashAfterSignCommit(s) });
process.stdout.write(`${JSON.stringify({ connectPort: app.connectPort, identityPublicKey: Buffer.from(app.identityPublicKey).toString('hex') })}\n`);
