/**
 * The TypeScript blocks of a Markdown file, with where they are: the heading they sit under,
 * the line of their opening fence, and the marker before them, if any.
 *
 * Markers are HTML comments on the line(s) just before a fence (blank lines allowed between):
 * - `<!-- fragment: why -->`: not a whole program; neither type-checked nor run;
 * - `<!-- no-run: why -->`: type-checked, not run (e.g. it serves until killed).
 */

/** One fenced TypeScript block. */
export interface ReadmeBlock {
  /** 1-based number among the file's TypeScript blocks. */
  readonly n: number;
  /** The heading it sits under, with its `#`s (`## A first pipeline`), or `(top)`. */
  readonly heading: string;
  /** Line of the opening fence (1-based); the code's first line is `fenceLine + 1`. */
  readonly fenceLine: number;
  /** The code, without the fences. */
  readonly code: string;
  /** `'run'` (type-checked and run), `'no-run'` or `'fragment'`. */
  readonly kind: 'run' | 'no-run' | 'fragment';
  /** The reason given in the marker. */
  readonly reason?: string;
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/;
const MARKER = /^<!--\s*(fragment|no-run)\s*(?::\s*(.*?))?\s*-->\s*$/;

/**
 * Extracts the TypeScript blocks (` ```ts `, ` ```typescript `, ` ```tsx `) of a Markdown text.
 *
 * @param markdown - the text
 * @returns the blocks, in order
 */
export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split(/\r?\n/);
  const blocks: ReadmeBlock[] = [];
  let heading = '(top)';
  let open: { fence: string; lang: string; line: number; body: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (open) {
      const close = FENCE.exec(line);
      if (close?.[2]?.startsWith(open.fence) && (close[3] ?? '') === '') {
        if (['ts', 'typescript', 'tsx', 'mts'].includes(open.lang)) {
          const marker = markerBefore(lines, open.line - 1);
          blocks.push({
            n: blocks.length + 1,
            heading,
            fenceLine: open.line,
            code: open.body.join('\n'),
            kind: marker?.kind ?? 'run',
            ...(marker?.reason ? { reason: marker.reason } : {}),
          });
        }
        open = undefined;
      } else open.body.push(line);
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      open = {
        fence: fence[2] as string,
        lang: (fence[3] ?? '').toLowerCase(),
        line: i + 1,
        body: [],
      };
      continue;
    }
    const h = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) heading = `${h[1]} ${h[2]}`;
  }
  return blocks;
}

/** The marker on the lines before index `fenceIndex` (0-based), skipping blank lines. */
function markerBefore(
  lines: readonly string[],
  fenceIndex: number,
): { kind: 'fragment' | 'no-run'; reason?: string } | undefined {
  for (let i = fenceIndex - 1; i >= 0; i--) {
    const line = (lines[i] as string).trim();
    if (line === '') continue;
    const m = MARKER.exec(line);
    if (!m) return undefined;
    return { kind: m[1] as 'fragment' | 'no-run', ...(m[2] ? { reason: m[2] } : {}) };
  }
  return undefined;
}
