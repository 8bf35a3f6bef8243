// dstack GetKey derivation and signature chain (reference §2.1, §2.2) against the published vector
// (vectors/tdx/expected.json `getkey_signature_chain`, dstack sdk/simulator/appkeys.json). Oracles:
// the vector's values, node:crypto HKDF, and @noble/curves public-key recovery done here, not in keys.ts.

import { createHash, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { appKeysFromDstackJson, deriveGetKey, devKmsRoot, issueAppKey } from './keys.ts';
import { buildSimulatorState, DEV_DEFAULT_SEED } from './simulator.ts';
import { isOpenKeyError } from '../core/errors.ts';

const VECTORS = '/work/shared/vectors/tdx';
const appKeysJson = readFileSync(join(VECTORS, 'dstack_sim_appkeys.json'), 'utf8');
const expectedAll: unknown = JSON.parse(readFileSync(join(VECTORS, 'expected.json'), 'utf8'));

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

function at(o: unknown, path: string[]): unknown {
  let cur: unknown = o;
  for (const p of path) {
    if (typeof cur !== 'object' || cur === null) throw new Error(`vector missing ${path.join('.')}`);
    const rec: Record<string, unknown> = { ...cur };
    cur = rec[p];
  }
  return cur;
}

function str(o: unknown, ...path: string[]): string {
  const v = at(o, path);
  if (typeof v !== 'string') throw new Error(`vector ${path.join('.')} not a string`);
  return v;
}

function strs(o: unknown, ...path: string[]): string[] {
  const v = at(o, path);
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw new Error(`vector ${path.join('.')} not strings`);
  return v;
}

const V = (...p: string[]): string => str(expectedAll, 'getkey_signature_chain', ...p);

/** Independent recovery (reference §2.2): compressed pubkey that produced sig65 over keccak256(msg). */
function recover(sig65: Uint8Array, msg: Uint8Array): string {
  expect(sig65.length).toBe(65);
  const v = sig65[64];
  expect(v === 0 || v === 1).toBe(true);
  return hex(
    secp256k1.Signature.fromCompact(sig65.subarray(0, 64))
      .addRecoveryBit(v ?? -1)
      .recoverPublicKey(keccak_256(msg))
      .toRawBytes(true),
  );
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return isOpenKeyError(e) ? e.code : `non-OpenKeyError: ${String(e)}`;
  }
  return 'no error';
}

describe('GetKey vector (expected.json getkey_signature_chain)', () => {
  const appId = V('app_id');
  const app = appKeysFromDstackJson(appKeysJson, appId);

  it('recovers the KMS root from the appkeys k256_signature', () => {
    expect(hex(app.kmsRootPublicKey)).toBe(V('kms_root_pubkey_recovered'));
    expect(hex(app.kmsSignature)).toBe(V('kms_k256_signature'));
  });

  it('secp256k1: derived key, pubkey and both chain signatures match and recover', () => {
    const d = deriveGetKey(app, V('secp256k1', 'path'), V('secp256k1', 'purpose'), 'secp256k1');
    // HKDF oracle: node:crypto, salt "RATLS", IKM app key, info = path.
    const viaNode = new Uint8Array(hkdfSync('sha256', unhex(V('app_k256_key')), utf8('RATLS'), utf8('/test/path'), 32));
    expect(hex(d.key)).toBe(V('secp256k1', 'derived_key'));
    expect(hex(viaNode)).toBe(V('secp256k1', 'derived_key'));
    expect(hex(secp256k1.getPublicKey(d.key, true))).toBe(V('secp256k1', 'derived_pubkey_compressed'));
    expect(hex(d.publicKey)).toBe(V('secp256k1', 'derived_pubkey_compressed'));
    // RFC 6979 signatures are deterministic, so the vector's exact chain is reproducible.
    const expectedChain = strs(expectedAll, 'getkey_signature_chain', 'secp256k1', 'signature_chain_expected');
    expect(expectedChain).toHaveLength(2);
    expect(d.signatureChain.map(hex)).toEqual(expectedChain);
    expect(expectedChain[1]).toBe(V('kms_k256_signature'));
    const [c0, c1] = d.signatureChain;
    const appPub = recover(c0, utf8(V('secp256k1', 'app_message')));
    expect(appPub).toBe(V('app_root_pubkey_compressed'));
    const kmsPub = recover(c1, new Uint8Array([...utf8('dstack-kms-issued:'), ...unhex(appId), ...unhex(appPub)]));
    expect(kmsPub).toBe(V('kms_root_pubkey_recovered'));
  });

  it('ed25519: same seed bytes, ed25519 pubkey, chain[0] over the ed25519 pubkey hex', () => {
    const d = deriveGetKey(app, V('ed25519', 'path'), V('ed25519', 'purpose'), 'ed25519');
    expect(hex(d.key)).toBe(V('ed25519', 'derived_seed'));
    expect(hex(d.publicKey)).toBe(V('ed25519', 'derived_pubkey'));
    expect(hex(ed25519.getPublicKey(d.key))).toBe(V('ed25519', 'derived_pubkey'));
    expect(recover(d.signatureChain[0], utf8(V('ed25519', 'app_message')))).toBe(V('app_root_pubkey_compressed'));
  });

  it('the purpose is bound and the path is not (§2.1): changing the purpose changes what chain[0] recovers to', () => {
    const d = deriveGetKey(app, '/test/path', 'test-purpose', 'secp256k1');
    const wrongPurpose = recover(d.signatureChain[0], utf8(`other-purpose:${hex(d.publicKey)}`));
    expect(wrongPurpose).not.toBe(V('app_root_pubkey_compressed'));
    const other = deriveGetKey(app, '/other/path', 'test-purpose', 'secp256k1');
    expect(hex(other.key)).not.toBe(hex(d.key));
    expect(recover(other.signatureChain[0], utf8(`test-purpose:${hex(other.publicKey)}`))).toBe(V('app_root_pubkey_compressed'));
  });

  it('a wrong app id surfaces as a different KMS root, never as the expected one', () => {
    const wrong = appKeysFromDstackJson(appKeysJson, '00'.repeat(20));
    expect(hex(wrong.kmsRootPublicKey)).not.toBe(V('kms_root_pubkey_recovered'));
  });

  it('rejects malformed appkeys with codes', () => {
    const obj: unknown = JSON.parse(appKeysJson);
    const variant = (patch: Record<string, unknown>): string => JSON.stringify({ ...(typeof obj === 'object' ? obj : {}), ...patch });
    expect(codeOf(() => appKeysFromDstackJson('{', appId))).toBe('MALFORMED_REQUEST');
    expect(codeOf(() => appKeysFromDstackJson('[]', appId))).toBe('MALFORMED_REQUEST');
    expect(codeOf(() => appKeysFromDstackJson(variant({ k256_key: 12 }), appId))).toBe('MALFORMED_REQUEST');
    expect(codeOf(() => appKeysFromDstackJson(variant({ k256_key: '00'.repeat(32) }), appId))).toBe('MALFORMED_REQUEST');
    expect(codeOf(() => appKeysFromDstackJson(variant({ k256_key: 'zz'.repeat(32) }), appId))).toBe('MALFORMED_REQUEST');
    expect(codeOf(() => appKeysFromDstackJson(variant({ k256_signature: V('kms_k256_signature').slice(0, 128) }), appId))).toBe(
      'MALFORMED_REQUEST',
    );
    expect(codeOf(() => appKeysFromDstackJson(variant({ k256_signature: `${V('kms_k256_signature').slice(0, 128)}02` }), appId))).toBe(
      'MALFORMED_REQUEST',
    );
    expect(codeOf(() => appKeysFromDstackJson(appKeysJson, 'abcd'))).toBe('MALFORMED_REQUEST');
  });
});

