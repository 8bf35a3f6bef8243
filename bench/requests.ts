// Pre-built request pools for the load generators. Payload bodies (protobuf, deterministic
// encoding) are built once per distinct payload; every request then gets its own authentication
// before the timed window: a service-session header (HMAC with the next sequence number) or an
// Ed25519 stamp (fresh single-use nonce, current time). The generator spends almost nothing per
// request while it runs, and the server never sees a replayed stamp or sequence number. A
// SignStream run instead authenticates each stream once, when it opens (a session header over the
// method and the empty body); its messages carry no authentication of their own.

import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { createHash, randomBytes } from 'node:crypto';
import { GetImportKeyRequestSchema } from '../proto/gen/openkey/v1/keys_pb.ts';
import { SignBatchRequestSchema, SignRequestSchema, type SignRequest } from '../proto/gen/openkey/v1/signing_pb.ts';
import { SESSION_HEADER } from '../proto/protocol/session-stamp.ts';
import { base64UrlEncode, formatStamp, STAMP_HEADER, stampSigningInput } from '../proto/protocol/stamp.ts';
import type { Credentials, ServiceSession } from '../clients/src/index.ts';
import { mailJsons, personalMessages, PAYLOAD_POOL } from './payloads.ts';

/** What a request asks the appliance to do. `signStream`: Sign requests as the messages of
 * long-lived SignStream calls. */
export type Operation = 'sign' | 'signBatch' | 'signStream' | 'getImportKey';
/** What Sign signs: EIP-191 personal message, EIP-712 Mail document, or an Ed25519 message. */
export type PayloadKind = 'eip191' | 'eip712' | 'ed25519';

export interface RequestShape {
  readonly operation: Operation;
  readonly payload: PayloadKind;
  /** Items per SignBatch request (1 for Sign and GetImportKey). */
  readonly batchSize: number;
  readonly keyId: string;
}

export const METHOD_PATHS: Record<Operation, string> = {
  sign: '/openkey.v1.SignService/Sign',
  signBatch: '/openkey.v1.SignService/SignBatch',
  signStream: '/openkey.v1.SignService/SignStream',
  getImportKey: '/openkey.v1.KeyService/GetImportKey',
};

/** How each request authenticates: its own Ed25519 stamp, or a service-session HMAC header. */
export type AuthMode = 'stamp' | 'session';

export interface RequestPool {
  readonly path: string;
  /** The header that carries `stamps[i]`: openkey-stamp or openkey-session. */
  readonly authHeader: string;
  /** Distinct request bodies (unframed protobuf). Request i uses body i mod bodies.length. */
  readonly bodies: readonly Buffer[];
  /** One stamp (or session header) per request; empty for unauthenticated methods. */
  readonly stamps: readonly string[];
  /** Requests available: stamps.length, or `size` for unauthenticated methods. */
  readonly size: number;
  /** Milliseconds spent building the pool. */
  readonly buildMs: number;
}

function signRequest(shape: RequestShape, i: number, messages: Uint8Array[], jsons: string[]): SignRequest {
  const k = i % PAYLOAD_POOL;
  switch (shape.payload) {
    case 'eip191':
      return create(SignRequestSchema, { keyId: shape.keyId, payload: { kind: { case: 'personalMessage', value: { message: messages[k] ?? new Uint8Array(1) } } } });
    case 'eip712':
      return create(SignRequestSchema, { keyId: shape.keyId, payload: { kind: { case: 'typedData', value: { json: jsons[k] ?? '' } } } });
    case 'ed25519':
      return create(SignRequestSchema, { keyId: shape.keyId, payload: { kind: { case: 'ed25519Message', value: messages[k] ?? new Uint8Array(1) } } });
  }
}

function encode<D extends DescMessage>(schema: D, message: MessageShape<D>): { body: Buffer; digest: Uint8Array } {
  const body = Buffer.from(toBinary(schema, message));
  return { body, digest: new Uint8Array(createHash('sha256').update(body).digest()) };
}

/** Distinct bodies for `shape` and the SHA-256 of each (what a stamp signs). A SignStream's
 * messages carry Sign requests: their bodies are those of `sign`. */
