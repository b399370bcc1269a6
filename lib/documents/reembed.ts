import { lastValueFrom } from 'rxjs';
import type { Embedder } from '../atoms/embedder.js';
import { isInvalidEmbeddingError } from '../atoms/errors.js';
import { isPartialEmbeddingError } from '../atoms/item-errors.js';
import { validateVectors } from '../atoms/validate-vector.js';
import { messageOf } from '../core/errors.js';
import { fromWork } from '../core/from-work.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import { type RetryOptions, retry } from '../operators/retry.js';
import { float32ByteaArray, pgvectorArray, textArray } from '../postgres/binary.js';
import {
  type Database,
  type DatabaseState,
  prepared,
  readyStateOf,
  withClient,
} from '../postgres/database.js';
import { ModelDimensionsError } from './model-errors.js';
import { type StoredAtom, streamAtoms } from './stream-atoms.js';

/**
 * Options of {@link reembed}. Its `meter` (else the global one) gets the counter
 * `hartonomous.reembed.atoms` (attributes `gen_ai.request.model`, `state`: `scanned`,
 * `embedded`, `skipped`, `failed`), with the same counts as the report.
 *
 * @example
 * ```ts
 * import { localEmbedder } from '@hartonomous/pipelines/atoms';
 * import type { ReembedOptions } from '@hartonomous/pipelines/documents';
 *
 * const options: ReembedOptions = {
 *   to: { ...localEmbedder(64), model: 'feature-hash-64' },
 *   collection: 'docs',
 *   batchSize: 32,
 *   onProgress: (p) => console.error(`${p.embedded} embedded`),
 * };
 * ```
 */
export interface ReembedOptions extends TelemetryOptions {
  /** The new model: its `model` names the vectors stored, at its `dimensions`. */
  to: Embedder;
  /** Only atoms with a vector of this model (the one being replaced). @default every atom */
  from?: string;
  /** Only atoms some document of this collection refers to. @default every atom */
  collection?: string;
  /** With `collection`: only the atoms of these documents. @default every document */
  documentIds?: readonly string[];
  /**
   * Atoms per `embed` call and per write (one transaction each: a crash loses at most one
   * batch). Capped by the embedder's `maxBatchSize`. @default 64
   */
  batchSize?: number;
  /**
   * Retries of an `embed` call and of a write, with the library's {@link retry} operator.
   * Bad vectors (an `InvalidEmbeddingError`, per input in a `PartialEmbeddingError`) are
   * not retried: those atoms fail, the rest goes on. @default 4 attempts, backoff from 200 ms
   */
  retry?: number | RetryOptions;
  /** Receives the counts after each batch is written; must not throw. @default none */
  onProgress?: (progress: ReembedProgress) => void;
  /**
   * Stops the job between (or during) batches; the promise rejects with the signal's reason.
   * What was written stays written and a later run goes on from there. @default none
   */
  signal?: AbortSignal;
}

/**
 * The counts of a {@link reembed} run so far, each equal to what happened in the database.
 *
 * @example
 * ```ts
 * import type { ReembedProgress } from '@hartonomous/pipelines/documents';
 * const line = (p: ReembedProgress) => `${p.embedded}/${p.scanned} embedded, ${p.failed} failed`;
 * ```
 */
export interface ReembedProgress {
  /** The model being filled. */
  readonly model: string;
  /** Atoms read that had no vector of the model. */
  readonly scanned: number;
  /** Vectors this run wrote (rows inserted into `atom_embeddings`). */
  readonly embedded: number;
  /**
   * Atoms embedded but not written: another run wrote their vector first, or the atom was
   * deleted meanwhile.
   */
  readonly skipped: number;
  /** Atoms whose vector the embedder could not give (bad vector). */
  readonly failed: number;
  /** Batches written. */
  readonly batches: number;
}

/**
 * One atom {@link reembed} could not embed.
 *
 * @example
 * ```ts
 * import type { ReembedFailure } from '@hartonomous/pipelines/documents';
 * const show = (f: ReembedFailure) => `atom ${f.atomId}: ${f.error}: ${f.message}`;
 * ```
 */
