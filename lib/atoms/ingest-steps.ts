import { sleep } from '../core/abort.js';
import { batchStep, type ItemFailure, itemFailure, type Step, step } from '../core/step.js';
import { instruments, type TelemetryOptions } from '../observability/telemetry.js';
import type { Database } from '../postgres/database.js';
import { leaseHashes, releaseLeases } from './claim-leases.js';
import type { Embedder } from './embedder.js';
import {
  ClaimedElsewhereError,
  type InvalidEmbeddingError,
  isInvalidEmbeddingError,
} from './errors.js';
import { contentHash, type HashNormalization } from './hash.js';
import { isPartialEmbeddingError } from './item-errors.js';
import { databaseNow, lookupStored } from './lookup-stored.js';
import { persistWithFallback } from './persist-with-fallback.js';
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

/**
 * Why an item was not stored as a new atom. In a run of one process only `'batch'` and
 * `'stored'` occur; `'claimed'` and `'race'` name content another process (or another run in
 * this process) stored while this run went on.
 */
export type DuplicateOf =
  /** repeated inside this run: an earlier item of the run has the same content (the run
   * stores it once; that item's outcome stands for this one) */
  | 'batch'
  /** already stored before this run started */
  | 'stored'
  /** another worker held the claim on the content and has stored it (or, with
   * `claimedWaitMs: 0`, is presumably storing it now) */
  | 'claimed'
  /** stored by another worker during this run, without this run waiting on its claim */
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
  /** What this run (this pipeline instance) has claimed and stored. */
  readonly run: IngestRunState;
}

/**
 * What one run knows about its own work, so each content is claimed, embedded and counted once
 * per run however its items are batched. Memory: one entry per atom the run adds.
 * @internal
 */
export interface IngestRunState {
  /** Hashes this run is storing now (leased, not yet persisted or failed). */
  readonly inFlight: Set<string>;
  /** Hashes this run has stored. */
  readonly added: Set<string>;
  /** Content another owner held when this run met it, waiting in the confirm step. */
  readonly pending: Map<string, { atom: PreparedAtom; waiters: number }>;
  /**
   * Repeats of content an earlier item of this run was still storing when they met it: they
   * wait in the confirm step for that item, and store the content themselves if it failed.
   */
  readonly repeats: Map<string, { atom: PreparedAtom; waiters: number }>;
  /** The database clock when the run started (before its first insert). */
  startedAt: Promise<string> | undefined;
  /** Items that found their content claimed by another live owner. */
  claimWaits: number;
  /** Stream signals already watched (see `dedupeStep`). */
  readonly watched: WeakSet<AbortSignal>;
}

