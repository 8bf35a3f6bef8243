// Raw in-process signing rates: the work a Sign request asks of the appliance, measured in this
// process with the server's own crypto modules (server/src/core/crypto) and no transport, auth or
// storage. Each operation gets a warm-up and several short timed runs; the median is reported.
// The same inputs (bench/payloads.ts) are signed over the wire later, so the two can be compared.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { hashTypedData as viemHashTypedData } from 'viem';
import { createEd25519Signer } from '../server/src/core/crypto/ed25519.ts';
import { hashPersonalMessage } from '../server/src/core/crypto/eip191.ts';
import { createEip712Hasher } from '../server/src/core/crypto/eip712.ts';
import { createPrincipalVerifier } from '../server/src/core/crypto/principal-signature.ts';
import { loadSecp256k1, type Secp256k1Backend } from '../server/src/core/crypto/secp256k1.ts';
import { mailJsons, personalMessages, PAYLOAD_POOL } from './payloads.ts';
import { median } from './stats.ts';

/** Stable identifiers: the load scenarios name the micro operation they compare against. */
export type MicroId =
  | 'eip191-native'
  | 'eip191-noble'
  | 'ed25519'
  | 'eip712-native'
  | 'eip712-hash'
  | 'viem-eip712-native'
  | 'stamp-verify-ed25519';

export interface MicroResult {
  readonly id: MicroId;
  readonly label: string;
  /** Median over the timed runs. */
  readonly opsPerSec: number;
  readonly usPerOp: number;
  /** ops/s of each timed run. */
  readonly runs: readonly number[];
  /** (max − min) / median of the runs, percent. */
  readonly spreadPct: number;
  /** True for reference rows that are not a Sign path (a component or another library). */
  readonly reference: boolean;
}

export interface MicroOptions {
  readonly runs: number;
  readonly runMs: number;
  readonly warmupMs: number;
}

interface MicroOp {
  readonly id: MicroId;
  readonly label: string;
  readonly reference: boolean;
  readonly op: (i: number) => unknown;
}

/** Runs `op` until `ms` elapse (checked every 16 calls); returns calls per second. */
function timedLoop(op: (i: number) => unknown, ms: number): number {
  let n = 0;
  let sink = 0;
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    for (let k = 0; k < 16; k++) {
      const out = op(n++);
      if (out instanceof Uint8Array) sink ^= out[0] ?? 0; // keep the result observable
    }
    now = performance.now();
  }
  if (sink === 256) process.stdout.write(''); // never true; defeats dead-code elimination
  return (n * 1000) / (now - start);
}

function hexToBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex.replace(/^0x/, ''), 'hex'));
}

function validSecpKey(b: Secp256k1Backend): Uint8Array {
  for (;;) {
    const k = new Uint8Array(randomBytes(32));
    if (b.isValidPrivateKey(k)) return k;
  }
}

export interface MicroReport {
  readonly results: MicroResult[];
  readonly secp256k1Backend: string;
  readonly nativeError?: string;
}

export function runMicro(o: MicroOptions, log: (line: string) => void): MicroReport {
  const { backend: native, nativeError } = loadSecp256k1();
  const { backend: noble } = loadSecp256k1({ prefer: 'noble' });
  const secpKey = validSecpKey(noble);
  const messages = personalMessages();
  const jsons = mailJsons();
  const mask = PAYLOAD_POOL - 1;
  const edSigner = createEd25519Signer(new Uint8Array(randomBytes(32)));
  // As server/src/core/key-material.ts does: one hasher per process, JSON text in, digest out.
  const eip712 = createEip712Hasher();
  const typedDigest = (json: string): Uint8Array => eip712.hash(json).digest;

  // A stamp check as the server does it: Ed25519 verify through the cached-KeyObject verifier.
  const verifier = createPrincipalVerifier();
  const stampSigner = createEd25519Signer(new Uint8Array(randomBytes(32)));
  const stampInputs = messages.map(() => new Uint8Array(randomBytes(140)));
  const stampSigs = stampInputs.map((m) => stampSigner.sign(m));

  const ops: MicroOp[] = [
    { id: 'eip191-native', label: `EIP-191 hash + secp256k1 sign (${native.name})`, reference: false, op: (i) => native.sign(hashPersonalMessage(messages[i & mask] as Uint8Array), secpKey) },
    { id: 'eip191-noble', label: 'EIP-191 hash + secp256k1 sign (noble)', reference: false, op: (i) => noble.sign(hashPersonalMessage(messages[i & mask] as Uint8Array), secpKey) },
    { id: 'ed25519', label: 'Ed25519 sign (node:crypto KeyObject)', reference: false, op: (i) => edSigner.sign(messages[i & mask] as Uint8Array) },
  ];
  ops.push(
    { id: 'eip712-native', label: `EIP-712 hash (appliance) + secp256k1 sign (${native.name})`, reference: false, op: (i) => native.sign(typedDigest(jsons[i & mask] as string), secpKey) },
    { id: 'eip712-hash', label: 'EIP-712 hash only (appliance, from JSON text)', reference: true, op: (i) => typedDigest(jsons[i & mask] as string) },
    {
      id: 'viem-eip712-native',
      label: `viem hashTypedData (JSON.parse + hash) + secp256k1 sign (${native.name})`,
      reference: true,
      op: (i) => {
        // Our own JSON (payloads.ts), parsed as a caller of viem would; the shape is viem's input type.
        const doc = JSON.parse(jsons[i & mask] as string) as Parameters<typeof viemHashTypedData>[0];
        return native.sign(hexToBytes(viemHashTypedData(doc)), secpKey);
      },
    },
    {
      id: 'stamp-verify-ed25519',
      label: 'stamp check: Ed25519 verify (server verifier, cached KeyObject)',
      reference: true,
      op: (i) => verifier.verify('ed25519', stampSigner.publicKey, stampInputs[i & mask] as Uint8Array, stampSigs[i & mask] as Uint8Array),
    },
  );

  const results: MicroResult[] = [];
  for (const m of ops) {
    timedLoop(m.op, o.warmupMs);
    const runs: number[] = [];
    for (let r = 0; r < o.runs; r++) runs.push(timedLoop(m.op, o.runMs));
    const med = median(runs);
    const spreadPct = (100 * (Math.max(...runs) - Math.min(...runs))) / med;
    results.push({ id: m.id, label: m.label, opsPerSec: med, usPerOp: 1e6 / med, runs, spreadPct, reference: m.reference });
    log(`  ${m.label.padEnd(72)} ${Math.round(med).toString().padStart(7)} ops/s  ${(1e6 / med).toFixed(1).padStart(7)} µs  (±${spreadPct.toFixed(1)} %)`);
  }
  edSigner.destroy();
  stampSigner.destroy();
  secpKey.fill(0);
  return {
    results,
    secp256k1Backend: native.name,
    ...(nativeError === undefined ? {} : { nativeError: nativeError.message }),
  };
}
