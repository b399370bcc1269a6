/**
 * Issue 10, "Service Bus counts that match the broker": a body the decoder rejects (valid JSON
 * that is not an object included) is dead-lettered on its first delivery with a named reason;
 * a transient failure is abandoned after a backoff, not redelivered at once; and the worker's
 * counts equal the broker's (the AMQP peer's queue stats), also for dead-letters the source
 * makes before a message reaches the pipeline. Real `@azure/service-bus` client, real peer.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  ContentTooLargeError,
  EmptyContentError,
  InvalidUtf8Error,
} from '../../lib/atoms/errors.js';
import { validateContent } from '../../lib/atoms/validate-content.js';
import { PipelineError } from '../../lib/core/errors.js';
import { pipeline } from '../../lib/core/pipeline.js';
import { step } from '../../lib/core/step.js';
import { PermanentError } from '../../lib/operators/retry.js';
import {
  isMessageDecodeError,
  jsonObjectBody,
  MessageDecodeError,
  type Settleable,
  serviceBusSource,
  serviceBusWorker,
  settleBy,
} from '../../lib/service-bus/index.js';
import { isPermanentByDefault } from '../../lib/service-bus/settle-by.js';
import { type AmqpPeer, startAmqpPeer } from '../support/amqp-peer.js';
import { fastClient, until } from '../support/service-bus-helpers.js';

interface Job {
  id: string;
  mode?: 'ok' | 'flaky' | 'permanent' | 'always' | 'bad-input';
}

let queueSeq = 0;
const queueName = (tag: string): string => `sbc-${tag}-${process.pid}-${++queueSeq}`;

/** A library error that says it is permanent (like the atoms' bad-input errors). */
class BadInputError extends PipelineError {
  readonly code = 'TEST_BAD_INPUT' as const;
  readonly permanent = true as const;
}

/** The broker's settle counts for `queue`. */
function brokerCounts(peer: AmqpPeer, queue: string) {
  const { completed, abandoned, deadLettered } = peer.stats(queue);
  return { completed, abandoned, deadLettered };
}

/** Not JSON objects: the decoder rejects each on its first delivery. */
const NOT_OBJECTS: Array<[string, unknown]> = [
  ['json-number', '42'],
  ['json-string', '"hello"'],
  ['json-array', '[1,2,3]'],
  ['json-null', 'null'],
  ['not-json', 'this is { not json'],
  ['amqp-number', 7],
  ['bytes-json-true', Buffer.from('true')],
];

