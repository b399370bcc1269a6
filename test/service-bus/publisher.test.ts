import { getEventListeners } from 'node:events';
import { ServiceBusClient } from '@azure/service-bus';
import test from 'ava';
import {
  isMessageTooLargeError,
  isPublisherClosedError,
  isPublishFailedError,
  type OutgoingMessage,
} from '../../lib/broker/publisher.js';
import { LogEvents } from '../../lib/observability/log-events.js';
import { serviceBusPublisher } from '../../lib/service-bus/index.js';
import { startAmqpPeer } from '../support/amqp-peer.js';
import { capturingLogger, fastClient, until } from '../support/service-bus-helpers.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

function messages(n: number, pad = 0): OutgoingMessage[] {
  return Array.from({ length: n }, (_, i) => ({
    messageId: `m-${i}`,
    body: { i, pad: 'x'.repeat(pad) },
  }));
}

test('publishes every field: messageId, correlationId, contentType, subject, properties, Diagnostic-Id', async (t) => {
  const peer = await startAmqpPeer();
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'pub-fields',
  });
  t.teardown(() => peer.close());
  await publisher.publish([
    {
      messageId: 'sha256:abc',
      body: { atomId: 42 },
      contentType: 'application/json',
      correlationId: 'corr-1',
      subject: 'atom.created',
      applicationProperties: { kind: 'atom', n: 3, ok: true },
      traceparent: TRACEPARENT,
      tracestate: 'vendor=1',
    },
    { messageId: 'plain', body: 'text' },
  ]);
  await publisher.close();
  const sent = peer.sent('pub-fields');
  t.is(sent.length, 2);
  const [first, second] = sent;
  t.is(first?.messageId, 'sha256:abc');
  t.is(first?.correlationId, 'corr-1');
  t.is(first?.contentType, 'application/json');
  t.is(first?.subject, 'atom.created');
  t.deepEqual(first?.body, { atomId: 42 });
  t.deepEqual(first?.applicationProperties, {
    kind: 'atom',
    n: 3,
    ok: true,
    'Diagnostic-Id': TRACEPARENT,
    tracestate: 'vendor=1',
  });
  t.is(second?.messageId, 'plain');
  t.is(second?.body, 'text');
  // No span is active and none was given: no trace context is invented.
  t.false('Diagnostic-Id' in (second?.applicationProperties ?? {}));
  t.deepEqual(
    peer.messages('pub-fields').map((m) => m.messageId),
    ['sha256:abc', 'plain'],
  );
});

test('splits into several batches when the broker limit is reached, keeping order', async (t) => {
  const peer = await startAmqpPeer({ maxMessageSize: 4096 });
  t.teardown(() => peer.close());
  const { logger, records } = capturingLogger();
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'pub-split',
    logger,
  });
  const batch = messages(40, 300);
  await publisher.publish(batch);
  await publisher.close();
  const sentEvents = records.filter((r) => r.eventId === LogEvents.serviceBusSent.id);
  t.true(sentEvents.length >= 3, `expected several batches, got ${sentEvents.length}`);
  t.is(
    sentEvents.reduce((n, r) => n + Number(r.messages), 0),
    40,
  );
  for (const r of sentEvents) t.true(Number(r.bytes) <= 4096);
  const sent = peer.sent('pub-split');
  t.true(sent.every((m) => m.batched));
  t.deepEqual(
    sent.map((m) => m.messageId),
    batch.map((m) => m.messageId),
  );
});

test('a message too large for an empty batch fails with MessageTooLargeError and sends nothing', async (t) => {
  const peer = await startAmqpPeer({ maxMessageSize: 2048 });
  t.teardown(() => peer.close());
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'pub-large',
  });
  t.teardown(() => publisher.close());
  const error = await t.throwsAsync(
    publisher.publish([...messages(3), { messageId: 'huge', body: 'y'.repeat(5000) }]),
  );
  t.true(isMessageTooLargeError(error));
  t.like(error, { messageId: 'huge', destination: 'pub-large', maxSizeInBytes: 2048 });
  t.is(peer.sent('pub-large').length, 0);
  // The publisher still works afterwards.
  await publisher.publish(messages(2));
  t.is(peer.sent('pub-large').length, 2);
});

