// Reference §5.2 (collateral endpoints): the PCS/PCCS source builds the right requests, slices the
// exact signed JSON, caches by FMSPC/CA until expiry, bounds sizes and time, and its output verifies.
// Served from the vector collateral through an injected fetch and a loopback HTTP server; no network.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { toHex } from '../src/bytes.ts';
import {
  INTEL_PCS_URL,
  INTEL_ROOT_CA_CRL_URL,
  collateralKeyOf,
  createOfflineCollateralSource,
  createPcsCollateralSource,
  type FetchLike,
} from '../src/collateral/index.ts';
import { verifyQuote } from '../src/dcap/verify.ts';
import { VerifierError, type VerifierErrorCode } from '../src/errors.ts';
import { INTEL_ROOT, vectorCollateral, vectorJson, vectorQuote } from './helpers/vectors.ts';

async function codeOf(p: Promise<unknown>): Promise<VerifierErrorCode | 'no error'> {
  try {
    await p;
    return 'no error';
  } catch (e: unknown) {
    if (e instanceof VerifierError) return e.code;
    throw e;
  }
}

interface Served {
  readonly status: number;
  readonly body: Uint8Array;
  readonly headers: Record<string, string>;
}

/** A PCS that serves one collateral bundle (the PCS's own JSON wrapping, a few spaces added). */
function pcsFor(collateralFile: string): (url: URL) => Served {
  const c = vectorCollateral(collateralFile);
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  return (url) => {
    const p = url.pathname;
    if (p.endsWith('/certification/v4/tcb')) {
      return {
        status: 200,
        body: text(`{ "tcbInfo" : ${c.tcbInfo} ,\n "signature": "${toHex(c.tcbInfoSignature)}" }`),
        headers: { 'TCB-Info-Issuer-Chain': encodeURIComponent(c.tcbInfoIssuerChain) },
      };
    }
    if (p.endsWith('/certification/v4/qe/identity')) {
      return {
        status: 200,
        body: text(`{"enclaveIdentity":${c.qeIdentity},"signature":"${toHex(c.qeIdentitySignature)}"}`),
        headers: { 'SGX-Enclave-Identity-Issuer-Chain': encodeURIComponent(c.qeIdentityIssuerChain) },
      };
    }
    if (p.endsWith('/pckcrl')) {
      return { status: 200, body: c.pckCrl, headers: { 'SGX-PCK-CRL-Issuer-Chain': encodeURIComponent(c.pckCrlIssuerChain) } };
    }
    if (p.endsWith('/rootcacrl')) return { status: 200, body: text(toHex(c.rootCaCrl)), headers: {} };
    if (p.endsWith('/IntelSGXRootCA.der')) return { status: 200, body: c.rootCaCrl, headers: {} };
    return { status: 404, body: text('not found'), headers: {} };
  };
}

