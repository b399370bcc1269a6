import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { glob } from 'tinyglobby';
import { PathNotFoundError } from './errors.js';
import { gitignoreFilter, readGitignores } from './gitignore-filter.js';

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
 * Options of {@link findTextFiles}.
 * @internal
 */
export interface FindTextFilesOptions {
  /** The working directory paths are relative to. */
  readonly cwd: string;
  /**
   * Globs a file in a walked folder must match (relative to that folder; a glob without a `/`
   * matches at any depth, like a `.gitignore` line). @default every file with a text extension
   */
  readonly include?: readonly string[];
  /** Globs of files and folders to leave out of a walk (same rules as `include`). @default none */
  readonly exclude?: readonly string[];
  /** Honour the `.gitignore` files of walked folders (and of their repository above them). @default true */
  readonly gitignore?: boolean;
  /** Cancels the walk. @default none */
  readonly signal?: AbortSignal;
}

/**
 * What {@link findTextFiles} found.
 * @internal
 */
export interface FoundFiles {
  /** The files to read, in a stable order. */
  readonly files: TextFile[];
  /** The paths given that do not exist or cannot be read, with the reason. */
  readonly missing: PathNotFoundError[];
}

/**
 * Resolves the paths given to `ingest` into the files to read, in a stable order: a file is
 * taken whatever its extension; a folder is walked recursively (with `tinyglobby`) for files
 * with a text extension ({@link TEXT_EXTENSIONS}) or matching `include`, leaving out hidden
 * entries, `node_modules`, symbolic links (no cycles), what `exclude` matches and what the
 * `.gitignore` files ignore (nested ones and `!` negations as git reads them, with the
 * `ignore` package). A file reached twice is listed once. Nothing is read yet. A path that
 * does not exist is returned in `missing`; the others are still walked.
 *
 * @param paths - files and folders, relative to `cwd` or absolute
 * @param options - working directory, globs, `.gitignore`, cancellation
 * @returns the files, and the paths that were missing
 * @internal
 */
export async function findTextFiles(
  paths: readonly string[],
  options: FindTextFilesOptions,
): Promise<FoundFiles> {
  const { cwd, signal } = options;
  const seen = new Set<string>();
  const files: TextFile[] = [];
  const missing: PathNotFoundError[] = [];
  const nameOf = (abs: string): string => {
    const rel = relative(cwd, abs);
    return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? abs : rel;
  };
  const add = (abs: string, size: number): void => {
    if (seen.has(abs)) return;
    seen.add(abs);
    files.push({ path: abs, name: nameOf(abs), size });
  };
  for (const given of paths) {
    signal?.throwIfAborted();
    const abs = resolve(cwd, given);
    let info: Stats;
    try {
      info = await stat(abs);
    } catch (e) {
      missing.push(new PathNotFoundError(given, reasonOf(e), { cause: e }));
      continue;
    }
    if (info.isFile()) add(abs, info.size);
    else if (!info.isDirectory())
      missing.push(new PathNotFoundError(given, 'not a file or folder'));
    else {
      try {
        for (const file of await walkFolder(abs, options)) add(file.path, file.size);
      } catch (e) {
        signal?.throwIfAborted();
        missing.push(new PathNotFoundError(given, reasonOf(e), { cause: e }));
      }
    }
  }
  return { files, missing };
}

/** Globs as given, made to match at any depth when they hold no `/` (as in `.gitignore`). */
function anchored(globs: readonly string[]): string[] {
  return globs.map((g) => {
    const trimmed = g.startsWith('./') ? g.slice(2) : g;
    if (trimmed.startsWith('/')) return trimmed.slice(1);
    return trimmed.includes('/') ? trimmed : `**/${trimmed}`;
  });
}

async function walkFolder(
  folder: string,
  options: FindTextFilesOptions,
): Promise<{ path: string; size: number }[]> {
  const include = options.include && options.include.length > 0 ? anchored(options.include) : [];
  const exclude = anchored(options.exclude ?? []).flatMap((g) => [g, `${g}/**`]);
  const useGitignore = options.gitignore ?? true;
  const found = await glob([...(include.length > 0 ? include : ['**/*']), '**/.gitignore'], {
    cwd: folder,
    dot: true,
    onlyFiles: true,
    followSymbolicLinks: false,
    expandDirectories: false,
    ignore: ['**/node_modules/**', '**/.*/**', ...exclude],
    ...(options.signal ? { signal: options.signal } : {}),
  });
  options.signal?.throwIfAborted();
  let ignored: (path: string, isDir: boolean) => boolean = () => false;
  let prefix = '';
  if (useGitignore) {
    const repo = await repositoryAbove(folder);
    const root = repo ?? folder;
    prefix = root === folder ? '' : `${relative(root, folder).split(sep).join('/')}/`;
    const gitignores = [
      ...(repo ? ancestorGitignores(repo, folder) : []),
      ...found.filter((f) => posix.basename(f) === '.gitignore').map((f) => `${prefix}${f}`),
    ];
    ignored = gitignoreFilter(await readGitignores(root, gitignores));
  }
  const chosen = found
    .filter((f) => {
      const base = posix.basename(f);
      if (base.startsWith('.')) return false;
      if (include.length === 0 && !TEXT_EXTENSIONS.has(extname(base).slice(1).toLowerCase()))
        return false;
      return !ignored(`${prefix}${f}`, false);
    })
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: { path: string; size: number }[] = [];
  for (const f of chosen) {
    options.signal?.throwIfAborted();
    const path = join(folder, ...f.split('/'));
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile()) out.push({ path, size: info.size });
  }
  return out;
}

/** The nearest folder at or above `folder` that holds `.git`, if any. */
async function repositoryAbove(folder: string): Promise<string | undefined> {
  for (let dir = folder; ; ) {
    if (
      await stat(join(dir, '.git')).then(
        () => true,
        () => false,
      )
    )
      return dir;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The `.gitignore` paths (relative to `repo`) of the folders from `repo` down to above `folder`. */
function ancestorGitignores(repo: string, folder: string): string[] {
  const parts = relative(repo, folder).split(sep).filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    out.push([...parts.slice(0, i), '.gitignore'].join('/'));
  }
  return out;
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
