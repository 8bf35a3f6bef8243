// Stamps a request for the appliance (proto/protocol/stamp.ts): the SHA-256 of the message's
// deterministic protobuf encoding, the method path, the principal id, the time and a fresh random
// nonce, signed with the principal's key. Also a Connect interceptor that stamps every unary call.

import { toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { Interceptor } from '@connectrpc/connect';
import { sha256 } from '@noble/hashes/sha2';
import { base64UrlEncode, formatStamp, STAMP_HEADER, stampSigningInput } from '../../proto/protocol/stamp.ts';
import type { Credentials } from './credentials.ts';

export interface StampOptions {
  /** Milliseconds since the epoch; default Date.now(). */
  readonly now?: () => number;
}

export function requestDigest<D extends DescMessage>(schema: D, message: MessageShape<D>): Uint8Array {
  return sha256(toBinary(schema, message));
}

/** The `openkey-stamp` header value for one call. */
export function stampFor<D extends DescMessage>(
  credentials: Credentials,
  methodPath: string,
  schema: D,
  message: MessageShape<D>,
  options: StampOptions = {},
): string {
  const timestampMs = (options.now ?? Date.now)();
  const nonce = base64UrlEncode(crypto.getRandomValues(new Uint8Array(18)));
  const digest = requestDigest(schema, message);
  const signature = credentials.sign(stampSigningInput(methodPath, digest, credentials.principalId, timestampMs, nonce));
  return formatStamp({ principalId: credentials.principalId, timestampMs, nonce, signature });
}

/** Stamps every unary request made through a Connect transport. */
export function stampingInterceptor(credentials: Credentials, options: StampOptions = {}): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      const path = `/${req.service.typeName}/${req.method.name}`;
      req.header.set(STAMP_HEADER, stampFor(credentials, path, req.method.input, req.message, options));
    }
    return next(req);
  };
}

export { STAMP_HEADER };
