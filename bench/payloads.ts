// The payloads every part of the benchmark signs, so in-process and over-the-wire figures are for
// the same work: short personal messages (EIP-191 and Ed25519) and the EIP-712 specification's
// "Mail" example with a varying `contents`, rotated over a fixed-size pool.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Distinct payloads per pool; requests and micro-benchmark iterations cycle through them. */
export const PAYLOAD_POOL = 1024;

/** `n` random 36-byte messages (the size of a typical "sign this nonce" text). */
export function personalMessages(n: number = PAYLOAD_POOL): Uint8Array[] {
  return Array.from({ length: n }, () => new Uint8Array(randomBytes(36)));
}

const MAIL_NESTED: unknown = JSON.parse(readFileSync(fileURLToPath(new URL('../clients/examples/mail-nested.json', import.meta.url)), 'utf8'));

/** The EIP-712 v4 Mail example (nested arrays, bytes), `contents` made unique per index. */
export function mailDocument(i: number): unknown {
  const doc = structuredClone(MAIL_NESTED) as { message: { contents: string } };
  doc.message.contents = `Hello, Bob! #${i}`;
  return doc;
}

/** The Mail document as the JSON text a client sends in `typed_data.json`. */
export function mailJsons(n: number = PAYLOAD_POOL): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(mailDocument(i)));
}
