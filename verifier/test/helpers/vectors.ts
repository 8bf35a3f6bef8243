// Test-only access to the shared TDX/SGX vectors (`<repo>/../shared/vectors/tdx`, see its README).

import { readFileSync } from 'node:fs';

import { fromHex } from '../../src/bytes.ts';
import { parseCollateral, type QuoteCollateral } from '../../src/dcap/collateral.ts';

const DIR = new URL('../../../../shared/vectors/tdx/', import.meta.url);

export function vectorFile(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(name, DIR)));
}

export function vectorText(name: string): string {
  return readFileSync(new URL(name, DIR), 'utf8');
}

export function vectorJson(name: string): unknown {
  return JSON.parse(vectorText(name)) as unknown;
}

/** A quote from a .bin, a .hex text file, or a GetQuote JSON response. */
export function vectorQuote(name: string): Uint8Array {
  if (name.endsWith('.bin')) return vectorFile(name);
  if (name.endsWith('.hex')) return fromHex(vectorText(name).trim(), 'INVALID_ARGUMENT');
  const o = vectorJson(name) as { quote: string };
  return fromHex(o.quote, 'INVALID_ARGUMENT');
}

export function vectorCollateral(name: string): QuoteCollateral {
  return parseCollateral(vectorText(name));
}

export const INTEL_ROOT = (): Uint8Array => vectorFile('intel_sgx_root_ca.der');

/** The subset of expected.json these tests read. */
export interface ExpectedVector {
  readonly id: string;
  readonly quote_file: string;
  readonly collateral_file: string;
  readonly verify_at: number;
  readonly expected: { readonly status?: string; readonly advisory_ids?: readonly string[]; readonly error?: string };
  readonly quote: Readonly<Record<string, unknown>> & {
    readonly version: number;
    readonly report_type: string;
    readonly signed_length: number;
    readonly pck: { readonly fmspc: string; readonly cpusvn: string; readonly pcesvn: number };
  };
  readonly results: Readonly<Record<string, { readonly js_0_3_9: { readonly status?: string; readonly advisory_ids?: readonly string[]; readonly error?: string } }>>;
  readonly event_log_replay?: {
    readonly rtmr0: { readonly replayed: string };
    readonly rtmr1: { readonly replayed: string };
    readonly rtmr2: { readonly replayed: string };
    readonly rtmr3: { readonly replayed: string };
    readonly runtime_events_before_system_ready: Readonly<Record<string, string>>;
    readonly runtime_event_order: readonly string[];
  };
}

export interface Expected {
  readonly vectors: readonly ExpectedVector[];
  readonly getkey_signature_chain: {
    readonly app_id: string;
    readonly app_root_pubkey_compressed: string;
    readonly kms_root_pubkey_recovered: string;
    readonly secp256k1: {
      readonly purpose: string;
      readonly derived_pubkey_compressed: string;
      readonly signature_chain_expected: readonly [string, string];
    };
  };
}

export const EXPECTED = vectorJson('expected.json') as Expected;

export function expectedVector(id: string): ExpectedVector {
  const v = EXPECTED.vectors.find((x) => x.id === id);
  if (v === undefined) throw new Error(`no vector ${id}`);
  return v;
}
