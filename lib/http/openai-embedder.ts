import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { type Context, context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import got, { type Got } from 'got';
import type { Logger } from 'pino';
import { lastValueFrom, type MonoTypeOperatorFunction } from 'rxjs';
import { linkedController } from '../core/abort.js';
import { messageOf } from '../core/errors.js';
import { fromWork } from '../core/from-work.js';
import type { Embedder } from '../embedding/embedder.js';
import {
  EmbeddingHttpError,
  InvalidEmbeddingError,
  isInvalidEmbeddingError,
  PartialEmbeddingError,
} from '../embedding/errors.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { instruments, type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import {
  type CircuitBreaker,
  type CircuitBreakerOptions,
  circuitBreaker,
  createCircuitBreaker,
} from '../operators/circuit-breaker.js';
import { policy } from '../operators/policy.js';
import { type RetryOptions, retry, retryAfterMs } from '../operators/retry.js';
import { isTimeoutError, timeout } from '../operators/timeout.js';
import { decodeEmbeddings } from './decode-embeddings.js';
import { injectTraceContext } from './trace-context.js';

/**
 * Options of {@link openAIEmbedder}.
 *
 * @example
 * ```ts
 * import type { OpenAIEmbedderOptions } from '@hartonomous/pipelines/atoms';
 *
 * const ollama: OpenAIEmbedderOptions = {
 *   baseUrl: 'http://127.0.0.1:11434/v1',
 *   model: 'nomic-embed-text',
 *   dimensions: 768,
 *   batchSize: 32,
 * };
 * ```
 */
export interface OpenAIEmbedderOptions extends TelemetryOptions {
  /**
   * The server: `/embeddings` is appended when it ends in `/v1`, else `/v1/embeddings`.
   * @default process.env.OPENAI_BASE_URL, else 'https://api.openai.com/v1'
   */
  baseUrl?: string;
  /** Model name sent in each request and stored with each atom. */
  model: string;
  /** Length of the vectors the model returns (every response is checked). */
  dimensions: number;
  /**
   * Sent as `Authorization: Bearer <key>`; never logged, never in error messages.
   * @default process.env.OPENAI_API_KEY, else no Authorization header
   */
  apiKey?: string;
  /** Also send `dimensions` in the request body (for models that can shorten vectors). @default false */
  sendDimensions?: boolean;
  /** Most inputs per HTTP request; larger batches are split. @default 64 */
  batchSize?: number;
  /**
   * HTTP requests of one `embed` call in flight at once (its texts are split into requests of
   * `batchSize`): latency overlaps instead of adding up. Results keep the input order; the
   * first failure cancels the other requests of the call.
   * @default 4
   */
  concurrency?: number;
  /** Most characters per HTTP request (summed over inputs); a longer single input goes alone. @default 100_000 */
  maxBatchChars?: number;
  /** Limit of each HTTP attempt, in ms (the request is aborted when it expires). @default 30_000 */
  timeoutMs?: number;
  /**
   * Retries of failed requests (network errors, timeouts, 408/409/425/429/5xx), honouring the
   * server's `Retry-After` (seconds or an HTTP date, capped by `maxRetryAfterMs`): a number of
   * retries, {@link RetryOptions} merged over the defaults, or `false` for none.
   * @default `{ maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 10_000 }` with Retry-After honoured
   */
  retry?: number | RetryOptions | false;
  /** Longest Retry-After honoured, in ms (longer values are cut to this). @default 60_000 */
  maxRetryAfterMs?: number;
  /**
   * A circuit breaker around each request (after retries): one shared breaker from
   * `createCircuitBreaker`, options for a new one, or `false` for none. Only transient
   * failures (network, timeout, 408/409/425/429/5xx) count.
   * @default a breaker named 'embeddings' opening after 5 consecutive failures for 10 s
   */
  breaker?: CircuitBreaker | CircuitBreakerOptions | false;
  /** Extra request headers. @default {} */
  headers?: Record<string, string>;
  /**
   * How vectors travel. `'auto'` asks for base64 float32 (compact, exact, about 3x less to
   * parse than JSON numbers) and copes on its own with servers that do not: a response with
   * JSON number arrays is read as such, and a server that rejects the field (HTTP 400/422
   * whose body names `encoding_format`) is asked again without it, after which this embedder
   * no longer sends it.
   * `'base64'` and `'float'` ask for exactly that.
   * @default 'auto'
   */
  encodingFormat?: 'auto' | 'float' | 'base64';
  /** Logs failed requests (`embed.request_failed`), without the key. @default a silent logger */
  logger?: Logger;
}

