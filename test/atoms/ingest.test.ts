import { randomBytes } from 'node:crypto';
import test from 'ava';
import { lastValueFrom, toArray } from 'rxjs';
import { claimHashes } from '../../lib/atoms/claim-hashes.js';
import { leaseHashes, lockKey, releaseLeases } from '../../lib/atoms/claim-leases.js';
import type { Embedder } from '../../lib/atoms/embedder.js';
import {
  isContentTooLargeError,
  isEmptyContentError,
  isInvalidUtf8Error,
} from '../../lib/atoms/errors.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { ingest, ingestionPipeline } from '../../lib/atoms/ingest.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { isStepError } from '../../lib/core/errors.js';
import type { Database } from '../../lib/postgres/database.js';
import { isDatabaseUnavailableError } from '../../lib/postgres/errors.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import {
  databaseSuite,
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';
import { tcpProxy } from '../support/tcp-proxy.js';

const suite = await databaseSuite('ingest');
const serverTest = (await serverUnavailableReason()) ? test.skip : test;

const tag = () => randomBytes(4).toString('hex');
const texts = (t: string, n: number, distinct = n) =>
  Array.from({ length: n }, (_, i) => ({
    content: `${t} paragraph ${i % distinct}`,
    sourceId: `${t}#${i}`,
  }));

async function counts(db: Database, prefix: string): Promise<{ atoms: number; outbox: number }> {
  // one statement, one snapshot: a persist committing meanwhile is seen whole or not at all
  const [row] = await db.orm.em
    .fork()
    .getConnection()
    .execute<{ atoms: string; outbox: string }[]>(
      `SELECT (SELECT count(*) FROM "${db.schema}".atoms WHERE content LIKE ?) AS atoms,
              (SELECT count(*) FROM "${db.schema}".outbox o JOIN "${db.schema}".atoms a
                 ON o.aggregate_key = encode(a.content_hash, 'hex') WHERE a.content LIKE ?) AS outbox`,
      [`${prefix}%`, `${prefix}%`],
    );
  return { atoms: Number(row?.atoms ?? 0), outbox: Number(row?.outbox ?? 0) };
}

suite.test(
  'ingest stores each distinct content once with its outbox event; a re-run skips all',
  async (t, db) => {
    const p = tag();
    const items = texts(p, 600, 400);
    const first = await ingest(items, { db, batchSize: 64 });
    t.is(first.processed, 600);
    t.is(first.added, 400);
    t.is(first.duplicates, 200);
    t.is(first.duplicatesBy.batch + first.duplicatesBy.stored, 200);
    t.is(first.failed, 0);
    t.deepEqual(await counts(db, p), { atoms: 400, outbox: 400 });
    t.true(first.bytes > 0);
    t.true((first.stepMs.embed ?? -1) >= 0 && (first.stepMs.persist ?? 0) > 0);

    const second = await ingest(items, { db, batchSize: 64 });
    t.is(second.added, 0);
    t.is(second.duplicates, 600);
    t.deepEqual(await counts(db, p), { atoms: 400, outbox: 400 });
  },
);

suite.test(
  'bad input fails only its own item with a named error; the rest are stored',
  async (t, db) => {
    const p = tag();
    const good = texts(p, 20);
    const invalidUtf8 = new Uint8Array([0x68, 0x69, 0xff, 0xfe]);
    const items = [
      ...good.slice(0, 5),
      { content: '' },
      ...good.slice(5, 10),
      { content: `${p} ${'x'.repeat(2_000)}` },
      ...good.slice(10, 15),
      { content: invalidUtf8 },
      ...good.slice(15),
    ];
    const outcomes = await lastValueFrom(
      ingestionPipeline({ db, maxContentBytes: 1_000, batchSize: 8 })
        .stream(items, { ordered: true })
        .pipe(toArray()),
    );
    const failed = outcomes.filter((o) => !o.ok);
    t.is(failed.length, 3);
    const causes = failed.map((o) => (!o.ok && isStepError(o.error) ? o.error.cause : undefined));
    t.true(isEmptyContentError(causes[0]));
    t.true(isContentTooLargeError(causes[1]));
    t.true(isInvalidUtf8Error(causes[2]));
    t.true(failed.every((o) => !o.ok && o.failedStep === 'hash'));
    t.deepEqual(await counts(db, p), { atoms: 20, outbox: 20 });
  },
);

