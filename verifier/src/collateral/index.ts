// Collateral for DCAP verification: fetched from an Intel PCS or a PCCS (the library's only network
// code; endpoints per reference §5.2) with a bounded in-memory cache, or taken from offline bundles.
// Nothing fetched here is trusted: verifyQuote checks every signature, chain and window. `fetch` is
// injected (default: the global one), so this runs in browsers and tests run without a network.

import { fromHex, fromUtf8, toHex } from '../bytes.ts';
import { VerifierError, ensure, oneFailureChannelAsync } from '../errors.ts';
import { parsePckExtension } from '../asn1/pck.ts';
import { base64Decode } from '../asn1/pem.ts';
import { commonName, parseCrl } from '../asn1/x509.ts';
import { parseChainPem } from '../dcap/chain.ts';
import { parseCollateral, type QuoteCollateral } from '../dcap/collateral.ts';
import { parseQeIdentity, parseTcbInfo } from '../dcap/tcb-info.ts';
import { parseQuote } from '../quote.ts';
import { rawJsonMember } from './json-slice.ts';

export { collateralToJson, parseCollateral, type QuoteCollateral } from '../dcap/collateral.ts';

export const INTEL_PCS_URL = 'https://api.trustedservices.intel.com';
/** Where Intel publishes the root CA CRL (its CRL distribution point). */
export const INTEL_ROOT_CA_CRL_URL = 'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der';

/** The subset of `fetch` this module uses. */
export type FetchLike = (
  url: string,
  init: { readonly method: 'GET'; readonly signal: AbortSignal; readonly headers: Record<string, string> },
) => Promise<{
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  arrayBuffer(): Promise<ArrayBuffer>;
}>;

export interface CollateralSource {
  /** Collateral for `quote` (which is parsed, not verified, to learn its TEE type, FMSPC and PCK CA). */
  forQuote(quote: Uint8Array): Promise<QuoteCollateral>;
}

export interface PcsSourceOptions {
  /** PCS or PCCS base URL, e.g. INTEL_PCS_URL or "https://pccs.example:8081". */
  readonly baseUrl: string;
  /** Root CA CRL URL; default Intel's distribution point for Intel PCS, else `{base}/sgx/certification/v4/rootcacrl`. */
  readonly rootCaCrlUrl?: string;
  readonly fetch?: FetchLike;
  /** Per-request timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** Largest accepted response body; default 4 MiB. */
  readonly maxResponseBytes?: number;
  /** Unix seconds; default the wall clock. Used for cache expiry only. */
  readonly clock?: () => number;
  /** Cache entries never outlive this many seconds, whatever nextUpdate says; default 24 h. */
  readonly maxCacheSeconds?: number;
  /** Cache size bound (entries); default 64. */
  readonly maxCacheEntries?: number;
}

/** What a quote needs: its TEE, its platform's FMSPC and which PCK CA issued its PCK certificate. */
export interface CollateralKey {
  readonly tee: 'sgx' | 'tdx';
  readonly fmspc: string;
  readonly ca: 'platform' | 'processor';
}

/** Reads a quote's collateral key from its (unverified) PCK certificate. */
export function collateralKeyOf(quote: Uint8Array): CollateralKey {
  const parsed = parseQuote(quote);
  const chain = parseChainPem(parsed.auth.pckChainPem);
  const leaf = chain[0]!;
  const issuer = commonName(leaf.issuer) ?? '';
  let ca: CollateralKey['ca'];
  if (/platform/i.test(issuer)) ca = 'platform';
  else if (/processor/i.test(issuer)) ca = 'processor';
  else throw new VerifierError('CERT_MALFORMED', 'PCK issuer is neither the Platform nor the Processor CA');
  return { tee: parsed.report.type === 'sgx' ? 'sgx' : 'tdx', fmspc: toHex(parsePckExtension(leaf).fmspc), ca };
}

interface Cached<T> {
  readonly value: T;
  readonly expiresAt: number;
}

/** A small insertion-ordered cache with expiry; oldest entries go first when full. */
class ExpiringCache {
  readonly #map = new Map<string, Cached<unknown>>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  get<T>(key: string, now: number): T | undefined {
    const hit = this.#map.get(key);
    if (hit === undefined) return undefined;
    if (now >= hit.expiresAt) {
      this.#map.delete(key);
      return undefined;
    }
    return hit.value as T;
  }

  set<T>(key: string, value: T, expiresAt: number): void {
    this.#map.delete(key);
    while (this.#map.size >= this.#max) {
      const oldest = this.#map.keys().next().value;
      if (oldest === undefined) break;
      this.#map.delete(oldest);
    }
    this.#map.set(key, { value, expiresAt });
  }
}

