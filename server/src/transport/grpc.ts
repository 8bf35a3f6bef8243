// Plain gRPC for service-to-service callers through @grpc/grpc-js, which costs several times less
// server CPU per call than connect-node's gRPC path on Node 20 (shared/reference/perf-baselines.md
// §5b). Messages are (de)serialized with the same generated protobuf-es schemas the Connect side
// uses; unary handlers call the same ApplianceRpc through invoke(), and SignStream is served by
// the shared stream driver (sign-stream.ts).

import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { AttestService } from '../../../proto/gen/openkey/v1/attest_pb.ts';
import { AuditService } from '../../../proto/gen/openkey/v1/audit_pb.ts';
import { DelegationService } from '../../../proto/gen/openkey/v1/delegation_pb.ts';
import { PasskeyService } from '../../../proto/gen/openkey/v1/passkeys_pb.ts';
import { PolicyService } from '../../../proto/gen/openkey/v1/policy_pb.ts';
import { KeyService } from '../../../proto/gen/openkey/v1/keys_pb.ts';
import { PrincipalService } from '../../../proto/gen/openkey/v1/principals_pb.ts';
import { SignService, type SignStreamRequest, type SignStreamResponse } from '../../../proto/gen/openkey/v1/signing_pb.ts';
import { SESSION_HEADER } from '../../../proto/protocol/session-stamp.ts';
import { STAMP_HEADER } from '../../../proto/protocol/stamp.ts';
import type { Logger } from '../adapters/logger.ts';
import { OpenKeyError } from '../core/errors.ts';
import { responseBytes } from '../service/encoded.ts';
import { decodeRequest } from '../service/canonical.ts';
import type { ApplianceRpc, CallMeta } from '../service/rpc.ts';
import type { RunningServer } from './connect.ts';
import { ERROR_CODE_HEADER, RETRY_AFTER_HEADER, toWireError, type WireError } from './error-map.ts';
import { invoke, newMeta, type CancelHook, type TransportLimits } from './invoke.ts';
import { serveSignStream } from './sign-stream.ts';

export interface GrpcServerOptions {
  readonly rpc: ApplianceRpc;
  readonly logger: Logger;
  readonly limits: TransportLimits;
}

// Each entry receives the request message decoded by definitionFor() for the same method.
type Impl = Record<string, (req: never, meta: CallMeta) => Promise<unknown>>;

/**
 * grpc-js answers INTERNAL when a deserializer throws; a request that is not valid protobuf is the
 * caller's fault, so the deserializer returns this marker and the handler answers MALFORMED_REQUEST.
 */
const MALFORMED: unique symbol = Symbol('malformed request');

