import test from 'ava';
import { runCli, tempDir, writeCorpus } from '../support/cli-helpers.js';
import { startEmbeddingServer } from '../support/embedding-server.js';
import { parsePrometheusText, sumOf } from '../support/prometheus-text.js';

const SB =
  'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=TOPSECRET';

test('hartonomous config prints every setting, secrets redacted, with its source', async (t) => {
  const r = await runCli(['config', '--schema', 'atoms_prod'], {
    env: {
      DATABASE_URL: 'postgres://app:hunter2@db:5432/atoms',
      SERVICEBUS_CONNECTION_STRING: SB,
      HARTONOMOUS_WORKER_CONCURRENCY: '32',
    },
  });
  t.is(r.code, 0, r.stderr);
  t.false(r.stdout.includes('hunter2'));
  t.false(r.stdout.includes('TOPSECRET'));
  t.regex(r.stdout, /^database\.url\s+postgres:\/\/app:\*\*\*@db:5432\/atoms\s+env DATABASE_URL$/m);
  t.regex(r.stdout, /^database\.schema\s+atoms_prod\s+flag --schema$/m);
  t.regex(r.stdout, /^worker\.concurrency\s+32\s+env HARTONOMOUS_WORKER_CONCURRENCY$/m);
  t.regex(
    r.stdout,
    /^serviceBus\.connectionString\s+.*SharedAccessKey=\*\*\*\s+env SERVICEBUS_CONNECTION_STRING$/m,
  );
  t.regex(r.stdout, /^ingest\.batchSize\s+256\s+default$/m);
  t.regex(r.stdout, /^metrics\.port\s+\(unset\)\s+unset$/m);

  const json = await runCli(['config', '--json', '--data-dir', 'memory://'], {
    env: { DATABASE_URL: 'postgres://db/atoms' },
  });
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as Array<{ key: string; value: unknown; source: string }>;
  t.like(
    rows.find((x) => x.key === 'database.dataDir'),
    { value: 'memory://', source: 'flag --data-dir' },
  );
  t.like(
    rows.find((x) => x.key === 'database.url'),
    { value: null, source: 'unset by --data-dir' },
  );
});

test('an invalid configuration: one line per bad setting, exit status 2, no secret printed', async (t) => {
  const r = await runCli(['config'], {
    env: {
      HARTONOMOUS_METRICS_PORT: '99999',
      SERVICEBUS_CONNECTION_STRING: 'Endpoint=https://x;SharedAccessKey=TOPSECRET',
      HARTONOMOUS_EMBEDDER: 'openai',
    },
  });
  t.is(r.code, 2);
  t.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  t.is(lines[0], 'error: invalid configuration:');
  t.is(lines.length, 4, r.stderr);
  t.true(
    lines.some((l) =>
      l.includes('HARTONOMOUS_METRICS_PORT (metrics.port): expected an integer from 0 to 65535'),
    ),
  );
  t.true(
    lines.some((l) => l.includes('SERVICEBUS_CONNECTION_STRING (serviceBus.connectionString)')),
  );
  t.true(lines.some((l) => l.includes('embedder.kind openai needs embedder.model')));
  t.false(r.stderr.includes('TOPSECRET'));
  // a long-running command refuses to start on it too
  const ingest = await runCli(['ingest', '.', '--data-dir', 'memory://'], {
    env: { HARTONOMOUS_METRICS_PORT: 'x' },
  });
  t.is(ingest.code, 2);
  t.regex(ingest.stderr, /HARTONOMOUS_METRICS_PORT \(metrics\.port\)/);
  t.is((await runCli(['config', 'extra'])).code, 2);
});

test('ingest with HARTONOMOUS_METRICS_PORT serves /metrics, /healthz and /readyz while it runs', async (t) => {
  const { dir, remove } = await tempDir('ops');
  t.teardown(remove);
  await writeCorpus(dir);
  const server = await startEmbeddingServer({ dimensions: 384, latencyMs: 120_000 });
  t.teardown(() => server.close());
  const abort = new AbortController();
  let url: string | undefined;
  let seen: { healthz: number; readyz: unknown; inFlight: number } | undefined;
  let probing: Promise<void> | undefined;
  const probe = async (): Promise<void> => {
    // wait until the embedding request is held: the ingest is in flight
    const deadline = Date.now() + 60_000;
    while (server.requests.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      const healthz = (await fetch(`${url}/healthz`)).status;
      const readyz = await (await fetch(`${url}/readyz`)).json();
      const samples = parsePrometheusText(await (await fetch(`${url}/metrics`)).text());
      seen = {
        healthz,
        readyz,
        inFlight: sumOf(samples, 'hartonomous_pipeline_items_in_flight'),
      };
    } finally {
      abort.abort();
    }
  };
  const r = await runCli(
    [
      'ingest',
      dir,
      '--data-dir',
      'memory://',
      '--embedder',
      'openai',
      '--embed-url',
      server.baseUrl,
      '--embed-model',
      'm',
      '--quiet',
    ],
    {
      env: { HARTONOMOUS_METRICS_PORT: '0', HARTONOMOUS_METRICS_HOST: '127.0.0.1' },
      signal: abort.signal,
      onStderr: (chunk) => {
        const m = /serving (http:\/\/\S+)\/metrics/.exec(chunk);
        if (m) {
          url = m[1];
          probing = probe();
        }
      },
    },
  );
  await probing;
  t.is(r.code, 130, r.stderr);
  t.truthy(url);
  t.is(seen?.healthz, 200);
  t.like(seen?.readyz, { status: 'ready', checks: { database: { ok: true } } });
  t.true((seen?.inFlight ?? 0) > 0);
  // the server is gone with the command
  await t.throwsAsync(fetch(`${url}/healthz`));
});
