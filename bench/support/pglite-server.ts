/**
 * An embedded PGlite with pgvector served over the PostgreSQL wire protocol on 127.0.0.1 by
 * `@electric-sql/pglite-socket`, for contenders that need a pgvector database reached through
 * a stock driver (the server here has no pgvector). It is one backend: clients run one query
 * at a time, so each client keeps its pool at one connection.
 */
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { type Database, openDatabase } from '@hartonomous/pipelines/postgres';
import { uniqueSchema } from './postgres.js';

/** A running socket server and its database. */
export interface PgliteServer {
  /** The database itself (for in-process statements such as `COPY ... FROM '/dev/blob'`). */
  readonly pglite: PGlite;
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  /** The same as pg connection settings. */
  readonly connection: { host: string; port: number; user: string; database: string };
  close(): Promise<void>;
}

/** Starts PGlite (in memory, with pgvector) and serves it on a free port of 127.0.0.1. */
export async function startPgliteServer(): Promise<PgliteServer> {
  const pglite = await PGlite.create('memory://', { extensions: { vector } });
  await pglite.exec('CREATE EXTENSION IF NOT EXISTS vector');
  // clients connect one after another (a pool of one each); a few may be open at once
  const server = new PGLiteSocketServer({
    db: pglite,
    port: 0,
    host: '127.0.0.1',
    maxConnections: 8,
  });
  await server.start();
  const port = portOf(server);
  return {
    pglite,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    connection: { host: '127.0.0.1', port, user: 'postgres', database: 'postgres' },
    close: async () => {
      await server.stop();
      await pglite.close();
    },
  };
}

function portOf(server: PGLiteSocketServer): number {
  const inner = (server as unknown as { server?: { address(): unknown } }).server;
  const address = inner?.address();
  if (typeof address === 'object' && address !== null && 'port' in address) {
    return Number((address as { port: number }).port);
  }
  throw new Error('pglite-socket: cannot tell the port it listens on');
}

/** A fresh schema on the socket's database (one pool connection), with its clean-up. */
export async function openOnSocket(
  socket: PgliteServer,
  tag: string,
): Promise<{ db: Database; schema: string; dispose: () => Promise<void> }> {
  const schema = uniqueSchema(tag);
  const db = await openDatabase({ url: socket.url, schema, poolSize: 1 });
  return {
    db,
    schema,
    dispose: async () => {
      try {
        await db.orm.em.getConnection().execute(`DROP SCHEMA "${schema}" CASCADE`);
      } finally {
        await db.close();
        // the socket's connections share ONE backend: prepared statements outlive the
        // connection that made them, and the next fresh connection would prepare again
        await socket.pglite.exec('DEALLOCATE ALL');
      }
    },
  };
}
