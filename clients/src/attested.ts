// A client that verifies before it trusts: it attests the appliance with a fresh nonce, runs the
// verifier with the caller's policy, pins the identity key the quote binds, checks that the import
// key is vouched for by it, and then checks the receipt of every response that carries one. Any
// failure is an error (AttestationError / ReceiptError), never a warning.

import { clone, toBinary, type DescMessage, type DescService, type MessageShape } from '@bufbuild/protobuf';
import { createClient, type Interceptor, type Transport } from '@connectrpc/connect';
import { ed25519 } from '@noble/curves/ed25519';
import { sha256 } from '@noble/hashes/sha2';
import { parseCollateral, verifyAppliance, type ApplianceVerdict, type QuoteCollateral } from '@openkey/verifier';
import { AttestService } from '../../proto/gen/openkey/v1/attest_pb.ts';
import type { Receipt } from '../../proto/gen/openkey/v1/common_pb.ts';
import { importKeyStatement } from '../../proto/protocol/key-import.ts';
import { BATCH_RECEIPT_VERSION, RECEIPT_VERSION, batchSigningInput, receiptLeafHash, receiptSigningInput, rootFromPath } from '../../proto/protocol/receipt.ts';
import { createOpenKeyClient, createTransport, type OpenKeyClient, type OpenKeyClientOptions } from './client.ts';
import type { PolicyWithoutNonce } from './policy.ts';

export class AttestationError extends Error {
  override readonly name = 'AttestationError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${message}`, options);
  }
}

export const RECEIPT_ERROR_CODES = ['RECEIPT_MISSING', 'RECEIPT_MISMATCH', 'RECEIPT_SIGNATURE_INVALID', 'RECEIPT_STALE'] as const;
export type ReceiptErrorCode = (typeof RECEIPT_ERROR_CODES)[number];