/**
 * An {@link Embedder} backed by HTTP, with a way to release its keep-alive sockets.
 *
 * @example
 * ```ts
 * import { openAIEmbedder } from '@hartonomous/pipelines/atoms';
 * const embedder = openAIEmbedder({ baseUrl: 'http://127.0.0.1:8080/v1', model: 'm', dimensions: 384 });
 * embedder.close();
 * ```
 */
export interface OpenAIEmbedder extends Embedder {
  /** The endpoint requests go to. */
  readonly url: string;
  /** The circuit breaker in use, if any. */
  readonly breaker: CircuitBreaker | undefined;
  /** Destroys the keep-alive agents (idle sockets close). The embedder still works afterwards, without reuse. */
  close(): void;
}

type VectorOrError = Float32Array | InvalidEmbeddingError;

interface EmbeddingsResponse {
  data?: { index?: number; embedding?: unknown }[];
}

/**
 * A client for any OpenAI-compatible `POST /v1/embeddings` endpoint (OpenAI, Ollama, vLLM,
 * LocalAI, TEI, ...) on got with keep-alive agents.
 *
 * Each `embed` call splits its texts into requests of at most `batchSize` inputs and
 * `maxBatchChars` characters, up to `concurrency` of them in flight at once. Each request runs as
 * `fromWork(request).pipe(timeout(timeoutMs), retry(...), circuitBreaker(breaker))`: every
 * attempt is bounded and aborted on timeout, transient failures are retried with backoff (or
 * after the server's Retry-After), and a breaker stops calling a failing server. The caller's
 * AbortSignal cancels everything (the promise rejects with `signal.reason`). Each attempt is a
 * CLIENT span, and W3C trace context (`traceparent`, `tracestate`) is injected into its headers
 * by a got `beforeRequest` hook. Every response is checked: one vector per input, else
 * {@link InvalidEmbeddingError} (not retried); each vector finite and `dimensions` long. A bad
 * vector fails only its own input: `embed` then rejects with a `PartialEmbeddingError` whose
 * `results` hold the good vectors and, for each bad input, its `InvalidEmbeddingError` (the
 * ingestion pipeline stores the good ones and fails the bad items alone).
 *
 * Errors: {@link EmbeddingHttpError} (`status`, `retryAfterMs`), `TimeoutError`,
 * `BrokenCircuitError`, {@link InvalidEmbeddingError}, `PartialEmbeddingError`. The API key appears in none of them.
 *
 * @param options - endpoint, model, dimensions, batching and resilience
 * @returns the embedder
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { openAIEmbedder } from '@hartonomous/pipelines/atoms';
 *
 * const embedder = openAIEmbedder({ model: 'text-embedding-3-small', dimensions: 1536 }); // key from OPENAI_API_KEY
 * const vectors = await embedder.embed(['hello', 'world'], AbortSignal.timeout(60_000));
 * embedder.close();
 * ```
 * @see {@link Embedder}
 */
