/**
 * Child process of the `embedded` scenario: fills a PGlite data folder with N atoms (about 200
 * bytes of text each, 384-float vectors from the built-in local embedder) through `ingest()`,
 * closes it, and prints what it stored as JSON: the rows counted in the database, the bytes of
 * content and of vectors those rows hold, and the time taken.
 *
 *   tsx bench/scenarios/embedded-child.ts fill <dataDir> <n>
 */
import { ingest, localEmbedder } from '@hartonomous/pipelines/atoms';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import { prng } from '../support/corpus.js';

const WORDS = (
  'atom vector stream batch graph model token index query cache shard replica ledger ' +
  'signal budget window buffer queue worker commit schema column record event outbox ' +
  'cosine cluster sample corpus filter reduce mirror anchor harbor copper silver river'
).split(' ');

/** `n` distinct texts of about 200 bytes (170-230). */
export function* texts(n: number, seed = 7): Generator<string> {
  const random = prng(seed);
  for (let i = 0; i < n; i++) {
    const target = 170 + Math.floor(random() * 61);
    let s = `paragraph ${i}:`;
    while (s.length < target) s += ` ${WORDS[Math.floor(random() * WORDS.length)]}`;
    yield s;
  }
}

const [mode, dataDir, count] = process.argv.slice(2);
if (mode !== 'fill' || !dataDir || !count) {
  console.error('usage: embedded-child.ts fill <dataDir> <n>');
  process.exit(2);
}
const n = Number(count);
const started = performance.now();
const db = await openDatabase({ dataDir });
try {
  const report = await ingest(
    (function* () {
      for (const content of texts(n)) yield { content };
    })(),
    { db, embedder: localEmbedder(db.embeddingDimensions) },
  );
  const { rows } = await db.orm.em
    .getConnection()
    .execute<{ n: string; content: string; vectors: string }[]>(
      'SELECT count(*)::text AS n, coalesce(sum(octet_length(content)), 0)::text AS content, coalesce(sum(embedding_dims * 4), 0)::text AS vectors FROM atoms',
      [],
      'all',
    )
    .then((r) => ({ rows: r }));
  const row = rows[0];
  console.log(
    JSON.stringify({
      added: report.added,
      atoms: Number(row?.n),
      contentBytes: Number(row?.content),
      vectorBytes: Number(row?.vectors),
      ms: performance.now() - started,
    }),
  );
} finally {
  await db.close();
}
