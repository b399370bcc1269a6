import { migrate } from '../postgres/migrate.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { openCliDatabase } from './open-cli-database.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * `hartonomous migrate`: applies the missing migrations (creating the schema and the PGlite
 * folder if needed) and prints the version before and after.
 *
 * @param args - positional arguments (none are taken)
 * @param options - the parsed options (`dimensions` applies to a new database)
 * @param io - streams, environment, cancellation
 * @returns the exit status (0)
 * @internal
 */
export async function migrateCommand(
  args: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (args.length > 0) {
    throw new UsageError(`migrate takes no arguments, got '${args[0]}'`, 'migrate');
  }
  const { db, location } = await openCliDatabase(options, io, { migrate: false, mustExist: false });
  try {
    const result = await migrate(db, io.signal ? { signal: io.signal } : {});
    if (options.json) {
      const out = { backend: db.backend, location, schema: db.schema, ...result };
      io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      return 0;
    }
    io.stdout.write(
      result.applied.length === 0
        ? `schema ${db.schema} of ${db.backend} ${location} is up to date at version ${result.to}\n`
        : `schema ${db.schema} of ${db.backend} ${location} migrated from version ${result.from} to ${result.to}: ${result.applied
            .map((m) => `${m.id}-${m.name}`)
            .join(', ')}\n`,
    );
    return 0;
  } finally {
    await db.close();
  }
}
