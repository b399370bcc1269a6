import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { lastValueFrom, toArray } from 'rxjs';
import type { Embedder } from '../atoms/embedder.js';
import { type IngestOptions, ingestionPipeline } from '../atoms/ingest.js';
import type { AtomInput, IngestResult } from '../atoms/ingest-steps.js';
import { LOCAL_EMBEDDER_MODEL } from '../atoms/local-embedder.js';
import { releaseOwnerClaims } from '../atoms/release-owner-claims.js';
import { retryConflicts } from '../atoms/store.js';
import { describeError } from '../core/errors.js';
import type { Outcome } from '../core/outcome.js';
import { LogEvents, logEvent } from '../observability/log-events.js';
import { silentLogger } from '../observability/logger.js';
import { textArray } from '../postgres/binary.js';
import { prepared, readyStateOf, withClient, withTransaction } from '../postgres/database.js';
import { isDatabaseUnavailableError } from '../postgres/errors.js';
import type { Chunker, CleanupMode, DocumentInput } from './document.js';
import { documentHash } from './document-hash.js';
import {
  ChunkerError,
  ChunkFailedError,
  DuplicateDocumentError,
  InvalidDocumentError,
} from './errors.js';
import { DefaultModelNotGivenError } from './model-errors.js';
import { paragraphChunker } from './paragraph-chunker.js';
import { reembed } from './reembed.js';
import { type DocumentKey, removeDocuments } from './remove-documents.js';
import { defaultModelOf } from './set-default-model.js';
import {
  type DocumentWrite,
  keyOf,
  MissingAtomsSignal,
  writeDocuments,
} from './write-documents.js';

/**
 * Options of {@link ingestDocuments}: those of `ingest` (database, embedder, batching of the
 * chunks, claims) plus the collection, the cleanup mode and the chunker.
 *
 * @example
 * ```ts
 * import type { IngestDocumentsOptions } from '@hartonomous/pipelines/documents';
 * const options: Omit<IngestDocumentsOptions, 'db'> = { collection: 'docs', cleanup: 'incremental' };
 * ```
 */
export interface IngestDocumentsOptions extends IngestOptions {
  /** The collection of documents that do not name their own. @default none: every document must name one */
  collection?: string;
  /** What to delete besides replacing chunk lists (see {@link CleanupMode}). @default 'none' */
  cleanup?: CleanupMode;
  /** Cuts a document into chunks. @default {@link paragraphChunker} */
  chunker?: Chunker;
  /** Documents read, looked up and written together (one lookup, one transaction). @default 256 */
  documentBatchSize?: number;
  /** Cancels the run after the batch in flight; no `'full'` cleanup then. @default none */
  signal?: AbortSignal;
  /** Called after every batch of documents. */
  onProgress?: (progress: DocumentSyncProgress) => void;
  /** Failures kept in the report (all are counted). @default 1000 */
  maxFailures?: number;
  /**
   * Embedders of other models, for collections whose default model (`setDefaultModel`) is not
   * the `embedder`'s: after each batch the atoms of that collection's documents get that
   * model's vector too (only the atoms still without one, as `reembed` does), so searches of
   * the collection find them. A document of such a collection whose default model is neither
   * the `embedder`'s nor one of these fails with `DefaultModelNotGivenError`. Unchanged
   * documents are filled too, so a later sync completes what an earlier one left out. A bad
   * vector fails only its atom (`modelVectorsFailed`); an embedder failure that outlasts
   * `reembed`'s retries rejects the run (what was written stays). @default none
   */
  models?: readonly Embedder[];
}

/**
 * Progress of a running {@link ingestDocuments}.
 *
 * @example
 * ```ts
 * import type { DocumentSyncProgress } from '@hartonomous/pipelines/documents';
 * const line = (p: DocumentSyncProgress) => `${p.processed} documents, ${p.atomsAdded} new atoms`;
 * ```
 */