test('a body that is not a JSON object is dead-lettered on its first delivery (DecodeFailed); the worker counts equal the broker counts', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const queue = queueName('mix');
  for (const [id, body] of NOT_OBJECTS) peer.enqueue(queue, { message_id: id, body });
  const jobs: Job[] = [
    ...Array.from({ length: 8 }, (_, i): Job => ({ id: `ok-${i}` })),
    { id: 'ok-as-text' }, // a JSON object sent as text is fine
    { id: 'flaky', mode: 'flaky' },
    { id: 'permanent', mode: 'permanent' },
    { id: 'bad-input', mode: 'bad-input' },
    { id: 'always', mode: 'always' },
  ];
  for (const job of jobs) {
    peer.enqueue(queue, {
      message_id: job.id,
      body: job.id === 'ok-as-text' ? JSON.stringify(job) : job,
    });
  }
  const attempts = new Map<string, number>();
  const w = serviceBusWorker({
    source: serviceBusSource<Job>({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queue,
      maxWaitTimeInMs: 1_000,
      maxConcurrent: 32,
      maxDeliveryCount: 3,
      redeliveryBackoff: { strategy: 'constant', baseMs: 50 },
      decode: jsonObjectBody,
    }),
    pipeline: pipeline(
      'counts',
      step('work', (job: Job) => {
        const n = (attempts.get(job.id) ?? 0) + 1;
        attempts.set(job.id, n);
        if (job.mode === 'flaky' && n === 1) throw new Error('database busy');
        if (job.mode === 'permanent') throw new PermanentError(new Error('schema violation'));
        if (job.mode === 'bad-input') throw new BadInputError('content is empty');
        if (job.mode === 'always') throw new Error('cannot parse atom');
        return job.id;
      }),
    ),
  });
  w.start();
  // 7 undecodable + permanent + bad-input + always; 8 ok + ok-as-text + flaky
  await until(() => peer.deadLetters(queue).length === 10, 'ten dead-lettered', 60_000);
  await until(() => peer.stats(queue).completed === 10, 'ten completed', 60_000);
  const report = await w.stop({ drainTimeoutMs: 30_000 });
  t.deepEqual(peer.messages(queue), [], 'nothing left in the queue');

  const dead = new Map(peer.deadLetters(queue).map((m) => [m.messageId, m]));
  for (const [id] of NOT_OBJECTS) {
    t.like(dead.get(id), { deadLetterReason: 'DecodeFailed', deliveryCount: 0 }, id);
    t.false(attempts.has(id), `${id} never reached the pipeline`);
  }
  t.regex(dead.get('json-number')?.deadLetterDescription ?? '', /JSON number, not an object/);
  t.regex(dead.get('not-json')?.deadLetterDescription ?? '', /not JSON/);
  t.like(dead.get('permanent'), { deadLetterReason: 'PERMANENT', deliveryCount: 0 });
  t.like(dead.get('bad-input'), { deadLetterReason: 'TEST_BAD_INPUT', deliveryCount: 0 });
  t.is(dead.get('always')?.deadLetterReason, 'MaxDeliveryCountExceeded');
  t.is(attempts.get('permanent'), 1);
  t.is(attempts.get('bad-input'), 1);

  // the worker's figures are the broker's (a lock lost under load is a redelivery that neither
  // side counts as an abandon, so equality holds whatever the machine's speed)
  const broker = brokerCounts(peer, queue);
  t.deepEqual(
    { completed: report.completed, abandoned: report.abandoned, deadLettered: report.deadLettered },
    broker,
  );
  t.like(w.health(), broker);
  t.is(broker.completed, 10);
  t.is(broker.deadLettered, 10);
  // flaky failed once, always failed on deliveries 1 and 2 (3 dead-letters it): 3 attempts
  // that ended in an abandon or a lost lock
  const { lockExpired, returnedOnClose } = peer.stats(queue);
  t.true(broker.abandoned <= 3 && broker.abandoned + lockExpired + returnedOnClose >= 3);
  const runs = [...attempts.values()].reduce((x, y) => x + y, 0);
  t.is(report.processed + report.failed, runs, 'every pipeline run is an outcome');
});

test('a transient failure is abandoned only after the redelivery backoff, growing with the delivery count', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const queue = queueName('backoff');
  peer.enqueue(queue, { message_id: 'flaky', body: { id: 'flaky' } });
  const started: number[] = [];
  const baseMs = 300;
  const w = serviceBusWorker({
    source: serviceBusSource<Job>({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queue,
      maxWaitTimeInMs: 1_000,
      redeliveryBackoff: { strategy: 'exponential', baseMs, maxMs: 10_000 },
    }),
    pipeline: pipeline(
      'backoff',
      step('work', (job: Job) => {
        started.push(performance.now());
        if (started.length < 3) throw new Error('database busy');
        return job.id;
      }),
    ),
  });
  w.start();
  await until(() => peer.stats(queue).completed === 1, 'completed on the third delivery', 60_000);
  const report = await w.stop();
  t.is(started.length, 3);
  // lower bounds only: a loaded machine makes the gaps longer, never shorter
  const [a = 0, b = 0, c = 0] = started;
  t.true(b - a >= baseMs, `first redelivery after ${Math.round(b - a)} ms`);
  t.true(c - b >= 2 * baseMs, `second redelivery after ${Math.round(c - b)} ms`);
  t.like(report, { completed: 1, abandoned: 2, deadLettered: 0 });
  t.deepEqual(brokerCounts(peer, queue), { completed: 1, abandoned: 2, deadLettered: 0 });
});

