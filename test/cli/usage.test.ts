/**
 * The command line's contract without a working database: help, version, bad usage (exit 2
 * with the usage text), named errors (exit 1, one `error:` line, no stack unless --verbose),
 * and the pieces `ingest` reads files with.
 */

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { isPathNotFoundError } from '../../lib/cli/errors.js';
import { findTextFiles } from '../../lib/cli/find-text-files.js';
import { parseCommandLine } from '../../lib/cli/parse-command-line.js';
import { splitText } from '../../lib/cli/split-text.js';
import { runCli, tempDir, writeCorpus } from '../support/cli-helpers.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};
const UNREACHABLE = 'postgres://postgres@127.0.0.1:1/x';
/** A line of a JavaScript stack trace. */
const STACK_LINE = /^\s+at /m;

test('--help prints the overview; <command> --help and help <command> the command', async (t) => {
  const top = await runCli(['--help']);
  t.is(top.code, 0);
  t.is(top.stderr, '');
  t.regex(top.stdout, /^Usage: hartonomous <command> \[options\]/);
  for (const command of ['ingest', 'search', 'stats', 'migrate']) {
    t.regex(top.stdout, new RegExp(`\\n  ${command} +\\S`));
    const own = await runCli([command, '--help']);
    t.is(own.code, 0);
    t.true(own.stdout.startsWith(`Usage: hartonomous ${command}`), own.stdout);
    t.regex(own.stdout, /--db <url>/);
    t.deepEqual(await runCli(['help', command]), own);
  }
  const ingest = await runCli(['ingest', '-h']);
  for (const option of [
    '--split',
    '--embedder',
    '--embed-url',
    '--embed-model',
    '--dimensions',
    '--batch-size',
    '--json',
    '--data-dir',
    '--schema',
  ]) {
    t.true(ingest.stdout.includes(option), option);
  }
  t.regex((await runCli(['search', '--help'])).stdout, /-k, --k <n>/);
});