/** A fresh run state. @internal */
export function newRunState(): IngestRunState {
  return {
    inFlight: new Set(),
    added: new Set(),
    pending: new Map(),
    repeats: new Map(),
    startedAt: undefined,
    claimWaits: 0,
    watched: new WeakSet(),
  };
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
 * Step 2, per batch: repeats of content this run already stores or stored (`'batch'`), then one
 * lookup of the rest against the database (`'stored'` before the run, `'race'` since), then a
 * lease on what is left so no other worker (or batch) embeds the same content; content another
 * live worker holds is `'claimed'` and waits in the confirm step.
 * @internal
 */
export function dedupeStep(settings: IngestSettings): Step<PreparedAtom, CheckedAtom> {
  const { run, db, owner } = settings;
  return batchStep(
    'dedupe',
    (atoms: PreparedAtom[], ctx) =>
      timed(settings, 'dedupe', async () => {
        // A cancelled stream may leave leased items between steps, where no step sees them
        // fail: free what the run holds when its stream's signal aborts.
        const streamSignal = ctx.items[0]?.signal;
        if (streamSignal && !run.watched.has(streamSignal)) {
          run.watched.add(streamSignal);
          streamSignal.addEventListener(
            'abort',
            () => {
              const held = [...run.inFlight];
              run.inFlight.clear();
              void releaseLeases(db, held, owner).catch(() => undefined);
            },
            { once: true },
          );
        }
        const decided = new Map<string, DuplicateOf | undefined>();
        const mine: string[] = [];
        // content an earlier batch of the run is still storing: its fate is still open
        const open = new Set<string>();
        // Synchronously, before any await, so concurrent batches of the run see each other.
        for (const a of atoms) {
          if (decided.has(a.hash)) continue;
          if (run.added.has(a.hash)) decided.set(a.hash, 'batch');
          else if (run.inFlight.has(a.hash)) {
            decided.set(a.hash, 'batch');
            open.add(a.hash);
          } else {
            decided.set(a.hash, undefined);
            run.inFlight.add(a.hash);
            mine.push(a.hash);
          }
        }
        let leased: string[] = [];
        try {
          run.startedAt ??= databaseNow(db, ctx.signal);
          const since = await run.startedAt.catch((e: unknown) => {
            run.startedAt = undefined;
            throw e;
          });
          const stored = await lookupStored(db, mine, since, ctx.signal);
          const rest = mine.filter((h) => !stored.has(h));
          for (const [h, during] of stored) decided.set(h, during ? 'race' : 'stored');
          const lease = await leaseHashes(db, rest, owner);
          leased = lease.won;
          for (const h of lease.heldElsewhere) decided.set(h, 'claimed');
          for (const h of lease.heldByOwner) decided.set(h, 'batch');
          // Stored by another worker between the lookup and the lease: its claim was gone by
          // then, so a fresh look (after the lease) sees its commit.
          const late = await lookupStored(db, leased, since, ctx.signal);
          for (const h of late.keys()) decided.set(h, 'race');
          if (late.size > 0) {
            await releaseLeases(db, late.keys(), owner);
            leased = leased.filter((h) => !late.has(h));
          }
        } catch (e) {
          for (const h of mine) run.inFlight.delete(h);
          await releaseLeases(db, leased, owner);
          throw e;
        }
        for (const h of mine) if (decided.get(h) !== undefined) run.inFlight.delete(h);
        const seen = new Set<string>();
        return atoms.map((a): CheckedAtom => {
          const first = !seen.has(a.hash);
          seen.add(a.hash);
          const duplicateOf = first ? decided.get(a.hash) : 'batch';
          // A repeat of content this run is storing stands for that item only once it is
          // stored: until then it waits in the confirm step, and stores the content itself
          // (with its own fields) if that item fails, so an ok outcome always means stored.
          if (
            duplicateOf === 'batch' &&
            settings.claimedWaitMs > 0 &&
            (open.has(a.hash) || (!first && decided.get(a.hash) === undefined))
          ) {
            const entry = run.repeats.get(a.hash);
            if (entry) entry.waiters++;
            else run.repeats.set(a.hash, { atom: a, waiters: 1 });
          }
          if (duplicateOf === 'claimed') {
            run.claimWaits++;
            if (settings.claimedWaitMs > 0) {
              const entry = run.pending.get(a.hash);
              if (entry) entry.waiters++;
              else run.pending.set(a.hash, { atom: a, waiters: 1 });
            }
          }
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
          } catch (e) {
            await releaseQuietly(settings, fresh);
            throw e;
          }
          for (const a of fresh) if (stored.has(a.hash)) settings.run.added.add(a.hash);
          // committed: the leases can go (the atoms now speak for themselves)
          await releaseQuietly(settings, fresh);
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

/** The run gives up content it could not store: a later item or worker may try again. */
async function releaseQuietly(
  settings: IngestSettings,
  atoms: readonly CheckedAtom[],
): Promise<void> {
  if (atoms.length === 0) return;
  for (const a of atoms) settings.run.inFlight.delete(a.hash);
  await releaseLeases(
    settings.db,
    atoms.map((a) => a.hash),
    settings.owner,
  );
}

/**
 * Step 5, per batch (when `claimedWaitMs` > 0): content another worker held when this run met
 * it is reported only once it is stored, so an ok outcome always means stored. Claims end
 * with their owner: if that worker gives the content up or dies (its database session ends),
 * this run takes the content over at once and stores it itself. Only a live worker still
 * holding it after `claimedWaitMs` fails the item with the transient `ClaimedElsewhereError`.
 * @internal
 */
export function confirmClaimedStep(settings: IngestSettings): Step<IngestResult, IngestResult> {
  const { run, db, owner } = settings;
  return batchStep(
    'confirm-claimed',
    (results: IngestResult[], ctx) =>
      timed(settings, 'confirm-claimed', async () => {
        let waiting = new Set(
          results.filter((r) => r.duplicateOf === 'claimed').map((r) => r.hash),
        );
        const repeats = results.filter((r) => r.duplicateOf === 'batch' && run.repeats.has(r.hash));
        if (waiting.size === 0 && repeats.length === 0) return results;
        const taken = new Map<string, IngestResult | { error: unknown }>();
        const reported = new Set<string>();
        const started = Date.now();
        let waitedMs = 0;
        let pause = 20;
        try {
          const open = new Set(repeats.map((r) => r.hash).filter((h) => !run.added.has(h)));
          for (const [h, r] of await settleRepeats(settings, open, ctx.signal)) taken.set(h, r);
          if (waiting.size === 0) return results.map(reportOf);
          run.startedAt ??= databaseNow(db, ctx.signal);
          const since = await run.startedAt;
          for (;;) {
            const stored = await lookupStored(db, [...waiting], since, ctx.signal);
            waiting = new Set([...waiting].filter((h) => !stored.has(h)));
            if (waiting.size === 0) break;
            // The holder gave the content up, failed, or died: take it over now.
            const lease = await leaseHashes(db, [...waiting], owner);
            if (lease.won.length > 0) {
              for (const [h, r] of await storeTakenOver(settings, lease.won, ctx.signal))
                taken.set(h, r);
              for (const h of lease.won) waiting.delete(h);
              if (waiting.size === 0) break;
            }
            const left = settings.claimedWaitMs - (Date.now() - started);
            if (left <= 0) break;
            await sleep(Math.min(pause, left), ctx.signal);
            pause = Math.min(pause * 2, 500);
          }
        } finally {
          for (const r of results) {
            if (r.duplicateOf === 'claimed') {
              const entry = run.pending.get(r.hash);
              if (entry && --entry.waiters <= 0) run.pending.delete(r.hash);
            } else if (r.duplicateOf === 'batch') {
              const entry = run.repeats.get(r.hash);
              if (entry && --entry.waiters <= 0) run.repeats.delete(r.hash);
            }
          }
        }
        waitedMs = Date.now() - started;
        return results.map(reportOf);

        function reportOf(r: IngestResult): IngestResult | ItemFailure {
          if (r.duplicateOf === 'batch') {
            // a repeat whose first item failed: it stored the content itself, or failed
            const own = taken.get(r.hash);
            if (own === undefined) return r;
            if ('error' in own) return itemFailure(own.error);
            if (reported.has(r.hash)) return r;
            reported.add(r.hash);
            return own;
          }
          if (r.duplicateOf !== 'claimed') return r;
          if (waiting.has(r.hash)) return itemFailure(new ClaimedElsewhereError(r.hash, waitedMs));
          const own = taken.get(r.hash);
          // stored by its holder, or by another batch of this run that took it over
          if (own === undefined)
            return run.added.has(r.hash) ? { ...r, duplicateOf: 'batch' as const } : r;
          if ('error' in own) return itemFailure(own.error);
          // the same content twice in this batch: the first item stored it
          if (reported.has(r.hash)) return { ...r, duplicateOf: 'batch' as const };
          reported.add(r.hash);
          return own;
        }
      }),
    { size: settings.batchSize, timeMs: settings.batchTimeMs },
  );
}

/**
 * Repeats of content an earlier item of this run was storing (`run.repeats`): waits until that
 * item is stored, or, when it failed (it left the run's in-flight set unstored), takes the
 * content over and stores it with the repeat's own fields. Content another worker now holds
 * waits for it as claimed content does, at most `claimedWaitMs`.
 * @returns the outcome of each repeat that stored (or failed to store) the content itself
 */
async function settleRepeats(
  settings: IngestSettings,
  open: Set<string>,
  signal: AbortSignal,
): Promise<Map<string, IngestResult | { error: unknown }>> {
  const { run, db, owner } = settings;
  const out = new Map<string, IngestResult | { error: unknown }>();
  const started = Date.now();
  let pause = 10;
  while (open.size > 0) {
    for (const h of open) if (run.added.has(h)) open.delete(h);
    const free = [...open].filter((h) => !run.inFlight.has(h));
    if (free.length > 0) {
      const lease = await leaseHashes(db, free, owner);
      if (lease.won.length > 0) {
        // other repeats of this content wait on this attempt as on the first item
        for (const h of lease.won) run.inFlight.add(h);
        try {
          const atomOf = (h: string) => run.repeats.get(h)?.atom;
          for (const [h, r] of await storeTakenOver(settings, lease.won, signal, atomOf))
            out.set(h, r);
        } finally {
          for (const h of lease.won) {
            run.inFlight.delete(h);
            open.delete(h);
          }
        }
      }
      if (lease.heldElsewhere.length > 0 && Date.now() - started >= settings.claimedWaitMs) {
        for (const h of lease.heldElsewhere) {
          out.set(h, { error: new ClaimedElsewhereError(h, Date.now() - started) });
          open.delete(h);
        }
      }
    }
    if (open.size === 0) break;
    await sleep(pause, signal);
    pause = Math.min(pause * 2, 200);
  }
  return out;
}

/**
 * Embeds and stores content whose lease this run took over from a worker that gave it up.
 * Releases the leases whatever happens.
 */
async function storeTakenOver(
  settings: IngestSettings,
  hashes: readonly string[],
  signal: AbortSignal,
  atomOf: (hash: string) => PreparedAtom | undefined = (h) => settings.run.pending.get(h)?.atom,
): Promise<Map<string, IngestResult | { error: unknown }>> {
  const { db, run, owner } = settings;
  const out = new Map<string, IngestResult | { error: unknown }>();
  const atoms = hashes.map(atomOf).filter((a) => a !== undefined);
  try {
    run.startedAt ??= databaseNow(db, signal);
    const since = await run.startedAt;
    // stored by the previous holder just before it let go?
    const stored = await lookupStored(db, hashes, since, signal);
    const todo = atoms.filter((a) => !stored.has(a.hash));
    if (todo.length === 0) return out;
    // as in the embed and persist steps: a bad vector or a refused row fails only its item
    let vectors: readonly (Float32Array | InvalidEmbeddingError)[];
    try {
      vectors = await settings.embedder
        .embed(
          todo.map((a) => a.content),
          signal,
        )
        .catch((e: unknown) => {
          if (isPartialEmbeddingError(e) && e.results.length === todo.length) return e.results;
          throw e;
        });
      if (vectors.length !== todo.length) {
        validateVectors(vectors, settings.embedder.dimensions, todo.length);
      }
    } catch (e) {
      for (const a of todo) out.set(a.hash, { error: e });
      return out;
    }
    const embedded: { atom: (typeof todo)[number]; vector: Float32Array }[] = [];
    todo.forEach((atom, i) => {
      const v = vectors[i];
      try {
        if (isInvalidEmbeddingError(v)) throw v;
        const [vector] = validateVectors([v], settings.embedder.dimensions, 1);
        embedded.push({ atom, vector: vector as Float32Array });
      } catch (e) {
        out.set(atom.hash, { error: e });
      }
    });
    const result = await persistWithFallback(
      db,
      embedded.map(({ atom: a, vector }) => ({
        hash: a.hash,
        content: a.content,
        contentType: a.contentType,
        byteSize: a.byteSize,
        embedding: vector,
        embeddingModel: settings.embedder.model,
        sourceId: a.sourceId ?? null,
        metadata: a.metadata ?? {},
      })),
      { signal },
    );
    for (const [h, error] of result.rejected) out.set(h, { error });
    instruments(settings.telemetry).atomsAdded.add(result.inserted.length);
    for (const r of result.inserted) {
      run.added.add(r.hash);
      const a = todo.find((x) => x.hash === r.hash)!;
      out.set(r.hash, {
        hash: r.hash,
        status: 'added',
        id: r.id,
        outboxId: r.outboxId,
        byteSize: a.byteSize,
        ...(a.sourceId !== undefined ? { sourceId: a.sourceId } : {}),
      });
    }
    return out;
  } catch (e) {
    for (const a of atoms) if (!out.has(a.hash)) out.set(a.hash, { error: e });
    return out;
  } finally {
    await releaseLeases(db, hashes, owner);
  }
}
