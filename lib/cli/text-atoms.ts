import type { AtomInput } from '../atoms/ingest-steps.js';
import { findTextFiles } from './find-text-files.js';
import type { SplitMode } from './parse-command-line.js';
import { readAtoms } from './read-atoms.js';

/**
 * Options of {@link textAtoms}.
 */
export interface TextAtomsOptions {
  /** How files are cut into atoms. @default 'paragraph' */
  split?: SplitMode;
  /** Directory that relative paths and the `sourceId`s are relative to. @default process.cwd() */
  cwd?: string;
  /**
   * Globs a file in a folder must match (a glob without a `/` matches at any depth).
   * @default every file with a text extension
   */
  include?: readonly string[];
  /** Globs of files and folders to leave out of folder walks. @default none */
  exclude?: readonly string[];
  /** Honour `.gitignore` files (nested ones and `!` negations, as git does). @default true */
  gitignore?: boolean;
  /** Cancels the folder walk. @default none */
  signal?: AbortSignal;
}

/**
 * The atoms of text files and folders, as `hartonomous ingest` reads them: folders are walked
 * recursively for text files (hidden entries, `node_modules`, symbolic links and what
 * `.gitignore` files ignore are skipped; `include` and `exclude` globs narrow it), each
 * file is read lazily and cut into paragraphs (or lines, or whole files), with `sourceId`
 * `<file>:<line>`, a content type by extension and metadata
 * `chunk: { documentId: <file>, position, headingPath }`. Binary, non-UTF-8 and empty files are skipped.
 *
 * @param paths - files and folders
 * @param options - split mode, working directory, cancellation
 * @returns an async iterable of atoms to pass to `ingest`
 * @throws `PathNotFoundError` when a path does not exist (the first such path)
 *
 * @example
 * ```ts
 * import { ingest } from '@hartonomous/pipelines/atoms';
 * import { textAtoms } from '@hartonomous/pipelines/cli';
 * import { openDatabase } from '@hartonomous/pipelines/postgres';
 *
 * const db = await openDatabase();
 * const report = await ingest(await textAtoms(['docs/']), { db });
 * ```
 */
export async function textAtoms(
  paths: readonly string[],
  options: TextAtomsOptions = {},
): Promise<AsyncGenerator<AtomInput>> {
  const { files, missing } = await findTextFiles(paths, {
    cwd: options.cwd ?? process.cwd(),
    ...(options.include ? { include: options.include } : {}),
    ...(options.exclude ? { exclude: options.exclude } : {}),
    ...(options.gitignore !== undefined ? { gitignore: options.gitignore } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (missing[0]) throw missing[0];
  return readAtoms(files, { split: options.split ?? 'paragraph' }).atoms;
}
