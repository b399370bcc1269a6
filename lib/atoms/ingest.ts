import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { lastValueFrom, tap } from 'rxjs';
import { linkedController } from '../core/abort.js';
import { describeError } from '../core/errors.js';
import type { Outcome } from '../core/outcome.js';
import { type Pipeline, pipeline } from '../core/pipeline.js';
import type { Source } from '../core/source.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import type { TelemetryOptions } from '../observability/telemetry.js';
import { isDatabaseTimeoutError } from '../postgres/connection-errors.js';
import type { Database } from '../postgres/database.js';
import { isDatabaseUnavailableError } from '../postgres/errors.js';
import { releaseOwnerLeases } from './claim-leases.js';
import type { Embedder } from './embedder.js';
import type { HashNormalization } from './hash.js';
import {
  type AtomInput,
  confirmClaimedStep,
  dedupeStep,
  embedStep,
  type IngestResult,
  type IngestSettings,
  newRunState,
  persistStep,
  prepareStep,
} from './ingest-steps.js';
import { localEmbedder } from './local-embedder.js';
import { databaseNow } from './lookup-stored.js';
import { DEFAULT_MAX_CONTENT_BYTES } from './validate-content.js';

/**
 * Options of {@link ingestionPipeline} and {@link ingest}.
 *
 * @example
 * ```ts
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 * import type { IngestOptions } from '@hartonomous/pipelines/atoms';
 *
 * const options: IngestOptions = { db: await openDatabase({ dataDir: 'memory://' }), batchSize: 128 };
 * ```
 */
export interface IngestOptions extends TelemetryOptions {
  /** The database (`openDatabase`). */
  db: Database;
  /**
   * Turns text into vectors. Its `dimensions` must equal the database's.
   * @default the built-in local feature-hashing embedder, at the database's dimensions
   */
  embedder?: Embedder;
  /** Content normalisation before hashing (see `contentHash`). @default 'none' */
  normalize?: HashNormalization;
  /** Largest content accepted, in UTF-8 bytes. @default 1 MiB */
  maxContentBytes?: number;
  /** Items per dedupe, embed and persist batch (the embedder's own limits also apply). @default 256 */
  batchSize?: number;
  /** Longest wait for a batch to fill after its first item. @default 50 */
  batchTimeMs?: number;
  /** Batches of one step running at once. @default 2 */
  concurrency?: number;
  /** Embedding batches running at once. @default `concurrency` */
  embedConcurrency?: number;
  /** Who claims hashes (unique per process). @default `<hostname>:<pid>:<random>` */
  owner?: string;
  /**
   * @deprecated No effect: a claim now ends with its owner (its database session), so a dead
   * worker's content is taken over at once. Kept so existing options still compile.
   */
  claimStaleMs?: number;
  /**
   * How long an item whose content another live worker claimed waits for that worker to store
   * it (a worker that dies or gives up is taken over at once, without waiting this long).
   * Past it the item fails with `ClaimedElsewhereError` (transient: retry later). `0` reports
   * such items at once as duplicates (`duplicateOf: 'claimed'`) without checking, and a
   * repeat of content an earlier item of the run is still storing as `'batch'` without waiting
   * for that item's outcome (if it fails, the content is not stored by the repeat either):
   * safe only when nothing acknowledges work on the strength of the result.
   * @default 30000
   */
  claimedWaitMs?: number;
  /** Pino logger. @default a silent logger */
  logger?: Logger;
}

/**
 * The atom ingestion pipeline: hash → dedupe (in batch, against the database, claim) → embed
 * (batched) → persist (one transaction per batch, atoms and outbox rows together) → confirm
 * (content another worker claimed is reported only once it is stored). Stream it, extend it
 * with `append`, or use {@link ingest} for a report. An ok outcome means the content is stored:
 * a worker may acknowledge its message on it.
 *
 * @param options - database, embedder, batching
 * @returns a `Pipeline<AtomInput, IngestResult>`
 *
 * @example
 * ```ts
 * import { ingestionPipeline } from '@hartonomous/pipelines/atoms';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const atoms = ingestionPipeline({ db });
 * atoms.stream([{ content: 'hello' }, { content: 'hello' }]).subscribe((o) =>
 *   console.log(o.ok ? o.value.status : o.error),
 * );
 * ```
 */
export function ingestionPipeline(options: IngestOptions): Pipeline<AtomInput, IngestResult> {
  return buildPipeline(settingsOf(options), options);
}

