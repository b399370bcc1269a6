import { readFileSync } from 'node:fs';
import { isPipelineError, messageOf } from '../core/errors.js';
import { isSchemaOutdatedError } from '../postgres/errors.js';
import type { CliIo } from './cli-io.js';
import { configCommand } from './config-command.js';
import { isUsageError } from './errors.js';
import { ingestCommand } from './ingest-command.js';
import { migrateCommand } from './migrate-command.js';
import { withOperations } from './operations.js';
import { type CliOptions, type CommandName, parseCommandLine } from './parse-command-line.js';
import { searchCommand } from './search-command.js';
import { statsCommand } from './stats-command.js';
import { BIN, usageOf } from './usage-of.js';

const COMMAND_FUNCTIONS: Record<
  CommandName,
  (args: readonly string[], options: CliOptions, io: CliIo) => Promise<number>
> = {
  ingest: ingestCommand,
  search: searchCommand,
  stats: statsCommand,
  migrate: migrateCommand,
  config: configCommand,
};

/**
 * Runs the `hartonomous` command line in-process and resolves with its exit status; it never
 * throws and never calls `process.exit`. Results go to `io.stdout`, progress and errors to
 * `io.stderr`.
 *
 * Commands: `ingest <path...>`, `search <text...>`, `stats`, `migrate`, `help [command]`;
 * `--help` on each, `--version`. Exit status: 0 done; 1 an error, printed as one line
 * `error: <message>` (with the stack under `--verbose`); 2 bad usage, printed with the usage
 * text; 130 cancelled by `io.signal` (an ingest prints its partial report first).
 *
 * @param argv - the arguments, without `node` and the script (`process.argv.slice(2)`)
 * @param io - output streams, environment, working directory, cancellation
 * @returns the exit status
 *
 * @example
 * ```ts
 * import { run } from '@hartonomous/pipelines/cli';
 *
 * let out = '';
 * const code = await run(['stats', '--json', '--data-dir', '.data/pglite'], {
 *   stdout: { write: (s: string) => (out += s) },
 *   stderr: process.stderr,
 *   env: {},
 * });
 * if (code === 0) console.log(JSON.parse(out).atoms);
 * ```
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const verbose = argv.includes('--verbose');
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      io.stdout.write(usageOf(parsed.command));
      return 0;
    }
    if (parsed.kind === 'version') {
      io.stdout.write(`${versionOf()}\n`);
      return 0;
    }
    const code = await withOperations(parsed.command, io, () =>
      COMMAND_FUNCTIONS[parsed.command](parsed.positionals, parsed.options, io),
    );
    return io.signal?.aborted ? 130 : code;
  } catch (e) {
    if (isUsageError(e)) {
      io.stderr.write(`error: ${e.message}\n\n${usageOf(commandOf(e.command))}`);
      return 2;
    }
    if (io.signal?.aborted) {
      io.stderr.write('interrupted\n');
      if (verbose) io.stderr.write(stackOf(e));
      return 130;
    }
    io.stderr.write(`error: ${cliMessageOf(e)}\n`);
    if (verbose) io.stderr.write(stackOf(e));
    return 1;
  }
}

function commandOf(name: string | undefined): CommandName | undefined {
  return name === 'ingest' ||
    name === 'search' ||
    name === 'stats' ||
    name === 'migrate' ||
    name === 'config'
    ? name
    : undefined;
}

/**
 * The one-line message shown for an error: the library's message, with a command-line hint
 * where the library's own advice names a function.
 * @internal
 */
export function cliMessageOf(e: unknown): string {
  if (isSchemaOutdatedError(e)) {
    return `database schema "${e.schema}" is at version ${e.found}, older than the ${e.known} this version needs: run '${BIN} migrate'`;
  }
  let message = isPipelineError(e) || e instanceof Error ? e.message : messageOf(e);
  if (message === '' && e instanceof AggregateError) {
    message = e.errors.map((inner: unknown) => messageOf(inner)).join('; ');
  }
  if (message === '' && e instanceof Error) message = e.name;
  return message.replace(/\s+/g, ' ').trim();
}

/** The stack of an error and of its causes, for `--verbose`. */
function stackOf(e: unknown): string {
  const parts: string[] = [];
  for (let cur: unknown = e, depth = 0; cur !== undefined && depth < 5; depth++) {
    parts.push(
      `${depth === 0 ? '' : 'caused by: '}${cur instanceof Error ? (cur.stack ?? String(cur)) : messageOf(cur)}`,
    );
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return `${parts.join('\n')}\n`;
}

/** The package's version, read from its package.json (two folders up from lib/cli and dist/cli). */
function versionOf(): string {
  const pkg: unknown = JSON.parse(
    readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
  );
  const version =
    typeof pkg === 'object' && pkg !== null ? (pkg as { version?: unknown }).version : undefined;
  return typeof version === 'string' ? version : 'unknown';
}
