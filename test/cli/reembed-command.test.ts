/**
 * `reembed` and `search --model` run in-process against both databases: the new model's
 * vectors are filled (resumed after an interrupt), searched by name and, after
 * `--set-default`, by the collection's default.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ReembedCommandReport } from '../../lib/cli/reembed-command.js';
import type { SearchCommandResult } from '../../lib/cli/search-command.js';
import type { SyncCommandReport } from '../../lib/cli/sync-command.js';
import { cliTestOnBoth, runCli } from '../support/cli-helpers.js';
import { startEmbeddingServer } from '../support/embedding-server.js';

const both = await cliTestOnBoth('reembed');

const json = <T>(text: string): T => JSON.parse(text) as T;

both(
  'reembed --to-model: interrupted, resumed, searched with --model, then the default',
  async (t, target, dir) => {
    const docs = join(dir, 'docs');
    await mkdir(docs, { recursive: true });
    await writeFile(join(docs, 'a.md'), 'Cats sleep a lot.\n\nQueues hold messages.\n');
    await writeFile(
      join(docs, 'b.md'),
      'Dogs chase cats.\n\nRetries back off.\n\nSagas compensate.\n',
    );
    const cli = (args: string[], signal?: AbortSignal, onStderr?: (s: string) => void) =>
      runCli([...args, ...target.args], {
        cwd: dir,
        ...(signal ? { signal } : {}),
        ...(onStderr ? { onStderr } : {}),
      });
    const sync = await cli(['sync', 'docs', '--collection', 'kb', '--json']);
    t.is(sync.code, 0, sync.stderr);
    const atoms = json<SyncCommandReport>(sync.stdout).atomsAdded;
    t.is(atoms, 5);

    const usage = await cli(['reembed', '--collection', 'kb']);
    t.is(usage.code, 2);
    t.regex(usage.stderr, /reembed needs --to-model/);

    // interrupted after its first batch: exit 130, the partial report says what was written
    const controller = new AbortController();
    const stopped = await cli(
      [
        'reembed',
        '--to-model',
        'hash-32',
        '--dimensions',
        '32',
        '--collection',
        'kb',
        '--batch-size',
        '1',
        '--json',
      ],
      controller.signal,
      (s) => {
        if (s.includes(' embedded,')) controller.abort();
      },
    );
    t.is(stopped.code, 130, stopped.stderr);
    const partial = json<ReembedCommandReport>(stopped.stdout);
    t.true(partial.interrupted);
    t.true(partial.embedded >= 1 && partial.embedded < atoms, stopped.stdout);

    const rest = await cli([
      'reembed',
      '--to-model',
      'hash-32',
      '--dimensions',
      '32',
      '--collection',
      'kb',
      '--json',
    ]);
    t.is(rest.code, 0, rest.stderr);
    const report = json<ReembedCommandReport>(rest.stdout);
    t.like(report, {
      model: 'hash-32',
      dimensions: 32,
      collection: 'kb',
      scanned: atoms - partial.embedded,
      embedded: atoms - partial.embedded,
      failed: 0,
      interrupted: false,
      defaultSet: false,
    });
    t.regex(rest.stderr, /re-embedding the atoms of collection kb with hash-32 \(32 dimensions\)/);

    const search = await cli([
      'search',
      'cats',
      '--model',
      'hash-32',
      '--collection',
      'kb',
      '--json',
    ]);
    t.is(search.code, 0, search.stderr);
    const found = json<SearchCommandResult>(search.stdout);
    t.is(found.model, 'hash-32');
    t.is(found.hits.length, atoms);
    t.true(found.hits.every((h) => h.embeddingModel === 'hash-32'));
    t.regex(found.hits[0]!.content, /cats/i);

    // nothing left: the default is set; a plain search of the collection now uses it
    const done = await cli([
      'reembed',
      '--to-model',
      'hash-32',
      '--collection',
      'kb',
      '--set-default',
    ]);
    t.is(done.code, 0, done.stderr);
    t.regex(done.stdout, /reembed complete/);
    t.regex(done.stdout, /0 embedded/);
    t.regex(done.stdout, /hash-32 is now the default model of kb/);
    const byDefault = await cli(['search', 'cats', '--collection', 'kb', '--json']);
    t.is(byDefault.code, 0, byDefault.stderr);
    const hits = json<SearchCommandResult>(byDefault.stdout);
    t.is(hits.model, 'hash-32');
    t.deepEqual(
      hits.hits.map((h) => h.id),
      found.hits.map((h) => h.id),
    );

    // a sync after the switch gives the new atoms vectors of the default model too: a plain
    // search of the collection finds them
    await writeFile(join(docs, 'c.md'), 'Parrots mimic voices.\n\nOwls hunt at night.\n');
    const later = await cli(['sync', 'docs', '--collection', 'kb', '--json']);
    t.is(later.code, 0, later.stderr);
    t.regex(later.stderr, /and hash-32 \(the collection's default\)/);
    const synced = json<SyncCommandReport>(later.stdout);
    t.like(synced, { added: 1, atomsAdded: 2, modelVectorsAdded: 2, modelVectorsFailed: 0 });
    const parrots = await cli([
      'search',
      'parrots mimic voices',
      '-k',
      '20',
      '--collection',
      'kb',
      '--json',
    ]);
    t.is(parrots.code, 0, parrots.stderr);
    const top = json<SearchCommandResult>(parrots.stdout);
    t.is(top.model, 'hash-32');
    t.is(top.hits.length, atoms + 2);
    t.is(top.hits[0]?.content, 'Parrots mimic voices.');
  },
);

both(
  'sync --embedder openai into a collection with another default model asks the server for that model by name',
  async (t, target, dir) => {
    const server = await startEmbeddingServer({ dimensions: 384 });
    t.teardown(() => server.close());
    const docs = join(dir, 'docs');
    await mkdir(docs, { recursive: true });
    await writeFile(join(docs, 'a.md'), 'Cats sleep a lot.\n\nQueues hold messages.\n');
    const openai = ['--embedder', 'openai', '--embed-url', server.baseUrl];
    const cli = (args: string[]) => runCli([...args, ...target.args], { cwd: dir });
    const first = await cli([
      'sync',
      'docs',
      '--collection',
      'kb',
      ...openai,
      '--embed-model',
      'primary',
    ]);
    t.is(first.code, 0, first.stderr);
    // the new model by its own name (no --embed-model), made the default
    const switched = await cli([
      'reembed',
      '--to-model',
      'second',
      '--collection',
      'kb',
      '--set-default',
      ...openai,
    ]);
    t.is(switched.code, 0, switched.stderr);
    const asked = (model: string) =>
      server.requests.filter((r) => r.body.model === model).flatMap((r) => r.inputs);
    t.deepEqual(asked('second').sort(), ['Cats sleep a lot.', 'Queues hold messages.']);

    await writeFile(join(docs, 'b.md'), 'Parrots mimic voices.\n');
    const later = await cli([
      'sync',
      'docs',
      '--collection',
      'kb',
      '--json',
      ...openai,
      '--embed-model',
      'primary',
    ]);
    t.is(later.code, 0, later.stderr);
    t.like(json<SyncCommandReport>(later.stdout), { added: 1, modelVectorsAdded: 1 });
    t.true(asked('primary').includes('Parrots mimic voices.'));
    t.true(asked('second').includes('Parrots mimic voices.'));

    // a search of the collection embeds the query with its default model, whatever
    // --embed-model names
    const found = await cli([
      'search',
      'parrots at night',
      '--collection',
      'kb',
      '--json',
      ...openai,
      '--embed-model',
      'primary',
    ]);
    t.is(found.code, 0, found.stderr);
    t.is(json<SearchCommandResult>(found.stdout).model, 'second');
    t.true(asked('second').includes('parrots at night'));
    t.false(asked('primary').includes('parrots at night'));
  },
);