export function openAIEmbedder(options: OpenAIEmbedderOptions): OpenAIEmbedder {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('openAIEmbedder: options are required ({ model, dimensions, ... })');
  }
  const fail = (message: string): never => {
    throw new TypeError(`openAIEmbedder: ${message}`);
  };
  const { model, dimensions } = options;
  if (typeof model !== 'string' || model.length === 0) fail('model must be a non-empty string');
  if (!Number.isInteger(dimensions) || dimensions < 1)
    fail('dimensions must be a positive integer');
  const batchSize = options.batchSize ?? 64;
  const maxBatchChars = options.maxBatchChars ?? 100_000;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  if (!Number.isInteger(batchSize) || batchSize < 1) fail('batchSize must be a positive integer');
  const concurrency = options.concurrency ?? 4;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    fail('concurrency must be a positive integer');
  }
  if (!Number.isInteger(maxBatchChars) || maxBatchChars < 1) {
    fail('maxBatchChars must be a positive integer');
  }
  if (!(timeoutMs > 0)) fail('timeoutMs must be a positive number');
  if (!(maxRetryAfterMs >= 0)) fail('maxRetryAfterMs must be a non-negative number');
  const encodingFormat = options.encodingFormat ?? 'auto';
  if (encodingFormat !== 'float' && encodingFormat !== 'base64' && encodingFormat !== 'auto') {
    fail("encodingFormat must be 'auto', 'float' or 'base64'");
  }
  // 'auto' asks for base64 until the server rejects it once
  let askFor: 'float' | 'base64' | undefined = encodingFormat === 'float' ? undefined : 'base64';
  const url = endpointOf(
    options.baseUrl ?? process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
  );
  const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY;
  if (apiKey !== undefined && typeof apiKey !== 'string') fail('apiKey must be a string');
  const redact = (text: string): string => (apiKey ? text.split(apiKey).join('[REDACTED]') : text);
  const logger = options.logger ?? silentLogger();
  const tracer = tracerOf(options);
  const inst = instruments(options);
  const endpoint = new URL(url);
  const genAiAttrs = {
    'gen_ai.operation.name': 'embeddings',
    'gen_ai.provider.name': 'openai',
    'gen_ai.request.model': model,
    'server.address': endpoint.hostname,
    'server.port': Number(endpoint.port || (endpoint.protocol === 'https:' ? 443 : 80)),
  };

  const breaker =
    options.breaker === false
      ? undefined
      : isBreaker(options.breaker)
        ? options.breaker
        : createCircuitBreaker({
            name: 'embeddings',
            strategy: { type: 'consecutive', failures: 5 },
            breakDuration: 10_000,
            handle: isTransient,
            ...(options.meter ? { meter: options.meter } : {}),
            ...options.breaker,
          });
  const retryOptions = retryOptionsOf(options.retry, maxRetryAfterMs);

  const agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets: 32 }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: 32 }),
  };
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/json',
    ...options.headers,
  };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  const client: Got = got.extend({
    agent: agents,
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    headers,
    hooks: {
      beforeRequest: [
        (o) => {
          const otel = (o.context as { otel?: Context }).otel ?? context.active();
          injectTraceContext(otel, o.headers);
        },
      ],
    },
  });

  async function requestOnce(
    inputs: readonly string[],
    offset: number,
    parent: Context,
    signal: AbortSignal,
  ): Promise<VectorOrError[]> {
    const span = tracer.startSpan(
      `embeddings ${model}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'http.request.method': 'POST',
          'url.full': url,
          'gen_ai.operation.name': 'embeddings',
          'gen_ai.request.model': model,
          'embeddings.inputs': inputs.length,
        },
      },
      parent,
    );
    const otel = trace.setSpan(parent, span);
    const started = performance.now();
    let errorType: string | undefined;
    try {
      const post = async (
        format: 'float' | 'base64' | undefined,
      ): Promise<{ statusCode: number; body: string; headers: Record<string, unknown> }> => {
        const body: Record<string, unknown> = { model, input: inputs };
        if (format !== undefined) body.encoding_format = format;
        if (options.sendDimensions) body.dimensions = dimensions;
        try {
          return await client.post(url, {
            body: JSON.stringify(body),
            responseType: 'text',
            signal,
            context: { otel },
          });
        } catch (e) {
          if (signal.aborted) throw signal.reason;
          throw new EmbeddingHttpError(0, undefined, url, redact(networkMessage(e)), {
            cause: sanitized(e, redact),
          });
        }
      };
      const asked = encodingFormat === 'float' ? 'float' : askFor;
      let response = await post(asked);
      if (
        encodingFormat === 'auto' &&
        asked === 'base64' &&
        (response.statusCode === 400 || response.statusCode === 422) &&
        /encoding/i.test(response.body)
      ) {
        // a server that does not know `encoding_format` (and says so): ask again without it
        const plain = await post(undefined);
        if (plain.statusCode >= 200 && plain.statusCode < 300) {
          askFor = undefined;
          logEvent(logger, LogEvents.embedEncodingFallback, () => ({
            url,
            model,
            status: response.statusCode,
          }));
        }
        response = plain;
      }
      span.setAttribute('http.response.status_code', response.statusCode);
      if (response.statusCode < 200 || response.statusCode >= 300) {
        const retryAfter = retryAfterMs({ response: { headers: response.headers } });
        throw new EmbeddingHttpError(
          response.statusCode,
          retryAfter,
          url,
          redact(excerpt(response.body)),
        );
      }
      return parseVectors(response.body, inputs.length, offset);
    } catch (e) {
      errorType = e instanceof Error ? e.name : '_OTHER';
      span.recordException(e instanceof Error ? e : new Error(messageOf(e)));
      span.setStatus({ code: SpanStatusCode.ERROR, message: redact(messageOf(e)) });
      throw e;
    } finally {
      span.end();
      inst.embeddingDuration.record(
        performance.now() - started,
        errorType === undefined ? genAiAttrs : { ...genAiAttrs, 'error.type': errorType },
      );
    }
  }

  function parseVectors(text: string, count: number, offset: number): VectorOrError[] {
    let parsed: EmbeddingsResponse;
    try {
      parsed = JSON.parse(text) as EmbeddingsResponse;
    } catch {
      throw new InvalidEmbeddingError(-1, 'not-a-vector', 'the response is not JSON');
    }
    const data = Array.isArray(parsed?.data) ? parsed.data : undefined;
    if (!data)
      throw new InvalidEmbeddingError(-1, 'not-a-vector', 'the response has no data array');
    const ordered = data.every((d) => Number.isInteger(d?.index))
      ? [...data].sort((a, b) => a.index! - b.index!)
      : data;
    const embeddings = ordered.map((d) => d?.embedding);
    try {
      return decodeEmbeddings(embeddings, count, dimensions);
    } catch (e) {
      if (!isInvalidEmbeddingError(e)) throw e;
      // which input a vector belongs to is unknown: the whole request fails
      if (e.index < 0) throw e;
    }
    // a bad vector fails only its own input: decode them one by one
    return embeddings.map((v, i) => {
      try {
        return decodeEmbeddings([v], 1, dimensions)[0] as Float32Array;
      } catch (e) {
        if (!isInvalidEmbeddingError(e)) throw e;
        return new InvalidEmbeddingError(i + offset, e.reason, e.message.replace(/^[^:]*: /, ''));
      }
    });
  }

  /** timeout per attempt -> retry -> breaker; aborting `signal` stops retrying at once. */
  function policyFor(signal: AbortSignal): MonoTypeOperatorFunction<VectorOrError[]> {
    const operators: MonoTypeOperatorFunction<VectorOrError[]>[] = [
      timeout<VectorOrError[]>({ ms: timeoutMs, label: `POST ${url}` }),
    ];
    if (retryOptions) operators.push(retry<VectorOrError[]>({ ...retryOptions, signal }));
    if (breaker) operators.push(circuitBreaker<VectorOrError[]>(breaker));
    return policy(...operators);
  }

  return {
    model,
    dimensions,
    maxBatchSize: batchSize,
    maxBatchChars,
    url,
    breaker,
    async embed(texts: readonly string[], signal: AbortSignal): Promise<Float32Array[]> {
      if (!Array.isArray(texts)) throw new TypeError('embed: texts must be an array');
      signal.throwIfAborted();
      const parent = context.active();
      const ranges = [...chunks(texts, batchSize, maxBatchChars)];
      const embedRange = async (
        [start, end]: [number, number],
        s: AbortSignal,
      ): Promise<VectorOrError[]> => {
        const inputs = texts.slice(start, end);
        try {
          return await lastValueFrom(
            fromWork((a) => requestOnce(inputs, start, parent, a), s).pipe(policyFor(s)),
          );
        } catch (e) {
          if (s.aborted) throw s.reason;
          logEvent(logger, LogEvents.embedRequestFailed, () => ({
            url,
            model,
            inputs: inputs.length,
            error: redact(messageOf(e)),
          }));
          throw e;
        }
      };
      const embedAll = async (): Promise<VectorOrError[]> => {
        // Up to `concurrency` requests at once, results in input order. Hand-written (a dozen
        // lines) rather than p-map: the first failure must abort the requests still in flight
        // through their own signal, and the caller's abort must win over their errors.
        const { controller, dispose } = linkedController(signal);
        const results = new Array<VectorOrError[]>(ranges.length);
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < ranges.length) {
            const k = next++;
            results[k] = await embedRange(ranges[k]!, controller.signal);
          }
        };
        try {
          await Promise.all(
            Array.from({ length: Math.min(concurrency, ranges.length) }, () =>
              worker().catch((e: unknown) => {
                if (!controller.signal.aborted) controller.abort(e);
                throw e;
              }),
            ),
          );
        } catch (e) {
          if (signal.aborted) throw signal.reason;
          // the first failure, not the aborts it caused
          throw controller.signal.reason ?? e;
        } finally {
          dispose();
        }
        return results.flat();
      };
      const out: VectorOrError[] =
        ranges.length === 1 ? await embedRange(ranges[0]!, signal) : await embedAll();
      const bad = out.reduce((n, v) => (v instanceof Float32Array ? n : n + 1), 0);
      if (bad > 0) {
        logEvent(logger, LogEvents.embedVectorsRejected, () => ({
          url,
          model,
          inputs: texts.length,
          rejected: bad,
        }));
        throw new PartialEmbeddingError(out);
      }
      return out as Float32Array[];
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

function isBreaker(b: unknown): b is CircuitBreaker {
  return typeof b === 'object' && b !== null && typeof (b as CircuitBreaker).admit === 'function';
}

/** Network errors, timeouts and 408/409/425/429/5xx: worth retrying and counting in a breaker. */
function isTransient(e: unknown): boolean {
  if (isTimeoutError(e)) return true;
  return e instanceof EmbeddingHttpError && e.retryable;
}

function retryOptionsOf(
  option: number | RetryOptions | false | undefined,
  maxRetryAfterMs: number,
): RetryOptions | undefined {
  if (option === false || option === 0) return undefined;
  const defaults: RetryOptions = {
    name: 'embeddings',
    maxAttempts: 4,
    baseDelayMs: 200,
    maxDelayMs: 10_000,
    handle: isTransient,
    delay: ({ error }) => {
      const after = retryAfterMs(error);
      return after === undefined ? undefined : Math.min(after, maxRetryAfterMs);
    },
  };
  if (option === undefined) return defaults;
  if (typeof option === 'number') {
    if (!Number.isInteger(option) || option < 0) {
      throw new TypeError('openAIEmbedder: retry must be a non-negative integer, options or false');
    }
    return { ...defaults, maxAttempts: option + 1 };
  }
  return { ...defaults, ...option };
}

/** Splits `[0, n)` into ranges of at most `size` items and `chars` characters (one item at least). */
function* chunks(
  texts: readonly string[],
  size: number,
  chars: number,
): Generator<[number, number]> {
  let start = 0;
  let total = 0;
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    if (typeof text !== 'string') throw new TypeError(`embed: input ${i} is not a string`);
    const length = text.length;
    if (i > start && (i - start >= size || total + length > chars)) {
      yield [start, i];
      start = i;
      total = 0;
    }
    total += length;
  }
  if (texts.length > start) yield [start, texts.length];
}

function endpointOf(baseUrl: string): string {
  let parsed: URL;
  try {
    parsed = new URL(baseUrl);
  } catch {
    throw new TypeError(`openAIEmbedder: baseUrl is not a URL: ${String(baseUrl)}`);
  }
  if (parsed.username || parsed.password) {
    throw new TypeError('openAIEmbedder: put credentials in apiKey or headers, not in baseUrl');
  }
  const base = parsed.toString().replace(/\/+$/, '');
  return /\/v1$/.test(base) ? `${base}/embeddings` : `${base}/v1/embeddings`;
}

function excerpt(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 300)}...` : text || '(empty body)';
}

function networkMessage(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? `${code}: ${messageOf(e)}` : messageOf(e);
}

/** A plain Error with the same name, code and (redacted) message, without got's options (which hold the headers). */
function sanitized(e: unknown, redact: (s: string) => string): Error {
  const out = new Error(redact(messageOf(e)));
  if (e instanceof Error) out.name = e.name;
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  if (typeof code === 'string') (out as Error & { code?: string }).code = code;
  return out;
}
