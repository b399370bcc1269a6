/**
 * `--help`, `--version` and bad usage work without the optional peer dependencies installed:
 * the executable runs under a module resolution that cannot find `@mikro-orm/*`,
 * `@electric-sql/*`, `@azure/*`, `pg` or `knex`, as on an install without them. A command that
 * needs them exits 1 with one line naming what to install (and JSON with `--json`).
 */

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';

const root = fileURLToPath(new URL('../../', import.meta.url));
const main = join(root, 'lib', 'cli', 'main.ts');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

/** Module hooks that make the optional peers unresolvable and log every module resolved. */
const HIDE = `
import { appendFileSync } from 'node:fs';
const hidden = /^(@mikro-orm|@electric-sql|@azure)\\/|^(pg|knex)(\\/|$)/;
export async function resolve(specifier, context, next) {
  if (hidden.test(specifier)) {
    const e = new Error(\`Cannot find package '\${specifier}' imported from \${context.parentURL}\`);
    e.code = 'ERR_MODULE_NOT_FOUND';
    throw e;
  }
  const r = await next(specifier, context);
  if (process.env.RESOLVED_LOG) appendFileSync(process.env.RESOLVED_LOG, r.url + '\\n');
  return r;
}`;

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'no-peers-'));
  await writeFile(join(dir, 'hide.mjs'), HIDE);
  await writeFile(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module'; register(${JSON.stringify(pathToFileURL(join(dir, 'hide.mjs')).href)});`,
  );
});
test.after.always(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

function cli(argv: string[]): {
  code: number | null;
  stdout: string;
  stderr: string;
  resolved: string[];
} {
  const log = join(dir, `resolved-${argv.join('_').replace(/\W/g, '')}.txt`);
  const r = spawnSync(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), '--import', join(dir, 'register.mjs'), main, ...argv],
    {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: '', RESOLVED_LOG: log },
      timeout: 90_000,
    },
  );
  let resolved: string[] = [];
  try {
    resolved = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    resolved = [];
  }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, resolved };
}

test('--help, --version and bad usage need no optional peer', (t) => {
  const help = cli(['--help']);
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /^Usage: hartonomous <command>/);
  t.is(help.stderr, '');
  t.true(
    help.resolved.some((u) => u.endsWith('/lib/cli/run.ts')),
    'the hook saw the CLI load',
  );
  t.false(help.resolved.some((u) => /atoms|postgres\/(database|open)|ingest-command/.test(u)));

  const commandHelp = cli(['ingest', '--help']);
  t.is(commandHelp.code, 0, commandHelp.stderr);
  t.regex(commandHelp.stdout, /^Usage: hartonomous ingest/);

  const version = cli(['--version']);
  t.is(version.code, 0, version.stderr);
  t.is(version.stdout, `${pkg.version}\n`);

  const bad = cli(['statz']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^error: unknown command 'statz'; did you mean 'stats'\?/);
});

test('a command that needs a missing peer says which to install, in one line or in JSON', (t) => {
  const r = cli(['stats', '--data-dir', 'memory://']);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: Cannot find package '@(mikro-orm|electric-sql)\/[\w-]+'/);
  t.regex(
    r.stderr,
    /\nhartonomous needs the optional peer dependency @[\w/-]+ for this command: npm i @mikro-orm\/core /,
  );
  t.notRegex(r.stderr, /^\s+at /m);
  const json = cli(['stats', '--data-dir', 'memory://', '--json']);
  t.is(json.code, 1);
  t.like(JSON.parse(json.stdout), { exitCode: 1, error: { code: 'ERR_MODULE_NOT_FOUND' } });
});
