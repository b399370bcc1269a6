import { getEventListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { ServiceBusClient } from '@azure/service-bus';
import test from 'ava';
import { PipelineError } from '../../lib/core/errors.js';
import {
  type ReceivedItem,
  serviceBusPublisher,
  serviceBusSource,
  settleBy,
} from '../../lib/service-bus/index.js';
import { type AmqpPeer, startAmqpPeer } from '../support/amqp-peer.js';
import { fastClient, until } from '../support/service-bus-helpers.js';

async function fill(peer: AmqpPeer, queue: string, ids: string[]): Promise<void> {
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: queue,
  });
  await publisher.publish(ids.map((id) => ({ messageId: id, body: { id } })));
  await publisher.close();
}

const ids = (prefix: string, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

class Permanent extends PipelineError {
  readonly code = 'PERMANENT' as const;
}

test('receives and completes: the queue ends empty', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-complete', ids('a', 5));
  const source = serviceBusSource<{ id: string }>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-complete',
    maxWaitTimeInMs: 200,
  });
  const seen: string[] = [];
  for await (const item of source) {
    t.is(item.body.id, item.messageId);
    t.is(item.deliveryCount, 0);
    seen.push(item.messageId);
    await item.complete();
    t.is(item.settled, 'completed');
    if (seen.length === 5) break;
  }
  await source.close();
  t.deepEqual(seen, ids('a', 5));
  t.deepEqual(peer.messages('src-complete'), []);
  t.is(peer.stats('src-complete').completed, 5);
  t.is(source.inFlight, 0);
});

test('abandon puts the message back; it is redelivered with deliveryCount + 1', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-abandon', ['only']);
  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-abandon',
    maxWaitTimeInMs: 200,
  });
  const counts: number[] = [];
  for await (const item of source) {
    counts.push(item.deliveryCount);
    if (counts.length < 3) await item.abandon(new Error('try later'));
    else {
      await item.complete();
      break;
    }
  }
  await source.close();
  t.deepEqual(counts, [0, 1, 2]);
  t.is(peer.stats('src-abandon').abandoned, 2);
  t.deepEqual(peer.messages('src-abandon'), []);
});

test('dead-letter moves the message with its reason and description', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-dlq', ['bad', 'good']);
  const source = serviceBusSource<{ id: string }>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-dlq',
    maxWaitTimeInMs: 200,
  });
  let n = 0;
  for await (const item of source) {
    if (item.body.id === 'bad') {
      await item.deadLetter({ reason: 'SchemaViolation', description: 'field x missing' });
    } else await item.complete();
    if (++n === 2) break;
  }
  await source.close();
  const dead = peer.deadLetters('src-dlq');
  t.is(dead.length, 1);
  t.like(dead[0], {
    messageId: 'bad',
    deadLetterReason: 'SchemaViolation',
    deadLetterDescription: 'field x missing',
  });
  t.deepEqual(peer.messages('src-dlq'), []);

  // The SDK sees the reason on the dead-letter sub-queue too.
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  const dlq = client.createReceiver('src-dlq', { subQueueType: 'deadLetter' });
  const [m] = await dlq.receiveMessages(1, { maxWaitTimeInMs: 500 });
  t.is(m?.deadLetterReason, 'SchemaViolation');
  t.is(m?.deadLetterErrorDescription, 'field x missing');
  await client.close();
});

test('settle helpers are idempotent: the first call decides', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-idem', ['x']);
  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-idem',
    maxWaitTimeInMs: 200,
  });
  for await (const item of source) {
    const first = item.complete();
    t.is(item.complete(), first);
    t.is(item.abandon(), first);
    await first;
    await item.deadLetter({ reason: 'ignored' });
    t.is(item.settled, 'completed');
    break;
  }
  await source.close();
  t.is(peer.stats('src-idem').completed, 1);
  t.is(peer.deadLetters('src-idem').length, 0);
  t.deepEqual(peer.messages('src-idem'), []);
});

