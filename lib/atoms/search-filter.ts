/**
 * The filters `searchSimilar` applies inside its queries, so they combine with the ranking
 * instead of thinning its results afterwards.
 *
 * @module
 */

import { textArray } from '../postgres/binary.js';

/**
 * Which atoms a search considers. Every filter given must hold (AND).
 *
 * @example
 * ```ts
 * import type { SearchFilter } from '@hartonomous/pipelines/atoms';
 * const english: SearchFilter = { contentType: 'text/markdown', metadata: { lang: 'en' } };
 * ```
 */
export interface SearchFilter {
  /**
   * Only atoms with a vector of this model, ranked by that vector (mixing embedding spaces is
   * meaningless): the primary vector (`atoms.embedding`) written by ingestion, or one added by
   * `reembed` of `@hartonomous/pipelines/documents`.
   * @default the `collection`'s default model if it has one, else every atom's primary vector
   */
  model?: string;
  /** Only atoms of this MIME type (exact match, e.g. `'text/markdown'`). @default any */
  contentType?: string;
  /**
   * Only atoms whose metadata contains this JSON object (PostgreSQL `metadata @> $1::jsonb`):
   * `{ lang: 'en' }` matches `{ lang: 'en', source: 'docs' }`; nested objects match by
   * containment too, arrays by containing the given elements.
   * @default any
   */
  metadata?: Record<string, unknown>;
  /**
   * Only atoms that some document of this collection is made of (documents are written by
   * `ingestDocuments` of `@hartonomous/pipelines/documents`). @default any atom
   */
  collection?: string;
  /** With `collection`: only atoms of these documents. @default every document of the collection */
  documentIds?: readonly string[];
}

/**
 * Checks the filter fields of search options (throws `TypeError`).
 * @internal
 */
export function checkFilter(filter: SearchFilter): void {
  if (filter.model !== undefined && typeof filter.model !== 'string') {
    throw new TypeError('searchSimilar: model must be a string');
  }
  if (filter.contentType !== undefined && typeof filter.contentType !== 'string') {
    throw new TypeError('searchSimilar: contentType must be a string');
  }
  if (filter.collection !== undefined) {
    if (typeof filter.collection !== 'string' || filter.collection.length === 0) {
      throw new TypeError('searchSimilar: collection must be a non-empty string');
    }
  } else if (filter.documentIds !== undefined) {
    throw new TypeError('searchSimilar: documentIds needs a collection');
  }
  const ids = filter.documentIds;
  if (ids !== undefined && (!Array.isArray(ids) || ids.some((id) => typeof id !== 'string'))) {
    throw new TypeError('searchSimilar: documentIds must be an array of strings');
  }
  const m = filter.metadata;
  if (m !== undefined && (typeof m !== 'object' || m === null || Array.isArray(m))) {
    throw new TypeError('searchSimilar: metadata must be a plain object, e.g. { lang: "en" }');
  }
}

/** Whether any filter besides the model is set. @internal */
export function hasContentFilter(filter: SearchFilter): boolean {
  return (
    filter.contentType !== undefined ||
    filter.metadata !== undefined ||
    filter.collection !== undefined
  );
}

/**
 * The SQL conditions of a filter, each prefixed with ` AND `, binding its values as the next
 * parameters of `values` (which it appends to).
 * @internal
 */
export function filterSql(filter: SearchFilter, values: unknown[], qschema?: string): string {
  let sql = '';
  if (filter.model !== undefined) {
    values.push(filter.model);
    sql += ` AND atoms.embedding_model = $${values.length}`;
  }
  if (filter.contentType !== undefined) {
    values.push(filter.contentType);
    sql += ` AND atoms.content_type = $${values.length}`;
  }
  if (filter.metadata !== undefined) {
    values.push(JSON.stringify(filter.metadata));
    sql += ` AND atoms.metadata @> $${values.length}::jsonb`;
  }
  if (filter.collection !== undefined) {
    if (qschema === undefined)
      throw new TypeError('filterSql: a collection filter needs the schema');
    values.push(filter.collection);
    const collectionParam = values.length;
    let ids = '';
    if (filter.documentIds !== undefined) {
      values.push(textArray(filter.documentIds));
      ids = ` AND d.document_id = ANY($${values.length}::text[])`;
    }
    sql += ` AND EXISTS (SELECT 1 FROM ${qschema}.document_chunks c JOIN ${qschema}.documents d ON d.id = c.document
  WHERE c.atom_id = atoms.id AND d.collection = $${collectionParam}${ids})`;
  }
  return sql;
}
