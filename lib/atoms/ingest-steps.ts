import { sleep } from '../core/abort.js';
import { batchStep, type ItemFailure, itemFailure, type Step, step } from '../core/step.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import type { Database } from '../postgres/database.js';
import { claimHashes } from './claim-hashes.js';
import type { Embedder } from './embedder.js';
import {
  ClaimedElsewhereError,
  type InvalidEmbeddingError,
  isInvalidEmbeddingError,
} from './errors.js';
import { findExistingHashes } from './find-existing-hashes.js';
import { contentHash, type HashNormalization } from './hash.js';
import { isPartialEmbeddingError } from './item-errors.js';
import { persistWithFallback } from './persist-with-fallback.js';
import { releaseClaims } from './release-claims.js';
import { validateItem } from './validate-item.js';
import { validateVectors } from './validate-vector.js';

/**
 * One piece of content to ingest.
 *
 * @example
 * ```ts
 * import type { AtomInput } from '@hartonomous/pipelines/atoms';
 * const input: AtomInput = { content: 'Paris is the capital of France.', sourceId: 'facts.md#3' };
 * ```
 */
export interface AtomInput {
  /** Text, or UTF-8 bytes declared as text (invalid UTF-8 fails the item with `InvalidUtf8Error`). */
  readonly content: string | Uint8Array;
  /** MIME type. @default 'text/plain' */
  readonly contentType?: string;
  /** Where it came from (a file, a URL, a message id). @default null */
  readonly sourceId?: string;
  /** Any JSON object stored with the atom. @default {} */
  readonly metadata?: Record<string, unknown>;
}

/** Why an item was not stored as a new atom. */
export type DuplicateOf =
  /** an earlier item of the same batch has the same content */
  | 'batch'
  /** the atom is already stored */
  | 'stored'
  /** another worker had claimed the content; it has stored it since (or, with
   * `claimedWaitMs: 0`, is presumably storing it now) */
  | 'claimed'
  /** another worker stored it between our claim check and our insert */
  | 'race';

/** An input after validation and hashing. @internal */
export interface PreparedAtom {
  readonly hash: string;
  readonly content: string;
  readonly contentType: string;
  readonly byteSize: number;
  readonly sourceId: string | undefined;
  readonly metadata: Record<string, unknown> | undefined;
}

/** A prepared atom after the dedupe step: claimed (to embed and store) or a duplicate. @internal */
export interface CheckedAtom extends PreparedAtom {
  readonly duplicateOf: DuplicateOf | undefined;
}

/** A checked atom with its embedding (null for duplicates). @internal */
export interface EmbeddedAtom extends CheckedAtom {
  readonly embedding: Float32Array | null;
}

/**
 * What happened to one ingested item.
 *
 * @example
 * ```ts
 * import type { IngestResult } from '@hartonomous/pipelines/atoms';
 * const show = (r: IngestResult) => (r.status === 'added' ? `new atom ${r.id}` : `duplicate (${r.duplicateOf})`);
 * ```
 */
export interface IngestResult {
  /** SHA-256 of the (normalised) content, lowercase hex. */
  readonly hash: string;
  /** `'added'`: stored now, with its outbox event; `'duplicate'`: not stored again. */
  readonly status: 'added' | 'duplicate';
  /** For duplicates, why. */
  readonly duplicateOf?: DuplicateOf;
  /** For added atoms, the new row's id. */
  readonly id?: string;
  /** For added atoms, the id of the `atom.created` outbox row. */
  readonly outboxId?: string;
  /** UTF-8 size of the content. */
  readonly byteSize: number;
  /** The input's source id. */
  readonly sourceId?: string;
}

/** Settings of the ingestion steps. @internal */
export interface IngestSettings {
  readonly db: Database;
  readonly embedder: Embedder;
  readonly owner: string;
  readonly normalize: HashNormalization;
  readonly maxContentBytes: number;
  readonly batchSize: number;
  readonly batchTimeMs: number;
  readonly claimStaleMs: number | undefined;
  readonly concurrency: number | undefined;
  readonly embedConcurrency: number | undefined;
  readonly onStepTime: ((step: string, ms: number) => void) | undefined;
  readonly claimedWaitMs: number;
  /** Meter (and tracer) of the ingestion's own instruments, e.g. `hartonomous.atoms.added`. */
  readonly telemetry: TelemetryOptions;
}

function timed<T>(settings: IngestSettings, name: string, work: () => Promise<T>): Promise<T> {
  const report = settings.onStepTime;
  if (!report) return work();
  const start = performance.now();
  return work().finally(() => report(name, performance.now() - start));
}

/**
 * Step 1: validate every field of the input (`validateItem`) and hash the content.
 * @internal
 */
