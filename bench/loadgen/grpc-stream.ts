// SignStream load over the lean HTTP/2 client (raw-h2.ts): S long-lived gRPC streams, one per
// connection, each opened by a HEADERS frame with its own `openkey-session` header (a MAC over the
// method and the empty body, a fresh sequence number each), then W Sign requests in flight on each
// (a closed loop: every answer releases the next message on that stream). Everything is encoded
// before the timed window: the openings' HEADERS frames, and every message as a gRPC-framed
// SignStreamRequest with an id of its own (ids 1, 2, … across all streams) in one arena. Sending a
// message copies it into the connection's send buffer (the messages written in one turn of the
// event loop share DATA frames); answers are cut out of the DATA by GrpcMessageReader (several per
// frame, or one over several frames), read as far as the id and outcome, and matched by id for
// latency (answer time − write time). A StreamError answer is a failed call keyed by its code; a
// stream that ends badly fails every message it left unanswered. The first answers of each stream
// and a sample after that are kept and, after the window, decoded in full and verified
// (verify.ts): a run with a wrong answer does not report a rate as if it were right.

import { fromBinary } from '@bufbuild/protobuf';
import { createGrpcTransport } from '@connectrpc/connect-node';
import { performance } from 'node:perf_hooks';
import { openSignStream, type ServiceSession } from '../../clients/src/index.ts';
import { SignRequestSchema } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { buildStreamPool, type StreamRequestPool } from '../requests.ts';
import { GrpcFramingError, GrpcMessageReader } from './grpc-deframe.ts';
import { connectAll, grpcOutcome, PreparedGrpcRequests } from './grpc-raw.ts';
import type { RunSpec } from './protocol.ts';
import type { H2Answer, H2Stream, RawH2Connection } from './raw-h2.ts';
import { framedStreamRequestLength, OUTCOME_ERROR, OUTCOME_RESULT, readStreamAnswer, StreamAnswerView, WireError, writeFramedStreamRequest } from './sign-stream-wire.ts';
import { checkResponse, checkStreamResult } from './verify.ts';
import type { MeasurementWindow } from './window.ts';

/** A stream with nothing arriving for this long fails (`stream timeout`), as a unary call would. */
const STREAM_IDLE_TIMEOUT_MS = 10_000;
/** Answers kept for checking: the first SAMPLE_FIRST of each stream, then every SAMPLE_EVERY-th
 * answer of the run, at most MAX_SAMPLES in all. */
const SAMPLE_FIRST = 8;
const SAMPLE_EVERY = 128;
const MAX_SAMPLES = 512;

/** The openings and messages of a SignStream run, framed for sending. */
export class PreparedStreamMessages {
  private constructor(
    private readonly openings: PreparedGrpcRequests,
    private readonly arena: Buffer,
    /** Message id's frame is arena[offsets[id], offsets[id + 1]). */
    private readonly offsets: Float64Array,
    private readonly requests: readonly Buffer[],
    /** Ids 1 … messages. */
    readonly messages: number,
    /** Milliseconds spent encoding. */
    readonly buildMs: number,
  ) {}

  static build(pool: StreamRequestPool, authority: string): PreparedStreamMessages {
    const started = performance.now();
    // The openings are HEADERS frames like those of unary calls, with the SignStream path.
    const openings = PreparedGrpcRequests.build(
      { path: pool.path, authHeader: pool.authHeader, bodies: [Buffer.alloc(0)], stamps: pool.openings, size: pool.openings.length, buildMs: 0 },
      authority,
    );
    const n = pool.messages;
    const requests = pool.requests;
    if (requests.length === 0) throw new Error('a stream pool without requests');
    const requestOf = (id: number): Buffer => requests[id % requests.length] as Buffer;
    const offsets = new Float64Array(n + 2);
    let total = 0;
    for (let id = 1; id <= n; id++) {
      offsets[id] = total;
      total += framedStreamRequestLength(id, requestOf(id).length);
    }
    offsets[n + 1] = total;
    const arena = Buffer.allocUnsafe(total);
    for (let id = 1; id <= n; id++) writeFramedStreamRequest(arena, offsets[id] as number, id, requestOf(id));
    return new PreparedStreamMessages(openings, arena, offsets, requests, n, performance.now() - started);
  }

  /** Streams that can be opened (one opening each). */
  get streams(): number {
    return this.openings.count;
  }

  /** The HEADERS frame that opens stream k. */
  opening(k: number): Buffer {
    return this.openings.headers(k);
  }

  /** Message `id` (1 … messages) as a gRPC-framed SignStreamRequest. */
  message(id: number): Buffer {
    return this.arena.subarray(this.offsets[id], this.offsets[id + 1]);
  }

