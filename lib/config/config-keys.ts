import { z } from 'zod';

/**
 * One setting: where it lives in the JSON file (`path`), which environment variables set it
 * (the first one set wins), what it accepts, its default, and whether it is a secret.
 * @internal
 */
export interface ConfigKey {
  readonly path: string;
  readonly env: readonly string[];
  readonly accepts: string;
  readonly schema: z.ZodType;
  readonly default?: unknown;
  readonly secret?: boolean;
  readonly description: string;
}

/** The prefix of the library's own environment variables. */
export const ENV_PREFIX = 'HARTONOMOUS_';

const intFrom = (v: unknown): unknown =>
  typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v) ? Number(v) : v;
const int = (min: number, max: number) => z.preprocess(intFrom, z.number().int().min(min).max(max));
const text = () => z.string().trim().min(1);
const url = (protocols: readonly string[]) =>
  z
    .string()
    .trim()
    .refine((v) => {
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    });
const oneOf = <T extends string>(values: readonly [T, ...T[]]) =>
  z.preprocess((v) => (typeof v === 'string' ? v.trim() : v), z.enum(values));
const identifier = () =>
  z
    .string()
    .trim()
    .regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/);
const keyValueList = () =>
  z
    .string()
    .trim()
    .regex(/^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$/);

