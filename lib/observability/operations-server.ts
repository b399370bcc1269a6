import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Telemetry } from './start-telemetry.js';

/**
 * One readiness check: resolves (or returns) `true`/nothing when ready; `false`, a throw or a
 * rejection means not ready (the error message is shown in `/readyz`).
 *
 * @example
 * ```ts
 * import type { ReadinessCheck } from '@hartonomous/pipelines/ops';
 * const alwaysReady: ReadinessCheck = () => true;
 * ```
 */
export type ReadinessCheck = (
  signal: AbortSignal,
) => boolean | undefined | PromiseLike<boolean | undefined>;

/**
 * Options of {@link serveOperations}.
 *
 * @example
 * ```ts
 * import type { OperationsServerOptions } from '@hartonomous/pipelines/ops';
 *
 * const options: OperationsServerOptions = {
 *   port: 9464,
 *   checks: { cache: async () => true },
 *   draining: () => false,
 * };
 * ```
 */
export interface OperationsServerOptions {
  /** TCP port; 0 picks a free one. @default 9464 */
  port?: number;
  /** Interface to listen on. @default '0.0.0.0' */
  host?: string;
  /** The SDK whose Prometheus exporter answers `/metrics` (404 without one). @default none */
  telemetry?: Pick<Telemetry, 'handleMetrics'>;
  /**
   * Readiness checks by name (e.g. `database`, `broker`), each run on every `/readyz` request
   * (checks added to this object later are run too). @default {}
   */
  checks?: Record<string, ReadinessCheck>;
  /** True while the process is draining (stopping): `/readyz` then answers 503. @default never */
  draining?: () => boolean;
  /** Longest a check may take before it counts as failed, in ms. @default 2_000 */
  checkTimeoutMs?: number;
}

/** The result of one check in a `/readyz` answer. */
export interface CheckResult {
  /** Whether the check passed. */
  readonly ok: boolean;
  /** How long it took, in ms. */
  readonly ms: number;
  /** Why it failed. */
  readonly error?: string;
}

/** The body of a `/readyz` answer. */
export interface Readiness {
  /** `'ready'` (HTTP 200) or `'not ready'` (HTTP 503). */
  readonly status: 'ready' | 'not ready';
  /** Whether the process is draining. */
  readonly draining: boolean;
  /** Each check's result. */
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/**
 * The HTTP server {@link serveOperations} started.
 *
 * @example
 * ```ts
 * import { serveOperations, type OperationsServer } from '@hartonomous/pipelines/ops';
 * const ops: OperationsServer = await serveOperations({ port: 0, host: '127.0.0.1' });
 * console.log(`${ops.url}/healthz`);
 * await ops.close();
 * ```
 */
export interface OperationsServer {
  /** The base URL, e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  /** The port listened on. */
  readonly port: number;
  /**
   * Runs the readiness checks, as `/readyz` does.
   * @returns the readiness
   */
  readiness(): Promise<Readiness>;
  /**
   * Stops listening and closes open connections. Idempotent.
   * @returns when closed
   */
  close(): Promise<void>;
}

/**
 * Serves the operations endpoints of a process on one port: `/metrics` (the Prometheus
 * scrape of `telemetry`), `/healthz` (200 while the process answers: liveness) and `/readyz`
 * (200 when every check passes and the process is not draining, else 503; JSON body with each
 * check's result). `HEAD` works on each.
 *
 * @param options - port, host, the telemetry to expose, readiness checks, draining
 * @returns the listening server
 *
 * @example
 * ```ts
 * import { serveOperations, startTelemetry } from '@hartonomous/pipelines/ops';
 *
 * const telemetry = await startTelemetry({ global: false, env: {} });
 * let stopping = false;
 * const ops = await serveOperations({
 *   port: 0,
 *   host: '127.0.0.1',
 *   telemetry,
 *   checks: { config: () => true },
 *   draining: () => stopping,
 * });
 * const ready = await fetch(`${ops.url}/readyz`);
 * console.log(ready.status); // 200
 * stopping = true;
 * await ops.close();
 * await telemetry.shutdown();
 * ```
 * @see {@link startTelemetry}
 */
export async function serveOperations(
  options: OperationsServerOptions = {},
): Promise<OperationsServer> {
  const port = options.port ?? 9464;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) {
    throw new TypeError(`serveOperations: port must be an integer from 0 to 65535, got ${port}`);
  }
  const host = options.host ?? '0.0.0.0';
  const checkTimeoutMs = options.checkTimeoutMs ?? 2_000;
  if (!(checkTimeoutMs > 0)) {
    throw new TypeError(`serveOperations: checkTimeoutMs must be > 0, got ${checkTimeoutMs}`);
  }
  // read on every request: checks added to the object later are run too
  const checksNow = () => Object.entries(options.checks ?? {});
  for (const [name, check] of checksNow()) {
    if (typeof check !== 'function') {
      throw new TypeError(`serveOperations: check '${name}' must be a function`);
    }
  }
  const draining = options.draining ?? (() => false);

  const runCheck = async (check: ReadinessCheck): Promise<CheckResult> => {
    const start = performance.now();
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new Error(`timed out after ${checkTimeoutMs} ms`));
      }, checkTimeoutMs);
    });
    try {
      const ok = await Promise.race([Promise.resolve(check(controller.signal)), timedOut]);
      const ms = Math.round(performance.now() - start);
      return ok === false ? { ok: false, ms, error: 'check returned false' } : { ok: true, ms };
    } catch (e) {
      const ms = Math.round(performance.now() - start);
      return { ok: false, ms, error: e instanceof Error ? e.message : String(e) };
    } finally {
      clearTimeout(timer);
    }
  };

  const readiness = async (): Promise<Readiness> => {
    const isDraining = draining();
    const checks = checksNow();
    const results = await Promise.all(checks.map(([, check]) => runCheck(check)));
    const byName: Record<string, CheckResult> = {};
    checks.forEach(([name], i) => {
      byName[name] = results[i] as CheckResult;
    });
    const ok = !isDraining && results.every((r) => r.ok);
    return { status: ok ? 'ready' : 'not ready', draining: isDraining, checks: byName };
  };

  const send = (res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void => {
    const text = `${JSON.stringify(body)}\n`;
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(text),
    });
    res.end(req.method === 'HEAD' ? undefined : text);
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      const handle = options.telemetry?.handleMetrics;
      if (handle) handle(req, res);
      else
        send(res, req, 404, {
          error: 'no Prometheus exporter (metrics are pushed over OTLP or off)',
        });
      return;
    }
    if (path === '/healthz') {
      send(res, req, 200, { status: 'ok' });
      return;
    }
    if (path === '/readyz') {
      readiness().then(
        (r) => send(res, req, r.status === 'ready' ? 200 : 503, r),
        (e: unknown) => send(res, req, 500, { error: String(e) }),
      );
      return;
    }
    send(res, req, 404, { error: 'not found', endpoints: ['/metrics', '/healthz', '/readyz'] });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${bound}`,
    port: bound,
    readiness,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