export interface DocumentSyncProgress {
  /** Documents finished (added + changed + unchanged + failed). */
  readonly processed: number;
  /** Documents stored for the first time. */
  readonly added: number;
  /** Documents whose chunk list was replaced (content or metadata changed). */
  readonly changed: number;
  /** Documents already stored with the same hash: one lookup, nothing else. */
  readonly unchanged: number;
  /** Documents not written (the report says why); their stored version, if any, is kept. */
  readonly failed: number;
  /** Documents deleted by a `'full'` cleanup. */
  readonly deleted: number;
  /** Atoms this run inserted (rows). */
  readonly atomsAdded: number;
  /** Atoms this run deleted (rows). */
  readonly atomsDeleted: number;
  /**
   * Vectors of a collection's default model written for its atoms (side-table rows, through
   * `models`); 0 when no collection of the run has a default model other than the embedder's.
   */
  readonly modelVectorsAdded: number;
  /**
   * Atoms still without a vector of their collection's default model after the run (the
   * embedder of `models` failed on them, listed in `failures` with step `model`; the next sync
   * or `reembed` retries them).
   */
  readonly modelVectorsFailed: number;
}

/**
 * A document {@link ingestDocuments} did not write, and why.
 *
 * @example
 * ```ts
 * import type { DocumentSyncFailure } from '@hartonomous/pipelines/documents';
 * const show = (f: DocumentSyncFailure) => `${f.documentId ?? `#${f.index}`}: ${f.error}: ${f.message}`;
 * ```
 */
export interface DocumentSyncFailure {
  /** Position of the document in the source (-1 for step `model`: an atom's failure). */
  readonly index: number;
  /** Its collection, when known. */
  readonly collection?: string;
  /** Its id, when it had one. */
  readonly documentId?: string;
  /**
   * Where it failed: `validate`, `chunk`, `store` (a chunk's atom), `write`, or `model` (the
   * document is written, but some of its atoms got no vector of the collection's default
   * model; not counted in `failed`, but in `modelVectorsFailed`).
   */
  readonly step: 'validate' | 'chunk' | 'store' | 'write' | 'model';
  /** The error's name (e.g. `ChunkFailedError`). */
  readonly error: string;
  /** Its message. */
  readonly message: string;
}

/**
 * The report of one {@link ingestDocuments} run. Every count is what happened in the
 * database: `atomsAdded` rows inserted, `atomsDeleted` rows deleted, and so on.
 *
 * @example
 * ```ts
 * import type { DocumentSyncReport } from '@hartonomous/pipelines/documents';
 * const ok = (r: DocumentSyncReport) => r.failed === 0 && !r.interrupted;
 * ```
 */
export interface DocumentSyncReport extends DocumentSyncProgress {
  /** The cleanup mode of the run. */
  readonly cleanup: CleanupMode;
  /** Stopped early by the signal: no `'full'` cleanup ran. */
  readonly interrupted: boolean;
  /** Failed documents with reasons (at most `maxFailures`). */
  readonly failures: readonly DocumentSyncFailure[];
  /** Wall-clock duration. */
  readonly durationMs: number;
  /** `processed / durationMs`, per second. */
  readonly documentsPerSecond: number;
}

interface Pending {
  readonly index: number;
  readonly collection: string;
  readonly doc: DocumentInput;
  readonly metadata: Record<string, unknown>;
  readonly hash: string;
}

