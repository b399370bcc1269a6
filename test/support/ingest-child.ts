/**
 * A process that ingests a generated corpus, for the crash and multi-process accounting tests.
 * Run as a child (`runScript` of test/support/child-process.ts) with env `DATABASE_URL`,
 * `DB_SCHEMA`, `PREFIX`, `COUNT` (items), `POOL` (distinct contents), `STEP` and `OFFSET`
 * (item `i` has content `<PREFIX> <(i * STEP + OFFSET) % POOL>`), optional `BATCH_SIZE`.
 * Prints `STARTED` once the database is open and `REPORT <json>` (the ingestion report) at the
 * end; the parent may SIGKILL it at any moment in between.
 *
 * @internal
 * @module
 */
import { pathToFileURL } from 'node:url';
import { ingest } from '../../lib/atoms/ingest.js';
import type { AtomInput } from '../../lib/atoms/ingest-steps.js';
import { localEmbedder } from '../../lib/atoms/local-embedder.js';
import { openDatabase } from '../../lib/postgres/open-database.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

/** Item `i` of the corpus a child with these settings ingests. */
export function corpusItem(prefix: string, i: number, step: number, offset: number, pool: number) {
  return `${prefix} ${(i * step + offset) % pool}`;
}

async function main(): Promise<void> {
  process.stdin.on('end', () => process.exit(2)); // the parent died
  process.stdin.resume();
  const db = await openDatabase({ url: env('DATABASE_URL'), schema: env('DB_SCHEMA') });
  const [count, pool, step, offset] = ['COUNT', 'POOL', 'STEP', 'OFFSET'].map((n) =>
    Number(env(n)),
  ) as [number, number, number, number];
  const prefix = env('PREFIX');
  async function* items(): AsyncGenerator<AtomInput> {
    for (let i = 0; i < count; i++) yield { content: corpusItem(prefix, i, step, offset, pool) };
  }
  console.log('STARTED');
  const report = await ingest(items(), {
    db,
    embedder: localEmbedder(db.embeddingDimensions),
    batchSize: Number(process.env.BATCH_SIZE ?? 16),
    batchTimeMs: 5,
    concurrency: 2,
  });
  await db.close();
  console.log(`REPORT ${JSON.stringify({ ...report, failures: report.failures.slice(0, 5) })}`);
}

// run as a script (also as its bundle), not when the test imports corpusItem from here
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