test('stop() ends a redelivery backoff at once: the message is abandoned and back in the queue', async (t) => {
  t.timeout(90_000); // the backoff is 10 minutes: only the fix lets the test end
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const queue = queueName('stop');
  peer.enqueue(queue, { message_id: 'flaky', body: { id: 'flaky' } });
  let attempts = 0;
  const w = serviceBusWorker({
    source: serviceBusSource<Job>({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queue,
      maxWaitTimeInMs: 1_000,
      redeliveryBackoff: { strategy: 'constant', baseMs: 600_000, maxMs: 600_000 },
    }),
    pipeline: pipeline(
      'stop',
      step('work', () => {
        attempts++;
        throw new Error('database busy');
      }),
    ),
    drainTimeoutMs: 600_000,
  });
  w.start();
  await until(() => w.health().failed === 1, 'the first attempt failed', 30_000);
  t.is(w.health().locked, 1, 'held in its backoff, lock kept');
  t.is(peer.stats(queue).abandoned, 0);
  const report = await w.stop();
  t.true(report.drained);
  t.like(report, { completed: 0, abandoned: 1, deadLettered: 0 });
  t.deepEqual(brokerCounts(peer, queue), { completed: 0, abandoned: 1, deadLettered: 0 });
  // back in the queue (a redelivery the closing receiver returned counts one more delivery)
  t.like(peer.messages(queue)[0], { messageId: 'flaky', state: 'available' });
  t.true((peer.messages(queue)[0]?.deliveryCount ?? 0) >= 1);
  t.is(attempts, 1);
});

test('jsonObjectBody: objects pass; anything else throws MessageDecodeError (a permanent error)', (t) => {
  const msg = (body: unknown) => ({ body, messageId: 'm' }) as never;
  t.deepEqual(jsonObjectBody(msg({ a: 1 })), { a: 1 });
  t.deepEqual(jsonObjectBody(msg('{"a":1}')), { a: 1 });
  t.deepEqual(jsonObjectBody(msg(Buffer.from('{"a":[1]}'))), { a: [1] });
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
      for (const body of [JSON.stringify(value), Buffer.from(JSON.stringify(value))]) {
        if (isObject) {
          if (JSON.stringify(jsonObjectBody(msg(body))) !== JSON.stringify(value)) return false;
        } else {
          try {
            jsonObjectBody(msg(body));
            return false;
          } catch (e) {
            if (!isMessageDecodeError(e) || !isPermanentByDefault(e)) return false;
          }
        }
      }
      return true;
    }),
  );
  const e = t.throws(() => jsonObjectBody(msg('nope')), { instanceOf: MessageDecodeError });
  t.like(e, { messageId: 'm', bodyType: 'string', code: 'MESSAGE_DECODE_FAILED' });
  t.true(e?.cause instanceof SyntaxError);
});

test('isPermanentByDefault: library errors with permanent: true, anywhere in the cause chain; plain errors are transient', (t) => {
  t.true(isPermanentByDefault(new BadInputError('x')));
  t.true(isPermanentByDefault(new Error('wrapped', { cause: new BadInputError('x') })));
  t.true(isPermanentByDefault(new MessageDecodeError('m', 'number', 'not an object')));
  t.false(isPermanentByDefault(new Error('database busy')));
  t.false(isPermanentByDefault(new TypeError('fetch failed'))); // network errors are TypeErrors
  t.false(isPermanentByDefault(Object.assign(new Error('x'), { permanent: true })));
  // the atoms' bad-input errors are permanent; their JSON form is unchanged
  for (const e of [
    new EmptyContentError(),
    new ContentTooLargeError(9, 8),
    new InvalidUtf8Error(3),
  ]) {
    t.true(isPermanentByDefault(e), e.code);
    t.false('permanent' in e.toJSON());
  }
});

test('bad atom content (validateContent in the pipeline) is dead-lettered on its first delivery with its code; good content completes', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const queue = queueName('atoms');
  const bodies: Array<[string, string]> = [
    ['empty', ''],
    ['blank', '   \n '],
    ['nul', 'a\u0000b'],
    ['too-large', 'x'.repeat(300)],
    ['good-1', 'an atom'],
    ['good-2', 'another atom'],
  ];
  for (const [id, content] of bodies) peer.enqueue(queue, { message_id: id, body: { content } });
  const runs = new Map<string, number>();
  const w = serviceBusWorker({
    source: serviceBusSource<{ content: string }>({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queue,
      maxWaitTimeInMs: 1_000,
      decode: jsonObjectBody,
    }),
    pipeline: pipeline(
      'validate',
      step('validate', (input: { content: string }, ctx) => {
        const id = String(ctx.index);
        runs.set(id, (runs.get(id) ?? 0) + 1);
        return validateContent(input.content, { maxBytes: 256 }).byteSize;
      }),
    ),
  });
  w.start();
  await until(() => peer.deadLetters(queue).length === 4, 'bad content dead-lettered', 60_000);
  await until(() => peer.stats(queue).completed === 2, 'good content completed', 60_000);
  const report = await w.stop();
  const dead = new Map(peer.deadLetters(queue).map((m) => [m.messageId, m]));
  t.like(dead.get('empty'), { deadLetterReason: 'EMPTY_CONTENT', deliveryCount: 0 });
  t.like(dead.get('blank'), { deadLetterReason: 'EMPTY_CONTENT', deliveryCount: 0 });
  t.like(dead.get('nul'), { deadLetterReason: 'INVALID_UTF8', deliveryCount: 0 });
  t.like(dead.get('too-large'), { deadLetterReason: 'CONTENT_TOO_LARGE', deliveryCount: 0 });
  t.deepEqual(brokerCounts(peer, queue), { completed: 2, abandoned: 0, deadLettered: 4 });
  t.like(report, { completed: 2, abandoned: 0, deadLettered: 4 });
});

