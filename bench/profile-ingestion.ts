/**
 * One ingest() of 20,000 paragraphs into a fresh schema of the PostgreSQL server (or, with
 * `--pglite`, an in-memory PGlite), embeddings from the bench's 5 ms local server (or, with
 * `--zero`, the zero-cost in-process embedder), for a CPU profile of the client:
 *
 *   npm run build && npx tsx bench/profile-ingestion.ts [--pglite] [--zero] [--out=FILE]
 *   npx tsx bench/summarize-profile.ts FILE
 *
 * Only the ingest() call is profiled (node:inspector's CPU profiler, started just before it and
 * stopped just after), not module loading or the data set up. FILE defaults to
 * /tmp/ingestion.cpuprofile.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { type Embedder, ingest, openAIEmbedder } from '@hartonomous/pipelines/atoms';
import { openDatabase } from '@hartonomous/pipelines/postgres';
import { corpus } from './support/corpus.js';
import { startBenchEmbeddingServer } from './support/embedding-server.js';
import { openFresh } from './support/postgres.js';

const n = Number(process.env.N ?? 20_000);
const args = process.argv.slice(2);
const { texts, vectors } = corpus(n, 384);
const byText = new Map(texts.map((t, i) => [t, vectors[i]!]));
const server = await startBenchEmbeddingServer(byText, 5);
const fresh = args.includes('--pglite')
  ? await (async () => {
      const db = await openDatabase({ dataDir: 'memory://' });
      return { db, dispose: () => db.close() };
    })()
  : await openFresh('profile', 'profile');
const embedder: Embedder = args.includes('--zero')
  ? { model: 'bench-embed-384', dimensions: 384, embed: async (b) => b.map((t) => byText.get(t)!) }
  : openAIEmbedder({ baseUrl: server.baseUrl, model: 'bench-embed-384', dimensions: 384 });
const out = args.find((a) => a.startsWith('--out='))?.slice(6) ?? '/tmp/ingestion.cpuprofile';
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 200 });
try {
  await session.post('Profiler.start');
  const report = await ingest(
    texts.map((content) => ({ content })),
    { db: fresh.db, embedder },
  );
  const { profile } = await session.post('Profiler.stop');
  writeFileSync(out, JSON.stringify(profile));
  console.log(
    `${report.added} added in ${(report.durationMs / 1000).toFixed(2)} s: ${Math.round(report.itemsPerSecond)} items/s; steps`,
    report.stepMs,
    `\nprofile: ${out}`,
  );
} finally {
  if ('close' in embedder) (embedder as { close(): void }).close();
  await fresh.dispose();
  await server.close();
}