export class ReceiptError extends Error {
  override readonly name = 'ReceiptError';
  constructor(
    readonly code: ReceiptErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface AttestOptions {
  /** Verification time, Unix seconds; default now. */
  readonly now?: () => number;
  /** Collateral to use instead of the one the appliance ships (e.g. from your own PCCS). */
  readonly collateral?: QuoteCollateral;
}

export interface AttestedAppliance {
  readonly verdict: ApplianceVerdict;
  /** The pinned identity key: receipts must verify under it. */
  readonly identityPublicKey: Uint8Array;
  /** The import key, checked to be vouched for by the identity key. */
  readonly importPublicKey: Uint8Array;
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Attests the appliance behind `transport` against `policy`. */
export async function attestAppliance(transport: Transport, policy: PolicyWithoutNonce, o: AttestOptions = {}): Promise<AttestedAppliance> {
  const nonce = crypto.getRandomValues(new Uint8Array(32));
  const res = await createClient(AttestService, transport).attest({ nonce });
  let collateral = o.collateral;
  if (collateral === undefined) {
    if (res.collateralJson === '') throw new AttestationError('COLLATERAL_MISSING', 'the appliance shipped no collateral; pass your own');
    try {
      collateral = parseCollateral(res.collateralJson);
    } catch (e) {
      throw new AttestationError('COLLATERAL_MALFORMED', 'collateral from the appliance does not parse', { cause: e });
    }
  }
  let verdict: ApplianceVerdict;
  try {
    verdict = verifyAppliance(
      { quote: res.quote, eventLog: res.eventLog, collateral, identityPublicKey: res.identityPublicKey, signatureChain: res.identitySignatureChain },
      { ...policy, nonce },
      Math.floor((o.now ?? (() => Date.now() / 1000))()),
    );
  } catch (e) {
    const code = typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : 'VERIFICATION_FAILED';
    throw new AttestationError(code, 'the appliance failed verification', { cause: e });
  }
  if (!equal(verdict.boundKey, res.identityPublicKey) || res.identityPublicKey.length !== 32) {
    throw new AttestationError('IDENTITY_KEY_MISMATCH', 'the verified key is not the identity key');
  }
  if (!ed25519.verify(res.importKeySignature, importKeyStatement(res.importPublicKey), res.identityPublicKey)) {
    throw new AttestationError('IMPORT_KEY_UNVOUCHED', 'the import key is not signed by the identity key');
  }
  return { verdict, identityPublicKey: res.identityPublicKey, importPublicKey: res.importPublicKey };
}

function hasReceiptField(schema: DescMessage): boolean {
  return schema.fields.some((f) => f.localName === 'receipt');
}

export interface ReceiptCheckOptions {
  /** Largest accepted distance between receipt time and local time, ms. Default 5 minutes. */
  readonly maxSkewMs?: number;
  readonly now?: () => number;
}

/** Checks one response's receipt; throws ReceiptError. */
export function checkReceipt<I extends DescMessage, O extends DescMessage>(
  identityPublicKey: Uint8Array,
  service: DescService,
  method: { readonly name: string; readonly input: I; readonly output: O },
  request: MessageShape<I>,
  response: MessageShape<O>,
  o: ReceiptCheckOptions = {},
): void {
  const receipt = (response as { receipt?: Receipt }).receipt;
  if (receipt === undefined) throw new ReceiptError('RECEIPT_MISSING', `${method.name} response has no receipt`);
  const path = `/${service.typeName}/${method.name}`;
  const stripped = clone(method.output, response);
  delete (stripped as { receipt?: Receipt }).receipt;
  const requestDigest = sha256(toBinary(method.input, request));
  const responseDigest = sha256(toBinary(method.output, stripped));
  if (receipt.version !== RECEIPT_VERSION && receipt.version !== BATCH_RECEIPT_VERSION) throw new ReceiptError('RECEIPT_MISMATCH', 'version');
  if (receipt.method !== path) throw new ReceiptError('RECEIPT_MISMATCH', 'method');
  if (!equal(receipt.requestDigest, requestDigest)) throw new ReceiptError('RECEIPT_MISMATCH', 'request digest');
  if (!equal(receipt.responseDigest, responseDigest)) throw new ReceiptError('RECEIPT_MISMATCH', 'response digest');
  if (receipt.decision !== 'allow') throw new ReceiptError('RECEIPT_MISMATCH', 'decision');
  const timeMs = Number(receipt.timeMs);
  if (Math.abs((o.now ?? Date.now)() - timeMs) > (o.maxSkewMs ?? 300_000)) throw new ReceiptError('RECEIPT_STALE', 'receipt time is outside the accepted window');
  const input = receiptSigningInput({ method: path, requestDigest, responseDigest, keyId: receipt.keyId, decision: receipt.decision, timeMs });
  let signed = input;
  if (receipt.version === BATCH_RECEIPT_VERSION) {
    // Signed together with other receipts: the proof must lead from this receipt to the signed root.
    const root = rootFromPath(receiptLeafHash(input), receipt.batchIndex, receipt.batchSize, receipt.batchPath);
    if (root === undefined) throw new ReceiptError('RECEIPT_MISMATCH', 'batch inclusion proof');
    signed = batchSigningInput(root, receipt.batchSize);
  } else if (receipt.batchPath.length > 0 || receipt.batchSize !== 0 || receipt.batchIndex !== 0) {
    throw new ReceiptError('RECEIPT_MISMATCH', 'batch fields on a version 1 receipt');
  }
  let ok = false;
  try {
    ok = ed25519.verify(receipt.signature, signed, identityPublicKey);
  } catch {
    ok = false;
  }
  if (!ok) throw new ReceiptError('RECEIPT_SIGNATURE_INVALID', 'receipt signature does not verify under the pinned identity key');
}

/** An interceptor that checks the receipt of every unary response whose schema has one. */
export function receiptInterceptor(identityPublicKey: Uint8Array, o: ReceiptCheckOptions = {}): Interceptor {
  return (next) => async (req) => {
    const res = await next(req);
    if (!req.stream && !res.stream && hasReceiptField(req.method.output)) {
      checkReceipt(identityPublicKey, req.service, req.method, req.message, res.message, o);
    }
    return res;
  };
}

export interface VerifiedClient extends OpenKeyClient {
  readonly appliance: AttestedAppliance;
}

/**
 * Attests first (fresh nonce, caller's policy), then returns a client whose every receipt is
 * checked against the pinned identity key.
 */
export async function createVerifiedClient(
  options: OpenKeyClientOptions & { readonly policy: PolicyWithoutNonce; readonly attest?: AttestOptions; readonly receipts?: ReceiptCheckOptions },
): Promise<VerifiedClient> {
  const { credentials: _omit, ...bare } = options;
  const appliance = await attestAppliance(createTransport(bare), options.policy, options.attest);
  const client = createOpenKeyClient({
    ...options,
    interceptors: [...(options.interceptors ?? []), receiptInterceptor(appliance.identityPublicKey, options.receipts)],
  });
  return { ...client, appliance };
}