function fetchFrom(serve: (url: URL) => Served, log: string[] = []): FetchLike {
  return async (url) => {
    log.push(url);
    const r = serve(new URL(url));
    const headers = new Map(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
    return {
      ok: r.status >= 200 && r.status < 300,
      status: r.status,
      headers: { get: (n: string) => headers.get(n.toLowerCase()) ?? null },
      arrayBuffer: async () => r.body.slice().buffer,
    };
  };
}

const TDX_TIME = 1752919234;
const BASE = 'https://pccs.test:8081';

describe('PCS/PCCS source with an injected fetch', () => {
  it('fetches TDX collateral for the quote\'s FMSPC and PCK CA, and it verifies the quote', async () => {
    const log: string[] = [];
    const source = createPcsCollateralSource({ baseUrl: `${BASE}/`, fetch: fetchFrom(pcsFor('dcapqvl_tdx_v4_collateral.json'), log), clock: () => TDX_TIME });
    const quote = vectorQuote('dcapqvl_tdx_v4_quote.bin');
    const collateral = await source.forQuote(quote);
    expect(log.sort()).toEqual(
      [
        `${BASE}/sgx/certification/v4/pckcrl?ca=platform&encoding=der`,
        `${BASE}/sgx/certification/v4/rootcacrl`,
        `${BASE}/tdx/certification/v4/qe/identity?update=standard`,
        `${BASE}/tdx/certification/v4/tcb?fmspc=b0c06f000000&update=standard`,
      ].sort(),
    );
    expect(collateral.tcbInfo).toBe(vectorCollateral('dcapqvl_tdx_v4_collateral.json').tcbInfo);
    expect(verifyQuote(quote, collateral, { trustAnchorDer: INTEL_ROOT(), now: TDX_TIME }).status).toBe('UpToDate');
  });

  it('SGX quotes use the /sgx/ endpoints and the Processor CA CRL', async () => {
    const log: string[] = [];
    const source = createPcsCollateralSource({ baseUrl: BASE, fetch: fetchFrom(pcsFor('dcapqvl_sgx_v3_collateral.json'), log), clock: () => 1752919277 });
    const quote = vectorQuote('dcapqvl_sgx_v3_quote.bin');
    const collateral = await source.forQuote(quote);
    expect(log).toContain(`${BASE}/sgx/certification/v4/pckcrl?ca=processor&encoding=der`);
    expect(log).toContain(`${BASE}/sgx/certification/v4/tcb?fmspc=00a067110000&update=standard`);
    expect(verifyQuote(quote, collateral, { trustAnchorDer: INTEL_ROOT(), now: 1752919277 }).status).toBe('ConfigurationAndSWHardeningNeeded');
  });

  it('with Intel PCS as base, the root CA CRL comes from Intel\'s distribution point', async () => {
    const log: string[] = [];
    const source = createPcsCollateralSource({ baseUrl: INTEL_PCS_URL, fetch: fetchFrom(pcsFor('dcapqvl_tdx_v4_collateral.json'), log), clock: () => TDX_TIME });
    await source.forQuote(vectorQuote('dcapqvl_tdx_v4_quote.bin'));
    expect(log).toContain(INTEL_ROOT_CA_CRL_URL);
  });

  it('caches per FMSPC/CA until the earliest of nextUpdate and maxCacheSeconds; concurrent calls share requests', async () => {
    const log: string[] = [];
    let now = TDX_TIME;
    const source = createPcsCollateralSource({ baseUrl: BASE, fetch: fetchFrom(pcsFor('dcapqvl_tdx_v4_collateral.json'), log), clock: () => now, maxCacheSeconds: 3600 });
    const quote = vectorQuote('dcapqvl_tdx_v4_quote.bin');
    await Promise.all([source.forQuote(quote), source.forQuote(quote), source.forQuote(quote)]);
    expect(log.length).toBe(4);
    // tdx_v4's PCK CRL expires at 1752919235, sooner than the one-hour cap: it alone is refetched.
    now = 1752919236;
    await source.forQuote(quote);
    expect(log.length).toBe(5);
    expect(log[4]).toContain('/pckcrl?');
    now = TDX_TIME + 3601;
    await source.forQuote(quote);
    expect(log.length).toBe(9);
  });

  it('HTTP errors, thrown fetches and timeouts → COLLATERAL_FETCH_FAILED', async () => {
    const quote = vectorQuote('dcapqvl_tdx_v4_quote.bin');
    const notFound = createPcsCollateralSource({ baseUrl: BASE, fetch: fetchFrom(() => ({ status: 404, body: new Uint8Array(), headers: {} })) });
    expect(await codeOf(notFound.forQuote(quote))).toBe('COLLATERAL_FETCH_FAILED');
    const broken = createPcsCollateralSource({ baseUrl: BASE, fetch: () => Promise.reject(new TypeError('network down')) });
    expect(await codeOf(broken.forQuote(quote))).toBe('COLLATERAL_FETCH_FAILED');
    const hanging: FetchLike = (_url, init) =>
      new Promise((_resolve, reject) => init.signal.addEventListener('abort', () => reject(new Error('aborted'))));
    const slow = createPcsCollateralSource({ baseUrl: BASE, fetch: hanging, timeoutMs: 20 });
    expect(await codeOf(slow.forQuote(quote))).toBe('COLLATERAL_FETCH_FAILED');
  });

  it('oversized bodies → COLLATERAL_TOO_LARGE; missing issuer-chain header → COLLATERAL_MALFORMED', async () => {
    const quote = vectorQuote('dcapqvl_tdx_v4_quote.bin');
    const serve = pcsFor('dcapqvl_tdx_v4_collateral.json');
    const small = createPcsCollateralSource({ baseUrl: BASE, fetch: fetchFrom(serve), maxResponseBytes: 1000 });
    expect(await codeOf(small.forQuote(quote))).toBe('COLLATERAL_TOO_LARGE');
    const noHeader = createPcsCollateralSource({ baseUrl: BASE, fetch: fetchFrom((u) => ({ ...serve(u), headers: {} })) });
    expect(await codeOf(noHeader.forQuote(quote))).toBe('COLLATERAL_MALFORMED');
  });

  it('a tampered body is fetched but then refused by verification (nothing fetched is trusted)', async () => {
    const serve = pcsFor('dcapqvl_tdx_v4_collateral.json');
    const tampered = (u: URL): Served => {
      const r = serve(u);
      if (!u.pathname.endsWith('/tcb')) return r;
      const t = new TextDecoder().decode(r.body).replace('"UpToDate"', '"UpToDatE"');
      return { ...r, body: new TextEncoder().encode(t) };
    };
    const source = createPcsCollateralSource({ baseUrl: BASE, fetch: fetchFrom(tampered), clock: () => TDX_TIME });
    const quote = vectorQuote('dcapqvl_tdx_v4_quote.bin');
    const c = await source.forQuote(quote);
    expect(() => verifyQuote(quote, c, { trustAnchorDer: INTEL_ROOT(), now: TDX_TIME })).toThrow(
      expect.objectContaining({ code: 'TCB_INFO_SIGNATURE_INVALID' }),
    );
  });

  it('a non-http base URL → INVALID_ARGUMENT', () => {
    expect(() => createPcsCollateralSource({ baseUrl: 'file:///etc' })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('PCS source over a loopback HTTP server with the global fetch', () => {
  let server: Server;
  let base = '';
  const serve = pcsFor('dcapqvl_near_tdx_v4_collateral.json');
  beforeAll(async () => {
    server = createServer((req, res) => {
      const r = serve(new URL(req.url ?? '/', 'http://127.0.0.1'));
      res.writeHead(r.status, { ...r.headers, 'content-length': String(r.body.length) });
      res.end(r.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((e) => (e === undefined ? resolve() : reject(e))));
  });

  it('fetches near_tdx_v4 collateral that verifies its quote', async () => {
    const source = createPcsCollateralSource({ baseUrl: base, clock: () => 1757462400 });
    const quote = vectorQuote('dcapqvl_near_tdx_v4_quote.hex');
    const c = await source.forQuote(quote);
    expect(verifyQuote(quote, c, { trustAnchorDer: INTEL_ROOT(), now: 1757462400 }).status).toBe('UpToDate');
  });
});

describe('offline bundles', () => {
  const bundles = ['dcapqvl_tdx_v4_collateral.json', 'dcapqvl_sgx_v3_collateral.json', 'dcapqvl_near_tdx_v4_collateral.json'].map(vectorJson);

  it('picks the bundle matching the quote\'s TEE and FMSPC', async () => {
    const source = createOfflineCollateralSource(bundles);
    for (const [file, fmspc] of [
      ['dcapqvl_tdx_v4_quote.bin', 'B0C06F000000'],
      ['dcapqvl_sgx_v3_quote.bin', '00A067110000'],
      ['dcapqvl_near_tdx_v4_quote.hex', '20a06f000000'],
    ] as const) {
      const c = await source.forQuote(vectorQuote(file));
      expect(c.tcbInfo).toContain(`"fmspc":"${fmspc}"`);
    }
  });

  it('no bundle for the FMSPC → COLLATERAL_FETCH_FAILED; a malformed bundle → COLLATERAL_MALFORMED', async () => {
    const source = createOfflineCollateralSource(bundles);
    expect(await codeOf(source.forQuote(vectorQuote('dcapqvl_tdx_v5_outdated_quote.bin')))).toBe('COLLATERAL_FETCH_FAILED');
    expect(() => createOfflineCollateralSource({ tcb_info: 1 })).toThrow(expect.objectContaining({ code: 'COLLATERAL_MALFORMED' }));
  });

  it('collateralKeyOf reads TEE, FMSPC and CA without verifying', () => {
    expect(collateralKeyOf(vectorQuote('dcapqvl_tdx_v5_outdated_quote.bin'))).toEqual({ tee: 'tdx', fmspc: '90c06f000000', ca: 'platform' });
  });
});
