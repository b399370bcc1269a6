/**
 * The shapes of document sync: a document, a chunk, a chunker, the cleanup modes.
 *
 * @module
 */

/**
 * One document to keep in sync: an id unique within its collection, its text, metadata, and
 * the collection (namespace) it belongs to.
 *
 * @example
 * ```ts
 * import type { DocumentInput } from '@hartonomous/pipelines/documents';
 * const doc: DocumentInput = { id: 'guide/intro.md', content: '# Intro\n\nHello.', metadata: { lang: 'en' } };
 * ```
 */
export interface DocumentInput {
  /** Unique within the collection (a relative path, a URL, a primary key). */
  readonly id: string;
  /** The text. An empty text is a document with no chunks. */
  readonly content: string;
  /** Any JSON object; part of the document hash, stored with the document and its new atoms. @default {} */
  readonly metadata?: Record<string, unknown>;
  /** The collection; overrides the run's `collection` option. @default the run's `collection` */
  readonly collection?: string;
}

/**
 * What a chunker returns for each piece: its text, or an object with a `content` field (the
 * shape of the chunkers of `@hartonomous/pipelines/chunking`). When the object also has a
 * `headingPath` (a list of strings, as those chunkers give), the atom stored for the chunk gets
 * `chunk: { documentId, position, headingPath }` in its metadata beside the document's
 * (kept by the atom's first writer, like its `sourceId`); other fields are ignored.
 *
 * @example
 * ```ts
 * import type { ChunkLike } from '@hartonomous/pipelines/documents';
 * const chunks: ChunkLike[] = ['first paragraph', { content: 'second paragraph' }];
 * ```
 */
export type ChunkLike =
  | string
  | {
      /** The chunk's text. */
      readonly content: string;
      /** The headings it sits under, outermost first (stored in the atom's metadata). */
      readonly headingPath?: readonly string[];
    };

/**
 * Cuts a document into chunks, in order. Each distinct chunk is stored once as an atom.
 * It may be async; an error it throws fails only that document.
 *
 * @example
 * ```ts
 * import type { Chunker } from '@hartonomous/pipelines/documents';
 * const byLine: Chunker = (doc) => doc.content.split('\n').filter((l) => l.trim() !== '');
 * ```
 */
export type Chunker = (
  doc: DocumentInput,
) => readonly ChunkLike[] | Promise<readonly ChunkLike[]> | Iterable<ChunkLike>;

/**
 * What a sync deletes besides replacing the chunk lists of the documents it writes:
 * - `'none'`: nothing (atoms no document refers to any more stay stored);
 * - `'incremental'`: the atoms of the old chunk lists of the documents seen in this run, when
 *   no document of any collection refers to them any more;
 * - `'full'`: also the documents of the run's collections that the run did not see (and their
 *   atoms, on the same condition). Only atoms stored by document syncs are ever deleted.
 *
 * @example
 * ```ts
 * import type { CleanupMode } from '@hartonomous/pipelines/documents';
 * const cleanup: CleanupMode = 'incremental';
 * ```
 */
export type CleanupMode = 'none' | 'incremental' | 'full';
