import { CONFIG_KEYS } from './config-keys.js';
import type { ConfigSource, LoadedConfig } from './load-config.js';
import { redactSetting } from './redact-setting.js';

/**
 * One row of {@link describeConfig}: a setting, its value with secrets redacted, and where
 * the value came from.
 *
 * @example
 * ```ts
 * import type { ConfigRow } from '@hartonomous/pipelines/config';
 * const show = (r: ConfigRow) => `${r.key} = ${r.value ?? '(unset)'} [${r.source}]`;
 * ```
 */
export interface ConfigRow {
  /** The setting's path, e.g. `database.url`. */
  readonly key: string;
  /** The value as text, secrets redacted; undefined when unset. */
  readonly value: string | undefined;
  /** `default`, `file <name>`, `env <NAME>`, or `unset`. */
  readonly source: string;
  /** Environment variables that set it. */
  readonly env: readonly string[];
  /** Whether the value is (or holds) a secret. */
  readonly secret: boolean;
  /** What it is for. */
  readonly description: string;
}

function sourceText(source: ConfigSource | undefined): string {
  if (source === undefined) return 'unset';
  if (source.kind === 'default') return 'default';
  return `${source.kind} ${source.name}`;
}

/**
 * Every setting of a loaded configuration with its effective value (secrets redacted) and
 * where it came from, in a stable order: what `hartonomous config` prints.
 *
 * @param loaded - what {@link loadConfig} returned
 * @returns one row per setting, set or not
 *
 * @example
 * ```ts
 * import { describeConfig, loadConfig } from '@hartonomous/pipelines/config';
 *
 * for (const row of describeConfig(loadConfig({ env: { DATABASE_URL: 'postgres://u:pw@db/atoms' } }))) {
 *   console.log(row.key, row.value ?? '(unset)', row.source); // database.url postgres://u:***@db/atoms env DATABASE_URL
 * }
 * ```
 */
export function describeConfig(loaded: LoadedConfig): ConfigRow[] {
  const config = loaded.config as unknown as Record<string, Record<string, unknown>>;
  return CONFIG_KEYS.map((k) => {
    const [group, name] = k.path.split('.') as [string, string];
    const value = config[group]?.[name];
    return {
      key: k.path,
      value: value === undefined ? undefined : redactSetting(k.path, value),
      source: sourceText(value === undefined ? undefined : loaded.sources.get(k.path)),
      env: k.env,
      secret: k.secret === true,
      description: k.description,
    };
  });
}

/**
 * The rows of {@link describeConfig} as an aligned text table.
 *
 * @param rows - the rows
 * @returns the table, one line per setting, ending in a newline
 *
 * @example
 * ```ts
 * import { describeConfig, formatConfig, loadConfig } from '@hartonomous/pipelines/config';
 * process.stdout.write(formatConfig(describeConfig(loadConfig({ env: {} }))));
 * ```
 */
export function formatConfig(rows: readonly ConfigRow[]): string {
  const keyWidth = Math.max(...rows.map((r) => r.key.length));
  const valueWidth = Math.min(60, Math.max(...rows.map((r) => (r.value ?? '(unset)').length)));
  return `${rows
    .map((r) =>
      `${r.key.padEnd(keyWidth)}  ${(r.value ?? '(unset)').padEnd(valueWidth)}  ${r.source}`.trimEnd(),
    )
    .join('\n')}\n`;
}
