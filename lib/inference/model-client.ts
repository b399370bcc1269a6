import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  type Context,
  context as otelContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import got, { type Got } from 'got';
import { messageOf } from '../core/errors.js';
import { injectTraceContext } from '../http/trace-context.js';
import { type TelemetryOptions, tracerOf } from '../observability/telemetry.js';
import { PermanentError, retryAfterMs } from '../operators/retry.js';
import { InvalidAnswerError, ModelHttpError } from './errors.js';
import { jsonProtocol } from './json-protocol.js';
import type { EnsembleRequest, ModelAnswer, ResolvedModel } from './types.js';

/**
 * One call of one model for one request, as adapters see it.
 *
 * @example
 * ```ts
 * import type { ModelCall } from '@hartonomous/pipelines/inference';
 * const prompt = (call: ModelCall) => `Classify: ${String(call.request.input)}`;
 * ```
 */
export interface ModelCall {
  /** The model. */
  readonly model: ResolvedModel;
  /** The request. */
  readonly request: EnsembleRequest;
  /** The request's id. */
  readonly requestId: string;
  /** The request's correlation id. */
  readonly correlationId: string;
}

/**
 * The HTTP request an adapter asks for.
 *
 * @example
 * ```ts
 * import type { ModelHttpRequest } from '@hartonomous/pipelines/inference';
 * const req: ModelHttpRequest = { json: { input: 'hi' }, headers: { 'x-api-version': '2' } };
 * ```
 */
export interface ModelHttpRequest {
  /** Where to send it. @default the model's endpoint */
  readonly url?: string;
  /** HTTP method. @default 'POST' */
  readonly method?: 'POST' | 'PUT' | 'GET';
  /** Extra headers (trace context and ids are added by the client). @default {} */
  readonly headers?: Readonly<Record<string, string>>;
  /** The JSON body. @default none */
  readonly json?: unknown;
}

/**
 * The mapping hook between the ensemble and a model's HTTP API: how to build the request and
 * how to read the answer out of the response. The library's own protocol is
 * {@link jsonProtocol} (kind `'json'`); {@link openAIChat} maps an OpenAI-compatible chat
 * completions endpoint; write your own for anything else and register it under a `kind`.
 *
 * @example
 * ```ts
 * import { ensemble, InvalidAnswerError, type ModelAdapter } from '@hartonomous/pipelines/inference';
 *
 * // a classifier answering { "labels": [{ "label": "spam", "score": 0.97 }, ...] }
 * const classifier: ModelAdapter = {
 *   request: (call) => ({ json: { text: String(call.request.input) } }),
 *   response: (body, call) => {
 *     const top = (body as { labels?: { label: string; score: number }[] }).labels?.[0];
 *     if (!top) throw new InvalidAnswerError(call.model.name, 'no labels');
 *     return { answer: top.label, confidence: top.score };
 *   },
 * };
 * const spam = ensemble({ models, adapters: { classifier } });
 * ```
 */
export interface ModelAdapter {
  /**
   * Builds the HTTP request.
   * @param call - the model and the request
   * @returns what to send
   */
  request(call: ModelCall): ModelHttpRequest;
  /**
   * Reads the answer from a 2xx response. Throw (ideally an {@link InvalidAnswerError}) when
   * the body is not a valid answer; it is not retried.
   * @param body - the parsed JSON body (the raw text when it is not JSON)
   * @param call - the model and the request
   * @returns the answer
   */
  response(body: unknown, call: ModelCall): ModelAnswer;
}

/**
 * Options of {@link modelClient}.
 *
 * @example
 * ```ts
 * import { jsonProtocol, type ModelClientOptions, openAIChat } from '@hartonomous/pipelines/inference';
 * const options: ModelClientOptions = {
 *   adapters: { json: jsonProtocol, 'openai-chat': openAIChat({ labels: ['positive', 'negative'] }) },
 *   maxSockets: 64,
 * };
 * ```
 */
export interface ModelClientOptions extends TelemetryOptions {
  /** Adapters by model `kind`. `'json'` is always available. @default { json: jsonProtocol } */
  adapters?: Readonly<Record<string, ModelAdapter>>;
  /** Headers sent with every request. @default {} */
  headers?: Readonly<Record<string, string>>;
  /** Keep-alive sockets per host. @default 64 */
  maxSockets?: number;
}

/**
 * An HTTP client for model endpoints.
 *
 * @example
 * ```ts
 * import { modelClient, resolveModel } from '@hartonomous/pipelines/inference';
 *
 * const client = modelClient();
 * const model = resolveModel({ name: 'a', endpoint: 'http://127.0.0.1:8001/predict' });
 * const { answer } = await client.invoke(
 *   { model, request: { input: 'hi' }, requestId: 'r1', correlationId: 'r1' },
 *   AbortSignal.timeout(1_000),
 * );
 * client.close();
 * ```
 */
