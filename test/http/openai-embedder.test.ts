import { getEventListeners } from 'node:events';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import test from 'ava';
import { pino } from 'pino';
import {
  type EmbeddingHttpError,
  type InvalidEmbeddingError,
  isEmbeddingHttpError,
  isInvalidEmbeddingError,
} from '../../lib/atoms/errors.js';
import {
  isPartialEmbeddingError,
  type PartialEmbeddingError,
} from '../../lib/atoms/item-errors.js';
import { type OpenAIEmbedderOptions, openAIEmbedder } from '../../lib/http/openai-embedder.js';
import { isBrokenCircuitError } from '../../lib/operators/circuit-breaker.js';
import type { RetryEvent } from '../../lib/operators/retry.js';
import { isTimeoutError } from '../../lib/operators/timeout.js';
import { type EmbeddingServer, startEmbeddingServer } from '../support/embedding-server.js';

const API_KEY = 'sk-test-9f8e7d6c5b4a-secret';
const signal = () => AbortSignal.timeout(20_000);

/** A server and an embedder on it, closed after the test. */
async function setup(
  t: import('ava').ExecutionContext,
  options: Partial<OpenAIEmbedderOptions> = {},
  dimensions = 8,
): Promise<{ server: EmbeddingServer; embedder: ReturnType<typeof openAIEmbedder> }> {
  const server = await startEmbeddingServer({ dimensions });
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl,
    model: 'test-embed',
    dimensions,
    apiKey: API_KEY,
    retry: { baseDelayMs: 10, maxDelayMs: 50 },
    ...options,
  });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  return { server, embedder };
}

test('embeds in order (the server answers out of order) with the right model and auth', async (t) => {
  const { server, embedder } = await setup(t);
  const texts = ['alpha', 'beta', 'gamma'];
  const vectors = await embedder.embed(texts, signal());
  t.deepEqual(
    vectors.map((v) => Array.from(v)),
    texts.map((x) => Array.from(server.vectorOf(x))),
  );
  t.is(server.requests.length, 1);
  const [req] = server.requests;
  t.is(req?.method, 'POST');
  t.is(req?.path, '/v1/embeddings');
  t.is(req?.headers.authorization, `Bearer ${API_KEY}`);
  t.is(req?.body.model, 'test-embed');
  t.deepEqual(req?.inputs, texts);
  t.is(req?.body.dimensions, undefined);
  t.is(embedder.model, 'test-embed');
  t.is(embedder.maxBatchSize, 64);
});

test('base64 encoding and a base URL without /v1 work too', async (t) => {
  const server = await startEmbeddingServer({ dimensions: 4 });
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl.replace(/\/v1$/, ''),
    model: 'm',
    dimensions: 4,
    encodingFormat: 'base64',
    sendDimensions: true,
  });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  const [v] = await embedder.embed(['hello'], signal());
  t.deepEqual(Array.from(v!), Array.from(server.vectorOf('hello')));
  t.is(server.requests[0]?.body.encoding_format, 'base64');
  t.is(server.requests[0]?.body.dimensions, 4);
  t.is(server.requests[0]?.path, '/v1/embeddings');
});

test('splits batches by count', async (t) => {
  const { server, embedder } = await setup(t, { batchSize: 3 });
  const texts = Array.from({ length: 10 }, (_, i) => `text ${i}`);
  const vectors = await embedder.embed(texts, signal());
  t.is(vectors.length, 10);
  t.deepEqual(
    server.requests.map((r) => r.inputs.length),
    [3, 3, 3, 1],
  );
  t.deepEqual(
    server.requests.flatMap((r) => r.inputs),
    texts,
  );
  t.deepEqual(Array.from(vectors[9]!), Array.from(server.vectorOf('text 9')));
});

test('splits batches by size; an input longer than the limit goes alone', async (t) => {
  const { server, embedder } = await setup(t, { maxBatchChars: 10 });
  const texts = ['aaaa', 'bbbb', 'cccc', 'x'.repeat(25), 'dd', 'ee'];
  await embedder.embed(texts, signal());
  t.deepEqual(
    server.requests.map((r) => r.inputs),
    [['aaaa', 'bbbb'], ['cccc'], ['x'.repeat(25)], ['dd', 'ee']],
  );
});

