/**
 * The commands of the CLI run in-process against both databases: a unique schema on the
 * PostgreSQL server and an embedded PGlite folder (copied from a template that the `migrate`
 * command creates once for this file).
 */

import { getEventListeners } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { DatabaseStats } from '../../lib/cli/database-stats.js';
import type { IngestCommandReport } from '../../lib/cli/ingest-command.js';
import type { SearchCommandResult } from '../../lib/cli/search-command.js';
import { migrations } from '../../lib/postgres/migrations/index.js';
import { openDatabase } from '../../lib/postgres/open-database.js';
import {
  type CliTarget,
  CORPUS_DISTINCT,
  CORPUS_ITEMS,
  migratedFolder,
  PARAGRAPHS,
  pgliteTarget,
  postgresTarget,
  runCli,
  tempDir,
  writeCorpus,
} from '../support/cli-helpers.js';
import { SERVER_URL, serverUnavailableReason } from '../support/databases.js';
import { startEmbeddingServer } from '../support/embedding-server.js';

const KNOWN_VERSION = migrations.at(-1)?.id ?? 0;
const unavailable = await serverUnavailableReason();

const templateDir = migratedFolder('template');

type Body = (t: ExecutionContext, target: CliTarget, corpus: string) => Promise<void>;

/** Registers `title` on both databases with a fresh database and corpus folder each. */
function both(title: string, body: Body): void {
  for (const backend of ['postgres', 'pglite'] as const) {
    const name = `${title} [${backend}]`;
    if (backend === 'postgres' && unavailable) {
      test.skip(`${name} (server unreachable: ${unavailable})`, () => undefined);
      continue;
    }
    // PGlite runs in this process: one at a time keeps memory bounded
    (backend === 'pglite' ? test.serial : test)(name, async (t) => {
      const tag = title.replace(/\W+/g, '_').slice(0, 12);
      const target =
        backend === 'postgres' ? postgresTarget(tag) : await pgliteTarget(await templateDir(), tag);
      const corpus = await tempDir('corpus');
      try {
        await writeCorpus(corpus.dir);
        await body(t, target, corpus.dir);
      } finally {
        await target.dispose();
        await corpus.remove();
      }
    });
  }
}

const json = <T>(t: ExecutionContext, text: string): T => {
  try {
    return JSON.parse(text) as T;
  } catch {
    t.fail(`stdout is not JSON: ${text}`);
    throw new Error('unreachable');
  }
};

both('ingest a folder, then again: every item is a duplicate', async (t, target, corpus) => {
  const first = await runCli(['ingest', '.', '--json', ...target.args], { cwd: corpus });
  t.is(first.code, 0, first.stderr);
  const r1 = json<IngestCommandReport>(t, first.stdout);
  t.false(r1.interrupted);
  t.is(r1.backend, target.backend);
  t.is(r1.split, 'paragraph');
  t.is(r1.files, 3);
  t.deepEqual(
    [...r1.skipped].sort((a, b) => a.file.localeCompare(b.file)),
    [
      { file: 'data.txt', reason: 'binary' },
      { file: 'empty.md', reason: 'empty' },
      { file: 'latin1.txt', reason: 'not UTF-8' },
    ],
  );
  t.is(r1.processed, CORPUS_ITEMS);
  t.is(r1.added, CORPUS_DISTINCT);
  t.is(r1.duplicates, CORPUS_ITEMS - CORPUS_DISTINCT);
  t.is(r1.failed, 0);
  const bytes = Object.values(PARAGRAPHS).reduce((s, p) => s + Buffer.byteLength(p), 0);
  t.is(r1.bytes, bytes + Buffer.byteLength(PARAGRAPHS['guide.md:6']));
  t.deepEqual(Object.keys(r1.stepMs).sort(), [
    'confirm-claimed',
    'dedupe',
    'embed',
    'hash',
    'persist',
  ]);
  t.true(r1.durationMs > 0 && r1.itemsPerSecond > 0);
  t.regex(first.stderr, /^ingesting 6 files \(\S+ \S+\) by paragraph into /);

  const second = await runCli(['ingest', '.', '--json', ...target.args], { cwd: corpus });
  t.is(second.code, 0, second.stderr);
  const r2 = json<IngestCommandReport>(t, second.stdout);
  t.is(r2.processed, CORPUS_ITEMS);
  t.is(r2.added, 0);
  t.is(r2.duplicates, CORPUS_ITEMS);
  t.is(r2.duplicatesBy.stored + r2.duplicatesBy.batch, CORPUS_ITEMS);
  t.true(r2.duplicatesBy.stored >= CORPUS_DISTINCT);
});

