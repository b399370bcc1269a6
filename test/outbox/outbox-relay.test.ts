import { getEventListeners } from 'node:events';
import test from 'ava';
import {
  MessageTooLargeError,
  type OutgoingMessage,
  PublishFailedError,
} from '../../lib/broker/publisher.js';
import { listDeadOutbox } from '../../lib/outbox/list-dead-outbox.js';
import { outboxHealth } from '../../lib/outbox/outbox-health.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import { replayDeadOutbox } from '../../lib/outbox/replay-dead-outbox.js';
import { memoryPublisher } from '../../lib/testing/memory-publisher.js';
import { databaseSuite } from '../support/databases.js';
import { clearOutbox, insertRows, rowsById } from '../support/outbox-helpers.js';
import { memoryLogger, memoryMeter } from '../support/telemetry.js';

const suite = await databaseSuite('outbox_relay');
const now = { strategy: 'constant', baseMs: 0, maxMs: 0 } as const;
const keyOf = (m: OutgoingMessage): string => String(m.applicationProperties?.aggregateKey);

suite.serial('publishes pending rows in id order and marks them published', async (t, db) => {
  await clearOutbox(db);
  const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const ids = await insertRows(db, [
    { key: 'a', type: 'atom.created', payload: { n: 1 }, traceparent: tp },
    { key: 'b', payload: { n: 2 } },
    { key: 'a', payload: { n: 3 } },
  ]);
  const publisher = memoryPublisher();
  const relay = outboxRelay({ db, publisher });
  t.deepEqual(await relay.runOnce(), { claimed: 3, published: 3, failed: 0, dead: 0 });
  const sent = publisher.messages;
  t.deepEqual(
    sent.map((m) => m.applicationProperties?.outboxId),
    ids,
  );
  t.like(sent[0], {
    body: { n: 1 },
    subject: 'atom.created',
    contentType: 'application/json',
    traceparent: tp,
    applicationProperties: { eventType: 'atom.created', aggregateKey: 'a', outboxId: ids[0] },
  });
  t.is(sent[1]?.traceparent, undefined);
  const state = await rowsById(db, ids);
  t.true([...state.values()].every((r) => r.published && !r.dead && r.attempts === 0));
  t.deepEqual(await relay.runOnce(), { claimed: 0, published: 0, failed: 0, dead: 0 });
  t.deepEqual(await outboxHealth(db), { pending: 0, dead: 0, oldestPendingAgeMs: 0 });
  await relay.stop();
});

suite.serial(
  'a failing key holds back only its own later rows; after maxAttempts it is dead, and replay publishes it first',
  async (t, db) => {
    await clearOutbox(db);
    const [bad1, good1, bad2, good2] = await insertRows(db, [
      { key: 'bad' },
      { key: 'good-1' },
      { key: 'bad' },
      { key: 'good-2' },
    ]);
    let broken = true;
    const publisher = memoryPublisher({
      fail: (messages) =>
        broken && messages.some((m) => keyOf(m) === 'bad')
          ? new PublishFailedError('memory', messages.length, 0, true, new Error('bad key'))
          : undefined,
    });
    const relay = outboxRelay({ db, publisher, maxAttempts: 3, backoff: now });

    // Round 1: the batch fails, key by key 'bad' fails first and nothing went out: stop.
    t.deepEqual(await relay.runOnce(), { claimed: 4, published: 0, failed: 1, dead: 0 });
    let state = await rowsById(db, [bad1!, bad2!]);
    t.like(state.get(bad1!), { attempts: 1, published: false, dead: false });
    t.regex(state.get(bad1!)?.lastError ?? '', /bad key/);
    t.like(state.get(bad2!), { attempts: 0, published: false });

    // Round 2: the good keys go out in one call; 'bad' fails again, its second row is never tried.
    t.deepEqual(await relay.runOnce(), { claimed: 4, published: 2, failed: 1, dead: 0 });
    t.deepEqual(publisher.messages.map(keyOf), ['good-1', 'good-2']);
    t.deepEqual(
      publisher.messages.map((m) => m.applicationProperties?.outboxId),
      [good1, good2],
    );
    // Round 3: the third attempt makes it dead; its later row stays pending, held back.
    t.deepEqual(await relay.runOnce(), { claimed: 2, published: 0, failed: 1, dead: 1 });
    state = await rowsById(db, [bad1!, bad2!]);
    t.like(state.get(bad1!), { attempts: 3, dead: true, published: false });
    t.like(state.get(bad2!), { attempts: 0, dead: false, published: false });
    t.deepEqual(await relay.runOnce(), { claimed: 0, published: 0, failed: 0, dead: 0 });

    const dead = await listDeadOutbox(db);
    t.deepEqual(
      dead.map((r) => r.id),
      [bad1],
    );
    t.like(dead[0], { aggregateKey: 'bad', attempts: 3 });
    t.regex(dead[0]?.lastError ?? '', /bad key/);
    t.true(dead[0]?.deadAt instanceof Date);
    const health = await relay.health();
    t.like(health, {
      pending: 1,
      dead: 1,
      name: 'outbox-relay',
      publishedTotal: 2,
      failedTotal: 3,
    });

    broken = false;
    t.is(await replayDeadOutbox(db, [bad1!, good1!]), 1);
    t.deepEqual(await listDeadOutbox(db), []);
    const flushed = await relay.flush();
    t.is(flushed.published, 2);
    t.deepEqual(
      publisher.messages.map((m) => m.applicationProperties?.outboxId),
      [good1, good2, bad1, bad2],
    );
    t.like(await outboxHealth(db), { pending: 0, dead: 0 });
    await relay.stop();
  },
);

