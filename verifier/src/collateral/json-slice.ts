// Extracts the exact text of one top-level member of a JSON object (e.g. `tcbInfo` in a PCS
// response), because Intel signs those bytes and re-serialising parsed JSON need not reproduce
// them (reference §5.2). A small scanner: strings with escapes, nesting, bounded depth.

import { VerifierError } from '../errors.ts';

const CODE = 'COLLATERAL_MALFORMED';
const MAX_DEPTH = 64;

function fail(detail: string): never {
  throw new VerifierError(CODE, detail);
}

function skipWs(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\n' || s[i] === '\r' || s[i] === '\t')) i++;
  return i;
}

/** Index just past the string starting at `i` (which must be a quote). */
function skipString(s: string, i: number): number {
  if (s[i] !== '"') fail('expected string');
  i++;
  while (i < s.length) {
    const c = s[i];
    if (c === '\\') i += 2;
    else if (c === '"') return i + 1;
    else i++;
  }
  return fail('unterminated string');
}

/** Index just past the JSON value starting at `i`. */
function skipValue(s: string, i: number): number {
  let depth = 0;
  do {
    i = skipWs(s, i);
    const c = s[i];
    if (c === '"') i = skipString(s, i);
    else if (c === '{' || c === '[') {
      if (++depth > MAX_DEPTH) fail('JSON nested too deep');
      i++;
    } else if (c === '}' || c === ']') {
      if (depth === 0) fail('unbalanced JSON');
      depth--;
      i++;
    } else if (c === ',' || c === ':') {
      if (depth === 0) fail('unexpected separator');
      i++;
    } else if (c !== undefined && /[-0-9a-z.+E]/.test(c)) {
      while (i < s.length && /[-0-9a-zA-Z.+]/.test(s[i]!)) i++;
    } else {
      fail('unexpected character');
    }
  } while (depth > 0 && i < s.length);
  if (depth !== 0) fail('truncated JSON');
  return i;
}

/** The raw text of top-level member `key` of the JSON object `text` (validated with JSON.parse). */
export function rawJsonMember(text: string, key: string): string {
  try {
    JSON.parse(text);
  } catch (e: unknown) {
    throw new VerifierError(CODE, 'invalid JSON', { cause: e });
  }
  let i = skipWs(text, 0);
  if (text[i] !== '{') fail('expected object');
  i++;
  for (;;) {
    i = skipWs(text, i);
    if (text[i] === '}') break;
    const keyStart = i;
    i = skipString(text, i);
    const name: unknown = JSON.parse(text.slice(keyStart, i));
    i = skipWs(text, i);
    if (text[i] !== ':') fail('expected colon');
    i = skipWs(text, i + 1);
    const valueStart = i;
    i = skipValue(text, i);
    if (name === key) return text.slice(valueStart, i);
    i = skipWs(text, i);
    if (text[i] === ',') i++;
  }
  return fail(`no member ${key}`);
}
