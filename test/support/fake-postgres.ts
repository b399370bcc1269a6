/**
 * A fake PostgreSQL server on 127.0.0.1 for the failure modes the real one cannot show here
 * (it is trust-auth): one that accepts connections and never answers, and one that answers the
 * login with an ErrorResponse (a wrong password `28P01`, a missing database `3D000`). It speaks
 * just enough of the wire protocol (v3): it declines TLS with `N`, optionally asks for a
 * cleartext password, then sends the error and closes.
 *
 * @internal
 * @module
 */

import { createServer, type Socket } from 'node:net';

/** How the fake server treats a connection. */
export type FakePostgresMode =
  | { readonly kind: 'silent' }
  | {
      readonly kind: 'error';
      readonly sqlstate: string;
      readonly message: string;
      /** Ask for a cleartext password first (as a server refusing a password does). */
      readonly askPassword?: boolean;
    };

/** A running fake server. */
export interface FakePostgres {
  readonly port: number;
  /** A URL to it for `user`/`database` (and `password` when given). */
  url(options?: { user?: string; password?: string; database?: string; query?: string }): string;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  /** Connections still open. */
  readonly open: () => number;
  /** Passwords received (to check what the client sent). */
  readonly passwords: string[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;

function errorResponse(sqlstate: string, message: string): Buffer {
  const fields = Buffer.concat(
    [
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', sqlstate],
      ['M', message],
    ].map(([type, value]) => Buffer.from(`${type}${value}\0`, 'utf8')),
  );
  const body = Buffer.concat([fields, Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('E', 0, 'ascii');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function cleartextPasswordRequest(): Buffer {
  const b = Buffer.alloc(9);
  b.write('R', 0, 'ascii');
  b.writeInt32BE(8, 1);
  b.writeInt32BE(3, 5);
  return b;
}

/** Starts a fake server on a free port of 127.0.0.1. */
export async function startFakePostgres(mode: FakePostgresMode): Promise<FakePostgres> {
  const sockets = new Set<Socket>();
  const passwords: string[] = [];
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (mode.kind === 'silent') {
      socket.resume(); // read everything (and notice the client hanging up), answer nothing
      return;
    }
    let buffered = Buffer.alloc(0);
    let phase: 'startup' | 'password' | 'done' = 'startup';
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (phase === 'startup') {
          if (buffered.length < 8) return;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) return;
          const code = buffered.readInt32BE(4);
          buffered = buffered.subarray(length);
          if (code === SSL_REQUEST) {
            socket.write('N');
            continue;
          }
          if (code === CANCEL_REQUEST) {
            socket.end();
            return;
          }
          if (mode.askPassword) {
            phase = 'password';
            socket.write(cleartextPasswordRequest());
            continue;
          }
          phase = 'done';
          socket.end(errorResponse(mode.sqlstate, mode.message));
          return;
        }
        if (phase === 'password') {
          if (buffered.length < 5) return;
          const length = buffered.readInt32BE(1);
          if (buffered.length < length + 1) return;
          passwords.push(buffered.subarray(5, length).toString('utf8').replace(/\0$/, ''));
          buffered = buffered.subarray(length + 1);
          phase = 'done';
          socket.end(errorResponse(mode.sqlstate, mode.message));
        }
        return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port,
    url: ({ user = 'app', password, database = 'app', query } = {}) =>
      `postgres://${user}${password === undefined ? '' : `:${password}`}@127.0.0.1:${port}/${database}${
        query ? `?${query}` : ''
      }`,
    accepted: () => accepted,
    open: () => sockets.size,
    passwords,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