  /** The SignRequest that message `id` carries (protobuf). */
  request(id: number): Buffer {
    return this.requests[id % this.requests.length] as Buffer;
  }
}

export interface StreamRunOptions {
  readonly host: string;
  readonly port: number;
  /** Messages in flight on each stream. */
  readonly window: number;
  /** A stream with nothing arriving for this long fails with `timeout` (default 10 s). */
  readonly idleTimeoutMs?: number;
}

/** An answer kept for checking: the id it was matched to and the SignStreamResponse (protobuf). */
export interface KeptAnswer {
  readonly id: number;
  readonly answer: Buffer;
}

export interface StreamRunOutcome {
  /** Messages sent. */
  readonly sent: number;
  /** Answers matched to a message (results and StreamErrors). */
  readonly answered: number;
  readonly kept: readonly KeptAnswer[];
  readonly connections: number;
}

/** One stream of the run and its state. */
interface Lane {
  readonly k: number;
  readonly reader: GrpcMessageReader;
  h2: H2Stream | undefined;
  inFlight: number;
  answered: number;
  /** We have half-closed (the window closed, or the pool ran out). */
  closing: boolean;
  ended: boolean;
  /** Set when the answers could not be read: the stream was cancelled, for this reason. */
  failure: string | undefined;
}

/**
 * Drives prepared.streams streams, one per connection, `window` messages in flight on each, until
 * `win` stops accepting (or the messages run out); then half-closes every stream and waits until
 * each has ended. Every answer and every failure goes to `win`.
 */
export async function runSignStreams(prepared: PreparedStreamMessages, o: StreamRunOptions, win: MeasurementWindow): Promise<StreamRunOutcome> {
  const S = prepared.streams;
  const W = o.window;
  if (S < 1 || S > 0xffff || !Number.isInteger(W) || W < 1) throw new Error(`SignStream run of ${S} streams × ${W} messages`);
  const conns: RawH2Connection[] = await connectAll(o.host, o.port, S, o.idleTimeoutMs ?? STREAM_IDLE_TIMEOUT_MS);
  const last = prepared.messages;
  const sentAt = new Float64Array(last + 1);
  /** Lane k + 1 while message id is in flight on it; 0 otherwise. */
  const owner = new Uint16Array(last + 1);
  const kept: KeptAnswer[] = [];
  const view = new StreamAnswerView();
  let next = 1;
  let answered = 0;

  const halfClose = (lane: Lane): void => {
    if (lane.closing || lane.ended) return;
    lane.closing = true;
    lane.h2?.end();
  };

  /** Tops the lane up to W messages in flight (they go out in this turn's write). */
  const refill = (lane: Lane): void => {
    if (lane.ended || lane.closing) return;
    if (!win.accepting) return halfClose(lane);
    const h2 = lane.h2 as H2Stream;
    const now = performance.now();
    while (lane.inFlight < W) {
      if (next > last) {
        win.poolExhausted();
        return halfClose(lane);
      }
      const id = next++;
      owner[id] = lane.k + 1;
      sentAt[id] = now;
      lane.inFlight++;
      h2.write(prepared.message(id));
    }
  };

  const onMessage = (lane: Lane, buf: Buffer, from: number, to: number): void => {
    readStreamAnswer(buf, from, to, view);
    const id = view.id;
    if (id < 1 || id > last || owner[id] !== lane.k + 1) {
      // Not a message in flight on this stream (or answered twice): wrong, whatever it says.
      win.complete(0, false, 'answer with an unknown id');
      return;
    }
    owner[id] = 0;
    lane.inFlight--;
    lane.answered++;
    answered++;
    const latencyMs = performance.now() - (sentAt[id] as number);
    if (view.outcome === OUTCOME_RESULT) {
      win.complete(latencyMs, true, undefined);
      if ((lane.answered <= SAMPLE_FIRST || answered % SAMPLE_EVERY === 0) && kept.length < MAX_SAMPLES) kept.push({ id, answer: Buffer.from(buf.subarray(from, to)) });
    } else if (view.outcome === OUTCOME_ERROR) {
      win.complete(latencyMs, false, `StreamError ${view.code === '' ? '(no code)' : view.code}`, view.retryAfterMs > 0);
    } else {
      win.complete(latencyMs, false, 'StreamError answer without an outcome');
    }
    refill(lane);
  };

  const onData = (lane: Lane, buf: Buffer, from: number, to: number): void => {
    if (lane.failure !== undefined) return;
    try {
      lane.reader.push(buf, from, to);
    } catch (e) {
      if (!(e instanceof GrpcFramingError || e instanceof WireError)) throw e;
      lane.failure = `unreadable answer: ${e.message}`;
      lane.h2?.cancel();
    }
  };

  try {
    await new Promise<void>((resolve) => {
      let running = S;
      const onEnd = (lane: Lane, a: H2Answer): void => {
        lane.ended = true;
        let unanswered = 0;
        for (let id = 1; id < next; id++) {
          if (owner[id] === lane.k + 1) {
            owner[id] = 0;
            unanswered++;
          }
        }
        const out = grpcOutcome(a);
        const why =
          lane.failure ??
          (!out.ok ? out.errorKey : !lane.closing ? 'stream ended by the server' : unanswered > 0 ? 'stream ended with messages unanswered' : undefined);
        // Every message the stream left unanswered is a failed call; a stream that failed with
        // nothing in flight still counts once.
        if (why !== undefined) for (let i = 0; i < Math.max(1, unanswered); i++) win.complete(0, false, why, out.retryHint);
        if (--running === 0) {
          win.close();
          resolve();
        }
      };
      win.begin();
      for (let k = 0; k < S; k++) {
        const lane: Lane = {
          k,
          reader: new GrpcMessageReader((buf, from, to) => onMessage(lane, buf, from, to)),
          h2: undefined,
          inFlight: 0,
          answered: 0,
          closing: false,
          ended: false,
          failure: undefined,
        };
        const conn = conns[k] as RawH2Connection;
        lane.h2 = conn.openStream(
          prepared.opening(k),
          (buf, from, to) => onData(lane, buf, from, to),
          (a) => onEnd(lane, a),
        );
        refill(lane);
      }
    });
  } finally {
    await Promise.all(conns.map((c) => c.close()));
  }
  return { sent: next - 1, answered, kept, connections: conns.length };
}

