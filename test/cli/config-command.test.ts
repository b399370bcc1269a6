import { rm } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { basename, join } from 'node:path';
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

interface Probed {
  readonly code: number;
  readonly stderr: string;
  readonly url: string | undefined;
  readonly healthz?: number;
  readonly readyz?: { status: number; body: unknown };
  readonly inFlight?: number;
  readonly reembedScanned?: number;
}

/**
 * Runs a CLI command with the operations server on a free port; once `heldUntil` resolves (or
 * at once), reads /healthz, /readyz and /metrics, then interrupts the command.
 */
async function probeWhileRunning(
  argv: readonly string[],
  heldUntil: () => Promise<void>,
): Promise<Probed> {
  const abort = new AbortController();
  let url: string | undefined;
  let seen: Omit<Probed, 'code' | 'stderr' | 'url'> = {};
  let probing: Promise<void> | undefined;
  const probe = async (): Promise<void> => {
    try {
      await heldUntil();
      const healthz = (await fetch(`${url}/healthz`)).status;
      const ready = await fetch(`${url}/readyz`);
      const readyz = { status: ready.status, body: await ready.json() };
      const samples = parsePrometheusText(await (await fetch(`${url}/metrics`)).text());
      seen = {
        healthz,
        readyz,
        inFlight: sumOf(samples, 'hartonomous_pipeline_items_in_flight'),
        reembedScanned: sumOf(samples, 'hartonomous_reembed_atoms_total', { state: 'scanned' }),
      };
    } finally {
      abort.abort();
    }
  };
  const r = await runCli(argv, {
    env: { HARTONOMOUS_METRICS_PORT: '0', HARTONOMOUS_METRICS_HOST: '127.0.0.1' },
    signal: abort.signal,
    onStderr: (chunk) => {
      const m = /serving (http:\/\/\S+)\/metrics/.exec(chunk);
      if (m) {
        url = m[1];
        probing = probe();
      }
    },
  });
  await probing;
  return { code: r.code, stderr: r.stderr, url, ...seen };
}

/** Resolves once the embedding server holds a request (the command is in flight). */
const requestHeld = (server: { requests: readonly unknown[] }) => async (): Promise<void> => {
  const deadline = Date.now() + 60_000;
  while (server.requests.length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('ingest, sync and reembed with HARTONOMOUS_METRICS_PORT serve /metrics, /healthz and /readyz while they run', async (t) => {
  const { dir, remove } = await tempDir('ops');
  t.teardown(remove);
  await writeCorpus(dir);
  const data = join(dir, '..', `${basename(dir)}-data`);
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const held = ['--embedder', 'openai', '--embed-model', 'm', '--quiet'];
  const commands: [string, string[]][] = [
    ['ingest', ['ingest', dir, '--data-dir', 'memory://']],
    ['sync', ['sync', dir, '--collection', 'kb', '--data-dir', 'memory://']],
    // reembed needs stored atoms: the folder is filled with the local embedder below
    ['reembed', ['reembed', '--to-model', 'm', '--data-dir', data]],
  ];
  const filled = await runCli(['ingest', dir, '--data-dir', data, '--quiet']);
  t.is(filled.code, 0, filled.stderr);
  for (const [name, argv] of commands) {
    const server = await startEmbeddingServer({ dimensions: 384, latencyMs: 120_000 });
    try {
      const r = await probeWhileRunning(
        [...argv, ...held, '--embed-url', server.baseUrl],
        requestHeld(server),
      );
      t.is(r.code, 130, `${name}: ${r.stderr}`);
      t.truthy(r.url, name);
      t.true(server.requests.length > 0, `${name}: an embedding request was held`);
      t.is(r.healthz, 200, name);
      t.is(r.readyz?.status, 200, name);
      t.like(r.readyz?.body, { status: 'ready', checks: { database: { ok: true } } }, name);
      // a pipeline's items in flight; reembed (no pipeline) counts the atoms it has read
      if (name === 'reembed') t.true((r.reembedScanned ?? 0) > 0, `${name}: atoms scanned`);
      else t.true((r.inFlight ?? 0) > 0, `${name}: items in flight`);
      // the server is gone with the command
      await t.throwsAsync(fetch(`${r.url}/healthz`), undefined, name);
    } finally {
      await server.close();
    }
  }
});

test('/readyz is 503 while the command has not opened its database', async (t) => {
  const { dir, remove } = await tempDir('ops-unready');
  t.teardown(remove);
  await writeCorpus(dir);
  // a server that accepts connections and never answers: the database never opens
  const sockets = new Set<Socket>();
  const silent = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const { port } = silent.address() as AddressInfo;
  const r = await probeWhileRunning(
    ['ingest', dir, '--db', `postgres://postgres@127.0.0.1:${port}/never`, '--quiet'],
    async () => undefined,
  );
  t.truthy(r.url);
  t.is(r.healthz, 200);
  t.is(r.readyz?.status, 503, JSON.stringify(r.readyz));
  t.like(r.readyz?.body, { status: 'not ready', checks: { database: { ok: false } } });
  t.not(r.code, 0);
});
