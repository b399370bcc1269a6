import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ingest } from '../../lib/atoms/ingest.js';
import { outboxHealth } from '../../lib/outbox/outbox-health.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import { serviceBusPublisher } from '../../lib/service-bus/publisher.js';
import { startAmqpPeer } from '../support/amqp-peer.js';
import { databaseSuite } from '../support/databases.js';
import { fastClient } from '../support/service-bus-helpers.js';

const suite = await databaseSuite('outbox_outage');

async function until(check: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(25);
  }
}

suite.serial(
  'the broker is down: atoms still commit, the outbox grows, and the events go out when it returns',
  async (t, db, backend) => {
    const peer = await startAmqpPeer();
    t.teardown(() => peer.close());
    const queue = `events-${process.pid}-${backend}`;
    const publisher = serviceBusPublisher({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queueOrTopic: queue,
    });
    const relay = outboxRelay({
      db,
      publisher,
      pollIntervalMs: 20,
      maxAttempts: 1_000, // an outage must not make rows dead
      backoff: { strategy: 'constant', baseMs: 50, maxMs: 50 },
      publishTimeoutMs: 2_000,
    });
    t.teardown(async () => {
      await relay.stop();
      await publisher.close();
    });
    relay.start();
    const tag = randomBytes(4).toString('hex');
    const contents = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => ({ content: `${tag} ${prefix} ${i}` }));

    const before = await ingest(contents('before', 20), { db });
    t.is(before.added, 20);
    await until(
      () => new Set(peer.sent(queue).map((m) => m.messageId)).size === 20,
      'first events',
    );

    await peer.stop();
    const during = contents('during', 30);
    const input = [...during, ...during.slice(0, 5), { content: '' }];
    const report = await ingest(input, { db });
    // The database does not need the broker: every new atom committed with its outbox row.
    t.is(report.added, 30);
    t.is(report.duplicates, 5);
    t.is(report.failed, 1);
    t.is(report.added + report.duplicates + report.failed, input.length);
    relay.wake();
    await until(async () => (await relay.health()).failedTotal > 0, 'failed attempts');
    t.like(await outboxHealth(db), { pending: 30, dead: 0 });
    t.is(peer.sent(queue).length, 20, 'nothing reached the broker meanwhile');

    await peer.start();
    relay.wake();
    await until(async () => (await outboxHealth(db)).pending === 0, 'the outbox to drain');
    const ids = new Set(peer.sent(queue).map((m) => m.messageId));
    t.is(ids.size, 50, 'one event per new atom');
    t.true(peer.sent(queue).length >= 50);
    t.is(new Set(peer.messages(queue).map((m) => m.messageId)).size, 50);
    t.like(await outboxHealth(db), { pending: 0, dead: 0 });
  },
);