/** "ok" when every kept answer is right (verify.ts) and there is at least one; otherwise the first
 * that is wrong, and why. */
export function checkKeptAnswers(spec: RunSpec, prepared: PreparedStreamMessages, kept: readonly KeptAnswer[]): string {
  if (kept.length === 0) return 'no answer of the run was kept to check';
  for (const { id, answer } of kept) {
    const why = checkResponse(spec, prepared.message(id).subarray(5), answer);
    if (why !== 'ok') return `answer to message ${id}: ${why}`;
  }
  return 'ok';
}

/**
 * The pre-flight of a SignStream run, through the project's own client (clients/src/sign-stream.ts
 * over a gRPC transport, not the lean generator): one stream, opened with the session's next
 * sequence number, one message (`request`), its answer verified; then the stream is closed.
 */
export async function preflightStream(spec: RunSpec, session: ServiceSession, request: Buffer, timeoutMs: number): Promise<string> {
  const transport = createGrpcTransport({ baseUrl: `http://${spec.host}:${spec.port}` });
  const stream = openSignStream(transport, session);
  let timer: NodeJS.Timeout | undefined;
  try {
    const req = fromBinary(SignRequestSchema, request);
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs)));
    const res = await Promise.race([stream.sign(req), timeout]);
    const verdict = checkStreamResult(spec, req, res);
    await Promise.race([stream.close(), timeout]);
    return verdict;
  } catch (e) {
    stream.cancel();
    return `SignStream pre-flight failed: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    clearTimeout(timer);
  }
}

export interface StreamLoadOutcome {
  readonly sent: number;
  readonly preflight: string;
  readonly checkedAnswers: number;
  readonly poolSize: number;
  readonly poolBuildMs: number;
  readonly connections: number;
}

/** A whole SignStream run for the load-generator process: pool, pre-flight, load, checks. */
export async function runStreamLoad(spec: RunSpec, session: ServiceSession, win: MeasurementWindow): Promise<StreamLoadOutcome> {
  const streams = spec.streams ?? 1;
  const window = spec.concurrency / streams;
  if (!Number.isInteger(streams) || streams < 1 || !Number.isInteger(window) || window < 1) {
    throw new Error(`SignStream run: ${spec.concurrency} messages in flight do not divide over ${streams} streams`);
  }
  const pool = buildStreamPool({ operation: 'signStream', payload: spec.payload, batchSize: 1, keyId: spec.keyId }, session, streams, spec.maxRequests);
  const preflight = await preflightStream(spec, session, pool.requests[0] as Buffer, STREAM_IDLE_TIMEOUT_MS);
  const prepared = PreparedStreamMessages.build(pool, `${spec.host}:${spec.port}`);
  const run = await runSignStreams(prepared, { host: spec.host, port: spec.port, window }, win);
  const checked = checkKeptAnswers(spec, prepared, run.kept);
  return {
    sent: run.sent,
    preflight: preflight !== 'ok' ? preflight : checked,
    checkedAnswers: run.kept.length,
    poolSize: pool.messages,
    poolBuildMs: pool.buildMs + prepared.buildMs,
    connections: run.connections,
  };
}
