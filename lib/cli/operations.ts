import type { loadConfig } from '../config/load-config.js';
import type { ReadinessCheck } from '../observability/operations-server.js';
import type { CliIo } from './cli-io.js';
import type { CommandName } from './parse-command-line.js';

/** Commands that run long enough to be scraped and probed. @internal */
export const LONG_RUNNING: ReadonlySet<CommandName> = new Set<CommandName>([
  'ingest',
  'sync',
  'reembed',
]);

const checksByRun = new WeakMap<CliIo, Record<string, ReadinessCheck>>();

/**
 * Adds a readiness check (e.g. `database`) to the operations server of this run, if one is
 * serving; otherwise does nothing.
 * @internal
 */
export function addReadinessCheck(io: CliIo, name: string, check: ReadinessCheck): void {
  const checks = checksByRun.get(io);
  if (checks) checks[name] = check;
}

/**
 * Runs a command; for a long-running one with `metrics.port` configured
 * (`HARTONOMOUS_METRICS_PORT`, or the file of `HARTONOMOUS_CONFIG`), first starts the
 * OpenTelemetry SDK (registered globally, so the command's pipelines report to it; OTLP when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and serves `/metrics`, `/healthz` and `/readyz` until
 * the command ends. `/readyz` is 503 until the command has opened its database (its check
 * `database` then pings it) and once the run is interrupted (draining).
 * A bad configuration prints one line per bad setting and returns 2.
 * @internal
 */
export async function withOperations(
  command: CommandName,
  io: CliIo,
  run: () => Promise<number>,
): Promise<number> {
  if (!LONG_RUNNING.has(command)) return run();
  // loaded here, not at the top: short commands (search, stats) do not pay for the config schema
  const { isConfigError, loadConfig } = await import('../config/load-config.js');
  let port: number | undefined;
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig({ env: io.env, ...(io.cwd ? { cwd: io.cwd } : {}) });
    port = loaded.config.metrics.port;
  } catch (e) {
    if (!isConfigError(e)) throw e;
    io.stderr.write(
      `error: invalid configuration:\n${e.problems.map((p) => `  ${p.message}\n`).join('')}`,
    );
    return 2;
  }
  if (port === undefined) return run();
  const { config } = loaded;
  const { startTelemetry } = await import('../observability/start-telemetry.js');
  const { serveOperations } = await import('../observability/operations-server.js');
  const telemetry = await startTelemetry({
    env: io.env,
    serviceName: config.otel.serviceName,
    exportIntervalMs: config.otel.exportIntervalMs,
    ...(config.otel.metricsExporter ? { metrics: config.otel.metricsExporter } : {}),
  });
  // not ready until the command opens its database and replaces this check with a ping
  const checks: Record<string, ReadinessCheck> = { database: () => false };
  let ops: Awaited<ReturnType<typeof serveOperations>> | undefined;
  try {
    ops = await serveOperations({
      port,
      host: config.metrics.host,
      telemetry,
      checks,
      draining: () => io.signal?.aborted === true,
    });
    checksByRun.set(io, checks);
    io.stderr.write(`serving ${ops.url}/metrics, /healthz and /readyz\n`);
    return await run();
  } finally {
    checksByRun.delete(io);
    await ops?.close();
    await telemetry.shutdown();
  }
}
