// Connect-protocol load over HTTP/1.1 with autocannon: unary POSTs of binary protobuf
// (`application/proto`). autocannon's per-request `setupRequest` hook hands out the next
// pre-stamped request from the pool (no signing in the loop), `onResponse` captures the
// appliance's error code of a failed call, and the `response` event gives sub-millisecond latency.

import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { METHOD_PATHS, type RequestPool } from '../requests.ts';
import type { RunSpec } from './protocol.ts';
import { checkResponse } from './verify.ts';
import type { MeasurementWindow } from './window.ts';

// The slice of autocannon 8's programmatic API used here (the package ships no types).
interface AcRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  setupRequest?: (req: AcRequest, context: Record<string, unknown>) => AcRequest;
  onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string | string[]>) => void;
}
interface AcOptions {
  url: string;
  connections: number;
  pipelining: number;
  /** Seconds. */
  duration: number;
  /** Seconds per request. */
  timeout: number;
  requests: AcRequest[];
}
interface AcInstance extends EventEmitter {
  stop(): void;
}
type Autocannon = (opts: AcOptions, done: (err: unknown, result: unknown) => void) => AcInstance;

function loadAutocannon(): Autocannon {
  const mod: unknown = createRequire(import.meta.url)('autocannon');
  if (typeof mod !== 'function') throw new Error('autocannon did not load as a function');
  return mod as Autocannon;
}

const CALL_TIMEOUT_S = 10;
const CONTENT_TYPE = 'application/proto';
const EMPTY = Buffer.alloc(0);

function headerValue(headers: Record<string, string | string[]>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
  return undefined;
}

/** One call outside autocannon (request 0 of the pool), with its answer checked. */
async function preflight(spec: RunSpec, pool: RequestPool): Promise<string> {
  const headers: Record<string, string> = { 'content-type': CONTENT_TYPE, 'connect-protocol-version': '1' };
  const stamp = pool.stamps[0];
  if (stamp !== undefined) headers[pool.authHeader] = stamp;
  const body = pool.bodies[0] as Buffer;
  const res = await fetch(`http://${spec.host}:${spec.port}${pool.path}`, { method: 'POST', headers, body, signal: AbortSignal.timeout(CALL_TIMEOUT_S * 1000) });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200) return `call failed: http ${res.status} ${res.headers.get('openkey-error-code') ?? ''}`.trim();
  return checkResponse(spec, body, bytes);
}

export async function runConnectLoad(spec: RunSpec, pool: RequestPool, win: MeasurementWindow): Promise<{ sent: number; preflight: string }> {
  const autocannon = loadAutocannon();
  let pre: string;
  try {
    pre = await preflight(spec, pool);
  } catch (e) {
    pre = `call failed: ${e instanceof Error ? e.message : String(e)}`;
  }
  const baseHeaders: Record<string, string> = { 'content-type': CONTENT_TYPE, 'connect-protocol-version': '1' };
  let next = 1;
  let lastErrorCode: string | undefined;
  let instance: AcInstance | undefined;

  const finished = new Promise<void>((resolve, reject) => {
    win.begin();
    instance = autocannon(
      {
        url: `http://${spec.host}:${spec.port}`,
        connections: spec.concurrency,
        pipelining: 1,
        // A backstop only: the window's own timer stops the run.
        duration: Math.ceil((spec.warmupMs + spec.durationMs) / 1000) + 30,
        timeout: CALL_TIMEOUT_S,
        requests: [
          {
            method: 'POST',
            path: pool.path,
            setupRequest: (req) => {
              const i = next++;
              if (i >= pool.size) {
                // Out of fresh stamps: close the window, and until autocannon stops send the
                // unauthenticated GetImportKey (never a replayed stamp; not counted).
                win.poolExhausted();
                return { ...req, headers: baseHeaders, path: METHOD_PATHS.getImportKey, body: EMPTY };
              }
              const stamp = pool.stamps[i];
              const headers = stamp === undefined ? baseHeaders : { ...baseHeaders, [pool.authHeader]: stamp };
              return { ...req, headers, body: pool.bodies[i % pool.bodies.length] as Buffer };
            },
            onResponse: (status, _body, _ctx, headers) => {
              lastErrorCode = status === 200 ? undefined : headerValue(headers, 'openkey-error-code');
            },
          },
        ],
      },
      (err) => (err === null || err === undefined ? resolve() : reject(err instanceof Error ? err : new Error(String(err)))),
    );
    // onResponse runs synchronously just before this event for the same response.
    instance.on('response', (_client: unknown, status: number, _bytes: number, latencyMs: number) => {
      const ok = status === 200;
      win.complete(latencyMs, ok, ok ? undefined : `http ${status}${lastErrorCode === undefined ? '' : ` ${lastErrorCode}`}`);
    });
    instance.on('reqError', (e: unknown) => {
      win.complete(0, false, `autocannon ${e instanceof Error && 'code' in e ? String(e.code) : e instanceof Error ? e.message : 'error'}`);
    });
  });
  await win.closed;
  instance?.stop();
  await finished;
  return { sent: Math.min(next, pool.size), preflight: pre };
}
