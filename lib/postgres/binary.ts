/**
 * PostgreSQL binary wire formats for the hot path: whole batches go to the server as one
 * binary array parameter per column (`unnest($1::bytea[], $2::text[], ...)`), so no float is
 * ever turned into text and no string is escaped.
 *
 * node-postgres sends any `Buffer` parameter in binary format; the server decodes it with the
 * type's receive function (`array_recv`, then the element type's).
 *
 * @internal
 * @module
 */

import { endianness } from 'node:os';

/** Type OIDs of built-in element types. @internal */
export const Oid = { bytea: 17, int4: 23, text: 25, jsonb: 3802 } as const;

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * Encodes a one-dimensional array in PostgreSQL's binary array format.
 * `sizeOf(i)` is the byte length of element `i` (`-1` for NULL); `write(buf, offset, i)`
 * writes exactly that many bytes.
 * @internal
 */
export function encodeArray(
  oid: number,
  count: number,
  sizeOf: (i: number) => number,
  write: (buf: Buffer, offset: number, i: number) => void,
): Buffer {
  if (count === 0) {
    const empty = Buffer.alloc(12);
    empty.writeInt32BE(oid, 8);
    return empty;
  }
  const sizes = new Int32Array(count);
  let total = 20 + 4 * count;
  let hasNull = 0;
  for (let i = 0; i < count; i++) {
    const size = sizeOf(i);
    sizes[i] = size;
    if (size < 0) hasNull = 1;
    else total += size;
  }
  const buf = Buffer.allocUnsafe(total);
  buf.writeInt32BE(1, 0);
  buf.writeInt32BE(hasNull, 4);
  buf.writeInt32BE(oid, 8);
  buf.writeInt32BE(count, 12);
  buf.writeInt32BE(1, 16);
  let offset = 20;
  for (let i = 0; i < count; i++) {
    const size = sizes[i]!;
    buf.writeInt32BE(size, offset);
    offset += 4;
    if (size > 0) {
      write(buf, offset, i);
      offset += size;
    }
  }
  return buf;
}

/** `text[]` (or any text-like element type) from strings; `null`/`undefined` are NULL. @internal */
export function textArray(values: readonly (string | null | undefined)[], oid = Oid.text): Buffer {
  return encodeArray(
    oid,
    values.length,
    (i) => {
      const v = values[i];
      return v == null ? -1 : Buffer.byteLength(v, 'utf8');
    },
    (buf, offset, i) => {
      buf.write(values[i]!, offset, 'utf8');
    },
  );
}

/** `jsonb[]` from JSON texts (binary jsonb is a version byte `1` then the text). @internal */
export function jsonbArray(jsonTexts: readonly (string | null)[]): Buffer {
  return encodeArray(
    Oid.jsonb,
    jsonTexts.length,
    (i) => {
      const v = jsonTexts[i];
      return v == null ? -1 : 1 + Buffer.byteLength(v, 'utf8');
    },
    (buf, offset, i) => {
      buf[offset] = 1;
      buf.write(jsonTexts[i]!, offset + 1, 'utf8');
    },
  );
}

/** `int4[]`; `null`/`undefined` are NULL. @internal */
export function int4Array(values: readonly (number | null | undefined)[]): Buffer {
  return encodeArray(
    Oid.int4,
    values.length,
    (i) => (values[i] == null ? -1 : 4),
    (buf, offset, i) => {
      buf.writeInt32BE(values[i]!, offset);
    },
  );
}

/** `bytea[]` from byte strings; `null`/`undefined` are NULL. @internal */
export function byteaArray(values: readonly (Uint8Array | null | undefined)[]): Buffer {
  return encodeArray(
    Oid.bytea,
    values.length,
    (i) => values[i]?.byteLength ?? -1,
    (buf, offset, i) => {
      buf.set(values[i]!, offset);
    },
  );
}

