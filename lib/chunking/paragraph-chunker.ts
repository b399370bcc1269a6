import type { Chunker, ChunkerOptions } from './chunk.js';
import { checkDocument, measureOf, packChunks } from './pack-chunks.js';
import { paragraphUnits } from './units.js';

/**
 * A chunker for plain text by paragraph (runs of lines that are not blank). Without a budget
 * every paragraph is a chunk; with one, consecutive paragraphs are packed up to the budget and
 * a paragraph larger than it is cut by sentences, then words, then characters (a recursive
 * splitter, like LangChain's `RecursiveCharacterTextSplitter`, but on sentence boundaries found
 * by `Intl.Segmenter` rather than on `'. '`).
 *
 * @param options - the size budget (characters, or tokens with a tokenizer) and overlap
 * @returns a {@link Chunker}: a plain function, usable as a pipeline step function
 * @throws `TypeError` at creation when the budget is invalid
 *
 * @example
 * ```ts
 * import { paragraphChunker } from '@hartonomous/pipelines/chunking';
 *
 * const chunk = paragraphChunker({ budget: 1_000 });
 * const chunks = chunk({ id: 'notes.txt', content: 'First paragraph.\n\nSecond paragraph.' });
 * chunks.length; // 1: both fit in 1,000 characters
 * paragraphChunker()({ id: 'notes.txt', content: 'First.\n\nSecond.' }).length; // 2
 * ```
 * @see {@link markdownChunker}, {@link sentenceChunker}
 */
export function paragraphChunker(options: ChunkerOptions = {}): Chunker {
  const measure = measureOf('paragraphChunker', options);
  return (doc) => {
    checkDocument(doc);
    const units = paragraphUnits(doc.content, 0, doc.content.length);
    return packChunks(doc, [{ headingPath: [], units, leadingHeading: false }], measure);
  };
}