test('retries 429 honouring Retry-After in seconds', async (t) => {
  const events: RetryEvent[] = [];
  const { server, embedder } = await setup(t, {
    retry: { baseDelayMs: 10, onEvent: (e) => events.push(e) },
  });
  server.enqueue({ type: 'status', status: 429, retryAfter: '1' });
  const vectors = await embedder.embed(['x'], signal());
  t.is(vectors.length, 1);
  t.deepEqual(
    server.requests.map((r) => r.status),
    [429, 200],
  );
  const scheduled = events.filter((e) => e.type === 'scheduled');
  t.is(scheduled.length, 1);
  t.is(scheduled[0]?.type === 'scheduled' ? scheduled[0].delayMs : -1, 1_000);
});

test('retries 503 honouring Retry-After as an HTTP date', async (t) => {
  const events: RetryEvent[] = [];
  const { server, embedder } = await setup(t, {
    retry: { baseDelayMs: 10, onEvent: (e) => events.push(e) },
  });
  // 5 s ahead (whole seconds: 4-5 s), so even a request delayed by seconds on a loaded machine
  // gets its 503 well before that date
  const at = new Date(Date.now() + 5_000).toUTCString();
  server.enqueue({ type: 'status', status: 503, retryAfter: at });
  await embedder.embed(['x'], signal());
  t.is(server.requests.length, 2);
  const first = events[0];
  t.is(first?.type, 'scheduled');
  const delay = first?.type === 'scheduled' ? first.delayMs : -1;
  // An HTTP date has whole seconds: the wait is what is left until then (at most 5 s), far
  // above the 10 ms backoff the policy would have used.
  t.true(delay > 100 && delay <= 5_000, String(delay));
});

test('gives up after the attempts with EmbeddingHttpError{status, retryAfterMs}', async (t) => {
  const { server, embedder } = await setup(t, { retry: 2 });
  server.enqueue(
    { type: 'status', status: 503, retryAfter: '0' },
    { type: 'status', status: 503, retryAfter: '0' },
    { type: 'status', status: 503, retryAfter: '0' },
  );
  const e = await t.throwsAsync<EmbeddingHttpError>(embedder.embed(['x'], signal()));
  t.true(isEmbeddingHttpError(e));
  t.is(e?.status, 503);
  t.is(e?.retryAfterMs, 0);
  t.is(server.requests.length, 3);
});

test('does not retry a 400', async (t) => {
  const { server, embedder } = await setup(t);
  server.enqueue({ type: 'status', status: 400, body: '{"error":{"message":"bad input"}}' });
  const e = await t.throwsAsync<EmbeddingHttpError>(embedder.embed(['x'], signal()));
  t.is(e?.status, 400);
  t.regex(e?.message ?? '', /bad input/);
  t.false(e?.retryable);
  t.is(server.requests.length, 1);
});

test('a request slower than timeoutMs is aborted with TimeoutError, then retried', async (t) => {
  const { server, embedder } = await setup(t, { timeoutMs: 300, retry: false });
  server.enqueue({ type: 'stall' });
  const e = await t.throwsAsync(embedder.embed(['x'], signal()));
  t.true(isTimeoutError(e), String(e));
  // no retry (on a loaded machine the timeout can even end the request before it arrived)
  t.true(server.requests.length <= 1, String(server.requests.length));

  // the retry must answer within the timeout: generous, so a loaded machine cannot fail it
  const { server: s2, embedder: e2 } = await setup(t, { timeoutMs: 5_000, retry: 1 });
  s2.enqueue({ type: 'stall' });
  const vectors = await e2.embed(['y'], signal());
  t.deepEqual(Array.from(vectors[0]!), Array.from(s2.vectorOf('y')));
  t.is(s2.requests.length, 2);
});

test('the circuit breaker opens after consecutive failures and then rejects without calling', async (t) => {
  const { server, embedder } = await setup(t, {
    retry: false,
    breaker: { strategy: { type: 'consecutive', failures: 2 }, breakDuration: 60_000 },
  });
  server.enqueue({ type: 'status', status: 503 }, { type: 'status', status: 503 });
  t.true(isEmbeddingHttpError(await t.throwsAsync(embedder.embed(['a'], signal()))));
  t.true(isEmbeddingHttpError(await t.throwsAsync(embedder.embed(['b'], signal()))));
  t.is(embedder.breaker?.state, 'open');
  const e = await t.throwsAsync(embedder.embed(['c'], signal()));
  t.true(isBrokenCircuitError(e), String(e));
  t.is(server.requests.length, 2, 'the open breaker did not call the server');
  // A 400 is the server answering: it does not count as a breaker failure.
  embedder.breaker?.reset();
  server.enqueue({ type: 'status', status: 400 }, { type: 'status', status: 400 });
  await t.throwsAsync(embedder.embed(['d'], signal()));
  await t.throwsAsync(embedder.embed(['e'], signal()));
  t.is(embedder.breaker?.state, 'closed');
});

