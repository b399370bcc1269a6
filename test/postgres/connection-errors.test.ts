/**
 * A database that never answers, a login the server refuses, a database that does not exist:
 * each is its own named error within the configured timeout, leaves no socket open, and the
 * CLI prints one clear line (JSON with --json) and exits by itself with status 1.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { EXIT } from '../../lib/cli/exit-status.js';
import type { CliErrorJson } from '../../lib/cli/run.js';
import {
  type DatabaseAuthenticationError,
  type DatabaseDoesNotExistError,
  type DatabaseTimeoutError,
  isDatabaseAuthenticationError,
  isDatabaseDoesNotExistError,
  isDatabaseTimeoutError,
} from '../../lib/postgres/connection-errors.js';
import { stateOf, withClient } from '../../lib/postgres/database.js';
import { isDatabaseUnavailableError } from '../../lib/postgres/errors.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import { runCli } from '../support/cli-helpers.js';
import { SERVER_URL, serverUnavailableReason, uniqueSchema } from '../support/databases.js';
import { startFakePostgres } from '../support/fake-postgres.js';

const serverTest = (await serverUnavailableReason()) ? test.skip : test;
const root = fileURLToPath(new URL('../../', import.meta.url));
const main = join(root, 'lib', 'cli', 'main.ts');
/** A deadline generous enough for a loaded machine; the assertions are on the errors. */
const GENEROUS_MS = 60_000;

/** Waits until `check()` holds, polling; fails after `deadlineMs`. */
async function eventually(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a server that accepts and never answers: DatabaseTimeoutError, and no socket left open', async (t) => {
  const fake = await startFakePostgres({ kind: 'silent' });
  try {
    const e = await t.throwsAsync<DatabaseTimeoutError>(
      openDatabase({ url: fake.url(), connectTimeoutMs: 1_000 }),
    );
    t.true(isDatabaseTimeoutError(e), String(e));
    t.is(e?.phase, 'connect');
    t.is(e?.timeoutMs, 1_000);
    t.is(e?.backend, 'postgres');
    t.regex(e?.message ?? '', /did not answer within 1000 ms \(connect timeout\)/);
    t.regex(e?.message ?? '', new RegExp(`127\\.0\\.0\\.1:${fake.port}`));
    t.true(fake.accepted() >= 1);
    // the client closed every connection it opened (the fake never closes one itself)
    await eventually(() => fake.open() === 0, GENEROUS_MS, 'the client to close its sockets');
    t.is(fake.open(), 0);
  } finally {
    await fake.close();
  }
});

test("the URL's connect_timeout (seconds, as libpq) is used when connectTimeoutMs is not given", async (t) => {
  const fake = await startFakePostgres({ kind: 'silent' });
  try {
    const e = await t.throwsAsync<DatabaseTimeoutError>(
      openDatabase({ url: fake.url({ query: 'connect_timeout=2' }) }),
    );
    t.true(isDatabaseTimeoutError(e), String(e));
    t.is(e?.timeoutMs, 2_000);
    await t.throwsAsync(openDatabase({ url: fake.url({ query: 'connect_timeout=soon' }) }), {
      instanceOf: TypeError,
      message: /connect_timeout/,
    });
  } finally {
    await fake.close();
  }
});

test('timeouts are validated with clear TypeErrors', async (t) => {
  for (const bad of [
    { connectTimeoutMs: 0 },
    { connectTimeoutMs: 1.5 },
    { statementTimeoutMs: -1 },
    { idleTimeoutMs: Number.NaN },
  ]) {
    await t.throwsAsync(openDatabase({ url: SERVER_URL, ...bad }), {
      instanceOf: TypeError,
      message: new RegExp(Object.keys(bad)[0]!),
    });
  }
});

