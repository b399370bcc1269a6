/**
 * The main job on the embedded default, with no server and no network: ingest a small corpus
 * (examples/corpus/*.md and the README, split into paragraphs) into an embedded PostgreSQL
 * (PGlite) with the built-in local embedder, show progress and the report, run a similarity
 * search, then ingest the same corpus again to show that every paragraph is now a duplicate.
 *
 *   npm run demo                      data kept in .data/demo (run it twice: all duplicates)
 *   DEMO_DATA_DIR=memory:// npm run demo
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AtomInput, ingest, localEmbedder, searchSimilar } from '@hartonomous/pipelines/atoms';
import { openDatabase } from '@hartonomous/pipelines/postgres';

const root = new URL('..', import.meta.url).pathname;
const corpusDir = join(root, 'examples', 'corpus');
const files = [
  ...readdirSync(corpusDir)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(corpusDir, f)),
  join(root, 'README.md'),
];

/** Paragraphs of a markdown file: blocks separated by blank lines, headings and code skipped. */
function* paragraphs(file: string): Generator<AtomInput> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
  let n = 0;
  for (const block of text.split(/\n\s*\n/)) {
    const p = block.replace(/\s+/g, ' ').trim();
    if (p.length < 60 || p.startsWith('#') || p.startsWith('|')) continue;
    yield {
      content: p,
      contentType: 'text/markdown',
      sourceId: `${file.slice(root.length)}#${++n}`,
    };
  }
}

function* corpus(): Generator<AtomInput> {
  for (const f of files) yield* paragraphs(f);
}

const total = [...corpus()].length;
const bar = (done: number): string => {
  const width = 30;
  const filled = Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
};

const dataDir =
  process.env.DEMO_DATA_DIR ?? (process.env.SMOKE ? 'memory://' : join(root, '.data', 'demo'));
console.log(`opening the embedded database (${dataDir}) ...`);
const db = await openDatabase({ dataDir });
const embedder = localEmbedder(db.embeddingDimensions);

try {
  for (const pass of [1, 2]) {
    console.log(`\npass ${pass}: ingesting ${total} paragraphs from ${files.length} files`);
    const report = await ingest(corpus(), {
      db,
      embedder,
      batchSize: 32,
      onProgress: (p) => {
        if (process.stdout.isTTY) process.stdout.write(`\r  ${bar(p.processed)}`);
      },
    });
    if (process.stdout.isTTY) process.stdout.write('\n');
    console.log(
      `  added ${report.added}, duplicates ${report.duplicates} (in batch ${report.duplicatesBy.batch}, already stored ${report.duplicatesBy.stored}), failed ${report.failed}`,
    );
    console.log(
      `  ${report.bytes} bytes in ${report.durationMs.toFixed(0)} ms; time in steps: ${Object.entries(
        report.stepMs,
      )
        .map(([s, ms]) => `${s} ${ms.toFixed(0)} ms`)
        .join(', ')}`,
    );
    for (const f of report.failures)
      console.log(`  failed: ${f.sourceId ?? f.index} at ${f.step}: ${f.error}: ${f.message}`);
  }

  for (const query of [
    'what to do when a consumer is slower than the producer',
    'undo earlier steps after a failure',
  ]) {
    console.log(`\nsearch: "${query}"`);
    const hits = await searchSimilar(db, query, 3, { embedder, model: embedder.model });
    for (const hit of hits) {
      console.log(
        `  ${hit.similarity.toFixed(3)}  ${hit.sourceId}  ${hit.content.slice(0, 90)}...`,
      );
    }
  }
  console.log(
    `\n${db.backend} database, schema version ${db.schemaVersion}, vectors stored as ${db.vectorStorage}`,
  );
} finally {
  await db.close();
}
