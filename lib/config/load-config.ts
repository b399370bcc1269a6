import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { errorGuard, PipelineError } from '../core/errors.js';
import {
  CONFIG_FILE_ENV,
  CONFIG_KEYS,
  type ConfigKey,
  ENV_PREFIX,
  OTHER_ENV,
} from './config-keys.js';
import { redactSetting } from './redact-setting.js';

/**
 * The settings of the worker and the command line, as {@link loadConfig} returns them.
 *
 * @example
 * ```ts
 * import type { HartonomousConfig } from '@hartonomous/pipelines/config';
 * const port = (c: HartonomousConfig) => c.metrics.port ?? 9464;
 * ```
 */
export interface HartonomousConfig {
  /** Where atoms are stored. */
  readonly database: {
    /** PostgreSQL server URL (`DATABASE_URL`); unset means embedded PGlite. */
    readonly url?: string;
    /** PGlite data folder (`HARTONOMOUS_DATA_DIR`). */
    readonly dataDir?: string;
    /** Schema of the tables (`HARTONOMOUS_DB_SCHEMA`). @default 'public' */
    readonly schema: string;
    /** Most server connections (`HARTONOMOUS_DB_POOL_SIZE`). @default 10 */
    readonly poolSize: number;
  };
  /** The broker. */
  readonly serviceBus: {
    /** Namespace connection string (`SERVICEBUS_CONNECTION_STRING`). */
    readonly connectionString?: string;
    /** Queue consumed (`HARTONOMOUS_IN_QUEUE`). @default 'atoms-in' */
    readonly inQueue: string;
    /** Queue or topic of outbox events (`HARTONOMOUS_OUT_QUEUE`). @default 'atom-events' */
    readonly outQueue: string;
    /** Deliveries before dead-lettering (`HARTONOMOUS_MAX_DELIVERY_COUNT`). @default 10 */
    readonly maxDeliveryCount: number;
  };
  /** The worker. */
  readonly worker: {
    /** Items in a step at once (`HARTONOMOUS_WORKER_CONCURRENCY`). @default 64 */
    readonly concurrency: number;
    /** Drain timeout of a stop, ms (`HARTONOMOUS_DRAIN_TIMEOUT_MS`). @default 30_000 */
    readonly drainTimeoutMs: number;
  };
  /** Ingestion. */
  readonly ingest: {
    /** Items per batch (`HARTONOMOUS_BATCH_SIZE`). @default 256 */
    readonly batchSize: number;
  };
  /** The embedder. */
  readonly embedder: {
    /** `local` or `openai` (`HARTONOMOUS_EMBEDDER`). @default 'local' */
    readonly kind: 'local' | 'openai';
    /** Server base URL (`HARTONOMOUS_EMBED_URL`, `OPENAI_BASE_URL`). */
    readonly url?: string;
    /** Model (`HARTONOMOUS_EMBED_MODEL`). */
    readonly model?: string;
    /** API key (`OPENAI_API_KEY`). */
    readonly apiKey?: string;
    /** Dimensions of a new database (`HARTONOMOUS_DIMENSIONS`). */
    readonly dimensions?: number;
  };
  /** The outbox relay. */
  readonly outbox: {
    /** Rows per round (`HARTONOMOUS_OUTBOX_BATCH_SIZE`). @default 100 */
    readonly batchSize: number;
    /** Idle wait, ms (`HARTONOMOUS_OUTBOX_POLL_INTERVAL_MS`). @default 1000 */
    readonly pollIntervalMs: number;
    /** Attempts before a row is dead (`HARTONOMOUS_OUTBOX_MAX_ATTEMPTS`). @default 10 */
    readonly maxAttempts: number;
  };
  /** The operations server. */
  readonly metrics: {
    /** Port of `/metrics`, `/healthz`, `/readyz` (`HARTONOMOUS_METRICS_PORT`); unset: none. */
    readonly port?: number;
    /** Interface (`HARTONOMOUS_METRICS_HOST`). @default '0.0.0.0' */
    readonly host: string;
  };
  /** OpenTelemetry (the standard `OTEL_*` variables). */
  readonly otel: {
    /** `OTEL_SERVICE_NAME`. @default 'hartonomous' */
    readonly serviceName: string;
    /** `OTEL_EXPORTER_OTLP_ENDPOINT`. */
    readonly endpoint?: string;
    /** `OTEL_EXPORTER_OTLP_HEADERS`. */
    readonly headers?: string;
    /** `OTEL_METRICS_EXPORTER`. */
    readonly metricsExporter?: 'prometheus' | 'otlp' | 'none';
    /** `OTEL_TRACES_EXPORTER`. */
    readonly tracesExporter?: 'otlp' | 'none';
    /** `OTEL_METRIC_EXPORT_INTERVAL`, ms. @default 60_000 */
    readonly exportIntervalMs: number;
    /** `OTEL_RESOURCE_ATTRIBUTES`. */
    readonly resourceAttributes?: string;
  };
  /** Logging. */
  readonly log: {
    /** pino level (`HARTONOMOUS_LOG_LEVEL`). @default 'info' */
    readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  };
}

