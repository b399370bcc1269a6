/**
 * Claims die with their owner, and counts add up across processes (PostgreSQL server: the
 * embedded database is one process by construction).
 */
import { randomBytes, randomInt } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import test from 'ava';
import { lockKey } from '../../lib/atoms/claim-leases.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { type IngestionReport, ingest } from '../../lib/atoms/ingest.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import type { Database } from '../../lib/postgres/database.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { type ChildScript, runScript } from '../support/child-process.js';
import {
  dropSchemaAndClose,
  SERVER_URL,
  serverUnavailableReason,
  uniqueSchema,
} from '../support/databases.js';
import { corpusItem } from '../support/ingest-child.js';
import { sql } from '../support/outbox-helpers.js';

const serverDown = await serverUnavailableReason();
const serverTest = serverDown ? test.skip : test.serial;

interface Corpus {
  PREFIX: string;
  COUNT: string;
  POOL: string;
  STEP: string;
  OFFSET: string;
  BATCH_SIZE?: string;
}

const contentsOf = (c: Corpus): string[] =>
  Array.from({ length: Number(c.COUNT) }, (_, i) =>
    corpusItem(c.PREFIX, i, Number(c.STEP), Number(c.OFFSET), Number(c.POOL)),
  );

function child(schema: string, corpus: Corpus): ChildScript {
  return runScript('test/support/ingest-child.ts', {
    DATABASE_URL: SERVER_URL,
    DB_SCHEMA: schema,
    ...corpus,
  });
}

async function count(db: Database, text: string, values: unknown[] = []): Promise<number> {
  const [row] = await sql<{ n: string }>(db, text, values);
  return Number(row?.n ?? 0);
}

/** Advisory locks held in this database by sessions other than the given pids. */
/**
 * Advisory locks another session holds on the claims of `keys` (this test's contents in its
 * schema): locks of other test files running at the same time are not counted.
 */
const foreignLocks = (db: Database, keys: readonly string[]) =>
  count(
    db,
    `SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
     WHERE l.locktype = 'advisory' AND d.datname = current_database()
       AND l.pid <> pg_backend_pid() AND l.granted AND l.objsubid = 1
       AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY($1::bigint[])`,
    [keys],
  );

async function open(tag: string) {
  const schema = uniqueSchema(tag);
  const db = await openDatabase({ url: SERVER_URL, schema });
  return { schema, db, dispose: () => dropSchemaAndClose(db, schema) };
}

serverTest('three processes at once: the sum of added is the rows stored', async (t) => {
  const { schema, db, dispose } = await open('three_procs');
  t.teardown(dispose);
  const prefix = `three ${randomBytes(3).toString('hex')}`;
  const corpora: Corpus[] = [1, 7, 13].map((step, k) => ({
    PREFIX: prefix,
    COUNT: '600',
    POOL: '500',
    STEP: String(step),
    OFFSET: String(k * 150),
    BATCH_SIZE: String(4 + 5 * k),
  }));
  const children = corpora.map((c) => child(schema, c));
  const reports = await Promise.all(
    children.map(async (c) => {
      const line = await c.line('REPORT ', 120_000);
      await c.exited;
      return JSON.parse(line.slice('REPORT '.length)) as IngestionReport;
    }),
  );
  const distinct = new Set(corpora.flatMap(contentsOf));
  const rows = await count(db, `SELECT count(*) AS n FROM "${schema}".atoms`);
  t.is(rows, distinct.size);
  t.is(
    reports.reduce((s, r) => s + r.added, 0),
    rows,
    JSON.stringify(reports.map((r) => ({ ...r, stepMs: undefined }))),
  );
  for (const r of reports) {
    t.is(r.processed, 600);
    t.is(r.failed, 0);
    t.is(r.added + r.duplicates, 600);
  }
  t.is(await count(db, `SELECT count(*) AS n FROM "${schema}".outbox`), rows);
});

serverTest(
  'an ingest killed (SIGKILL) at random moments leaves no claim behind: the next run completes every item without waiting',
  async (t) => {
    const { schema, db, dispose } = await open('ingest_kill');
    t.teardown(dispose);
    const embedder = localEmbedder(db.embeddingDimensions);
    // 10 kills, five processes at a time (each spawn costs seconds on a small machine).
    for (let round = 0; round < 2; round++) {
      const corpora: Corpus[] = Array.from({ length: 5 }, (_, k) => ({
        PREFIX: `kill ${round}.${k} ${randomBytes(3).toString('hex')}`,
        COUNT: '400',
        POOL: '300',
        STEP: '7',
        OFFSET: '0',
      }));
      await Promise.all(
        corpora.map(async (corpus) => {
          const victim = child(schema, corpus);
          await victim.line('STARTED', 60_000);
          await delay(randomInt(0, 500));
          await victim.kill();
        }),
      );
      // The server ends a dead session by itself, and its locks with it: no expiry involved.
      const contents = corpora.flatMap(contentsOf);
      const keys = contents.map((c) => lockKey(schema, contentHash(c)));
      const deadline = Date.now() + 15_000;
      while ((await foreignLocks(db, keys)) > 0) {
        if (Date.now() > deadline) t.fail('a dead process still holds advisory locks');
        await delay(20);
      }
      const before = await count(db, `SELECT count(*) AS n FROM "${schema}".atoms`);
      const r = await ingest(
        contents.map((content) => ({ content })),
        { db, embedder, batchSize: 16, concurrency: 2, claimedWaitMs: 60_000 },
      );
      const after = await count(db, `SELECT count(*) AS n FROM "${schema}".atoms`);
      const where = `round ${round}: ${JSON.stringify({ ...r, stepMs: undefined })}`;
      t.is(r.failed, 0, where);
      t.is(r.claimWaits, 0, where);
      t.is(r.duplicatesBy.claimed + r.duplicatesBy.race, 0, where);
      t.is(r.added, after - before, where);
      for (const corpus of corpora) {
        const stored = await count(
          db,
          `SELECT count(*) AS n FROM "${schema}".atoms WHERE content LIKE $1`,
          [`${corpus.PREFIX} %`],
        );
        t.is(stored, new Set(contentsOf(corpus)).size, where);
      }
    }
    t.is(await count(db, `SELECT count(*) AS n FROM "${schema}".atom_claims`), 0);
    t.is(
      await count(db, `SELECT count(*) AS n FROM "${schema}".atoms`),
      await count(db, `SELECT count(*) AS n FROM "${schema}".outbox`),
    );
  },
);
