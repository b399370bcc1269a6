import type { DocumentInput } from './document.js';

/**
 * The default chunker of document sync: runs of non-blank lines (paragraphs), line endings
 * normalised to `\n`, each line's trailing whitespace removed. Pass any other `Chunker` (such
 * as the markdown chunker of `@hartonomous/pipelines/chunking`) to `ingestDocuments`.
 *
 * @param doc - the document
 * @returns its paragraphs, in order
 *
 * @example
 * ```ts
 * import { paragraphChunker } from '@hartonomous/pipelines/documents';
 * paragraphChunker({ id: 'a', content: 'one\ntwo\n\nthree' }); // ['one\ntwo', 'three']
 * ```
 */
export function paragraphChunker(doc: DocumentInput): string[] {
  const text = doc.content.includes('\r') ? doc.content.replace(/\r\n?/g, '\n') : doc.content;
  const chunks: string[] = [];
  let block: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (block.length > 0) chunks.push(block.join('\n'));
      block = [];
    } else block.push(line.trimEnd());
  }
  if (block.length > 0) chunks.push(block.join('\n'));
  return chunks;
}
