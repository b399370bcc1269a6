/**
 * Finishing the sagas crashed processes left open in `saga_log`: once (`resumeSagas`, e.g. at
 * startup) or as a service every worker process runs (`sagaRecovery`).
 *
 * @module
 */

import type { Counter, Meter } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { meterOf, type TelemetryOptions } from '../observability/telemetry.js';
import type { SagaStatus } from '../saga/log.js';
import {
  type ResumeOutcome,
  type ResumeSagaOptions,
  resumeSaga,
  type SagaRegistry,
} from '../saga/resume.js';
import type { Database } from './database.js';
import {
  postgresSagaLog,
  SagaRecord,
  type SagaRecordEntity,
  sagaOrm,
  toSnapshot,
} from './saga-log.js';

/**
 * Options of {@link resumeSagas}.
 *
 * @example
 * ```ts
 * import { retry } from '@hartonomous/pipelines';
 * import type { ResumeSagasOptions } from '@hartonomous/pipelines/postgres';
 *
 * const options: ResumeSagasOptions = { staleAfterMs: 5 * 60_000, limit: 500, compensationPolicy: [retry(3)] };
 * ```
 */
export interface ResumeSagasOptions extends Omit<ResumeSagaOptions, 'log' | 'signal'> {
  /**
   * A saga counts as abandoned when its row has not changed for this long, in ms. Its owner
   * writes on every step and sends heartbeats while a step runs (every `heartbeatMs` of the
   * saga), so set it well above the saga's `heartbeatMs` and, for transactional steps (which
   * send none), above the longest one. A live saga taken over has its running action aborted
   * at its next heartbeat.
   * @default 60_000
   */
  staleAfterMs?: number;
  /** Most sagas handled per call (oldest first); call again for more. @default 100 */
  limit?: number;
  /** Sagas finished at once. @default 1 */
  concurrency?: number;
  /** Also retry sagas that ended `'failed'` (a compensation failed). @default false */
  retryFailed?: boolean;
  /**
   * Cancels the search and stops starting new sagas (sagas already being finished go on to
   * their end: aborting a forward saga would compensate it). @default none
   */
  signal?: AbortSignal;
}

/**
 * Finishes the sagas a crashed (or killed) process left open: finds the `saga_log` rows of
 * registered sagas that are `'running'` or `'compensating'` and have not changed for
 * `staleAfterMs`, claims each through its version (another process resuming the same saga
 * gets `'conflict'` and skips it), then continues a forward saga from the step that was
 * running, or runs the remaining compensations of any other, latest first (see
 * {@link resumeSaga}). Call it at startup, after building the registry; {@link sagaRecovery}
 * calls it periodically. A saga whose resume throws (e.g. a recorded result its codec no longer
 * decodes, or the database failing) does not hold up the others: they are finished first, then
 * the call rejects with the first such error; that saga stays open.
 *
 * @param db - an open database
 * @param registry - the app's sagas, or `{ [sagaName]: { [stepName]: compensate } }`
 * @param options - staleness, batch size, concurrency, compensation policy
 * @returns what happened to each saga found (`'completed'`, `'compensated'`, `'failed'`, `'conflict'`, ...)
 * @throws the error of the first saga whose resume threw, once the others are finished
 *
 * @example
 * ```ts
 * import { saga } from '@hartonomous/pipelines';
 * import { openDatabase, postgresSagaLog, resumeSagas } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const order = saga(
 *   { name: 'order', log: postgresSagaLog(db), recovery: 'forward' },
 *   { name: 'reserve', action: (sku: string) => ({ sku, reserved: true }) },
 * );
 * const outcomes = await resumeSagas(db, [order], { staleAfterMs: 120_000 });
 * for (const o of outcomes) if (o.status === 'failed') console.error(o.sagaId, o.error?.notCompensated);
 * await db.close();
 * ```
 * @see {@link postgresSagaLog}, {@link sagaRecovery}
 */
