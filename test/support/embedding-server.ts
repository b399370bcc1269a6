/**
 * A local OpenAI-compatible embeddings server for tests: `POST /v1/embeddings` on 127.0.0.1
 * (port 0), answering with deterministic vectors (the local feature-hashing embedder of the
 * input), with configurable latency and scripted faults (HTTP errors with Retry-After, wrong
 * dimensions, NaN values, stalls), recording every request.
 */

import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { embedOne } from '../../lib/atoms/local-embedder.js';

/** A scripted answer for the next request. */
export type EmbeddingFault =
  /** An HTTP error, optionally with a Retry-After header (seconds or an HTTP date). */
  | {
      readonly type: 'status';
      readonly status: number;
      readonly retryAfter?: string;
      readonly body?: string;
    }
  /** Vectors one dimension short. */
  | { readonly type: 'wrong-dimensions' }
  /** The first vector holds a NaN (sent as JSON `null`). */
  | { readonly type: 'nan' }
  /** One vector too few. */
  | { readonly type: 'missing-vector' }
  /** Answer only after `ms` (or never, until the client gives up, when omitted). */
  | { readonly type: 'stall'; readonly ms?: number };

/** One request the server received. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: {
    model?: string;
    input?: string[] | string;
    encoding_format?: string;
    dimensions?: number;
  };
  /** The inputs as an array. */
  readonly inputs: readonly string[];
  /** What the server answered: a status code. */
  status?: number;
}

/** Options of {@link startEmbeddingServer}. */
export interface EmbeddingServerOptions {
  /** Dimensions of the vectors served. @default 8 */
  dimensions?: number;
  /** Delay before every answer, in ms. @default 0 */
  latencyMs?: number;
  /**
   * Per input, a bad vector to answer instead of the good one: `'short'` (one dimension
   * short), `'nan'` (a NaN, sent as JSON `null`), `'huge'` (1e39, which is Infinity as
   * float32). @default none
   */
  badVectorFor?: (text: string) => BadVector | undefined;
  /**
   * What the server does with `encoding_format`: `'honour'` it (base64 or floats), `'ignore'`
   * it (always JSON floats, as some servers do), or `'reject'` any request that carries it
   * (HTTP 400, as a strict server that does not know the field would).
   * @default 'honour'
   */
  encodingFormat?: 'honour' | 'ignore' | 'reject';
}

/** A bad vector the server can answer for one input (see `badVectorFor`). */
export type BadVector = 'short' | 'nan' | 'huge';

/** A running test server. */
export interface EmbeddingServer {
  /** Base URL ending in `/v1`. */
  readonly baseUrl: string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  /** Dimensions served. */
  readonly dimensions: number;
  /** Delay before every answer, in ms (mutable). */
  latencyMs: number;
  /** Most requests that were in flight (received, not yet answered) at one time. */
  readonly maxInFlight: number;
  /** Requests in flight now (a client that gives up closes its request). */
  readonly inFlight: number;
  /** Scripts the answers of the next requests, in order. */
  enqueue(...faults: EmbeddingFault[]): void;
  /** The vector the server returns for `text` (without faults). */
  vectorOf(text: string): Float32Array;
  /** Stops the server (and drops open connections). Idempotent. */
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 with an OS-assigned port. */
export async function startEmbeddingServer(
  options: EmbeddingServerOptions = {},
): Promise<EmbeddingServer> {
  const dimensions = options.dimensions ?? 8;
  const faults: EmbeddingFault[] = [];
  const requests: RecordedRequest[] = [];
  const pending = new Set<NodeJS.Timeout>();
  const state = { latencyMs: options.latencyMs ?? 0, inFlight: 0, maxInFlight: 0 };

  const later = (ms: number, fn: () => void): void => {
    const timer = setTimeout(() => {
      pending.delete(timer);
      fn();
    }, ms);
    pending.add(timer);
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: RecordedRequest['body'] = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RecordedRequest['body'];
      } catch {
        body = {};
      }
      const inputs = Array.isArray(body.input)
        ? body.input
        : body.input === undefined
          ? []
          : [body.input];
      const record: RecordedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        inputs,
      };
      requests.push(record);
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      res.once('close', () => {
        state.inFlight--;
      });
      const fault = faults.shift();
      const reply = (
        status: number,
        payload: unknown,
        headers: Record<string, string> = {},
      ): void => {
        record.status = status;
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(typeof payload === 'string' ? payload : JSON.stringify(payload));
      };
      const answer = (): void => {
        if (req.method !== 'POST' || req.url !== '/v1/embeddings') {
          reply(404, { error: { message: 'not found' } });
          return;
        }
        if (options.encodingFormat === 'reject' && body.encoding_format !== undefined) {
          reply(400, { error: { message: 'unknown field: encoding_format' } });
          return;
        }
        if (fault?.type === 'status') {
          reply(
            fault.status,
            fault.body ?? { error: { message: `scripted ${fault.status}` } },
            fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter },
          );
          return;
        }
        let vectors = inputs.map((text) => {
          const v = Array.from(embedOne(text, dimensions)) as (number | null)[];
          const bad = options.badVectorFor?.(text);
          if (bad === 'short') v.pop();
          else if (bad === 'nan') v[0] = null;
          else if (bad === 'huge') v[0] = 1e39;
          return v;
        });
        if (fault?.type === 'wrong-dimensions') vectors = vectors.map((v) => v.slice(1));
        if (fault?.type === 'nan' && vectors[0]) vectors[0][0] = null;
        if (fault?.type === 'missing-vector') vectors = vectors.slice(1);
        const base64 = body.encoding_format === 'base64' && options.encodingFormat !== 'ignore';
        reply(200, {
          object: 'list',
          model: body.model,
          data: vectors
            .map((v, index) => ({
              object: 'embedding',
              index,
              embedding: base64
                ? Buffer.from(
                    new Float32Array(v.map((x) => (x === null ? Number.NaN : x))).buffer,
                  ).toString('base64')
                : v,
            }))
            .reverse(), // out of order on purpose: clients must sort by index
          usage: { prompt_tokens: 0, total_tokens: 0 },
        });
      };
      const delay = fault?.type === 'stall' ? fault.ms : state.latencyMs;
      if (delay === undefined) return; // stall until the client goes away
      if (delay > 0) later(delay, answer);
      else answer();
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    dimensions,
    get maxInFlight() {
      return state.maxInFlight;
    },
    get inFlight() {
      return state.inFlight;
    },
    get latencyMs() {
      return state.latencyMs;
    },
    set latencyMs(ms: number) {
      state.latencyMs = ms;
    },
    enqueue: (...more) => {
      faults.push(...more);
    },
    vectorOf: (text) => embedOne(text, dimensions),
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const timer of pending) clearTimeout(timer);
        pending.clear();
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      });
      return closing;
    },
  };
}