test('a bad vector fails only its own input (PartialEmbeddingError), a wrong count the request; not retried', async (t) => {
  const { server: s, embedder: e } = await setup(t, { batchSize: 2 });
  s.enqueue({ type: 'wrong-dimensions' });
  let err = await t.throwsAsync<PartialEmbeddingError>(e.embed(['a', 'b'], signal()));
  t.true(isPartialEmbeddingError(err));
  t.is(err?.failed, 2);
  t.deepEqual(
    err?.results.map((r) => (isInvalidEmbeddingError(r) ? [r.reason, r.index] : 'ok')),
    [
      ['dimensions', 0],
      ['dimensions', 1],
    ],
  );
  t.is(s.requests.length, 1);
  s.enqueue({ type: 'nan' });
  err = await t.throwsAsync<PartialEmbeddingError>(e.embed(['a', 'b'], signal()));
  t.is(err?.failed, 1);
  const [first, second] = err?.results ?? [];
  t.true(isInvalidEmbeddingError(first));
  t.is((first as InvalidEmbeddingError).reason, 'not-finite');
  t.is((first as InvalidEmbeddingError).index, 0);
  t.deepEqual(second, s.vectorOf('b'), 'the good input keeps its vector');
  s.enqueue({ type: 'missing-vector' });
  const count = await t.throwsAsync<InvalidEmbeddingError>(e.embed(['a', 'b'], signal()));
  t.true(isInvalidEmbeddingError(count));
  t.is(count?.reason, 'count');
  t.is(s.requests.length, 3, 'none of them was retried');
});

test('indexes of bad vectors count from the start of the whole batch; other requests still answer', async (t) => {
  const { server, embedder } = await setup(t, { batchSize: 2 });
  // First request fine, second has a NaN in its first vector.
  server.enqueue({ type: 'stall', ms: 0 }, { type: 'nan' });
  const err = await t.throwsAsync<PartialEmbeddingError>(embedder.embed(['a', 'b', 'c'], signal()));
  t.is(err?.failed, 1);
  const bad = err?.results[2] as InvalidEmbeddingError;
  t.is(bad.reason, 'not-finite');
  t.is(bad.index, 2);
  t.deepEqual(err?.results.slice(0, 2), [server.vectorOf('a'), server.vectorOf('b')]);
  t.is(server.requests.length, 2);
});

test('a server answering bad vectors for some inputs: exactly those inputs fail', async (t) => {
  const server = await startEmbeddingServer({
    badVectorFor: (text) =>
      text.startsWith('short')
        ? 'short'
        : text.startsWith('nan')
          ? 'nan'
          : text.startsWith('huge')
            ? 'huge'
            : undefined,
  });
  t.teardown(() => server.close());
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl,
    model: 'm',
    dimensions: server.dimensions,
    batchSize: 3,
    retry: false,
    breaker: false,
  });
  t.teardown(() => embedder.close());
  const texts = ['ok 1', 'short 1', 'ok 2', 'nan 1', 'huge 1', 'ok 3', 'ok 4'];
  const err = await t.throwsAsync<PartialEmbeddingError>(embedder.embed(texts, signal()));
  t.deepEqual(
    err?.results.map((r) => (isInvalidEmbeddingError(r) ? `${r.index}:${r.reason}` : 'ok')),
    ['ok', '1:dimensions', 'ok', '3:not-finite', '4:not-finite', 'ok', 'ok'],
  );
  t.deepEqual(err?.results[6], server.vectorOf('ok 4'));
  t.deepEqual(await embedder.embed(['ok 5'], signal()), [server.vectorOf('ok 5')]);
});