/** `bytea[]` of float32 little-endian vectors (the storage form without pgvector). @internal */
export function float32ByteaArray(vectors: readonly (Float32Array | null | undefined)[]): Buffer {
  return encodeArray(
    Oid.bytea,
    vectors.length,
    (i) => {
      const v = vectors[i];
      return v == null ? -1 : v.length * 4;
    },
    (buf, offset, i) => {
      writeFloat32LE(buf, offset, vectors[i]!);
    },
  );
}

/** `vector[]` (pgvector's binary format: int16 dim, int16 0, float4 big-endian). @internal */
export function pgvectorArray(
  oid: number,
  vectors: readonly (Float32Array | null | undefined)[],
): Buffer {
  return encodeArray(
    oid,
    vectors.length,
    (i) => {
      const v = vectors[i];
      return v == null ? -1 : 4 + v.length * 4;
    },
    (buf, offset, i) => {
      writePgvector(buf, offset, vectors[i]!);
    },
  );
}

/** One pgvector value in binary format, for a `$n::vector` parameter. @internal */
export function pgvectorValue(vector: Float32Array): Buffer {
  const buf = Buffer.allocUnsafe(4 + vector.length * 4);
  writePgvector(buf, 0, vector);
  return buf;
}

function writePgvector(buf: Buffer, offset: number, v: Float32Array): void {
  buf.writeInt16BE(v.length, offset);
  buf.writeInt16BE(0, offset + 2);
  const o = offset + 4;
  if (LITTLE_ENDIAN_HOST) {
    // copy the float32 bytes, then swap them to big-endian in one native pass
    buf.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), o);
    buf.subarray(o, o + v.byteLength).swap32();
    return;
  }
  for (let i = 0; i < v.length; i++) buf.writeFloatBE(v[i]!, o + 4 * i);
}

function writeFloat32LE(buf: Buffer, offset: number, v: Float32Array): void {
  if (LITTLE_ENDIAN_HOST) {
    buf.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), offset);
    return;
  }
  for (let i = 0, o = offset; i < v.length; i++, o += 4) buf.writeFloatLE(v[i]!, o);
}

/** The float32 little-endian bytes of a vector, for one `bytea` parameter. @internal */
export function float32Bytes(vector: Float32Array): Buffer {
  const buf = Buffer.allocUnsafe(vector.length * 4);
  writeFloat32LE(buf, 0, vector);
  return buf;
}

/**
 * Decodes float32 little-endian bytes (the `bytea` storage form) into a new Float32Array.
 * @internal
 */
export function decodeFloat32LE(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) {
    throw new TypeError(`a float32 vector needs a multiple of 4 bytes, got ${bytes.byteLength}`);
  }
  const out = new Float32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/**
 * A read-only float32 view of little-endian bytes without copying when the host is
 * little-endian and the bytes are 4-byte aligned (else a copy). For scans.
 * @internal
 */
export function viewFloat32LE(bytes: Uint8Array): Float32Array {
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0 && bytes.byteLength % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }
  return decodeFloat32LE(bytes);
}

/** Parses pgvector's text output (`[1,2.5,-3]`) into a Float32Array. @internal */
export function parsePgvectorText(text: string): Float32Array {
  const inner = text.trim().slice(1, -1);
  if (inner.length === 0) return new Float32Array(0);
  const parts = inner.split(',');
  const out = new Float32Array(parts.length);
  for (let i = 0; i < parts.length; i++) out[i] = Number(parts[i]);
  return out;
}

/** pgvector's text input form of a vector (for the ORM path only; the hot path is binary). @internal */
export function formatPgvectorText(vector: Float32Array): string {
  return `[${Array.prototype.join.call(vector, ',')}]`;
}

/** Lowercase hex SHA-256 (64 characters) to its 32 bytes; throws TypeError if malformed. @internal */
export function hashBytes(hash: string): Buffer {
  if (typeof hash !== 'string' || !HEX64.test(hash)) {
    throw new TypeError(`a content hash must be 64 lowercase hex characters, got ${String(hash)}`);
  }
  return Buffer.from(hash, 'hex');
}

const HEX64 = /^[0-9a-f]{64}$/;
