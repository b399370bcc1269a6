import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { contentHash } from '../../lib/atoms/hash.js';
import { outboxHealth } from '../../lib/outbox/outbox-health.js';
import { outboxRelay } from '../../lib/outbox/outbox-relay.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { serviceBusPublisher } from '../../lib/service-bus/publisher.js';
import { type AmqpPeer, startAmqpPeer } from '../support/amqp-peer.js';
import { runScript } from '../support/child-process.js';
import {
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';
import { sql } from '../support/outbox-helpers.js';
import { fastClient } from '../support/service-bus-helpers.js';

const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test;

interface Committed {
  processed: number;
  added: number;
  duplicates: number;
  failed: number;
}

/** 40 distinct contents, 10 repeats, and 2 items that fail validation (empty). */
function items(): { contents: string[]; distinct: string[] } {
  const tag = randomBytes(4).toString('hex');
  const distinct = Array.from({ length: 40 }, (_, i) => `crash ${tag} atom ${i}`);
  return { contents: [...distinct, ...distinct.slice(0, 10), '', ''], distinct };
}

async function setUp(t: ExecutionContext, tag: string) {
  const peer: AmqpPeer = await startAmqpPeer({ duplicateDetectionWindowMs: 600_000 });
  const schema = uniqueSchema(tag);
  const db: Database = await openDatabase({ url: SERVER_URL, schema });
  t.teardown(async () => {
    await dropSchemaAndClose(db, schema);
    await peer.close();
  });
  return { peer, schema, db };
}

async function count(db: Database, text: string): Promise<number> {
  const [row] = await sql<{ n: string }>(db, text);
  return Number(row?.n ?? 0);
}

serverTest(
  'killed (SIGKILL) after the atoms committed and before publishing: a relay publishes every pending event on restart',
  async (t) => {
    const { peer, schema, db } = await setUp(t, 'crash_before');
    const { contents, distinct } = items();
    const child = runScript('test/support/outbox-crash.ts', {
      DATABASE_URL: SERVER_URL,
      DB_SCHEMA: schema,
      ITEMS: JSON.stringify(contents),
      CRASH_AT: 'before-publish',
    });
    t.teardown(() => child.kill());
    const line = await child.line('COMMITTED ');
    await child.kill();
    const report = JSON.parse(line.slice('COMMITTED '.length)) as Committed;

    // Counts: items in = rows stored + duplicates + items reported failed.
    t.is(report.processed, contents.length);
    t.is(report.added, distinct.length);
    t.is(report.failed, 2);
    t.is(report.added + report.duplicates + report.failed, contents.length);
    t.is(await count(db, 'SELECT count(*) AS n FROM S.atoms'), distinct.length);
    // Nothing was published: every event waits in the outbox.
    t.like(await outboxHealth(db), { pending: distinct.length, dead: 0 });

    // "Restart": a relay publishes everything pending.
    const queue = `events-${process.pid}-before`;
    const publisher = serviceBusPublisher({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queueOrTopic: queue,
    });
    const relay = outboxRelay({ db, publisher });
    const flushed = await relay.flush();
    await relay.stop();
    await publisher.close();
    t.is(flushed.published, distinct.length);
    t.deepEqual(await outboxHealth(db), { pending: 0, dead: 0, oldestPendingAgeMs: 0 });
    const ids = peer.messages(queue).map((m) => m.messageId);
    t.is(new Set(ids).size, distinct.length);
    t.deepEqual(ids.sort(), distinct.map((c) => `atom.created:${contentHash(c)}`).sort());
  },
);

serverTest(
  'killed after the broker accepted the messages and before they were marked: republished with the same ids, dropped as duplicates',
  async (t) => {
    const { peer, schema, db } = await setUp(t, 'crash_after');
    const { contents, distinct } = items();
    const queue = `events-${process.pid}-after`;
    const child = runScript('test/support/outbox-crash.ts', {
      DATABASE_URL: SERVER_URL,
      DB_SCHEMA: schema,
      ITEMS: JSON.stringify(contents),
      CRASH_AT: 'after-send',
      SERVICEBUS_CONNECTION_STRING: peer.connectionString,
      OUT_QUEUE: queue,
    });
    t.teardown(() => child.kill());
    const report = JSON.parse(
      (await child.line('COMMITTED ')).slice('COMMITTED '.length),
    ) as Committed;
    t.is(await child.line('SENT '), `SENT ${distinct.length}`);
    await child.kill();
    t.is(report.added, distinct.length);
    t.is(peer.messages(queue).length, distinct.length, 'the broker has them');
    // The transaction that locked the rows died with the process: they are pending again.
    t.like(await outboxHealth(db), { pending: distinct.length });

    const publisher = serviceBusPublisher({
      connectionString: peer.connectionString,
      clientOptions: fastClient,
      queueOrTopic: queue,
    });
    const relay = outboxRelay({ db, publisher });
    t.like(await relay.flush(), { published: distinct.length, failed: 0 });
    await relay.stop();
    await publisher.close();

    // Sent twice, with the same message ids: duplicate detection dropped the replays.
    const sent = peer.sent(queue);
    t.is(sent.length, 2 * distinct.length);
    t.is(sent.filter((m) => m.duplicate).length, distinct.length);
    t.is(new Set(sent.map((m) => m.messageId)).size, distinct.length);
    t.is(peer.messages(queue).length, distinct.length);
    t.deepEqual(await outboxHealth(db), { pending: 0, dead: 0, oldestPendingAgeMs: 0 });
  },
);