suite.serial(
  'a message the broker can never take is dead at once; the rest of the batch goes out',
  async (t, db) => {
    await clearOutbox(db);
    const ids = await insertRows(db, [
      { key: 'k1', messageId: 'ok-1' },
      { key: 'huge', messageId: 'huge-1' },
      { key: 'huge', messageId: 'huge-2' },
      { key: 'k2', messageId: 'ok-2' },
    ]);
    const publisher = memoryPublisher({
      fail: (messages) =>
        messages.some((m) => m.messageId === 'huge-1')
          ? new MessageTooLargeError('huge-1', 'memory', 1024)
          : undefined,
    });
    const { logger, lines } = memoryLogger();
    const relay = outboxRelay({ db, publisher, logger });
    t.deepEqual(await relay.runOnce(), { claimed: 4, published: 2, failed: 1, dead: 1 });
    t.deepEqual(
      publisher.messages.map((m) => m.messageId),
      ['ok-1', 'ok-2'],
    );
    const state = await rowsById(db, ids);
    t.like(state.get(ids[1]!), { dead: true, attempts: 1 });
    t.like(state.get(ids[2]!), { dead: false, attempts: 0, published: false });
    t.true(lines().some((l) => l.event === 'outbox.dead' && l.messageId === 'huge-1'));
    t.true(lines().some((l) => l.event === 'outbox.published' && l.published === 2));
    await relay.stop();
  },
);

suite.serial(
  'rows the broker accepted before a failure are marked; the rest retried',
  async (t, db) => {
    await clearOutbox(db);
    await insertRows(db, [{ key: 'x' }, { key: 'y' }, { key: 'x' }, { key: 'z' }]);
    // The first call fails after the broker accepted the first two messages.
    const publisher = memoryPublisher({
      fail: (messages, call) => {
        if (call !== 1) return undefined;
        return new PublishFailedError(
          'memory',
          messages.length,
          2,
          true,
          new Error('link detached'),
        );
      },
    });
    const relay = outboxRelay({ db, publisher, backoff: now });
    const round = await relay.runOnce();
    // 2 sent before the failure were marked, the remaining two keys were sent key by key.
    t.deepEqual(round, { claimed: 4, published: 2 + 2, failed: 0, dead: 0 });
    t.deepEqual(publisher.messages.map(keyOf), ['x', 'z']);
    t.like(await outboxHealth(db), { pending: 0 });
    await relay.stop();
  },
);

