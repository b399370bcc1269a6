import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import type { OutgoingMessage, Publisher } from '../../lib/broker/publisher.js';
import { outboxHealth } from '../../lib/outbox/outbox-health.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import {
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';
import { insertRows } from '../support/outbox-helpers.js';

const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test;

serverTest(
  'three relays on one PostgreSQL at once: every row published exactly once, each key in id order',
  async (t) => {
    const schema = uniqueSchema('relays');
    const handles: Database[] = [];
    for (let i = 0; i < 3; i++) handles.push(await openDatabase({ url: SERVER_URL, schema }));
    t.teardown(async () => {
      for (const db of handles.slice(1)) await db.close();
      await dropSchemaAndClose(handles[0] as Database, schema);
    });
    const [first] = handles as [Database];

    const keys = 150;
    const perKey = 12;
    const specs = Array.from({ length: keys * perKey }, (_, i) => ({ key: `key-${i % keys}` }));
    await insertRows(first, specs);

    // One log of every accepted message, in the order the broker saw them.
    const log: Array<{ relay: string; message: OutgoingMessage }> = [];
    const publisherFor = (relay: string): Publisher => ({
      async publish(messages) {
        await delay(1 + Math.floor(Math.random() * 3)); // let rounds overlap
        for (const message of messages) log.push({ relay, message });
      },
    });
    const relays = handles.map((db, i) =>
      outboxRelay({
        db,
        name: `relay-${i}`,
        publisher: publisherFor(`relay-${i}`),
        batchSize: 25,
        pollIntervalMs: 5,
      }),
    );
    for (const r of relays) r.start();
    const deadline = Date.now() + 60_000;
    while (log.length < specs.length && Date.now() < deadline) await delay(20);
    await delay(100); // a duplicate, if any, would show up now
    await Promise.all(relays.map((r) => r.stop()));

    const ids = log.map((e) => e.message.messageId);
    t.is(ids.length, specs.length, 'every row published');
    t.is(new Set(ids).size, specs.length, 'no row published twice');
    const byRelay = new Map<string, number>();
    for (const e of log) byRelay.set(e.relay, (byRelay.get(e.relay) ?? 0) + 1);
    t.is(byRelay.size, 3, `all relays took part: ${JSON.stringify([...byRelay])}`);

    const perKeyOrder = new Map<string, number[]>();
    for (const { message } of log) {
      const key = String(message.applicationProperties?.aggregateKey);
      const list = perKeyOrder.get(key) ?? [];
      list.push(Number(message.applicationProperties?.outboxId));
      perKeyOrder.set(key, list);
    }
    t.is(perKeyOrder.size, keys);
    for (const [key, order] of perKeyOrder) {
      t.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
        `key ${key} published in id order`,
      );
    }
    t.deepEqual(await outboxHealth(first), { pending: 0, dead: 0, oldestPendingAgeMs: 0 });
  },
);
