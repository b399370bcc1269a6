/**
 * Helpers of the CLI tests: an in-process run with captured output, a corpus folder, and the
 * two databases a command line can target (a unique schema on the PostgreSQL server, or a
 * PGlite folder copied from a template migrated once per test file).
 */

import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knex } from '@mikro-orm/postgresql';
import type { CliIo } from '../../lib/cli/cli-io.js';
import { run } from '../../lib/cli/run.js';
import { SERVER_URL, uniqueSchema } from './databases.js';

/** What a run printed and returned. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli}. */
export interface RunCliOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string | undefined>;
  readonly signal?: AbortSignal;
  /** stderr claims to be a terminal. */
  readonly tty?: boolean;
  /** Called with every chunk written to stderr (e.g. to abort on the first progress line). */
  readonly onStderr?: (chunk: string) => void;
}

/** Runs the command line in-process with captured stdout and stderr. */
export async function runCli(
  argv: readonly string[],
  options: RunCliOptions = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: {
      write: (s: string) => {
        stderr += s;
        options.onStderr?.(s);
        return true;
      },
      isTTY: options.tty ?? false,
      columns: 120,
    },
    env: options.env ?? {},
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}

/** A fresh temporary folder, removed by the returned function. */
export async function tempDir(tag: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `hartonomous-cli-${tag}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The atoms of the test corpus, by source id (relative to the corpus folder). `--split
 * paragraph` cuts files with the markdown chunker, which joins a heading to the block after it:
 * `# Field guide` and the penguin paragraph are one atom.
 */
export const PARAGRAPHS = {
  'guide.md:1':
    '# Field guide\n\nEmperor penguins huddle together on the Antarctic ice,\ntaking turns at the windy edge of the group.',
  'guide.md:6':
    'Sourdough bread rises slowly because wild yeast\nferments the dough overnight in a cool kitchen.',
  'notes.txt:1': 'Volcanic eruptions throw ash and glowing lava high above the crater rim.',
  'notes.txt:3': 'Tide pools hold starfish, crabs and anemones between the rocks at low tide.',
  'sub/deep.md:2':
    'Lighthouse keepers once trimmed lamp wicks every night to guide ships past the reef.',
} as const;

/** The corpus: 3 text files read, 1 in-file duplicate, and files that must be skipped or ignored. */
export async function writeCorpus(dir: string): Promise<void> {
  const p = PARAGRAPHS;
  await mkdir(join(dir, 'sub'), { recursive: true });
  await mkdir(join(dir, '.hidden'), { recursive: true });
  await mkdir(join(dir, 'node_modules', 'pkg'), { recursive: true });
  await writeFile(join(dir, 'guide.md'), `${p['guide.md:1']}\n   \n${p['guide.md:6']}\n`);
  // CRLF line endings, and the sourdough paragraph again (a duplicate within the run)
  await writeFile(
    join(dir, 'notes.txt'),
    `${p['notes.txt:1']}\r\n\r\n${p['notes.txt:3']}\r\n\r\n${p['guide.md:6'].replace('\n', '\r\n')}\r\n`,
  );
  await writeFile(join(dir, 'sub', 'deep.md'), `\n${p['sub/deep.md:2']}\n`);
  await writeFile(join(dir, 'empty.md'), ' \n\n\t\n');
  await writeFile(join(dir, 'data.txt'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 1, 2]));
  await writeFile(join(dir, 'latin1.txt'), Buffer.from('caf\xe9 au lait', 'latin1'));
  await writeFile(
    join(dir, 'unknown.xyz'),
    'a text file with an extension nobody reads by default',
  );
  await writeFile(join(dir, '.hidden', 'secret.md'), 'hidden folders are not walked');
  await writeFile(join(dir, 'node_modules', 'pkg', 'readme.md'), 'node_modules is not walked');
}

/** Items the corpus yields with --split paragraph, and how many are distinct. */
export const CORPUS_ITEMS = 6;
export const CORPUS_DISTINCT = Object.keys(PARAGRAPHS).length;

/** A database a command line can target, and its clean-up. */
export interface CliTarget {
  readonly backend: 'postgres' | 'pglite';
  /** `--db <url> --schema <s>` or `--data-dir <dir>`. */
  readonly args: readonly string[];
  dispose(): Promise<void>;
}

/** A unique schema on the server (dropped by `dispose`). */
export function postgresTarget(tag: string): CliTarget {
  const schema = uniqueSchema(`cli_${tag}`);
  return {
    backend: 'postgres',
    args: ['--db', SERVER_URL, '--schema', schema],
    // plain knex, not openDatabase: a test may leave the schema in a state openDatabase refuses
    dispose: async () => {
      const client = knex({ client: 'pg', connection: SERVER_URL, pool: { min: 0, max: 1 } });
      try {
        await client.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.destroy();
      }
    },
  };
}

/** A PGlite folder copied from `template` (a migrated data folder). */
export async function pgliteTarget(template: string, tag: string): Promise<CliTarget> {
  const { dir, remove } = await tempDir(tag);
  const dataDir = join(dir, 'db');
  await cp(template, dataDir, { recursive: true });
  return { backend: 'pglite', args: ['--data-dir', dataDir], dispose: remove };
}
