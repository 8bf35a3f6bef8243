// The page's connection to the appliance: typed Connect clients over the browser's fetch, in binary
// protobuf (stamps and approvals sign SHA-256 of the binary encoding), a session key that is a
// non-extractable WebCrypto P-256 key held only in memory, the request stamp of every call a session
// makes (proto/protocol/stamp.ts, as clients/src/stamper.ts), and passkey approvals of one exact
// request (proto/protocol/approval.ts).

import { create, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { Code, ConnectError, createClient, type Client, type Interceptor } from '@connectrpc/connect';
import type { UniversalClientFn } from '@connectrpc/connect/protocol';
import { createTransport } from '@connectrpc/connect/protocol-connect';
import { sha256 } from '@noble/hashes/sha2';
import { AuditService } from '../../proto/gen/openkey/v1/audit_pb.ts';
import { PasskeyApprovalSchema, type PasskeyApproval } from '../../proto/gen/openkey/v1/common_pb.ts';
import { KeyService } from '../../proto/gen/openkey/v1/keys_pb.ts';
import { PasskeyService } from '../../proto/gen/openkey/v1/passkeys_pb.ts';
import { PolicyService } from '../../proto/gen/openkey/v1/policy_pb.ts';
import { PrincipalService } from '../../proto/gen/openkey/v1/principals_pb.ts';
import { SignService } from '../../proto/gen/openkey/v1/signing_pb.ts';
import { approvalChallenge } from '../../proto/protocol/approval.ts';
import { base64UrlEncode, formatStamp, STAMP_HEADER, stampSigningInput } from '../../proto/protocol/stamp.ts';
import { getAssertion, PageError } from './webauthn.ts';

/** The header (or trailer) carrying the appliance's stable error code. */
export const ERROR_CODE_HEADER = 'openkey-error-code';
const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
const MAX_REQUEST_BYTES = 1024 * 1024;

export interface Clients {
  readonly keys: Client<typeof KeyService>;
  readonly signing: Client<typeof SignService>;
  readonly principals: Client<typeof PrincipalService>;
  readonly passkeys: Client<typeof PasskeyService>;
  readonly policy: Client<typeof PolicyService>;
  readonly audit: Client<typeof AuditService>;
}

/** A signed-in session: its principal id (used in stamps), its person, and its key pair. */
export interface Session {
  readonly id: string;
  readonly personId: string;
  readonly expiresAtMs: number;
  readonly keys: SessionKeys;
}

/** A WebCrypto ECDSA P-256 key pair whose private key cannot be exported. */
export type SessionKeys = Awaited<ReturnType<typeof generateSessionKeys>>;

function generateSessionKeys() {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}

/**
 * A unary-only HTTP client over fetch. Request bodies are sent whole: browsers stream request bodies
 * only with `duplex: "half"` over HTTP/2, and unary Connect calls never need it.
 */
const fetchClient: UniversalClientFn = async (req) => {
  let body: Uint8Array<ArrayBuffer> | undefined;
  if (req.body !== undefined) {
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const p of req.body) {
      parts.push(p);
      size += p.length;
    }
    body = new Uint8Array(size);
    let o = 0;
    for (const p of parts) {
      body.set(p, o);
      o += p.length;
    }
  }
  const res = await fetch(req.url, {
    method: req.method,
    headers: req.header,
    credentials: 'omit',
    redirect: 'error',
    ...(body === undefined ? {} : { body }),
    ...(req.signal === undefined ? {} : { signal: req.signal }),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  // fetch has already undone any Content-Encoding the browser negotiated (it sends Accept-Encoding
  // itself): the body is identity-encoded, so neither the encoding nor the encoded length may make
  // Connect decode or size-check it again.
  const header = new Headers(res.headers);
  header.delete('content-encoding');
  header.delete('content-length');
  return {
    status: res.status,
    header,
    body: (async function* () {
      yield bytes;
    })(),
    trailer: new Headers(),
  };
};

/** Typed clients for the appliance at `baseUrl`; with `stamp`, every call carries its stamp. */
export function createClients(baseUrl: string, stamp?: (method: string, body: Uint8Array) => Promise<string>): Clients {
  const interceptors: Interceptor[] = [];
  if (stamp !== undefined) {
    interceptors.push((next) => async (req) => {
      if (!req.stream) {
        const method = `/${req.service.typeName}/${req.method.name}`;
        req.header.set(STAMP_HEADER, await stamp(method, toBinary(req.method.input, req.message)));
      }
      return next(req);
    });
  }
  const transport = createTransport({
    httpClient: fetchClient,
    baseUrl,
    useBinaryFormat: true,
    interceptors,
    acceptCompression: [],
    sendCompression: null,
    compressMinBytes: Number.MAX_SAFE_INTEGER,
    readMaxBytes: MAX_RESPONSE_BYTES,
    writeMaxBytes: MAX_REQUEST_BYTES,
  });
  return {
    keys: createClient(KeyService, transport),
    signing: createClient(SignService, transport),
    principals: createClient(PrincipalService, transport),
    passkeys: createClient(PasskeyService, transport),
    policy: createClient(PolicyService, transport),
    audit: createClient(AuditService, transport),
  };
}

/** A fresh session key pair: the private key cannot be exported; the public key as 65-byte SEC1. */
export async function newSessionKey(): Promise<{ keys: SessionKeys; publicKey: Uint8Array }> {
  const keys = await generateSessionKeys();
  const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', keys.publicKey));
  return { keys, publicKey };
}

/**
 * The `openkey-stamp` value for one call by `session`. WebCrypto ECDSA signatures are already the
 * 64-byte r‖s (IEEE P1363) the appliance expects for P-256, over SHA-256 of the signing input.
 */
export async function stampFor(session: Session, method: string, body: Uint8Array): Promise<string> {
  const timestampMs = Date.now();
  const nonce = base64UrlEncode(crypto.getRandomValues(new Uint8Array(18)));
  const input = stampSigningInput(method, sha256(body), session.id, timestampMs, nonce);
  const signature = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, session.keys.privateKey, new Uint8Array(input)));
  return formatStamp({ principalId: session.id, timestampMs, nonce, signature });
}

