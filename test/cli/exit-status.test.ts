/**
 * Honest exits: the exit status says whether every item was stored; a missing path among good
 * ones is reported while the good files go through; `--max-bytes`; every error is also JSON on
 * stdout with `--json`; a malformed database URL is a named error; "did you mean".
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { EXIT } from '../../lib/cli/exit-status.js';
import type { IngestCommandReport } from '../../lib/cli/ingest-command.js';
import type { CliErrorJson } from '../../lib/cli/run.js';
import {
  CORPUS_DISTINCT,
  CORPUS_ITEMS,
  postgresTarget,
  runCli,
  tempDir,
  writeCorpus,
} from '../support/cli-helpers.js';
import { serverUnavailableReason } from '../support/databases.js';

const unavailable = await serverUnavailableReason();
const serverTest = unavailable ? test.skip : test;
/** Nothing listens on port 1 of the loopback. */
const UNREACHABLE_EMBEDDER = 'http://127.0.0.1:1/v1';

serverTest('an unreachable embedder fails every item and exits 3, not 0', async (t) => {
  const target = postgresTarget('noembed');
  const corpus = await tempDir('noembed');
  try {
    await writeCorpus(corpus.dir);
    const ingestUnreachable = (...args: string[]) =>
      runCli(
        [
          'ingest',
          ...args,
          '-q',
          '--embedder',
          'openai',
          '--embed-url',
          UNREACHABLE_EMBEDDER,
          '--embed-model',
          'm',
          ...target.args,
        ],
        { cwd: corpus.dir },
      );
    const r = await ingestUnreachable('.', '--json');
    t.is(r.code, EXIT.itemsFailed, r.stderr);
    const report = JSON.parse(r.stdout) as IngestCommandReport;
    t.is(report.processed, CORPUS_ITEMS);
    t.is(report.added, 0);
    t.is(report.failed + report.duplicates, CORPUS_ITEMS);
    t.true(report.failed >= CORPUS_DISTINCT);

    const text = await ingestUnreachable('guide.md');
    t.is(text.code, EXIT.itemsFailed);
    // guide.md is 2 atoms (the markdown chunker joins its heading to the first paragraph)
    t.regex(text.stdout, /^ingest finished with failures: 2 items failed \(exit status 3\)\n/);
  } finally {
    await corpus.remove();
    await target.dispose();
  }
});

serverTest(
  'a missing path among good ones is reported; the good files are stored; exit 3',
  async (t) => {
    const target = postgresTarget('missing');
    const corpus = await tempDir('missing');
    try {
      await writeCorpus(corpus.dir);
      const r = await runCli(
        ['ingest', 'guide.md', 'nope.md', 'notes.txt', '--json', '-q', ...target.args],
        {
          cwd: corpus.dir,
        },
      );
      t.is(r.code, EXIT.itemsFailed, r.stderr);
      t.is(r.stderr, 'warning: nope.md: no such file or directory (skipped)\n');
      const report = JSON.parse(r.stdout) as IngestCommandReport;
      t.deepEqual(report.missing, [{ path: 'nope.md', reason: 'no such file or directory' }]);
      t.is(report.files, 2);
      t.is(report.failed, 0);
      // 2 blocks of guide.md (its heading opens the penguin paragraph's atom), 2 new ones of
      // notes.txt (its third paragraph repeats guide.md's second)
      t.is(report.added, 4);
      const text = await runCli(['ingest', 'guide.md', 'nope.md', '-q', ...target.args], {
        cwd: corpus.dir,
      });
      t.is(text.code, EXIT.itemsFailed);
      t.regex(text.stdout, /, 1 path missing \(exit status 3\)\n/);
      t.regex(text.stdout, /\nmissing paths:\n {2}nope\.md: no such file or directory\n/);
    } finally {
      await corpus.remove();
      await target.dispose();
    }
  },
);

serverTest('--max-bytes raises the 1 MiB limit of an atom', async (t) => {
  const target = postgresTarget('maxbytes');
  const corpus = await tempDir('maxbytes');
  try {
    const big = `${'word '.repeat(300_000).trim()}\n`; // about 1.4 MiB, one paragraph
    await writeFile(join(corpus.dir, 'big.txt'), big);
    await writeFile(join(corpus.dir, 'small.txt'), 'a small paragraph\n');
    const args = ['ingest', '.', '--json', '-q', '--split', 'file', ...target.args];
    const limited = await runCli(args, { cwd: corpus.dir });
    t.is(limited.code, EXIT.itemsFailed, limited.stderr);
    const r1 = JSON.parse(limited.stdout) as IngestCommandReport;
    t.is(r1.added, 1);
    t.is(r1.failed, 1);
    t.like(r1.failures[0], { sourceId: 'big.txt', error: 'ContentTooLargeError' });

    const raised = await runCli([...args, '--max-bytes', '2MiB'], { cwd: corpus.dir });
    t.is(raised.code, EXIT.ok, raised.stderr);
    const r2 = JSON.parse(raised.stdout) as IngestCommandReport;
    t.is(r2.added, 1);
    t.is(r2.failed, 0);
    t.is(r2.duplicates, 1);
  } finally {
    await corpus.remove();
    await target.dispose();
  }
});

