// Client side of service sessions (proto/protocol/session-stamp.ts): open a session once with the
// service's own key, then authenticate each call with an HMAC and a fresh sequence number instead
// of a public-key stamp. The session secret arrives HPKE-sealed to a one-time X25519 key generated
// here, and is opened with a standard HPKE library (@hpke/core), so it never crosses the wire in
// the clear. Use a client that checks receipts (attested.ts) to open the session, so a tampered
// response is refused before its secret is used.

import { Aes256Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { Client, Interceptor } from '@connectrpc/connect';
import { hmac } from '@noble/hashes/hmac';
import { sha256 } from '@noble/hashes/sha2';
import type { PrincipalService } from '../../proto/gen/openkey/v1/principals_pb.ts';
import {
  formatSessionStamp,
  isSessionId,
  SESSION_HEADER,
  SESSION_SECRET_BYTES,
  SESSION_SECRET_INFO,
  sessionStampInput,
} from '../../proto/protocol/session-stamp.ts';
import { base64UrlEncode } from '../../proto/protocol/stamp.ts';
import { requestDigest } from './stamper.ts';

const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });
const buf = (b: Uint8Array): ArrayBuffer => b.slice().buffer;

export class ServiceSession {
  #seq = 0;
  readonly #secret: Uint8Array;

  constructor(
    readonly sessionId: string,
    secret: Uint8Array,
    readonly expiresAt: number,
  ) {
    if (!isSessionId(sessionId)) throw new Error('not a session id');
    if (secret.length !== SESSION_SECRET_BYTES) throw new Error('a session secret is 32 bytes');
    this.#secret = Uint8Array.from(secret);
  }

  /** The next sequence number (never reused by this object). */
  nextSeq(): number {
    return ++this.#seq;
  }

  /** The `openkey-session` header for one call with sequence number `seq` (default: the next). */
  stampDigest(methodPath: string, bodyDigest: Uint8Array, seq: number = this.nextSeq()): string {
    const mac = hmac(sha256, this.#secret, sessionStampInput(methodPath, bodyDigest, this.sessionId, seq));
    return formatSessionStamp({ sessionId: this.sessionId, seq, mac: base64UrlEncode(mac) });
  }

  stamp<D extends DescMessage>(methodPath: string, schema: D, message: MessageShape<D>): string {
    return this.stampDigest(methodPath, requestDigest(schema, message));
  }

  /** Forgets the secret (zeroized); later stamps are refused by the appliance anyway. */
  close(): void {
    this.#secret.fill(0);
  }
}

/**
 * Opens a service session through `principals` (a client stamped with the service's own key).
 * `ttlSeconds` 0 = the appliance default.
 */
export async function openServiceSession(principals: Client<typeof PrincipalService>, ttlSeconds = 0): Promise<ServiceSession> {
  const pair = await suite.kem.generateKeyPair();
  const publicKey = new Uint8Array(await suite.kem.serializePublicKey(pair.publicKey));
  const res = await principals.openSession({ recipientPublicKey: publicKey, ttlSeconds });
  const secret = new Uint8Array(
    await suite.open(
      { recipientKey: pair, enc: buf(res.enc), info: buf(new TextEncoder().encode(SESSION_SECRET_INFO)) },
      buf(res.sealedSecret),
      buf(new TextEncoder().encode(res.sessionId)),
    ),
  );
  try {
    return new ServiceSession(res.sessionId, secret, Number(res.expiresAtMs));
  } finally {
    secret.fill(0);
  }
}

/**
 * Ends `session` at the appliance (PrincipalService.CloseSession) and then forgets its secret here,
 * whatever the answer. `principals` is a client stamped with the service's own key, or one
 * authenticated by a session of the same service (this one included). Resolves with whether the
 * session was still live; a session that had already ended is not an error.
 */
export async function closeServiceSession(principals: Client<typeof PrincipalService>, session: ServiceSession): Promise<boolean> {
  try {
    return (await principals.closeSession({ sessionId: session.sessionId })).wasLive;
  } finally {
    session.close();
  }
}

/** Authenticates every unary call through a Connect transport with `session`. */
export function sessionInterceptor(session: ServiceSession): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) req.header.set(SESSION_HEADER, session.stamp(`/${req.service.typeName}/${req.method.name}`, req.method.input, req.message));
    return next(req);
  };
}

export { SESSION_HEADER };