test('a wrong password (28P01) is DatabaseAuthenticationError, never printing the password', async (t) => {
  const fake = await startFakePostgres({
    kind: 'error',
    sqlstate: '28P01',
    message: 'password authentication failed for user "app"',
    askPassword: true,
  });
  try {
    const url = fake.url({ user: 'app', password: 'hunter2-secret' });
    const e = await t.throwsAsync<DatabaseAuthenticationError>(
      openDatabase({ url, connectTimeoutMs: GENEROUS_MS }),
    );
    t.true(isDatabaseAuthenticationError(e), String(e));
    t.false(isDatabaseUnavailableError(e));
    t.is(e?.user, 'app');
    t.is(e?.sqlstate, '28P01');
    t.regex(
      e?.message ?? '',
      /refused the login of user "app" \(28P01: password authentication failed/,
    );
    t.false(e?.message.includes('hunter2-secret'));
    t.deepEqual(fake.passwords.slice(0, 1), ['hunter2-secret']);

    const r = await runCli(['stats', '--json', '--db', url]);
    t.is(r.code, EXIT.error, r.stderr);
    t.regex(
      r.stderr,
      /^error: the PostgreSQL server at 127\.0\.0\.1:\d+ refused the login of user "app" .+\n$/,
    );
    t.false(r.stderr.includes('hunter2-secret'));
    t.false(r.stdout.includes('hunter2-secret'));
    const json = JSON.parse(r.stdout) as CliErrorJson;
    t.is(json.error.name, 'DatabaseAuthenticationError');
    t.is(json.error.code, 'DATABASE_AUTHENTICATION');
    t.is(json.exitCode, EXIT.error);
  } finally {
    await fake.close();
  }
});

test('a role the server does not accept (28000) is DatabaseAuthenticationError too', async (t) => {
  const fake = await startFakePostgres({
    kind: 'error',
    sqlstate: '28000',
    message: 'role "nobody" does not exist',
  });
  try {
    const e = await t.throwsAsync<DatabaseAuthenticationError>(
      openDatabase({ url: fake.url({ user: 'nobody' }), connectTimeoutMs: GENEROUS_MS }),
    );
    t.true(isDatabaseAuthenticationError(e), String(e));
    t.is(e?.user, 'nobody');
    t.is(e?.sqlstate, '28000');
  } finally {
    await fake.close();
  }
});

test('a missing database (3D000) from a fake server is DatabaseDoesNotExistError', async (t) => {
  const fake = await startFakePostgres({
    kind: 'error',
    sqlstate: '3D000',
    message: 'database "shop" does not exist',
  });
  try {
    const e = await t.throwsAsync<DatabaseDoesNotExistError>(
      openDatabase({ url: fake.url({ database: 'shop' }), connectTimeoutMs: GENEROUS_MS }),
    );
    t.true(isDatabaseDoesNotExistError(e), String(e));
    t.is(e?.database, 'shop');
  } finally {
    await fake.close();
  }
});

serverTest(
  'a missing database on the real server is DatabaseDoesNotExistError; the CLI says how to fix it',
  async (t) => {
    const url = new URL(SERVER_URL);
    const name = `no_such_db_${randomBytes(4).toString('hex')}`;
    url.pathname = `/${name}`;
    const e = await t.throwsAsync<DatabaseDoesNotExistError>(openDatabase({ url: url.toString() }));
    t.true(isDatabaseDoesNotExistError(e), String(e));
    t.false(isDatabaseUnavailableError(e));
    t.is(e?.database, name);
    t.regex(e?.message ?? '', new RegExp(`database "${name}" does not exist .*createdb ${name}`));

    const r = await runCli(['stats', '--db', url.toString()]);
    t.is(r.code, EXIT.error);
    t.regex(
      r.stderr,
      new RegExp(`^error: database "${name}" does not exist on the PostgreSQL server at .+\\n$`),
    );
  },
);

test('the CLI against a server that never answers: one line, JSON on stdout, exit 1, and the process exits', async (t) => {
  const fake = await startFakePostgres({ kind: 'silent' });
  try {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        main,
        'stats',
        '--json',
        '--db',
        fake.url({ query: 'connect_timeout=2' }),
      ],
      { cwd: root, env: { ...process.env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      stdout += s;
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      stderr += s;
    });
    // a guard against a process that never exits: the fake server keeps its end open forever
    const killer = setTimeout(() => child.kill('SIGKILL'), 4 * GENEROUS_MS);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('close', (c, s) => resolve([c, s])),
    );
    clearTimeout(killer);
    t.is(signal, null, 'the CLI had to be killed: it did not exit by itself');
    t.is(code, EXIT.error, stderr);
    t.regex(
      stderr,
      /^error: the postgres server at 127\.0\.0\.1:\d+ did not answer within 2000 ms \(connect timeout\).*\n$/,
    );
    t.is(stderr.split('\n').length, 2, stderr);
    const json = JSON.parse(stdout) as CliErrorJson;
    t.is(json.error.name, 'DatabaseTimeoutError');
    t.is(json.error.code, 'DATABASE_TIMEOUT');
    t.is(json.exitCode, EXIT.error);
  } finally {
    await fake.close();
  }
});

/** A proxy to the server that can stop forwarding while keeping every connection open. */
async function freezableProxy(
  target: URL,
): Promise<{ url: string; freeze: () => void; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((client) => {
    const upstream = connect({ host: target.hostname, port: Number(target.port || 5432) });
    sockets.add(client).add(upstream);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (d: Buffer) => {
        if (!frozen) to.write(d);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) s.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target.toString());
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    freeze: () => {
      frozen = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

serverTest(
  'a statement past statementTimeoutMs is cancelled by the server: DatabaseTimeoutError, connection kept',
  async (t) => {
    const schema = uniqueSchema('stmt');
    const db = await openDatabase({ url: SERVER_URL, schema, statementTimeoutMs: 300 });
    try {
      const e = await t.throwsAsync<DatabaseTimeoutError>(
        withClient(stateOf(db), undefined, (client) => client.query('SELECT pg_sleep(30)')),
      );
      t.true(isDatabaseTimeoutError(e), String(e));
      t.is(e?.phase, 'statement');
      t.is(e?.timeoutMs, 300);
      // the pool still works, and a lifted limit lets a longer statement finish
      const { rows } = await withClient(stateOf(db), undefined, (client) =>
        client.query<{ ok: number }>('SELECT 1 AS ok'),
      );
      t.deepEqual(rows, [{ ok: 1 }]);
      await withClient(stateOf(db), undefined, (client) => client.query('SELECT pg_sleep(0.6)'), {
        unlimited: true,
      });
      // through MikroORM too
      const viaOrm = await t.throwsAsync(db.orm.em.getConnection().execute('SELECT pg_sleep(30)'));
      t.regex(String(viaOrm), /statement timeout/);
      await db.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await db.close();
    }
  },
);

serverTest(
  'a server that stops answering mid-statement: the client gives up, closes the connection, DatabaseTimeoutError',
  async (t) => {
    const schema = uniqueSchema('hung');
    const direct = await openDatabase({ url: SERVER_URL, schema });
    const proxy = await freezableProxy(new URL(SERVER_URL));
    const db = await openDatabase({ url: proxy.url, schema, statementTimeoutMs: 200 });
    try {
      proxy.freeze();
      const e = await t.throwsAsync<DatabaseTimeoutError>(
        withClient(stateOf(db), undefined, (client) => client.query('SELECT 1')),
      );
      t.true(isDatabaseTimeoutError(e), String(e));
      t.is(e?.phase, 'statement');
      await db.close();
      t.true(db.closed);
    } finally {
      await db.close();
      await proxy.close();
      await direct.orm.em.getConnection().execute(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await direct.close();
    }
  },
);
