// Connect, gRPC-Web and gRPC (HTTP/2) through @connectrpc/connect-node, on one port: a plaintext
// listener peeks at the first bytes of each connection and hands HTTP/2 (the "PRI *" preface) to
// an h2c server and everything else to an HTTP/1.1 server. Handlers are thin: each calls the
// transport-agnostic ApplianceRpc through invoke(), and SignStream goes to the shared stream
// driver (sign-stream.ts). Bidirectional streaming needs HTTP/2: over HTTP/1.1, connect-node
// answers SignStream with 505 before any handler runs.

import { Code, ConnectError, type ConnectRouter, type HandlerContext } from '@connectrpc/connect';
import { connectNodeAdapter } from '@connectrpc/connect-node';
import { setMaxListeners } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { AttestService } from '../../../proto/gen/openkey/v1/attest_pb.ts';
import { AuditService } from '../../../proto/gen/openkey/v1/audit_pb.ts';
import { DelegationService } from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import { PasskeyService } from '../../../proto/gen/openkey/v1/passkeys_pb.ts';
import { PolicyService } from '../../../proto/gen/openkey/v1/policy_pb.ts';
import { KeyService } from '../../../proto/gen/openkey/v1/keys_pb.ts';
import { PrincipalService } from '../../../proto/gen/openkey/v1/principals_pb.ts';
import { SignService, type SignStreamRequest } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import type { Logger } from '../adapters/logger.ts';
import { SESSION_HEADER } from '../../../proto/protocol/session-stamp.ts';
import { STAMP_HEADER } from '../../../proto/protocol/stamp.ts';
import { METHODS, type ApplianceRpc, type CallMeta } from '../service/rpc.ts';
import { OpenKeyError } from '../core/errors.ts';
import { ERROR_CODE_HEADER, RETRY_AFTER_HEADER, toWireError, type WireError } from './error-map.ts';
import { InFlight, invoke, newMeta, type TransportLimits } from './invoke.ts';
import { serveSignStream } from './sign-stream.ts';
import type { FallbackHandler } from './web-page.ts';

export interface ConnectServerOptions {
  readonly rpc: ApplianceRpc;
  readonly logger: Logger;
  readonly limits: TransportLimits;
  /** Extra routes (e.g. attestation) registered by later layers. */
  readonly extraRoutes?: (router: ConnectRouter, call: CallRunner) => void;
  /** Answers paths that are not RPCs (the web page); default a plain 404. */
  readonly fallback?: FallbackHandler;
}

export type CallRunner = <T>(method: string, ctx: HandlerContext, fn: (meta: CallMeta) => Promise<T>) => Promise<T>;

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

/** The ConnectError a failed call ends with: its RPC code, and the appliance code as metadata. */
function connectErrorOf(error: WireError): ConnectError {
  const headers = new Headers({ [ERROR_CODE_HEADER]: error.code });
  if (error.retryAfterMs !== undefined) headers.set(RETRY_AFTER_HEADER, String(error.retryAfterMs));
  return new ConnectError(error.message, error.status as Code, headers);
}

/**
 * The request messages of a connect-node stream, with its read failures as appliance codes: a
 * message over the size bound, or one that does not decode. (When the client has gone away the
 * driver ignores the failure.)
 */
async function* streamRequests(requests: AsyncIterable<SignStreamRequest>): AsyncGenerator<SignStreamRequest> {
  try {
    yield* requests;
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    throw new OpenKeyError(e.code === Code.ResourceExhausted ? 'PAYLOAD_TOO_LARGE' : 'MALFORMED_REQUEST', e.rawMessage, { cause: e });
  }
}

