/**
 * End to end through the CLI, on both databases: `sync` and `ingest` store each markdown
 * chunk's document id, position and heading path (as the markdown chunker gives them) in the
 * atom's metadata, and `export` reads them back.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import type { ExportLine } from '../../lib/cli/export-command.js';
import type { IngestCommandReport } from '../../lib/cli/ingest-command.js';
import type { SyncCommandReport } from '../../lib/cli/sync-command.js';
import {
  migratedFolder,
  pgliteTarget,
  postgresTarget,
  runCli,
  tempDir,
} from '../support/cli-helpers.js';
import { serverUnavailableReason } from '../support/databases.js';

const unavailable = await serverUnavailableReason();

const GUIDE = [
  '# Guide',
  '',
  'Intro paragraph.',
  '',
  '## Install',
  '',
  'Run npm install.',
  '',
  '```bash',
  'npm ci',
  '',
  'npm test',
  '```',
  '',
  '## Use',
  '',
  'Call it.',
  '',
  '### Options',
  '',
  '- one',
  '- two',
  '',
].join('\n');

// what the markdown chunker makes of GUIDE: a heading joined to its block, the fence whole
const GUIDE_CHUNKS = [
  ['# Guide\n\nIntro paragraph.', ['Guide']],
  ['## Install\n\nRun npm install.', ['Guide', 'Install']],
  ['```bash\nnpm ci\n\nnpm test\n```', ['Guide', 'Install']],
  ['## Use\n\nCall it.', ['Guide', 'Use']],
  ['### Options\n\n- one\n- two', ['Guide', 'Use', 'Options']],
] as const;

const NOTES = 'Before any heading.\n\n# Notes\n\nA note.\n';

const templateDir = migratedFolder('heading');

for (const backend of ['postgres', 'pglite'] as const) {
  const name = `sync and ingest store each chunk's document id, position and heading path [${backend}]`;
  if (backend === 'postgres' && unavailable) {
    test.skip(`${name} (server unreachable: ${unavailable})`, () => undefined);
    continue;
  }
  test(name, async (t) => {
    t.timeout(900_000); // PGlite opens its folder once per command run (slow on a loaded machine)
    const target =
      backend === 'postgres'
        ? postgresTarget('heading')
        : await pgliteTarget(await templateDir(), 'heading');
    const { dir, remove } = await tempDir('heading');
    try {
      await mkdir(join(dir, 'docs', 'sub'), { recursive: true });
      await writeFile(join(dir, 'docs', 'sub', 'guide.md'), GUIDE);
      await mkdir(join(dir, 'more'));
      await writeFile(join(dir, 'more', 'notes.md'), NOTES);
      const cli = async (...argv: string[]) => {
        const r = await runCli([...argv, ...target.args], { cwd: dir });
        t.is(r.code, 0, r.stderr);
        return r.stdout;
      };
      const synced = JSON.parse(
        await cli('sync', 'docs', '--collection', 'kb', '--json'),
      ) as SyncCommandReport;
      t.like(synced, { added: 1, atomsAdded: GUIDE_CHUNKS.length, failed: 0 });
      const ingested = JSON.parse(await cli('ingest', 'more', '--json')) as IngestCommandReport;
      t.like(ingested, { added: 2, failed: 0 });

      const exported = (await cli('export'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ExportLine);
      const chunkOf = (content: string) => exported.find((l) => l.content === content)?.metadata;
      // sync: the document id is the file's path in the folder
      GUIDE_CHUNKS.forEach(([content, headingPath], position) => {
        t.deepEqual(
          chunkOf(content),
          { chunk: { documentId: 'sub/guide.md', position, headingPath } },
          content,
        );
      });
      // ingest: the document id is the file's path from the working directory
      t.deepEqual(chunkOf('Before any heading.'), {
        chunk: { documentId: 'more/notes.md', position: 0, headingPath: [] },
      });
      t.deepEqual(chunkOf('# Notes\n\nA note.'), {
        chunk: { documentId: 'more/notes.md', position: 1, headingPath: ['Notes'] },
      });
      t.is(exported.length, GUIDE_CHUNKS.length + 2);

      // export --collection reads the collection's atoms with the same metadata
      const kb = (await cli('export', '--collection', 'kb'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ExportLine);
      t.deepEqual(
        kb.map((l) => (l.metadata.chunk as { position: number }).position).sort(),
        [0, 1, 2, 3, 4],
      );
    } finally {
      await target.dispose();
      await remove();
    }
  });
}