test('a traceparent header carries the active span; each request is a CLIENT span', async (t) => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const manager = new AsyncLocalStorageContextManager().enable();
  context.setGlobalContextManager(manager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  t.teardown(async () => {
    context.disable();
    propagation.disable();
    await provider.shutdown();
  });
  const tracer = provider.getTracer('test');
  const { server, embedder } = await setup(t, { tracer });
  const parent = tracer.startSpan('ingest');
  await context.with(trace.setSpan(context.active(), parent), () =>
    embedder.embed(['x'], signal()),
  );
  parent.end();
  const header = server.requests[0]?.headers.traceparent;
  t.is(typeof header, 'string');
  const [, traceId, spanId] = String(header).split('-');
  t.is(traceId, parent.spanContext().traceId);
  const spans = exporter.getFinishedSpans();
  const client = spans.find((s) => s.kind === SpanKind.CLIENT);
  t.truthy(client);
  t.is(client?.spanContext().spanId, spanId, 'the header names the request span');
  t.is(client?.parentSpanContext?.spanId, parent.spanContext().spanId);
  t.is(client?.attributes['gen_ai.request.model'], 'test-embed');
  t.is(client?.attributes['http.response.status_code'], 200);
});

test('the API key is sent but never appears in errors or logs', async (t) => {
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  const { server, embedder } = await setup(t, { logger, retry: false, breaker: false });
  // A server echoing the Authorization header in its error body.
  server.enqueue({ type: 'status', status: 401, body: `{"error":"bad key Bearer ${API_KEY}"}` });
  const e = await t.throwsAsync<EmbeddingHttpError>(embedder.embed(['x'], signal()));
  t.is(server.requests[0]?.headers.authorization, `Bearer ${API_KEY}`);
  t.is(e?.status, 401);
  for (const text of [
    e!.message,
    JSON.stringify(e!.toJSON()),
    inspect(e, { depth: 10 }),
    lines.join('\n'),
  ]) {
    t.false(text.includes(API_KEY), text);
  }
  t.regex(e!.message, /\[REDACTED\]/);
  t.true(lines.some((l) => l.includes('embed.request_failed')));
  t.false(JSON.stringify(embedder).includes(API_KEY));
  t.false(inspect(embedder, { depth: 10 }).includes(API_KEY));

  // A network error (nothing listening) carries no got options (which hold the headers).
  await server.close();
  const down = await t.throwsAsync<EmbeddingHttpError>(embedder.embed(['x'], signal()));
  t.is(down?.status, 0);
  t.false(inspect(down, { depth: 10, showHidden: true }).includes(API_KEY));
});

test('the key defaults to OPENAI_API_KEY', async (t) => {
  const before = process.env.OPENAI_API_KEY;
  process.env.OPENAI_API_KEY = 'sk-from-env';
  t.teardown(() => {
    if (before === undefined) delete process.env.OPENAI_API_KEY;
    else process.env.OPENAI_API_KEY = before;
  });
  const server = await startEmbeddingServer();
  const embedder = openAIEmbedder({ baseUrl: server.baseUrl, model: 'm', dimensions: 8 });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  await embedder.embed(['x'], signal());
  t.is(server.requests[0]?.headers.authorization, 'Bearer sk-from-env');
});

test('aborting rejects with the reason at once and leaves no listener', async (t) => {
  const { server, embedder } = await setup(t, { timeoutMs: 10_000 });
  server.enqueue({ type: 'stall' });
  const ac = new AbortController();
  const pending = embedder.embed(['x'], ac.signal);
  while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  ac.abort(new Error('user cancelled'));
  await t.throwsAsync(pending, { message: 'user cancelled' });
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  const live = new AbortController();
  await embedder.embed(['y'], live.signal);
  t.is(getEventListeners(live.signal, 'abort').length, 0);
});

test('options are validated with TypeErrors', (t) => {
  const ok = { model: 'm', dimensions: 8, baseUrl: 'http://127.0.0.1:1/v1' };
  t.throws(() => openAIEmbedder({ ...ok, model: '' }), { instanceOf: TypeError });
  t.throws(() => openAIEmbedder({ ...ok, dimensions: 0 }), { instanceOf: TypeError });
  t.throws(() => openAIEmbedder({ ...ok, batchSize: 0 }), { instanceOf: TypeError });
  t.throws(() => openAIEmbedder({ ...ok, maxBatchChars: -1 }), { instanceOf: TypeError });
  t.throws(() => openAIEmbedder({ ...ok, timeoutMs: 0 }), { instanceOf: TypeError });
  t.throws(() => openAIEmbedder({ ...ok, baseUrl: 'not a url' }), { instanceOf: TypeError });
  t.throws(() => openAIEmbedder({ ...ok, baseUrl: 'http://u:p@127.0.0.1/v1' }), {
    instanceOf: TypeError,
  });
  // @ts-expect-error: options are required
  t.throws(() => openAIEmbedder(), { instanceOf: TypeError });
});

