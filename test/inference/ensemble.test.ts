import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { expectTypeOf } from 'expect-type';
import { lastValueFrom, toArray } from 'rxjs';
import { isStepError } from '../../lib/core/errors.js';
import type { Pipeline } from '../../lib/core/pipeline.js';
import {
  type Answer,
  type EnsembleAnswer,
  type EnsembleRequest,
  ensemble,
  firstK,
  invokeModels,
  isEnsembleFailedError,
  isInvalidAnswerError,
  isModelHttpError,
  isTieError,
  type ModelDefinition,
  majorityVote,
  mean,
  median,
  modelClient,
  openAIChat,
  quorum,
  resolveModel,
  trimmedMean,
  weightedVote,
} from '../../lib/inference/index.js';
import { isBrokenCircuitError } from '../../lib/operators/circuit-breaker.js';
import { isTimeoutError } from '../../lib/operators/timeout.js';
import {
  type ModelServer,
  type ModelServerOptions,
  startModelServer,
} from '../support/model-server.js';
import { memoryTracer } from '../support/telemetry.js';

/** Starts servers and closes them when the test ends. */
async function servers(
  t: { teardown(fn: () => Promise<void>): void },
  ...specs: ModelServerOptions[]
): Promise<ModelServer[]> {
  const started = await Promise.all(specs.map((s) => startModelServer(s)));
  t.teardown(async () => {
    await Promise.all(started.map((s) => s.close()));
  });
  return started;
}

const constant = (answer: Answer): ModelServerOptions => ({ answer: () => answer });
const models = (list: ModelServer[], extra: Partial<ModelDefinition>[] = []): ModelDefinition[] =>
  list.map((s, i) => ({ name: `m${i}`, endpoint: s.url, timeoutMs: 2_000, ...extra[i] }));

