// Calls between the processes of a multi-core appliance (cluster/README in server/src/cluster):
// request/response over Node's IPC pipe to a cluster worker or to the primary, with structured-clone
// ("advanced") serialization so records travel with their Uint8Arrays. Messages issued in the same
// turn of the event loop leave together as ONE IPC message: at high rates a worker's reads and
// commits cost one pipe write per loop turn, not one per call.
//
// Errors cross as their code and detail only (an OpenKeyError is rebuilt on the other side; any
// other failure becomes INTERNAL, logged by the side that had it). A call's AbortSignal crosses as
// a cancel message: the owner aborts the call's own signal, so a commit still queued there is
// dropped, and the call settles with the owner's answer (a commit whose write has started completes).

import { ERROR_CODES, OpenKeyError, isOpenKeyError, type ErrorCode } from '../core/errors.ts';

/** The two ends Node gives: `process` in a worker, a `cluster.Worker` in the primary. */
export interface IpcPort {
  send(message: unknown): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

type Frame =
  | { readonly t: 'call'; readonly id: number; readonly op: string; readonly args: readonly unknown[] }
  | { readonly t: 'cancel'; readonly id: number; readonly code: ErrorCode }
  | { readonly t: 'ok'; readonly id: number; readonly value: unknown }
  | { readonly t: 'err'; readonly id: number; readonly code: ErrorCode; readonly detail: string | undefined };

/** Marks our batches among other IPC messages (cluster's own, lifecycle messages). */
const TAG = 'openkey.ipc';
interface Batch {
  readonly tag: typeof TAG;
  readonly frames: readonly Frame[];
}

function isBatch(m: unknown): m is Batch {
  return typeof m === 'object' && m !== null && (m as { tag?: unknown }).tag === TAG && Array.isArray((m as { frames?: unknown }).frames);
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

function toFrameError(e: unknown): { code: ErrorCode; detail: string | undefined } {
  if (isOpenKeyError(e)) return { code: e.code, detail: e.detail };
  return { code: 'INTERNAL', detail: undefined };
}

function fromFrameError(code: string, detail: string | undefined): OpenKeyError {
  return new OpenKeyError(KNOWN_CODES.has(code) ? (code as ErrorCode) : 'INTERNAL', detail);
}

/** Queues frames and sends them as one message once the current loop turn is over. */
class Outbox {
  #frames: Frame[] = [];
  #scheduled = false;

  constructor(
    private readonly port: IpcPort,
    private readonly onSendFailed: (frames: readonly Frame[]) => void,
  ) {}

  push(f: Frame): void {
    this.#frames.push(f);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.#scheduled = false;
    const frames = this.#frames;
    if (frames.length === 0) return;
    this.#frames = [];
    let sent = false;
    try {
      sent = this.port.send({ tag: TAG, frames } satisfies Batch);
    } catch {
      sent = false;
    }
    // `send` returns false when its queue is full, yet the message is still delivered; it throws
    // (or the channel is closed) only when it cannot be.
    if (!sent && !this.connected()) this.onSendFailed(frames);
  }

  private connected(): boolean {
    const p = this.port as { connected?: boolean; isConnected?: () => boolean };
    if (typeof p.isConnected === 'function') return p.isConnected();
    return p.connected !== false;
  }
}

interface PendingCall {
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
}

/** The calling end (a worker reaching the store owner). */
export class ChannelClient {
  #next = 1;
  readonly #pending = new Map<number, PendingCall>();
  readonly #outbox: Outbox;
  #closed: OpenKeyError | undefined;
  readonly #listener = (m: unknown) => this.#receive(m);

  constructor(private readonly port: IpcPort) {
    this.#outbox = new Outbox(port, (frames) => {
      for (const f of frames) if (f.t === 'call') this.#settle(f.id, undefined, new OpenKeyError('INTERNAL', 'store owner unreachable'));
    });
    port.on('message', this.#listener);
  }

  /** Calls `op` on the other side. `signal`'s reason (an OpenKeyError) is sent along as a cancel. */
  call<T>(op: string, args: readonly unknown[], signal?: AbortSignal): Promise<T> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      if (signal !== undefined) {
        onAbort = () => {
          const reason: unknown = signal.reason;
          this.#outbox.push({ t: 'cancel', id, code: isOpenKeyError(reason) ? reason.code : 'CANCELLED' });
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, signal, onAbort });
      this.#outbox.push({ t: 'call', id, op, args });
    });
  }

  get pending(): number {
    return this.#pending.size;
  }

  /** Fails every call in progress and every later one with `reason` (the owner went away). */
  close(reason = new OpenKeyError('INTERNAL', 'store owner gone')): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    this.port.off('message', this.#listener);
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined, reason);
  }

  #receive(m: unknown): void {
    if (!isBatch(m)) return;
    for (const f of m.frames) {
      if (f.t === 'ok') this.#settle(f.id, f.value, undefined);
      else if (f.t === 'err') this.#settle(f.id, undefined, fromFrameError(f.code, f.detail));
    }
  }

  #settle(id: number, value: unknown, error: unknown): void {
    const p = this.#pending.get(id);
    if (p === undefined) return;
    this.#pending.delete(id);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    if (error === undefined) p.resolve(value);
    else p.reject(error);
  }
}

/** What the serving end runs: `signal` aborts when the caller sends a cancel for this call. */
export type Handler = (args: readonly unknown[], signal: AbortSignal) => Promise<unknown>;

/**
 * The serving end (the store owner, for one worker). Unknown operations and malformed frames are
 * answered INTERNAL; `onUnexpected` hears about failures that are not OpenKeyErrors.
 */
export function serveChannel(port: IpcPort, handlers: Readonly<Record<string, Handler>>, onUnexpected: (op: string, e: unknown) => void): () => void {
  const outbox = new Outbox(port, () => undefined);
  const running = new Map<number, AbortController>();
  const listener = (m: unknown) => {
    if (!isBatch(m)) return;
    for (const f of m.frames) {
      if (f.t === 'cancel') {
        running.get(f.id)?.abort(new OpenKeyError(KNOWN_CODES.has(f.code) ? f.code : 'CANCELLED', 'caller gave up'));
        continue;
      }
      if (f.t !== 'call') continue;
      const handler = Object.hasOwn(handlers, f.op) ? handlers[f.op] : undefined;
      if (handler === undefined || !Array.isArray(f.args)) {
        outbox.push({ t: 'err', id: f.id, code: 'INTERNAL', detail: `unknown operation ${String(f.op)}` });
        continue;
      }
      const controller = new AbortController();
      running.set(f.id, controller);
      void handler(f.args, controller.signal).then(
        (value) => outbox.push({ t: 'ok', id: f.id, value }),
        (e: unknown) => {
          if (!isOpenKeyError(e)) onUnexpected(f.op, e);
          const { code, detail } = toFrameError(e);
          outbox.push({ t: 'err', id: f.id, code, detail });
        },
      ).finally(() => running.delete(f.id));
    }
  };
  port.on('message', listener);
  return () => {
    port.off('message', listener);
    for (const c of running.values()) c.abort(new OpenKeyError('CANCELLED', 'worker gone'));
  };
}
