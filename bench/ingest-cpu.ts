/**
 * Where the CPU of an ingest goes, on a machine too loaded for wall-clock rates to mean much:
 * CPU seconds of the client process and of the PostgreSQL server's backends (read from
 * /proc/<pid>/stat of every backend connected to the database, sampled while they live), per
 * 1,000 items, for a binary COPY of the rows (atoms only), persistAtoms() alone (256 per call)
 * and ingest() with the zero-cost in-process embedder, each on a fresh schema, 3 rounds.
 * Needs the server on this machine (DATABASE_URL) and read access to its /proc entries.
 *
 *   npm run build && npx tsx --tsconfig bench/tsconfig.json bench/ingest-cpu.ts
 *
 * `N` (default 10000), `ROUNDS` (default 3), `ONLY` (comma list: copy,persist,ingest).
 */
import { contentHash, type Embedder, ingest, persistAtoms } from '@hartonomous/pipelines/atoms';
import { binaryCopyChunks, copyFrom, float32Bytes, jsonbBinary } from './support/copy-in.js';
import { corpus } from './support/corpus.js';
import { openFresh, withRawClient } from './support/postgres.js';
import { serverCpuMonitor } from './support/server-cpu.js';

const n = Number(process.env.N ?? 10_000);
const rounds = Number(process.env.ROUNDS ?? 3);
const only = process.env.ONLY?.split(',');
const MODEL = 'bench-embed-384';
const { texts, vectors } = corpus(n, 384);
const hashes = texts.map((t) => Buffer.from(contentHash(t), 'hex'));
const byText = new Map(texts.map((t, i) => [t, vectors[i]!]));

const { serverCpu, end } = await serverCpuMonitor();

const zero: Embedder = {
  model: MODEL,
  dimensions: 384,
  embed: async (batch) => batch.map((t) => byText.get(t)!),
};

type Result = { wall: number; client: number; server: number };
const contenders: Record<string, () => Promise<Result>> = {
  copy: async () => {
    const fresh = await openFresh('cpu', 'copy');
    try {
      return await withRawClient(fresh.db, (c) =>
        measure(() =>
          copyFrom(
            c,
            `COPY "${fresh.schema}".atoms (content_hash, content, content_type, byte_size, embedding, embedding_model, embedding_dims, metadata) FROM STDIN (FORMAT binary)`,
            binaryCopyChunks(
              texts.map((t, i) => [
                hashes[i]!,
                t,
                'text/plain',
                { int4: Buffer.byteLength(t, 'utf8') },
                fresh.db.vectorStorage === 'pgvector'
                  ? (() => {
                      throw new Error('pgvector server: not handled here');
                    })()
                  : float32Bytes(vectors[i]!),
                MODEL,
                { int4: 384 },
                jsonbBinary('{}'),
              ]),
            ),
          ),
        ),
      );
    } finally {
      await fresh.dispose();
    }
  },
  persist: async () => {
    const fresh = await openFresh('cpu', 'persist');
    const atoms = texts.map((content, i) => ({
      hash: hashes[i]!.toString('hex'),
      content,
      embedding: vectors[i]!,
      embeddingModel: MODEL,
    }));
    try {
      return await measure(async () => {
        for (let i = 0; i < n; i += 256) await persistAtoms(fresh.db, atoms.slice(i, i + 256));
      });
    } finally {
      await fresh.dispose();
    }
  },
  ingest: async () => {
    const fresh = await openFresh('cpu', 'ingest');
    try {
      return await measure(async () => {
        const r = await ingest(
          texts.map((content) => ({ content })),
          {
            db: fresh.db,
            embedder: zero,
            ...(process.env.CONC ? { concurrency: Number(process.env.CONC) } : {}),
          },
        );
        if (r.added !== n) throw new Error(`ingest added ${r.added}`);
      });
    } finally {
      await fresh.dispose();
    }
  },
};

async function measure(fn: () => Promise<unknown>): Promise<Result> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const { server } = await serverCpu(fn);
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(cpu0);
  return { wall, client: (c.user + c.system) / 1e6, server };
}

const names = Object.keys(contenders).filter((k) => !only || only.includes(k));
console.log(`${n} items, per 1,000 items: wall s, client CPU s, server CPU s, total CPU s`);
for (let r = 0; r < rounds; r++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(k + r) % names.length]!;
    const res = await contenders[name]!();
    const per = (x: number) => ((x * 1000) / n).toFixed(3);
    console.log(
      `${name.padEnd(8)} wall ${per(res.wall)}  client ${per(res.client)}  server ${per(res.server)}  total ${per(res.client + res.server)}`,
    );
  }
}
await end();