interface SignedJson {
  readonly text: string;
  readonly signature: Uint8Array;
  readonly issuerChain: string;
}

function headerChain(headers: { get(name: string): string | null }, names: readonly string[]): string {
  for (const name of names) {
    const v = headers.get(name);
    if (v !== null) {
      try {
        return decodeURIComponent(v);
      } catch (e: unknown) {
        throw new VerifierError('COLLATERAL_MALFORMED', `${name} is not URL-encoded`, { cause: e });
      }
    }
  }
  throw new VerifierError('COLLATERAL_MALFORMED', `missing header ${names[0] ?? ''}`);
}

/** A CRL body as DER: PCS serves DER, some PCCS hex or PEM. */
function crlBody(body: Uint8Array): Uint8Array {
  if (body[0] === 0x30) return body;
  const text = new TextDecoder().decode(body).trim();
  const pem = /^-----BEGIN X509 CRL-----([\s\S]*)-----END X509 CRL-----$/.exec(text);
  if (pem !== null) return base64Decode(pem[1]!, 'COLLATERAL_MALFORMED');
  return fromHex(text, 'COLLATERAL_MALFORMED');
}

/** Creates a collateral source backed by an Intel PCS or a PCCS. */
export function createPcsCollateralSource(options: PcsSourceOptions): CollateralSource {
  ensure(typeof options.baseUrl === 'string' && /^https?:\/\//.test(options.baseUrl), 'INVALID_ARGUMENT', 'baseUrl');
  const base = options.baseUrl.replace(/\/+$/, '');
  const rootCrlUrl =
    options.rootCaCrlUrl ?? (base === INTEL_PCS_URL ? INTEL_ROOT_CA_CRL_URL : `${base}/sgx/certification/v4/rootcacrl`);
  const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
  const maybeFetch = options.fetch ?? globalFetch;
  ensure(maybeFetch !== undefined, 'INVALID_ARGUMENT', 'no fetch available');
  const doFetch: FetchLike = maybeFetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxBytes = options.maxResponseBytes ?? 4 * 1024 * 1024;
  const clock = options.clock ?? ((): number => Math.floor(Date.now() / 1000));
  const maxCacheSeconds = options.maxCacheSeconds ?? 24 * 3600;
  const cache = new ExpiringCache(options.maxCacheEntries ?? 64);
  const inflight = new Map<string, Promise<unknown>>();

  async function get(url: string): Promise<{ body: Uint8Array; headers: { get(name: string): string | null } }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      let res;
      try {
        res = await doFetch(url, { method: 'GET', signal: controller.signal, headers: {} });
      } catch (e: unknown) {
        throw new VerifierError('COLLATERAL_FETCH_FAILED', url, { cause: e });
      }
      if (!res.ok) throw new VerifierError('COLLATERAL_FETCH_FAILED', `${url}: HTTP ${res.status}`);
      const declared = Number(res.headers.get('content-length') ?? '0');
      ensure(!(declared > maxBytes), 'COLLATERAL_TOO_LARGE', url);
      let buf: ArrayBuffer;
      try {
        buf = await res.arrayBuffer();
      } catch (e: unknown) {
        throw new VerifierError('COLLATERAL_FETCH_FAILED', url, { cause: e });
      }
      ensure(buf.byteLength <= maxBytes, 'COLLATERAL_TOO_LARGE', url);
      return { body: new Uint8Array(buf), headers: res.headers };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Fetches or reuses a cached value; concurrent callers share one request. */
  async function cached<T>(key: string, load: () => Promise<{ value: T; nextUpdate: number }>): Promise<T> {
    const now = clock();
    const hit = cache.get<T>(key, now);
    if (hit !== undefined) return hit;
    const pending = inflight.get(key);
    if (pending !== undefined) return (await pending) as T;
    const p = (async (): Promise<T> => {
      try {
        const { value, nextUpdate } = await load();
        const expiresAt = Math.min(nextUpdate, clock() + maxCacheSeconds);
        if (expiresAt > clock()) cache.set(key, value, expiresAt);
        return value;
      } finally {
        inflight.delete(key);
      }
    })();
    inflight.set(key, p);
    return p;
  }

  async function signedJson(url: string, member: string, headerNames: readonly string[]): Promise<SignedJson> {
    const { body, headers } = await get(url);
    const text = fromUtf8(body, 'COLLATERAL_MALFORMED');
    const raw = rawJsonMember(text, member);
    const parsed = JSON.parse(text) as unknown;
    const sig = typeof parsed === 'object' && parsed !== null ? (parsed as { signature?: unknown }).signature : undefined;
    ensure(typeof sig === 'string', 'COLLATERAL_MALFORMED', 'signature');
    return { text: raw, signature: fromHex(sig, 'COLLATERAL_MALFORMED', 64), issuerChain: headerChain(headers, headerNames) };
  }

  const tcbInfo = (k: CollateralKey): Promise<SignedJson> =>
    cached(`tcb:${k.tee}:${k.fmspc}`, async () => {
      const v = await signedJson(`${base}/${k.tee}/certification/v4/tcb?fmspc=${k.fmspc}&update=standard`, 'tcbInfo', [
        'TCB-Info-Issuer-Chain',
        'SGX-TCB-Info-Issuer-Chain',
      ]);
      return { value: v, nextUpdate: parseTcbInfo(v.text).nextUpdate };
    });

  const qeIdentity = (k: CollateralKey): Promise<SignedJson> =>
    cached(`qe:${k.tee}`, async () => {
      const v = await signedJson(`${base}/${k.tee}/certification/v4/qe/identity?update=standard`, 'enclaveIdentity', [
        'SGX-Enclave-Identity-Issuer-Chain',
      ]);
      return { value: v, nextUpdate: parseQeIdentity(v.text).nextUpdate };
    });

  const pckCrl = (k: CollateralKey): Promise<{ der: Uint8Array; issuerChain: string }> =>
    cached(`pckcrl:${k.ca}`, async () => {
      const { body, headers } = await get(`${base}/sgx/certification/v4/pckcrl?ca=${k.ca}&encoding=der`);
      const der = crlBody(body);
      return {
        value: { der, issuerChain: headerChain(headers, ['SGX-PCK-CRL-Issuer-Chain']) },
        nextUpdate: parseCrl(der).nextUpdate,
      };
    });

  const rootCrl = (): Promise<Uint8Array> =>
    cached('rootcrl', async () => {
      const der = crlBody((await get(rootCrlUrl)).body);
      return { value: der, nextUpdate: parseCrl(der).nextUpdate };
    });

  return {
    forQuote: (quote: Uint8Array) =>
      oneFailureChannelAsync(async () => {
        const key = collateralKeyOf(quote);
        const [tcb, qe, pck, root] = await Promise.all([tcbInfo(key), qeIdentity(key), pckCrl(key), rootCrl()]);
        return {
          pckCrlIssuerChain: pck.issuerChain,
          rootCaCrl: root.slice(),
          pckCrl: pck.der.slice(),
          tcbInfoIssuerChain: tcb.issuerChain,
          tcbInfo: tcb.text,
          tcbInfoSignature: tcb.signature.slice(),
          qeIdentityIssuerChain: qe.issuerChain,
          qeIdentity: qe.text,
          qeIdentitySignature: qe.signature.slice(),
        };
      }),
  };
}

/**
 * A source that serves collateral from bundles (QuoteCollateralV3 JSON objects or text), e.g.
 * shipped by the appliance next to its quote or stored for air-gapped verification. With several
 * bundles, the one whose TCB info matches the quote's TEE and FMSPC is chosen.
 */
export function createOfflineCollateralSource(bundles: unknown): CollateralSource {
  const list = (Array.isArray(bundles) ? bundles : [bundles]).map((b) => parseCollateral(b));
  ensure(list.length > 0 && list.length <= 1024, 'INVALID_ARGUMENT', 'bundles');
  const indexed = list.map((c) => {
    const info = parseTcbInfo(c.tcbInfo);
    return { c, tee: info.id === 'TDX' ? 'tdx' : 'sgx', fmspc: toHex(info.fmspc) };
  });
  return {
    forQuote: (quote: Uint8Array) =>
      oneFailureChannelAsync(async () => {
        await Promise.resolve();
        const key = collateralKeyOf(quote);
        const hit = indexed.find((x) => x.tee === key.tee && x.fmspc === key.fmspc);
        ensure(hit !== undefined, 'COLLATERAL_FETCH_FAILED', `no bundle for ${key.tee} FMSPC ${key.fmspc}`);
        return hit.c;
      }),
  };
}
