/**
 * `@hartonomous/pipelines/cli`: the `hartonomous` command line as a function. `run(argv, io)`
 * executes `ingest`, `search`, `stats` or `migrate` in-process against the streams,
 * environment and signal you pass, and resolves with the exit status; the `hartonomous`
 * executable is a thin wrapper around it.
 *
 * @example
 * ```ts
 * import { run } from '@hartonomous/pipelines/cli';
 *
 * const ac = new AbortController();
 * process.on('SIGINT', () => ac.abort());
 * process.exitCode = await run(['ingest', 'docs/', '--data-dir', '.data/pglite'], {
 *   stdout: process.stdout,
 *   stderr: process.stderr,
 *   env: process.env,
 *   signal: ac.signal,
 * });
 * ```
 *
 * @module
 */

export type { CliIo, CliStream } from './cli-io.js';
export {
  DatabaseNotFoundError,
  InvalidDatabaseUrlError,
  isDatabaseNotFoundError,
  isInvalidDatabaseUrlError,
  isPathNotFoundError,
  isUsageError,
  PathNotFoundError,
  UsageError,
} from './errors.js';
export { EXIT } from './exit-status.js';
export type { SplitMode } from './parse-command-line.js';
export { run } from './run.js';
export { type TextAtomsOptions, textAtoms } from './text-atoms.js';
