import { contentHash } from '../atoms/hash.js';

/**
 * One record of a JSON Lines file as `export` writes it and `ingest`/`sync` read it back:
 * `content` (required), `hash` (when present it must be the content's SHA-256), `metadata`,
 * `contentType`, `sourceId`, `id` (the document id for `sync`), `vector` (base64 float32,
 * ignored on reading: content is embedded again by the run's embedder).
 * @internal
 */
export interface JsonlRecord {
  readonly content: string;
  readonly hash?: string;
  readonly metadata?: Record<string, unknown>;
  readonly contentType?: string;
  readonly sourceId?: string;
  readonly id?: string;
}

/** A line read: its record, or why it was refused. @internal */
export type JsonlLine =
  | { readonly line: number; readonly record: JsonlRecord }
  | { readonly line: number; readonly error: string };

/**
 * The records of a JSON Lines text, one per non-blank line (1-based line numbers). A line
 * that is not a JSON object with a string `content`, or whose `hash` does not match its
 * content, gives an error entry instead; the other lines are still read.
 *
 * @param text - the file's text
 * @returns the lines, in order
 * @internal
 */
export function* readJsonl(text: string): Generator<JsonlLine> {
  let line = 0;
  for (const raw of text.split(/\r?\n/)) {
    line++;
    if (raw.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      yield { line, error: `not JSON (${e instanceof Error ? e.message : String(e)})` };
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      yield { line, error: 'not a JSON object' };
      continue;
    }
    const r = value as Record<string, unknown>;
    if (typeof r.content !== 'string') {
      yield { line, error: 'no string "content"' };
      continue;
    }
    if (r.hash !== undefined && r.hash !== contentHash(r.content)) {
      yield { line, error: '"hash" is not the SHA-256 of "content"' };
      continue;
    }
    const metadata =
      typeof r.metadata === 'object' && r.metadata !== null && !Array.isArray(r.metadata)
        ? (r.metadata as Record<string, unknown>)
        : undefined;
    if (r.metadata !== undefined && metadata === undefined) {
      yield { line, error: '"metadata" is not a JSON object' };
      continue;
    }
    yield {
      line,
      record: {
        content: r.content,
        ...(typeof r.hash === 'string' ? { hash: r.hash } : {}),
        ...(metadata ? { metadata } : {}),
        ...(typeof r.contentType === 'string' ? { contentType: r.contentType } : {}),
        ...(typeof r.sourceId === 'string' ? { sourceId: r.sourceId } : {}),
        ...(typeof r.id === 'string' && r.id !== '' ? { id: r.id } : {}),
      },
    };
  }
}

/** Whether a file is read as JSON Lines (`.jsonl`, `.ndjson`). @internal */
export function isJsonlFile(path: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(path);
}
