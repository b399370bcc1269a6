/**
 * MikroORM custom types for the library's columns: content hashes (`bytea`, 32 bytes, exposed
 * as lowercase hex) and embeddings (`vector(dims)` or float32 `bytea`, exposed as
 * `Float32Array` either way).
 *
 * @module
 */

import { type Platform, Type } from '@mikro-orm/core';
import {
  decodeFloat32LE,
  float32Bytes,
  formatPgvectorText,
  hashBytes,
  parsePgvectorText,
} from './binary.js';
import type { VectorStorage } from './database.js';

/**
 * A SHA-256 content hash: stored as `bytea` (32 bytes), read and written as 64 lowercase hex
 * characters.
 *
 * @example
 * ```ts
 * import { defineEntity, p } from '@mikro-orm/core';
 * import { ContentHashType } from '@hartonomous/pipelines/postgres';
 *
 * const Mark = defineEntity({
 *   name: 'Mark',
 *   properties: { hash: p.type(ContentHashType).primary() },
 * });
 * ```
 */
export class ContentHashType extends Type<string, Buffer> {
  /**
   * @param value - lowercase hex
   * @returns the 32 bytes
   */
  override convertToDatabaseValue(value: string | Buffer): Buffer {
    return Buffer.isBuffer(value) ? value : hashBytes(value);
  }

  /**
   * @param value - bytes from the driver (or `\x` hex text)
   * @returns lowercase hex
   */
  override convertToJSValue(value: Buffer | string): string {
    if (Buffer.isBuffer(value)) return value.toString('hex');
    return value.startsWith('\\x') ? value.slice(2) : value;
  }

  /** @returns `'string'`: hashes compare as their hex form */
  override compareAsType(): string {
    return 'string';
  }

  /** @returns `bytea` */
  override getColumnType(): string {
    return 'bytea';
  }
}

const storages = new WeakMap<Platform, () => VectorStorage | undefined>();

/**
 * Tells {@link EmbeddingType} how the database behind a platform stores vectors.
 * @internal
 */
export function bindVectorStorage(
  platform: Platform,
  storage: () => VectorStorage | undefined,
): void {
  storages.set(platform, storage);
}

/**
 * An embedding: `Float32Array` in JavaScript; in the database a pgvector `vector(dims)` or,
 * without pgvector, `bytea` holding float32 little-endian values. Values round-trip exactly.
 *
 * @example
 * ```ts
 * import { Atom } from '@hartonomous/pipelines/atoms';
 *
 * const atom = await db.orm.em.fork().findOneOrFail(Atom, { id: '1' });
 * const v: Float32Array | null = atom.embedding;
 * ```
 */
export class EmbeddingType extends Type<Float32Array | null, Buffer | string | null> {
  /**
   * @param value - the vector
   * @param platform - the platform of the database written to
   * @returns pgvector text for a `vector` column, float32 bytes for a `bytea` one
   */
  override convertToDatabaseValue(
    value: Float32Array | null,
    platform: Platform,
  ): Buffer | string | null {
    if (value == null) return null;
    if (!(value instanceof Float32Array))
      throw new TypeError('an embedding must be a Float32Array');
    return storages.get(platform)?.() === 'pgvector'
      ? formatPgvectorText(value)
      : float32Bytes(value);
  }

  /**
   * @param value - `bytea` bytes or pgvector text from the driver
   * @returns the vector
   */
  override convertToJSValue(value: Buffer | string | Float32Array | null): Float32Array | null {
    if (value == null) return null;
    if (value instanceof Float32Array) return value;
    if (typeof value === 'string') return parsePgvectorText(value);
    return decodeFloat32LE(value);
  }

  /** @returns `'any'`: compared by value */
  override compareAsType(): string {
    return 'any';
  }

  /**
   * @param a - one stored form
   * @param b - another
   * @returns whether both hold the same vector
   */
  override compareValues(a: Buffer | string | null, b: Buffer | string | null): boolean {
    if (a == null || b == null) return a === b;
    if (typeof a === 'string' || typeof b === 'string') return String(a) === String(b);
    return a.equals(b);
  }

  /** @returns `bytea` (the real column type is set by the migration) */
  override getColumnType(): string {
    return 'bytea';
  }
}
