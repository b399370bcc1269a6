import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { contentHash } from '../../lib/atoms/hash.js';
import { outboxHealth } from '../../lib/outbox/outbox-health.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { type AmqpPeer, startAmqpPeer } from '../support/amqp-peer.js';
import { type ChildScript, runScript } from '../support/child-process.js';
import {
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';

const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test;

/**
 * Messages sent (70% distinct contents, the rest repeats). 3,000 prove the same as 10,000 (every
 * worker competes, repeats race across processes, batches fill) in a third of the time; raise
 * it for a soak: `SCALE_OUT_MESSAGES=10000 npx ava test/scale-out/scale-out.test.ts`.
 */
const MESSAGES = Number(process.env.SCALE_OUT_MESSAGES ?? 3_000);
const DISTINCT = Math.round(MESSAGES * 0.7);
const WORKERS = 3;

async function until(check: () => boolean | Promise<boolean>, what: string, ms: number) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(250);
  }
}

async function count(db: Database, sql: string): Promise<number> {
  const rows: Array<{ n: string | number }> = await db.orm.em
    .getConnection()
    .execute(sql.replaceAll('S.', `"${db.schema}".`));
  return Number(rows[0]?.n ?? 0);
}

serverTest(
  'three worker processes consume one queue: one row per distinct content, one event per new atom, nothing left behind',
  async (t) => {
    const peer: AmqpPeer = await startAmqpPeer({ lockDurationMs: 30_000 });
    const schema = uniqueSchema('scaleout');
    const db = await openDatabase({ url: SERVER_URL, schema });
    const children: ChildScript[] = [];
    t.teardown(async () => {
      for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
      await dropSchemaAndClose(db, schema);
      await peer.close();
    });
    const inQueue = `atoms-in-${process.pid}`;
    const outQueue = `atom-events-${process.pid}`;

    // MESSAGES over DISTINCT contents (the first MESSAGES - DISTINCT contents are sent twice)
    const contents = Array.from(
      { length: DISTINCT },
      (_, i) => `scale-out atom ${i}: ${'the quick brown fox '.repeat(1 + (i % 5))}${i * 7919}`,
    );

    for (let i = 0; i < WORKERS; i++) {
      children.push(
        runScript('test/support/atom-worker.ts', {
          SERVICEBUS_CONNECTION_STRING: peer.connectionString,
          DATABASE_URL: SERVER_URL,
          DB_SCHEMA: schema,
          IN_QUEUE: inQueue,
          OUT_QUEUE: outQueue,
          WORKER_ID: `w${i}`,
        }),
      );
    }
    const started = Date.now();
    const ready = (c: ChildScript) => c.lines.some((l) => l.startsWith('READY '));
    t.timeout(20 * 60_000); // the waits below are guards against a hang, not speed checks
    await until(() => children.every(ready), 'workers ready', 240_000);
    const readyAt = Date.now() - started;
    // the messages go in once every worker's receiver is attached: a worker that started late
    // would otherwise find the queue already drained by the others (competing consumers are
    // checked below)
    await until(
      () => peer.stats(inQueue).consumerLinks >= WORKERS,
      'every worker receiving',
      240_000,
    );
    for (let i = 0; i < MESSAGES; i++) {
      const content = contents[i % DISTINCT] as string;
      peer.enqueue(inQueue, {
        message_id: `in-${i}`,
        body: { content, sourceId: `msg-${i}` },
      });
    }
    t.is(peer.messages(inQueue).length, MESSAGES);

    // cheap checks first: the peer shares this process, and listing thousands of messages is not free
    await until(
      async () =>
        peer.stats(inQueue).completed + peer.stats(inQueue).deadLettered >= MESSAGES &&
        (await outboxHealth(db)).pending === 0 &&
        new Set(peer.sent(outQueue).map((m) => m.messageId)).size === DISTINCT,
      'the queue drained and every event published',
      600_000,
    );
    const drainedAt = Date.now() - started;
    for (const c of children) c.process.kill('SIGTERM');
    const codes = await Promise.all(children.map((c) => c.exited));
    t.deepEqual(codes, [0, 0, 0], children.flatMap((c) => c.lines).join('\n'));

    // One row per distinct content.
    t.is(await count(db, 'SELECT count(*) AS n FROM S.atoms'), DISTINCT);
    t.is(await count(db, 'SELECT count(DISTINCT content_hash) AS n FROM S.atoms'), DISTINCT);
    // One outbox row per atom, all published, none dead.
    t.is(await count(db, 'SELECT count(*) AS n FROM S.outbox'), DISTINCT);
    t.deepEqual(await outboxHealth(db), { pending: 0, dead: 0, oldestPendingAgeMs: 0 });

    // One published event per new atom: duplicates only by redelivery, with the same id.
    const events = peer.sent(outQueue);
    const ids = new Set(events.map((m) => m.messageId));
    t.is(ids.size, DISTINCT);
    t.true(events.length >= DISTINCT);
    const expected = new Set(contents.map((c) => `atom.created:${contentHash(c)}`));
    t.deepEqual(
      [...ids].filter((id) => !expected.has(id)),
      [],
    );
    t.is(peer.messages(outQueue).length, events.length, 'the events wait in atom-events');

    // Nothing left in atoms-in or its dead-letter queue.
    t.deepEqual(peer.messages(inQueue), []);
    t.deepEqual(peer.deadLetters(inQueue), []);
    t.is(peer.stats(inQueue).completed, MESSAGES, 'each message completed once');

    // Competing consumers: every worker took part.
    const reports = children.map((c) => {
      const line = c.lines.find((l) => l.startsWith('REPORT '));
      return JSON.parse(line?.slice('REPORT '.length) ?? '{}') as {
        id: string;
        completed: number;
        failed: number;
        relayPublished: number;
      };
    });
    t.is(
      reports.reduce((n, r) => n + r.completed, 0),
      MESSAGES,
      JSON.stringify(reports),
    );
    for (const r of reports) t.true(r.completed > 0, `${r.id} completed ${r.completed}`);
    // Each outbox row was marked published by exactly one relay (a resend after a publish
    // timeout shows up above as a repeated id, never as a second mark).
    t.is(
      reports.reduce((n, r) => n + r.relayPublished, 0),
      DISTINCT,
    );
    t.log(JSON.stringify(reports));
    // lockExpired / returnedOnClose: deliveries whose lock was lost (work done twice)
    t.log('atoms-in at the broker', JSON.stringify(peer.stats(inQueue)));
    t.log(
      `ready after ${readyAt} ms, done after ${drainedAt} ms, stopped after ${Date.now() - started} ms`,
    );
  },
);
