// Checked access to parsed JSON (`unknown` in, typed values out) and strict RFC 3339 UTC dates, for
// collateral, event logs and policy. Every accessor takes the error code of the document it reads,
// so a malformed field fails with that document's code (STYLE habit 5: parse, check, then brand).

import { fromHex } from './bytes.ts';
import { VerifierError, type VerifierErrorCode } from './errors.ts';

export type JsonObject = { readonly [key: string]: unknown };

export function parseJsonText(text: string, code: VerifierErrorCode, maxLength: number): unknown {
  if (typeof text !== 'string') throw new VerifierError(code, 'expected JSON text');
  if (text.length > maxLength) throw new VerifierError(code, 'JSON text too long');
  try {
    return JSON.parse(text) as unknown;
  } catch (e: unknown) {
    throw new VerifierError(code, 'invalid JSON', { cause: e });
  }
}

export function asObject(v: unknown, code: VerifierErrorCode, what: string): JsonObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new VerifierError(code, `${what}: expected object`);
  return v as JsonObject;
}

export function asArray(v: unknown, code: VerifierErrorCode, what: string, maxItems: number): readonly unknown[] {
  if (!Array.isArray(v)) throw new VerifierError(code, `${what}: expected array`);
  if (v.length > maxItems) throw new VerifierError(code, `${what}: too many items`);
  return v as readonly unknown[];
}

export function getString(o: JsonObject, key: string, code: VerifierErrorCode, maxLength = 1 << 20): string {
  const v = o[key];
  if (typeof v !== 'string') throw new VerifierError(code, `${key}: expected string`);
  if (v.length > maxLength) throw new VerifierError(code, `${key}: too long`);
  return v;
}

export function getOptionalString(o: JsonObject, key: string, code: VerifierErrorCode, maxLength = 1 << 20): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : getString(o, key, code, maxLength);
}

export function getInteger(o: JsonObject, key: string, code: VerifierErrorCode, min: number, max: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new VerifierError(code, `${key}: expected integer in [${min}, ${max}]`);
  }
  return v;
}

export function getHex(o: JsonObject, key: string, code: VerifierErrorCode, length?: number): Uint8Array {
  return fromHex(getString(o, key, code, 1 << 22), code, length);
}

const RFC3339_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z$/;

/** `YYYY-MM-DDTHH:MM:SS[.frac]Z` as Unix seconds (fraction dropped). Offsets other than Z are refused. */
export function parseUtcDate(s: string, code: VerifierErrorCode): number {
  const m = RFC3339_UTC.exec(s);
  if (m === null) throw new VerifierError(code, 'bad date');
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const d = new Date(ms);
  if (
    year < 1970 ||
    d.getUTCFullYear() !== year ||
    d.getUTCMonth() !== month - 1 ||
    d.getUTCDate() !== day ||
    d.getUTCHours() !== hour ||
    d.getUTCMinutes() !== minute ||
    d.getUTCSeconds() !== second
  ) {
    throw new VerifierError(code, 'invalid calendar date');
  }
  return ms / 1000;
}