export interface ModelClient {
  /**
   * One HTTP attempt (no retry: the ensemble applies timeout, retry and breaker around it).
   * Rejects with the signal's reason when aborted, a {@link ModelHttpError} for an error
   * status or a network failure (wrapped in a `PermanentError` when retrying cannot help), or
   * a `PermanentError` wrapping an {@link InvalidAnswerError}.
   * @param call - the model and the request
   * @param signal - aborts the HTTP request
   * @param otel - parent context of the CLIENT span (trace context goes into the headers)
   * @returns the model's answer
   */
  invoke(call: ModelCall, signal: AbortSignal, otel?: Context): Promise<ModelAnswer>;
  /** Destroys the keep-alive agents. The client still works afterwards, without reuse. */
  close(): void;
}

/**
 * A got 14 client for model endpoints: keep-alive agents, the caller's AbortSignal passed to
 * got, W3C trace context (`traceparent`, `tracestate`) injected into the headers of every
 * request (through the registered propagator, else written from the active span), a CLIENT
 * span per attempt, and the request/response mapping of the model's `kind` adapter.
 * Every request also carries `x-request-id` and `x-correlation-id`.
 *
 * @param options - adapters, headers, sockets, tracer
 * @returns the client
 * @throws TypeError when an adapter is malformed
 *
 * @example
 * ```ts
 * import { ensemble, modelClient, openAIChat } from '@hartonomous/pipelines/inference';
 *
 * const client = modelClient({ adapters: { 'openai-chat': openAIChat({ labels: ['yes', 'no'] }) } });
 * const e = ensemble({ models, client });
 * ```
 * @see {@link jsonProtocol} for the protocol of kind `'json'`
 */
export function modelClient(options: ModelClientOptions = {}): ModelClient {
  const adapters: Record<string, ModelAdapter> = { json: jsonProtocol, ...options.adapters };
  for (const [kind, a] of Object.entries(adapters)) {
    if (typeof a?.request !== 'function' || typeof a?.response !== 'function') {
      throw new TypeError(`modelClient: adapter '${kind}' needs request() and response()`);
    }
  }
  const maxSockets = options.maxSockets ?? 64;
  if (!Number.isInteger(maxSockets) || maxSockets < 1) {
    throw new TypeError(`modelClient: maxSockets must be a positive integer, got ${maxSockets}`);
  }
  const tracer = tracerOf(options);
  const agents = {
    http: new HttpAgent({ keepAlive: true, maxSockets }),
    https: new HttpsAgent({ keepAlive: true, maxSockets }),
  };
  const http: Got = got.extend({
    agent: agents,
    retry: { limit: 0 },
    throwHttpErrors: false,
    followRedirect: false,
    responseType: 'text',
    headers: { accept: 'application/json', ...options.headers },
  });

  return {
    async invoke(call, signal, parent = otelContext.active()) {
      const adapter = adapters[call.model.kind];
      if (!adapter) {
        throw new PermanentError(
          new TypeError(`no adapter for kind '${call.model.kind}' (model '${call.model.name}')`),
        );
      }
      const spec = adapter.request(call);
      const url = spec.url ?? call.model.endpoint;
      const method = spec.method ?? 'POST';
      const span = tracer.startSpan(
        `model ${call.model.name}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'http.request.method': method,
            'url.full': url,
            'inference.model': call.model.name,
            'inference.request_id': call.requestId,
          },
        },
        parent,
      );
      const ctx = trace.setSpan(parent, span);
      const headers: Record<string, string> = {
        ...spec.headers,
        'x-request-id': call.requestId,
        'x-correlation-id': call.correlationId,
      };
      injectTraceContext(ctx, headers);
      try {
        let response: { statusCode: number; body: string; headers: Record<string, unknown> };
        try {
          response = await http(url, {
            method,
            headers,
            ...(spec.json === undefined ? {} : { json: spec.json }),
            signal,
          });
        } catch (e) {
          if (signal.aborted) throw signal.reason;
          throw new ModelHttpError(call.model.name, 0, url, messageOf(e), undefined, { cause: e });
        }
        span.setAttribute('http.response.status_code', response.statusCode);
        if (response.statusCode < 200 || response.statusCode >= 300) {
          const error = new ModelHttpError(
            call.model.name,
            response.statusCode,
            url,
            excerpt(response.body),
            retryAfterMs({ response: { headers: response.headers } }),
          );
          throw error.retryable ? error : new PermanentError(error);
        }
        let body: unknown = response.body;
        try {
          body = JSON.parse(response.body);
        } catch {
          // not JSON: the adapter gets the text
        }
        try {
          return adapter.response(body, call);
        } catch (e) {
          throw new PermanentError(
            e instanceof InvalidAnswerError
              ? e
              : new InvalidAnswerError(call.model.name, messageOf(e)),
          );
        }
      } catch (e) {
        span.recordException(e instanceof Error ? e : new Error(messageOf(e)));
        span.setStatus({ code: SpanStatusCode.ERROR, message: messageOf(e) });
        throw e;
      } finally {
        span.end();
      }
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}

function excerpt(body: string): string {
  const text = body.replace(/\s+/g, ' ').trim();
  return text.length > 200 ? `${text.slice(0, 200)}...` : text || '(empty body)';
}
