// What every transport does around a call, in one place: a request id, a server-side deadline,
// mapping of failures to wire errors, and one log line per failed call (code, method, request id;
// never the request body or stamp).

import { randomUUID } from 'node:crypto';
import type { Logger } from '../adapters/logger.ts';
import { BusyError, OpenKeyError } from '../core/errors.ts';
import type { CallMeta } from '../service/rpc.ts';
import { toWireError, type WireError } from './error-map.ts';

export interface TransportLimits {
  /** Largest accepted request message, bytes. */
  readonly maxRequestBytes: number;
  /** Largest response message, bytes. */
  readonly maxResponseBytes: number;
  /** Server-side deadline for one call, milliseconds. */
  readonly callTimeoutMs: number;
  /** Shared by every listener: beyond its bound, calls are refused at once (back-pressure). */
  readonly admission?: Admission;
}

export const DEFAULT_LIMITS: TransportLimits = {
  maxRequestBytes: 1024 * 1024,
  maxResponseBytes: 4 * 1024 * 1024,
  callTimeoutMs: 10_000,
};

/** Counts calls in progress so a shutdown can wait for them to finish. */
export class InFlight {
  private active = 0;
  private waiters: (() => void)[] = [];

  get count(): number {
    return this.active;
  }

  enter(): void {
    this.active++;
  }

  leave(): void {
    this.active--;
    if (this.active === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when no call is in progress, or after `timeoutMs`, whichever comes first. */
  idle(timeoutMs: number): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/**
 * A bound on calls in progress across all listeners. Beyond it a call is refused immediately with
 * RESOURCE_EXHAUSTED and a retry hint, instead of queueing: latency and memory stay bounded under
 * overload, and the client learns to back off.
 */
export class Admission {
  #active = 0;

  constructor(
    readonly maxInFlight: number,
    readonly retryAfterMs: number,
  ) {
    if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) throw new RangeError('maxInFlight must be a positive integer');
  }

  get active(): number {
    return this.#active;
  }

  tryEnter(): boolean {
    if (this.#active >= this.maxInFlight) return false;
    this.#active++;
    return true;
  }

  leave(): void {
    this.#active--;
  }
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: WireError };

export function newMeta(stamp: string | undefined, sessionStamp?: string): CallMeta {
  return { stamp, sessionStamp, requestId: randomUUID() };
}

/**
 * How a transport tells a call that its client went away: registers `cancel` and returns what
 * unregisters it. Cheaper than an AbortSignal where the transport has an event of its own.
 */
export type CancelHook = (cancel: () => void) => () => void;

/** A CancelHook for an AbortSignal. */
function hookOf(signal: AbortSignal): CancelHook {
  return (cancel) => {
    if (signal.aborted) {
      cancel();
      return () => undefined;
    }
    signal.addEventListener('abort', cancel, { once: true });
    return () => signal.removeEventListener('abort', cancel);
  };
}

/**
 * Runs one call under the admission bound and the call timeout. `fn` gets the call's signal: it
 * aborts with DEADLINE_EXCEEDED at the timeout, or CANCELLED when `cancelled` (the transport's
 * client-gone signal or hook) fires, so work still queued for the call (its commit) is dropped.
 */
export async function invoke<T>(
  method: string,
  meta: CallMeta,
  limits: TransportLimits,
  logger: Logger,
  fn: (signal: AbortSignal) => Promise<T>,
  inFlight?: InFlight,
  cancelled?: AbortSignal | CancelHook,
): Promise<Outcome<T>> {
  const admission = limits.admission;
  if (admission !== undefined && !admission.tryEnter()) {
    logger.debug({ requestId: meta.requestId, method }, 'call refused: server at capacity');
    return { ok: false, error: toWireError(new BusyError(admission.retryAfterMs)) };
  }
  let timer: NodeJS.Timeout | undefined;
  const controller = new AbortController();
  const unhook = cancelled === undefined ? undefined : (typeof cancelled === 'function' ? cancelled : hookOf(cancelled))(() => controller.abort(new OpenKeyError('CANCELLED', 'caller cancelled')));
  inFlight?.enter();
  try {
    // One promise settles the call: the work's outcome, or the deadline's error, whichever is first.
    const value = await new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => {
        const e = new OpenKeyError('DEADLINE_EXCEEDED');
        controller.abort(e);
        reject(e);
      }, limits.callTimeoutMs);
      fn(controller.signal).then(resolve, reject);
    });
    return { ok: true, value };
  } catch (e) {
    const error = toWireError(e);
    if (error.unexpected) logger.error({ requestId: meta.requestId, method, err: e }, 'internal error');
    else logger.info({ requestId: meta.requestId, method, code: error.code }, 'call rejected');
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
    unhook?.();
    inFlight?.leave();
    admission?.leave();
  }
}
