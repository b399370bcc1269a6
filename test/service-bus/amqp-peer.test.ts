import { setTimeout as delay } from 'node:timers/promises';
import { ServiceBusClient } from '@azure/service-bus';
import test from 'ava';
import { startAmqpPeer } from '../support/amqp-peer.js';
import { fastClient, until } from '../support/service-bus-helpers.js';

// Tests of the test double itself, through the real SDK: what the other tests rely on.

test('an expired lock returns the message with deliveryCount + 1; settling it then fails with lock lost', async (t) => {
  // long enough that the lock outlives the receive call even on a loaded machine
  const peer = await startAmqpPeer({ lockDurationMs: 3_000 });
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  await client.createSender('peer-expire').sendMessages({ body: 'x', messageId: 'x' });
  const receiver = client.createReceiver('peer-expire', { maxAutoLockRenewalDurationInMs: 0 });
  const [first] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
  t.is(first?.deliveryCount, 0);
  t.true((first?.lockedUntilUtc?.getTime() ?? 0) > Date.now());
  await until(() => peer.stats('peer-expire').lockExpired === 1, 'the lock to expire');
  const error = await t.throwsAsync(receiver.completeMessage(first!));
  t.is((error as { code?: string }).code, 'MessageLockLost');
  const [again] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 5_000 });
  t.is(again?.messageId, 'x');
  t.is(again?.deliveryCount, 1);
  await receiver.completeMessage(again!);
  t.deepEqual(peer.messages('peer-expire'), []);
});

test('closing a receiver returns its locked messages; messages are never over-delivered', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  await client
    .createSender('peer-close')
    .sendMessages(Array.from({ length: 6 }, (_, i) => ({ body: i, messageId: `m${i}` })));
  const receiver = client.createReceiver('peer-close');
  const got = await receiver.receiveMessages(4, { maxWaitTimeInMs: 500 });
  t.is(got.length, 4);
  // The drain at the end of receiveMessages leaves no credit: nothing more is delivered.
  await delay(100);
  t.is(peer.messages('peer-close').filter((m) => m.state === 'locked').length, 4);
  await receiver.completeMessage(got[0]!);
  await receiver.close();
  await until(
    () => peer.messages('peer-close').every((m) => m.state === 'available'),
    'locks to be released',
  );
  t.deepEqual(
    peer.messages('peer-close').map((m) => [m.messageId, m.deliveryCount]),
    [
      ['m1', 1],
      ['m2', 1],
      ['m3', 1],
      ['m4', 0],
      ['m5', 0],
    ],
  );
  t.is(peer.stats('peer-close').returnedOnClose, 3);
});

test('empty receives complete their drain quickly and the same receiver keeps working', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  const receiver = client.createReceiver('peer-drain');
  for (let i = 0; i < 3; i++) {
    t.deepEqual(await receiver.receiveMessages(5, { maxWaitTimeInMs: 50 }), []);
  }
  peer.enqueue('peer-drain', { message_id: 'late', body: 'hello' });
  const [m] = await receiver.receiveMessages(5, { maxWaitTimeInMs: 5_000 });
  t.is(m?.messageId, 'late');
  t.is(m?.body, 'hello');
  await receiver.completeMessage(m!);
  t.is(peer.stats('peer-drain').completed, 1);
  // Every drain was answered. (The SDK gives a drain 200 ms and then closes and re-attaches the
  // link; on a stalled event loop that happens whatever the peer does, so the link count is no
  // measure of the peer here: the answers are.)
  const { drainsAnswered, consumerLinks } = peer.stats('peer-drain');
  t.true(drainsAnswered >= 4, `${drainsAnswered} drains answered`);
  t.true(consumerLinks >= 1);
});

test('peek answers 204 when empty and lists messages by sequence number otherwise', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  const receiver = client.createReceiver('peer-peek');
  t.deepEqual(await receiver.peekMessages(5), []);
  peer.enqueue('peer-peek', { body: 'one' });
  peer.enqueue('peer-peek', { body: 'two' });
  const peeked = await receiver.peekMessages(5);
  t.deepEqual(
    peeked.map((m) => m.body),
    ['one', 'two'],
  );
  // The peer assigned message ids.
  t.true(peeked.every((m) => typeof m.messageId === 'string' && m.messageId.length > 0));
  t.is(peer.messages('peer-peek').length, 2);
});

test('the peer dead-letters after its own maxDeliveryCount, like the broker', async (t) => {
  const peer = await startAmqpPeer({ maxDeliveryCount: 2 });
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  peer.enqueue('peer-max', { message_id: 'p', body: 'p' });
  const receiver = client.createReceiver('peer-max');
  for (let i = 0; i < 2; i++) {
    const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
    await receiver.abandonMessage(m!);
  }
  t.deepEqual(peer.messages('peer-max'), []);
  t.like(peer.deadLetters('peer-max')[0], {
    messageId: 'p',
    deadLetterReason: 'MaxDeliveryCountExceeded',
    deliveryCount: 2,
  });
});

test('renewing an unknown lock fails with MessageLockLost', async (t) => {
  const peer = await startAmqpPeer();
  t.teardown(() => peer.close());
  const client = new ServiceBusClient(peer.connectionString, fastClient);
  t.teardown(() => client.close());
  peer.enqueue('peer-renew', { message_id: 'r', body: 'r' });
  const receiver = client.createReceiver('peer-renew', { maxAutoLockRenewalDurationInMs: 0 });
  const [m] = await receiver.receiveMessages(1, { maxWaitTimeInMs: 500 });
  const renewed = await receiver.renewMessageLock(m!);
  t.true(renewed.getTime() > Date.now());
  await receiver.completeMessage(m!);
  const error = await t.throwsAsync(receiver.renewMessageLock(m!));
  t.is((error as { code?: string }).code, 'MessageLockLost');
});
