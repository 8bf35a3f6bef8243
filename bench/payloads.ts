// The payloads every part of the benchmark signs, so in-process and over-the-wire figures are for
// the same work: short personal messages (EIP-191 and Ed25519) and the EIP-712 specification's
// "Mail" example with a varying `contents`, rotated over a fixed-size pool.

import { randomBytes } from 'node:crypto';

/** Distinct payloads per pool; requests and micro-benchmark iterations cycle through them. */
export const PAYLOAD_POOL = 1024;

/** `n` random 36-byte messages (the size of a typical "sign this nonce" text). */
export function personalMessages(n: number = PAYLOAD_POOL): Uint8Array[] {
  return Array.from({ length: n }, () => new Uint8Array(randomBytes(36)));
}

/** EIP-712 §"Example": the Mail document, `contents` made unique per index. */
export function mailDocument(i: number) {
  return {
    types: {
      EIP712Domain: [
        { name: 'name', type: 'string' },
        { name: 'version', type: 'string' },
        { name: 'chainId', type: 'uint256' },
        { name: 'verifyingContract', type: 'address' },
      ],
      Person: [
        { name: 'name', type: 'string' },
        { name: 'wallets', type: 'address[]' },
      ],
      Mail: [
        { name: 'from', type: 'Person' },
        { name: 'to', type: 'Person[]' },
        { name: 'contents', type: 'string' },
        { name: 'attachment', type: 'bytes' },
      ],
    },
    primaryType: 'Mail',
    domain: { name: 'Ether Mail', version: '1', chainId: 1, verifyingContract: '0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC' },
    message: {
      from: { name: 'Cow', wallets: ['0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826', '0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF'] },
      to: [{ name: 'Bob', wallets: ['0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB', '0xB0BdaBea57B0BDABeA57b0bdABEA57b0BDabEa57'] }],
      contents: `Hello, Bob! #${i}`,
      attachment: '0xdeadbeef',
    },
  } as const;
}

/** The Mail document as the JSON text a client sends in `typed_data.json`. */
export function mailJsons(n: number = PAYLOAD_POOL): string[] {
  return Array.from({ length: n }, (_, i) => JSON.stringify(mailDocument(i)));
}