export interface ReembedFailure {
  /** Atom id. */
  readonly atomId: string;
  /** Content hash (lowercase hex). */
  readonly hash: string;
  /** The error's name, e.g. `InvalidEmbeddingError`. */
  readonly error: string;
  /** Its message. */
  readonly message: string;
}

/**
 * What a {@link reembed} run did: the final {@link ReembedProgress}, the model's dimensions,
 * and the failures.
 *
 * @example
 * ```ts
 * import type { ReembedReport } from '@hartonomous/pipelines/documents';
 * const done = (r: ReembedReport) => r.failed === 0;
 * ```
 */
export interface ReembedReport extends ReembedProgress {
  /** Dimensions of the model's vectors. */
  readonly dimensions: number;
  /** The atoms that failed, with their reasons (at most 1,000 listed; `failed` counts all). */
  readonly failures: readonly ReembedFailure[];
}

const MAX_LISTED_FAILURES = 1_000;

/**
 * Fills the vectors of a new embedding model for the atoms that have none yet: a resumable
 * background job. It reads the atoms with {@link streamAtoms} (keyset pages, `missingModel`:
 * only atoms still without a vector of `to.model`), embeds them in batches with `to`
 * (retried), and writes each batch to `atom_embeddings` in one statement (`ON CONFLICT DO
 * NOTHING`), reporting progress after each. The model is registered with its dimensions
 * (`embedding_models`) on the first run.
 *
 * Resumable: every batch commits on its own, so after a crash or a cancel a new run reads
 * only the atoms still missing a vector and embeds nothing twice (at most the one batch in
 * flight at the crash). Two runs at once are safe: each vector is stored once, the slower run
 * counts it as `skipped`.
 *
 * Ingestion keeps writing the primary vector (`atoms.embedding`); new atoms ingested after a
 * run are filled by the next run. Then switch the collection's default with
 * {@link setDefaultModel} and drop the old model's vectors with {@link dropModel}.
 *
 * @param db - an open database
 * @param options - the new model's embedder, the atoms concerned, batching, retries, progress,
 *   cancellation
 * @returns the report; its counts equal the rows written
 * @throws {@link ModelDimensionsError} when `to.dimensions` differ from the model's stored ones
 * @throws the embedder's or the database's error when retries are exhausted (what was written
 *   stays; run again to go on), or the signal's reason when cancelled
 *
 * @example
 * ```ts
 * import { localEmbedder } from '@hartonomous/pipelines/atoms';
 * import { reembed, setDefaultModel } from '@hartonomous/pipelines/documents';
 *
 * const to = { ...localEmbedder(64), model: 'feature-hash-64' };
 * const report = await reembed(db, { to, collection: 'docs', batchSize: 32 });
 * console.log(`${report.embedded} vectors written, ${report.failed} failed`);
 * await setDefaultModel(db, 'docs', to.model);
 * ```
 * @see {@link setDefaultModel}
 * @see {@link dropModel}
 */
