/**
 * The PostgreSQL server the database benchmarks use (`DATABASE_URL`, default
 * postgres://postgres@127.0.0.1:5432/test): a reachability check that fails with a clear
 * message (benchmarks start nothing), fresh uniquely named schemas that are dropped after use,
 * and a raw node-postgres client borrowed from a database's pool for the hand-written
 * contenders.
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '@hartonomous/pipelines/postgres';
import { openDatabase } from '@hartonomous/pipelines/postgres';

/** The server the benchmarks run against. */
export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The URL without its password, for messages. */
export function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}

/** A schema name unique to this process and call: `bench_<tag>_<pid>_<random>`. */
export function uniqueSchema(tag: string): string {
  return `bench_${tag}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

/** A database opened on a fresh schema of the server, with its clean-up. */
export interface FreshDatabase {
  readonly db: Database;
  readonly schema: string;
  /** Drops the schema (cascade) and closes the handle. */
  dispose(): Promise<void>;
}

/**
 * Opens the server on a new, migrated schema. Throws an Error naming the URL and what to do
 * when the server cannot be reached (the benchmark starts no server).
 */
export async function openFresh(
  scenario: string,
  tag: string,
  poolSize?: number,
): Promise<FreshDatabase> {
  const schema = uniqueSchema(tag);
  let db: Database;
  try {
    db = await openDatabase({
      url: SERVER_URL,
      schema,
      ...(poolSize !== undefined ? { poolSize } : {}),
    });
  } catch (e) {
    throw new Error(
      `${scenario}: cannot use the PostgreSQL server at ${redacted(SERVER_URL)} (${e instanceof Error ? e.message : String(e)}). This benchmark needs a running server and starts none: start PostgreSQL or set DATABASE_URL.`,
      { cause: e },
    );
  }
  return {
    db,
    schema,
    dispose: async () => {
      try {
        await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await db.close();
      }
    },
  };
}

/** The parts of a node-postgres client the hand-written contenders use. */
export interface RawClient {
  query<R = Record<string, unknown>>(
    text: string | { text: string; values?: unknown[]; name?: string },
    values?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

interface Pool {
  acquireConnection(): Promise<RawClient>;
  releaseConnection(client: RawClient): Promise<void>;
}

/**
 * Runs `fn` with one raw node-postgres client taken from the database's own pool (the one
 * MikroORM and the library's hot path use), released afterwards.
 */
export async function withRawClient<T>(
  db: Database,
  fn: (client: RawClient) => Promise<T>,
): Promise<T> {
  const pool = db.orm.em.getConnection().getKnex().client as unknown as Pool;
  const client = await pool.acquireConnection();
  try {
    return await fn(client);
  } finally {
    await pool.releaseConnection(client);
  }
}