/** A grpc-js service definition for a generated protobuf-es service descriptor. */
function definitionFor(service: DescService): grpc.ServiceDefinition {
  // The request side may carry the MALFORMED marker instead of a message.
  const def: Record<string, grpc.MethodDefinition<MessageShape<DescMessage> | typeof MALFORMED, MessageShape<DescMessage>>> = {};
  for (const m of service.methods) {
    if (m.methodKind !== 'unary' && m.methodKind !== 'bidi_streaming') continue;
    const streaming = m.methodKind === 'bidi_streaming';
    const input: DescMessage = m.input;
    const output: DescMessage = m.output;
    def[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: streaming,
      responseStream: streaming,
      requestSerialize: (v: MessageShape<DescMessage> | typeof MALFORMED) => Buffer.from(v === MALFORMED ? new Uint8Array(0) : toBinary(input, v)),
      requestDeserialize: (b: Buffer): MessageShape<DescMessage> | typeof MALFORMED => {
        try {
          return decodeRequest(input, b);
        } catch {
          return MALFORMED;
        }
      },
      responseSerialize: (v: MessageShape<DescMessage>) => asBuffer(responseBytes(output, v)),
      responseDeserialize: (b: Buffer) => fromBinary(output, b),
    };
  }
  return def;
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** What the appliance reads from a call's metadata. */
function metaOf(metadata: grpc.Metadata): CallMeta {
  const stamp = metadata.get(STAMP_HEADER)[0];
  const session = metadata.get(SESSION_HEADER)[0];
  return newMeta(typeof stamp === 'string' ? stamp : undefined, typeof session === 'string' ? session : undefined);
}

/** The status a failed call ends with: its RPC code, and the appliance code in the trailers. */
function statusOf(error: WireError): grpc.StatusObject {
  const md = new grpc.Metadata();
  md.set(ERROR_CODE_HEADER, error.code);
  if (error.retryAfterMs !== undefined) md.set(RETRY_AFTER_HEADER, String(error.retryAfterMs));
  return { code: error.status, details: error.message, metadata: md };
}

export function grpcImplementation(
  service: DescService,
  impl: Impl,
  o: GrpcServerOptions,
): grpc.UntypedServiceImplementation {
  const out: grpc.UntypedServiceImplementation = {};
  for (const m of service.methods) {
    const fn = impl[m.localName];
    if (fn === undefined) continue;
    const path = `/${service.typeName}/${m.name}`;
    const handler: grpc.handleUnaryCall<unknown, unknown> = (call, callback) => {
      const meta = metaOf(call.metadata);
      const request = call.request;
      const run = (signal: AbortSignal) =>
        request === MALFORMED ? Promise.reject(new OpenKeyError('MALFORMED_REQUEST', 'not a valid protobuf message')) : fn(request as never, { ...meta, signal });
      // The client going away (cancel, reset stream, deadline) aborts work still queued for it.
      // grpc-js reports 'cancelled' when any call's stream closes, so the hook is removed first.
      const gone: CancelHook = (cancel) => {
        call.once('cancelled', cancel);
        return () => call.removeListener('cancelled', cancel);
      };
      void invoke(path, meta, o.limits, o.logger, run, undefined, gone).then((res) => {
        if (res.ok) {
          callback(null, res.value);
          return;
        }
        callback(statusOf(res.error), null);
      });
    };
    out[m.localName] = handler;
  }
  return out;
}

/** The request messages of a grpc-js stream; a message that did not decode ends the stream. */
async function* streamRequests(call: grpc.ServerDuplexStream<SignStreamRequest | typeof MALFORMED, SignStreamResponse>): AsyncGenerator<SignStreamRequest> {
  // Leaving the loop must not destroy the call: its write side still has answers and a status to send.
  for await (const m of call.iterator({ destroyOnReturn: false }) as AsyncIterable<SignStreamRequest | typeof MALFORMED>) {
    if (m === MALFORMED) throw new OpenKeyError('MALFORMED_REQUEST', 'not a valid protobuf message');
    yield m;
  }
}

/** SignService.SignStream over grpc-js: the shared driver's answers, written with back-pressure. */
function signStreamHandler(o: GrpcServerOptions, draining: AbortSignal): grpc.handleBidiStreamingCall<SignStreamRequest | typeof MALFORMED, SignStreamResponse> {
  return (call) => {
    const gone = new AbortController();
    call.once('cancelled', () => gone.abort());
    const answers = serveSignStream(metaOf(call.metadata), streamRequests(call), {
      open: (meta) => o.rpc.openSignStream(meta),
      limits: o.limits,
      logger: o.logger,
      gone: gone.signal,
      draining,
    });
    void (async () => {
      try {
        for await (const a of answers) {
          // A client that does not read its answers holds up the driver (and with it, reading).
          if (!call.write(a)) await once(call, 'drain', { signal: gone.signal }).catch(() => undefined); // aborted: the loop sees CANCELLED next
        }
        call.end();
      } catch (e) {
        // A client that went away hears nothing; anyone else gets the code the stream ended with.
        if (!gone.signal.aborted) call.emit('error', statusOf(toWireError(e)));
      }
    })();
  };
}

export async function startGrpcServer(o: GrpcServerOptions, host: string, port: number): Promise<RunningServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.limits.maxRequestBytes,
    'grpc.max_send_message_length': o.limits.maxResponseBytes,
    'grpc.max_concurrent_streams': 256,
    'grpc.keepalive_time_ms': 60_000,
    // Channelz (grpc-js's introspection service, which the appliance does not expose) counts every
    // call and message through a heavier per-stream handler; off, calls take grpc-js's plain path.
    'grpc.enable_channelz': 0,
  });
  const rpc = o.rpc;
  server.addService(
    definitionFor(KeyService),
    grpcImplementation(KeyService, {
      sealKey: (r, m) => rpc.sealKey(r, m),
      getKey: (r, m) => rpc.getKey(r, m),
      listKeys: (r, m) => rpc.listKeys(r, m),
      getImportKey: (r, m) => rpc.getImportKey(r, m),
    }, o),
  );
  // Open SignStreams stop reading, answer what is in progress and end when the server shuts down.
  const draining = new AbortController();
  server.addService(definitionFor(SignService), {
    ...grpcImplementation(SignService, { sign: (r, m) => rpc.sign(r, m), signBatch: (r, m) => rpc.signBatch(r, m) }, o),
    signStream: signStreamHandler(o, draining.signal),
  });
  server.addService(
    definitionFor(PrincipalService),
    grpcImplementation(PrincipalService, {
      createPrincipal: (r, m) => rpc.createPrincipal(r, m),
      whoAmI: (r, m) => rpc.whoAmI(r, m),
      openSession: (r, m) => rpc.openSession(r, m),
      closeSession: (r, m) => rpc.closeSession(r, m),
    }, o),
  );
  server.addService(definitionFor(AttestService), grpcImplementation(AttestService, { attest: (r, m) => rpc.attest(r, m) }, o));
  server.addService(
    definitionFor(PasskeyService),
    grpcImplementation(PasskeyService, {
      beginRegistration: (r, m) => rpc.beginRegistration(r, m),
      finishRegistration: (r, m) => rpc.finishRegistration(r, m),
      beginLogin: (r, m) => rpc.beginLogin(r, m),
      finishLogin: (r, m) => rpc.finishLogin(r, m),
      logout: (r, m) => rpc.logout(r, m),
      listPasskeys: (r, m) => rpc.listPasskeys(r, m),
    }, o),
  );
  server.addService(
    definitionFor(PolicyService),
    grpcImplementation(PolicyService, {
      getPolicy: (r, m) => rpc.getPolicy(r, m),
      grant: (r, m) => rpc.grant(r, m),
      revoke: (r, m) => rpc.revoke(r, m),
      setOwnerRule: (r, m) => rpc.setOwnerRule(r, m),
    }, o),
  );
  server.addService(
    definitionFor(DelegationService),
    grpcImplementation(DelegationService, {
      createGrant: (r, m) => rpc.createGrant(r, m),
      revokeGrant: (r, m) => rpc.revokeGrant(r, m),
      listGrants: (r, m) => rpc.listGrants(r, m),
      getDelegationNonce: (r, m) => rpc.getDelegationNonce(r, m),
      delegate: (r, m) => rpc.delegate(r, m),
      listDelegations: (r, m) => rpc.listDelegations(r, m),
    }, o),
  );
  server.addService(
    definitionFor(AuditService),
    grpcImplementation(AuditService, { getAuditHead: (r, m) => rpc.getAuditHead(r, m), exportAudit: (r, m) => rpc.exportAudit(r, m) }, o),
  );
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        draining.abort();
        // Drain in-flight calls; force after the call timeout.
        const force = setTimeout(() => server.forceShutdown(), o.limits.callTimeoutMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