export async function reembed(db: Database, options: ReembedOptions): Promise<ReembedReport> {
  const state = readyStateOf(db);
  const { to, signal } = options;
  if (typeof to !== 'object' || to === null || typeof to.embed !== 'function') {
    throw new TypeError('reembed: options.to must be an Embedder');
  }
  if (typeof to.model !== 'string' || to.model.length === 0) {
    throw new TypeError('reembed: options.to.model must be a non-empty string');
  }
  const dims = to.dimensions;
  if (!Number.isInteger(dims) || dims < 1 || dims > 16_000) {
    throw new TypeError(`reembed: to.dimensions must be an integer in 1..16000, got ${dims}`);
  }
  const batchSize = Math.min(options.batchSize ?? 64, to.maxBatchSize ?? Infinity);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TypeError(
      `reembed: batchSize must be a positive integer, got ${String(options.batchSize)}`,
    );
  }
  if (options.from !== undefined && typeof options.from !== 'string') {
    throw new TypeError('reembed: from must be a string');
  }
  const retryOptions = retryOptionsOf(options.retry, signal);
  signal?.throwIfAborted();
  await registerModel(state, to.model, dims, signal);

  const counts = { scanned: 0, embedded: 0, skipped: 0, failed: 0, batches: 0 };
  // hartonomous.reembed.atoms: the same counts as the report, by state
  const counter = instruments(options).reembedAtoms;
  const model = { 'gen_ai.request.model': to.model };
  const attributes = {
    scanned: { ...model, state: 'scanned' },
    embedded: { ...model, state: 'embedded' },
    skipped: { ...model, state: 'skipped' },
    failed: { ...model, state: 'failed' },
  };
  const count = (state: keyof typeof attributes, n: number): void => {
    if (n > 0) counter.add(n, attributes[state]);
  };
  const failures: ReembedFailure[] = [];
  const progress = (): ReembedProgress => ({ model: to.model, ...counts });
  const fail = (atom: StoredAtom, e: unknown): void => {
    counts.failed++;
    count('failed', 1);
    if (failures.length < MAX_LISTED_FAILURES) {
      failures.push({
        atomId: atom.id,
        hash: atom.hash,
        error: e instanceof Error ? e.name : typeof e,
        message: messageOf(e),
      });
    }
  };

  const runBatch = async (batch: StoredAtom[]): Promise<void> => {
    // scanned per batch: equal to the report's count at every progress event and at the end
    count('scanned', batch.length);
    const vectors = await embedBatch(to, batch, dims, retryOptions, signal);
    const good: StoredAtom[] = [];
    const goodVectors: Float32Array[] = [];
    batch.forEach((atom, i) => {
      const v = vectors[i]!;
      if (v instanceof Float32Array) {
        good.push(atom);
        goodVectors.push(v);
      } else fail(atom, v);
    });
    const inserted =
      good.length === 0
        ? 0
        : await lastValueFrom(
            fromWork(
              (attemptSignal) =>
                writeVectors(state, to.model, dims, good, goodVectors, attemptSignal),
              signal,
            ).pipe(retry<number>({ ...retryOptions, name: 'reembed.write' })),
          );
    counts.embedded += inserted;
    counts.skipped += good.length - inserted;
    count('embedded', inserted);
    count('skipped', good.length - inserted);
    counts.batches++;
    options.onProgress?.(progress());
  };

  let batch: StoredAtom[] = [];
  for await (const atom of streamAtoms(db, {
    ...(options.collection !== undefined ? { collection: options.collection } : {}),
    ...(options.documentIds !== undefined ? { documentIds: options.documentIds } : {}),
    ...(options.from !== undefined ? { model: options.from } : {}),
    missingModel: to.model,
    batchSize: Math.max(batchSize, 256),
    ...(signal ? { signal } : {}),
  })) {
    counts.scanned++;
    batch.push(atom);
    if (batch.length === batchSize) {
      await runBatch(batch);
      batch = [];
    }
  }
  if (batch.length > 0) await runBatch(batch);
  return { ...progress(), dimensions: dims, failures };
}

function retryOptionsOf(
  given: number | RetryOptions | undefined,
  signal: AbortSignal | undefined,
): RetryOptions {
  const base: RetryOptions =
    given === undefined
      ? { maxAttempts: 4 }
      : typeof given === 'number'
        ? { maxAttempts: given + 1 }
        : given;
  const handle = base.handle;
  return {
    ...base,
    // a bad vector is the embedder's answer, not a transient failure
    retryIf: (e, attempt) =>
      !isPartialEmbeddingError(e) &&
      !isInvalidEmbeddingError(e) &&
      (base.retryIf?.(e, attempt) ?? true),
    ...(handle !== undefined ? { handle } : {}),
    ...(signal ? { signal } : {}),
  };
}