function settingsOf(
  options: IngestOptions,
  onStepTime?: (step: string, ms: number) => void,
): IngestSettings {
  const db = options.db;
  if (typeof db !== 'object' || db === null)
    throw new TypeError('ingest: options.db must be an open Database');
  const embedder = options.embedder ?? localEmbedder(db.embeddingDimensions);
  if (embedder.dimensions !== db.embeddingDimensions) {
    throw new TypeError(
      `ingest: the embedder makes ${embedder.dimensions}-dimension vectors but the database stores ${db.embeddingDimensions}`,
    );
  }
  const batchSize = options.batchSize ?? 256;
  const batchTimeMs = options.batchTimeMs ?? 50;
  const maxContentBytes = options.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
  for (const [name, v] of [
    ['batchSize', batchSize],
    ['maxContentBytes', maxContentBytes],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      throw new TypeError(`ingest: ${name} must be a positive integer, got ${v}`);
  }
  if (!(batchTimeMs >= 0))
    throw new TypeError(`ingest: batchTimeMs must be >= 0, got ${batchTimeMs}`);
  const claimedWaitMs = options.claimedWaitMs ?? 30_000;
  if (!(claimedWaitMs >= 0)) {
    throw new TypeError(`ingest: claimedWaitMs must be >= 0, got ${claimedWaitMs}`);
  }
  return {
    db,
    embedder,
    owner: options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    normalize: options.normalize ?? 'none',
    maxContentBytes,
    batchSize,
    batchTimeMs,
    claimStaleMs: options.claimStaleMs,
    concurrency: options.concurrency ?? 2,
    embedConcurrency: options.embedConcurrency ?? options.concurrency ?? 2,
    onStepTime,
    claimedWaitMs,
    telemetry: options.meter ? { meter: options.meter } : {},
    run: newRunState(),
  };
}

function buildPipeline(
  settings: IngestSettings,
  options: IngestOptions,
): Pipeline<AtomInput, IngestResult> {
  const p = pipeline(
    {
      name: 'atom-ingestion',
      ...(options.logger ? { logger: options.logger } : {}),
      ...(options.tracer ? { tracer: options.tracer } : {}),
      ...(options.meter ? { meter: options.meter } : {}),
    },
    prepareStep(settings),
    dedupeStep(settings),
    embedStep(settings),
    persistStep(settings),
  );
  return settings.claimedWaitMs > 0 ? p.append(confirmClaimedStep(settings)) : p;
}

/** An item that failed, as reported by {@link ingest}. */
export interface IngestFailure {
  /** Position of the item in the source. */
  readonly index: number;
  /** The item's source id, if it had one. */
  readonly sourceId?: string;
  /** The step that failed: `hash`, `dedupe`, `embed` or `persist`. */
  readonly step: string;
  /** The error's name and code (e.g. `ContentTooLargeError`). */
  readonly error: string;
  /** Its message. */
  readonly message: string;
}

/** Progress of a running {@link ingest}, reported after every item. */
export interface IngestProgress {
  /** Items finished. */
  readonly processed: number;
  /** Of those, stored as new atoms. */
  readonly added: number;
  /** Of those, skipped as duplicates. */
  readonly duplicates: number;
  /** Of those, failed. */
  readonly failed: number;
  /** UTF-8 bytes of the items finished. */
  readonly bytes: number;
}

/**
 * The report of one {@link ingest} run.
 */
export interface IngestionReport extends IngestProgress {
  /**
   * Duplicates by reason: `batch` repeated inside this run, `stored` stored before the run,
   * `claimed` and `race` stored by another worker during the run (see `DuplicateOf`).
   * `processed = added + duplicates + failed`, and `added` is the rows this run inserted.
   */
  readonly duplicatesBy: Readonly<Record<'batch' | 'stored' | 'claimed' | 'race', number>>;
  /**
   * Items whose content another live worker held when this run met it (each waited for that
   * worker, or took the content over once it let go). 0 in a run of one process.
   */
  readonly claimWaits: number;
  /** Failed items with their reasons (at most `maxFailures`). */
  readonly failures: readonly IngestFailure[];
  /** Wall-clock duration of the run. */
  readonly durationMs: number;
  /** Time spent in each step, summed over items or batches (steps overlap). */
  readonly stepMs: Readonly<Record<string, number>>;
  /** `processed / durationMs`, per second. */
  readonly itemsPerSecond: number;
}

/**
 * Options of {@link ingest}.
 */
export interface IngestRunOptions extends IngestOptions {
  /** Cancels the run (in-flight items are aborted; the report covers what finished). */
  signal?: AbortSignal;
  /** Called after every item, for a progress bar. */
  onProgress?: (progress: IngestProgress) => void;
  /** Failures kept in the report (all are counted). @default 1000 */
  maxFailures?: number;
}

/**
 * Ingests a source of atoms and reports what happened: added, duplicates, failed (with
 * reasons), bytes and time per step. Failed items never stop the run; a re-run picks them up
 * and skips everything already stored. The one exception: when the database becomes
 * unreachable or stops answering the run stops and rejects with `DatabaseUnavailableError`
 * or `DatabaseTimeoutError` (every later item would fail the same way); what was committed stays committed, atoms always with their
 * outbox rows. When a run ends (also by `signal`), the claims it still holds are released so
 * a re-run stores those items. A cancelled run's report counts the items that finished; a
 * batch already being written when the signal fired may still commit, and a re-run then
 * counts it as duplicates.
 *
 * @param source - an Iterable, AsyncIterable or Observable of {@link AtomInput}
 * @param options - database, embedder, batching, progress
 * @returns the run's report
 *
 * @example
 * ```ts
 * import { ingest } from '@hartonomous/pipelines/atoms';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: '.data/pglite' });
 * const report = await ingest([{ content: 'a' }, { content: 'b' }, { content: 'a' }], { db });
 * console.log(report.added, report.duplicates, report.failed); // 2 1 0 on a fresh database
 * await db.close();
 * ```
 */
export async function ingest(
  source: Source<AtomInput>,
  options: IngestRunOptions,
): Promise<IngestionReport> {
  const stepMs: Record<string, number> = {
    hash: 0,
    dedupe: 0,
    embed: 0,
    persist: 0,
    'confirm-claimed': 0,
  };
  const settings = settingsOf(options, (s, ms) => {
    stepMs[s] = (stepMs[s] ?? 0) + ms;
  });
  const logger = options.logger ?? silentLogger();
  const maxFailures = options.maxFailures ?? 1000;
  const p = buildPipeline(settings, options);
  const counts = { processed: 0, added: 0, duplicates: 0, failed: 0, bytes: 0 };
  const duplicatesBy = { batch: 0, stored: 0, claimed: 0, race: 0 };
  const failures: IngestFailure[] = [];
  const started = performance.now();
  // a database that went away fails every later item: end the run with its error instead
  const { controller, dispose } = linkedController(options.signal);
  let fatal: unknown;
  logEvent(logger, LogEvents.ingestStarted, () => ({
    batchSize: settings.batchSize,
    owner: settings.owner,
  }));
  const record = (o: Outcome<AtomInput, IngestResult>): void => {
    counts.processed++;
    if (o.ok) {
      counts.bytes += o.value.byteSize;
      if (o.value.status === 'added') counts.added++;
      else {
        counts.duplicates++;
        if (o.value.duplicateOf) duplicatesBy[o.value.duplicateOf]++;
      }
    } else {
      counts.failed++;
      const cause = causeOf(o.error);
      if (
        (isDatabaseUnavailableError(cause) || isDatabaseTimeoutError(cause)) &&
        fatal === undefined
      ) {
        fatal = cause;
        controller.abort(cause);
      }
      const described = describeError(cause);
      logEvent(logger, LogEvents.ingestItemRejected, () => ({
        index: o.index,
        step: o.failedStep,
        err: described,
      }));
      if (failures.length < maxFailures) {
        const sourceId =
          typeof o.input === 'object' && o.input !== null ? o.input.sourceId : undefined;
        failures.push({
          index: o.index,
          ...(sourceId !== undefined ? { sourceId } : {}),
          step: o.failedStep,
          error: String(described.name),
          message: String(described.message),
        });
      }
    }
    options.onProgress?.({ ...counts });
  };
  try {
    // "stored before this run" means before this moment on the database's clock
    settings.run.startedAt = databaseNow(settings.db, controller.signal);
    await settings.run.startedAt;
    await lastValueFrom(
      p
        .stream(source, { concurrency: settings.concurrency ?? 2, signal: controller.signal })
        .pipe(tap(record)),
      { defaultValue: undefined },
    );
  } finally {
    dispose();
    // a cancelled or failed run leaves claims of items it will never finish: free them now
    await releaseOwnerLeases(settings.db, settings.owner).catch(() => undefined);
  }
  if (fatal !== undefined) {
    logEvent(logger, LogEvents.ingestCompleted, () => ({ ...counts, err: fatal }));
    throw fatal;
  }
  const durationMs = performance.now() - started;
  const report: IngestionReport = {
    ...counts,
    duplicatesBy,
    claimWaits: settings.run.claimWaits,
    failures,
    durationMs,
    stepMs,
    itemsPerSecond: counts.processed / (durationMs / 1000),
  };
  logEvent(logger, LogEvents.ingestCompleted, () => ({ ...counts, durationMs }));
  return report;
}

function causeOf(e: unknown): unknown {
  return typeof e === 'object' &&
    e !== null &&
    'code' in e &&
    (e as { code: unknown }).code === 'STEP_FAILED'
    ? (e as { cause?: unknown }).cause
    : e;
}