/** Every setting, in the order `hartonomous config` prints them. @internal */
export const CONFIG_KEYS: readonly ConfigKey[] = [
  {
    path: 'database.url',
    env: ['DATABASE_URL'],
    accepts: 'a postgres:// or postgresql:// URL naming a database',
    schema: z
      .string()
      .trim()
      .refine((v) => {
        try {
          const u = new URL(v);
          const named = u.pathname !== '' && u.pathname !== '/';
          return (u.protocol === 'postgres:' || u.protocol === 'postgresql:') && named;
        } catch {
          return false;
        }
      }),
    secret: true,
    description: 'PostgreSQL server (its password is a secret); unset: embedded PGlite',
  },
  {
    path: 'database.dataDir',
    env: ['HARTONOMOUS_DATA_DIR'],
    accepts: "a folder path, or 'memory://'",
    schema: text(),
    description: 'embedded PGlite data folder (when no database.url)',
  },
  {
    path: 'database.schema',
    env: ['HARTONOMOUS_DB_SCHEMA'],
    accepts: 'a plain SQL identifier (letters, digits, _ and $; at most 63)',
    schema: identifier(),
    default: 'public',
    description: 'PostgreSQL schema holding the tables',
  },
  {
    path: 'database.poolSize',
    env: ['HARTONOMOUS_DB_POOL_SIZE'],
    accepts: 'an integer from 1 to 1000',
    schema: int(1, 1000),
    default: 10,
    description: 'most server connections',
  },
  {
    path: 'serviceBus.connectionString',
    env: ['SERVICEBUS_CONNECTION_STRING'],
    accepts:
      'a Service Bus connection string (Endpoint=sb://...;SharedAccessKeyName=...;SharedAccessKey=... or SharedAccessSignature=...)',
    schema: z
      .string()
      .trim()
      .refine((v) => {
        const parts = new Map(
          v
            .split(';')
            .filter((p) => p.includes('='))
            .map((p) => {
              const at = p.indexOf('=');
              return [p.slice(0, at).trim().toLowerCase(), p.slice(at + 1)] as const;
            }),
        );
        const endpoint = parts.get('endpoint') ?? '';
        return (
          /^sb:\/\/[^/;]+/.test(endpoint) &&
          ((parts.has('sharedaccesskeyname') && parts.has('sharedaccesskey')) ||
            parts.has('sharedaccesssignature'))
        );
      }),
    secret: true,
    description: 'Azure Service Bus namespace (its key is a secret)',
  },
  {
    path: 'serviceBus.inQueue',
    env: ['HARTONOMOUS_IN_QUEUE'],
    accepts: 'a queue name (1 to 260 characters)',
    schema: text().max(260),
    default: 'atoms-in',
    description: 'queue the worker consumes',
  },
  {
    path: 'serviceBus.outQueue',
    env: ['HARTONOMOUS_OUT_QUEUE'],
    accepts: 'a queue or topic name (1 to 260 characters)',
    schema: text().max(260),
    default: 'atom-events',
    description: 'queue or topic the outbox relay publishes to',
  },
  {
    path: 'serviceBus.maxDeliveryCount',
    env: ['HARTONOMOUS_MAX_DELIVERY_COUNT'],
    accepts: 'an integer from 1 to 2000',
    schema: int(1, 2000),
    default: 10,
    description: 'deliveries before a failing message is dead-lettered',
  },
  {
    path: 'worker.concurrency',
    env: ['HARTONOMOUS_WORKER_CONCURRENCY'],
    accepts: 'an integer from 1 to 10000',
    schema: int(1, 10_000),
    default: 64,
    description: 'items in any one step at once',
  },
  {
    path: 'worker.drainTimeoutMs',
    env: ['HARTONOMOUS_DRAIN_TIMEOUT_MS'],
    accepts: 'an integer from 0 to 3600000 (ms)',
    schema: int(0, 3_600_000),
    default: 30_000,
    description: 'how long stopping waits for in-flight messages',
  },
  {
    path: 'ingest.batchSize',
    env: ['HARTONOMOUS_BATCH_SIZE'],
    accepts: 'an integer from 1 to 100000',
    schema: int(1, 100_000),
    default: 256,
    description: 'items per dedupe, embed and persist batch',
  },
  {
    path: 'embedder.kind',
    env: ['HARTONOMOUS_EMBEDDER'],
    accepts: "'local' or 'openai'",
    schema: oneOf(['local', 'openai']),
    default: 'local',
    description: 'built-in embedder, or an OpenAI-compatible server',
  },
  {
    path: 'embedder.url',
    env: ['HARTONOMOUS_EMBED_URL', 'OPENAI_BASE_URL'],
    accepts: 'an http:// or https:// URL',
    schema: url(['http:', 'https:']),
    description: 'embeddings server base URL (embedder.kind openai)',
  },
  {
    path: 'embedder.model',
    env: ['HARTONOMOUS_EMBED_MODEL'],
    accepts: 'a model name',
    schema: text(),
    description: 'embedding model (required with embedder.kind openai)',
  },
  {
    path: 'embedder.apiKey',
    env: ['OPENAI_API_KEY'],
    accepts: 'an API key',
    schema: text(),
    secret: true,
    description: 'embeddings server API key',
  },
  {
    path: 'embedder.dimensions',
    env: ['HARTONOMOUS_DIMENSIONS'],
    accepts: 'an integer from 1 to 16000',
    schema: int(1, 16_000),
    description: 'embedding dimensions of a new database (default: stored value, else 384)',
  },
  {
    path: 'outbox.batchSize',
    env: ['HARTONOMOUS_OUTBOX_BATCH_SIZE'],
    accepts: 'an integer from 1 to 10000',
    schema: int(1, 10_000),
    default: 100,
    description: 'outbox rows published per round',
  },
  {
    path: 'outbox.pollIntervalMs',
    env: ['HARTONOMOUS_OUTBOX_POLL_INTERVAL_MS'],
    accepts: 'an integer from 10 to 3600000 (ms)',
    schema: int(10, 3_600_000),
    default: 1_000,
    description: 'wait between outbox rounds when idle',
  },
  {
    path: 'outbox.maxAttempts',
    env: ['HARTONOMOUS_OUTBOX_MAX_ATTEMPTS'],
    accepts: 'an integer from 1 to 1000',
    schema: int(1, 1_000),
    default: 10,
    description: 'failed publishing attempts before a row is dead',
  },
  {
    path: 'metrics.port',
    env: ['HARTONOMOUS_METRICS_PORT'],
    accepts: 'an integer from 0 to 65535 (0: any free port)',
    schema: int(0, 65_535),
    description: 'port of /metrics, /healthz and /readyz (unset: not served)',
  },
  {
    path: 'metrics.host',
    env: ['HARTONOMOUS_METRICS_HOST'],
    accepts: "an interface address or host name, e.g. '0.0.0.0' or '127.0.0.1'",
    schema: text().regex(/^[A-Za-z0-9.:\-[\]]+$/),
    default: '0.0.0.0',
    description: 'interface the operations server listens on',
  },
  {
    path: 'otel.serviceName',
    env: ['OTEL_SERVICE_NAME'],
    accepts: 'a service name',
    schema: text(),
    default: 'hartonomous',
    description: 'service.name of metrics and spans',
  },
  {
    path: 'otel.endpoint',
    env: ['OTEL_EXPORTER_OTLP_ENDPOINT'],
    accepts: 'an http:// or https:// URL (OTLP/HTTP base, e.g. http://collector:4318)',
    schema: url(['http:', 'https:']),
    description: 'push metrics (and spans) over OTLP/HTTP instead of serving /metrics',
  },
  {
    path: 'otel.headers',
    env: ['OTEL_EXPORTER_OTLP_HEADERS'],
    accepts: 'a list key=value,key2=value2',
    schema: keyValueList(),
    secret: true,
    description: 'headers of OTLP requests (often an API key)',
  },
  {
    path: 'otel.metricsExporter',
    env: ['OTEL_METRICS_EXPORTER'],
    accepts: "'prometheus', 'otlp' or 'none'",
    schema: oneOf(['prometheus', 'otlp', 'none']),
    description: 'where metrics go (default: otlp with an endpoint, else prometheus)',
  },
  {
    path: 'otel.tracesExporter',
    env: ['OTEL_TRACES_EXPORTER'],
    accepts: "'otlp' or 'none'",
    schema: oneOf(['otlp', 'none']),
    description: 'whether spans are pushed (default: otlp with an endpoint, else none)',
  },
  {
    path: 'otel.exportIntervalMs',
    env: ['OTEL_METRIC_EXPORT_INTERVAL'],
    accepts: 'an integer from 1000 to 3600000 (ms)',
    schema: int(1_000, 3_600_000),
    default: 60_000,
    description: 'interval of OTLP metric pushes',
  },
  {
    path: 'otel.resourceAttributes',
    env: ['OTEL_RESOURCE_ATTRIBUTES'],
    accepts: 'a list key=value,key2=value2',
    schema: keyValueList(),
    description: 'more resource attributes (e.g. deployment.environment=prod)',
  },
  {
    path: 'log.level',
    env: ['HARTONOMOUS_LOG_LEVEL'],
    accepts: "'fatal', 'error', 'warn', 'info', 'debug', 'trace' or 'silent'",
    schema: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
    default: 'info',
    description: 'pino log level',
  },
];

/** Environment variables read that are not settings (the file's path). @internal */
export const CONFIG_FILE_ENV = 'HARTONOMOUS_CONFIG';

/**
 * Variables with the {@link ENV_PREFIX} that are not settings of `loadConfig()` but are read
 * elsewhere, so they are not reported as unknown: the PGlite template folder (read by
 * `openDatabase`, `off` turns templates off), the clone's `npm run cli` launcher's switch to
 * the sources, and the test children's source maps.
 * @internal
 */
export const OTHER_ENV: readonly string[] = [
  'HARTONOMOUS_PGLITE_TEMPLATES',
  'HARTONOMOUS_CLI_SOURCE',
  'HARTONOMOUS_CHILD_SOURCEMAPS',
];