/**
 * Keeps a collection of documents in sync with the store. Each document is cut into chunks
 * (`chunker`); each distinct chunk is stored once as an atom through the ordinary ingestion
 * path (so deduplication, claims and `atom.created` events apply, and atoms are shared
 * between documents and collections); `document_chunks` records each document's atoms in
 * order. A document whose hash (content and metadata) is stored already costs one lookup per
 * batch: no chunking, no embedding, no write. A changed document gets its chunk list
 * replaced; with `cleanup: 'incremental'` the atoms of its old chunk list that no document of
 * any collection refers to any more are deleted; `'full'` also deletes the documents of the
 * run's collections that the run did not see (failed documents count as seen). Only atoms a
 * document sync stored are ever deleted: atoms stored with `ingest` stay.
 *
 * Every change writes its outbox events in its own transaction: `atom.created` with each new
 * atom, `document.upserted` with each document written, `document.deleted` and `atom.deleted`
 * with each deletion. Several processes may sync the same or overlapping document sets at
 * once: documents are locked in a fixed order, chunk atoms are locked against a concurrent
 * cleanup, and an atom deleted by another process meanwhile is stored again.
 *
 * @param source - documents: an Iterable or AsyncIterable of {@link DocumentInput}
 * @param options - database, collection, cleanup, chunker, embedder, progress, cancellation
 * @returns the run's report
 * @throws `DatabaseUnavailableError` when the database becomes unreachable (what was
 *   committed stays committed)
 *
 * @example
 * ```ts
 * import { ingestDocuments } from '@hartonomous/pipelines/documents';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase({ dataDir: 'memory://' });
 * const docs = [
 *   { id: 'a.md', content: 'Cats sleep.\n\nDogs bark.' },
 *   { id: 'b.md', content: 'Dogs bark.' },
 * ];
 * const first = await ingestDocuments(docs, { db, collection: 'pets', cleanup: 'full' });
 * console.log(first.added, first.atomsAdded); // 2 2
 * const again = await ingestDocuments(docs, { db, collection: 'pets', cleanup: 'full' });
 * console.log(again.unchanged); // 2
 * await db.close();
 * ```
 */
