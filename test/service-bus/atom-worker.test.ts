import { randomBytes } from 'node:crypto';
import { claimHashes } from '../../lib/atoms/claim-hashes.js';
import type { Embedder } from '../../lib/atoms/embedder.js';
import { contentHash } from '../../lib/atoms/hash.js';
import type { IngestResult } from '../../lib/atoms/ingest-steps.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import type { Outcome } from '../../lib/core/outcome.js';
import type { SettleAction } from '../../lib/service-bus/settle-by.js';
import { type AmqpPeer, startAmqpPeer } from '../support/amqp-peer.js';
import { startAtomWorker } from '../support/atom-worker.js';
import { databaseSuite } from '../support/databases.js';
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
  'a claim left by a killed worker does not lose its content: the message waits, is redelivered, and is stored once the claim goes stale',
  async (t, db, backend) => {
    const peer = await startAmqpPeer();
    t.teardown(() => peer.close());
    const queue = `claimed-${backend}-${process.pid}`;
    const tag = randomBytes(4).toString('hex');
    const contents = Array.from({ length: 20 }, (_, i) => `${tag} orphan claim ${i}`);
    const hashes = contents.map((c) => contentHash(c));
    // A worker claimed these contents, then died before storing them.
    t.is((await claimHashes(db, hashes, `${tag}-killed`)).length, contents.length);
    enqueueContents(peer, queue, contents);

    const { counts, onSettled } = tally();
    const w = startAtomWorker({
      db,
      connectionString: peer.connectionString,
      inQueue: queue,
      id: `${tag}-survivor`,
      claimStaleMs: 2_500, // longer than the worker takes to connect: the claim is fresh at first
      claimWaitMs: 300,
      maxDeliveryCount: 50,
      onSettled,
    });
    await until(() => peer.stats(queue).completed === contents.length, 'all completed', 30_000);
    await w.stop();
    // Reported "claimed by another worker" at first, so NOT completed: abandoned, redelivered.
    t.true((counts.settled.get('abandoned') ?? 0) > 0);
    t.is(counts.added, contents.length);
    t.deepEqual((await storedHashes(db, hashes)).sort(), [...hashes].sort());
    t.deepEqual(peer.deadLetters(queue), []);
  },
);