export function prepareStep(settings: IngestSettings): Step<AtomInput, PreparedAtom> {
  return step('hash', (input: AtomInput) => {
    const start = settings.onStepTime ? performance.now() : 0;
    // every field is checked here, so a field the database cannot store fails this item
    // alone instead of the persist batch it would join
    const item = validateItem(input, { maxContentBytes: settings.maxContentBytes });
    const prepared: PreparedAtom = {
      hash: contentHash(item.text, { normalize: settings.normalize }),
      content: item.text,
      contentType: item.contentType,
      byteSize: item.byteSize,
      sourceId: item.sourceId,
      metadata: item.metadata,
    };
    settings.onStepTime?.('hash', performance.now() - start);
    return prepared;
  });
}

/**
 * Step 2, per batch: duplicates inside the batch, then one lookup of the rest against the
 * database, then a claim on what is left so no other worker embeds the same content.
 * @internal
 */
export function dedupeStep(settings: IngestSettings): Step<PreparedAtom, CheckedAtom> {
  return batchStep(
    'dedupe',
    (atoms: PreparedAtom[], ctx) =>
      timed(settings, 'dedupe', async () => {
        const first = new Set<string>();
        const inBatch = atoms.map((a) => {
          if (first.has(a.hash)) return true;
          first.add(a.hash);
          return false;
        });
        const candidates = [...first];
        const stored = await findExistingHashes(settings.db, candidates, { signal: ctx.signal });
        const toClaim = candidates.filter((h) => !stored.has(h));
        const won = new Set(
          toClaim.length === 0
            ? []
            : await claimHashes(settings.db, toClaim, settings.owner, {
                signal: ctx.signal,
                ...(settings.claimStaleMs !== undefined
                  ? { staleAfterMs: settings.claimStaleMs }
                  : {}),
              }),
        );
        return atoms.map((a, i): CheckedAtom => {
          const duplicateOf: DuplicateOf | undefined = inBatch[i]
            ? 'batch'
            : stored.has(a.hash)
              ? 'stored'
              : won.has(a.hash)
                ? undefined
                : 'claimed';
          return { ...a, duplicateOf };
        });
      }),
    {
      size: settings.batchSize,
      timeMs: settings.batchTimeMs,
      ...(settings.concurrency !== undefined ? { concurrency: settings.concurrency } : {}),
    },
  );
}

/**
 * Step 3, per batch: embed the claimed atoms (duplicates pass through), validate every vector.
 * On failure the batch's claims are released, so a re-run picks the items up.
 * @internal
 */
export function embedStep(settings: IngestSettings): Step<CheckedAtom, EmbeddedAtom> {
  const { embedder } = settings;
  const size = Math.min(settings.batchSize, embedder.maxBatchSize ?? Number.POSITIVE_INFINITY);
  return batchStep(
    'embed',
    (atoms: CheckedAtom[], ctx) =>
      timed(settings, 'embed', async () => {
        const fresh = atoms.filter((a) => a.duplicateOf === undefined);
        if (fresh.length === 0) return atoms.map((a) => ({ ...a, embedding: null }));
        let vectors: readonly (Float32Array | InvalidEmbeddingError)[];
        try {
          vectors = await embedder.embed(
            fresh.map((a) => a.content),
            ctx.signal,
          );
        } catch (e) {
          // some inputs got no usable vector: those items fail, the others go on
          if (isPartialEmbeddingError(e) && e.results.length === fresh.length) {
            vectors = e.results;
          } else {
            await releaseQuietly(settings, fresh);
            throw e;
          }
        }
        // a wrong count fails the batch; a bad vector fails only its own item
        if (vectors.length !== fresh.length) {
          await releaseQuietly(settings, fresh);
          validateVectors(vectors, embedder.dimensions, fresh.length);
        }
        const byHash = new Map<string, Float32Array | unknown>();
        const rejected: CheckedAtom[] = [];
        fresh.forEach((a, i) => {
          const v = vectors[i];
          if (isInvalidEmbeddingError(v)) {
            byHash.set(a.hash, v);
            rejected.push(a);
            return;
          }
          try {
            validateVectors([v], embedder.dimensions, 1);
            byHash.set(a.hash, v);
          } catch (e) {
            byHash.set(a.hash, e);
            rejected.push(a);
          }
        });
        await releaseQuietly(settings, rejected);
        return atoms.map((a) => {
          if (a.duplicateOf !== undefined) return { ...a, embedding: null };
          const v = byHash.get(a.hash);
          return v instanceof Float32Array ? { ...a, embedding: v } : itemFailure(v);
        });
      }),
    {
      size,
      timeMs: settings.batchTimeMs,
      ...(embedder.maxBatchChars !== undefined
        ? {
            weight: (a: CheckedAtom) => (a.duplicateOf === undefined ? a.content.length : 0),
            maxWeight: embedder.maxBatchChars,
          }
        : {}),
      ...(settings.embedConcurrency !== undefined
        ? { concurrency: settings.embedConcurrency }
        : {}),
    },
  );
}

