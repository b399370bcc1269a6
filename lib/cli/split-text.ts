import { markdownChunker } from '../chunking/markdown-chunker.js';
import type { SplitMode } from './parse-command-line.js';

const markdownBlocks = markdownChunker();

/**
 * A piece of a file that becomes one atom.
 * @internal
 */
export interface TextPiece {
  /** The content. */
  readonly text: string;
  /** Line (1-based) where it starts. */
  readonly line: number;
  /** Offset in the (line-ending normalised) text just past its end, for progress. */
  readonly end: number;
  /** `'paragraph'` mode: the markdown headings it sits under, outermost first. */
  readonly headingPath?: readonly string[];
}

/**
 * Cuts a text into the pieces `ingest` stores, after turning `\r\n` and `\r` into `\n`:
 * - `'paragraph'`: the blocks of the markdown chunker (`markdownChunker()` without a budget):
 *   paragraphs (runs of non-blank lines), a heading joined to the block after it, a list
 *   (blank lines between items included) and a code fence (blank lines inside included) each
 *   whole; each line's trailing whitespace removed, indentation kept;
 * - `'line'`: every non-blank line, trimmed;
 * - `'file'`: the whole text, trimmed (nothing when it is blank).
 *
 * @param text - the text
 * @param mode - how to cut it
 * @returns the pieces, in order
 * @internal
 */
export function* splitText(text: string, mode: SplitMode): Generator<TextPiece> {
  const normalised = text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text;
  if (mode === 'file') {
    const whole = normalised.trim();
    if (whole !== '')
      yield { text: whole, line: 1 + leadingNewlines(normalised), end: normalised.length };
    return;
  }
  if (mode === 'paragraph') {
    yield* markdownPieces(normalised);
    return;
  }
  let offset = 0;
  let lineNo = 0;
  let block: string[] = [];
  let blockLine = 0;
  let blockEnd = 0;
  while (offset <= normalised.length) {
    const nl = normalised.indexOf('\n', offset);
    const stop = nl === -1 ? normalised.length : nl;
    const line = normalised.slice(offset, stop);
    lineNo++;
    const blank = line.trim() === '';
    if (mode === 'line') {
      if (!blank) yield { text: line.trim(), line: lineNo, end: stop };
    } else if (blank) {
      if (block.length > 0) yield { text: block.join('\n'), line: blockLine, end: blockEnd };
      block = [];
    } else {
      if (block.length === 0) blockLine = lineNo;
      block.push(line.trimEnd());
      blockEnd = stop;
    }
    if (nl === -1) break;
    offset = nl + 1;
  }
  if (block.length > 0) yield { text: block.join('\n'), line: blockLine, end: blockEnd };
}

/** The markdown chunker's blocks as pieces, with their first line (1-based). */
function* markdownPieces(text: string): Generator<TextPiece> {
  let line = 1;
  let counted = 0;
  for (const chunk of markdownBlocks({ id: '', content: text })) {
    for (
      let i = text.indexOf('\n', counted);
      i !== -1 && i < chunk.start;
      i = text.indexOf('\n', i + 1)
    ) {
      line++;
    }
    counted = chunk.start;
    const content =
      chunk.content.includes(' \n') || chunk.content.includes('\t\n')
        ? chunk.content
            .split('\n')
            .map((l) => l.trimEnd())
            .join('\n')
        : chunk.content;
    yield { text: content, line, end: chunk.end, headingPath: chunk.headingPath };
  }
}

/** Newlines before the first non-whitespace character. */
function leadingNewlines(text: string): number {
  const lead = /^\s*/.exec(text)?.[0] ?? '';
  return lead.split('\n').length - 1;
}
