/**
 * Exact accounting: `added` is the rows a run inserted, every duplicate is named for what it is,
 * `processed = added + duplicates + failed`. Random corpora with repeats inside and across
 * batches, small batches, concurrency above 1, on every backend, checked against `count(*)`.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { leaseHashes, ownerLeases, releaseLeases } from '../../lib/atoms/claim-leases.js';
import type { Embedder } from '../../lib/atoms/embedder.js';
import { contentHash } from '../../lib/atoms/hash.js';
import { type IngestionReport, ingest, ingestionPipeline } from '../../lib/atoms/ingest.js';
import type { AtomInput } from '../../lib/atoms/ingest-steps.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import type { Database } from '../../lib/postgres/database.js';
import { databaseSuite } from '../support/databases.js';

const suite = await databaseSuite('accounting', { dimensions: 16 });
const embedder = localEmbedder(16);

/** Atoms whose content starts with `tag` (tests of this file run at once on one database). */
async function atomCount(db: Database, tag: string): Promise<number> {
  const rows = await db.orm.em
    .getConnection()
    .execute(`SELECT count(*)::int AS n FROM "${db.schema}".atoms WHERE content LIKE ?`, [
      `${tag}%`,
    ]);
  return Number(rows[0]!.n);
}

async function storedOf(db: Database, contents: readonly string[]): Promise<number> {
  const rows = await db.orm.em
    .getConnection()
    .execute(`SELECT count(*)::int AS n FROM "${db.schema}".atoms WHERE content = any(?::text[])`, [
      `{${contents.map((c) => `"${c}"`).join(',')}}`,
    ]);
  return Number(rows[0]!.n);
}

const corpusArb = fc.record({
  pool: fc.integer({ min: 1, max: 30 }),
  picks: fc.array(fc.nat(), { minLength: 1, maxLength: 160 }),
  prestored: fc.array(fc.nat(), { maxLength: 12 }),
  batchSize: fc.integer({ min: 1, max: 9 }),
  concurrency: fc.integer({ min: 2, max: 4 }),
});

function checkSums(r: IngestionReport): void {
  const by = r.duplicatesBy;
  if (r.added + r.duplicates + r.failed !== r.processed)
    throw new Error(`sum ${JSON.stringify(r)}`);
  if (by.batch + by.stored + by.claimed + by.race !== r.duplicates)
    throw new Error(`duplicatesBy ${JSON.stringify(r)}`);
}

suite.test('a run reports exactly what it stored (property)', async (t, db) => {
  await fc.assert(
    fc.asyncProperty(corpusArb, async ({ pool, picks, prestored, batchSize, concurrency }) => {
      const tag = randomBytes(4).toString('hex');
      const text = (i: number) => `${tag} item ${i % pool}`;
      const items = picks.map(text);
      const before = [...new Set(prestored.map(text))];
      if (before.length > 0) {
        const r = await ingest(
          before.map((content) => ({ content })),
          { db, embedder, batchSize: 4 },
        );
        if (r.added !== before.length) throw new Error('seeding failed');
      }
      const rowsBefore = await atomCount(db, tag);
      const r = await ingest(
        items.map((content): AtomInput => ({ content })),
        { db, embedder, batchSize, concurrency, batchTimeMs: 1 },
      );
      const rowsAfter = await atomCount(db, tag);
      const distinct = new Set(items);
      const fresh = [...distinct].filter((c) => !before.includes(c));
      const old = items.filter((c) => before.includes(c));
      const where = JSON.stringify({ r: { ...r, stepMs: undefined }, batchSize, concurrency });
      checkSums(r);
      const ok =
        r.processed === items.length &&
        r.failed === 0 &&
        r.added === rowsAfter - rowsBefore &&
        r.added === fresh.length &&
        r.duplicatesBy.claimed === 0 &&
        r.duplicatesBy.race === 0 &&
        r.claimWaits === 0 &&
        // each distinct stored content's first item is 'stored'; its repeats 'stored' or 'batch'
        r.duplicatesBy.stored >= new Set(old).size &&
        r.duplicatesBy.stored <= old.length &&
        r.duplicatesBy.batch === items.length - fresh.length - r.duplicatesBy.stored &&
        (await storedOf(db, [...distinct])) === distinct.size;
      if (!ok) throw new Error(where);
    }),
    { numRuns: 25, includeErrorInReport: true },
  );
  t.pass();
});

suite.test('two runs at once in one process store each content once', async (t, db) => {
  await fc.assert(
    fc.asyncProperty(
      corpusArb,
      fc.array(fc.nat(), { minLength: 1, maxLength: 120 }),
      async ({ pool, picks, batchSize, concurrency }, otherPicks) => {
        const tag = randomBytes(4).toString('hex');
        const text = (i: number) => `${tag} shared ${i % pool}`;
        const a = picks.map(text);
        const b = otherPicks.map(text);
        const rowsBefore = await atomCount(db, tag);
        const options = { db, embedder, batchSize, concurrency, batchTimeMs: 1 };
        const [ra, rb] = await Promise.all([
          ingest(
            a.map((content) => ({ content })),
            { ...options, owner: `a-${tag}` },
          ),
          ingest(
            b.map((content) => ({ content })),
            { ...options, owner: `b-${tag}` },
          ),
        ]);
        const rowsAfter = await atomCount(db, tag);
        checkSums(ra);
        checkSums(rb);
        const distinct = new Set([...a, ...b]).size;
        const ok =
          ra.failed + rb.failed === 0 &&
          ra.added + rb.added === rowsAfter - rowsBefore &&
          rowsAfter - rowsBefore === distinct &&
          ra.duplicatesBy.stored + rb.duplicatesBy.stored === 0 &&
          ownerLeases(db, `a-${tag}`).length + ownerLeases(db, `b-${tag}`).length === 0;
        if (!ok) throw new Error(JSON.stringify({ ra, rb, distinct }));
      },
    ),
    { numRuns: 15, includeErrorInReport: true },
  );
  t.pass();
});

suite.test('a cancelled stream gives up every claim it held', async (t, db) => {
  const tag = randomBytes(4).toString('hex');
  const owner = `cancelled-${tag}`;
  // embeds the first batch, then hangs until cancelled: later batches sit leased between steps
  let calls = 0;
  const slow: Embedder = {
    model: embedder.model,
    dimensions: embedder.dimensions,
    embed: (texts, signal) =>
      ++calls === 1
        ? embedder.embed(texts, signal)
        : new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
  };
  const contents = Array.from({ length: 60 }, (_, i) => `${tag} cancelled ${i}`);
  const p = ingestionPipeline({
    db,
    embedder: slow,
    owner,
    batchSize: 4,
    concurrency: 4,
    embedConcurrency: 1,
  });
  const sub = p.stream(contents.map((content) => ({ content }))).subscribe();
  const deadline = Date.now() + 30_000;
  while (ownerLeases(db, owner).length < 12 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.true(ownerLeases(db, owner).length >= 12);
  sub.unsubscribe();
  while (ownerLeases(db, owner).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.deepEqual(ownerLeases(db, owner), []);
  // another owner can take every one of them now
  const hashes = contents.map((c) => contentHash(c));
  const other = await leaseHashes(db, hashes, `other-${tag}`);
  t.is(other.heldElsewhere.length, 0);
  await releaseLeases(db, other.won, `other-${tag}`);
});