test('a poison message is dead-lettered after maxDeliveryCount attempts without blocking the others', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-poison', ['poison', ...ids('ok', 6)]);
  const source = serviceBusSource<{ id: string }>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-poison',
    maxDeliveryCount: 3,
    maxConcurrent: 2,
    maxWaitTimeInMs: 200,
    redeliveryBackoff: false,
  });
  const attempts: number[] = [];
  const completed: string[] = [];
  for await (const item of source) {
    if (item.body.id === 'poison') {
      attempts.push(item.deliveryCount);
      const action = await item.settleBy({ ok: false, error: new Error('transient?') });
      t.is(action, attempts.length < 3 ? 'abandoned' : 'deadLettered');
    } else {
      t.is(await item.settleBy({ ok: true }), 'completed');
      completed.push(item.messageId);
    }
    if (completed.length === 6 && peer.deadLetters('src-poison').length === 1) break;
  }
  await source.close();
  t.deepEqual(attempts, [0, 1, 2]);
  t.deepEqual([...completed].sort(), ids('ok', 6));
  const [dead] = peer.deadLetters('src-poison');
  t.is(dead?.messageId, 'poison');
  t.is(dead?.deadLetterReason, 'MaxDeliveryCountExceeded');
  t.regex(dead?.deadLetterDescription ?? '', /failed 3 deliveries; last error: transient\?/);
  t.deepEqual(peer.messages('src-poison'), []);
});

test('a permanent failure is dead-lettered at once; isPermanent can be customised', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-perm', ['p1', 'p2', 'p3']);
  const source = serviceBusSource<{ id: string }>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-perm',
    maxWaitTimeInMs: 200,
    redeliveryBackoff: false,
    isPermanent: (e) => e instanceof RangeError,
  });
  const actions: string[] = [];
  for await (const item of source) {
    const error =
      item.body.id === 'p1'
        ? new RangeError('out of range')
        : new Error('wrapped', { cause: new Permanent('no') });
    actions.push(await item.settleBy({ ok: false, error }));
    if (actions.length === 3) break;
  }
  await source.close();
  // p1: custom predicate; p2/p3: not permanent for the custom predicate -> abandoned.
  t.deepEqual(actions, ['deadLettered', 'abandoned', 'abandoned']);
  t.like(peer.deadLetters('src-perm')[0], { messageId: 'p1', deadLetterReason: 'RangeError' });

  // The default predicate finds a PermanentError (code PERMANENT) in the cause chain.
  const item = {
    deliveryCount: 0,
    done: '',
    async complete() {
      this.done = 'complete';
    },
    async abandon() {
      this.done = 'abandon';
    },
    async deadLetter(d: { reason: string }) {
      this.done = `dead:${d.reason}`;
    },
  };
  await settleBy(item, {
    ok: false,
    error: new Error('step failed', { cause: new Permanent('x') }),
  });
  t.is(item.done, 'dead:Error');
});

test('a message that cannot be decoded, or already had maxDeliveryCount deliveries, never reaches the consumer', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-decode', ['undecodable', 'fine']);
  peer.enqueue('src-decode', { message_id: 'worn-out', body: 'x', delivery_count: 0 });
  const source = serviceBusSource<string>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-decode',
    maxWaitTimeInMs: 200,
    maxDeliveryCount: 1,
    decode: (m) => {
      const body = m.body as { id?: string } | string;
      if (typeof body === 'object' && body.id === 'undecodable') throw new SyntaxError('bad json');
      return typeof body === 'string' ? body : String(body.id);
    },
  });
  const seen: string[] = [];
  for await (const item of source) {
    seen.push(item.body);
    await item.abandon(); // deliveryCount becomes 1 = maxDeliveryCount
    if (seen.length === 2) break;
  }
  await source.close();
  t.deepEqual(seen, ['fine', 'x']);
  await until(
    () => peer.deadLetters('src-decode').length === 1,
    'the decode failure to be dead-lettered',
  );
  t.like(peer.deadLetters('src-decode')[0], {
    messageId: 'undecodable',
    deadLetterReason: 'DecodeFailed',
    deadLetterDescription: 'bad json',
  });

  // Both abandoned messages now have deliveryCount 1: the next source dead-letters them on arrival.
  const again = serviceBusSource<string>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-decode',
    maxWaitTimeInMs: 100,
    maxDeliveryCount: 1,
  });
  const ac = new AbortController();
  const consumed: string[] = [];
  const loop = (async () => {
    for await (const item of again) consumed.push(item.messageId);
  })();
  await until(
    () => peer.deadLetters('src-decode').length === 3,
    'worn-out messages to be dead-lettered',
  );
  ac.abort();
  await again.close();
  await loop;
  t.deepEqual(consumed, []);
  t.deepEqual(
    peer
      .deadLetters('src-decode')
      .filter((m) => m.deadLetterReason === 'MaxDeliveryCountExceeded')
      .map((m) => m.messageId)
      .sort(),
    ['fine', 'worn-out'],
  );
});

