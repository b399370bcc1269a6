import { describeConfig, formatConfig } from '../config/describe-config.js';
import { isConfigError, loadConfig } from '../config/load-config.js';
import { redactSetting } from '../config/redact-setting.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * `hartonomous config`: prints the effective configuration (environment, the JSON file of
 * `HARTONOMOUS_CONFIG`, defaults, and the database options of this command line) with
 * secrets redacted and where each value came from; `--json` for a machine-readable list.
 * An invalid configuration prints one line per bad setting on stderr and returns 2.
 *
 * @param args - no positional arguments
 * @param options - the parsed options (`--db`, `--data-dir`, `--schema`, `--json`)
 * @param io - streams, environment, working directory
 * @returns the exit status
 * @internal
 */
export async function configCommand(
  args: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (args.length > 0) throw new UsageError('config takes no arguments', 'config');
  let rows: ReturnType<typeof describeConfig>;
  try {
    rows = describeConfig(loadConfig({ env: io.env, ...(io.cwd ? { cwd: io.cwd } : {}) }));
  } catch (e) {
    if (!isConfigError(e)) throw e;
    io.stderr.write(
      `error: invalid configuration:\n${e.problems.map((p) => `  ${p.message}\n`).join('')}`,
    );
    return 2;
  }
  const flags: Array<[string, string | undefined, string]> = [
    ['database.url', options.db, '--db'],
    ['database.dataDir', options.dataDir, '--data-dir'],
    ['database.schema', options.schema, '--schema'],
  ];
  for (const [key, value, flag] of flags) {
    if (value === undefined) continue;
    rows = rows.map((r) =>
      r.key === key ? { ...r, value: redactSetting(key, value), source: `flag ${flag}` } : r,
    );
    if (key !== 'database.schema') {
      // --db and --data-dir each replace the other
      const other = key === 'database.url' ? 'database.dataDir' : 'database.url';
      rows = rows.map((r) =>
        r.key === other ? { ...r, value: undefined, source: `unset by ${flag}` } : r,
      );
    }
  }
  io.stdout.write(
    options.json
      ? `${JSON.stringify(
          rows.map(({ key, value, source, env }) => ({ key, value: value ?? null, source, env })),
          null,
          2,
        )}\n`
      : formatConfig(rows),
  );
  return 0;
}
