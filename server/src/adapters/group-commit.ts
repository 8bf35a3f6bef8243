// Group commit in front of any Store: commits go to disk together in one `commitEach` (one fsync for
// many requests). A write starts at the end of the event-loop turn in which its first commit came
// (setImmediate: after every I/O callback of the turn, so the calls of one socket read, or the
// messages of one stream frame, share it), and commits that arrive while it is in flight wait for
// the next. Each caller still gets its own all-or-nothing result, and its promise settles only
// after its changes are durable, so a response is never sent before its nonce or audit record is on
// disk. Every commit is copied when it is made, as a store plans a commit on entry: a caller's
// later change to its objects never reaches the disk.

import type { OpenKeyError } from '../core/errors.ts';
import { abortReason, copyChanges, type Change, type CommitOptions, type ListPage, type Store } from '../core/ports.ts';

interface Pending {
  readonly changes: readonly Change[];
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** Most commits written together; the rest wait for the next write. Default 256. */
  readonly maxGroup?: number;
}

export class GroupCommitStore implements Store {
  private queue: Pending[] = [];
  /** A drain is scheduled or running: new commits only join the queue. */
  private writing = false;
  private readonly maxGroup: number;

  constructor(
    private readonly inner: Store,
    o: GroupCommitOptions = {},
  ) {
    this.maxGroup = o.maxGroup ?? 256;
  }

  commit(changes: readonly Change[], options: CommitOptions = {}): Promise<void> {
    const signal = options.signal;
    if (signal?.aborted === true) return Promise.reject(abortReason(signal));
    if (changes.length === 0) return Promise.resolve(); // nothing to make durable (a session-authenticated read)
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ changes: copyChanges(changes), signal, resolve, reject });
      if (!this.writing) {
        this.writing = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        // Calls that timed out or were cancelled while queued are dropped here: nothing of theirs
        // is written, and their callers hear why at once.
        const group = this.queue.splice(0, this.maxGroup).filter((p) => {
          if (p.signal?.aborted !== true) return true;
          p.reject(abortReason(p.signal));
          return false;
        });
        if (group.length === 0) continue;
        let results: (OpenKeyError | undefined)[];
        try {
          results = await this.inner.commitEach(group.map((p) => p.changes));
        } catch (e) {
          for (const p of group) p.reject(e);
          continue;
        }
        group.forEach((p, i) => {
          const err = results[i];
          if (err === undefined) p.resolve();
          else p.reject(err);
        });
      }
    } finally {
      this.writing = false;
    }
  }

  commitEach(groups: readonly (readonly Change[])[]) {
    return this.inner.commitEach(groups);
  }
  getPrincipal(id: string) {
    return this.inner.getPrincipal(id);
  }
  getKey(keyId: string) {
    return this.inner.getKey(keyId);
  }
  listKeys(owner: string, page: ListPage) {
    return this.inner.listKeys(owner, page);
  }
  pruneNonces(now: number) {
    return this.inner.pruneNonces(now);
  }
  getCounter(counter: string) {
    return this.inner.getCounter(counter);
  }
  getTokenBucket(bucket: string) {
    return this.inner.getTokenBucket(bucket);
  }
  getAuditHead() {
    return this.inner.getAuditHead();
  }
  readAudit(from: number, to: number) {
    return this.inner.readAudit(from, to);
  }
  getDoc(space: string, id: string) {
    return this.inner.getDoc(space, id);
  }
  listDocs(space: string, page: ListPage & { readonly prefix?: string }) {
    return this.inner.listDocs(space, page);
  }
  pruneDocs(now: number) {
    return this.inner.pruneDocs(now);
  }
  async close(): Promise<void> {
    // Let queued commits finish before the backend closes.
    while (this.writing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 1));
    await this.inner.close();
  }
}