describe('dev KMS (seed mode)', () => {
  it('issues the app key exactly as the dstack KMS does (§2.1) and signs it with the root', () => {
    const root = devKmsRoot(DEV_DEFAULT_SEED);
    const appId = unhex('11'.repeat(20));
    const app = issueAppKey(root, appId);
    const viaNode = new Uint8Array(hkdfSync('sha256', root, utf8('RATLS'), new Uint8Array([...appId, ...utf8('app-key')]), 32));
    expect(hex(app.appK256Key)).toBe(hex(viaNode));
    const appPub = hex(secp256k1.getPublicKey(viaNode, true));
    const kms = recover(app.kmsSignature, new Uint8Array([...utf8('dstack-kms-issued:'), ...appId, ...unhex(appPub)]));
    expect(kms).toBe(hex(secp256k1.getPublicKey(root, true)));
    expect(hex(app.kmsRootPublicKey)).toBe(kms);
  });

  it('is deterministic per seed and separates seeds', () => {
    const a = buildSimulatorState({ seed: utf8('seed-a') });
    const a2 = buildSimulatorState({ seed: utf8('seed-a') });
    const b = buildSimulatorState({ seed: utf8('seed-b') });
    expect(hex(a.keys.kmsRootPublicKey)).toBe(hex(a2.keys.kmsRootPublicKey));
    expect(hex(a.keys.kmsRootPublicKey)).not.toBe(hex(b.keys.kmsRootPublicKey));
    expect(hex(deriveGetKey(a.keys, 'p', 'x', 'secp256k1').key)).toBe(hex(deriveGetKey(a2.keys, 'p', 'x', 'secp256k1').key));
    expect(hex(deriveGetKey(a.keys, 'p', 'x', 'secp256k1').key)).not.toBe(hex(deriveGetKey(b.keys, 'p', 'x', 'secp256k1').key));
  });

  it('defaults the app id to sha256(app-compose)[:20] and accepts an explicit one', () => {
    const s = buildSimulatorState({});
    expect(hex(s.keys.appId)).toBe(createHash('sha256').update(s.platform.appCompose).digest('hex').slice(0, 40));
    expect(hex(buildSimulatorState({ appId: 'ab'.repeat(20) }).keys.appId)).toBe('ab'.repeat(20));
    expect(codeOf(() => buildSimulatorState({ appId: 'ab'.repeat(19) }))).toBe('MALFORMED_REQUEST');
    expect(codeOf(() => buildSimulatorState({ seed: new Uint8Array(0) }))).toBe('MISSING_FIELD');
  });
});
