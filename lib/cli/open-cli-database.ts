import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { redactUrl } from '../core/redact-url.js';
import type { Database } from '../postgres/database.js';
import { DEFAULT_DATA_DIR, openDatabase } from '../postgres/open-database.js';
import type { CliIo } from './cli-io.js';
import { checkDatabaseUrl, DatabaseNotFoundError } from './errors.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * A database opened by the command line, and where it is (for messages).
 * @internal
 */
export interface CliDatabase {
  readonly db: Database;
  /** The server URL without its password, or the PGlite data folder. */
  readonly location: string;
}

/**
 * Opens the database a command line names: `--db <url>`; else `--data-dir <dir>` (embedded
 * PGlite); else `DATABASE_URL` from `io.env`; else PGlite in `.data/pglite` under the working
 * directory. The process environment is never read directly, so a run is fully described by
 * its {@link CliIo}.
 *
 * @param options - the parsed options (`db`, `dataDir`, `schema`, `dimensions`)
 * @param io - environment, working directory, cancellation
 * @param mode - `migrate`: apply missing migrations while opening; `mustExist`: refuse to create
 *   a PGlite folder that is not there yet (read-only commands)
 * @returns the open database; close it when done
 * @throws {@link DatabaseNotFoundError} when `mustExist` and the PGlite folder holds no database
 * @internal
 */
export async function openCliDatabase(
  options: CliOptions,
  io: CliIo,
  mode: { readonly migrate: boolean; readonly mustExist: boolean },
): Promise<CliDatabase> {
  const envUrl = io.env.DATABASE_URL === '' ? undefined : io.env.DATABASE_URL;
  const url = options.db ?? (options.dataDir === undefined ? envUrl : undefined);
  const common = {
    migrate: mode.migrate,
    // no command uses MikroORM: on PGlite it is not even loaded (about a second of start-up)
    orm: false,
    ...(options.schema !== undefined ? { schema: options.schema } : {}),
    ...(options.dimensions !== undefined ? { dimensions: options.dimensions } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
  };
  if (url !== undefined) {
    checkDatabaseUrl(url, options.db !== undefined ? '--db' : 'DATABASE_URL');
    return { db: await openDatabase({ ...common, url }), location: redactUrl(url) };
  }
  const given = options.dataDir ?? DEFAULT_DATA_DIR;
  const dataDir = given.includes('://') ? given : resolve(io.cwd ?? process.cwd(), given);
  if (mode.mustExist && !dataDir.includes('://') && !existsSync(join(dataDir, 'PG_VERSION'))) {
    throw new DatabaseNotFoundError(given);
  }
  return { db: await openDatabase({ ...common, dataDir }), location: dataDir };
}
