/**
 * Migrated PGlite templates: a new embedded database starts as a copy of a data folder that
 * was initialised (`initdb`) and migrated once, instead of running `initdb` and every
 * migration again. `initdb` is most of the cost of a new PGlite (about 3.5 CPU seconds here,
 * against under one to load a template). The template holds one database, `postgres`, the
 * only one PGlite opens: `template0` and `template1` (7 MB each, there for `CREATE DATABASE`)
 * are dropped before it is dumped, so every folder made from it is 14 MB smaller and quicker
 * to unpack.
 *
 * A template is a tarball (PGlite's `dumpDataDir`) in a cache folder, named by a key that
 * hashes everything its content depends on: the PGlite and pgvector versions, the `initdb`
 * options, and each migration's id, name and SQL for the schema, storage and dimensions
 * asked for. A migration whose SQL changes gives another key, so a stale template is never
 * used; opening still runs {@link migrate}, which checks the loaded schema as for any
 * database. Writers write a file of their own and rename it into place, so processes
 * creating the same template at once are safe (the last rename wins; both files are whole).
 *
 * @module
 * @internal
 */

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { VectorStorage } from './database.js';
import type { Migration } from './migrations/index.js';

/** What a template's content depends on. @internal */
export interface PgliteTemplateSpec {
  /** The migrations applied, in order. */
  readonly migrations: readonly Migration[];
  /** The schema they were applied to. */
  readonly schema: string;
  /** Embedding storage chosen for the new database. */
  readonly vectorStorage: VectorStorage;
  /** Embedding dimensions of the new database. */
  readonly embeddingDimensions: number;
  /** `initdb` options. */
  readonly initdbParams: readonly string[];
}

/**
 * The environment variable naming the folder templates are kept in; `off` disables templates.
 * @internal
 */
export const PGLITE_TEMPLATE_DIR_ENV = 'HARTONOMOUS_PGLITE_TEMPLATES';

/**
 * The folder templates are kept in: `$HARTONOMOUS_PGLITE_TEMPLATES` if set, else
 * `node_modules/.cache/@hartonomous/pipelines` under the working directory when it has a
 * `node_modules` folder (the convention of build tools' caches), else a folder of this user
 * in the system's temporary directory. `undefined` when the variable is `off`.
 * @internal
 */
export function pgliteTemplateDir(cwd: string = process.cwd()): string | undefined {
  const chosen = process.env[PGLITE_TEMPLATE_DIR_ENV];
  if (chosen === 'off') return undefined;
  if (chosen) return resolve(cwd, chosen);
  const modules = join(cwd, 'node_modules');
  if (existsSync(modules)) return join(modules, '.cache', '@hartonomous', 'pipelines');
  const user = typeof process.getuid === 'function' ? String(process.getuid()) : 'user';
  return join(tmpdir(), `hartonomous-pipelines-${user}`);
}

/** The version field of an installed package's package.json, found from its entry point. */
function installedVersion(name: string): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name) return String(pkg.version);
    }
    const up = dirname(dir);
    if (up === dir) return 'unknown';
    dir = up;
  }
}

let versions: string | undefined;

/**
 * The layout of a template's data folder, part of its key: 2 = one database (`postgres`;
 * `template0` and `template1` dropped before the dump, see `openDatabase`).
 * @internal
 */
export const PGLITE_TEMPLATE_FORMAT = 2;

/**
 * The key of a template: a hash of the PGlite and pgvector versions, the `initdb` options and
 * every migration's id, name and SQL as it would run for `spec`.
 * @internal
 */
export function pgliteTemplateKey(spec: PgliteTemplateSpec): string {
  versions ??= `pglite ${installedVersion('@electric-sql/pglite')} pgvector ${installedVersion('@electric-sql/pglite-pgvector')}`;
  const ctx = {
    schema: spec.schema,
    vectorStorage: spec.vectorStorage,
    embeddingDimensions: spec.embeddingDimensions,
  };
  const hash = createHash('sha256');
  hash.update(
    JSON.stringify({ format: PGLITE_TEMPLATE_FORMAT, versions, ctx, initdb: spec.initdbParams }),
  );
  for (const m of spec.migrations) {
    const up = m.up(ctx);
    hash.update(JSON.stringify([m.id, m.name, typeof up === 'string' ? [up] : up]));
  }
  return hash.digest('hex').slice(0, 32);
}

const fileOf = (dir: string, key: string) => join(dir, `pglite-${key}.tar`);

/**
 * The template stored under `key`, or `undefined` when there is none (or it cannot be read).
 * @internal
 */
export async function readPgliteTemplate(dir: string, key: string): Promise<Blob | undefined> {
  try {
    return new Blob([await readFile(fileOf(dir, key))]);
  } catch {
    return undefined;
  }
}

/**
 * Stores a template under `key`: written to a file of this process, then renamed into place.
 * Returns false (and leaves nothing behind) when the folder cannot be written: a template is
 * an optimisation, never a reason to fail.
 * @internal
 */
export async function writePgliteTemplate(
  dir: string,
  key: string,
  tarball: Blob,
): Promise<boolean> {
  const target = fileOf(dir, key);
  const temp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(temp, new Uint8Array(await tarball.arrayBuffer()), { mode: 0o600 });
    await rename(temp, target);
    return true;
  } catch {
    await rm(temp, { force: true }).catch(() => undefined);
    return false;
  }
}