test('different settlements in the same tick each keep their own outcome', async (t) => {
  // rhea 3.0.5 merges same-tick dispositions of consecutive deliveries (B would be completed).
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-tick', ['A', 'B', 'C']);
  const source = serviceBusSource<{ id: string }>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-tick',
    maxWaitTimeInMs: 200,
  });
  const it = source[Symbol.asyncIterator]();
  const items: Array<ReceivedItem<{ id: string }>> = [];
  for (let i = 0; i < 3; i++) items.push((await it.next()).value as ReceivedItem<{ id: string }>);
  const [a, b, c] = items;
  await Promise.all([a?.complete(), b?.abandon(), c?.deadLetter({ reason: 'R' })]);
  await source.close();
  t.deepEqual(
    peer.messages('src-tick').map((m) => m.messageId),
    ['B'],
  );
  t.deepEqual(
    peer.deadLetters('src-tick').map((m) => m.messageId),
    ['C'],
  );
  t.like(peer.stats('src-tick'), { completed: 1, abandoned: 1, deadLettered: 1 });
});

test('demand-driven: never more than maxConcurrent messages are locked', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  await fill(peer, 'src-demand', ids('d', 10));
  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-demand',
    maxConcurrent: 3,
    maxWaitTimeInMs: 100,
  });
  const it = source[Symbol.asyncIterator]();
  const held: Array<ReceivedItem<unknown>> = [];
  for (let i = 0; i < 3; i++) held.push((await it.next()).value as ReceivedItem<unknown>);
  t.is(source.inFlight, 3);
  // A fourth request waits for capacity: it must not receive more.
  const fourth = it.next();
  await delay(300);
  const locked = peer.messages('src-demand').filter((m) => m.state === 'locked');
  t.is(locked.length, 3);
  t.is(source.buffered, 0);
  await held[0]?.complete();
  const next = (await fourth).value as ReceivedItem<unknown>;
  t.is(next.messageId, 'd-3');
  t.true(peer.messages('src-demand').filter((m) => m.state === 'locked').length <= 3);
  await Promise.all([held[1]?.complete(), held[2]?.complete(), next.complete()]);
  await source.close();
  t.is(peer.messages('src-demand').length, 6);
  t.is(peer.messages('src-demand').filter((m) => m.state === 'locked').length, 0);
});

test('auto lock renewal keeps a message locked beyond the lock duration', async (t) => {
  const peer = await startAmqpPeer({ lockDurationMs: 4_000 });
  t.teardown(() => peer.close());
  await fill(peer, 'src-renew', ['long']);
  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-renew',
    maxWaitTimeInMs: 1_000,
    maxAutoLockRenewalDurationInMs: 60_000,
  });
  for await (const item of source) {
    await delay(6_000); // longer than the lock; the SDK renews it before it ends
    try {
      await item.complete();
      break;
    } catch (e) {
      // a stalled event loop can make the SDK close its link (a drain over 200 ms): the lock
      // is then lost by the link, not by expiry, and the message comes back; try again
      if (peer.stats('src-renew').returnedOnClose === 0) throw e;
    }
  }
  await source.close();
  const stats = peer.stats('src-renew');
  t.true(stats.renewed >= 1);
  t.is(stats.lockExpired, 0, 'renewal kept the lock');
  t.is(stats.completed, 1);
  t.deepEqual(peer.messages('src-renew'), []);
});

