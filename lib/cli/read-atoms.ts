import { readFile } from 'node:fs/promises';
import type { AtomInput } from '../atoms/ingest-steps.js';
import { contentTypeOf, type TextFile } from './find-text-files.js';
import { formatBytes } from './format.js';
import type { SplitMode } from './parse-command-line.js';
import { isJsonlFile, readJsonl } from './read-jsonl.js';
import { splitText } from './split-text.js';

/** Files larger than this are skipped rather than read into memory (64 MiB). @internal */
export const MAX_FILE_BYTES = 64 * 1024 * 1024;

/**
 * A file `ingest` did not read, and why.
 * @internal
 */
export interface SkippedFile {
  /** The file, as shown to users. */
  readonly file: string;
  /** `binary`, `not UTF-8`, `empty`, `larger than 64 MiB`, or the system error code. */
  readonly reason: string;
}

/**
 * What reading has got through so far, for the progress display and the report.
 * @internal
 */
export interface ReadTally {
  /** Files read (started, when the run was interrupted), skipped ones excluded. */
  files: number;
  /** Files skipped, with reasons. */
  readonly skipped: SkippedFile[];
  /** Sum of the sizes of all files to read. */
  readonly totalBytes: number;
  /** For item `i` (in source order), the input bytes consumed up to its end. */
  readonly consumedAt: number[];
}

/**
 * Reads files lazily (one at a time, as the pipeline asks for more) and yields their pieces as
 * atoms with `sourceId` `<file>:<line>` (`<file>` with `split: 'file'`), a content type by
 * extension, and metadata `chunk: { documentId: <file>, position, headingPath }` (the piece's
 * index in its file, and with `split: 'paragraph'` the markdown headings it sits under). A `.jsonl`/`.ndjson` file is read as the JSON Lines `export` writes: one atom per
 * record (`content`, `contentType`, `sourceId`, `metadata`); a malformed line is skipped and
 * recorded as `<file>:<line>` with the reason. Binary files (a NUL byte, or not UTF-8) are skipped and recorded, never failed.
 *
 * @param files - the files, from `findTextFiles`
 * @param options - `split`: how files are cut into atoms; `maxFileBytes`: larger files are
 *   skipped (default {@link MAX_FILE_BYTES})
 * @returns the atom source and the tally it keeps up to date
 * @internal
 */
export function readAtoms(
  files: readonly TextFile[],
  options: { readonly split: SplitMode; readonly maxFileBytes?: number },
): { atoms: AsyncGenerator<AtomInput>; tally: ReadTally } {
  const { split } = options;
  const maxFileBytes = options.maxFileBytes ?? MAX_FILE_BYTES;
  const tally: ReadTally = {
    files: 0,
    skipped: [],
    totalBytes: files.reduce((sum, f) => sum + f.size, 0),
    consumedAt: [],
  };
  async function* atoms(): AsyncGenerator<AtomInput> {
    let before = 0;
    for (const file of files) {
      const text = await readText(file, tally, maxFileBytes);
      if (text !== undefined && isJsonlFile(file.path)) {
        // JSON Lines (the format `export` writes): one atom per record
        let any = false;
        for (const entry of readJsonl(text)) {
          if ('error' in entry) {
            tally.skipped.push({ file: `${file.name}:${entry.line}`, reason: entry.error });
            continue;
          }
          if (!any) tally.files++;
          any = true;
          tally.consumedAt.push(before + file.size);
          const r = entry.record;
          yield {
            content: r.content,
            contentType: r.contentType ?? 'text/plain',
            sourceId: r.sourceId ?? `${file.name}:${entry.line}`,
            ...(r.metadata ? { metadata: r.metadata } : {}),
          };
        }
        if (!any) tally.skipped.push({ file: file.name, reason: 'empty' });
      } else if (text !== undefined) {
        let any = false;
        const contentType = contentTypeOf(file.path);
        let position = 0;
        for (const piece of splitText(text, split)) {
          if (!any) tally.files++;
          any = true;
          const fraction = text.length === 0 ? 1 : Math.min(1, piece.end / text.length);
          tally.consumedAt.push(before + Math.round(file.size * fraction));
          yield {
            content: piece.text,
            contentType,
            sourceId: split === 'file' ? file.name : `${file.name}:${piece.line}`,
            // where the piece sits, as the markdown chunker gives it (the file is the document)
            metadata: {
              chunk: {
                documentId: file.name,
                position: position++,
                headingPath: piece.headingPath ?? [],
              },
            },
          };
        }
        if (!any) tally.skipped.push({ file: file.name, reason: 'empty' });
      }
      before += file.size;
    }
  }
  return { atoms: atoms(), tally };
}

const decoder = new TextDecoder('utf-8', { fatal: true });

async function readText(
  file: TextFile,
  tally: ReadTally,
  maxFileBytes: number,
): Promise<string | undefined> {
  const skip = (reason: string): undefined => {
    tally.skipped.push({ file: file.name, reason });
    return undefined;
  };
  const tooLarge = `larger than ${formatBytes(maxFileBytes)}`;
  if (file.size > maxFileBytes) return skip(tooLarge);
  let bytes: Buffer;
  try {
    bytes = await readFile(file.path);
  } catch (e) {
    const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
    return skip(typeof code === 'string' ? code : 'unreadable');
  }
  if (bytes.length > maxFileBytes) return skip(tooLarge);
  if (bytes.includes(0)) return skip('binary');
  try {
    return decoder.decode(bytes);
  } catch {
    return skip('not UTF-8');
  }
}
