import { readFileSync } from 'node:fs';
import { isPipelineError, messageOf } from '../core/errors.js';
import { isSchemaOutdatedError } from '../postgres/errors.js';
import type { CliIo } from './cli-io.js';
import { isUsageError } from './errors.js';
import { EXIT } from './exit-status.js';
import {
  type CliOptions,
  COMMANDS,
  type CommandName,
  parseCommandLine,
} from './parse-command-line.js';
import { BIN, usageOf } from './usage-of.js';

type CommandFunction = (args: readonly string[], options: CliOptions, io: CliIo) => Promise<number>;

/**
 * Each command's module, loaded only when that command runs: `--help`, `--version` and bad
 * usage load nothing beyond the parser, so they work without the optional peer dependencies
 * (MikroORM, PGlite, Azure) installed.
 */
const COMMAND_FUNCTIONS: Record<CommandName, () => Promise<CommandFunction>> = {
  ingest: async () => (await import('./ingest-command.js')).ingestCommand,
  sync: async () => (await import('./sync-command.js')).syncCommand,
  delete: async () => (await import('./delete-command.js')).deleteCommand,
  export: async () => (await import('./export-command.js')).exportCommand,
  search: async () => (await import('./search-command.js')).searchCommand,
  reembed: async () => (await import('./reembed-command.js')).reembedCommand,
  stats: async () => (await import('./stats-command.js')).statsCommand,
  migrate: async () => (await import('./migrate-command.js')).migrateCommand,
  config: async () => (await import('./config-command.js')).configCommand,
};

/** The optional peer dependencies the commands load. */
const PEERS =
  '@mikro-orm/core @mikro-orm/postgresql @electric-sql/pglite @electric-sql/pglite-pgvector';

/**
 * Runs the `hartonomous` command line in-process and resolves with its exit status; it never
 * throws and never calls `process.exit`. Results go to `io.stdout`, progress and errors to
 * `io.stderr`.
 *
 * Commands: `ingest <path...>`, `search <text...>`, `stats`, `migrate`, `help [command]`;
 * `--help` on each, `--version`. Exit status ({@link EXIT}): 0 done, every item stored or a
 * duplicate; 1 an error stopped the run, printed as one line `error: <message>` (with the
 * stack under `--verbose`); 2 bad usage, printed with the usage text; 3 some items failed or
 * some paths given were missing (the report lists them; the rest was stored); 130 cancelled
 * by `io.signal` (an ingest prints its partial report first). With `--json`, an error is also
 * printed on stdout as `{"error": {"name", "code", "message"}, "exitCode"}`.
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
  const dashes = argv.indexOf('--');
  const flags = dashes === -1 ? argv : argv.slice(0, dashes);
  const verbose = flags.includes('--verbose');
  const json = flags.includes('--json');
  const fail = (e: unknown, exitCode: number, text: string): number => {
    io.stderr.write(text);
    if (json) io.stdout.write(`${JSON.stringify(errorJson(e, exitCode), null, 2)}\n`);
    return exitCode;
  };
  try {
    const parsed = parseCommandLine(argv);
    if (parsed.kind === 'help') {
      io.stdout.write(usageOf(parsed.command));
      return EXIT.ok;
    }
    if (parsed.kind === 'version') {
      io.stdout.write(`${versionOf()}\n`);
      return EXIT.ok;
    }
    const command = await COMMAND_FUNCTIONS[parsed.command]();
    const { withOperations } = await import('./operations.js');
    const code = await withOperations(parsed.command, io, () =>
      command(parsed.positionals, parsed.options, io),
    );
    return io.signal?.aborted ? EXIT.interrupted : code;
  } catch (e) {
    if (isUsageError(e)) {
      return fail(e, EXIT.usage, `error: ${e.message}\n\n${usageOf(commandOf(e.command))}`);
    }
    if (io.signal?.aborted) {
      return fail(e, EXIT.interrupted, `interrupted\n${verbose ? stackOf(e) : ''}`);
    }
    const peer = missingPeerOf(e);
    const hint = peer
      ? `\n${BIN} needs the optional peer dependency ${peer} for this command: npm i ${PEERS}\n`
      : '';
    return fail(e, EXIT.error, `error: ${cliMessageOf(e)}\n${hint}${verbose ? stackOf(e) : ''}`);
  }
}

/**
 * What `--json` prints for an error.
 * @internal
 */
export interface CliErrorJson {
  readonly error: {
    /** The error's class name, e.g. `DatabaseUnavailableError`. */
    readonly name: string;
    /** The library's error code, when it is one of the library's errors. */
    readonly code?: string;
    /** The one-line message also printed on stderr. */
    readonly message: string;
  };
  /** The exit status. */
  readonly exitCode: number;
}

function errorJson(e: unknown, exitCode: number): CliErrorJson {
  const name = e instanceof Error ? e.name : typeof e;
  const code = isPipelineError(e)
    ? e.code
    : typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
      ? (e as { code: string }).code
      : undefined;
  return {
    error: { name, ...(code !== undefined ? { code } : {}), message: cliMessageOf(e) },
    exitCode,
  };
}

/** The optional peer a failed import was looking for, if that is what failed. */
function missingPeerOf(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  if ((e as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') return undefined;
  const m = /Cannot find (?:package|module) '((?:@[^/']+\/)?[^/']+)/.exec(messageOf(e));
  const name = m?.[1];
  return name && /^(@mikro-orm|@electric-sql|@azure|pg|knex)/.test(name) ? name : undefined;
}

function commandOf(name: string | undefined): CommandName | undefined {
  return (COMMANDS as readonly (string | undefined)[]).includes(name)
    ? (name as CommandName)
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
