// The appliance report_data binding: SHA-512("openkey-attest-v1" ‖ identity key ‖ 32-byte nonce).

import { describe, expect, it } from 'vitest';
import { sha512 } from '@noble/hashes/sha2.js';

import { concatBytes, toHex, utf8 } from '../src/bytes.ts';
import { VerifierError } from '../src/errors.ts';
import { APPLIANCE_NONCE_LENGTH, APPLIANCE_REPORT_DATA_DOMAIN_TAG, appReportData } from '../src/report-data.ts';

describe('appReportData', () => {
  const key = new Uint8Array(33).fill(2);
  const nonce = new Uint8Array(32).fill(7);

  it('is SHA-512 over the UTF-8 tag, the key and the nonce (64 bytes, fills report_data)', () => {
    expect(APPLIANCE_REPORT_DATA_DOMAIN_TAG).toBe('openkey-attest-v1');
    expect(APPLIANCE_NONCE_LENGTH).toBe(32);
    const rd = appReportData(key, nonce);
    expect(rd.length).toBe(64);
    expect(toHex(rd)).toBe(toHex(sha512(concatBytes(utf8('openkey-attest-v1'), key, nonce))));
  });

  it('differs for another key or nonce', () => {
    const base = toHex(appReportData(key, nonce));
    expect(toHex(appReportData(new Uint8Array(33).fill(3), nonce))).not.toBe(base);
    expect(toHex(appReportData(key, new Uint8Array(32).fill(8)))).not.toBe(base);
    // The fixed nonce length keeps the encoding unambiguous across key lengths.
    expect(toHex(appReportData(key.subarray(0, 32), concatBytes(key.subarray(32), nonce.subarray(0, 31)).slice(0, 32)))).not.toBe(base);
  });

  it('rejects a nonce that is not 32 bytes and an empty key with INVALID_ARGUMENT', () => {
    for (const [k, n] of [[key, new Uint8Array(31)], [key, new Uint8Array(33)], [new Uint8Array(0), nonce]] as const) {
      try {
        appReportData(k, n);
        throw new Error('accepted');
      } catch (e: unknown) {
        expect(e instanceof VerifierError && e.code).toBe('INVALID_ARGUMENT');
      }
    }
  });
});