test('manual renewLock works too; without renewal the lock is lost and the message comes back', async (t) => {
  // a 10 s lock and waits that a loaded machine can stretch by seconds without changing which
  // lock is held when: renewed at ~0 s and ~5 s (until ~15 s), the other ends at 10 s
  const peer = await startAmqpPeer({ lockDurationMs: 10_000 });
  t.teardown(() => peer.close());
  await fill(peer, 'src-manual', ['renewed', 'expires']);
  const source = serviceBusSource<{ id: string }>({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-manual',
    maxWaitTimeInMs: 200,
    maxConcurrent: 2,
    maxAutoLockRenewalDurationInMs: 0,
  });
  const it = source[Symbol.asyncIterator]();
  const a = (await it.next()).value as ReceivedItem<{ id: string }>;
  const b = (await it.next()).value as ReceivedItem<{ id: string }>;
  const [renewed, expires] = a.body.id === 'renewed' ? [a, b] : [b, a];
  const until1 = await renewed.renewLock();
  t.true(until1.getTime() > Date.now());
  await delay(5_000);
  await renewed.renewLock();
  await until(
    () => peer.stats('src-manual').lockExpired === 1,
    'the unrenewed lock to end',
    60_000,
  );
  await renewed.complete();
  const error = await t.throwsAsync(expires.complete());
  t.regex(String(error), /lock/i);
  await source.close();
  t.is(peer.stats('src-manual').lockExpired, 1);
  t.deepEqual(
    peer.messages('src-manual').map((m) => [m.messageId, m.deliveryCount, m.state]),
    [['expires', 1, 'available']],
  );
});

test('closing mid-stream loses nothing: every message is completed or back in the queue', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const all = ids('c', 20);
  await fill(peer, 'src-close', all);
  const ac = new AbortController();
  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-close',
    maxConcurrent: 4,
    maxWaitTimeInMs: 200,
    signal: ac.signal,
  });
  const completed: string[] = [];
  const held: Array<ReceivedItem<unknown>> = [];
  for await (const item of source) {
    if (completed.length < 5) {
      await item.complete();
      completed.push(item.messageId);
      continue;
    }
    held.push(item);
    if (held.length === 2) break; // stops receiving; 2 items still in flight
  }
  t.is(source.inFlight, 2);
  const closed = source.close();
  // In-flight items can still be settled after close was called.
  for (const item of held) {
    await item.complete();
    completed.push(item.messageId);
  }
  await closed;
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  await until(
    () => peer.messages('src-close').every((m) => m.state === 'available'),
    'locks to be released',
  );
  const left = peer.messages('src-close').map((m) => m.messageId);
  t.is(completed.length, 7);
  t.deepEqual([...completed, ...left].sort(), [...all].sort());
  t.is(peer.stats('src-close').completed, 7);
});

test('aborting the signal closes the source and ends iteration', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const ac = new AbortController();
  const source = serviceBusSource({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queue: 'src-signal',
    maxWaitTimeInMs: 100,
    signal: ac.signal,
  });
  const loop = (async () => {
    let n = 0;
    for await (const _ of source) n++;
    return n;
  })();
  await delay(150);
  ac.abort();
  t.is(await loop, 0);
  await source.close();
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  await until(() => peer.connectionCount() === 0, 'the owned client to close');
});

test('options are validated', (t) => {
  const connectionString =
    'Endpoint=sb://localhost:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true';
  t.throws(() => serviceBusSource({ connectionString, queue: '' }), { instanceOf: TypeError });
  t.throws(() => serviceBusSource({ connectionString, queue: 'q', maxConcurrent: 0 }), {
    instanceOf: TypeError,
  });
  t.throws(() => serviceBusSource({ connectionString, queue: 'q', prefetch: 1.5 }), {
    instanceOf: TypeError,
  });
  t.throws(() => serviceBusSource({ queue: 'q' }), { instanceOf: TypeError });
});
