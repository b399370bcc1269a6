import { getEventListeners } from 'node:events';
import test from 'ava';
import {
  isPublisherClosedError,
  isPublishFailedError,
  MessageTooLargeError,
  PublishFailedError,
} from '../../lib/broker/publisher.js';
import { memoryPublisher } from '../../lib/testing/memory-publisher.js';

test('memoryPublisher records messages in order', async (t) => {
  const p = memoryPublisher();
  await p.publish([
    { messageId: 'a', body: 1 },
    { messageId: 'b', body: 2 },
  ]);
  await p.publish([]);
  await p.publish([{ messageId: 'a', body: 3 }]);
  t.deepEqual(
    p.messages.map((m) => [m.messageId, m.body]),
    [
      ['a', 1],
      ['b', 2],
      ['a', 3],
    ],
  );
  t.is(p.calls, 3);
  p.clear();
  t.deepEqual(p.messages, []);
});

test('dedupe drops repeated ids like broker duplicate detection', async (t) => {
  const p = memoryPublisher({ dedupe: true });
  await p.publish([
    { messageId: 'a', body: 1 },
    { messageId: 'a', body: 1 },
  ]);
  await p.publish([{ messageId: 'a', body: 1 }]);
  t.is(p.messages.length, 1);
  t.is(p.duplicates, 2);
});

test('fail: n injects n transient PublishFailedErrors, then publishes', async (t) => {
  const p = memoryPublisher({ fail: 2, destination: 'outbox' });
  for (let i = 0; i < 2; i++) {
    const e = await t.throwsAsync(p.publish([{ messageId: 'x', body: 1 }]));
    t.true(isPublishFailedError(e));
    t.like(e, { destination: 'outbox', attempted: 1, sent: 0, transient: true });
  }
  await p.publish([{ messageId: 'x', body: 1 }]);
  t.is(p.messages.length, 1);
});

test('fail as a function decides per call', async (t) => {
  const tooLarge = new MessageTooLargeError('big', 'q', 10);
  const p = memoryPublisher({
    fail: (messages) => (messages.some((m) => m.messageId === 'big') ? tooLarge : undefined),
  });
  t.is(await t.throwsAsync(p.publish([{ messageId: 'big', body: 1 }])), tooLarge);
  await p.publish([{ messageId: 'small', body: 1 }]);
  t.deepEqual(
    p.messages.map((m) => m.messageId),
    ['small'],
  );
});

test('capacity keeps the newest messages', async (t) => {
  const p = memoryPublisher({ capacity: 2 });
  await p.publish([1, 2, 3].map((n) => ({ messageId: String(n), body: n })));
  t.deepEqual(
    p.messages.map((m) => m.body),
    [2, 3],
  );
});

test('abort rejects with the reason; close rejects later calls', async (t) => {
  const p = memoryPublisher();
  const ac = new AbortController();
  const reason = new Error('stop');
  ac.abort(reason);
  t.is(await t.throwsAsync(p.publish([{ messageId: 'a', body: 1 }], ac.signal)), reason);
  t.is(getEventListeners(ac.signal, 'abort').length, 0);
  await p.close();
  t.true(p.closed);
  t.true(isPublisherClosedError(await t.throwsAsync(p.publish([{ messageId: 'a', body: 1 }]))));
  t.deepEqual(p.messages, []);
});

test('messages and options are validated', async (t) => {
  const p = memoryPublisher();
  await t.throwsAsync(p.publish([{ messageId: '', body: 1 }]), { instanceOf: TypeError });
  await t.throwsAsync(p.publish([null as never]), { instanceOf: TypeError });
  t.throws(() => memoryPublisher({ fail: -1 }), { instanceOf: TypeError });
  t.throws(() => memoryPublisher({ capacity: 0 }), { instanceOf: TypeError });
});

test('PublishFailedError describes itself for logs', (t) => {
  const e = new PublishFailedError('q', 3, 1, false, new Error('entity not found'));
  t.like(e.toJSON(), {
    name: 'PublishFailedError',
    code: 'PUBLISH_FAILED',
    destination: 'q',
    attempted: 3,
    sent: 1,
    transient: false,
    cause: { message: 'entity not found' },
  });
  t.regex(e.message, /publishing 3 message\(s\) to 'q' failed after 1 were sent: entity not found/);
});