function faultyEmbedder(
  dimensions: number,
  bad: (text: string) => 'nan' | 'short' | 'throw' | undefined,
): Embedder {
  const inner = localEmbedder(dimensions);
  return {
    model: 'faulty',
    dimensions,
    embed: async (batch, signal) => {
      if (batch.some((s) => bad(s) === 'throw')) throw new Error('embedding service failed');
      const vectors = await inner.embed(batch, signal);
      return vectors.map((v, i) => {
        const kind = bad(batch[i] as string);
        if (kind === 'nan') return Float32Array.from(v, (x, j) => (j === 3 ? Number.NaN : x));
        if (kind === 'short') return v.subarray(0, dimensions - 1);
        return v;
      });
    },
  };
}

suite.test('a wrong-dimension or NaN vector fails that item only', async (t, db) => {
  const p = tag();
  const items = texts(p, 30);
  const embedder = faultyEmbedder(db.embeddingDimensions, (s) =>
    s.endsWith(' 7') ? 'nan' : s.endsWith(' 13') ? 'short' : undefined,
  );
  const report = await ingest(items, { db, embedder, batchSize: 10 });
  t.is(report.failed, 2);
  t.is(report.added, 28);
  t.true(report.failures.every((f) => f.step === 'embed' && f.error === 'InvalidEmbeddingError'));
  t.deepEqual(report.failures.map((f) => f.sourceId).sort(), [`${p}#13`, `${p}#7`]);
  // their claims were released: a re-run with a good embedder stores them
  const again = await ingest(items, { db, batchSize: 10 });
  t.is(again.added, 2);
  t.deepEqual(await counts(db, p), { atoms: 30, outbox: 30 });
});

suite.test(
  'an embedding outage fails the batch, loses nothing, and a re-run picks the items up',
  async (t, db) => {
    const p = tag();
    const items = texts(p, 40);
    const down = faultyEmbedder(db.embeddingDimensions, () => 'throw');
    const failedRun = await ingest(items, { db, embedder: down, batchSize: 16 });
    t.is(failedRun.failed, 40);
    t.is(failedRun.processed, 40, 'every item is reported');
    t.deepEqual(await counts(db, p), { atoms: 0, outbox: 0 });
    const rerun = await ingest(items, { db, batchSize: 16 });
    t.is(rerun.added, 40);
  },
);

suite.test(
  'the pipeline rejects an embedder whose dimensions differ from the database',
  async (t, db) => {
    t.throws(() => ingestionPipeline({ db, embedder: localEmbedder(db.embeddingDimensions + 1) }), {
      instanceOf: TypeError,
      message: /dimension/,
    });
    await Promise.resolve();
  },
);

serverTest(
  'two pipelines ingesting the same 5k items at once store one row per content and neither fails',
  async (t) => {
    const schema = uniqueSchema('ingest_race');
    const a = await openDatabase({ url: SERVER_URL, schema });
    const b = await openDatabase({ url: SERVER_URL, schema });
    try {
      const p = tag();
      const items = texts(p, 5_000, 3_500);
      const embedded: string[] = [];
      const counting = (db: Database): Embedder => {
        const inner = localEmbedder(db.embeddingDimensions);
        return {
          ...inner,
          embed: async (batch, signal) => {
            embedded.push(...batch);
            return inner.embed(batch, signal);
          },
        };
      };
      const [ra, rb] = await Promise.all([
        ingest(items, { db: a, embedder: counting(a), batchSize: 128 }),
        ingest([...items].reverse(), { db: b, embedder: counting(b), batchSize: 128 }),
      ]);
      t.is(ra.failed + rb.failed, 0);
      t.is(ra.added + rb.added, 3_500);
      t.is(ra.processed + rb.processed, 10_000);
      t.deepEqual(await counts(a, p), { atoms: 3_500, outbox: 3_500 });
      t.is(
        new Set(embedded).size,
        embedded.length,
        'the claim kept both workers from embedding the same content',
      );
    } finally {
      await b.close();
      await dropSchemaAndClose(a, schema);
    }
  },
);