function buildBodies(shape: RequestShape): { bodies: Buffer[]; digests: Uint8Array[] } {
  if (shape.operation === 'signStream') return buildBodies({ ...shape, operation: 'sign' });
  if (shape.operation === 'getImportKey') {
    const { body, digest } = encode(GetImportKeyRequestSchema, create(GetImportKeyRequestSchema, {}));
    return { bodies: [body], digests: [digest] };
  }
  const messages = personalMessages();
  const jsons = shape.payload === 'eip712' ? mailJsons() : [];
  const bodies: Buffer[] = [];
  const digests: Uint8Array[] = [];
  // Batches: body b carries items b·batchSize … b·batchSize + batchSize − 1 of the payload pool.
  const distinct = shape.operation === 'signBatch' ? Math.max(1, Math.floor(PAYLOAD_POOL / shape.batchSize)) : PAYLOAD_POOL;
  for (let b = 0; b < distinct; b++) {
    const e =
      shape.operation === 'sign'
        ? encode(SignRequestSchema, signRequest(shape, b, messages, jsons))
        : encode(
            SignBatchRequestSchema,
            create(SignBatchRequestSchema, { items: Array.from({ length: shape.batchSize }, (_, j) => signRequest(shape, b * shape.batchSize + j, messages, jsons)) }),
          );
    bodies.push(e.body);
    digests.push(e.digest);
  }
  return { bodies, digests };
}

/**
 * Builds `count` requests of `shape`, each with its own stamp by `credentials` (none for
 * GetImportKey). Stamps carry the build time, so the pool must be used within the appliance's
 * stamp window (60 s by default); build it just before the run.
 */
export function buildRequestPool(shape: RequestShape, credentials: Credentials, count: number, session?: ServiceSession): RequestPool {
  if (shape.operation === 'signStream') throw new Error('SignStream runs take a stream pool (buildStreamPool)');
  const started = performance.now();
  const path = METHOD_PATHS[shape.operation];
  const { bodies, digests } = buildBodies(shape);
  const stamps: string[] = [];
  if (shape.operation !== 'getImportKey' && session !== undefined) {
    // Sequence numbers 1…count in request order; an HMAC each (a few µs).
    for (let i = 0; i < count; i++) stamps.push(session.stampDigest(path, digests[i % digests.length] as Uint8Array, i + 1));
    return { path, authHeader: SESSION_HEADER, bodies, stamps, size: count, buildMs: performance.now() - started };
  }
  if (shape.operation !== 'getImportKey') {
    const nonceBytes = randomBytes(18 * count); // 144-bit nonces, base64url → 24 characters
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const nonce = base64UrlEncode(nonceBytes.subarray(18 * i, 18 * i + 18));
      const digest = digests[i % digests.length] as Uint8Array;
      const signature = credentials.sign(stampSigningInput(path, digest, credentials.principalId, now, nonce));
      stamps.push(formatStamp({ principalId: credentials.principalId, timestampMs: now, nonce, signature }));
    }
  }
  return { path, authHeader: STAMP_HEADER, bodies, stamps, size: count, buildMs: performance.now() - started };
}

/** What a SignStream run sends: the streams' openings and the Sign requests of their messages. */
export interface StreamRequestPool {
  readonly path: string;
  /** openkey-session. */
  readonly authHeader: string;
  /** One session header per stream: a MAC over the method and the empty body, each with a
   * sequence number of its own (opening a stream spends it). */
  readonly openings: readonly string[];
  /** Distinct SignRequest bodies (protobuf); message id i carries requests[i mod requests.length]. */
  readonly requests: readonly Buffer[];
  /** Messages available: ids 1 … messages (0 is not a valid id). */
  readonly messages: number;
  /** Milliseconds spent building the pool. */
  readonly buildMs: number;
}

/** SHA-256 of the empty body: what a SignStream's opening header covers. */
export const EMPTY_BODY_DIGEST = new Uint8Array(createHash('sha256').digest());

/** `streams` openings (the session's next sequence numbers) and the bodies of `messages` Sign
 * requests of `shape`, for a SignStream run. */
export function buildStreamPool(shape: RequestShape, session: ServiceSession, streams: number, messages: number): StreamRequestPool {
  const started = performance.now();
  const path = METHOD_PATHS.signStream;
  const openings = Array.from({ length: streams }, () => session.stampDigest(path, EMPTY_BODY_DIGEST));
  const { bodies } = buildBodies({ ...shape, operation: 'sign' });
  return { path, authHeader: SESSION_HEADER, openings, requests: bodies, messages, buildMs: performance.now() - started };
}

/** gRPC length-prefixed message (gRPC over HTTP/2, "Length-Prefixed-Message"): flag 0, u32 BE length. */
export function grpcFrame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}
