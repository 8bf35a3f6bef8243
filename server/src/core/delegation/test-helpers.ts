// Test fixtures for the delegation tests (not imported by production code): deterministic owner and
// delegate keys, a fixed clock, seeded randomness, a counting signer, and code assertions.

import { expect } from 'vitest';
import { isOpenKeyError, type ErrorCode } from '../errors.ts';
import { addressFromPublicKey } from '../crypto/address.ts';
import { didKey } from '../crypto/did.ts';
import { createEd25519Signer, type Ed25519Signer } from '../crypto/ed25519.ts';
import { hashPersonalMessage } from '../crypto/eip191.ts';
import { loadSecp256k1 } from '../crypto/secp256k1.ts';
import { Prng } from '../crypto/test/helpers.ts';
import type { Clock, Random } from '../ports.ts';
import { checkGrant, type DelegationGrant } from './grant.ts';

export { expectCode, hex0x, Prng } from '../crypto/test/helpers.ts';

const secp = loadSecp256k1().backend;

export interface SecpOwner {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly address: string;
  readonly did: string;
  /** EIP-191 personal_sign → r‖s‖v. */
  personalSign(message: Uint8Array): Uint8Array;
}

export function secpOwner(seed = 'owner'): SecpOwner {
  const privateKey = new Prng(`secp:${seed}`).bytes(32);
  const publicKey = secp.getPublicKey(privateKey, true);
  const address = addressFromPublicKey(publicKey);
  return { privateKey, publicKey, address, did: `did:pkh:eip155:1:${address}`, personalSign: (m) => secp.sign(hashPersonalMessage(m), privateKey) };
}

export interface EdKey {
  readonly seed: Uint8Array;
  readonly signer: Ed25519Signer;
  readonly did: string;
  readonly didUrl: string;
}

export function edKey(seed: string): EdKey {
  const bytes = new Prng(`ed:${seed}`).bytes(32);
  const signer = createEd25519Signer(bytes);
  const did = didKey('ed25519', signer.publicKey);
  return { seed: bytes, signer, did, didUrl: `${did}#${did.slice('did:key:'.length)}` };
}

/** 2026-08-03T11:09:48.243Z, the time of the reference's SIWE fixture. */
export const T0 = Date.parse('2026-08-03T11:09:48.243Z');

export function fixedClock(ms = T0): Clock {
  return { now: () => ms };
}

export function seededRandom(seed = 'random'): Random {
  const prng = new Prng(seed);
  return { bytes: (n) => prng.bytes(n) };
}

/** Wraps a signer and counts its calls. */
export function counting<T extends (m: Uint8Array) => Uint8Array | Promise<Uint8Array>>(fn: T): { sign: (m: Uint8Array) => Promise<Uint8Array>; calls: () => number } {
  let n = 0;
  return {
    sign: async (m) => {
      n++;
      return fn(m);
    },
    calls: () => n,
  };
}

export async function expectCodeAsync(p: Promise<unknown>, code: ErrorCode): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeDefined();
  expect(isOpenKeyError(thrown), `expected an OpenKeyError, got ${String(thrown)}`).toBe(true);
  if (isOpenKeyError(thrown)) expect(thrown.code).toBe(code);
}

/** `tinycloud:pkh:eip155:1:<addr>:<space>/<service>[/<path>]` for an owner DID. */
export function res(ownerDid: string, space: string, service: string, path = ''): string {
  const spaceId = `tinycloud:${ownerDid.slice('did:'.length)}:${space}`;
  return path === '' ? `${spaceId}/${service}` : `${spaceId}/${service}/${path}`;
}

export function grantFor(owner: string, overrides: Record<string, unknown> = {}): DelegationGrant {
  return checkGrant({
    id: 'grant_1',
    owner,
    capabilities: [
      { resource: res(owner, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/get' },
      { resource: res(owner, 'applications', 'kv', 'app/'), ability: 'tinycloud.kv/list' },
      { resource: res(owner, 'applications', 'kv', 'app/x'), ability: 'tinycloud.kv/put' },
      { resource: res(owner, 'applications', 'sql', 'app/db.sqlite'), ability: 'tinycloud.sql/read', caveats: [{ tables: ['notes'] }] },
      { resource: res(owner, 'applications', 'capabilities'), ability: 'tinycloud.capabilities/read' },
    ],
    delegates: [{ kind: 'did', did: edKey('backend').did }],
    maxLifetimeSeconds: 3600,
    createdAt: T0 - 60_000,
    expiresAt: T0 + 7 * 24 * 3600 * 1000,
    revoked: false,
    ...overrides,
  });
}
