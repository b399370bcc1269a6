import type { CliIo } from './cli-io.js';
import { databaseStats } from './database-stats.js';
import { UsageError } from './errors.js';
import { formatBytes, formatCount } from './format.js';
import { openCliDatabase } from './open-cli-database.js';
import type { CliOptions } from './parse-command-line.js';
import { BIN } from './usage-of.js';

/**
 * `hartonomous stats`: atoms and bytes, the outbox backlog, schema version, backend and vector
 * storage. Read-only: opens without migrating.
 *
 * @param args - positional arguments (none are taken)
 * @param options - the parsed options
 * @param io - streams, environment, cancellation
 * @returns the exit status (0)
 * @internal
 */
export async function statsCommand(
  args: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (args.length > 0) throw new UsageError(`stats takes no arguments, got '${args[0]}'`, 'stats');
  const { db, location } = await openCliDatabase(options, io, { migrate: false, mustExist: true });
  try {
    const s = await databaseStats(db, location, io.signal);
    if (options.json) {
      io.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
      return 0;
    }
    const row = (label: string, value: string): string => `${label.padEnd(10)}${value}`;
    const current = s.schemaVersion === s.knownVersion;
    const lines = [
      row('backend', `${s.backend} ${s.location}`),
      row(
        'schema',
        `${s.schema}, version ${s.schemaVersion}${
          current
            ? ''
            : s.schemaVersion < s.knownVersion
              ? ` (this version needs ${s.knownVersion}: run '${BIN} migrate')`
              : ` (newer than the ${s.knownVersion} this version knows)`
        }`,
      ),
      row(
        'vectors',
        s.vectorStorage === null ? '-' : `${s.vectorStorage}, ${s.dimensions} dimensions`,
      ),
      row(
        'atoms',
        s.atoms === null ? '-' : `${formatCount(s.atoms)} (${formatBytes(s.bytes ?? 0)})`,
      ),
      row(
        'outbox',
        s.outbox === null
          ? '-'
          : `${formatCount(s.outbox.pending)} pending, ${formatCount(
              s.outbox.published,
            )} published, ${formatCount(s.outbox.dead)} dead`,
      ),
    ];
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