/** A Settleable that records what was done and when. */
function fakeItem(deliveryCount: number) {
  const calls: Array<[string, number]> = [];
  const item: Settleable = {
    deliveryCount,
    complete: async () => void calls.push(['complete', performance.now()]),
    abandon: async () => void calls.push(['abandon', performance.now()]),
    deadLetter: async () => void calls.push(['deadLetter', performance.now()]),
  };
  return { item, calls };
}

test('settleBy: waits the backoff for the delivery count before abandoning; an abort ends the wait', async (t) => {
  const { item, calls } = fakeItem(2);
  const start = performance.now();
  const action = await settleBy(
    item,
    { ok: false, error: new Error('busy') },
    { redeliveryBackoff: { strategy: 'exponential', baseMs: 40, maxMs: 1_000 } },
  );
  t.is(action, 'abandoned');
  // a lower bound only; libuv rounds timer deadlines to whole ms of its loop clock, so a timer
  // can fire up to 1 ms early by performance.now()
  const waited = (calls[0]?.[1] ?? 0) - start;
  t.true(waited >= 160 - 1.5, `waited 40 * 2^2 ms (${waited.toFixed(2)} ms)`);

  const held = fakeItem(0);
  const controller = new AbortController();
  const settling = settleBy(
    held.item,
    { ok: false, error: new Error('busy') },
    { redeliveryBackoff: { strategy: 'constant', baseMs: 600_000, maxMs: 600_000 } },
    { signal: controller.signal },
  );
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(held.calls, [], 'still waiting');
  controller.abort();
  t.is(await settling, 'abandoned');
  t.is(held.calls.length, 1);

  const none = fakeItem(5);
  t.is(
    await settleBy(
      none.item,
      { ok: false, error: new Error('x') },
      { redeliveryBackoff: false, maxDeliveryCount: 10 },
    ),
    'abandoned',
  );
  // permanent and last-delivery failures are never held
  const last = fakeItem(9);
  t.is(
    await settleBy(
      last.item,
      { ok: false, error: new Error('x') },
      { redeliveryBackoff: { strategy: 'constant', baseMs: 600_000, maxMs: 600_000 } },
    ),
    'deadLettered',
  );
});

test('a drain the broker answers late does not close the link (receiveDrainTimeoutMs): no lock is lost', async (t) => {
  // the peer answers every drain after 600 ms, as a stalled event loop would see it
  const peer = await startAmqpPeer({ drainDelayMs: 600 });
  t.teardown(() => peer.close());
  const receiveOnce = async (queue: string, receiveDrainTimeoutMs?: number) => {
    peer.enqueue(queue, { message_id: `${queue}-m`, body: { id: 'm' } });
    const source = serviceBusSource<Job>({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queue,
      maxWaitTimeInMs: 1_000,
      ...(receiveDrainTimeoutMs === undefined ? {} : { receiveDrainTimeoutMs }),
    });
    const { value: item } = await source.read();
    const settled = await item?.complete().then(
      () => true,
      () => false,
    );
    await source.close();
    return { settled, ...peer.stats(queue) };
  };
  // the library's default: the late answer is awaited, the link stays, the lock holds
  t.like(await receiveOnce(queueName('drain-default')), {
    settled: true,
    completed: 1,
    returnedOnClose: 0,
    consumerLinks: 1,
  });
  // the SDK's own 200 ms: the link is closed under the message, its lock is lost
  const sdk = await receiveOnce(queueName('drain-sdk'), 200);
  t.false(sdk.settled);
  t.is(sdk.completed, 0);
  t.true(sdk.returnedOnClose >= 1);
});