both(
  'the text report names every count, and files named directly are read',
  async (t, target, corpus) => {
    const r = await runCli(
      ['ingest', 'unknown.xyz', 'data.txt', 'notes.txt', '--split', 'line', ...target.args],
      { cwd: corpus },
    );
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /^ingest complete\n/);
    t.regex(r.stdout, /files {7}2 read, 1 skipped/);
    t.regex(r.stdout, /items {7}5 \(\d+ B\)/);
    t.regex(r.stdout, /added {7}5\n/);
    t.regex(r.stdout, /duplicates {2}0\n/);
    t.regex(r.stdout, /failed {6}0\n/);
    t.regex(r.stdout, /duration {4}\d+(\.\d)? m?s, [\d.,]+\/s/);
    t.regex(r.stdout, /step time {3}hash .+, dedupe .+, embed .+, persist .+/);
    t.regex(r.stdout, /skipped files:\n {2}data\.txt: binary\n/);
    // plain progress lines, not a terminal bar
    t.false(r.stderr.includes('\x1b['));

    const stats = json<DatabaseStats>(
      t,
      (await runCli(['stats', '--json', ...target.args])).stdout,
    );
    t.is(stats.atoms, 5);
  },
);

both('search finds the right paragraph first', async (t, target, corpus) => {
  t.is((await runCli(['ingest', '.', '-q', ...target.args], { cwd: corpus })).code, 0);
  const r = await runCli([
    'search',
    'penguins',
    'huddle',
    'on',
    'the',
    'ice',
    '-k',
    '3',
    '--json',
    ...target.args,
  ]);
  t.is(r.code, 0, r.stderr);
  const result = json<SearchCommandResult>(t, r.stdout);
  t.is(result.query, 'penguins huddle on the ice');
  t.is(result.model, 'hartonomous/feature-hash-v1');
  t.is(result.hits.length, 3);
  t.is(result.hits[0]?.sourceId, 'guide.md:1');
  t.is(result.hits[0]?.content, PARAGRAPHS['guide.md:1']);
  t.is(result.hits[0]?.rank, 1);
  t.true((result.hits[0]?.similarity ?? 0) > (result.hits[1]?.similarity ?? 1));

  const text = await runCli(['search', 'bread with wild yeast', ...target.args]);
  t.is(text.code, 0, text.stderr);
  const [first, snippet] = text.stdout.split('\n');
  t.regex(first ?? '', /^ 1\. 0\.\d{3} {2}guide\.md:6$/);
  t.is(snippet, `    ${PARAGRAPHS['guide.md:6'].replace(/\s+/g, ' ')}`);
  t.is(text.stdout.split('\n').filter((l) => /^ ?\d+\. /.test(l)).length, 5);
});