test('duplicate detection on the broker drops a replay with the same messageId', async (t) => {
  const peer = await startAmqpPeer({ duplicateDetectionWindowMs: 60_000 });
  t.teardown(() => peer.close());
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'pub-dedupe',
  });
  t.teardown(() => publisher.close());
  await publisher.publish(messages(3));
  await publisher.publish(messages(3)); // e.g. a relay that crashed before marking rows sent
  t.is(peer.messages('pub-dedupe').length, 3);
  t.deepEqual(
    peer.sent('pub-dedupe').map((m) => m.duplicate),
    [false, false, false, true, true, true],
  );
});

test('broker outage: publish fails with a transient PublishFailedError, then succeeds after restart', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    // While the broker is down the SDK waits for the link up to timeoutInMs, then fails.
    clientOptions: { retryOptions: { ...fastClient.retryOptions, timeoutInMs: 1_000 } },
    queueOrTopic: 'pub-outage',
  });
  t.teardown(() => publisher.close());
  await publisher.publish(messages(1));

  await peer.stop();
  const error = await t.throwsAsync(publisher.publish([{ messageId: 'during', body: 1 }]));
  t.true(isPublishFailedError(error), String(error));
  t.like(error, { destination: 'pub-outage', attempted: 1, sent: 0, transient: true });
  t.regex(String((error as Error).message), /pub-outage/);

  await peer.start();
  await publisher.publish([{ messageId: 'after', body: 2 }]);
  t.deepEqual(
    peer.messages('pub-outage').map((m) => m.messageId),
    ['m-0', 'after'],
  );
});

test('an aborted signal rejects with its reason and leaves no abort listener', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'pub-abort',
  });
  t.teardown(() => publisher.close());

  const before = new AbortController();
  const reason = new Error('stop');
  before.abort(reason);
  t.is(await t.throwsAsync(publisher.publish(messages(1), before.signal)), reason);

  const during = new AbortController();
  const pending = publisher.publish(messages(5), during.signal);
  during.abort(reason);
  t.is(await t.throwsAsync(pending), reason);
  t.is(getEventListeners(during.signal, 'abort').length, 0);

  const live = new AbortController();
  await publisher.publish(messages(2), live.signal);
  t.is(getEventListeners(live.signal, 'abort').length, 0);
  t.true(peer.sent('pub-abort').length >= 2);
});

test('close closes the owned client; publish afterwards rejects with PublisherClosedError', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const publisher = serviceBusPublisher({
    connectionString: peer.connectionString,
    clientOptions: fastClient,
    queueOrTopic: 'pub-close',
  });
  await publisher.publish(messages(1));
  t.is(peer.connectionCount(), 1);
  await Promise.all([publisher.close(), publisher.close()]);
  await until(() => peer.connectionCount() === 0, 'the connection to close');
  t.true(isPublisherClosedError(await t.throwsAsync(publisher.publish(messages(1)))));
});

test('a client passed in is used and left open', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  const publisher = serviceBusPublisher({ client, queueOrTopic: 'pub-client' });
  await publisher.publish(messages(2));
  await publisher.close();
  const receiver = client.createReceiver('pub-client');
  const received = await receiver.receiveMessages(2, { maxWaitTimeInMs: 500 });
  t.deepEqual(
    received.map((m) => m.messageId),
    ['m-0', 'm-1'],
  );
  await receiver.close();
});

test('options and messages are validated', async (t) => {
  t.throws(() => serviceBusPublisher({ queueOrTopic: 'q' }), { instanceOf: TypeError });
  t.throws(() => serviceBusPublisher({ connectionString: 'Endpoint=sb://x/', queueOrTopic: '' }), {
    instanceOf: TypeError,
  });
  const client = new ServiceBusClient(
    'Endpoint=sb://localhost:1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
  );
  t.teardown(() => client.close());
  t.throws(
    () => serviceBusPublisher({ client, connectionString: 'Endpoint=sb://x/', queueOrTopic: 'q' }),
    { instanceOf: TypeError },
  );
  const publisher = serviceBusPublisher({ client, queueOrTopic: 'q' });
  await t.throwsAsync(publisher.publish([{ messageId: '', body: 1 }]), { instanceOf: TypeError });
  await publisher.publish([]); // nothing to do, no connection needed
  await publisher.close();
});