/**
 * Where a setting's effective value came from: its default, the JSON file, or an environment
 * variable.
 *
 * @example
 * ```ts
 * import type { ConfigSource } from '@hartonomous/pipelines/config';
 * const source: ConfigSource = { kind: 'env', name: 'DATABASE_URL' };
 * ```
 */
export type ConfigSource =
  | {
      /** The built-in default. */
      readonly kind: 'default';
    }
  | {
      /** The JSON configuration file. */
      readonly kind: 'file';
      /** The file as given (`HARTONOMOUS_CONFIG` or `file`). */
      readonly name: string;
    }
  | {
      /** An environment variable. */
      readonly kind: 'env';
      /** The variable's name. */
      readonly name: string;
    };

/**
 * What {@link loadConfig} returns: the settings, and where each came from.
 *
 * @example
 * ```ts
 * import { loadConfig, type LoadedConfig } from '@hartonomous/pipelines/config';
 * const loaded: LoadedConfig = loadConfig({ env: {} });
 * console.log(loaded.sources.get('database.schema')); // { kind: 'default' }
 * ```
 */
export interface LoadedConfig {
  /** The validated settings. */
  readonly config: HartonomousConfig;
  /** The source of every setting that has a value, by its path (`database.url`). */
  readonly sources: ReadonlyMap<string, ConfigSource>;
  /** The JSON file read, if any (absolute path). */
  readonly file?: string;
}

/**
 * Options of {@link loadConfig}.
 *
 * @example
 * ```ts
 * import type { LoadConfigOptions } from '@hartonomous/pipelines/config';
 * const options: LoadConfigOptions = { file: 'hartonomous.json', require: ['serviceBus.connectionString'] };
 * ```
 */
export interface LoadConfigOptions {
  /** The environment. @default process.env */
  env?: Readonly<Record<string, string | undefined>>;
  /** A JSON file of settings (nested by path). @default `HARTONOMOUS_CONFIG` of `env`, else none */
  file?: string;
  /** Folder a relative `file` is resolved against. @default process.cwd() */
  cwd?: string;
  /** Settings this program cannot run without, by path (e.g. `serviceBus.connectionString`). @default [] */
  require?: readonly string[];
}

/** One bad setting, as {@link ConfigError} lists it. */
export interface ConfigProblem {
  /** The setting's path (`metrics.port`), or the file or variable when the setting is unknown. */
  readonly key: string;
  /** Where the bad value came from. */
  readonly source?: ConfigSource;
  /** The line printed for it: the key, the source and what it accepts. */
  readonly message: string;
}

/**
 * The configuration is invalid. Its message has one line per bad setting, naming the
 * setting (and the variable or file it came from) and what it accepts; secret values are
 * never included.
 *
 * @example
 * ```ts
 * import { isConfigError, loadConfig } from '@hartonomous/pipelines/config';
 * try {
 *   loadConfig({ env: { HARTONOMOUS_METRICS_PORT: 'http' } });
 * } catch (e) {
 *   if (isConfigError(e)) console.error(e.message);
 *   // HARTONOMOUS_METRICS_PORT (metrics.port): expected an integer from 0 to 65535 (0: any free port), got "http"
 * }
 * ```
 */
export class ConfigError extends PipelineError {
  readonly code = 'CONFIG' as const;
  /** @param problems - every bad setting */
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(problems.map((p) => p.message).join('\n'));
  }
}

/**
 * Guard for {@link ConfigError}.
 * @param e - any caught value
 * @returns whether `e` is a {@link ConfigError}
 * @example
 * ```ts
 * import { isConfigError } from '@hartonomous/pipelines/config';
 * const exitCode = (e: unknown) => (isConfigError(e) ? 2 : 1);
 * ```
 */
export const isConfigError: (e: unknown) => e is ConfigError = errorGuard<ConfigError>('CONFIG');

/** Where a raw value came from, during loading. */
interface Raw {
  readonly value: unknown;
  readonly source: ConfigSource;
}

const KEYS_BY_PATH = new Map(CONFIG_KEYS.map((k) => [k.path, k]));
const KNOWN_ENV = new Set([CONFIG_FILE_ENV, ...OTHER_ENV, ...CONFIG_KEYS.flatMap((k) => k.env)]);