export async function ingestDocuments(
  source: Iterable<DocumentInput> | AsyncIterable<DocumentInput>,
  options: IngestDocumentsOptions,
): Promise<DocumentSyncReport> {
  const state = readyStateOf(options.db);
  const cleanup = options.cleanup ?? 'none';
  if (cleanup !== 'none' && cleanup !== 'incremental' && cleanup !== 'full') {
    throw new TypeError(
      `ingestDocuments: cleanup must be 'none', 'incremental' or 'full', got ${String(cleanup)}`,
    );
  }
  if (options.collection !== undefined && !validCollection(options.collection)) {
    throw new TypeError('ingestDocuments: collection must be a non-empty string');
  }
  const batchSize = options.documentBatchSize ?? 256;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new TypeError(
      `ingestDocuments: documentBatchSize must be a positive integer, got ${batchSize}`,
    );
  }
  const chunker = options.chunker ?? paragraphChunker;
  if (typeof chunker !== 'function')
    throw new TypeError('ingestDocuments: chunker must be a function');
  const maxFailures = options.maxFailures ?? 1000;
  const logger = options.logger ?? silentLogger();
  const owner = options.owner ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const atoms = ingestionPipeline({ ...options, owner });
  const { signal } = options;

  const counts = {
    processed: 0,
    added: 0,
    changed: 0,
    unchanged: 0,
    failed: 0,
    deleted: 0,
    atomsAdded: 0,
    atomsDeleted: 0,
    modelVectorsAdded: 0,
    modelVectorsFailed: 0,
  };
  const primaryModel = options.embedder?.model ?? LOCAL_EMBEDDER_MODEL;
  const modelEmbedders = new Map<string, Embedder>();
  for (const m of options.models ?? []) {
    if (typeof m?.model !== 'string' || typeof m.embed !== 'function') {
      throw new TypeError('ingestDocuments: models must be embedders (model, dimensions, embed)');
    }
    modelEmbedders.set(m.model, m);
  }
  // each collection's default model, looked up once per batch (null: none), so a default set
  // while the run goes on applies from the next batch
  const defaults = new Map<string, string | null>();
  const failures: DocumentSyncFailure[] = [];
  const seen = new Map<string, DocumentKey>();
  const collections = new Set<string>(options.collection === undefined ? [] : [options.collection]);
  const addedByRun = new Map<string, string>();
  const started = performance.now();
  let interrupted = false;

  const fail = (f: DocumentSyncFailure, cause: unknown): void => {
    counts.processed++;
    counts.failed++;
    logEvent(logger, LogEvents.documentRejected, () => ({
      index: f.index,
      documentId: f.documentId,
      step: f.step,
      err: describeError(cause),
    }));
    if (failures.length < maxFailures) failures.push(f);
  };
  const failWith = (p: Pending, step: DocumentSyncFailure['step'], cause: unknown): void => {
    const d = describeError(cause);
    fail(
      {
        index: p.index,
        collection: p.collection,
        documentId: p.doc.id,
        step,
        error: String(d.name),
        message: String(d.message),
      },
      cause,
    );
  };

  /** Stores chunk contents as atoms; returns the hash of each, or the failure. */
  const storeChunks = async (
    inputs: readonly AtomInput[],
  ): Promise<Outcome<AtomInput, IngestResult>[]> => {
    if (inputs.length === 0) return [];
    const outcomes = await lastValueFrom(
      atoms.stream(inputs, { ...(signal ? { signal } : {}) }).pipe(toArray()),
    );
    const byIndex: Outcome<AtomInput, IngestResult>[] = [];
    for (const o of outcomes) {
      byIndex[o.index] = o;
      if (o.ok && o.value.status === 'added' && o.value.id !== undefined) {
        counts.atomsAdded++;
        addedByRun.set(o.value.hash, o.value.id);
      } else if (!o.ok && isDatabaseUnavailableError(causeOf(o.error))) throw causeOf(o.error);
    }
    return byIndex;
  };

  const runBatch = async (
    batch: readonly { doc: DocumentInput; index: number }[],
  ): Promise<void> => {
    // 1. validate, hash, refuse repeats
    const pending: Pending[] = [];
    for (const { doc, index } of batch) {
      let p: Pending;
      try {
        p = prepare(doc, index, options.collection);
      } catch (e) {
        const d = describeError(e);
        const id =
          typeof doc === 'object' && doc !== null && typeof doc.id === 'string'
            ? doc.id
            : undefined;
        fail(
          {
            index,
            ...(id !== undefined ? { documentId: id } : {}),
            step: 'validate',
            error: String(d.name),
            message: String(d.message),
          },
          e,
        );
        continue;
      }
      const key = keyOf(p.collection, p.doc.id);
      if (seen.has(key)) {
        failWith(p, 'validate', new DuplicateDocumentError(p.collection, p.doc.id, index));
        continue;
      }
      seen.set(key, { collection: p.collection, id: p.doc.id });
      collections.add(p.collection);
      pending.push(p);
    }
    if (pending.length === 0) return;
    // a collection with a default model the run has no embedder for: its documents fail
    defaults.clear();
    for (const c of new Set(pending.map((p) => p.collection))) {
      defaults.set(c, (await defaultModelOf(options.db, c, signal ? { signal } : {})) ?? null);
    }
    const accepted = pending.filter((p) => {
      const model = defaults.get(p.collection);
      if (model == null || model === primaryModel || modelEmbedders.has(model)) return true;
      failWith(p, 'validate', new DefaultModelNotGivenError(p.collection, model));
      return false;
    });
    if (accepted.length === 0) return;
    await syncPending(accepted);
    if (!interrupted && !signal?.aborted) await fillDefaultModels(accepted);
  };

  /**
   * Gives the atoms of these documents a vector of their collection's default model where it
   * is not the embedder's (only atoms still without one).
   */
  const fillDefaultModels = async (docs: readonly Pending[]): Promise<void> => {
    const byCollection = new Map<string, Pending[]>();
    for (const p of docs) {
      const model = defaults.get(p.collection);
      if (model == null || model === primaryModel) continue;
      const list = byCollection.get(p.collection);
      if (list) list.push(p);
      else byCollection.set(p.collection, [p]);
    }
    for (const [collection, list] of byCollection) {
      const to = modelEmbedders.get(defaults.get(collection)!)!;
      let r: Awaited<ReturnType<typeof reembed>>;
      try {
        r = await reembed(options.db, {
          to,
          collection,
          documentIds: list.map((p) => p.doc.id),
          ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
          ...(signal ? { signal } : {}),
          ...(options.meter ? { meter: options.meter } : {}),
        });
      } catch (e) {
        // cancelled: what was written stays; the next sync or reembed fills the rest
        if (signal?.aborted) {
          interrupted = true;
          return;
        }
        throw e;
      }
      counts.modelVectorsAdded += r.embedded;
      counts.modelVectorsFailed += r.failed;
      for (const f of r.failures) {
        if (failures.length >= maxFailures) break;
        failures.push({
          index: -1,
          collection,
          step: 'model',
          error: f.error,
          message: `atom ${f.atomId} got no vector of '${to.model}': ${f.message}`,
        });
      }
    }
  };

  const syncPending = async (pending: readonly Pending[]): Promise<void> => {
    // 2. one lookup: which are stored with the same hash already
    const stored = await storedHashes(pending);
    const toSync: Pending[] = [];
    for (const p of pending) {
      if (stored.get(keyOf(p.collection, p.doc.id)) === p.hash) {
        counts.processed++;
        counts.unchanged++;
      } else toSync.push(p);
    }
    if (toSync.length === 0) return;

    // 3. chunk
    const chunked: { p: Pending; chunks: CutChunk[] }[] = [];
    for (const p of toSync) {
      try {
        chunked.push({ p, chunks: await chunksOf(chunker, p.doc) });
      } catch (e) {
        failWith(p, 'chunk', e);
      }
    }

    // 4. store every chunk as an atom (dedupe, claims, embedding, atom.created)
    const inputs: AtomInput[] = [];
    const firstInput: number[] = [];
    for (const { p, chunks } of chunked) {
      firstInput.push(inputs.length);
      chunks.forEach(({ content, headingPath }, position) => {
        inputs.push({
          content,
          sourceId: `${p.collection}/${p.doc.id}#${position}`,
          // where the chunk sits, as the chunker gave it (kept by the atom's first writer)
          metadata: headingPath
            ? { ...p.metadata, chunk: { documentId: p.doc.id, position, headingPath } }
            : p.metadata,
        });
      });
    }
    const outcomes = await storeChunks(inputs);
    if (signal?.aborted) {
      interrupted = true;
      return;
    }
    const contentOf = new Map<string, string>();
    let writes: { p: Pending; write: DocumentWrite }[] = [];
    chunked.forEach(({ p, chunks }, n) => {
      const hashes: string[] = [];
      for (let position = 0; position < chunks.length; position++) {
        const o = outcomes[firstInput[n]! + position];
        if (!o?.ok) {
          const cause = o ? causeOf(o.error) : new Error('no outcome');
          const d = describeError(cause);
          failWith(
            p,
            'store',
            new ChunkFailedError(
              p.doc.id,
              position,
              `${String(d.name)}: ${String(d.message)}`,
              cause,
            ),
          );
          return;
        }
        hashes.push(o.value.hash);
        contentOf.set(o.value.hash, chunks[position]!.content);
      }
      writes.push({
        p,
        write: {
          collection: p.collection,
          id: p.doc.id,
          hash: p.hash,
          metadata: p.metadata,
          chunkHashes: hashes,
        },
      });
    });

    // 5. write documents and chunk lists in one transaction; store again what a concurrent
    //    cleanup deleted meanwhile
    for (let attempt = 1; writes.length > 0; attempt++) {
      try {
        const result = await retryConflicts(() =>
          withTransaction(state, signal, (client) =>
            writeDocuments(
              client,
              state.qschema,
              writes.map((w) => w.write),
              addedByRun,
              cleanup,
            ),
          ),
        );
        counts.processed += writes.length;
        counts.added += result.added.length;
        counts.changed += result.changed.length;
        counts.unchanged += result.unchanged.length;
        counts.atomsDeleted += result.atomsDeleted.length;
        return;
      } catch (e) {
        if (!(e instanceof MissingAtomsSignal) || attempt >= 5) {
          if (isDatabaseUnavailableError(e) || signal?.aborted) throw e;
          for (const w of writes)
            failWith(
              w.p,
              'write',
              e instanceof MissingAtomsSignal
                ? new Error('chunk atoms kept being deleted by concurrent cleanups')
                : e,
            );
          return;
        }
        logEvent(logger, LogEvents.documentWriteRetried, () => ({
          attempt,
          missing: e.hashes.length,
        }));
        const again = await storeChunks(e.hashes.map((h) => ({ content: contentOf.get(h) ?? '' })));
        const lost = new Set(e.hashes.filter((_, i) => !again[i]?.ok));
        if (lost.size > 0) {
          const [kept, dropped] = partition(
            writes,
            (w) => !w.write.chunkHashes.some((h) => lost.has(h)),
          );
          for (const w of dropped)
            failWith(w.p, 'store', new Error('a chunk could not be stored again'));
          writes = kept;
        }
      }
    }
  };

  const storedHashes = async (pending: readonly Pending[]): Promise<Map<string, string>> => {
    const { rows } = await withClient(state, signal, (client) =>
      prepared<{ collection: string; document_id: string; hash: string }>(
        client,
        'document_hashes',
        `SELECT d.collection, d.document_id, encode(d.document_hash, 'hex') AS hash
FROM ${state.qschema}.documents d
JOIN unnest($1::text[], $2::text[]) AS k(collection, document_id)
  ON d.collection = k.collection AND d.document_id = k.document_id`,
        [textArray(pending.map((p) => p.collection)), textArray(pending.map((p) => p.doc.id))],
      ),
    );
    return new Map(rows.map((r) => [keyOf(r.collection, r.document_id), r.hash]));
  };

  logEvent(logger, LogEvents.documentsSyncStarted, () => ({ cleanup, owner }));
  try {
    let batch: { doc: DocumentInput; index: number }[] = [];
    let index = 0;
    for await (const doc of source) {
      batch.push({ doc, index: index++ });
      if (batch.length >= batchSize) {
        await runBatch(batch);
        batch = [];
        options.onProgress?.({ ...counts });
        if (signal?.aborted || interrupted) break;
      }
    }
    if (batch.length > 0 && !(signal?.aborted || interrupted)) {
      await runBatch(batch);
      options.onProgress?.({ ...counts });
    }
    interrupted ||= signal?.aborted === true;
    if (cleanup === 'full' && !interrupted) {
      for (const collection of collections) {
        const gone = await deleteUnseen(state, collection, seen, signal);
        counts.deleted += gone.documents;
        counts.atomsDeleted += gone.atoms;
      }
      options.onProgress?.({ ...counts });
    }
  } finally {
    await releaseOwnerClaims(options.db, owner).catch(() => undefined);
  }
  const durationMs = performance.now() - started;
  logEvent(logger, LogEvents.documentsSyncCompleted, () => ({ ...counts, durationMs }));
  return {
    ...counts,
    cleanup,
    interrupted,
    failures,
    durationMs,
    documentsPerSecond: counts.processed / (durationMs / 1000),
  };
}

