/**
 * The exit statuses of the `hartonomous` command line (and of {@link run}):
 * - `ok` (0): done; every item was stored or found to be a duplicate;
 * - `error` (1): an error stopped the run (a database that cannot be opened, no path given
 *   exists, a malformed database URL, ...), printed as one `error:` line;
 * - `usage` (2): the command line is wrong, printed with the usage;
 * - `itemsFailed` (3): the run finished but some items failed or some paths given were
 *   missing; the report lists them and everything else was stored;
 * - `interrupted` (130): cancelled (Ctrl-C); what was stored stays stored.
 *
 * @example
 * ```ts
 * import { EXIT, run } from '@hartonomous/pipelines/cli';
 *
 * const code = await run(['stats', '--data-dir', 'memory://'], {
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 *   env: {},
 * });
 * if (code === EXIT.itemsFailed) console.error('some items failed: see the report');
 * ```
 */
export const EXIT = {
  /** 0: done; every item was stored or found to be a duplicate. */
  ok: 0,
  /** 1: an error stopped the run. */
  error: 1,
  /** 2: the command line is wrong. */
  usage: 2,
  /** 3: some items failed or some paths were missing; the rest was stored. */
  itemsFailed: 3,
  /** 130: interrupted. */
  interrupted: 130,
} as const;
