/**
 * A small line-based markdown block reader: ATX headings, fenced code blocks, lists and
 * paragraphs, enough to cut markdown at its structure. It is not a full CommonMark parser
 * (setext headings, block quotes and indented code read as paragraphs); a parser library
 * (remark, markdown-it) would give a full AST but no source offsets for every block without a
 * second pass, and the chunker needs offsets and three block kinds only.
 *
 * @module
 * @internal
 */

import { trimRange, type Unit } from './units.js';

/** A block of a markdown text. @internal */
export interface MarkdownBlock extends Unit {
  readonly kind: 'heading' | 'fence' | 'list' | 'paragraph';
  /** The headings it sits under (a heading block: its own text last). */
  readonly headingPath: readonly string[];
}

const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$/;
const FENCE_OPEN = /^([ \t]*)(`{3,}|~{3,})(.*)$/;
const LIST_ITEM = /^([ \t]*)(?:[-+*]|\d{1,9}[.)])(?:[ \t]|$)/;
const INTERRUPTING_ITEM = /^ {0,3}(?:[-+*]|1[.)])[ \t]+\S/;

interface Line {
  readonly start: number;
  readonly end: number;
  /** The line without its end-of-line characters. */
  readonly text: string;
}

function splitLines(text: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    const end = nl === -1 ? text.length : nl;
    const raw = text.slice(start, end);
    lines.push({ start, end, text: raw.endsWith('\r') ? raw.slice(0, -1) : raw });
    if (nl === -1) return lines;
    start = nl + 1;
  }
}

const isBlank = (line: Line): boolean => line.text.trim() === '';

/** A fence opening at `line` (indentation at most `maxIndent`): its character and length. */
function fenceOpen(line: Line, maxIndent: number): { char: string; length: number } | undefined {
  const m = FENCE_OPEN.exec(line.text);
  if (!m || m[1]!.length > maxIndent) return undefined;
  const fence = m[2]!;
  if (fence[0] === '`' && m[3]!.includes('`')) return undefined;
  return { char: fence[0]!, length: fence.length };
}

/** The index of the line closing a fence opened at `open`, or the last line when unclosed. */
function fenceClose(lines: readonly Line[], open: number, fence: { char: string; length: number }) {
  const close = new RegExp(`^[ \\t]*\\${fence.char}{${fence.length},}[ \\t]*$`);
  for (let j = open + 1; j < lines.length; j++) if (close.test(lines[j]!.text)) return j;
  return lines.length - 1;
}

function headingText(raw: string | undefined): string {
  return (raw ?? '').replace(/(?:^|[ \t]+)#+$/, '').trim();
}

/**
 * The blocks of a markdown text in order, with their heading paths, and the code fences
 * (those nested in lists too) as atomic ranges.
 * @internal
 */
export function markdownBlocks(text: string): { blocks: MarkdownBlock[]; fences: Unit[] } {
  const lines = splitLines(text);
  const blocks: MarkdownBlock[] = [];
  const fences: Unit[] = [];
  const stack: { level: number; text: string }[] = [];
  let path: readonly string[] = [];
  const push = (kind: MarkdownBlock['kind'], first: number, last: number): void => {
    const r = trimRange(text, lines[first]!.start, lines[last]!.end);
    if (!r) return;
    const cut =
      kind === 'fence'
        ? null
        : kind === 'list'
          ? 'items'
          : kind === 'heading'
            ? 'words'
            : 'sentences';
    blocks.push({ kind, start: r.start, end: r.end, cut, headingPath: path });
    if (kind === 'fence') fences.push({ start: r.start, end: r.end, cut: null });
  };
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (isBlank(line)) {
      i++;
      continue;
    }
    const heading = HEADING.exec(line.text);
    if (heading) {
      const level = heading[1]!.length;
      while (stack.length > 0 && stack.at(-1)!.level >= level) stack.pop();
      stack.push({ level, text: headingText(heading[2]) });
      path = stack.map((h) => h.text);
      push('heading', i, i);
      i++;
      continue;
    }
    const fence = fenceOpen(line, 3);
    if (fence) {
      const close = fenceClose(lines, i, fence);
      push('fence', i, close);
      i = close + 1;
      continue;
    }
    const item = LIST_ITEM.exec(line.text);
    if (item && item[1]!.length <= 3) {
      const last = listEnd(lines, i, fences, text);
      push('list', i, last);
      i = last + 1;
      continue;
    }
    let last = i;
    for (let j = i + 1; j < lines.length; j++) {
      const l = lines[j]!;
      if (isBlank(l) || HEADING.test(l.text) || fenceOpen(l, 3) || INTERRUPTING_ITEM.test(l.text)) {
        break;
      }
      last = j;
    }
    push('paragraph', i, last);
    i = last + 1;
  }
  return { blocks, fences };
}

/**
 * The last line of a list starting at `first`: items, indented continuation lines, lazy
 * continuation lines, blank lines followed by more of the list, and code fences indented under
 * an item (recorded in `fences`, whole).
 */
function listEnd(lines: readonly Line[], first: number, fences: Unit[], text: string): number {
  let last = first;
  let j = first + 1;
  while (j < lines.length) {
    const l = lines[j]!;
    if (isBlank(l)) {
      let k = j + 1;
      while (k < lines.length && isBlank(lines[k]!)) k++;
      if (k >= lines.length) break;
      const next = lines[k]!.text;
      if (!LIST_ITEM.test(next) && !/^[ \t]/.test(next)) break;
      j = k;
      continue;
    }
    if (/^[ \t]/.test(l.text)) {
      const fence = fenceOpen(l, Number.POSITIVE_INFINITY);
      if (fence) {
        const close = fenceClose(lines, j, fence);
        const r = trimRange(text, l.start, lines[close]!.end);
        if (r) fences.push({ start: r.start, end: r.end, cut: null });
        last = close;
        j = close + 1;
        continue;
      }
    } else if (HEADING.test(l.text) || fenceOpen(l, 0)) {
      break;
    }
    last = j;
    j++;
  }
  return last;
}