/** The one schema: every key's own, nested by path, and the rules between keys. */
function schemaOf(required: ReadonlySet<string>): z.ZodType {
  const groups = new Map<string, Record<string, z.ZodType>>();
  for (const key of CONFIG_KEYS) {
    const [group, name] = key.path.split('.') as [string, string];
    const fields = groups.get(group) ?? {};
    fields[name] = required.has(key.path) ? key.schema : key.schema.optional();
    groups.set(group, fields);
  }
  const shape: Record<string, z.ZodType> = {};
  for (const [group, fields] of groups) shape[group] = z.object(fields);
  return z.object(shape).superRefine((raw, ctx) => {
    for (const issue of crossIssues(raw as Nested)) ctx.addIssue({ code: 'custom', ...issue });
  });
}

type Nested = Record<string, Record<string, unknown> | undefined>;

/** The rules between settings (checked even when single settings are bad). */
function crossIssues(c: Nested): { path: string[]; message: string }[] {
  const issues: { path: string[]; message: string }[] = [];
  const has = (path: string): boolean => {
    const [g, n] = path.split('.') as [string, string];
    return c[g]?.[n] !== undefined;
  };
  if (has('database.url') && has('database.dataDir')) {
    issues.push({
      path: ['database', 'dataDir'],
      message: 'give database.url (a PostgreSQL server) or database.dataDir (PGlite), not both',
    });
  }
  const kind = c.embedder?.kind ?? 'local';
  if (kind === 'openai' && !has('embedder.model')) {
    issues.push({
      path: ['embedder', 'model'],
      message: 'embedder.kind openai needs embedder.model (HARTONOMOUS_EMBED_MODEL) too',
    });
  }
  if (kind !== 'openai' && has('embedder.model')) {
    issues.push({
      path: ['embedder', 'model'],
      message: 'embedder.model applies to embedder.kind openai (set HARTONOMOUS_EMBEDDER=openai)',
    });
  }
  return issues;
}

/**
 * Reads the settings of the worker and the `hartonomous` command line: defaults, then an
 * optional JSON file (`file`, or the path in `HARTONOMOUS_CONFIG`), then the environment
 * (`DATABASE_URL`, `SERVICEBUS_CONNECTION_STRING`, `OPENAI_API_KEY`, the standard `OTEL_*`
 * variables, and the library's own `HARTONOMOUS_*`), each overriding the one before. Every
 * value is validated by one zod schema (types, ranges, URLs, settings that go together or
 * exclude each other); an unknown `HARTONOMOUS_*` variable or file key is an error too.
 * An empty environment variable counts as unset.
 *
 * @param options - environment, file, required settings
 * @returns the settings and where each came from
 * @throws {@link ConfigError} listing every bad setting, one line each (secrets never shown)
 *
 * @example
 * ```ts
 * import { loadConfig } from '@hartonomous/pipelines/config';
 *
 * const { config } = loadConfig({
 *   env: { DATABASE_URL: 'postgres://app@db:5432/atoms', HARTONOMOUS_METRICS_PORT: '9464' },
 * });
 * console.log(config.database.url, config.metrics.port, config.worker.concurrency); // ... 9464 64
 * ```
 * @see {@link describeConfig}
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const raws = new Map<string, Raw>();

  for (const key of CONFIG_KEYS) {
    if (key.default !== undefined) raws.set(key.path, { value: key.default, source: DEFAULT });
  }

  const fileOption = options.file ?? nonEmpty(env[CONFIG_FILE_ENV]);
  let file: string | undefined;
  if (fileOption !== undefined) {
    file = resolve(options.cwd ?? process.cwd(), fileOption);
    readFileSettings(file, fileOption, raws, problems);
  }

  for (const name of Object.keys(env)) {
    if (name.startsWith(ENV_PREFIX) && !KNOWN_ENV.has(name) && nonEmpty(env[name]) !== undefined) {
      problems.push({
        key: name,
        source: { kind: 'env', name },
        message: `${name}: unknown setting (the ${ENV_PREFIX} variables are listed in the README's "Operating it")`,
      });
    }
  }
  for (const key of CONFIG_KEYS) {
    const name = key.env.find((n) => nonEmpty(env[n]) !== undefined);
    if (name !== undefined) {
      raws.set(key.path, { value: env[name]?.trim(), source: { kind: 'env', name } });
    }
  }

  const required = new Set(options.require ?? []);
  for (const path of required) {
    if (!KEYS_BY_PATH.has(path))
      throw new TypeError(`loadConfig: unknown required setting '${path}'`);
  }
  const nested: Record<string, Record<string, unknown>> = {};
  for (const key of CONFIG_KEYS) {
    const [group, name] = key.path.split('.') as [string, string];
    nested[group] ??= {};
    const raw = raws.get(key.path);
    if (raw !== undefined) (nested[group] as Record<string, unknown>)[name] = raw.value;
  }
  const result = schemaOf(required).safeParse(nested);
  if (!result.success) {
    const seen = new Set<string>();
    // zod skips the object's refinement when a field failed: add the cross-setting rules
    // (when it did run, `seen` drops the repeats)
    const cross = crossIssues(nested).map((i) => ({
      code: 'custom' as const,
      input: undefined,
      ...i,
    }));
    for (const issue of [...result.error.issues, ...cross]) {
      const path = issue.path.map(String).join('.');
      if (seen.has(path)) continue;
      seen.add(path);
      const key = KEYS_BY_PATH.get(path);
      const raw = raws.get(path);
      problems.push(problemOf(path, key, raw, issue));
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const sources = new Map<string, ConfigSource>();
  for (const [path, raw] of raws) sources.set(path, raw.source);
  return {
    config: result.data as HartonomousConfig,
    sources,
    ...(file !== undefined ? { file } : {}),
  };
}

const DEFAULT: ConfigSource = { kind: 'default' };

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v;
}

/** `NAME (path)` or `file: path`, the way a problem line starts. */
function where(path: string, source: ConfigSource | undefined): string {
  if (source?.kind === 'env') return `${source.name} (${path})`;
  if (source?.kind === 'file') return `${source.name}: ${path}`;
  return path;
}

