// A cluster worker's cache of what signing decisions read: each key's record and stored policy,
// with the version of each (core/read-versions.ts). A decision on cached values commits with
// `expectKey`/`expectDoc` conditions, which the store owner checks inside its atomic section, so a
// stale entry can never let a decision through: its commit is refused with CONFLICT (nothing
// written), the entry is dropped and the decision is made again on fresh reads (core/signing.ts).
// The owner also tells every worker which keys a commit changed (`staleKeysOf`, cluster.ts), which
// makes such retries rare; correctness does not depend on that message arriving in time.
//
// Cached: keys that exist (an unknown id is read afresh every time, so guessed ids cannot fill the
// cache), at most `maxEntries`, least recently used dropped first. Key records hold the sealed
// blob, never the key.

import { POLICY_SPACE, decodePolicy } from '../core/key-policies.ts';
import type { Authenticated } from '../core/auth.ts';
import { OpenKeyError } from '../core/errors.ts';
import { checkKeyPolicy, type KeyPolicy } from '../core/policy.ts';
import type { Change, KeyRecord, Store, StoredDoc } from '../core/ports.ts';
import { docVersion, keyRecordVersion } from '../core/read-versions.ts';
import type { DecisionReads, KeyReading } from '../core/signing.ts';

const DEFAULT_MAX_ENTRIES = 4096;

/** The owner's message to every worker after a commit that changed keys' records or policies. */
const STALE_TAG = 'openkey.stale';
export interface StaleKeysMessage {
  readonly tag: typeof STALE_TAG;
  readonly keyIds: readonly string[];
}

export function isStaleKeysMessage(m: unknown): m is StaleKeysMessage {
  return typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === STALE_TAG && Array.isArray((m as { keyIds?: unknown }).keyIds);
}

/** The message telling workers that these changes, once written, made cached readings stale; undefined if none. */
export function staleKeysOf(changes: readonly Change[]): StaleKeysMessage | undefined {
  let keyIds: string[] | undefined;
  for (const c of changes) {
    let id: string | undefined;
    if (c.kind === 'replaceKey') id = c.key.keyId;
    else if ((c.kind === 'putDoc' || c.kind === 'deleteDoc') && c.space === POLICY_SPACE) id = c.id;
    if (id !== undefined) (keyIds ??= []).push(id);
  }
  return keyIds === undefined ? undefined : { tag: STALE_TAG, keyIds };
}

/** One key's values as read, with the conditions a commit deciding on them carries. */
interface Snapshot {
  readonly record: KeyRecord | undefined;
  readonly policy: unknown;
  readonly conditions: readonly Change[];
}

function snapshotOf(keyId: string, record: KeyRecord | undefined, doc: StoredDoc | undefined): Snapshot {
  let policy: unknown = doc === undefined ? undefined : decodePolicy(doc.value);
  if (policy !== undefined) {
    try {
      // Checked once here, so each decision's own check is a lookup (the checked policy is frozen).
      policy = checkKeyPolicy(policy as KeyPolicy);
    } catch {
      // Left as stored: evaluatePolicy denies it (POLICY_INVALID) on every decision, as it would unread.
    }
  }
  return {
    record,
    policy,
    conditions: [
      { kind: 'expectKey', keyId, version: keyRecordVersion(record) },
      { kind: 'expectDoc', space: POLICY_SPACE, id: keyId, version: docVersion(doc) },
    ],
  };
}

function readingOf(snapshot: Promise<Snapshot>): KeyReading {
  let settled: Snapshot | undefined;
  const s = snapshot.then((v) => (settled = v));
  return {
    record: s.then((v) => v.record),
    policy: s.then((v) => v.policy),
    conditions: () => {
      if (settled === undefined) throw new OpenKeyError('INTERNAL', 'conditions asked before the reading settled');
      return settled.conditions;
    },
  };
}

export class WorkerReads implements DecisionReads {
  readonly #entries = new Map<string, Snapshot>();
  /** Grows on every `forget`: a read that started before a forget does not fill the cache. */
  #epoch = 0;

  constructor(
    private readonly store: Pick<Store, 'getKey' | 'getDoc'>,
    private readonly maxEntries = DEFAULT_MAX_ENTRIES,
  ) {}

  read(keyId: string, fresh: boolean): KeyReading {
    const hit = fresh ? undefined : this.#entries.get(keyId);
    if (hit !== undefined) {
      this.#entries.delete(keyId);
      this.#entries.set(keyId, hit); // most recently used goes last
      return { record: Promise.resolve(hit.record), policy: Promise.resolve(hit.policy), conditions: () => hit.conditions };
    }
    const epoch = this.#epoch;
    // Both reads leave in the same IPC message (the channel batches a loop turn's calls).
    const snapshot = Promise.all([this.store.getKey(keyId), this.store.getDoc(POLICY_SPACE, keyId)]).then(([record, doc]) => {
      const s = snapshotOf(keyId, record, doc);
      if (record !== undefined && epoch === this.#epoch) this.#set(keyId, s);
      return s;
    });
    return readingOf(snapshot);
  }

  /**
   * A call authenticated by a service session that has not spent a sequence number in this
   * commit (a SignStream message, or a call the owner authenticated) still needs its session to
   * be live when it commits.
   */
  caller(auth: Authenticated): readonly Change[] {
    const s = auth.serviceSession;
    if (s === undefined || auth.nonceChanges.some((c) => c.kind === 'serviceSession')) return [];
    return [{ kind: 'serviceSession', sessionId: s.id }];
  }

  forget(keyIds: Iterable<string>): void {
    this.#epoch++;
    for (const id of keyIds) this.#entries.delete(id);
  }

  get size(): number {
    return this.#entries.size;
  }

  #set(keyId: string, s: Snapshot): void {
    this.#entries.delete(keyId);
    this.#entries.set(keyId, s);
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
  }
}