/** Documents read per page by the `'full'` cleanup. @internal */
export const FULL_CLEANUP_PAGE = 500;

/** Deletes, page by page, the documents of a collection that the run did not see. */
async function deleteUnseen(
  state: ReturnType<typeof readyStateOf>,
  collection: string,
  seen: ReadonlyMap<string, DocumentKey>,
  signal: AbortSignal | undefined,
): Promise<{ documents: number; atoms: number }> {
  let after = '0';
  const total = { documents: 0, atoms: 0 };
  for (;;) {
    const { rows } = await withClient(state, signal, (client) =>
      prepared<{ id: string; document_id: string }>(
        client,
        'document_page',
        // order by the bigint column (d.id), never by the text alias (where '10' < '9')
        `SELECT d.id::text AS id, d.document_id FROM ${state.qschema}.documents d
WHERE d.collection = $1 AND d.id > $2::bigint ORDER BY d.id LIMIT ${FULL_CLEANUP_PAGE}`,
        [collection, after],
      ),
    );
    if (rows.length === 0) return total;
    after = rows.at(-1)!.id;
    const unseen = rows
      .filter((r) => !seen.has(keyOf(collection, r.document_id)))
      .map((r) => ({ collection, id: r.document_id }));
    if (unseen.length > 0) {
      const gone = await retryConflicts(() =>
        withTransaction(state, signal, (client) => removeDocuments(client, state.qschema, unseen)),
      );
      total.documents += gone.documents.length;
      total.atoms += gone.atomIds.length;
    }
  }
}

