/**
 * `sync`, `delete` and `export` run in-process against both databases, and `ingest`/`sync`
 * read an export back.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { contentHash } from '../../lib/atoms/hash.js';
import type { DeleteCommandResult } from '../../lib/cli/delete-command.js';
import type { ExportLine } from '../../lib/cli/export-command.js';
import type { IngestCommandReport } from '../../lib/cli/ingest-command.js';
import type { SearchCommandResult } from '../../lib/cli/search-command.js';
import type { SyncCommandReport } from '../../lib/cli/sync-command.js';
import { cliTestOnBoth, runCli } from '../support/cli-helpers.js';

const both = await cliTestOnBoth('docs', { serialPglite: true });

const json = <T>(text: string): T => JSON.parse(text) as T;

both(
  'sync a folder, change and remove files, delete, export, and read the export back',
  async (t, target, dir) => {
    const docs = join(dir, 'docs');
    await mkdir(join(docs, 'sub'), { recursive: true });
    await writeFile(join(docs, 'a.md'), 'Alpha one.\n\nShared paragraph.\n');
    await writeFile(join(docs, 'sub', 'b.md'), 'Shared paragraph.\n\nBeta two.\n');
    await writeFile(join(docs, 'c.txt'), 'Gamma three.\n');
    await writeFile(join(docs, 'bin.txt'), Buffer.from([1, 0, 2]));
    const sync = async (...more: string[]) => {
      const r = await runCli(
        ['sync', 'docs', '--collection', 'kb', '--json', ...more, ...target.args],
        {
          cwd: dir,
        },
      );
      t.is(r.code, 0, r.stderr);
      return json<SyncCommandReport>(r.stdout);
    };
    const first = await sync();
    t.like(first, {
      added: 3,
      changed: 0,
      failed: 0,
      atomsAdded: 4,
      files: 3,
      cleanup: 'incremental',
    });
    t.deepEqual(first.skipped, [{ file: 'docs/bin.txt', reason: 'binary' }]);

    await writeFile(join(docs, 'a.md'), 'Alpha changed.\n\nShared paragraph.\n');
    await rm(join(docs, 'c.txt'));
    const second = await sync('--cleanup', 'full');
    t.like(second, {
      added: 0,
      changed: 1,
      unchanged: 1,
      deleted: 1,
      atomsAdded: 1,
      atomsDeleted: 2,
      failed: 0,
    });

    const del = await runCli(
      ['delete', '--collection', 'kb', 'sub/b.md', 'nope', '--json', ...target.args],
      {
        cwd: dir,
      },
    );
    t.is(del.code, 0, del.stderr);
    t.deepEqual(json<DeleteCommandResult>(del.stdout), {
      collection: 'kb',
      deleted: ['sub/b.md'],
      notFound: ['nope'],
      atomsDeleted: 1,
    });

    const exp = await runCli(['export', '--collection', 'kb', '--vectors', ...target.args], {
      cwd: dir,
    });
    t.is(exp.code, 0, exp.stderr);
    t.regex(exp.stderr, /exported 2 atoms/);
    const lines = exp.stdout
      .trim()
      .split('\n')
      .map((l) => json<ExportLine>(l));
    t.deepEqual(lines.map((l) => l.content).sort(), ['Alpha changed.', 'Shared paragraph.']);
    for (const l of lines) {
      t.is(l.hash, contentHash(l.content));
      t.is(Buffer.from(l.vector ?? '', 'base64').length % 4, 0);
      t.true((l.vector ?? '').length > 0);
    }

    // search within a collection
    for (const [collection, n] of [
      ['kb', 2],
      ['nope', 0],
    ] as const) {
      const found = await runCli(
        ['search', 'shared', '--collection', collection, '-k', '10', '--json', ...target.args],
        { cwd: dir },
      );
      t.is(found.code, 0, found.stderr);
      t.is(json<SearchCommandResult>(found.stdout).hits.length, n);
    }

    // the export read back: by ingest (atoms) and by sync (documents, ids = hashes)
    await writeFile(
      join(dir, 'atoms.jsonl'),
      `${exp.stdout}{"content": "bad", "hash": "00"}\nnot json\n`,
    );
    const ing = await runCli(['ingest', 'atoms.jsonl', '--json', ...target.args], { cwd: dir });
    t.is(ing.code, 0, ing.stderr);
    const ir = json<IngestCommandReport>(ing.stdout);
    t.like(ir, { processed: 2, added: 0, duplicates: 2, failed: 0 });
    t.deepEqual(
      ir.skipped.map((s) => s.file),
      ['atoms.jsonl:3', 'atoms.jsonl:4'],
    );
    const again = await runCli(
      ['sync', 'atoms.jsonl', '--collection', 'copy', '--json', ...target.args],
      { cwd: dir },
    );
    t.is(again.code, 0, again.stderr);
    const sr = json<SyncCommandReport>(again.stdout);
    t.like(sr, { added: 2, atomsAdded: 0, failed: 0 });
    const copy = await runCli(['export', '--collection', 'copy', ...target.args], { cwd: dir });
    t.deepEqual(
      copy.stdout
        .trim()
        .split('\n')
        .map((l) => json<ExportLine>(l).hash)
        .sort(),
      lines.map((l) => l.hash).sort(),
    );
  },
);

test('sync and delete need --collection; sync takes one folder', async (t) => {
  for (const argv of [
    ['sync', 'docs'],
    ['delete', 'a.md'],
    ['sync', '--collection', 'c'],
  ]) {
    const r = await runCli([...argv, '--data-dir', 'memory://']);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.stderr, /needs/);
  }
  const bad = await runCli(['sync', 'docs', '--collection', 'c', '--cleanup', 'some']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--cleanup must be one of none, incremental, full/);
});
