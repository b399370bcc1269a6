import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { claimHashes } from '../../lib/atoms/claim-hashes.js';
import { leaseHashes, releaseLeases } from '../../lib/atoms/claim-leases.js';
import type { Embedder } from '../../lib/atoms/embedder.js';
import { contentHash } from '../../lib/atoms/hash.js';
import type { IngestResult } from '../../lib/atoms/ingest-steps.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import type { Outcome } from '../../lib/core/outcome.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import type { SettleAction } from '../../lib/service-bus/settle-by.js';
import { type AmqpPeer, startAmqpPeer } from '../support/amqp-peer.js';
import { startAtomWorker } from '../support/atom-worker.js';
import { runScript } from '../support/child-process.js';
import {
  databaseSuite,
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';
import { sql } from '../support/outbox-helpers.js';
import { until } from '../support/service-bus-helpers.js';

const suite = await databaseSuite('atom_worker');

function enqueueContents(peer: AmqpPeer, queue: string, contents: readonly string[]): void {
  contents.forEach((content, i) => {
    peer.enqueue(queue, { message_id: `${queue}-${i}`, body: { content, sourceId: `m${i}` } });
  });
}

async function storedHashes(db: Parameters<typeof sql>[0], hashes: string[]): Promise<string[]> {
  const rows = await sql<{ h: string }>(
    db,
    `SELECT encode(content_hash, 'hex') AS h FROM S.atoms WHERE encode(content_hash, 'hex') = ANY($1::text[])`,
    [hashes],
  );
  return rows.map((r) => r.h);
}

/** Counts outcomes by what happened to the item. */
function tally() {
  const counts = { added: 0, duplicate: 0, failed: 0, settled: new Map<SettleAction, number>() };
  const onSettled = (o: Outcome<unknown, IngestResult>, action: SettleAction) => {
    counts.settled.set(action, (counts.settled.get(action) ?? 0) + 1);
    if (!o.ok) counts.failed++;
    else if (o.value.status === 'added') counts.added++;
    else counts.duplicate++;
  };
  return { counts, onSettled };
}

suite.serial(
  'a worker stopped mid-batch loses nothing: in-flight messages are abandoned, and after a restart every content is stored once',
  async (t, db, backend) => {
    const peer = await startAmqpPeer();
    t.teardown(() => peer.close());
    const queue = `atoms-${backend}-${process.pid}`;
    const tag = randomBytes(4).toString('hex');
    const distinct = Array.from({ length: 120 }, (_, i) => `${tag} stop-mid-batch ${i}`);
    const contents = [...distinct, ...distinct.slice(0, 60)];
    enqueueContents(peer, queue, contents);

    // The first worker's embedder only ends when it is cancelled: stopping must abort it.
    const local = localEmbedder(db.embeddingDimensions);
    let embedCalls = 0;
    const stuck: Embedder = {
      model: local.model,
      dimensions: local.dimensions,
      embed: (_texts, signal) =>
        new Promise((_, reject) => {
          embedCalls++;
          signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        }),
    };
    const first = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue: queue,
      id: `${tag}-first`,
      embedder: stuck,
      maxConcurrent: 200,
    });
    await until(() => embedCalls > 0, 'an embedding batch in flight');
    const inFlight = first.worker.health().inFlight;
    t.true(inFlight > 0);
    const stopped = await first.stop(200);
    t.false(stopped.drained);
    t.true(stopped.abandoned > 0, `abandoned ${stopped.abandoned}`);
    t.is(stopped.completed, 0, 'nothing finished: the embedding never returned');
    // Nothing lost: every message is back in the queue, and nothing was stored.
    await until(() => peer.messages(queue).length === contents.length, 'all messages back');
    t.true(peer.messages(queue).every((m) => m.state === 'available'));
    t.deepEqual(
      await storedHashes(
        db,
        distinct.map((c) => contentHash(c)),
      ),
      [],
    );

    const { counts, onSettled } = tally();
    const second = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue: queue,
      id: `${tag}-second`,
      claimStaleMs: 1_000,
      claimWaitMs: 500,
      onSettled,
    });
    await until(() => peer.stats(queue).completed === contents.length, 'all completed', 60_000);
    await second.stop();
    // Items in = rows stored + duplicates + failed; every distinct content stored once.
    t.is(counts.added, distinct.length);
    t.is(counts.added + counts.duplicate, contents.length);
    t.is(counts.settled.get('completed'), contents.length);
    const stored = await storedHashes(
      db,
      distinct.map((c) => contentHash(c)),
    );
    t.is(stored.length, distinct.length);
    t.is(new Set(stored).size, distinct.length);
    t.deepEqual(peer.messages(queue), []);
    t.deepEqual(peer.deadLetters(queue), []);
  },
);