test('--max-bytes takes sizes with units and rejects others', async (t) => {
  const bad = await runCli(['ingest', '.', '--max-bytes', '2 parsecs']);
  t.is(bad.code, EXIT.usage);
  t.regex(bad.stderr, /^error: --max-bytes must be a size from 1 byte to 1GiB/);
  const { parseByteSize } = await import('../../lib/cli/parse-command-line.js');
  t.is(parseByteSize('4MiB'), 4 * 1024 * 1024);
  t.is(parseByteSize('512k'), 512 * 1024);
  t.is(parseByteSize('1048576'), 1_048_576);
  t.is(parseByteSize('1.5MiB'), 1_572_864);
  t.is(parseByteSize('0.5'), undefined);
  t.is(parseByteSize('-1'), undefined);
});

test('with --json every error is also JSON on stdout, with its name and the exit code', async (t) => {
  const { dir, remove } = await tempDir('json-errors');
  try {
    const cases: [string[], number, string][] = [
      [['stats', '--json'], EXIT.error, 'DatabaseNotFoundError'],
      [
        ['ingest', 'nothing-here', '--json', '--data-dir', 'memory://'],
        EXIT.error,
        'PathNotFoundError',
      ],
      [
        ['stats', '--json', '--db', 'postgres://postgres@127.0.0.1:1/x'],
        EXIT.error,
        'DatabaseUnavailableError',
      ],
      [['stats', '--json', '--colour'], EXIT.usage, 'UsageError'],
      [
        ['stats', '--json', '--db', 'postgres://u:100%@h/db'],
        EXIT.error,
        'InvalidDatabaseUrlError',
      ],
    ];
    for (const [argv, exitCode, name] of cases) {
      const r = await runCli(argv, { cwd: dir });
      t.is(r.code, exitCode, argv.join(' '));
      const out = JSON.parse(r.stdout) as CliErrorJson;
      t.is(out.exitCode, exitCode);
      t.is(out.error.name, name, argv.join(' '));
      t.is(typeof out.error.message, 'string');
      t.true(r.stderr.startsWith(`error: ${out.error.message}\n`), r.stderr);
    }
    const ac = new AbortController();
    ac.abort();
    const cancelled = await runCli(['stats', '--json'], { cwd: dir, signal: ac.signal });
    t.is(cancelled.code, EXIT.interrupted);
    t.like(JSON.parse(cancelled.stdout), { exitCode: 130 });
  } finally {
    await remove();
  }
});

test('a malformed database URL is a named error with one clear line, exit 1', async (t) => {
  const { dir, remove } = await tempDir('bad-url');
  try {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ['stats', '--db', 'postgres://user:p%zzword@127.0.0.1/db'],
        {},
        /^error: --db is not a usable PostgreSQL URL: the password holds a malformed %-escape \(write a literal % as %25\)\n$/,
      ],
      [
        ['stats'],
        { DATABASE_URL: 'postgres://user:50%off@127.0.0.1/db' },
        /^error: DATABASE_URL is not a usable PostgreSQL URL: the password holds a malformed %-escape/,
      ],
      [
        ['stats'],
        { DATABASE_URL: 'mysql://h/db' },
        /^error: DATABASE_URL is not a usable PostgreSQL URL: it must start with postgres:\/\//,
      ],
      [
        ['stats', '--db', 'postgres://h:5432'],
        {},
        /^error: --db is not a usable PostgreSQL URL: it names no database/,
      ],
      [
        ['migrate'],
        { DATABASE_URL: 'not a url' },
        /^error: DATABASE_URL is not a usable PostgreSQL URL: not a URL/,
      ],
    ];
    for (const [argv, env, expected] of cases) {
      const r = await runCli(argv, { env, cwd: dir });
      t.is(r.code, EXIT.error, r.stderr);
      t.regex(r.stderr, expected);
      t.notRegex(r.stderr, /URIError|p%zzword|50%off/);
      t.is(r.stderr.split('\n').length, 2, 'one line');
    }
  } finally {
    await remove();
  }
});

test('an unknown command or option suggests the closest one', async (t) => {
  const cases: [string[], RegExp][] = [
    [['ingets', 'x'], /^error: unknown command 'ingets'; did you mean 'ingest'\?\n/],
    [['serach', 'x'], /^error: unknown command 'serach'; did you mean 'search'\?\n/],
    [['stat'], /^error: unknown command 'stat'; did you mean 'stats'\?\n/],
    [['mig'], /^error: unknown command 'mig'; did you mean 'migrate'\?\n/],
    [['frobnicate'], /^error: unknown command 'frobnicate'\n/],
    [
      ['ingest', '.', '--bach-size', '3'],
      /^error: unknown option '--bach-size'; did you mean '--batch-size'\?\n/,
    ],
    [['search', 'x', '--jsn'], /^error: unknown option '--jsn'; did you mean '--json'\?\n/],
  ];
  for (const [argv, expected] of cases) {
    const r = await runCli(argv);
    t.is(r.code, EXIT.usage);
    t.regex(r.stderr, expected);
  }
});

test('--help documents every exit status', async (t) => {
  for (const argv of [['--help'], ['ingest', '--help']]) {
    const { stdout } = await runCli(argv);
    for (const [code, words] of [
      ['0', 'every item stored'],
      ['1', 'an error stopped the run'],
      ['2', 'bad usage'],
      ['3', 'some items failed'],
      ['130', 'interrupted'],
    ]) {
      t.regex(stdout, new RegExp(`\\n {2}${code} +${words}`), `${argv.join(' ')}: ${code}`);
    }
  }
});