/**
 * Step 4, per batch: write the new atoms and their outbox rows in one transaction
 * (`ON CONFLICT DO NOTHING`), release the claims. A row the database refuses fails only its
 * own item (`persistWithFallback`).
 * @internal
 */
export function persistStep(settings: IngestSettings): Step<EmbeddedAtom, IngestResult> {
  return batchStep(
    'persist',
    (atoms: EmbeddedAtom[], ctx) =>
      timed(settings, 'persist', async () => {
        const fresh = atoms.filter((a) => a.duplicateOf === undefined);
        const stored = new Map<string, { id: string; outboxId: string }>();
        let rejected: ReadonlyMap<string, Error> = new Map();
        if (fresh.length > 0) {
          try {
            // a row the database refuses fails only its own item (the batch is bisected)
            const result = await persistWithFallback(
              settings.db,
              fresh.map((a) => ({
                hash: a.hash,
                content: a.content,
                contentType: a.contentType,
                byteSize: a.byteSize,
                embedding: a.embedding,
                embeddingModel: settings.embedder.model,
                sourceId: a.sourceId ?? null,
                metadata: a.metadata ?? {},
              })),
              { signal: ctx.signal },
            );
            for (const r of result.inserted) stored.set(r.hash, { id: r.id, outboxId: r.outboxId });
            instruments(settings.telemetry).atomsAdded.add(result.inserted.length);
            rejected = result.rejected;
            if (rejected.size > 0) {
              await releaseQuietly(
                settings,
                fresh.filter((a) => rejected.has(a.hash)),
              );
            }
          } catch (e) {
            await releaseQuietly(settings, fresh);
            throw e;
          }
        }
        return atoms.map((a): IngestResult | ItemFailure => {
          const refused = a.duplicateOf === undefined ? rejected.get(a.hash) : undefined;
          if (refused) return itemFailure(refused);
          const base = {
            hash: a.hash,
            byteSize: a.byteSize,
            ...(a.sourceId !== undefined ? { sourceId: a.sourceId } : {}),
          };
          if (a.duplicateOf !== undefined)
            return { ...base, status: 'duplicate', duplicateOf: a.duplicateOf };
          const row = stored.get(a.hash);
          return row
            ? { ...base, status: 'added', id: row.id, outboxId: row.outboxId }
            : { ...base, status: 'duplicate', duplicateOf: 'race' };
        });
      }),
    {
      size: settings.batchSize,
      timeMs: settings.batchTimeMs,
      ...(settings.concurrency !== undefined ? { concurrency: settings.concurrency } : {}),
    },
  );
}

async function releaseQuietly(
  settings: IngestSettings,
  atoms: readonly CheckedAtom[],
): Promise<void> {
  if (atoms.length === 0) return;
  try {
    await releaseClaims(
      settings.db,
      atoms.map((a) => a.hash),
      settings.owner,
    );
  } catch {
    // the claims go stale and are taken over after claimStaleMs
  }
}

/**
 * Step 5, per batch (when `claimedWaitMs` > 0): content another worker had claimed is only
 * reported once that worker has stored it. If it is not stored within `claimedWaitMs` (the
 * other worker is slow, or died holding the claim), the item fails with
 * `ClaimedElsewhereError`, a transient error: a broker redelivers the message, and a dead
 * worker's claim is taken over once it is stale. Without this step a worker could acknowledge
 * a message whose content is never stored.
 * @internal
 */
export function confirmClaimedStep(settings: IngestSettings): Step<IngestResult, IngestResult> {
  return batchStep(
    'confirm-claimed',
    (results: IngestResult[], ctx) =>
      timed(settings, 'confirm-claimed', async () => {
        let waiting = new Set(
          results.filter((r) => r.duplicateOf === 'claimed').map((r) => r.hash),
        );
        const started = Date.now();
        let pause = 20;
        while (waiting.size > 0) {
          const stored = await findExistingHashes(settings.db, [...waiting], {
            signal: ctx.signal,
          });
          waiting = new Set([...waiting].filter((h) => !stored.has(h)));
          const left = settings.claimedWaitMs - (Date.now() - started);
          if (waiting.size === 0 || left <= 0) break;
          await sleep(Math.min(pause, left), ctx.signal);
          pause = Math.min(pause * 2, 1_000);
        }
        const waitedMs = Date.now() - started;
        return results.map((r) =>
          waiting.has(r.hash) ? itemFailure(new ClaimedElsewhereError(r.hash, waitedMs)) : r,
        );
      }),
    { size: settings.batchSize, timeMs: settings.batchTimeMs },
  );
}