both('search --mode text and hybrid, with --content-type', async (t, target, corpus) => {
  t.is((await runCli(['ingest', '.', '-q', ...target.args], { cwd: corpus })).code, 0);
  const search = async (...args: string[]) => {
    const r = await runCli(['search', ...args, '--json', ...target.args]);
    t.is(r.code, 0, r.stderr);
    return json<SearchCommandResult>(t, r.stdout);
  };
  // full text: only atoms containing a (stemmed) word of the query, no embedding involved
  const text = await search('lighthouses', '--mode', 'text');
  t.is(text.mode, 'text');
  t.is(text.model, null);
  t.deepEqual(
    text.hits.map((h) => [h.sourceId, h.similarity]),
    [['sub/deep.md:2', null]],
  );
  const hybrid = await search('sourdough', 'yeast', '--mode', 'hybrid', '-k', '2');
  t.is(hybrid.hits[0]?.sourceId, 'guide.md:6');
  t.is(typeof hybrid.hits[0]?.similarity, 'number');
  // the sourdough paragraph is in guide.md (text/markdown) and notes.txt (text/plain), stored
  // once, as text/markdown (the first file read)
  const plain = await search('sourdough', '--content-type', 'text/plain', '-k', '10');
  t.deepEqual(plain.filter, { contentType: 'text/plain' });
  t.true(plain.hits.length > 0);
  t.true(plain.hits.every((h) => h.contentType === 'text/plain'));
  t.false(plain.hits.some((h) => h.sourceId?.startsWith('guide.md')));
  const none = await runCli(['search', 'penguins', '--filter', 'lang=xx', ...target.args]);
  t.is(none.code, 0, none.stderr);
  t.regex(none.stdout, /^no atoms embedded by \S+ matching the filter in this database$/m);
});

both('stats counts atoms, bytes and outbox rows', async (t, target, corpus) => {
  const empty = json<DatabaseStats>(t, (await runCli(['stats', '--json', ...target.args])).stdout);
  if (target.backend === 'postgres') {
    // a schema never migrated: version 0, nothing to count (stats does not migrate)
    t.like(empty, { schemaVersion: 0, knownVersion: KNOWN_VERSION, atoms: null, outbox: null });
  } else {
    t.like(empty, { schemaVersion: KNOWN_VERSION, atoms: 0, bytes: 0 });
  }
  t.is((await runCli(['ingest', corpus, '-q', ...target.args])).code, 0);
  const r = await runCli(['stats', '--json', ...target.args]);
  t.is(r.code, 0, r.stderr);
  const stats = json<DatabaseStats>(t, r.stdout);
  const bytes = Object.values(PARAGRAPHS).reduce((s, p) => s + Buffer.byteLength(p), 0);
  t.like(stats, {
    backend: target.backend,
    schemaVersion: KNOWN_VERSION,
    knownVersion: KNOWN_VERSION,
    dimensions: 384,
    atoms: CORPUS_DISTINCT,
    bytes,
    outbox: { pending: CORPUS_DISTINCT, published: 0, dead: 0 },
  });
  t.true(stats.vectorStorage === 'pgvector' || stats.vectorStorage === 'bytea');

  const text = await runCli(['stats', ...target.args]);
  t.is(text.code, 0);
  t.regex(text.stdout, new RegExp(`^backend {3}${target.backend} `));
  t.regex(text.stdout, new RegExp(`schema {4}\\w+, version ${KNOWN_VERSION}\\n`));
  t.regex(text.stdout, /vectors {3}(pgvector|bytea), 384 dimensions\n/);
  t.regex(text.stdout, new RegExp(`atoms {5}${CORPUS_DISTINCT} \\(\\d+ B\\)\\n`));
  t.regex(text.stdout, new RegExp(`outbox {4}${CORPUS_DISTINCT} pending, 0 published, 0 dead\\n`));
});

both('migrate prints the version, and is a no-op the second time', async (t, target) => {
  const first = await runCli(['migrate', '--json', ...target.args]);
  t.is(first.code, 0, first.stderr);
  const m = json<{ from: number; to: number; applied: { id: number }[]; backend: string }>(
    t,
    first.stdout,
  );
  t.is(m.to, KNOWN_VERSION);
  t.is(m.backend, target.backend);
  // the PGlite copy is migrated already; the server schema is new
  t.is(m.applied.length, target.backend === 'postgres' ? KNOWN_VERSION : 0);
  const again = await runCli(['migrate', ...target.args]);
  t.is(again.code, 0);
  t.regex(again.stdout, new RegExp(`is up to date at version ${KNOWN_VERSION}\\n$`));
});

