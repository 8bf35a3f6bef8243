// The dstack guest-agent HTTP wire protocol (reference §1.1): HTTP/1.1, JSON bodies, POST (or GET
// with query parameters), bytes as hex, errors as HTTP 4xx/500 with {"error": "..."}. Owns request
// bounds (body, URL, headers, time), routing, and the response encoding the SDK can read: always a
// Content-Length, and ASCII-only JSON (the SDK's unix-socket client compares byte and char counts).

import * as http from 'node:http';
import * as net from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { isOpenKeyError, OpenKeyError } from '../core/errors.ts';

/** A JSON object taken from the request body or query string, not yet checked beyond "is an object". */
export type RpcParams = Readonly<Record<string, unknown>>;

/** One RPC: takes checked-to-be-an-object params, returns a JSON-serialisable object or throws. */
export type RpcHandler = (params: RpcParams) => object | Promise<object>;

export interface WireLimits {
  /** Request body bound in bytes. */
  readonly maxBodyBytes: number;
  /** Request-target bound in characters. */
  readonly maxUrlLength: number;
}

export const DEFAULT_WIRE_LIMITS: WireLimits = { maxBodyBytes: 64 * 1024, maxUrlLength: 4096 };

/** An HTTP-level refusal with a stable, non-secret message. */
class WireError extends Error {
  constructor(
    readonly status: number,
    readonly publicMessage: string,
  ) {
    super(publicMessage);
  }
}

/** JSON with every non-ASCII code unit escaped, so byte length == string length. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function send(res: http.ServerResponse, status: number, body: object): void {
  const text = asciiJson(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && !(Number(declared) <= max)) {
      reject(new WireError(400, 'request body too large'));
      return;
    }
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      n += chunk.length;
      if (n > max) {
        done = true;
        reject(new WireError(400, 'request body too large'));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks));
    });
    req.on('error', (e) => {
      if (done) return;
      done = true;
      reject(e);
    });
  });
}

function paramsFromJson(body: Buffer): RpcParams {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new WireError(400, 'invalid JSON body');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new WireError(400, 'JSON body must be an object');
  return { ...parsed };
}

function paramsFromQuery(url: URL): RpcParams {
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) out[k] = v;
  return out;
}

/**
 * Request listener for a route table `{ "/GetKey": handler, … }`. OpenKeyErrors thrown by handlers
 * become 400 (the request was at fault) or 500 (TEE_UNAVAILABLE/INTERNAL, message withheld);
 * anything else becomes 500 "internal error". The process never dies on a request.
 */
export function createRpcListener(routes: ReadonlyMap<string, RpcHandler>, limits: WireLimits): http.RequestListener {
  return (req, res) => {
    void (async () => {
      try {
        const target = req.url ?? '/';
        if (target.length > limits.maxUrlLength) throw new WireError(414, 'request target too long');
        const url = new URL(target, 'http://localhost');
        const handler = routes.get(url.pathname);
        if (handler === undefined) throw new WireError(404, 'method not found');
        let params: RpcParams;
        if (req.method === 'POST') {
          // An oversized body is refused without buffering it; Node discards the rest of it after
          // the response, so the client still reads our answer instead of a connection reset.
          params = paramsFromJson(await readBody(req, limits.maxBodyBytes));
        } else if (req.method === 'GET') {
          params = paramsFromQuery(url);
        } else {
          throw new WireError(405, 'method not allowed');
        }
        send(res, 200, await handler(params));
      } catch (e) {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (e instanceof WireError) {
          send(res, e.status, { error: e.publicMessage });
        } else if (isOpenKeyError(e) && e.code !== 'INTERNAL' && e.code !== 'TEE_UNAVAILABLE') {
          send(res, 400, { error: e.message });
        } else {
          send(res, 500, { error: 'internal error' });
        }
      }
    })();
  };
}

/** Creates an HTTP server with bounded headers, request time and connections. */
export function createRpcServer(listener: http.RequestListener): http.Server {
  const server = http.createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 15_000, headersTimeout: 10_000 }, listener);
  server.maxConnections = 512;
  server.keepAliveTimeout = 5_000;
  return server;
}

/**
 * Makes `path` free for a unix socket listener: removes a stale socket file (nobody accepts on it),
 * refuses to touch a live socket or any non-socket file.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if (e instanceof Error && 'code' in e && e.code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) throw new OpenKeyError('INTERNAL', `socket path exists and is not a socket: ${path}`);
  const live = await new Promise<boolean>((resolve) => {
    const c = net.createConnection({ path });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new OpenKeyError('INTERNAL', `socket already in use: ${path}`);
  await unlink(path);
}

export function listen(server: http.Server, target: { path: string } | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(target, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((e) => (e ? reject(e) : resolve()));
    server.closeAllConnections();
  });
}
