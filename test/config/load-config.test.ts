import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import fc from 'fast-check';
import { CONFIG_FILE_ENV, CONFIG_KEYS, OTHER_ENV } from '../../lib/config/config-keys.js';
import { describeConfig, formatConfig } from '../../lib/config/describe-config.js';
import { type ConfigError, isConfigError, loadConfig } from '../../lib/config/load-config.js';
import { redactSetting } from '../../lib/config/redact-setting.js';

const SB =
  'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=TOPSECRETKEY';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (isConfigError(e)) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

async function tempFile(t: { teardown(fn: () => Promise<void>): void }, content: string) {
  const dir = await mkdtemp(join(tmpdir(), 'hartonomous-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'hartonomous.json');
  await writeFile(file, content);
  return { dir, file };
}

test('defaults with an empty environment; empty variables count as unset', (t) => {
  const { config, sources } = loadConfig({
    env: { DATABASE_URL: '', HARTONOMOUS_METRICS_PORT: ' ' },
  });
  t.is(config.database.url, undefined);
  t.is(config.database.schema, 'public');
  t.is(config.worker.concurrency, 64);
  t.is(config.metrics.port, undefined);
  t.is(config.metrics.host, '0.0.0.0');
  t.is(config.embedder.kind, 'local');
  t.deepEqual(sources.get('database.schema'), { kind: 'default' });
  t.false(sources.has('database.url'));
});

test('precedence: default < JSON file < environment, with each value’s source', async (t) => {
  const { file, dir } = await tempFile(
    t,
    JSON.stringify({ worker: { concurrency: 8, drainTimeoutMs: 5000 }, metrics: { port: 9100 } }),
  );
  const loaded = loadConfig({
    env: { HARTONOMOUS_CONFIG: 'hartonomous.json', HARTONOMOUS_WORKER_CONCURRENCY: '16' },
    cwd: dir,
  });
  t.is(loaded.file, file);
  t.is(loaded.config.worker.concurrency, 16);
  t.is(loaded.config.worker.drainTimeoutMs, 5000);
  t.is(loaded.config.metrics.port, 9100);
  t.deepEqual(loaded.sources.get('worker.concurrency'), {
    kind: 'env',
    name: 'HARTONOMOUS_WORKER_CONCURRENCY',
  });
  t.deepEqual(loaded.sources.get('worker.drainTimeoutMs'), {
    kind: 'file',
    name: 'hartonomous.json',
  });
  t.deepEqual(loaded.sources.get('ingest.batchSize'), { kind: 'default' });
  // the first variable of a key wins: HARTONOMOUS_EMBED_URL over OPENAI_BASE_URL
  const both = loadConfig({
    env: { HARTONOMOUS_EMBED_URL: 'http://a:1/v1', OPENAI_BASE_URL: 'http://b:2/v1' },
  });
  t.is(both.config.embedder.url, 'http://a:1/v1');
});

test('one line per bad setting, naming the variable, the key and what it accepts', (t) => {
  const e = errorOf(() =>
    loadConfig({
      env: {
        HARTONOMOUS_METRICS_PORT: 'http', // not an integer
        HARTONOMOUS_DB_POOL_SIZE: '0', // out of range
        HARTONOMOUS_EMBEDDER: 'cohere', // not a choice
        DATABASE_URL: 'mysql://db/atoms', // wrong protocol
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', // not a URL
        HARTONOMOUS_DB_SCHEMA: 'drop table', // not an identifier
        OTEL_RESOURCE_ATTRIBUTES: 'env', // not key=value
        HARTONOMOUS_WORKER_CONCURENCY: '8', // unknown (typo)
      },
    }),
  );
  const lines = e.message.split('\n');
  t.is(lines.length, 8, e.message);
  t.is(e.problems.length, 8);
  const line = (start: string) => lines.find((l) => l.startsWith(start));
  t.is(
    line('HARTONOMOUS_METRICS_PORT'),
    'HARTONOMOUS_METRICS_PORT (metrics.port): expected an integer from 0 to 65535 (0: any free port), got "http"',
  );
  t.is(
    line('HARTONOMOUS_DB_POOL_SIZE'),
    'HARTONOMOUS_DB_POOL_SIZE (database.poolSize): expected an integer from 1 to 1000, got "0"',
  );
  t.is(
    line('HARTONOMOUS_EMBEDDER'),
    "HARTONOMOUS_EMBEDDER (embedder.kind): expected 'local' or 'openai', got \"cohere\"",
  );
  t.regex(line('DATABASE_URL') ?? '', /^DATABASE_URL \(database\.url\): expected a postgres:\/\//);
  t.regex(line('OTEL_EXPORTER_OTLP_ENDPOINT') ?? '', /expected an http:\/\/ or https:\/\/ URL/);
  t.regex(line('HARTONOMOUS_DB_SCHEMA') ?? '', /plain SQL identifier/);
  t.regex(line('OTEL_RESOURCE_ATTRIBUTES') ?? '', /key=value/);
  t.regex(line('HARTONOMOUS_WORKER_CONCURENCY') ?? '', /unknown setting/);
});

test('settings that go together or exclude each other', (t) => {
  const both = errorOf(() =>
    loadConfig({ env: { DATABASE_URL: 'postgres://db/atoms', HARTONOMOUS_DATA_DIR: '/data' } }),
  );
  t.is(
    both.message,
    'HARTONOMOUS_DATA_DIR (database.dataDir): give database.url (a PostgreSQL server) or database.dataDir (PGlite), not both',
  );
  const openai = errorOf(() => loadConfig({ env: { HARTONOMOUS_EMBEDDER: 'openai' } }));
  t.is(
    openai.message,
    'embedder.model: embedder.kind openai needs embedder.model (HARTONOMOUS_EMBED_MODEL) too',
  );
  const stray = errorOf(() => loadConfig({ env: { HARTONOMOUS_EMBED_MODEL: 'bge-small' } }));
  t.regex(stray.message, /embedder\.model applies to embedder\.kind openai/);
  t.is(
    loadConfig({ env: { HARTONOMOUS_EMBEDDER: 'openai', HARTONOMOUS_EMBED_MODEL: 'bge' } }).config
      .embedder.model,
    'bge',
  );
  // a bad value elsewhere does not hide the rule between two settings
  const mixed = errorOf(() =>
    loadConfig({ env: { HARTONOMOUS_EMBEDDER: 'openai', HARTONOMOUS_BATCH_SIZE: '-1' } }),
  );
  t.is(mixed.problems.length, 2, mixed.message);
});

test('required settings name their variable and file key', (t) => {
  const e = errorOf(() => loadConfig({ env: {}, require: ['serviceBus.connectionString'] }));
  t.regex(
    e.message,
    /^serviceBus\.connectionString: required: set SERVICEBUS_CONNECTION_STRING or serviceBus\.connectionString in the config file/,
  );
  t.is(
    loadConfig({
      env: { SERVICEBUS_CONNECTION_STRING: SB },
      require: ['serviceBus.connectionString'],
    }).config.serviceBus.connectionString,
    SB,
  );
  t.throws(() => loadConfig({ env: {}, require: ['no.such'] }), { instanceOf: TypeError });
});

test('the JSON file: bad JSON, missing file, unknown keys, wrong types, each named with the file', async (t) => {
  const bad = await tempFile(t, '{ "worker": ');
  t.regex(errorOf(() => loadConfig({ env: {}, file: bad.file })).message, /not valid JSON/);
  t.regex(
    errorOf(() => loadConfig({ env: {}, file: '/no/such/file.json' })).message,
    /cannot read the config file \(not found\)/,
  );
  const wrong = await tempFile(
    t,
    JSON.stringify({
      metrics: { prot: 9464, port: '9x' },
      worker: 5,
      outbox: { pollIntervalMs: 1.5 },
    }),
  );
  const e = errorOf(() => loadConfig({ env: {}, file: 'hartonomous.json', cwd: wrong.dir }));
  const lines = e.message.split('\n');
  t.is(lines.length, 4, e.message);
  t.true(
    lines.includes(
      'hartonomous.json: metrics.prot: unknown setting (known: metrics.port, metrics.host)',
    ),
  );
  t.true(
    lines.some((l) => l.startsWith('hartonomous.json: worker: expected an object of settings')),
  );
  t.true(
    lines.includes(
      'hartonomous.json: metrics.port: expected an integer from 0 to 65535 (0: any free port), got "9x"',
    ),
  );
  t.true(
    lines.includes(
      'hartonomous.json: outbox.pollIntervalMs: expected an integer from 10 to 3600000 (ms), got 1.5',
    ),
  );
  const array = await tempFile(t, '[1]');
  t.regex(
    errorOf(() => loadConfig({ env: {}, file: array.file })).message,
    /expected a JSON object/,
  );
});

test('secrets never appear in errors or in the description; where they came from does', (t) => {
  fc.assert(
    fc.property(fc.stringMatching(/^[A-Za-z0-9+/]{12,40}$/), (secret) => {
      const badSb = `Endpoint=http://x;SharedAccessKey=${secret}`;
      const e = errorOf(() =>
        loadConfig({
          env: {
            SERVICEBUS_CONNECTION_STRING: badSb,
            DATABASE_URL: `mysql://user:${secret}@db/atoms`,
            OTEL_EXPORTER_OTLP_HEADERS: `api-key=${secret}`,
            HARTONOMOUS_METRICS_PORT: 'x',
          },
        }),
      );
      if (e.message.includes(secret)) return false;
      const loaded = loadConfig({
        env: {
          SERVICEBUS_CONNECTION_STRING: `Endpoint=sb://ns/;SharedAccessKeyName=root;SharedAccessKey=${secret}`,
          DATABASE_URL: `postgres://user:${encodeURIComponent(secret)}@db/atoms`,
          OPENAI_API_KEY: secret,
          OTEL_EXPORTER_OTLP_HEADERS: `api-key=${secret},x-team=${secret}`,
        },
      });
      const text = formatConfig(describeConfig(loaded)) + JSON.stringify(describeConfig(loaded));
      return (
        !text.includes(secret) &&
        !text.includes(encodeURIComponent(secret)) &&
        text.includes('env OPENAI_API_KEY')
      );
    }),
    { numRuns: 50 },
  );
  t.is(redactSetting('database.url', 'postgres://u:pw@db:5432/x'), 'postgres://u:***@db:5432/x');
  t.is(
    redactSetting('serviceBus.connectionString', SB),
    'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=***',
  );
  t.is(redactSetting('otel.headers', 'a=1,b=2'), 'a=***,b=***');
  t.is(redactSetting('embedder.apiKey', 'sk-1'), '***');
  t.is(redactSetting('worker.concurrency', 8), '8');
});

test('a malformed secret is not echoed: no scheme, no key names, a header without =, bad JSON around it', async (t) => {
  const secret = 'S3cretPW9xq';
  const malformed: Record<string, string>[] = [
    { DATABASE_URL: `app:${secret}@db.example/atoms` }, // the scheme forgotten
    { DATABASE_URL: `postgres://app:${secret}@db.example:99999/atoms` }, // bad port
    { DATABASE_URL: `host=db user=app password=${secret}` }, // a libpq key=value string
    { DATABASE_URL: `postgres//app:${secret}@db.example/atoms` }, // the colon forgotten
    { OTEL_EXPORTER_OTLP_ENDPOINT: `htp//collector:${secret}@otel:4318` }, // not a secret setting
    { SERVICEBUS_CONNECTION_STRING: secret }, // the key pasted alone
    { SERVICEBUS_CONNECTION_STRING: `Endpoint=sb://ns/;SharedAccessKeyName=k;Key=${secret}` },
    { OTEL_EXPORTER_OTLP_HEADERS: `authorization Bearer ${secret}` },
    { OTEL_EXPORTER_OTLP_HEADERS: `x-a=1,${secret}` },
  ];
  for (const env of malformed) {
    const e = errorOf(() => loadConfig({ env }));
    t.is(e.problems.length, 1, e.message);
    t.false(e.message.includes(secret), e.message);
    t.regex(e.message, /^(DATABASE_URL|SERVICEBUS_CONNECTION_STRING|OTEL_EXPORTER_OTLP_\w+) /);
  }
  // a JSON syntax error next to a secret: the parser's message quotes the text around it
  const { file } = await tempFile(t, `{"embedder": {"apiKey": sk-${secret}}}`);
  const e = errorOf(() => loadConfig({ env: {}, file }));
  t.regex(e.message, /not valid JSON/);
  t.false(e.message.includes(secret.slice(0, 4)), e.message);
  // a URL setting that is not a secret still hides a password in it
  const loaded = loadConfig({
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://collector:${secret}@otel:4318`,
      OPENAI_BASE_URL: `http://user:${secret}@llm:8080/v1`,
    },
  });
  t.false(formatConfig(describeConfig(loaded)).includes(secret));
  t.is(
    redactSetting('otel.endpoint', `http://collector:${secret}@otel:4318`),
    'http://collector:***@otel:4318',
  );
});

test('the HARTONOMOUS_ variables read outside loadConfig are not unknown settings', async (t) => {
  const { config } = loadConfig({
    env: {
      HARTONOMOUS_PGLITE_TEMPLATES: 'off',
      HARTONOMOUS_CLI_SOURCE: '1',
      HARTONOMOUS_CHILD_SOURCEMAPS: '1',
      HARTONOMOUS_WORKER_CONCURRENCY: '3',
    },
  });
  t.is(config.worker.concurrency, 3);
  // every one the library, the scripts and the examples name is a setting or one of those
  const known = new Set([CONFIG_FILE_ENV, ...OTHER_ENV, ...CONFIG_KEYS.flatMap((k) => k.env)]);
  const root = new URL('../../', import.meta.url);
  const named = new Set<string>();
  for (const folder of ['lib', 'scripts', 'examples']) {
    for (const entry of await readdir(new URL(folder, root), { recursive: true })) {
      if (!/\.(ts|mjs)$/.test(entry)) continue;
      const text = await readFile(new URL(`${folder}/${entry}`, root), 'utf8');
      for (const m of text.matchAll(/\bHARTONOMOUS_[A-Z_]*[A-Z]\b/g)) named.add(m[0]);
    }
  }
  t.true(named.has('HARTONOMOUS_PGLITE_TEMPLATES') && named.has('HARTONOMOUS_CLI_SOURCE'));
  t.deepEqual(
    [...named].filter((n) => !known.has(n)),
    [],
  );
});

test('integer settings accept exactly the integers of their range (property)', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: -100, max: 70_000 }), (n) => {
      const ok = n >= 0 && n <= 65_535;
      try {
        const { config } = loadConfig({ env: { HARTONOMOUS_METRICS_PORT: String(n) } });
        return ok && config.metrics.port === n;
      } catch (e) {
        return !ok && isConfigError(e) && e.problems[0]?.key === 'metrics.port';
      }
    }),
  );
  t.pass();
});

test('describeConfig lists every setting with its source; formatConfig aligns them', (t) => {
  const rows = describeConfig(
    loadConfig({ env: { HARTONOMOUS_WORKER_CONCURRENCY: '4', OTEL_SERVICE_NAME: 'w1' } }),
  );
  t.true(rows.length >= 25);
  t.like(
    rows.find((r) => r.key === 'worker.concurrency'),
    { value: '4', source: 'env HARTONOMOUS_WORKER_CONCURRENCY' },
  );
  t.like(
    rows.find((r) => r.key === 'database.url'),
    { value: undefined, source: 'unset', secret: true },
  );
  const text = formatConfig(rows);
  t.regex(text, /^otel\.serviceName\s+w1\s+env OTEL_SERVICE_NAME$/m);
  t.is(text.split('\n').length, rows.length + 1);
});