both('an embedder that fails reports the failed items with reasons', async (t, target, corpus) => {
  const server = await startEmbeddingServer({ dimensions: 384 });
  try {
    server.enqueue({ type: 'status', status: 400, body: '{"error":{"message":"bad input"}}' });
    const args = [
      '--embedder',
      'openai',
      '--embed-url',
      server.baseUrl,
      '--embed-model',
      'test-embed',
    ];
    const r = await runCli(['ingest', '.', '--batch-size', '2', ...args, ...target.args], {
      cwd: corpus,
      env: { OPENAI_API_KEY: 'sk-test-secret' },
    });
    t.is(r.code, 3, 'some items failed: exit status 3');
    t.regex(r.stdout, /^ingest finished with failures: [12] items? failed \(exit status 3\)\n/);
    t.regex(r.stdout, /failed {6}[12]\n/);
    t.regex(r.stdout, /failures:\n {2}\S+:\d+ \(embed\): EmbeddingHttpError: .*HTTP 400/);
    t.false(r.stdout.includes('sk-test-secret'));
    t.is(server.requests[0]?.headers.authorization, 'Bearer sk-test-secret');
    t.is(server.requests[0]?.body.model, 'test-embed');

    // the failed items were released: a re-run stores them, and search uses the same model
    const again = json<IngestCommandReport>(
      t,
      (await runCli(['ingest', '.', '--json', ...args, ...target.args], { cwd: corpus })).stdout,
    );
    t.is(again.failed, 0);
    t.true(again.added >= 1);
    t.is(again.embeddingModel, 'test-embed');
    const hits = json<SearchCommandResult>(
      t,
      (await runCli(['search', 'lighthouse keepers', '-k', '1', '--json', ...args, ...target.args]))
        .stdout,
    );
    t.is(hits.model, 'test-embed');
    t.is(hits.hits[0]?.sourceId, 'sub/deep.md:2');
  } finally {
    await server.close();
  }
});

both(
  'cancelling an ingest prints the partial report, exits 130, and a re-run completes',
  async (t, target) => {
    const LINES = 3000;
    const corpus = await tempDir('big');
    const server = await startEmbeddingServer({ dimensions: 384, latencyMs: 300 });
    try {
      await writeFile(
        join(corpus.dir, 'big.txt'),
        Array.from({ length: LINES }, (_, i) => `line ${i} of a long file`).join('\n'),
      );
      const args = ['--embedder', 'openai', '--embed-url', server.baseUrl, '--embed-model', 'slow'];
      const ac = new AbortController();
      const r = await runCli(
        [
          'ingest',
          corpus.dir,
          '--split',
          'line',
          '--batch-size',
          '50',
          '--json',
          ...args,
          ...target.args,
        ],
        {
          signal: ac.signal,
          onStderr: (chunk) => {
            if (/^progress: .* [1-9][\d,]* items/m.test(chunk)) ac.abort();
          },
        },
      );
      t.true(ac.signal.aborted, 'aborted on the first progress line');
      t.is(r.code, 130, r.stderr);
      t.is(getEventListeners(ac.signal, 'abort').length, 0);
      const partial = json<IngestCommandReport>(t, r.stdout);
      t.true(partial.interrupted);
      t.true(partial.processed > 0 && partial.processed < LINES, `${partial.processed}`);
      t.is(partial.files, 1);

      server.latencyMs = 0;
      const rest = await runCli([
        'ingest',
        corpus.dir,
        '--split',
        'line',
        '--json',
        ...args,
        ...target.args,
      ]);
      t.is(rest.code, 0, rest.stderr);
      const report = json<IngestCommandReport>(t, rest.stdout);
      t.is(report.processed, LINES);
      t.is(report.failed, 0);
      const stats = json<DatabaseStats>(
        t,
        (await runCli(['stats', '--json', ...target.args])).stdout,
      );
      t.is(stats.atoms, LINES, `duplicatesBy ${JSON.stringify(report.duplicatesBy)}`);
    } finally {
      await server.close();
      await corpus.remove();
    }
  },
);