export async function resumeSagas(
  db: Database,
  registry: SagaRegistry,
  options: ResumeSagasOptions = {},
): Promise<ResumeOutcome[]> {
  const errors: unknown[] = [];
  const outcomes = await resumeAbandoned(
    db,
    registry,
    options,
    () => undefined,
    (_row, e) => errors.push(e),
  );
  if (errors.length > 0) throw errors[0];
  return outcomes;
}

/**
 * One search for abandoned sagas and their resumes. A saga whose resume throws goes to
 * `onError` and the others go on (a poisoned row, met first by every pass as the oldest, must
 * not keep the rest open).
 */
async function resumeAbandoned(
  db: Database,
  registry: SagaRegistry,
  options: ResumeSagasOptions,
  onOutcome: (outcome: ResumeOutcome) => void,
  onError: (row: SagaRecordEntity, error: unknown) => void,
): Promise<ResumeOutcome[]> {
  const { staleAfterMs = 60_000, limit = 100, concurrency = 1, retryFailed = false } = options;
  const {
    signal,
    staleAfterMs: _s,
    limit: _l,
    concurrency: _c,
    retryFailed: _r,
    ...rest
  } = options;
  checkStale('resumeSagas', staleAfterMs);
  for (const [key, v] of [
    ['limit', limit],
    ['concurrency', concurrency],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new TypeError(`resumeSagas: ${key} must be a positive integer, got ${v}`);
    }
  }
  const names = namesOf(registry);
  if (names.length === 0) return [];
  signal?.throwIfAborted();
  const orm = sagaOrm(db);
  const statuses: SagaStatus[] = retryFailed
    ? ['running', 'compensating', 'failed']
    : ['running', 'compensating'];
  const rows = await orm.em.fork().find(
    SagaRecord,
    {
      name: { $in: names },
      status: { $in: statuses },
      updatedAt: { $lte: new Date(Date.now() - staleAfterMs) },
    },
    { orderBy: { updatedAt: 'asc' }, limit },
  );
  const log = postgresSagaLog(db);
  const outcomes: ResumeOutcome[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < rows.length) {
      signal?.throwIfAborted();
      const row = rows[next++] as SagaRecordEntity;
      let outcome: ResumeOutcome;
      try {
        outcome = await resumeSaga(toSnapshot(row), registry, { ...rest, log });
      } catch (e) {
        onError(row, e);
        continue;
      }
      outcomes.push(outcome);
      onOutcome(outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
  return outcomes;
}

function namesOf(registry: SagaRegistry): string[] {
  return Array.isArray(registry)
    ? registry.map((s: { name: string }) => s.name)
    : Object.keys(registry);
}

function checkStale(where: string, staleAfterMs: number): void {
  if (!(staleAfterMs >= 0) || !Number.isFinite(staleAfterMs)) {
    throw new TypeError(`${where}: staleAfterMs must be a finite number >= 0, got ${staleAfterMs}`);
  }
}

/**
 * Options of {@link sagaRecovery}.
 *
 * @example
 * ```ts
 * import type { SagaRecoveryOptions } from '@hartonomous/pipelines/postgres';
 * declare const options: SagaRecoveryOptions; // { db, sagas: [orderSaga], intervalMs: 10_000, staleAfterMs: 60_000 }
 * ```
 */
export interface SagaRecoveryOptions
  extends Omit<ResumeSagasOptions, 'signal' | 'logger'>,
    TelemetryOptions {
  /** The database whose `saga_log` is watched. */
  db: Database;
  /** The sagas this process can finish (their names select the rows it looks at). */
  sagas: SagaRegistry;
  /** Time between the end of one pass and the start of the next, in ms. @default 10_000 */
  intervalMs?: number;
  /** Stops the service (as `stop()`). @default none */
  signal?: AbortSignal;
  /** Logger for the catalog events (`saga.recovery_started`, `saga.recovered`, ...). @default a silent logger */
  logger?: Logger;
  /** Called with every saga a pass handled. Must not throw. @default none */
  onOutcome?: (outcome: ResumeOutcome) => void;
}

/**
 * Counts of what a {@link SagaRecovery} did since it started.
 *
 * @example
 * ```ts
 * import type { SagaRecoveryStats } from '@hartonomous/pipelines/postgres';
 * const line = (s: SagaRecoveryStats) => `${s.recovered} recovered, ${s.compensated} compensated, ${s.failed} failed`;
 * ```
 */
export interface SagaRecoveryStats {
  /** Passes finished (with or without sagas to recover). */
  readonly passes: number;
  /** Forward sagas continued to completion. */
  readonly recovered: number;
  /** Sagas compensated (backward sagas, and forward sagas that failed after resuming). */
  readonly compensated: number;
  /** Sagas whose compensation failed: they need attention. */
  readonly failed: number;
  /** Sagas another process claimed first (skipped here). */
  readonly conflicts: number;
  /**
   * Passes that failed (e.g. the database was unreachable), and sagas whose resume threw (the
   * pass goes on with the others); the next pass tries again.
   */
  readonly errors: number;
}

/**
 * A running saga recovery service.
 *
 * @example
 * ```ts
 * import type { SagaRecovery } from '@hartonomous/pipelines/postgres';
 * const report = (r: SagaRecovery) => console.log(r.stats);
 * ```
 */
export interface SagaRecovery {
  /** What it did so far (a fresh copy on each read). */
  readonly stats: SagaRecoveryStats;
  /**
   * Runs a pass now (after the current one, if one is running).
   * @returns the outcomes of that pass
   */
  runOnce(): Promise<ResumeOutcome[]>;
  /**
   * Stops: no pass starts any more; resolves when the pass in progress (sagas being finished
   * go on to their end) has ended. No timer or listener is left behind. Idempotent.
   * @returns when stopped
   */
  stop(): Promise<void>;
  /** Resolves once stopped (by `stop()` or the signal). */
  readonly stopped: Promise<void>;
}

const counters = new WeakMap<Meter, Counter>();

/**
 * Runs saga recovery in this process: a pass at once, then one every `intervalMs`, each
 * finishing the sagas abandoned for `staleAfterMs` (no state change and no heartbeat) with
 * {@link resumeSagas}: forward sagas continue, others are compensated. Run it in every worker
 * process: each abandoned saga is finished by exactly one of them (the first to claim it
 * through the version check; the others count a conflict). Metrics: the counter
 * `saga.recovery.sagas` with attribute `outcome` (`recovered`, `compensated`, `failed`,
 * `conflict`); logs: the `saga.recovery_*` and `saga.recovered` catalog events.
 *
 * @param options - the database, the sagas, the interval and staleness
 * @returns the service: its stats, `runOnce`, `stop`
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { saga } from '@hartonomous/pipelines';
 * import { openDatabase, postgresSagaLog, sagaRecovery } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const order = saga(
 *   { name: 'order', log: postgresSagaLog(db), recovery: 'forward', heartbeatMs: 5_000 },
 *   { name: 'reserve', action: (sku: string) => ({ sku, reserved: true }) },
 * );
 * const recovery = sagaRecovery({ db, sagas: [order], intervalMs: 10_000, staleAfterMs: 30_000 });
 * // ... on shutdown:
 * await recovery.stop();
 * console.log(recovery.stats);
 * await db.close();
 * ```
 * @see {@link resumeSagas}
 */
export function sagaRecovery(options: SagaRecoveryOptions): SagaRecovery {
  const {
    db,
    sagas,
    intervalMs = 10_000,
    staleAfterMs = 60_000,
    signal,
    logger = silentLogger(),
    onOutcome,
    meter: _meter,
    ...resumeOptions
  } = options ?? ({} as SagaRecoveryOptions);
  if (typeof db !== 'object' || db === null) {
    throw new TypeError('sagaRecovery: db must be an open Database');
  }
  if (typeof sagas !== 'object' || sagas === null) {
    throw new TypeError(
      'sagaRecovery: sagas must be an array of sagas or a record of compensations',
    );
  }
  if (!(Number.isFinite(intervalMs) && intervalMs > 0)) {
    throw new TypeError(`sagaRecovery: intervalMs must be a number > 0, got ${intervalMs}`);
  }
  checkStale('sagaRecovery', staleAfterMs);
  const meter = meterOf(options);
  let counter = counters.get(meter);
  if (!counter) {
    counter = meter.createCounter('saga.recovery.sagas', {
      description: 'Abandoned sagas handled by saga recovery, by outcome',
    });
    counters.set(meter, counter);
  }
  const sagaCounter = counter;

  const stats = { passes: 0, recovered: 0, compensated: 0, failed: 0, conflicts: 0, errors: 0 };
  const stopper = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let current: Promise<ResumeOutcome[]> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((resolve) => {
    resolveStopped = resolve;
  });

  const record = (outcome: ResumeOutcome): void => {
    const kind =
      outcome.status === 'completed'
        ? 'recovered'
        : outcome.status === 'compensated'
          ? 'compensated'
          : outcome.status === 'failed'
            ? 'failed'
            : outcome.status === 'conflict'
              ? 'conflict'
              : undefined;
    if (kind === undefined) return;
    if (kind === 'conflict') stats.conflicts++;
    else stats[kind]++;
    sagaCounter.add(1, { outcome: kind, 'saga.name': outcome.saga });
    if (kind !== 'conflict') {
      logEvent(logger, LogEvents.sagaRecovered, () => ({
        saga: outcome.saga,
        sagaId: outcome.sagaId,
        outcome: kind,
        compensated: outcome.compensated,
        notCompensated: outcome.notCompensated,
      }));
    }
    try {
      onOutcome?.(outcome);
    } catch (e) {
      setTimeout(() => {
        throw e;
      });
    }
  };

  const pass = async (): Promise<ResumeOutcome[]> => {
    try {
      return await resumeAbandoned(
        db,
        sagas,
        { ...resumeOptions, staleAfterMs, logger, signal: stopper.signal },
        record,
        (row, e) => {
          stats.errors++;
          logEvent(logger, LogEvents.sagaRecoveryFailed, () => ({
            saga: row.name,
            sagaId: row.id,
            err: e,
          }));
        },
      );
    } catch (e) {
      if (!stopper.signal.aborted) {
        stats.errors++;
        logEvent(logger, LogEvents.sagaRecoveryFailed, () => ({ err: e }));
      }
      return [];
    } finally {
      stats.passes++;
    }
  };

  const runOnce = (): Promise<ResumeOutcome[]> => {
    const after = current ?? Promise.resolve([]);
    const next = after.then(pass);
    current = next;
    void next.finally(() => {
      if (current === next) current = undefined;
    });
    return next;
  };

  const schedule = (): void => {
    if (stopper.signal.aborted) return;
    timer = setTimeout(() => {
      timer = undefined;
      void runOnce().then(schedule);
    }, intervalMs);
  };

  const stop = (): Promise<void> => {
    if (!stopper.signal.aborted) {
      stopper.abort();
      signal?.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
      timer = undefined;
      void (current ?? Promise.resolve()).then(() => {
        logEvent(logger, LogEvents.sagaRecoveryStopped, () => ({ ...stats }));
        resolveStopped();
      });
    }
    return stopped;
  };
  const onAbort = (): void => void stop();

  logEvent(logger, LogEvents.sagaRecoveryStarted, { intervalMs, staleAfterMs });
  if (signal?.aborted) {
    void stop();
  } else {
    signal?.addEventListener('abort', onAbort, { once: true });
    void runOnce().then(schedule);
  }
  return {
    get stats() {
      return { ...stats };
    },
    runOnce,
    stop,
    stopped,
  };
}