/** Registers the model (first run) and checks its dimensions against the stored ones. */
async function registerModel(
  state: DatabaseState,
  model: string,
  dims: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  await withClient(state, signal, async (client) => {
    const q = state.qschema;
    await prepared(
      client,
      'register_model',
      `INSERT INTO ${q}.embedding_models (model, dimensions) VALUES ($1, $2)
ON CONFLICT (model) DO NOTHING`,
      [model, dims],
    );
    const { rows } = await prepared<{ dimensions: number }>(
      client,
      'embedding_model',
      `SELECT dimensions FROM ${q}.embedding_models WHERE model = $1`,
      [model],
    );
    const stored = Number(rows[0]?.dimensions);
    if (stored !== dims) throw new ModelDimensionsError(model, stored, dims);
    // primary vectors of the same model name are at the database's dimensions
    const primaryDims = state.settings!.embeddingDimensions;
    if (primaryDims !== dims) {
      const { rows: primary } = await prepared(
        client,
        'primary_model_exists',
        `SELECT 1 FROM ${q}.atoms WHERE embedding_model = $1 AND embedding IS NOT NULL LIMIT 1`,
        [model],
      );
      if (primary.length > 0) throw new ModelDimensionsError(model, primaryDims, dims);
    }
  });
}

/**
 * Embeds a batch (retried): per atom its vector, or the error why it has none (a bad vector
 * fails only its atom).
 */
async function embedBatch(
  to: Embedder,
  batch: readonly StoredAtom[],
  dims: number,
  retryOptions: RetryOptions,
  signal: AbortSignal | undefined,
): Promise<(Float32Array | unknown)[]> {
  const texts = batch.map((a) => a.content);
  let raw: readonly unknown[];
  try {
    raw = await lastValueFrom(
      fromWork((attemptSignal) => to.embed(texts, attemptSignal), signal).pipe(
        retry<Float32Array[]>({ ...retryOptions, name: 'reembed.embed' }),
      ),
    );
  } catch (e) {
    if (isPartialEmbeddingError(e) && e.results.length === batch.length) {
      return e.results.map((r) => (r instanceof Float32Array ? (validateOne(r, dims) ?? r) : r));
    }
    if (isInvalidEmbeddingError(e) && batch.length === 1) return [e];
    if (isInvalidEmbeddingError(e) && e.index >= 0 && e.index < batch.length) {
      // one bad input of a batch: embed the others one by one to tell them apart
      return Promise.all(
        texts.map((_, i) =>
          embedBatch(to, [batch[i]!], dims, retryOptions, signal).then((r) => r[0]),
        ),
      );
    }
    throw e;
  }
  if (raw.length !== batch.length) {
    // validateVectors names the count mismatch: the whole batch has no trustworthy vector
    validateVectors(raw, dims, batch.length);
  }
  return raw.map((v) => {
    try {
      return validateVectors([v], dims, 1)[0]!;
    } catch (e) {
      return e;
    }
  });
}

/** The error of a vector of the wrong shape, or undefined when it is fine. */
function validateOne(v: Float32Array, dims: number): unknown {
  try {
    validateVectors([v], dims, 1);
    return undefined;
  } catch (e) {
    return e;
  }
}

/**
 * Writes one batch of vectors; atoms deleted meanwhile are skipped (`FOR KEY SHARE` holds the
 * others until the insert commits), vectors another run wrote first are kept.
 * @returns rows inserted
 */
async function writeVectors(
  state: DatabaseState,
  model: string,
  dims: number,
  atoms: readonly StoredAtom[],
  vectors: readonly Float32Array[],
  signal: AbortSignal,
): Promise<number> {
  const pgvector = state.settings!.vectorStorage === 'pgvector';
  const q = state.qschema;
  const sql = `WITH live AS (
  SELECT id FROM ${q}.atoms WHERE id = ANY($1::text[]::bigint[]) FOR KEY SHARE
)
INSERT INTO ${q}.atom_embeddings (model, atom_id, dimensions, embedding)
SELECT $3, u.atom_id, $4, u.vec
FROM unnest($1::text[]::bigint[], $2::${pgvector ? 'vector' : 'bytea'}[]) AS u (atom_id, vec)
JOIN live ON live.id = u.atom_id
ON CONFLICT (model, atom_id) DO NOTHING`;
  const values = [
    textArray(atoms.map((a) => a.id)),
    pgvector ? pgvectorArray(state.vectorOid!, vectors) : float32ByteaArray(vectors),
    model,
    dims,
  ];
  const { rowCount } = await withClient(state, signal, (client) =>
    prepared(client, 'reembed_write', sql, values),
  );
  return rowCount ?? 0;
}
