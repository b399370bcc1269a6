/**
 * Helpers of the CLI tests: an in-process run with captured output, a corpus folder, and the
 * two databases a command line can target (a unique schema on the PostgreSQL server, or a
 * PGlite folder copied from a template migrated once per test file).
 */

import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { knex } from '@mikro-orm/postgresql';
import test, { type ExecutionContext } from 'ava';
import type { CliIo } from '../../lib/cli/cli-io.js';
import { run } from '../../lib/cli/run.js';
import { SERVER_URL, serverUnavailableReason, uniqueSchema } from './databases.js';

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

/**
 * One migrated PGlite folder per test file, made by the CLI's own `migrate` on first use and
 * removed after the file: {@link pgliteTarget} copies it instead of migrating a folder per test.
 * Call once at the top of a test file.
 */
export function migratedFolder(tag: string): () => Promise<string> {
  let template: Promise<string> | undefined;
  test.after.always(async () => {
    const dir = await template?.catch(() => undefined);
    if (dir) await rm(join(dir, '..'), { recursive: true, force: true });
  });
  return () => {
    template ??= (async () => {
      const { dir } = await tempDir(`${tag}-template`);
      const dataDir = join(dir, 'db');
      const r = await runCli(['migrate', '--data-dir', dataDir]);
      if (r.code !== 0) throw new Error(`migrate failed: ${r.stderr}`);
      return dataDir;
    })();
    return template;
  };
}

/** A CLI test body: the database target and an empty scratch folder. */
export type CliBody = (t: ExecutionContext, target: CliTarget, folder: string) => Promise<void>;

/**
 * Registers a CLI test on the PostgreSQL server and on a PGlite folder (`[postgres]`,
 * `[pglite]`); the server test is skipped only outside CI when the server is unreachable.
 * `serialPglite` runs the PGlite variant serially (several PGlite processes at once are slow).
 */
export async function cliTestOnBoth(
  tag: string,
  options: { serialPglite?: boolean } = {},
): Promise<(title: string, body: CliBody) => void> {
  const unavailable = await serverUnavailableReason();
  const folder0 = migratedFolder(tag);
  return (title, body) => {
    for (const backend of ['postgres', 'pglite'] as const) {
      const name = `${title} [${backend}]`;
      if (backend === 'postgres' && unavailable) {
        test.skip(`${name} (server unreachable: ${unavailable})`, () => undefined);
        continue;
      }
      (backend === 'pglite' && options.serialPglite ? test.serial : test)(name, async (t) => {
        t.timeout(900_000); // PGlite opens its folder once per command run (slow on a loaded machine)
        const target =
          backend === 'postgres' ? postgresTarget(tag) : await pgliteTarget(await folder0(), tag);
        const folder = await tempDir(tag);
        try {
          await body(t, target, folder.dir);
        } finally {
          await target.dispose();
          await folder.remove();
        }
      });
    }
  };
}