both(
  'the progress bar is drawn in place on a terminal and cleared at the end',
  async (t, target) => {
    const corpus = await tempDir('tty');
    const server = await startEmbeddingServer({ dimensions: 384, latencyMs: 150 });
    try {
      await writeFile(
        join(corpus.dir, 'lines.txt'),
        Array.from({ length: 200 }, (_, i) => `entry ${i}`).join('\n'),
      );
      const args = ['--embedder', 'openai', '--embed-url', server.baseUrl, '--embed-model', 'tty'];
      const r = await runCli(
        ['ingest', corpus.dir, '--split', 'line', '--batch-size', '20', ...args, ...target.args],
        { tty: true },
      );
      t.is(r.code, 0, r.stderr);
      const CLEAR = '\r\x1b[K';
      t.true(r.stderr.includes(`${CLEAR}[`), 'the bar is drawn over the line');
      t.regex(
        r.stderr,
        /\[[#.]{20}\] +\d+% [\d,]+ items, \+[\d,]+ new, \d+ dup, \d+ failed, .*ETA/,
      );
      t.true(r.stderr.endsWith(CLEAR), 'the bar is cleared');
      t.false(r.stderr.includes('progress:'));
    } finally {
      await server.close();
      await corpus.remove();
    }
  },
);

both(
  'a database newer than this version exits 1 with one line: SchemaTooNewError',
  async (t, target) => {
    t.is((await runCli(['migrate', ...target.args])).code, 0);
    const args = target.args;
    const db = await openDatabase(
      target.backend === 'postgres'
        ? { url: SERVER_URL, schema: args[args.indexOf('--schema') + 1] ?? '' }
        : { dataDir: args[args.indexOf('--data-dir') + 1] ?? '' },
    );
    try {
      await db.orm.em
        .getConnection()
        .execute(
          `INSERT INTO "${db.schema}".schema_migrations (version, name) VALUES (999, 'future')`,
        );
    } finally {
      await db.close();
    }
    for (const argv of [['stats'], ['migrate'], ['search', 'x'], ['ingest', '.']]) {
      const r = await runCli([...argv, ...target.args]);
      t.is(r.code, 1, argv[0]);
      t.is(r.stdout, '');
      t.regex(
        r.stderr,
        /^error: database schema "\w+" is at version 999, newer than the \d+ this library knows; upgrade @hartonomous\/pipelines\n$/,
      );
    }
  },
);

test('--data-dir memory:// ingests into a throw-away embedded database', async (t) => {
  const corpus = await tempDir('memory');
  try {
    await writeCorpus(corpus.dir);
    const r = await runCli(['ingest', '.', '--data-dir', 'memory://', '--json', '-q'], {
      cwd: corpus.dir,
    });
    t.is(r.code, 0, r.stderr);
    const report = json<IngestCommandReport>(t, r.stdout);
    t.like(report, { backend: 'pglite', location: 'memory://', added: CORPUS_DISTINCT });
    t.is(r.stderr, '', '--quiet prints no progress');
  } finally {
    await corpus.remove();
  }
});

(unavailable ? test.skip : test)(
  'a password given as a URL parameter is never printed (stats, text and JSON)',
  async (t) => {
    const url = `${SERVER_URL}${SERVER_URL.includes('?') ? '&' : '?'}password=s3cret-param`;
    for (const args of [[], ['--json']]) {
      const r = await runCli(['stats', '--db', url, ...args]);
      t.is(r.code, 0, r.stderr);
      t.false(`${r.stdout}${r.stderr}`.includes('s3cret-param'), r.stdout);
      t.regex(r.stdout, /password=\*\*\*/);
    }
  },
);