/**
 * A passkey approval of `method` with `unapproved` (its `approval` field must be unset): the
 * challenge binds the method, SHA-256 of the request's binary encoding and the approval time.
 */
export async function approve<D extends DescMessage>(method: string, schema: D, unapproved: MessageShape<D>, rpId: string): Promise<PasskeyApproval> {
  const issuedAtMs = Date.now();
  const challenge = approvalChallenge(method, sha256(toBinary(schema, unapproved)), issuedAtMs);
  const assertionJson = await getAssertion({ challenge: new Uint8Array(challenge), rpId, userVerification: 'required', allowCredentials: [], timeout: 300_000 });
  return create(PasskeyApprovalSchema, { issuedAtMs: BigInt(issuedAtMs), assertionJson });
}

/** The appliance's error code of a failed call (e.g. "APPROVAL_REQUIRED"), or the page's own. */
export function errorCode(e: unknown): string | undefined {
  e = unwrap(e);
  if (e instanceof PageError) return e.code;
  if (e instanceof ConnectError) return e.metadata.get(ERROR_CODE_HEADER) ?? undefined;
  return undefined;
}

/** One line for a person: the stable code first, then what it means. */
export function describeError(e: unknown): string {
  e = unwrap(e);
  if (e instanceof PageError) return `${e.code}: ${e.message}`;
  if (e instanceof ConnectError) {
    const code = errorCode(e);
    const status = Code[e.code];
    if (code === undefined) return `${status}: ${e.rawMessage || 'no answer'} (no OpenKey error code)`;
    const hint = HINTS[code];
    return `${code} (${status})${hint === undefined ? '' : ` — ${hint}`}`;
  }
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** Connect wraps what an interceptor throws (our own PageError) in a ConnectError; undo that. */
function unwrap(e: unknown): unknown {
  return e instanceof ConnectError && e.cause instanceof PageError ? e.cause : e;
}

const HINTS: Readonly<Record<string, string>> = {
  APPROVAL_REQUIRED: "the key's policy needs your passkey approval of this request: tick “Approve with my passkey”",
  APPROVAL_INVALID: 'the passkey approval does not match this request, was used already, is older than five minutes, or is not from the key owner',
  SESSION_EXPIRED: 'your session has ended: sign in again',
  UNAUTHENTICATED: 'sign in first',
  STAMP_EXPIRED: "this computer's clock differs from the appliance's by more than the allowed window",
  KEY_NOT_FOUND: 'no such key, or it is not yours',
  PERMISSION_DENIED: "the key's policy does not allow this",
  WEBAUTHN_ORIGIN_MISMATCH: "this page's address is not an origin the appliance accepts for passkeys",
  WEBAUTHN_CHALLENGE_INVALID: 'the passkey ceremony expired or was already used: try again',
  PRINCIPAL_EXISTS: 'already registered',
  CAP_EXCEEDED: "the grant's cap for this period is used up",
  RATE_LIMITED: "the grant's rate limit was hit: wait a moment",
};