function prepare(doc: DocumentInput, index: number, collection: string | undefined): Pending {
  if (typeof doc !== 'object' || doc === null) {
    throw new InvalidDocumentError(index, 'document', 'is not an object');
  }
  if (typeof doc.id !== 'string' || doc.id.length === 0) {
    throw new InvalidDocumentError(index, 'id', 'must be a non-empty string');
  }
  if (typeof doc.content !== 'string') {
    throw new InvalidDocumentError(index, 'content', 'must be a string');
  }
  const metadata = doc.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new InvalidDocumentError(index, 'metadata', 'must be a plain object');
  }
  const c = doc.collection ?? collection;
  if (c === undefined || !validCollection(c)) {
    throw new InvalidDocumentError(
      index,
      'collection',
      c === undefined
        ? 'is missing (give the run a collection option)'
        : 'must be a non-empty string',
    );
  }
  let hash: string;
  try {
    hash = documentHash(doc.content, metadata);
  } catch (e) {
    throw new InvalidDocumentError(
      index,
      'metadata',
      `cannot be serialised: ${describeError(e).message}`,
    );
  }
  return { index, collection: c, doc, metadata, hash };
}

function validCollection(c: unknown): c is string {
  return typeof c === 'string' && c.length > 0;
}

/** A chunk as the sync stores it: its text, and the heading path when the chunker gave one. */
interface CutChunk {
  readonly content: string;
  /** From a chunker of `@hartonomous/pipelines/chunking` (an object with `headingPath`). */
  readonly headingPath?: readonly string[];
}

