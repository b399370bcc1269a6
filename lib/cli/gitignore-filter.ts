import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import ignore, { type Ignore } from 'ignore';

/**
 * The rules of one `.gitignore` file and the folder they apply to.
 * @internal
 */
export interface GitignoreRules {
  /** The folder holding the file, relative to the walk's root (`''` for the root), `/`-separated. */
  readonly dir: string;
  /** The file's text. */
  readonly text: string;
}

/**
 * Decides, as git does, whether a path under a folder is ignored by the `.gitignore` files
 * of that folder and its subfolders:
 * - a path inside an ignored folder is ignored (git never re-includes it);
 * - otherwise the deepest `.gitignore` with a rule matching the path decides, its last
 *   matching rule winning (`!pattern` re-includes); no matching rule: not ignored.
 *
 * Matching itself is the `ignore` package's (the `.gitignore` matcher eslint uses). That
 * package judges a path by one file's rules and treats a path inside a folder those rules
 * exclude as excluded. When a deeper `.gitignore` re-includes such a folder (`build/` above,
 * `!build/` below), the shallower file's rules are applied to the folder's files one rule at a
 * time, leaving out the rules that match the folder (git's answer, except for a rule that
 * matches both the folder and the file's own name).
 *
 * @param rules - the `.gitignore` files found, in any order
 * @returns `ignored(path, isDir)`, `path` relative to the root and `/`-separated
 * @internal
 */
export function gitignoreFilter(
  rules: readonly GitignoreRules[],
): (path: string, isDir: boolean) => boolean {
  // deepest first: the first level with a rule matching the path decides
  const levels: { dir: string; ig: Ignore; lines: string[]; singles?: Ignore[] }[] = rules
    .map((r) => ({
      dir: r.dir,
      ig: ignore().add(r.text),
      lines: r.text.split(/\r?\n/).filter((l) => l.trim() !== '' && !l.startsWith('#')),
    }))
    .sort((a, b) => depthOf(b.dir) - depthOf(a.dir) || (a.dir < b.dir ? -1 : 1));
  const dirCache = new Map<string, boolean>();

  const ownVerdict = (path: string, isDir: boolean): boolean => {
    for (const level of levels) {
      const { dir, ig } = level;
      if (dir !== '' && !path.startsWith(`${dir}/`)) continue;
      const rel = dir === '' ? path : path.slice(dir.length + 1);
      const key = isDir ? `${rel}/` : rel;
      const r = ig.test(key);
      const parent = posix.dirname(rel);
      if (r.ignored && parent !== '.' && ig.test(`${parent}/`).ignored) {
        // this file's rules exclude the parent folder, which a deeper file re-included:
        // judge the path by this file's rules that do not match the folder, last first
        level.singles ??= level.lines.map((line) => ignore().add(line));
        for (let i = level.singles.length - 1; i >= 0; i--) {
          const single = level.singles[i] as Ignore;
          if (single.test(`${parent}/`).ignored) continue;
          const own = single.test(key);
          if (own.ignored) return true;
          if (own.unignored) return false;
        }
        continue;
      }
      if (r.ignored) return true;
      if (r.unignored) return false;
    }
    return false;
  };
  const dirIgnored = (dir: string): boolean => {
    const cached = dirCache.get(dir);
    if (cached !== undefined) return cached;
    const parent = posix.dirname(dir);
    const verdict = (parent !== '.' && dirIgnored(parent)) || ownVerdict(dir, true);
    dirCache.set(dir, verdict);
    return verdict;
  };
  if (levels.length === 0) return () => false;
  return (path, isDir) => {
    const parent = posix.dirname(path);
    if (parent !== '.' && dirIgnored(parent)) return true;
    return isDir ? dirIgnored(path) : ownVerdict(path, false);
  };
}

/**
 * Reads `.gitignore` files.
 * @param root - the folder the paths are relative to
 * @param files - the `.gitignore` files, relative to `root`, `/`-separated
 * @returns their rules (unreadable files are left out)
 * @internal
 */
export async function readGitignores(
  root: string,
  files: readonly string[],
): Promise<GitignoreRules[]> {
  const read = await Promise.all(
    files.map(async (file) => {
      const text = await readFile(join(root, file), 'utf8').catch(() => undefined);
      const dir = posix.dirname(file);
      return text === undefined ? undefined : { dir: dir === '.' ? '' : dir, text };
    }),
  );
  return read.filter((r): r is GitignoreRules => r !== undefined);
}

function depthOf(dir: string): number {
  return dir === '' ? 0 : dir.split('/').length;
}
