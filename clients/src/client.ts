// The TypeScript client for an OpenKey appliance: typed clients for every service over Connect,
// gRPC-Web or gRPC (HTTP/2), with every unary call stamped by the caller's principal key.

import { createClient, ConnectError, type Client, type Interceptor, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from '@connectrpc/connect-node';
import { AuditService } from '../../proto/gen/openkey/v1/audit_pb.ts';
import { DelegationService } from '../../proto/gen/openkey/v1/delegation_pb.ts';
import { KeyService } from '../../proto/gen/openkey/v1/keys_pb.ts';
import { PasskeyService } from '../../proto/gen/openkey/v1/passkeys_pb.ts';
import { PolicyService } from '../../proto/gen/openkey/v1/policy_pb.ts';
import { PrincipalService } from '../../proto/gen/openkey/v1/principals_pb.ts';
import { SignService } from '../../proto/gen/openkey/v1/signing_pb.ts';
import type { Credentials } from './credentials.ts';
import { sessionInterceptor, type ServiceSession } from './service-session.ts';
import { stampingInterceptor } from './stamper.ts';

export type WireProtocol = 'connect' | 'grpc-web' | 'grpc';

export interface OpenKeyClientOptions {
  /** e.g. http://127.0.0.1:8080 (Connect port) or http://127.0.0.1:8081 (gRPC port, protocol "grpc"). */
  readonly baseUrl: string;
  /** Stamps every call; omit only for unauthenticated calls such as GetImportKey. */
  readonly credentials?: Credentials;
  /** Authenticates every call with this service session instead (service-session.ts). */
  readonly serviceSession?: ServiceSession;
  /** Default "connect". "grpc" always uses HTTP/2. */
  readonly protocol?: WireProtocol;
  /** HTTP version for connect and grpc-web; default "1.1". */
  readonly httpVersion?: '1.1' | '2';
  /** Binary protobuf (default) or JSON, for connect and grpc-web. */
  readonly useBinaryFormat?: boolean;
  readonly interceptors?: readonly Interceptor[];
}

export interface OpenKeyClient {
  readonly transport: Transport;
  readonly keys: Client<typeof KeyService>;
  readonly signing: Client<typeof SignService>;
  readonly principals: Client<typeof PrincipalService>;
  readonly passkeys: Client<typeof PasskeyService>;
  readonly policy: Client<typeof PolicyService>;
  readonly audit: Client<typeof AuditService>;
  readonly delegations: Client<typeof DelegationService>;
}

export function createTransport(o: OpenKeyClientOptions): Transport {
  const auth = o.serviceSession ? [sessionInterceptor(o.serviceSession)] : o.credentials ? [stampingInterceptor(o.credentials)] : [];
  const interceptors = [...(o.interceptors ?? []), ...auth];
  const protocol = o.protocol ?? 'connect';
  if (protocol === 'grpc') return createGrpcTransport({ baseUrl: o.baseUrl, interceptors });
  const common = { baseUrl: o.baseUrl, httpVersion: o.httpVersion ?? '1.1', useBinaryFormat: o.useBinaryFormat ?? true, interceptors } as const;
  return protocol === 'grpc-web' ? createGrpcWebTransport(common) : createConnectTransport(common);
}

export function createOpenKeyClient(o: OpenKeyClientOptions): OpenKeyClient {
  const transport = createTransport(o);
  return {
    transport,
    keys: createClient(KeyService, transport),
    signing: createClient(SignService, transport),
    principals: createClient(PrincipalService, transport),
    passkeys: createClient(PasskeyService, transport),
    policy: createClient(PolicyService, transport),
    audit: createClient(AuditService, transport),
    delegations: createClient(DelegationService, transport),
  };
}

/** The appliance's error code (e.g. "KEY_NOT_FOUND") carried by a failed call, if any. */
export function openKeyErrorCode(e: unknown): string | undefined {
  if (!(e instanceof ConnectError)) return undefined;
  return e.metadata.get('openkey-error-code') ?? undefined;
}
