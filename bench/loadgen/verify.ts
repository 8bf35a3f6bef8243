// Checks one response of a load run before the run starts (the "pre-flight" call): it decodes,
// its signatures recover (secp256k1) or verify (Ed25519) under the benchmark key over the digest
// the request implies, and it carries a receipt. A benchmark of wrong answers would be worthless.
// SignStream answers are checked the same way, and more closely: the answer must carry the id of
// the message it answers, and its receipt must name SignStream and that message's own SignRequest.

import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { createHash } from 'node:crypto';
import { GetImportKeyResponseSchema } from '../../proto/gen/openkey/v1/keys_pb.ts';
import {
  SignBatchRequestSchema,
  SignBatchResponseSchema,
  SignRequestSchema,
  SignResponseSchema,
  SignStreamRequestSchema,
  SignStreamResponseSchema,
  type SignRequest,
  type SignResponse,
} from '../../proto/gen/openkey/v1/signing_pb.ts';
import { ed25519Verify } from '../../server/src/core/crypto/ed25519.ts';
import { hashPersonalMessage } from '../../server/src/core/crypto/eip191.ts';
import { loadSecp256k1 } from '../../server/src/core/crypto/secp256k1.ts';
import { METHOD_PATHS } from '../requests.ts';
import type { RunSpec } from './protocol.ts';

const secp = loadSecp256k1().backend;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Why one (request, response) pair is wrong, or undefined when it is right. */
function checkItem(req: SignRequest, res: SignResponse, publicKey: Uint8Array): string | undefined {
  const kind = req.payload?.kind;
  if (kind === undefined || kind.case === undefined) return 'request has no payload';
  if (kind.case === 'ed25519Message') {
    return ed25519Verify(publicKey, kind.value, res.signature) ? undefined : 'Ed25519 signature does not verify';
  }
  if (res.signature.length !== 65 || res.digest.length !== 32) return `secp256k1 signature/digest sizes ${res.signature.length}/${res.digest.length}`;
  if (kind.case === 'personalMessage' && !sameBytes(res.digest, hashPersonalMessage(kind.value.message))) return 'EIP-191 digest differs from ours';
  const recovered = secp.recover(res.digest, res.signature, publicKey.length === 33);
  return sameBytes(recovered, publicKey) ? undefined : 'signature recovers to another key';
}

/** Why the result of one SignStream message is wrong, or undefined when it is right: its receipt
 * names SignStream and covers this SignRequest, the key is the one asked for, and the signature
 * verifies. */
function checkStreamItem(req: SignRequest, res: SignResponse, publicKey: Uint8Array): string | undefined {
  const receipt = res.receipt;
  if (receipt === undefined) return 'no receipt';
  if (receipt.method !== METHOD_PATHS.signStream) return `receipt names ${receipt.method}`;
  const digest = createHash('sha256').update(toBinary(SignRequestSchema, req)).digest();
  if (!sameBytes(receipt.requestDigest, digest)) return 'receipt covers another request';
  if (res.keyId !== req.keyId) return `signed with ${res.keyId}, asked for ${req.keyId}`;
  return checkItem(req, res, publicKey);
}

/** "ok", or what is wrong with `res` as the result of the SignStream message carrying `req`. */
export function checkStreamResult(spec: RunSpec, req: SignRequest, res: SignResponse): string {
  return checkStreamItem(req, res, new Uint8Array(Buffer.from(spec.keyPublicKeyHex, 'hex'))) ?? 'ok';
}

/** "ok", or what is wrong with `responseBody` as the answer to `requestBody` (for SignStream: one
 * SignStreamResponse to one SignStreamRequest, both without the gRPC prefix). */
export function checkResponse(spec: RunSpec, requestBody: Uint8Array, responseBody: Uint8Array): string {
  try {
    const publicKey = new Uint8Array(Buffer.from(spec.keyPublicKeyHex, 'hex'));
    switch (spec.operation) {
      case 'getImportKey': {
        const res = fromBinary(GetImportKeyResponseSchema, responseBody);
        return res.publicKey.length === 32 ? 'ok' : 'import key is not 32 bytes';
      }
      case 'sign': {
        const res = fromBinary(SignResponseSchema, responseBody);
        if (res.receipt === undefined) return 'no receipt';
        return checkItem(fromBinary(SignRequestSchema, requestBody), res, publicKey) ?? 'ok';
      }
      case 'signBatch': {
        const req = fromBinary(SignBatchRequestSchema, requestBody);
        const res = fromBinary(SignBatchResponseSchema, responseBody);
        if (res.receipt === undefined) return 'no receipt';
        if (res.results.length !== req.items.length) return `batch of ${req.items.length} answered with ${res.results.length}`;
        for (const [i, item] of req.items.entries()) {
          const r = res.results[i];
          const why = r === undefined ? 'missing result' : checkItem(item, r, publicKey);
          if (why !== undefined) return `item ${i}: ${why}`;
        }
        return 'ok';
      }
      case 'signStream': {
        const req = fromBinary(SignStreamRequestSchema, requestBody);
        const res = fromBinary(SignStreamResponseSchema, responseBody);
        if (res.id !== req.id) return `answer id ${res.id} to message ${req.id}`;
        if (res.outcome.case === 'error') return `refused: ${res.outcome.value.code}`;
        if (res.outcome.case !== 'result') return 'answer without an outcome';
        if (req.request === undefined) return 'message without a request';
        return checkStreamItem(req.request, res.outcome.value, publicKey) ?? 'ok';
      }
    }
  } catch (e) {
    return `undecodable response: ${e instanceof Error ? e.message : String(e)}`;
  }
}