test('three models answer in parallel: majority vote, per-model latency and outcome, ids and trace context on the wire', async (t) => {
  const [a, b, c] = await servers(t, constant('pos'), constant('neg'), constant('pos'));
  const { tracer, spans } = memoryTracer();
  const e = ensemble({ models: models([a!, b!, c!]), tracer });
  t.teardown(() => e.close());
  const answer = await e.run({ id: 'req-1', input: 'great', parameters: { lang: 'en' } });
  t.is(answer.answer, 'pos');
  t.is(answer.support, 2);
  t.deepEqual([...answer.agreeing].sort(), ['m0', 'm2']);
  t.is(answer.responded, 3);
  t.is(answer.strategy, 'majority-vote');
  t.false(answer.persisted);
  t.is(answer.invocations.length, 3);
  for (const inv of answer.invocations) {
    t.is(inv.outcome, 'ok');
    t.is(inv.attempts, 1);
    t.true(inv.latencyMs >= 0);
  }
  t.deepEqual(
    answer.invocations.map((i) => i.arrival),
    [0, 1, 2],
  );
  const sent = a!.requests[0]!;
  t.deepEqual(sent.body, {
    requestId: 'req-1',
    model: 'm0',
    input: 'great',
    parameters: { lang: 'en' },
  });
  t.is(sent.headers['x-request-id'], 'req-1');
  t.regex(String(sent.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  const clientSpans = spans().filter((s) => s.name.startsWith('model '));
  t.is(clientSpans.length, 3);
  const traceId = String(sent.headers.traceparent).split('-')[1];
  t.true(clientSpans.every((s) => s.spanContext().traceId === traceId));
});

test('weighted vote, mean, median and trimmed mean over HTTP', async (t) => {
  const [a, b, c] = await servers(t, constant('x'), constant('y'), constant('y'));
  const w = ensemble({
    models: models([a!, b!, c!], [{ weight: 5 }, {}, {}]),
    strategy: weightedVote(),
  });
  t.teardown(() => w.close());
  const wa = await w.run({ input: 1 });
  t.is(wa.answer, 'x');
  t.is(wa.support, 5);

  const nums = await servers(
    t,
    constant(1),
    constant(2),
    constant(6),
    constant(1000),
    constant(-1000),
  );
  const numeric = models(nums);
  for (const [strategy, expected] of [
    [mean(), 9 / 5],
    [median(), 2],
    [trimmedMean({ trim: 0.2 }), 3],
  ] as const) {
    const e = ensemble({ models: numeric, strategy });
    t.is((await e.run({ input: 0 })).answer, expected, strategy.name);
    e.close();
  }
});

test('a non-numeric answer is invalid for numeric strategies and does not count', async (t) => {
  const [a, b, c] = await servers(t, constant(2), constant('two'), constant(4));
  const e = ensemble({ models: models([a!, b!, c!]), strategy: mean() });
  t.teardown(() => e.close());
  const answer = await e.run({ input: 0 });
  t.is(answer.answer, 3);
  const invalid = answer.invocations.find((i) => i.model === 'm1');
  t.is(invalid?.outcome, 'invalid');
  t.true(isInvalidAnswerError(invalid?.error));
  t.is(answer.responded, 2);
});

test('ties: broken by weight then lexical order, or a TieError with tie: error', async (t) => {
  const [a, b] = await servers(t, constant('yes'), constant('no'));
  const lexical = ensemble({ models: models([a!, b!]) });
  t.teardown(() => lexical.close());
  t.is((await lexical.run({ input: 0 })).answer, 'no');
  const weighted = ensemble({ models: models([a!, b!], [{ weight: 2 }, {}]) });
  t.teardown(() => weighted.close());
  t.is((await weighted.run({ input: 0 })).answer, 'yes');
  const strict = ensemble({ models: models([a!, b!]), strategy: majorityVote({ tie: 'error' }) });
  t.teardown(() => strict.close());
  const e = await t.throwsAsync(strict.run({ id: 'tied', input: 0 }));
  t.true(isStepError(e) && e.step === 'aggregate' && isTieError(e.cause));
  if (isStepError(e) && isTieError(e.cause)) t.deepEqual(e.cause.candidates, ['no', 'yes']);
});

test('all models failing is an EnsembleFailedError with every model error and outcome', async (t) => {
  const [bad, slow, garbage] = await servers(
    t,
    { reply: () => ({ kind: 'status', status: 500 }) },
    { reply: () => ({ kind: 'hang' }) },
    { reply: () => ({ kind: 'raw', body: '{"label":"pos"}' }) },
  );
  const e = ensemble({
    models: models([bad!, slow!, garbage!], [{}, { timeoutMs: 50 }, {}]),
    retry: { maxAttempts: 2, baseDelayMs: 1 },
  });
  t.teardown(() => e.close());
  const error = await t.throwsAsync(e.run({ id: 'doomed', input: 0 }));
  t.true(isStepError(error) && isEnsembleFailedError(error.cause));
  if (!isStepError(error) || !isEnsembleFailedError(error.cause)) return;
  const failed = error.cause;
  t.is(failed.reason, 'all-failed');
  t.is(failed.requestId, 'doomed');
  t.is(failed.successes, 0);
  const byModel = new Map(failed.errors.map((f) => [f.model, f]));
  t.is(byModel.get('m0')?.outcome, 'error');
  t.true(isModelHttpError(byModel.get('m0')?.error));
  t.is(byModel.get('m1')?.outcome, 'timeout');
  t.true(isTimeoutError(byModel.get('m1')?.error));
  t.is(byModel.get('m2')?.outcome, 'invalid');
  t.is(byModel.get('m0')?.attempts, 2, 'a 500 is retried');
  t.is(byModel.get('m1')?.attempts, 2, 'a timeout is retried');
  t.is(byModel.get('m2')?.attempts, 1, 'an invalid answer is not retried');
  t.is(bad!.calls, 2);
  t.is(garbage!.calls, 1);
  // timed-out requests are aborted on the wire (the server may not even have seen the second)
  while (slow!.aborted < slow!.calls) await delay(1);
  t.true(slow!.calls >= 1);
});

test('minSuccesses: fewer usable answers than required fails with min-successes', async (t) => {
  const [a, b] = await servers(t, constant('x'), {
    reply: () => ({ kind: 'status', status: 400 }),
  });
  const e = ensemble({ models: models([a!, b!]), strategy: majorityVote({ minSuccesses: 2 }) });
  t.teardown(() => e.close());
  const error = await t.throwsAsync(e.run({ input: 0 }));
  t.true(
    isStepError(error) &&
      isEnsembleFailedError(error.cause) &&
      error.cause.reason === 'min-successes',
  );
  t.is(b!.calls, 1, 'a 400 is not retried');
});

test('retries a 503 (honouring Retry-After) and records the attempts', async (t) => {
  const [flaky] = await servers(t, {
    answer: () => 'ok',
    reply: (req) =>
      req.n === 1 ? { kind: 'status', status: 503, headers: { 'retry-after': '0' } } : undefined,
  });
  const e = ensemble({ models: models([flaky!]) });
  t.teardown(() => e.close());
  const answer = await e.run({ input: 0 });
  t.is(answer.answer, 'ok');
  t.is(answer.invocations[0]?.attempts, 2);
});

test('firstK answers with the fastest k and cancels the rest on the wire', async (t) => {
  const [fast1, fast2, slow] = await servers(
    t,
    { answer: () => 'a', latencyMs: 0 },
    { answer: () => 'a', latencyMs: 5 },
    { answer: () => 'b', reply: () => ({ kind: 'hang' }) },
  );
  const e = ensemble({ models: models([fast1!, fast2!, slow!]), strategy: firstK({ k: 2 }) });
  t.teardown(() => e.close());
  const answer = await e.run({ input: 0 });
  t.is(answer.answer, 'a');
  const cancelled = answer.invocations.find((i) => i.model === 'm2');
  t.is(cancelled?.outcome, 'cancelled');
  t.is(cancelled?.arrival, 2);
  while (slow!.aborted < 1) await delay(1);
  t.is(slow!.aborted, 1);
});

test('quorum answers once k agree and cancels the rest', async (t) => {
  const [a, b, c] = await servers(
    t,
    constant('x'),
    { answer: () => 'x', latencyMs: 5 },
    { reply: () => ({ kind: 'hang' }) },
  );
  const e = ensemble({ models: models([a!, b!, c!]), strategy: quorum({ k: 2 }) });
  t.teardown(() => e.close());
  const answer = await e.run({ input: 0 });
  t.deepEqual([answer.answer, answer.support], ['x', 2]);
  t.is(answer.invocations.find((i) => i.model === 'm2')?.outcome, 'cancelled');
  // no quorum possible: every model disagrees
  const [p, q, r] = await servers(t, constant('1'), constant('2'), constant('3'));
  const none = ensemble({ models: models([p!, q!, r!]), strategy: quorum({ k: 2 }) });
  t.teardown(() => none.close());
  const error = await t.throwsAsync(none.run({ input: 0 }));
  t.true(
    isStepError(error) && isEnsembleFailedError(error.cause) && error.cause.reason === 'no-quorum',
  );
});

test('a broken model opens its breaker and never holds the others (counts and ordering)', async (t) => {
  // The broken model is FIRST and only answers (a 500) once the client has recorded both
  // healthy answers of the same request: invoked one after another, the request would never
  // finish. So each answer proves the healthy models were not held by the broken one.
  const released = new Map<string, { seen: number; release: () => void; done: Promise<void> }>();
  const gate = (requestId: string) => {
    let entry = released.get(requestId);
    if (!entry) {
      let release!: () => void;
      const done = new Promise<void>((r) => {
        release = r;
      });
      entry = { seen: 0, release, done };
      released.set(requestId, entry);
    }
    return entry;
  };
  const [broken, good1, good2] = await servers(
    t,
    {
      reply: (req) => ({
        kind: 'defer',
        until: gate(String(req.headers['x-request-id'])).done,
        reply: { kind: 'status', status: 500 },
      }),
    },
    { answer: () => 'ok' },
    { answer: () => 'ok' },
  );
  const e = ensemble({
    models: models([broken!, good1!, good2!]),
    retry: false,
    breaker: { strategy: { type: 'consecutive', failures: 2 }, breakDuration: 60_000 },
    onInvocation: (inv, requestId) => {
      if (inv.model === 'm0') return;
      const g = gate(requestId);
      if (++g.seen === 2) g.release();
    },
  });
  t.teardown(() => e.close());
  const answers: EnsembleAnswer[] = [];
  for (let i = 0; i < 6; i++) answers.push(await e.run({ id: `b-${i}`, input: i }));
  t.true(answers.every((a) => a.answer === 'ok' && a.responded === 2));
  const brokenInv = answers.map((a) => a.invocations.find((i) => i.model === 'm0')!);
  // its first two calls fail AFTER both healthy models answered
  t.deepEqual(
    brokenInv.slice(0, 2).map((i) => [i.outcome, i.arrival, i.attempts]),
    [
      ['error', 2, 1],
      ['error', 2, 1],
    ],
  );
  // then its breaker is open: rejected at once (first to end), never called
  for (const inv of brokenInv.slice(2)) {
    t.is(inv.outcome, 'rejected');
    t.is(inv.arrival, 0);
    t.is(inv.attempts, 0);
    t.true(isBrokenCircuitError(inv.error));
  }
  t.is(broken!.calls, 2);
  t.is(good1!.calls, 6);
  t.is(good2!.calls, 6);
  t.is(e.breaker('m0')?.state, 'open');
  t.is(e.breaker('m1')?.state, 'closed');
});

test('a slow model times out on its own while the others answer first', async (t) => {
  const [slow, fast] = await servers(
    t,
    { reply: () => ({ kind: 'hang' }) },
    { answer: () => 'ok' },
  );
  const e = ensemble({
    models: models([slow!, fast!], [{ timeoutMs: 1_000 }, {}]),
    retry: false,
  });
  t.teardown(() => e.close());
  const answer = await e.run({ input: 0 });
  t.is(answer.answer, 'ok');
  t.deepEqual(
    answer.invocations.map((i) => [i.model, i.outcome]),
    [
      ['m1', 'ok'],
      ['m0', 'timeout'],
    ],
  );
});

test('the OpenAI-compatible chat adapter maps requests and replies', async (t) => {
  const [chat] = await servers(t, {
    protocol: 'openai-chat',
    answer: (input) => (String(input).includes('love') ? 'Positive.' : 'negative'),
  });
  const e = ensemble({
    models: [
      { name: 'llm', kind: 'openai-chat', endpoint: chat!.url, options: { model: 'llama3' } },
    ],
    adapters: { 'openai-chat': openAIChat({ labels: ['positive', 'negative'], apiKey: 'k-1' }) },
  });
  t.teardown(() => e.close());
  t.is((await e.run({ input: 'I love it' })).answer, 'positive');
  t.is((await e.run({ input: 'meh' })).answer, 'negative');
  const body = chat!.requests[0]!.body as { model: string; messages: { role: string }[] };
  t.is(body.model, 'llama3');
  t.deepEqual(
    body.messages.map((m) => m.role),
    ['system', 'user'],
  );
  t.is(chat!.requests[0]!.headers.authorization, 'Bearer k-1');
});

test('stream: many requests with bounded concurrency and one outcome per request', async (t) => {
  const list = await servers(
    t,
    { answer: (x) => (Number(x) % 2 ? 'odd' : 'even'), latencyMs: 2 },
    { answer: (x) => (Number(x) % 2 ? 'odd' : 'even'), latencyMs: 2 },
    { answer: () => 'noise', latencyMs: 2 },
  );
  const e = ensemble({ models: models(list) });
  t.teardown(() => e.close());
  const inputs = Array.from({ length: 20 }, (_, i) => ({ id: `s-${i}`, input: i }));
  const outcomes = await lastValueFrom(
    e.stream(inputs, { concurrency: 3, ordered: true }).pipe(toArray()),
  );
  t.is(outcomes.length, 20);
  t.deepEqual(
    outcomes.map((o) => (o.ok ? o.value.answer : 'failed')),
    inputs.map((x) => (x.input % 2 ? 'odd' : 'even')),
  );
  t.true(
    list.every((s) => s.maxInFlight <= 3),
    `max in flight ${list.map((s) => s.maxInFlight)}`,
  );
  t.true(list.every((s) => s.calls === 20));
});

test('cancelling a run aborts the HTTP requests and leaves no listeners', async (t) => {
  const [a, b] = await servers(
    t,
    { reply: () => ({ kind: 'hang' }) },
    { reply: () => ({ kind: 'hang' }) },
  );
  const e = ensemble({ models: models([a!, b!]) });
  t.teardown(() => e.close());
  const controller = new AbortController();
  const running = e.run({ input: 0 }, { signal: controller.signal });
  while (a!.calls + b!.calls < 2) await delay(1);
  const reason = new Error('user gave up');
  controller.abort(reason);
  t.is(await t.throwsAsync(running), reason);
  while (a!.aborted + b!.aborted < 2) await delay(1);
  t.is(getEventListeners(controller.signal, 'abort').length, 0);
});

test('invokeModels alone, sequentially (concurrency 1), keeps order and checks options', async (t) => {
  const list = await servers(t, constant('a'), constant('b'));
  const client = modelClient();
  t.teardown(() => client.close());
  const ms = list.map((s, i) => resolveModel({ name: `m${i}`, endpoint: s.url }));
  const inv = await invokeModels(ms, { input: 1 }, 'r1', { client, concurrency: 1 });
  t.deepEqual(
    inv.map((i) => [i.model, i.answer, i.arrival]),
    [
      ['m0', 'a', 0],
      ['m1', 'b', 1],
    ],
  );
  t.true(list.every((s) => s.maxInFlight === 1));
  await t.throwsAsync(invokeModels(ms, { input: 1 }, 'r', { client, concurrency: 0 }), {
    instanceOf: TypeError,
  });
  t.deepEqual(await invokeModels([], { input: 1 }, 'r', { client }), []);
});

test('types: an ensemble is a Pipeline from requests to answers', (t) => {
  const e = ensemble({ models: [] });
  expectTypeOf(e).toMatchTypeOf<Pipeline<EnsembleRequest, EnsembleAnswer>>();
  expectTypeOf(e.run).returns.toEqualTypeOf<Promise<EnsembleAnswer>>();
  t.is(
    e.steps.map((s) => s.name).join(' -> '),
    'load-models -> invoke-models -> aggregate -> answer',
  );
  e.close();
});

test('invalid configuration throws TypeError', (t) => {
  t.throws(() => ensemble({} as never), { instanceOf: TypeError });
  t.throws(() => ensemble({ models: [{ name: '', endpoint: 'http://127.0.0.1:1/' }] }), {
    instanceOf: TypeError,
  });
  t.throws(() => ensemble({ models: [{ name: 'a', endpoint: 'ftp://x/' }] }), {
    instanceOf: TypeError,
  });
  t.throws(() => ensemble({ models: [{ name: 'a', endpoint: 'http://x/', weight: -1 }] }), {
    instanceOf: TypeError,
  });
  t.throws(() => ensemble({ models: [], modelConcurrency: 0 }), { instanceOf: TypeError });
  t.throws(() => ensemble({ models: [], retry: -1 }), { instanceOf: TypeError });
  t.throws(() => modelClient({ adapters: { x: {} as never } }), { instanceOf: TypeError });
  t.throws(() => openAIChat({ labels: [''] }), { instanceOf: TypeError });
});

test('no enabled model is an EnsembleFailedError with reason no-models', async (t) => {
  const e = ensemble({
    models: [{ name: 'off', endpoint: 'http://127.0.0.1:9/', enabled: false }],
  });
  t.teardown(() => e.close());
  const error = await t.throwsAsync(e.run({ input: 0 }));
  t.true(
    isStepError(error) && isEnsembleFailedError(error.cause) && error.cause.reason === 'no-models',
  );
});