test('--version prints the package version', async (t) => {
  for (const flag of ['--version', '-V']) {
    t.deepEqual(await runCli([flag]), { code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  }
});

const badUsage: [string[], RegExp, string][] = [
  [[], /^error: missing command\n\nUsage: hartonomous <command>/, 'no command'],
  [['frob'], /^error: unknown command 'frob'\n\nUsage: hartonomous <command>/, 'unknown command'],
  [
    ['search', 'x', '--colour'],
    /^error: unknown option '--colour'\n\nUsage: hartonomous search/,
    'unknown option',
  ],
  [
    ['stats', '-k', '3'],
    /^error: 'stats' has no option '-k'\n\nUsage: hartonomous stats/,
    'option of another command',
  ],
  [
    ['stats', '--db'],
    /^error: option '--db' needs a value <url>\n\nUsage: hartonomous stats/,
    'missing value',
  ],
  [['stats', '--db', '--verbose'], /^error: option '--db' needs a value/, 'option as value'],
  [['stats', '--json=yes'], /^error: option '--json' takes no value/, 'value of a flag'],
  [
    ['search', 'x', '-k', '0'],
    /^error: --k must be an integer from 1 to 10000, got '0'/,
    'k out of range',
  ],
  [
    ['ingest', '.', '--batch-size', '1.5'],
    /^error: --batch-size must be an integer/,
    'not an integer',
  ],
  [
    ['ingest', '.', '--split', 'word'],
    /^error: --split must be one of paragraph, line, file, got 'word'/,
    'bad choice',
  ],
  [
    ['ingest', '.', '--embedder', 'openai'],
    /^error: --embedder openai needs --embed-model <name>/,
    'openai without a model',
  ],
  [
    ['ingest', '.', '--embed-model', 'm'],
    /^error: --embed-model and --embed-url apply to --embedder openai/,
    'model for local',
  ],
  [
    ['stats', '--db', UNREACHABLE, '--data-dir', 'x'],
    /^error: give --db .* or --data-dir .*, not both/,
    'two databases',
  ],
  [
    ['stats', '--schema', 'drop table'],
    /^error: --schema must be a plain SQL identifier/,
    'bad schema',
  ],
  [
    ['ingest'],
    /^error: ingest needs at least one file or folder\n\nUsage: hartonomous ingest/,
    'ingest without paths',
  ],
  [
    ['search', '--data-dir', 'memory://'],
    /^error: search needs a text to look for\n\nUsage: hartonomous search/,
    'search without text',
  ],
  [['stats', 'extra'], /^error: stats takes no arguments, got 'extra'/, 'stats with an argument'],
  [['migrate', '--version'], /^error: 'migrate' has no option '--version'/, 'version on a command'],
];

for (const [argv, expected, title] of badUsage) {
  test(`bad usage exits 2 with the usage: ${title}`, async (t) => {
    const r = await runCli(argv);
    t.is(r.code, 2, r.stderr);
    t.is(r.stdout, '');
    t.regex(r.stderr, expected);
    t.regex(r.stderr, /\n\nUsage: hartonomous /);
    t.regex(r.stderr, /Exit status:\n/);
  });
}

test('parseCommandLine: options before or after the command, defaults, and conversions', (t) => {
  const parsed = parseCommandLine([
    '--db',
    'postgres://u@h/db',
    'search',
    'a',
    '-k7',
    'b',
    '--json',
  ]);
  t.like(parsed, { kind: 'command', command: 'search', positionals: ['a', 'b'] });
  if (parsed.kind !== 'command') return;
  t.like(parsed.options, {
    db: 'postgres://u@h/db',
    k: 7,
    json: true,
    split: 'paragraph',
    embedder: 'local',
  });
  const dashed = parseCommandLine(['search', '--', '--not-an-option']);
  t.like(dashed, { kind: 'command', positionals: ['--not-an-option'] });
  t.deepEqual(parseCommandLine(['help']), { kind: 'help' });
  t.deepEqual(parseCommandLine(['ingest', '--bogus', '--help']), {
    kind: 'help',
    command: 'ingest',
  });
});

test('a missing path exits 1 with one clear line, before any database is opened', async (t) => {
  // --db points nowhere: were it opened, the error would be about the database
  const r = await runCli(['ingest', 'no/such/folder', '--db', UNREACHABLE]);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.is(r.stderr, 'error: no/such/folder: no such file or directory\n');
});

test('an unreachable database exits 1 with `error:` and no stack; --verbose adds it', async (t) => {
  for (const command of [['stats'], ['migrate'], ['search', 'anything'], ['ingest', '.']]) {
    const { dir, remove } = await tempDir('unreachable');
    try {
      const r = await runCli([...command, '--db', UNREACHABLE], { cwd: dir });
      t.is(r.code, 1, command[0]);
      t.is(r.stdout, '');
      t.regex(r.stderr, /^error: the postgres database is unavailable \(ECONNREFUSED: .+\)\n$/);
      t.notRegex(r.stderr, STACK_LINE);
    } finally {
      await remove();
    }
  }
  const verbose = await runCli(['stats', '--db', UNREACHABLE, '--verbose']);
  t.is(verbose.code, 1);
  t.regex(verbose.stderr, /^error: the postgres database is unavailable/);
  t.regex(verbose.stderr, /\nDatabaseUnavailableError: /);
  t.regex(verbose.stderr, STACK_LINE);
  t.regex(verbose.stderr, /\ncaused by: Error: connect ECONNREFUSED/);
});

test('DATABASE_URL from the environment is used unless --data-dir is given', async (t) => {
  const viaEnv = await runCli(['stats'], { env: { DATABASE_URL: UNREACHABLE } });
  t.is(viaEnv.code, 1);
  t.regex(viaEnv.stderr, /^error: the postgres database is unavailable/);
  const { dir, remove } = await tempDir('env');
  try {
    // --data-dir wins over the environment: a PGlite folder that does not exist
    const local = await runCli(['stats', '--data-dir', 'nothing-here'], {
      env: { DATABASE_URL: UNREACHABLE },
      cwd: dir,
    });
    t.is(local.code, 1);
    t.regex(local.stderr, /^error: no database in nothing-here: run 'hartonomous ingest <path>'/);
  } finally {
    await remove();
  }
});

test('search and stats never create an embedded database', async (t) => {
  const { dir, remove } = await tempDir('nodb');
  try {
    for (const argv of [['stats'], ['search', 'x']]) {
      const r = await runCli(argv, { cwd: dir });
      t.is(r.code, 1);
      t.is(r.stderr.split('\n').length, 2, 'one line');
      t.regex(r.stderr, /^error: no database in \.data\/pglite/);
    }
    t.false(existsSync(join(dir, '.data')));
  } finally {
    await remove();
  }
});

test('findTextFiles walks folders by extension, skips hidden and node_modules, keeps named files', async (t) => {
  const { dir, remove } = await tempDir('walk');
  try {
    await writeCorpus(dir);
    await mkdir(join(dir, 'a-first'));
    await writeFile(join(dir, 'a-first', 'z.rst'), 'restructured text');
    const { files, missing } = await findTextFiles(['.', 'unknown.xyz', 'guide.md'], { cwd: dir });
    t.deepEqual(missing, []);
    t.deepEqual(
      files.map((f) => f.name),
      [
        'a-first/z.rst',
        'data.txt',
        'empty.md',
        'guide.md',
        'latin1.txt',
        'notes.txt',
        'sub/deep.md',
        'unknown.xyz',
      ],
    );
    t.true(files.every((f) => f.path.startsWith(dir) && f.size >= 0));
    const outside = await findTextFiles([join(dir, 'guide.md')], { cwd: '/' });
    t.is(outside.files[0]?.name, join(dir, 'guide.md').slice(1));
    const some = await findTextFiles(['guide.md', 'gone.md'], { cwd: dir });
    t.deepEqual(
      some.files.map((f) => f.name),
      ['guide.md'],
    );
    t.is(some.missing.length, 1);
    t.true(isPathNotFoundError(some.missing[0]));
    t.is(some.missing[0]?.message, 'gone.md: no such file or directory');
  } finally {
    await remove();
  }
});

test('splitText cuts markdown blocks, lines or whole files with their line numbers', (t) => {
  const text = '\r\n# Title\r\n\r\nfirst line  \n  second line\n \t \nlast\n\n\n';
  // paragraph: the markdown chunker's blocks, a heading joined to the block after it
  t.deepEqual(
    [...splitText(text, 'paragraph')].map(({ text, line }) => ({ text, line })),
    [
      { text: '# Title\n\nfirst line\n  second line', line: 2 },
      { text: 'last', line: 7 },
    ],
  );
  const md = '- a\n\n- b\n\n```\ncode\n\nmore  \n```\n\nafter\n';
  t.deepEqual(
    [...splitText(md, 'paragraph')].map(({ text, line }) => ({ text, line })),
    [
      { text: '- a\n\n- b', line: 1 },
      { text: '```\ncode\n\nmore\n```', line: 5 },
      { text: 'after', line: 11 },
    ],
  );
  t.deepEqual(
    [...splitText(text, 'line')].map(({ text, line }) => [line, text]),
    [
      [2, '# Title'],
      [4, 'first line'],
      [5, 'second line'],
      [7, 'last'],
    ],
  );
  t.deepEqual(
    [...splitText(text, 'file')].map(({ text, line }) => ({ text, line })),
    [{ text: '# Title\n\nfirst line  \n  second line\n \t \nlast', line: 2 }],
  );
  t.deepEqual([...splitText(' \n\t\n', 'paragraph')], []);
  t.deepEqual([...splitText('', 'file')], []);
  const ends = [...splitText('ab\n\ncd', 'paragraph')].map((p) => p.end);
  t.deepEqual(ends, [2, 6]);
});

test('parseCommandLine: search --mode, --filter key=value (JSON values) and --content-type', (t) => {
  const parsed = parseCommandLine([
    'search',
    'x',
    '--mode',
    'hybrid',
    '--filter',
    'lang=en',
    '--filter',
    'n=2',
    '--filter',
    'tags=["a"]',
    '--filter',
    'note=a=b',
    '--content-type',
    'text/markdown',
  ]);
  if (parsed.kind !== 'command') return t.fail();
  t.is(parsed.options.mode, 'hybrid');
  t.deepEqual(parsed.options.filter, { lang: 'en', n: 2, tags: ['a'], note: 'a=b' });
  t.is(parsed.options.contentType, 'text/markdown');
  const plain = parseCommandLine(['search', 'x']);
  if (plain.kind !== 'command') return t.fail();
  t.is(plain.options.mode, 'vector');
  t.is(plain.options.filter, undefined);
  t.throws(() => parseCommandLine(['search', 'x', '--mode', 'fuzzy']), {
    message: /--mode must be one of vector, text, hybrid/,
  });
  t.throws(() => parseCommandLine(['search', 'x', '--filter', 'novalue']), {
    message: /key=value/,
  });
  t.throws(() => parseCommandLine(['search', 'x', '--filter', '=v']), { message: /key=value/ });
  t.throws(() => parseCommandLine(['ingest', 'x', '--mode', 'text']), { message: /has no option/ });
});