suite.serial('health and the lag gauge report the oldest pending row', async (t, db) => {
  await clearOutbox(db);
  await insertRows(db, [
    { key: 'old', ageSeconds: 30 },
    { key: 'new', ageSeconds: 0 },
  ]);
  const { meter, collect } = memoryMeter();
  // The batch call and the first key's own call fail: one row is charged.
  const publisher = memoryPublisher({ fail: 2 });
  const relay = outboxRelay({ db, publisher, meter, name: 'lag-test', backoff: now });
  const health = await relay.health();
  t.is(health.pending, 2);
  t.true(health.oldestPendingAgeMs >= 30_000, String(health.oldestPendingAgeMs));
  t.true(health.oldestPendingAgeMs < 600_000);

  const gauge = async (name: string) => {
    const metric = (await collect()).find((m) => m.descriptor.name === name);
    return metric?.dataPoints.find((p) => p.attributes['outbox.relay'] === 'lag-test')?.value;
  };
  t.true(Number(await gauge('hartonomous.outbox.lag')) >= 30);
  t.is(await gauge('hartonomous.outbox.pending'), 2);
  t.is(await gauge('hartonomous.outbox.dead'), 0);

  t.like(await relay.runOnce(), { published: 0, failed: 1 });
  t.like(await relay.flush(), { published: 2, failed: 0 });
  t.is(await gauge('hartonomous.outbox.lag'), 0);
  t.is(await gauge('hartonomous.outbox.pending'), 0);
  const counters = await collect();
  const sum = (name: string) =>
    counters
      .find((m) => m.descriptor.name === name)
      ?.dataPoints.reduce((n, p) => n + Number(p.value), 0);
  t.is(sum('hartonomous.outbox.published'), 2);
  t.is(sum('hartonomous.outbox.publish.failures'), 1);

  await relay.stop();
  // After stop the gauge callback is gone: a new pending row is no longer observed.
  await insertRows(db, [{ key: 'after-stop' }]);
  t.is(await gauge('hartonomous.outbox.pending'), 0);
  t.is((await outboxHealth(db)).pending, 1);
  await clearOutbox(db);
});

suite.serial('start polls in the background; wake and stop; no listener left', async (t, db) => {
  await clearOutbox(db);
  const publisher = memoryPublisher();
  const controller = new AbortController();
  const relay = outboxRelay({
    db,
    publisher,
    pollIntervalMs: 60_000,
    batchSize: 7,
    signal: controller.signal,
  });
  t.is(relay.state, 'idle');
  relay.start();
  relay.start(); // idempotent
  t.is(relay.state, 'running');
  const ids = await insertRows(
    db,
    Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 4}` })),
  );
  relay.wake();
  const deadline = Date.now() + 10_000;
  while (publisher.messages.length < ids.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.is(publisher.messages.length, ids.length);
  // per key, id order
  for (let k = 0; k < 4; k++) {
    const order = publisher.messages
      .filter((m) => keyOf(m) === `k${k}`)
      .map((m) => Number(m.applicationProperties?.outboxId));
    t.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
    );
  }
  controller.abort();
  await relay.stop();
  t.is(relay.state, 'stopped');
  t.is(getEventListeners(controller.signal, 'abort').length, 0);
  await t.throwsAsync(relay.runOnce(), { instanceOf: TypeError });
  t.throws(() => relay.start(), { instanceOf: TypeError });
});

suite.serial(
  'a publish that hangs is aborted by publishTimeoutMs and counted as a failure',
  async (t, db) => {
    await clearOutbox(db);
    const [id] = await insertRows(db, [{ key: 'slow' }]);
    let signalSeen: AbortSignal | undefined;
    const relay = outboxRelay({
      db,
      publishTimeoutMs: 50,
      publisher: {
        publish: (_messages, signal) =>
          new Promise((_, reject) => {
            signalSeen = signal;
            signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
          }),
      },
    });
    t.deepEqual(await relay.runOnce(), { claimed: 1, published: 0, failed: 1, dead: 0 });
    t.true(signalSeen?.aborted);
    const row = (await rowsById(db, [id!])).get(id!);
    t.regex(row?.lastError ?? '', /timed out after 50 ms/);
    t.true(new Date(row?.nextAttemptAt ?? 0).getTime() > Date.now() - 60_000);
    await relay.stop();
  },
);

test('options are validated at creation', (t) => {
  const db = {} as never;
  const publisher = memoryPublisher();
  t.throws(() => outboxRelay(undefined as never), { instanceOf: TypeError });
  t.throws(() => outboxRelay({ db, publisher: {} as never }), { message: /publisher/ });
  t.throws(() => outboxRelay({ db, publisher, batchSize: 0 }), { message: /batchSize/ });
  t.throws(() => outboxRelay({ db, publisher, maxAttempts: 1.5 }), { message: /maxAttempts/ });
  t.throws(() => outboxRelay({ db, publisher, pollIntervalMs: -1 }), {
    message: /pollIntervalMs/,
  });
  t.throws(() => outboxRelay({ db, publisher, backoff: { baseMs: -1 } }), { message: /baseMs/ });
  t.throws(() => outboxRelay({ db, publisher, toMessage: 1 as never }), { message: /toMessage/ });
});