suite.serial(
  'poison messages (not JSON, empty content) are dead-lettered with a reason and do not block the queue',
  async (t, db, backend) => {
    const peer = await startAmqpPeer();
    t.teardown(() => peer.close());
    const queue = `poison-${backend}-${process.pid}`;
    const tag = randomBytes(4).toString('hex');
    const good = Array.from({ length: 50 }, (_, i) => `${tag} good ${i}`);
    peer.enqueue(queue, { message_id: 'not-json', body: 'this is { not json' });
    peer.enqueue(queue, { message_id: 'empty', body: { content: '' } });
    enqueueContents(peer, queue, good);
    const { counts, onSettled } = tally();
    const w = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue: queue,
      id: `${tag}-poison`,
      maxDeliveryCount: 3,
      onSettled,
    });
    await until(
      () => peer.deadLetters(queue).length === 2 && peer.stats(queue).completed === good.length,
      'poison dead-lettered and the rest completed',
      30_000,
    );
    await w.stop();
    const dead = new Map(peer.deadLetters(queue).map((m) => [m.messageId, m]));
    t.is(dead.get('not-json')?.deadLetterReason, 'DecodeFailed');
    // empty content is bad input (a permanent error): dead-lettered on its first delivery
    t.like(dead.get('empty'), { deadLetterReason: 'EMPTY_CONTENT', deliveryCount: 0 });
    t.regex(dead.get('empty')?.deadLetterDescription ?? '', /empty/i);
    // Messages in = stored + dead-lettered; the empty one failed once.
    t.is(counts.added, good.length);
    t.is(counts.failed, 1);
    t.is(
      (
        await storedHashes(
          db,
          good.map((c) => contentHash(c)),
        )
      ).length,
      good.length,
    );
    t.deepEqual(peer.messages(queue), []);
  },
);

suite.serial(
  'content held by a worker that lets go is taken over at once: nothing waits, nothing is dead-lettered',
  async (t, db, backend) => {
    const peer = await startAmqpPeer();
    t.teardown(() => peer.close());
    const queue = `claimed-${backend}-${process.pid}`;
    const tag = randomBytes(4).toString('hex');
    const contents = Array.from({ length: 20 }, (_, i) => `${tag} orphan claim ${i}`);
    const hashes = contents.map((c) => contentHash(c));
    // Another owner in this process holds these contents, then gives them up (as a run does
    // on every exit path, and as the server does for a dead process's session).
    t.is((await leaseHashes(db, hashes, `${tag}-other`)).won.length, contents.length);
    // A claim row of the old table-based scheme is ignored.
    t.is((await claimHashes(db, hashes.slice(0, 5), `${tag}-killed`)).length, 5);
    enqueueContents(peer, queue, contents);

    const { counts, onSettled } = tally();
    const w = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue: queue,
      id: `${tag}-survivor`,
      claimWaitMs: 60_000,
      onSettled,
    });
    setTimeout(() => void releaseLeases(db, hashes, `${tag}-other`), 300);
    await until(() => peer.stats(queue).completed === contents.length, 'all completed', 30_000);
    await w.stop();
    t.is(counts.settled.get('abandoned') ?? 0, 0);
    t.is(counts.failed, 0);
    t.is(counts.added, contents.length);
    t.deepEqual((await storedHashes(db, hashes)).sort(), [...hashes].sort());
    t.deepEqual(peer.deadLetters(queue), []);
  },
);

const serverTest = (await serverUnavailableReason()) ? test.skip : test.serial;

serverTest(
  'atom workers killed (SIGKILL) at random moments: the next worker stores every message, none waits on a claim or is dead-lettered',
  async (t) => {
    // Each kill returns the victim's locked messages with one more delivery: allow for it.
    const peer = await startAmqpPeer({ maxDeliveryCount: 100 });
    const schema = uniqueSchema('sb_kill');
    const db = await openDatabase({ url: SERVER_URL, schema });
    t.teardown(async () => {
      await dropSchemaAndClose(db, schema);
      await peer.close();
    });
    const queue = `killed-${process.pid}`;
    const tag = randomBytes(4).toString('hex');
    const distinct = Array.from({ length: 150 }, (_, i) => `${tag} killed worker ${i}`);
    const contents = Array.from({ length: 600 }, (_, i) => distinct[(i * 7) % distinct.length]!);
    enqueueContents(peer, queue, contents);
    // 10 workers killed, two at a time, each at a random moment of its work.
    for (let round = 0; round < 5; round++) {
      await Promise.all(
        [0, 1].map(async (k) => {
          const victim = runScript('test/support/atom-worker.ts', {
            SERVICEBUS_CONNECTION_STRING: peer.connectionString,
            DATABASE_URL: SERVER_URL,
            DB_SCHEMA: schema,
            IN_QUEUE: queue,
            WORKER_ID: `victim-${round}-${k}`,
          });
          await victim.line('READY ', 60_000);
          await delay(randomInt(0, 600));
          await victim.kill();
        }),
      );
    }
    const { counts, onSettled } = tally();
    const errors: string[] = [];
    let claimed = 0;
    const w = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue: queue,
      maxDeliveryCount: 100,
      id: `${tag}-survivor`,
      claimWaitMs: 60_000,
      onSettled: (o, action, item) => {
        onSettled(o, action);
        if (!o.ok) errors.push(String((o.error as { name?: unknown }).name));
        else if (o.value.duplicateOf === 'claimed') claimed++;
        void item;
      },
    });
    await until(
      () => peer.stats(queue).completed + peer.stats(queue).deadLettered >= contents.length,
      'the queue drained',
      90_000,
    );
    await w.stop();
    t.deepEqual(errors, []);
    t.is(claimed, 0, 'no message waited for a dead worker');
    t.deepEqual(peer.deadLetters(queue), []);
    t.deepEqual(peer.messages(queue), []);
    const rows = await sql<{ n: string }>(db, 'SELECT count(*) AS n FROM S.atoms');
    t.is(Number(rows[0]?.n), distinct.length);
    t.deepEqual(
      (
        await storedHashes(
          db,
          distinct.map((c) => contentHash(c)),
        )
      ).length,
      distinct.length,
    );
    void counts;
  },
);
