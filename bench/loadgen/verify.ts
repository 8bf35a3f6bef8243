// Checks one response of a load run before the run starts (the "pre-flight" call): it decodes,
// its signatures recover (secp256k1) or verify (Ed25519) under the benchmark key over the digest
// the request implies, and it carries a receipt. A benchmark of wrong answers would be worthless.

import { fromBinary } from '@bufbuild/protobuf';
import { GetImportKeyResponseSchema } from '../../proto/gen/openkey/v1/keys_pb.ts';
import {
  SignBatchRequestSchema,
  SignBatchResponseSchema,
  SignRequestSchema,
  SignResponseSchema,
  type SignRequest,
  type SignResponse,
} from '../../proto/gen/openkey/v1/signing_pb.ts';
import { ed25519Verify } from '../../server/src/core/crypto/ed25519.ts';
import { hashPersonalMessage } from '../../server/src/core/crypto/eip191.ts';
import { loadSecp256k1 } from '../../server/src/core/crypto/secp256k1.ts';
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

/** "ok", or what is wrong with `responseBody` as the answer to `requestBody`. */
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
    }
  } catch (e) {
    return `undecodable response: ${e instanceof Error ? e.message : String(e)}`;
  }
}
