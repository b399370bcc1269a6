/**
 * Ingest the text files of a folder: every text file under it (recursively, as `hartonomous ingest` reads them), split into
 * paragraphs, deduplicated, embedded with the built-in local embedder and stored with their
 * outbox events. Progress on stderr, then the report. Run it twice: the second run adds nothing
 * and reports every paragraph as a duplicate.
 *
 *   npx tsx examples/ingest-directory.ts [folder]    default folder: examples/corpus
 *
 * Database: DATABASE_URL when set, else an embedded PGlite in .data/example (which
 * examples/search.ts then searches). With SMOKE=1 (CI) the run uses a throw-away database: a
 * unique schema on DATABASE_URL, dropped at the end, or an in-memory PGlite.
 */
import { randomBytes } from 'node:crypto';
import { join, relative, resolve } from 'node:path';
import { ingest } from '@hartonomous/pipelines/atoms';
import { textAtoms } from '@hartonomous/pipelines/cli';
import { openDatabase } from '@hartonomous/pipelines/postgres';

const root = new URL('..', import.meta.url).pathname;
const folder = resolve(process.argv[2] ?? join(root, 'examples', 'corpus'));
const smoke = Boolean(process.env.SMOKE);
const url = process.env.DATABASE_URL || undefined;

// SMOKE: a schema of its own on the server (dropped below), or a database in memory
const schema =
  smoke && url ? `example_${process.pid}_${randomBytes(3).toString('hex')}` : undefined;
const db = url
  ? await openDatabase({ url, ...(schema ? { schema } : {}) })
  : await openDatabase({ dataDir: smoke ? 'memory://' : join(root, '.data', 'example') });
console.log(
  `ingesting the text files of ${relative(process.cwd(), folder) || '.'} into ${db.backend}${
    schema ? ` (schema ${schema})` : ''
  }`,
);

const ac = new AbortController();
const stop = (): void => ac.abort();
process.once('SIGINT', stop);
try {
  const report = await ingest(await textAtoms([folder], { cwd: root }), {
    db,
    batchSize: 64,
    signal: ac.signal,
    onProgress: (p) => {
      if (process.stderr.isTTY) {
        process.stderr.write(
          `\r  ${p.processed} paragraphs: ${p.added} new, ${p.duplicates} duplicates, ${p.failed} failed`,
        );
      }
    },
  });
  if (process.stderr.isTTY) process.stderr.write('\n');
  if (ac.signal.aborted) console.log('interrupted: the report covers what finished');
  console.log(`  paragraphs  ${report.processed} (${report.bytes} bytes)`);
  console.log(`  added       ${report.added}`);
  console.log(
    `  duplicates  ${report.duplicates} (same batch ${report.duplicatesBy.batch}, already stored ${report.duplicatesBy.stored})`,
  );
  console.log(`  failed      ${report.failed}`);
  for (const f of report.failures) console.log(`    ${f.sourceId}: ${f.error}: ${f.message}`);
  console.log(
    `  took        ${report.durationMs.toFixed(0)} ms (${report.itemsPerSecond.toFixed(0)} paragraphs/s); ${Object.entries(
      report.stepMs,
    )
      .map(([step, ms]) => `${step} ${ms.toFixed(0)} ms`)
      .join(', ')}`,
  );
  if (smoke && report.processed === 0) throw new Error(`no paragraphs found in ${folder}`);
} finally {
  process.off('SIGINT', stop);
  if (schema) await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await db.close();
}
