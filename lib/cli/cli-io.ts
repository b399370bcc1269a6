/**
 * What a CLI run talks to: its output streams, environment, working directory and
 * cancellation. `main.ts` passes the process's; tests pass their own.
 *
 * @module
 */

/**
 * A writable text stream: `process.stdout`, `process.stderr`, or anything with `write`.
 *
 * @example
 * ```ts
 * import type { CliStream } from '@hartonomous/pipelines/cli';
 *
 * let text = '';
 * const capture: CliStream = { write: (chunk) => { text += chunk; return true; } };
 * ```
 */
export interface CliStream {
  /**
   * Writes text.
   * @param chunk - the text
   * @returns anything (ignored)
   */
  write(chunk: string): unknown;
  /** A terminal: progress is drawn as a bar rather than printed as lines. @default false */
  readonly isTTY?: boolean;
  /** Terminal width in characters. @default 80 */
  readonly columns?: number;
}

/**
 * The environment of one {@link run} of the command line.
 *
 * @example
 * ```ts
 * import { run, type CliIo } from '@hartonomous/pipelines/cli';
 *
 * const io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };
 * process.exitCode = await run(['stats', '--json'], io);
 * ```
 */
export interface CliIo {
  /** Where results go (reports, hits, `--json` output, help). */
  readonly stdout: CliStream;
  /** Where progress, warnings and errors go. */
  readonly stderr: CliStream;
  /** Environment variables read: `DATABASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths (arguments, `--data-dir`) are resolved against. @default process.cwd() */
  readonly cwd?: string;
  /**
   * Aborting it cancels the run: an ingest stops, prints its partial report and the run returns
   * 130; any other command returns 130 without output. @default none
   */
  readonly signal?: AbortSignal;
}
