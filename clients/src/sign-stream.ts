// SignStream from the client side: one long-lived HTTP/2 stream, authenticated once by a service
// session when it opens (the `openkey-session` header over the method and the empty body), then
// any number of pipelined Sign requests. Each request gets a fresh id; answers arrive in any order
// and are matched back by id. A refused request rejects with SignStreamError carrying the
// appliance's code; with a pinned identity key, every signature's receipt is checked before it is
// handed out.

import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { ConnectError, createClient, type Transport } from '@connectrpc/connect';
import { sha256 } from '@noble/hashes/sha2';
import {
  SignRequestSchema,
  SignResponseSchema,
  SignService,
  SignStreamRequestSchema,
  type SignRequest,
  type SignResponse,
  type SignStreamRequest,
  type SignStreamResponse,
} from '../../proto/gen/openkey/v1/signing_pb.ts';
import { SESSION_HEADER } from '../../proto/protocol/session-stamp.ts';
import { checkReceipt, type ReceiptCheckOptions } from './attested.ts';
import { openKeyErrorCode } from './client.ts';
import type { ServiceSession } from './service-session.ts';

export const SIGN_STREAM_PATH = '/openkey.v1.SignService/SignStream';

/** What a receipt of a stream answer covers: the method SignStream, one SignRequest, one SignResponse. */
const RECEIPT_METHOD = { name: 'SignStream', input: SignRequestSchema, output: SignResponseSchema } as const;

/**
 * A request the stream did not sign. `code` is the appliance's error code (e.g. KEY_NOT_FOUND,
 * RESOURCE_EXHAUSTED, SESSION_EXPIRED), or one of the client's own:
 * STREAM_CLOSED — the stream ended before this request was answered (after close(), or when the
 * appliance shut down); CANCELLED — cancel() or the caller's signal; STREAM_FAILED — the stream
 * broke without an appliance code (e.g. a connection lost: the request may or may not have been
 * signed).
 */
export class SignStreamError extends Error {
  override readonly name = 'SignStreamError';
  constructor(
    readonly code: string,
    /** For RESOURCE_EXHAUSTED: wait this long before sending the request again. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(code, options);
  }
}

export interface SignStreamOptions {
  /** The pinned identity key: each answer's receipt must verify under it (recommended). */
  readonly identityPublicKey?: Uint8Array;
  readonly receipts?: ReceiptCheckOptions;
  /** Aborting it cancels the stream, like cancel(). */
  readonly signal?: AbortSignal;
}

export interface SignStream {
  /** Sends one request; resolves with its signature, or rejects with SignStreamError (or ReceiptError). */
  sign(request: MessageInitShape<typeof SignRequestSchema>): Promise<SignResponse>;
  /** Sends no more, waits for every outstanding answer, and ends the stream. */
  close(): Promise<void>;
  /** Ends the stream now; outstanding requests reject with CANCELLED (queued work is dropped). */
  cancel(): void;
  /** Requests sent and not yet answered. */
  readonly outstanding: number;
}

interface Pending {
  readonly request: SignRequest;
  resolve(res: SignResponse): void;
  reject(e: Error): void;
}

/**
 * Opens a SignStream through `transport`: a gRPC transport (either appliance port), or a Connect
 * transport with httpVersion "2" (bidirectional streaming needs HTTP/2). The session's next
 * sequence number authenticates the stream once.
 */
export function openSignStream(transport: Transport, session: ServiceSession, o: SignStreamOptions = {}): SignStream {
  const pending = new Map<bigint, Pending>();
  const queue: SignStreamRequest[] = [];
  const abort = new AbortController();
  let nextId = 0n;
  let closing = false;
  let ended: SignStreamError | undefined;
  let wake = (): void => undefined;

  const onAbort = (): void => cancel();
  if (o.signal?.aborted === true) abort.abort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });

  async function* outgoing(): AsyncGenerator<SignStreamRequest> {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (closing) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }

  const settle = (res: SignStreamResponse): void => {
    const p = pending.get(res.id);
    if (p === undefined) return; // not ours (or answered already): nothing waits for it
    pending.delete(res.id);
    const outcome = res.outcome;
    if (outcome.case === 'error') {
      p.reject(new SignStreamError(outcome.value.code, outcome.value.retryAfterMs === 0 ? undefined : outcome.value.retryAfterMs));
      return;
    }
    if (outcome.case !== 'result') {
      p.reject(new SignStreamError('STREAM_FAILED', undefined, { cause: new Error('an answer with neither result nor error') }));
      return;
    }
    try {
      if (o.identityPublicKey !== undefined) checkReceipt(o.identityPublicKey, SignService, RECEIPT_METHOD, p.request, outcome.value, o.receipts);
    } catch (e) {
      p.reject(e as Error);
      return;
    }
    p.resolve(outcome.value);
  };

  const end = (error: SignStreamError): void => {
    ended ??= error;
    closing = true;
    wake();
    for (const p of pending.values()) p.reject(ended);
    pending.clear();
    o.signal?.removeEventListener('abort', onAbort);
  };

  const header = session.stampDigest(SIGN_STREAM_PATH, sha256(new Uint8Array(0)));
  const client = createClient(SignService, transport);
  const done = (async () => {
    try {
      for await (const res of client.signStream(outgoing(), { headers: { [SESSION_HEADER]: header }, signal: abort.signal })) settle(res);
      end(new SignStreamError('STREAM_CLOSED'));
    } catch (e) {
      const code = abort.signal.aborted ? 'CANCELLED' : (openKeyErrorCode(e) ?? 'STREAM_FAILED');
      const retry = e instanceof ConnectError ? Number(e.metadata.get('openkey-retry-after-ms') ?? '') : NaN;
      end(new SignStreamError(code, Number.isFinite(retry) && retry > 0 ? retry : undefined, { cause: e }));
    }
  })();

  function cancel(): void {
    abort.abort();
    end(new SignStreamError('CANCELLED'));
  }

  return {
    sign(init) {
      if (closing || ended !== undefined) return Promise.reject(ended ?? new SignStreamError('STREAM_CLOSED'));
      const request = create(SignRequestSchema, init);
      const id = ++nextId;
      return new Promise<SignResponse>((resolve, reject) => {
        pending.set(id, { request, resolve, reject });
        queue.push(create(SignStreamRequestSchema, { id, request }));
        wake();
      });
    },
    async close() {
      closing = true;
      wake();
      await done;
    },
    cancel,
    get outstanding() {
      return pending.size;
    },
  };
}