export function connectRoutes(o: ConnectServerOptions, inFlight?: InFlight, draining: AbortSignal = new AbortController().signal): (router: ConnectRouter) => void {
  const metaOf = (ctx: HandlerContext): CallMeta => newMeta(ctx.requestHeader.get(STAMP_HEADER) ?? undefined, ctx.requestHeader.get(SESSION_HEADER) ?? undefined);
  const call: CallRunner = async (method, ctx, fn) => {
    const meta = metaOf(ctx);
    const out = await invoke(method, meta, o.limits, o.logger, (signal) => fn({ ...meta, signal }), inFlight, ctx.signal);
    if (out.ok) return out.value;
    throw connectErrorOf(out.error);
  };
  const rpc = o.rpc;
  async function* signStream(requests: AsyncIterable<SignStreamRequest>, ctx: HandlerContext) {
    try {
      yield* serveSignStream(metaOf(ctx), streamRequests(requests), {
        open: (meta) => rpc.openSignStream(meta),
        limits: o.limits,
        logger: o.logger,
        inFlight,
        gone: ctx.signal,
        draining,
      });
    } catch (e) {
      throw connectErrorOf(toWireError(e));
    }
  }
  return (router) => {
    router.service(KeyService, {
      sealKey: (req, ctx) => call(METHODS.sealKey, ctx, (m) => rpc.sealKey(req, m)),
      getKey: (req, ctx) => call(METHODS.getKey, ctx, (m) => rpc.getKey(req, m)),
      listKeys: (req, ctx) => call(METHODS.listKeys, ctx, (m) => rpc.listKeys(req, m)),
      getImportKey: (req, ctx) => call(METHODS.getImportKey, ctx, (m) => rpc.getImportKey(req, m)),
    });
    router.service(SignService, {
      sign: (req, ctx) => call(METHODS.sign, ctx, (m) => rpc.sign(req, m)),
      signBatch: (req, ctx) => call(METHODS.signBatch, ctx, (m) => rpc.signBatch(req, m)),
      signStream,
    });
    router.service(PrincipalService, {
      createPrincipal: (req, ctx) => call(METHODS.createPrincipal, ctx, (m) => rpc.createPrincipal(req, m)),
      whoAmI: (req, ctx) => call(METHODS.whoAmI, ctx, (m) => rpc.whoAmI(req, m)),
      openSession: (req, ctx) => call(METHODS.openSession, ctx, (m) => rpc.openSession(req, m)),
      closeSession: (req, ctx) => call(METHODS.closeSession, ctx, (m) => rpc.closeSession(req, m)),
    });
    router.service(AttestService, {
      attest: (req, ctx) => call(METHODS.attest, ctx, (m) => rpc.attest(req, m)),
    });
    router.service(PasskeyService, {
      beginRegistration: (req, ctx) => call(METHODS.beginRegistration, ctx, (m) => rpc.beginRegistration(req, m)),
      finishRegistration: (req, ctx) => call(METHODS.finishRegistration, ctx, (m) => rpc.finishRegistration(req, m)),
      beginLogin: (req, ctx) => call(METHODS.beginLogin, ctx, (m) => rpc.beginLogin(req, m)),
      finishLogin: (req, ctx) => call(METHODS.finishLogin, ctx, (m) => rpc.finishLogin(req, m)),
      logout: (req, ctx) => call(METHODS.logout, ctx, (m) => rpc.logout(req, m)),
      listPasskeys: (req, ctx) => call(METHODS.listPasskeys, ctx, (m) => rpc.listPasskeys(req, m)),
    });
    router.service(PolicyService, {
      getPolicy: (req, ctx) => call(METHODS.getPolicy, ctx, (m) => rpc.getPolicy(req, m)),
      grant: (req, ctx) => call(METHODS.grant, ctx, (m) => rpc.grant(req, m)),
      revoke: (req, ctx) => call(METHODS.revoke, ctx, (m) => rpc.revoke(req, m)),
      setOwnerRule: (req, ctx) => call(METHODS.setOwnerRule, ctx, (m) => rpc.setOwnerRule(req, m)),
    });
    router.service(AuditService, {
      getAuditHead: (req, ctx) => call(METHODS.getAuditHead, ctx, (m) => rpc.getAuditHead(req, m)),
      exportAudit: (req, ctx) => call(METHODS.exportAudit, ctx, (m) => rpc.exportAudit(req, m)),
    });
    router.service(DelegationService, {
      createGrant: (req, ctx) => call(METHODS.createGrant, ctx, (m) => rpc.createGrant(req, m)),
      revokeGrant: (req, ctx) => call(METHODS.revokeGrant, ctx, (m) => rpc.revokeGrant(req, m)),
      listGrants: (req, ctx) => call(METHODS.listGrants, ctx, (m) => rpc.listGrants(req, m)),
      getDelegationNonce: (req, ctx) => call(METHODS.getDelegationNonce, ctx, (m) => rpc.getDelegationNonce(req, m)),
      delegate: (req, ctx) => call(METHODS.delegate, ctx, (m) => rpc.delegate(req, m)),
      listDelegations: (req, ctx) => call(METHODS.listDelegations, ctx, (m) => rpc.listDelegations(req, m)),
    });
    o.extraRoutes?.(router, call);
  };
}

/** Starts the Connect listener on `host:port` (port 0 picks a free one). */
export async function startConnectServer(o: ConnectServerOptions, host: string, port: number): Promise<RunningServer> {
  const shutdown = new AbortController();
  // connect-node links every call's context (long-lived SignStreams included) to this signal: many
  // listeners are the normal case here, not a leak, so Node's warning at 11 is switched off.
  setMaxListeners(0, shutdown.signal);
  const draining = new AbortController();
  const inFlight = new InFlight();
  const handler = connectNodeAdapter({
    routes: connectRoutes(o, inFlight, draining.signal),
    readMaxBytes: o.limits.maxRequestBytes,
    writeMaxBytes: o.limits.maxResponseBytes,
    maxTimeoutMs: o.limits.callTimeoutMs,
    shutdownSignal: shutdown.signal,
    ...(o.fallback === undefined ? {} : { fallback: o.fallback }),
  });
  const h1 = http.createServer({ requestTimeout: o.limits.callTimeoutMs * 2, headersTimeout: Math.min(10_000, o.limits.callTimeoutMs * 2) }, handler);
  const h2 = http2.createServer({ maxSessionMemory: 32 }, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const listener = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('error', () => socket.destroy());
    // HTTP/2 prior knowledge starts with "PRI * HTTP/2.0"; anything else is HTTP/1.x.
    socket.once('readable', () => {
      const head: Buffer | null = socket.read(3) ?? socket.read();
      if (head === null) return;
      socket.unshift(head);
      (head.toString('latin1') === 'PRI' ? h2 : h1).emit('connection', socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(port, host, () => resolve());
  });
  const address = listener.address();
  if (address === null || typeof address === 'string') throw new Error('listener has no TCP address');
  return {
    port: address.port,
    close: async () => {
      // Stop accepting, tell HTTP/2 clients to go away (GOAWAY lets open streams finish), close
      // idle HTTP/1.1 connections, let in-flight calls drain (SignStreams read no more, answer
      // what is in progress and end), then cut whatever is left.
      const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
      const deadline = Date.now() + o.limits.callTimeoutMs;
      draining.abort();
      const sessionsClosed = Promise.all([...sessions].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve()))));
      for (const s of sessions) s.close();
      h1.closeIdleConnections();
      await inFlight.idle(o.limits.callTimeoutMs);
      // A call counts as done when its handler returns; a stream's last frames (a SignStream's
      // status) are still being written then. A GOAWAY'd session closes once its streams have.
      await Promise.race([sessionsClosed, new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())]);
      shutdown.abort();
      for (const s of sockets) s.destroy();
      h1.close();
      h2.close();
      await closed;
    },
  };
}
