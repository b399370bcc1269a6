import type { BatchObservableResult } from '@opentelemetry/api';
import { instruments, meterOf, type TelemetryOptions } from '../observability/telemetry.js';
import { type Database, stateOf } from '../postgres/database.js';

/**
 * Options of {@link observeDatabasePool}.
 *
 * @example
 * ```ts
 * import type { ObserveDatabasePoolOptions } from '@hartonomous/pipelines/ops';
 * const options: ObserveDatabasePoolOptions = { poolName: 'atoms-primary' };
 * ```
 */
export interface ObserveDatabasePoolOptions extends TelemetryOptions {
  /** `db.client.connection.pool.name`. @default `<backend>:<schema>`, e.g. `postgres:public` */
  poolName?: string;
}

/**
 * What {@link observeDatabasePool} returns.
 *
 * @example
 * ```ts
 * import type { DatabasePoolObserver } from '@hartonomous/pipelines/ops';
 * const done = (o: DatabasePoolObserver) => o.stop();
 * ```
 */
export interface DatabasePoolObserver {
  /** Removes the meter callback (idempotent); call it before closing the database. */
  stop(): void;
}

/** The tarn pool knex keeps its connections in. */
interface TarnPool {
  readonly max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

/**
 * Reports a database's connection pool with the OpenTelemetry database conventions, read
 * when the meter collects: `db.client.connection.count` (by `db.client.connection.state`:
 * `idle`, `used`), `db.client.connection.max` and `db.client.connection.pending_requests`.
 *
 * @param db - an open database
 * @param options - meter, pool name
 * @returns a handle whose `stop()` removes the callback (call it before closing the database)
 *
 * @example
 * ```ts
 * import { observeDatabasePool } from '@hartonomous/pipelines/ops';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const pool = observeDatabasePool(db);
 * // ... scrape /metrics: db_client_connection_count{db_client_connection_state="idle"} ...
 * pool.stop();
 * await db.close();
 * ```
 */
export function observeDatabasePool(
  db: Database,
  options: ObserveDatabasePoolOptions = {},
): DatabasePoolObserver {
  const state = stateOf(db);
  const pool = (state.knex?.client as { pool?: TarnPool } | undefined)?.pool;
  const poolName = options.poolName ?? `${state.backend}:${state.schema}`;
  const inst = instruments(options);
  const meter = meterOf(options);
  const name = { 'db.client.connection.pool.name': poolName };
  const idle = { ...name, 'db.client.connection.state': 'idle' };
  const used = { ...name, 'db.client.connection.state': 'used' };
  const gauges = [inst.dbConnectionCount, inst.dbConnectionMax, inst.dbConnectionPending];
  const observe = (result: BatchObservableResult): void => {
    if (state.closed || !pool) return;
    result.observe(inst.dbConnectionCount, pool.numFree(), idle);
    result.observe(inst.dbConnectionCount, pool.numUsed(), used);
    result.observe(inst.dbConnectionMax, pool.max, name);
    result.observe(inst.dbConnectionPending, pool.numPendingAcquires(), name);
  };
  meter.addBatchObservableCallback(observe, gauges);
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      meter.removeBatchObservableCallback(observe, gauges);
    },
  };
}
