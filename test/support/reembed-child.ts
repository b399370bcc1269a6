/**
 * A process that runs `reembed` against an OpenAI-compatible embeddings server, for the crash
 * test. Run as a child (`node --import tsx test/support/reembed-child.ts`) with env
 * `DATABASE_URL` and `DB_SCHEMA` (or `DATA_DIR`, a PGlite data folder), `EMBED_URL` (base URL ending in /v1), `MODEL`, `DIMS`,
 * `BATCH_SIZE`. Prints `STARTED` once the database is open, `BATCH <n> <embedded>` after each
 * batch is written and `REPORT <json>` at the end; the parent may SIGKILL it at any moment.
 *
 * @internal
 * @module
 */
import { pathToFileURL } from 'node:url';
import { reembed } from '../../lib/documents/reembed.js';
import { openAIEmbedder } from '../../lib/http/openai-embedder.js';
import { openDatabase } from '../../lib/postgres/open-database.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

async function main(): Promise<void> {
  process.stdin.on('end', () => process.exit(2)); // the parent died
  process.stdin.resume();
  const dataDir = process.env.DATA_DIR;
  const db = dataDir
    ? await openDatabase({ dataDir })
    : await openDatabase({ url: env('DATABASE_URL'), schema: env('DB_SCHEMA') });
  const to = openAIEmbedder({
    baseUrl: env('EMBED_URL'),
    model: env('MODEL'),
    dimensions: Number(env('DIMS')),
    apiKey: '',
  });
  console.log('STARTED');
  const report = await reembed(db, {
    to,
    batchSize: Number(env('BATCH_SIZE')),
    onProgress: (p) => console.log(`BATCH ${p.batches} ${p.embedded}`),
  });
  to.close();
  await db.close();
  console.log(`REPORT ${JSON.stringify(report)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
