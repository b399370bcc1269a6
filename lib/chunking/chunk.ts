/**
 * The shapes every chunker shares: what goes in (a document), what comes out (chunks), and how
 * a size budget is stated.
 *
 * @module
 */

/**
 * What a chunker cuts: a document's id and its text. Any object with these two fields fits
 * (a document of `ingestDocuments`, a file read from disk).
 *
 * @example
 * ```ts
 * import type { ChunkerInput } from '@hartonomous/pipelines/chunking';
 * const doc: ChunkerInput = { id: 'guide.md', content: '# Guide\n\nHello.' };
 * ```
 */
export interface ChunkerInput {
  /** The document's id; copied into every chunk as `documentId`. */
  readonly id: string;
  /** The document's text. */
  readonly content: string;
}

/**
 * One piece of a document.
 *
 * `content` is always exactly `text.slice(start, end)` of the document's text (offsets in
 * UTF-16 code units, as JavaScript strings count), never rewritten: it starts and ends on a
 * non-whitespace character. What lies between two consecutive chunks is whitespace only, and
 * with an overlap the next chunk starts before the previous one ends, so the text can be rebuilt
 * from its chunks. The heading path is context carried beside the content (prepend it where a
 * model should see it, see {@link withHeadingPath}).
 *
 * @example
 * ```ts
 * import type { Chunk } from '@hartonomous/pipelines/chunking';
 * const label = (c: Chunk) => `${c.documentId}#${c.position} ${c.headingPath.join(' > ')}`;
 * ```
 */
export interface Chunk {
  /** The id of the document it was cut from. */
  readonly documentId: string;
  /** Its index among the document's chunks: 0, 1, 2, ... in text order. */
  readonly position: number;
  /**
   * The markdown headings it sits under, outermost first (`['Guide', 'Install']`); empty
   * before the first heading and for plain-text chunkers.
   */
  readonly headingPath: readonly string[];
  /** The text: exactly the document's text from `start` to `end`. */
  readonly content: string;
  /** Offset (UTF-16 code units) of its first character in the document's text. */
  readonly start: number;
  /** Offset just past its last character. */
  readonly end: number;
}

/**
 * A chunker: a plain function from a document to its chunks, in order. It is also a step
 * function, so `step('chunk', markdownChunker())` puts it in a pipeline.
 *
 * @example
 * ```ts
 * import { type Chunker, paragraphChunker } from '@hartonomous/pipelines/chunking';
 * const chunker: Chunker = paragraphChunker({ budget: 800 });
 * const chunks = chunker({ id: 'a', content: 'One.\n\nTwo.' });
 * ```
 */
export type Chunker = (doc: ChunkerInput) => Chunk[];

/**
 * Counts the tokens of a text, for budgets in tokens. {@link loadTokenizer} gives one backed
 * by `gpt-tokenizer`; any other counter (a model's own tokenizer) fits.
 *
 * @example
 * ```ts
 * import type { Tokenizer } from '@hartonomous/pipelines/chunking';
 * const words: Tokenizer = { name: 'words', count: (text) => text.split(/\s+/).filter(Boolean).length };
 * ```
 */
export interface Tokenizer {
  /** A name for messages, e.g. `o200k_base`. */
  readonly name: string;
  /**
   * The number of tokens of `text`.
   * @param text - any text
   * @returns its token count (a non-negative integer)
   */
  count(text: string): number;
}

/**
 * The size budget of a chunk. Without a `tokenizer` sizes are in characters (UTF-16 code
 * units of the chunk's content, whitespace inside it included); with one, in its tokens.
 *
 * No chunk is larger than `max`, except a single indivisible unit larger than `max` on its
 * own: a markdown code fence (never split), or one character counting more tokens than `max`.
 * Such a unit becomes a chunk of its own.
 *
 * @example
 * ```ts
 * import { loadTokenizer, type SizeBudget } from '@hartonomous/pipelines/chunking';
 * const inCharacters: SizeBudget = { max: 1_000, overlap: 100 };
 * const inTokens: SizeBudget = { max: 256, overlap: 32, tokenizer: await loadTokenizer() };
 * ```
 */
export interface SizeBudget {
  /** Largest chunk (positive integer). */
  readonly max: number;
  /**
   * Most of the previous chunk's end repeated at the start of the next one, in whole units
   * (blocks, sentences or words: whatever the previous chunk was packed from); never across a
   * markdown section. Must be less than `max`.
   * @default 0
   */
  readonly overlap?: number;
  /** Measure in this tokenizer's tokens instead of characters. @default characters */
  readonly tokenizer?: Tokenizer;
}

/**
 * Options every chunker takes.
 *
 * @example
 * ```ts
 * import type { ChunkerOptions } from '@hartonomous/pipelines/chunking';
 * const options: ChunkerOptions = { budget: { max: 1_200, overlap: 200 } };
 * ```
 */
export interface ChunkerOptions {
  /**
   * A size budget (a number is `{ max: n }` in characters). Without one, every unit (a
   * paragraph, a sentence, a markdown block) is a chunk of its own, whatever its size; with one,
   * consecutive units are packed into chunks up to the budget and units larger than it are cut
   * at finer boundaries (sentences, then words, then characters).
   * @default no budget
   */
  readonly budget?: number | SizeBudget;
}

/**
 * The text a model should see for a chunk: its heading path as a first line (`Guide > Install`),
 * a blank line, then its content. A chunk that starts with its own heading line gets only the
 * outer headings; a chunk under no heading is returned as it is.
 *
 * @param chunk - a chunk
 * @returns the text to embed
 *
 * @example
 * ```ts
 * import { markdownChunker, withHeadingPath } from '@hartonomous/pipelines/chunking';
 * const [, second] = markdownChunker({ budget: 40 })({ id: 'a', content: '# Cats\n\nThey sleep a lot. They purr when they are content.' });
 * withHeadingPath(second!); // 'Cats\n\nThey purr when they are content.'
 * ```
 */
export function withHeadingPath(chunk: Chunk): string {
  const path = /^#{1,6}(?:\s|$)/.test(chunk.content)
    ? chunk.headingPath.slice(0, -1)
    : chunk.headingPath;
  return path.length === 0 ? chunk.content : `${path.join(' > ')}\n\n${chunk.content}`;
}
