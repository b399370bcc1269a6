/**
 * `COPY ... FROM STDIN` through node-postgres without pg-copy-streams: node-postgres accepts
 * any "submittable" object in `client.query(...)` and hands it the protocol events; this one
 * sends the statement, answers the server's CopyInResponse with CopyData chunks and CopyDone,
 * and settles on ReadyForQuery (or the first error). Plus an encoder of PostgreSQL's binary
 * COPY format, and of binary `bytea[]` parameters.
 */
import { endianness } from 'node:os';
import type { RawClient } from './postgres.js';

/** The protocol side of a node-postgres connection that a submittable drives. */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** A node-postgres submittable running one `COPY ... FROM STDIN` with the given chunks. */
class CopyIn {
  callback: undefined;
  private rowCount = 0;
  private settled = false;

  constructor(
    private readonly text: string,
    private readonly chunks: readonly Buffer[],
    private readonly resolve: (rows: number) => void,
    private readonly reject: (e: unknown) => void,
  ) {}

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    for (const chunk of this.chunks) connection.sendCopyFromChunk(chunk);
    connection.endCopyFrom();
  }

  handleCommandComplete(msg: { text?: string }): void {
    const n = /^COPY (\d+)/.exec(msg.text ?? '');
    if (n) this.rowCount = Number(n[1]);
  }

  handleError(e: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.reject(e);
  }

  handleReadyForQuery(): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(this.rowCount);
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/**
 * Runs `COPY <table> (...) FROM STDIN` on a raw client, sending `chunks` as the data.
 * @returns the number of rows the server reports copied
 */
export function copyFrom(
  client: RawClient,
  sql: string,
  chunks: readonly Buffer[],
): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const submittable = new CopyIn(sql, chunks, resolve, reject);
    (client as unknown as { query(s: CopyIn): unknown }).query(submittable);
  });
}

/** One field of a binary COPY row: bytes, a string (UTF-8), an int4, or null. */
export type CopyField = Buffer | string | { readonly int4: number } | null;

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * Encodes rows in PostgreSQL's binary COPY format, split into chunks of about `chunkRows`
 * rows (the first chunk starts with the header, the last ends with the trailer).
 */
export function binaryCopyChunks(
  rows: readonly (readonly CopyField[])[],
  chunkRows = 256,
): Buffer[] {
  const chunks: Buffer[] = [];
  const header = Buffer.alloc(SIGNATURE.length + 8);
  SIGNATURE.copy(header, 0);
  // flags (int32 0) and header-extension length (int32 0) are already zero
  let parts: Buffer[] = [header];
  for (let r = 0; r < rows.length; r++) {
    parts.push(encodeRow(rows[r]!));
    if ((r + 1) % chunkRows === 0) {
      chunks.push(Buffer.concat(parts));
      parts = [];
    }
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  parts.push(trailer);
  chunks.push(Buffer.concat(parts));
  return chunks;
}

function encodeRow(fields: readonly CopyField[]): Buffer {
  const values = fields.map((f) =>
    f === null
      ? null
      : typeof f === 'string'
        ? Buffer.from(f, 'utf8')
        : Buffer.isBuffer(f)
          ? f
          : int4(f.int4),
  );
  let size = 2;
  for (const v of values) size += 4 + (v?.length ?? 0);
  const buf = Buffer.allocUnsafe(size);
  buf.writeInt16BE(values.length, 0);
  let o = 2;
  for (const v of values) {
    if (v === null) {
      buf.writeInt32BE(-1, o);
      o += 4;
    } else {
      buf.writeInt32BE(v.length, o);
      v.copy(buf, o + 4);
      o += 4 + v.length;
    }
  }
  return buf;
}

function int4(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeInt32BE(n, 0);
  return b;
}

/** The binary form of a `jsonb` value: version byte 1, then the JSON text. */
export function jsonbBinary(json: string): Buffer {
  return Buffer.concat([Buffer.from([1]), Buffer.from(json, 'utf8')]);
}

/** The float32 little-endian bytes of a vector (the library's `bytea` storage form). */
export function float32Bytes(v: Float32Array): Buffer {
  if (endianness() !== 'LE')
    throw new Error('float32Bytes: this benchmark assumes a little-endian host');
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** pgvector's binary form of a vector: int16 dimensions, int16 0, float4 big-endian values. */
export function pgvectorBinary(v: Float32Array): Buffer {
  const buf = Buffer.allocUnsafe(4 + 4 * v.length);
  buf.writeInt16BE(v.length, 0);
  buf.writeInt16BE(0, 2);
  for (let i = 0; i < v.length; i++) buf.writeFloatBE(v[i]!, 4 + 4 * i);
  return buf;
}

/** A one-dimensional `bytea[]` in PostgreSQL's binary array format, for one parameter. */
export function byteaArrayParam(values: readonly Buffer[]): Buffer {
  if (values.length === 0) {
    const empty = Buffer.alloc(12); // zero dimensions
    empty.writeInt32BE(17, 8);
    return empty;
  }
  let size = 20;
  for (const v of values) size += 4 + v.length;
  const buf = Buffer.allocUnsafe(size);
  buf.writeInt32BE(1, 0); // dimensions
  buf.writeInt32BE(0, 4); // no nulls
  buf.writeInt32BE(17, 8); // element type: bytea
  buf.writeInt32BE(values.length, 12);
  buf.writeInt32BE(1, 16); // lower bound
  let o = 20;
  for (const v of values) {
    buf.writeInt32BE(v.length, o);
    v.copy(buf, o + 4);
    o += 4 + v.length;
  }
  return buf;
}
