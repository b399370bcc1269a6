/**
 * MikroORM entities of atom ingestion, declared with `defineEntity` (no decorators). The tables
 * themselves are created by the versioned migrations in `@hartonomous/pipelines/postgres`;
 * these definitions map them for ordinary queries.
 *
 * @module
 */

import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { ContentHashType, EmbeddingType } from './column-types.js';

/**
 * Entity of the `atoms` table: one row per distinct content. `contentHash` is the SHA-256 of
 * the content as 64 lowercase hex characters (stored as 32 bytes); `id` is a bigserial
 * returned as a string; `embedding` is a `Float32Array` whatever the storage form.
 *
 * @example
 * ```ts
 * import { Atom } from '@hartonomous/pipelines/atoms';
 *
 * const em = db.orm.em.fork();
 * const recent = await em.find(Atom, { sourceId: 'crawl-7' }, { orderBy: { id: 'desc' }, limit: 10 });
 * ```
 */
export const Atom = defineEntity({
  name: 'Atom',
  tableName: 'atoms',
  properties: {
    /** Primary key (bigserial), as a string. */
    id: p.bigint('string').primary().autoincrement(),
    /** SHA-256 of the content, 64 lowercase hex characters (stored as 32 bytes); unique. */
    contentHash: p.type(ContentHashType).unique('atoms_content_hash_key'),
    /** The text. */
    content: p.text(),
    /** MIME type of the content. */
    contentType: p.text().default('text/plain'),
    /** Size of the content in UTF-8 bytes. */
    byteSize: p.integer(),
    /** The embedding, or null when the atom has none. */
    embedding: p.type(EmbeddingType).nullable(),
    /** The model that produced the embedding. */
    embeddingModel: p.text().nullable(),
    /** Length of the embedding (null without one). */
    embeddingDims: p.integer().nullable(),
    /** Where the content came from (a document id, a URL). */
    sourceId: p.text().nullable(),
    /** Any JSON object given at ingestion. */
    metadata: p.json<Record<string, unknown>>().default('{}'),
    /** When the row was inserted. */
    createdAt: p.datetime().defaultRaw('now()'),
  },
});

/**
 * An atom row as MikroORM returns it.
 *
 * @example
 * ```ts
 * import type { AtomEntity } from '@hartonomous/pipelines/atoms';
 * const describe = (a: AtomEntity) => `${a.id} ${a.contentHash.slice(0, 8)} ${a.byteSize}B`;
 * ```
 */
export type AtomEntity = InferEntity<typeof Atom>;

/**
 * Entity of the `outbox` table (transactional outbox). `persistAtoms` writes one
 * `atom.created` row per new atom in the same transaction; a publisher sends pending rows
 * (`publishedAt` and `deadAt` null) ordered by `id` within an `aggregateKey`, then sets
 * `publishedAt` (or counts `attempts`, records `lastError`, and finally sets `deadAt`).
 *
 * @example
 * ```ts
 * import { Outbox } from '@hartonomous/pipelines/atoms';
 *
 * const em = db.orm.em.fork();
 * const pending = await em.find(
 *   Outbox,
 *   { publishedAt: null, deadAt: null },
 *   { orderBy: { id: 'asc' }, limit: 100 },
 * );
 * ```
 */
export const Outbox = defineEntity({
  name: 'Outbox',
  tableName: 'outbox',
  properties: {
    /** Primary key (bigserial), as a string; the publishing order. */
    id: p.bigint('string').primary().autoincrement(),
    /** Event name, e.g. `atom.created`. */
    eventType: p.text(),
    /** Key whose events must stay in order (an atom's content hash). */
    aggregateKey: p.text(),
    /** The event body (JSON). */
    payload: p.json<Record<string, unknown>>(),
    /** Unique, stable message id for consumer-side deduplication. */
    messageId: p.text().unique('outbox_message_id_key'),
    /** W3C traceparent of the transaction that wrote the row. */
    traceparent: p.text().nullable(),
    /** W3C tracestate of the transaction that wrote the row. */
    tracestate: p.text().nullable(),
    /** When the row was written. */
    createdAt: p.datetime().defaultRaw('now()'),
    /** When it was published; null while pending. */
    publishedAt: p.datetime().nullable(),
    /** Failed publishing attempts so far. */
    attempts: p.integer().default(0),
    /** The last publishing error. */
    lastError: p.text().nullable(),
    /** Earliest time of the next publishing attempt (backoff); null when due now. */
    nextAttemptAt: p.datetime().nullable(),
    /** When publishing was abandoned; null otherwise. */
    deadAt: p.datetime().nullable(),
  },
});

/**
 * An outbox row as MikroORM returns it.
 *
 * @example
 * ```ts
 * import type { OutboxEntity } from '@hartonomous/pipelines/atoms';
 * const key = (row: OutboxEntity) => `${row.aggregateKey}#${row.id}`;
 * ```
 */
export type OutboxEntity = InferEntity<typeof Outbox>;

/**
 * Entity of the `atom_claims` table: which worker (`owner`) is embedding which content hash
 * since when. See `claimHashes`.
 *
 * @example
 * ```ts
 * import { AtomClaim } from '@hartonomous/pipelines/atoms';
 * const mine = await db.orm.em.fork().count(AtomClaim, { owner: 'worker-1' });
 * ```
 */
export const AtomClaim = defineEntity({
  name: 'AtomClaim',
  tableName: 'atom_claims',
  properties: {
    /** The claimed content hash (lowercase hex). */
    hash: p.type(ContentHashType).primary(),
    /** The worker holding the claim. */
    owner: p.text(),
    /** When it was claimed or last renewed. */
    claimedAt: p.datetime().defaultRaw('now()'),
  },
});

/**
 * A claim row as MikroORM returns it.
 *
 * @example
 * ```ts
 * import type { AtomClaimEntity } from '@hartonomous/pipelines/atoms';
 * const age = (c: AtomClaimEntity) => Date.now() - c.claimedAt.getTime();
 * ```
 */
export type AtomClaimEntity = InferEntity<typeof AtomClaim>;

/**
 * The entities `openDatabase` registers with MikroORM.
 * @internal
 */
export const atomEntities = [Atom, Outbox, AtomClaim] as const;
