// The appliance's own web page (clients/web): passkey registration, sign-in, keys, policy, approvals
// and the audit log, for a person with a browser. The page script is bundled with esbuild once per
// process, when the first appliance starts, and served from memory on the Connect port as the
// fallback for paths that are not RPCs. Both documents are static: no server data is templated in.
// A build failure is logged and the page answers 503; the appliance itself keeps serving RPCs.

import type { ConnectNodeAdapterOptions } from '@connectrpc/connect-node';
import { build, stop } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../adapters/logger.ts';

/** A connect-node fallback handler: what answers requests for paths that are not RPCs. */
export type FallbackHandler = NonNullable<ConnectNodeAdapterOptions['fallback']>;

/** The page as served: the HTML document and its one script, or the reason it could not be built. */
export type WebPage = { readonly ok: true; readonly html: Uint8Array; readonly script: Uint8Array } | { readonly ok: false };

const WEB_DIR = new URL('../../../clients/web/', import.meta.url);

/**
 * The page's policy: nothing but its own script, styles only from the document, fetches only to
 * the appliance itself, never framed (a framed passkey prompt invites clickjacking).
 */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

let cached: Promise<WebPage> | undefined;

/** Builds the page once per process (the sources do not change while it runs); later calls share it. */
export function loadWebPage(logger: Logger): Promise<WebPage> {
  cached ??= buildWebPage().catch((err: unknown): WebPage => {
    logger.error({ err }, 'web page build failed: / answers 503, RPCs are unaffected');
    cached = undefined; // the next appliance start tries again
    return { ok: false };
  });
  return cached;
}

async function buildWebPage(): Promise<WebPage> {
  // esbuild's compiler process is stopped once the page is built: nothing else in the serving
  // process uses it, and the appliance keeps no idle compiler beside it.
  const [html, bundle] = await Promise.all([
    readFile(new URL('index.html', WEB_DIR)),
    build({
      entryPoints: [fileURLToPath(new URL('app.ts', WEB_DIR))],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      // Not minified (≈ 290 KB): what the appliance serves stays readable to anyone auditing it.
      minify: false,
      sourcemap: false,
      legalComments: 'eof',
      write: false,
      logLevel: 'silent',
    }).finally(() => stop()),
  ]);
  const script = bundle.outputFiles[0];
  if (bundle.outputFiles.length !== 1 || script === undefined) throw new Error(`esbuild produced ${bundle.outputFiles.length} files, expected 1`);
  return { ok: true, html: new Uint8Array(html), script: script.contents };
}

/**
 * Serves `/` (and `/index.html`) and `/app.js` from `page`; every other path is a plain 404, as
 * without the page. `page` undefined means the page is switched off.
 */
export function webPageHandler(page: WebPage | undefined): FallbackHandler {
  return (req, res) => {
    const path = (req.url ?? '').split('?', 1)[0];
    const doc = path === '/' || path === '/index.html' ? 'html' : path === '/app.js' ? 'script' : undefined;
    if (page === undefined || doc === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
      res.end('method not allowed\n');
      return;
    }
    if (!page.ok) {
      res.writeHead(503, { ...PAGE_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
      res.end('the web page is unavailable: it failed to build (see the appliance log); the RPC API is unaffected\n');
      return;
    }
    const body = doc === 'html' ? page.html : page.script;
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': doc === 'html' ? 'text/html; charset=utf-8' : 'text/javascript; charset=utf-8',
      'content-length': String(body.length),
    });
    if (req.method === 'HEAD') res.end();
    else res.end(body);
  };
}