test('on PGlite too, two pipelines on one database at once store one row per content', async (t) => {
  const db = await openDatabase({ dataDir: 'memory://' });
  try {
    const items = texts('pg', 1_000, 700);
    const [ra, rb] = await Promise.all([
      ingest(items, { db, batchSize: 64 }),
      ingest(items, { db, batchSize: 64 }),
    ]);
    t.is(ra.added + rb.added, 700);
    t.is(ra.failed + rb.failed, 0);
    t.deepEqual(await counts(db, 'pg'), { atoms: 700, outbox: 700 });
  } finally {
    await db.close();
  }
});

serverTest(
  'the database going away ends the run with DatabaseUnavailableError; no atom without its outbox row',
  async (t) => {
    const schema = uniqueSchema('ingest_down');
    const admin = await openDatabase({ url: SERVER_URL, schema });
    const target = new URL(SERVER_URL);
    const proxy = await tcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(SERVER_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const db = await openDatabase({ url: viaProxy.toString(), schema });
    try {
      const p = tag();
      const items = (async function* () {
        for (let i = 0; i < 3_000; i++) {
          if (i === 1_000) await proxy.cut();
          yield { content: `${p} item ${i}` };
        }
      })();
      const e = await t.throwsAsync(ingest(items, { db, batchSize: 100 }));
      t.true(isDatabaseUnavailableError(e), String(e));
      const c = await counts(admin, p);
      t.is(c.atoms, c.outbox, 'every stored atom has its outbox row');
      t.true(c.atoms < 3_000);
    } finally {
      await proxy.close();
      await db.close().catch(() => undefined);
      await dropSchemaAndClose(admin, schema);
    }
  },
);

serverTest(
  'closing a database frees the claims still leased on it (a step that outlived a cancelled run)',
  async (t) => {
    const schema = uniqueSchema('ingest_close');
    const admin = await openDatabase({ url: SERVER_URL, schema });
    const db = await openDatabase({ url: SERVER_URL, schema });
    try {
      const hash = contentHash(`${tag()} held at close`);
      const key = lockKey(schema, hash);
      const held = async () => {
        const rows = await admin.orm.em.getConnection().execute<Array<{ n: string }>>(
          `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory'
               AND ((classid::bigint << 32) | objid::bigint) = ?::bigint`,
          [key],
        );
        return Number(rows[0]?.n ?? 0);
      };
      t.deepEqual((await leaseHashes(db, [hash], 'left-behind')).won, [hash]);
      t.is(await held(), 1, 'the lease is an advisory lock');
      await db.close(); // never released by its owner
      t.is(await held(), 0, 'the lock went with the handle');
      await t.throwsAsync(leaseHashes(db, [contentHash('after close')], 'late-step'), {
        instanceOf: TypeError,
      });
      t.deepEqual((await leaseHashes(admin, [hash], 'next-run')).won, [hash], 'free at once');
    } finally {
      await db.close().catch(() => undefined);
      await dropSchemaAndClose(admin, schema);
    }
  },
);

suite.test(
  'content a live worker holds waits for it; released or dead claims are taken over at once',
  async (t, db) => {
    const p = tag();
    const items = texts(p, 6);
    const [victim, second] = items;
    if (!victim || !second) throw new Error('no items');
    const hash = contentHash(victim.content);
    // a claim row of the old table-based scheme (a dead worker's leftover) no longer blocks
    t.deepEqual(await claimHashes(db, [contentHash(second.content)], 'a-worker-that-died'), [
      contentHash(second.content),
    ]);
    // another owner in this process holds the content and never stores it
    t.deepEqual((await leaseHashes(db, [hash], 'a-live-worker')).won, [hash]);
    const blocked = await ingest(items, { db, batchSize: 8, claimedWaitMs: 50 });
    t.is(blocked.added, 5);
    t.is(blocked.failed, 1);
    t.is(blocked.claimWaits, 1);
    t.is(blocked.failures[0]?.error, 'ClaimedElsewhereError');
    t.is(blocked.failures[0]?.step, 'confirm-claimed');
    // the holder lets go while a run waits for it: that run stores the content itself
    const waiting = ingest(items, { db, batchSize: 8, claimedWaitMs: 60_000 });
    setTimeout(() => void releaseLeases(db, [hash], 'a-live-worker'), 200);
    const recovered = await waiting;
    t.is(recovered.added, 1);
    t.is(recovered.failed, 0);
    t.is(recovered.duplicatesBy.stored, 5);
    t.deepEqual(await counts(db, p), { atoms: 6, outbox: 6 });
  },
);
