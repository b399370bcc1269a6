import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { extname, isAbsolute, join, relative, resolve } from 'node:path';
import { PathNotFoundError } from './errors.js';

/**
 * A file `ingest` will read.
 * @internal
 */
export interface TextFile {
  /** Absolute path. */
  readonly path: string;
  /** The path shown to users and stored as the atoms' source: relative to the working directory when inside it. */
  readonly name: string;
  /** Size in bytes when it was found. */
  readonly size: number;
}

/**
 * File extensions (lower case, without the dot) read from folders, mapped to the content type
 * stored with their atoms.
 * @internal
 */
export const TEXT_EXTENSIONS: ReadonlyMap<string, string> = new Map([
  ...['md', 'markdown', 'mdx'].map((e) => [e, 'text/markdown'] as const),
  ...['html', 'htm'].map((e) => [e, 'text/html'] as const),
  ['csv', 'text/csv'],
  ['tsv', 'text/tab-separated-values'],
  ...['json', 'jsonl', 'ndjson'].map((e) => [e, 'application/json'] as const),
  ...['xml', 'svg'].map((e) => [e, 'application/xml'] as const),
  ...[
    'txt',
    'text',
    'rst',
    'adoc',
    'asciidoc',
    'org',
    'tex',
    'log',
    'yaml',
    'yml',
    'toml',
    'ini',
    'cfg',
    'conf',
    'properties',
    'css',
    'scss',
    'js',
    'mjs',
    'cjs',
    'jsx',
    'ts',
    'mts',
    'cts',
    'tsx',
    'py',
    'rb',
    'go',
    'rs',
    'java',
    'kt',
    'scala',
    'c',
    'h',
    'cc',
    'cpp',
    'hpp',
    'cs',
    'fs',
    'swift',
    'php',
    'pl',
    'lua',
    'r',
    'sql',
    'sh',
    'bash',
    'zsh',
    'ps1',
  ].map((e) => [e, 'text/plain'] as const),
]);

/**
 * The content type of a file by its extension (`text/plain` when unknown).
 * @internal
 */
export function contentTypeOf(path: string): string {
  return TEXT_EXTENSIONS.get(extname(path).slice(1).toLowerCase()) ?? 'text/plain';
}

/**
 * Resolves the paths given to `ingest` into the files to read, in a stable order: a file is
 * taken whatever its extension; a folder is walked recursively for files with a text
 * extension ({@link TEXT_EXTENSIONS}), skipping hidden entries, `node_modules` and symbolic
 * links (no cycles). A file reached twice is listed once. Nothing is read yet.
 *
 * @param paths - files and folders, relative to `cwd` or absolute
 * @param cwd - the working directory
 * @param signal - cancels the walk
 * @returns the files
 * @throws {@link PathNotFoundError} when a path does not exist or cannot be read
 * @internal
 */
export async function findTextFiles(
  paths: readonly string[],
  cwd: string,
  signal?: AbortSignal,
): Promise<TextFile[]> {
  const seen = new Set<string>();
  const files: TextFile[] = [];
  const nameOf = (abs: string): string => {
    const rel = relative(cwd, abs);
    return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? abs : rel;
  };
  const add = (abs: string, size: number): void => {
    if (seen.has(abs)) return;
    seen.add(abs);
    files.push({ path: abs, name: nameOf(abs), size });
  };
  const walk = async (dir: string): Promise<void> => {
    signal?.throwIfAborted();
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (e) {
      throw new PathNotFoundError(nameOf(dir), reasonOf(e), { cause: e });
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const abs = join(dir, entry.name);
      if (entry.isDirectory()) await walk(abs);
      else if (entry.isFile() && TEXT_EXTENSIONS.has(extname(entry.name).slice(1).toLowerCase())) {
        const info = await stat(abs).catch(() => undefined);
        if (info) add(abs, info.size);
      }
    }
  };
  for (const given of paths) {
    signal?.throwIfAborted();
    const abs = resolve(cwd, given);
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(abs);
    } catch (e) {
      throw new PathNotFoundError(given, reasonOf(e), { cause: e });
    }
    if (info.isDirectory()) await walk(abs);
    else if (info.isFile()) add(abs, info.size);
    else throw new PathNotFoundError(given, 'not a file or folder');
  }
  return files;
}

function reasonOf(e: unknown): string {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  switch (code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'not a directory';
    default:
      return typeof code === 'string' ? code : 'cannot be read';
  }
}
