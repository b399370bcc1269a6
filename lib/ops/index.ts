/**
 * `@hartonomous/pipelines/ops`: running the library in production. Start the OpenTelemetry
 * SDK with a Prometheus or OTLP exporter ({@link startTelemetry}), serve `/metrics`,
 * `/healthz` and `/readyz` ({@link serveOperations}), check the database
 * ({@link pingDatabase}) and report its pool ({@link observeDatabasePool}).
 *
 * @example
 * ```ts
 * import { pingDatabase, serveOperations, startTelemetry } from '@hartonomous/pipelines/ops';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const telemetry = await startTelemetry({ global: false, env: {} });
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const ops = await serveOperations({
 *   port: 0,
 *   host: '127.0.0.1',
 *   telemetry,
 *   checks: { database: (signal) => pingDatabase(db, signal) },
 * });
 * console.log((await ops.readiness()).status); // 'ready'
 * await ops.close();
 * await db.close();
 * await telemetry.shutdown();
 * ```
 *
 * @module
 */

export {
  type CheckResult,
  type OperationsServer,
  type OperationsServerOptions,
  type Readiness,
  type ReadinessCheck,
  serveOperations,
} from '../observability/operations-server.js';
export {
  type MetricsExporterKind,
  type StartTelemetryOptions,
  startTelemetry,
  type Telemetry,
} from '../observability/start-telemetry.js';
export {
  type DatabasePoolObserver,
  type ObserveDatabasePoolOptions,
  observeDatabasePool,
} from './observe-database-pool.js';
export { pingDatabase } from './ping-database.js';