async function chunksOf(chunker: Chunker, doc: DocumentInput): Promise<CutChunk[]> {
  let produced: unknown;
  try {
    produced = await chunker(doc);
  } catch (e) {
    throw new ChunkerError(doc.id, `it threw: ${describeError(e).message}`, e);
  }
  if (typeof produced !== 'object' || produced === null || !(Symbol.iterator in produced)) {
    throw new ChunkerError(
      doc.id,
      `it returned ${produced === null ? 'null' : typeof produced}, not a list of chunks`,
    );
  }
  const chunks: CutChunk[] = [];
  for (const c of produced as Iterable<unknown>) {
    if (typeof c === 'string') {
      chunks.push({ content: c });
      continue;
    }
    const text =
      typeof c === 'object' &&
      c !== null &&
      typeof (c as { content?: unknown }).content === 'string'
        ? (c as { content: string }).content
        : undefined;
    if (text === undefined) {
      throw new ChunkerError(
        doc.id,
        `chunk ${chunks.length} is neither a string nor an object with a string content`,
      );
    }
    const path = (c as { headingPath?: unknown }).headingPath;
    chunks.push(
      Array.isArray(path) && path.every((h) => typeof h === 'string')
        ? { content: text, headingPath: path as string[] }
        : { content: text },
    );
  }
  return chunks;
}

function partition<T>(list: readonly T[], keep: (t: T) => boolean): [T[], T[]] {
  const yes: T[] = [];
  const no: T[] = [];
  for (const t of list) (keep(t) ? yes : no).push(t);
  return [yes, no];
}

function causeOf(e: unknown): unknown {
  return typeof e === 'object' &&
    e !== null &&
    'code' in e &&
    (e as { code: unknown }).code === 'STEP_FAILED'
    ? (e as { cause?: unknown }).cause
    : e;
}