function problemOf(
  path: string,
  key: ConfigKey | undefined,
  raw: Raw | undefined,
  issue: z.core.$ZodIssue,
): ConfigProblem {
  const source = raw?.source;
  const head = where(path, source);
  if (issue.code === 'custom' && issue.message && !issue.message.startsWith('Invalid')) {
    return { key: path, ...(source ? { source } : {}), message: `${head}: ${issue.message}` };
  }
  if (raw === undefined) {
    const envs = key?.env.join(' or ') ?? '';
    return {
      key: path,
      message: `${path}: required: set ${envs}${envs ? ' or ' : ''}${path} in the config file (${key?.accepts ?? 'a value'})`,
    };
  }
  // a secret is shown redacted; any other value as JSON, with a URL's password hidden
  const shown =
    key?.secret || typeof raw.value !== 'string'
      ? redactSetting(path, raw.value)
      : JSON.stringify(redactSetting(path, raw.value));
  return {
    key: path,
    ...(source ? { source } : {}),
    message: `${head}: expected ${key?.accepts ?? 'a valid value'}, got ${shown}`,
  };
}

/**
 * The reason of a `JSON.parse` failure without the text it quotes (V8 writes
 * `Unexpected token 's', ..."apiKey": sk-12"... is not valid JSON`): the file may hold secrets.
 */
function jsonErrorWithoutText(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.replace(/, (?:\.\.\.)?"[\s\S]*$/, '');
}

function readFileSettings(
  file: string,
  shownName: string,
  raws: Map<string, Raw>,
  problems: ConfigProblem[],
): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    problems.push({
      key: shownName,
      message: `${shownName}: cannot read the config file (${code === 'ENOENT' ? 'not found' : String(code ?? e)})`,
    });
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    problems.push({
      key: shownName,
      message: `${shownName}: not valid JSON (${jsonErrorWithoutText(e)})`,
    });
    return;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push({ key: shownName, message: `${shownName}: expected a JSON object of settings` });
    return;
  }
  const source: ConfigSource = { kind: 'file', name: shownName };
  for (const [group, fields] of Object.entries(parsed)) {
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
      const known = [...new Set(CONFIG_KEYS.map((k) => k.path.split('.')[0]))].join(', ');
      problems.push({
        key: group,
        source,
        message: `${shownName}: ${group}: expected an object of settings (sections: ${known})`,
      });
      continue;
    }
    for (const [name, value] of Object.entries(fields)) {
      const path = `${group}.${name}`;
      if (!KEYS_BY_PATH.has(path)) {
        const siblings = CONFIG_KEYS.filter((k) => k.path.startsWith(`${group}.`)).map(
          (k) => k.path,
        );
        problems.push({
          key: path,
          source,
          message: `${shownName}: ${path}: unknown setting${siblings.length ? ` (known: ${siblings.join(', ')})` : ''}`,
        });
        continue;
      }
      if (value !== null) raws.set(path, { value, source });
    }
  }
}