test('by default vectors travel as base64 float32 and decode exactly', async (t) => {
  const { server, embedder } = await setup(t, {}, 384);
  const texts = ['alpha', 'beta', 'gamma'];
  const vectors = await embedder.embed(texts, signal());
  t.is(server.requests[0]?.body.encoding_format, 'base64');
  t.deepEqual(
    vectors.map((v) => Array.from(v)),
    texts.map((x) => Array.from(server.vectorOf(x))),
  );
});

test('a server that ignores encoding_format and answers floats is read as floats', async (t) => {
  const server = await startEmbeddingServer({ dimensions: 8, encodingFormat: 'ignore' });
  const embedder = openAIEmbedder({ baseUrl: server.baseUrl, model: 'm', dimensions: 8 });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  const vectors = await embedder.embed(['one', 'two'], signal());
  t.deepEqual(
    vectors.map((v) => Array.from(v)),
    ['one', 'two'].map((x) => Array.from(server.vectorOf(x))),
  );
  t.is(server.requests.length, 1, 'no second request was needed');
  t.is(server.requests[0]?.body.encoding_format, 'base64');
});

test('a server that rejects encoding_format is asked again without it, once, and never again', async (t) => {
  const server = await startEmbeddingServer({ dimensions: 8, encodingFormat: 'reject' });
  const lines: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  const embedder = openAIEmbedder({ baseUrl: server.baseUrl, model: 'm', dimensions: 8, logger });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  const first = await embedder.embed(['one'], signal());
  const second = await embedder.embed(['two'], signal());
  t.deepEqual(Array.from(first[0]!), Array.from(server.vectorOf('one')));
  t.deepEqual(Array.from(second[0]!), Array.from(server.vectorOf('two')));
  t.deepEqual(
    server.requests.map((r) => [r.body.encoding_format, r.status]),
    [
      ['base64', 400],
      [undefined, 200],
      [undefined, 200],
    ],
  );
  const fallback = lines.map((l) => JSON.parse(l) as { event?: string }).filter((l) => l.event);
  t.deepEqual(
    fallback.map((l) => l.event),
    ['embed.encoding_fallback'],
  );
});

test("encodingFormat 'base64' asks for base64 even from a rejecting server (the 400 is the error)", async (t) => {
  const server = await startEmbeddingServer({ dimensions: 8, encodingFormat: 'reject' });
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl,
    model: 'm',
    dimensions: 8,
    encodingFormat: 'base64',
  });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  const err = await t.throwsAsync<EmbeddingHttpError>(embedder.embed(['one'], signal()));
  t.true(isEmbeddingHttpError(err));
  t.is(err?.status, 400);
  t.is(server.requests.length, 1);
});

test('one embed call keeps up to `concurrency` requests in flight and returns vectors in input order', async (t) => {
  const server = await startEmbeddingServer({ dimensions: 8, latencyMs: 1_000 });
  const embedder = openAIEmbedder({
    baseUrl: server.baseUrl,
    model: 'm',
    dimensions: 8,
    batchSize: 2,
    concurrency: 3,
  });
  t.teardown(async () => {
    embedder.close();
    await server.close();
  });
  const texts = Array.from({ length: 11 }, (_, i) => `text ${i}`);
  const vectors = await embedder.embed(texts, signal());
  t.deepEqual(
    vectors.map((v) => Array.from(v)),
    texts.map((x) => Array.from(server.vectorOf(x))),
  );
  t.is(server.requests.length, 6);
  t.is(server.maxInFlight, 3, 'three at once (the 1 s latency keeps them overlapping)');
  t.throws(() => openAIEmbedder({ model: 'm', dimensions: 8, concurrency: 0 }), {
    instanceOf: TypeError,
  });
});

test('the first failing request of an embed call fails it and cancels the others in flight', async (t) => {
  const { server, embedder } = await setup(t, { batchSize: 1, concurrency: 3, retry: false });
  // request 1 stalls until cancelled, request 2 fails at once, request 3 is fine
  server.enqueue({ type: 'stall' }, { type: 'status', status: 400 });
  const ac = new AbortController();
  const err = await t.throwsAsync<EmbeddingHttpError>(embedder.embed(['a', 'b', 'c'], ac.signal));
  t.true(isEmbeddingHttpError(err));
  t.is(err?.status, 400);
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  // the stalled request was aborted by the client: its connection closes
  const deadline = Date.now() + 10_000;
  while (server.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(server.inFlight, 0);
  t.is(server.requests.length, 3);
});
