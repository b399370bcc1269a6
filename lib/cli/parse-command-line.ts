import { parseArgs } from 'node:util';
import type { SearchMode } from '../atoms/search-similar.js';
import { closestMatch } from './closest-match.js';
import { checkDatabaseUrl, UsageError } from './errors.js';

/**
 * The commands of the `hartonomous` command line.
 * @internal
 */
export type CommandName =
  | 'ingest'
  | 'sync'
  | 'delete'
  | 'export'
  | 'search'
  | 'reembed'
  | 'stats'
  | 'migrate'
  | 'config';

/** The commands, in the order the usage lists them. @internal */
export const COMMANDS: readonly CommandName[] = [
  'ingest',
  'sync',
  'delete',
  'export',
  'search',
  'reembed',
  'stats',
  'migrate',
  'config',
];

/**
 * How files are cut into atoms: runs of non-blank lines, every non-blank line, or whole files.
 *
 * @example
 * ```ts
 * import type { SplitMode } from '@hartonomous/pipelines/cli';
 * const split: SplitMode = 'paragraph';
 * ```
 */
export type SplitMode = 'paragraph' | 'file' | 'line';

/** Which embedder turns text into vectors. @internal */
export type EmbedderKind = 'local' | 'openai';

/**
 * One option of the command line, described once for the parser and the usage text.
 * @internal
 */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** Placeholder of the value in the usage, e.g. `<url>`. */
  readonly value?: string;
  readonly help: string;
  /** Commands that accept it; `'top'` means only without a command (`--version`). */
  readonly commands: readonly CommandName[] | 'all' | 'top';
  readonly choices?: readonly string[];
  /** Integer bounds, for numeric options. */
  readonly integer?: { readonly min: number; readonly max: number };
  /** May be given several times; every value is kept. */
  readonly multiple?: boolean;
  /** A byte size: an integer with an optional unit (`512KiB`, `4MiB`, `1GiB`). */
  readonly bytes?: { readonly min: number; readonly max: number };
}

const DB_COMMANDS: readonly CommandName[] = COMMANDS;
const EMBED_COMMANDS: readonly CommandName[] = ['ingest', 'sync', 'search', 'reembed'];
/** Commands that read files and folders. */
const FILE_COMMANDS: readonly CommandName[] = ['ingest', 'sync'];

/**
 * Every option, keyed by its long name.
 * @internal
 */
export const OPTION_SPECS = {
  db: {
    type: 'string',
    value: '<url>',
    help: 'PostgreSQL server URL (default: $DATABASE_URL, unless --data-dir is given)',
    commands: DB_COMMANDS,
  },
  'data-dir': {
    type: 'string',
    value: '<dir>',
    help: "embedded PGlite data folder, or 'memory://' (default: .data/pglite)",
    commands: DB_COMMANDS,
  },
  schema: {
    type: 'string',
    value: '<name>',
    help: 'PostgreSQL schema holding the tables (default: public)',
    commands: DB_COMMANDS,
  },
  split: {
    type: 'string',
    value: '<mode>',
    help: 'paragraph (markdown blocks: paragraphs, a heading with the block after it, whole lists and code fences), line, or file (default: paragraph)',
    commands: ['ingest'],
    choices: ['paragraph', 'line', 'file'],
  },
  embedder: {
    type: 'string',
    value: '<kind>',
    help: 'local (built-in, no service) or openai (any OpenAI-compatible server) (default: local)',
    commands: EMBED_COMMANDS,
    choices: ['local', 'openai'],
  },
  'embed-url': {
    type: 'string',
    value: '<url>',
    help: 'embeddings server base URL for --embedder openai (default: $OPENAI_BASE_URL, else OpenAI); key from $OPENAI_API_KEY',
    commands: EMBED_COMMANDS,
  },
  'embed-model': {
    type: 'string',
    value: '<name>',
    help: 'embedding model for --embedder openai (required with it)',
    commands: EMBED_COMMANDS,
  },
  dimensions: {
    type: 'string',
    value: '<n>',
    help: "embedding dimensions; fixed when the database is created (default: the stored value, else 384); with reembed, the new model's (default: its stored value, else the database's)",
    commands: ['ingest', 'sync', 'search', 'migrate', 'reembed'],
    integer: { min: 1, max: 16_000 },
  },
  include: {
    type: 'string',
    value: '<glob>',
    help: "in folders, read only files matching this glob (repeatable; a glob without '/' matches at any depth) (default: files with a text extension)",
    commands: FILE_COMMANDS,
    multiple: true,
  },
  exclude: {
    type: 'string',
    value: '<glob>',
    help: 'in folders, skip files and folders matching this glob (repeatable)',
    commands: FILE_COMMANDS,
    multiple: true,
  },
  'no-gitignore': {
    type: 'boolean',
    help: 'read files that .gitignore files ignore (default: honour every .gitignore, nested ones and ! negations included)',
    commands: FILE_COMMANDS,
  },
  'max-bytes': {
    type: 'string',
    value: '<size>',
    help: 'largest atom in bytes, e.g. 4MiB; a larger piece fails as ContentTooLargeError (default: 1MiB)',
    commands: FILE_COMMANDS,
    bytes: { min: 1, max: 1024 * 1024 * 1024 },
  },
  'batch-size': {
    type: 'string',
    value: '<n>',
    help: 'items per dedupe, embed and persist batch (default: 256; reembed: atoms per embed request and write, default 64)',
    commands: [...FILE_COMMANDS, 'reembed'],
    integer: { min: 1, max: 100_000 },
  },
  quiet: {
    type: 'boolean',
    short: 'q',
    help: 'no progress on stderr',
    commands: ['ingest', 'sync', 'export', 'reembed'],
  },
  collection: {
    type: 'string',
    value: '<name>',
    help: 'the collection (namespace) of the documents; required by sync and delete (export, search, reembed: all atoms without it)',
    commands: ['sync', 'delete', 'export', 'search', 'reembed'],
  },
  'to-model': {
    type: 'string',
    value: '<name>',
    help: 'the new embedding model: its vectors are stored under this name (with --embedder openai, also the model asked of the server unless --embed-model is given; the local embedder hashes features at --dimensions)',
    commands: ['reembed'],
  },
  'from-model': {
    type: 'string',
    value: '<name>',
    help: 'only atoms with a vector of this model (default: every atom)',
    commands: ['reembed'],
  },
  'set-default': {
    type: 'boolean',
    help: "with --collection: once every atom of the collection has a vector of the new model, make it the collection's default search model",
    commands: ['reembed'],
  },
  model: {
    type: 'string',
    value: '<name>',
    help: "the embedding model whose vectors are searched (default: the collection's default model with --collection, else the embedder's)",
    commands: ['search'],
  },
  cleanup: {
    type: 'string',
    value: '<mode>',
    help: "none, incremental (delete the old chunks of changed documents) or full (also delete the collection's documents the folder no longer has) (default: incremental)",
    commands: ['sync'],
    choices: ['none', 'incremental', 'full'],
  },
  vectors: {
    type: 'boolean',
    help: 'include each atom\'s embedding as base64 float32 (little-endian) in "vector"',
    commands: ['export'],
  },
  k: {
    type: 'string',
    short: 'k',
    value: '<n>',
    help: 'how many atoms to show (default: 5)',
    commands: ['search'],
    integer: { min: 1, max: 10_000 },
  },
  mode: {
    type: 'string',
    value: '<mode>',
    help: 'vector (embedding similarity), text (full-text search) or hybrid (both, fused by reciprocal rank) (default: vector)',
    commands: ['search'],
    choices: ['vector', 'text', 'hybrid'],
  },
  filter: {
    type: 'string',
    value: '<key=value>',
    help: 'only atoms whose metadata has this key and value (repeatable; a value that reads as JSON, like 2 or true, is matched as such)',
    commands: ['search'],
    multiple: true,
  },
  'content-type': {
    type: 'string',
    value: '<type>',
    help: 'only atoms of this content type, e.g. text/markdown',
    commands: ['search'],
  },
  json: {
    type: 'boolean',
    help: 'machine-readable JSON on stdout',
    commands: DB_COMMANDS,
  },
  verbose: {
    type: 'boolean',
    help: 'show stack traces with errors',
    commands: 'all',
  },
  help: {
    type: 'boolean',
    short: 'h',
    help: 'show this help',
    commands: 'all',
  },
  version: {
    type: 'boolean',
    short: 'V',
    help: 'print the version',
    commands: 'top',
  },
} as const satisfies Record<string, OptionSpec>;

/** A long option name. @internal */
export type OptionName = keyof typeof OPTION_SPECS;

/**
 * The options of a command line, converted and validated.
 * @internal
 */
export interface CliOptions {
  readonly db?: string;
  readonly dataDir?: string;
  readonly schema?: string;
  readonly split: SplitMode;
  readonly embedder: EmbedderKind;
  readonly embedUrl?: string;
  readonly embedModel?: string;
  readonly dimensions?: number;
  readonly batchSize?: number;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly gitignore: boolean;
  readonly maxBytes?: number;
  readonly quiet: boolean;
  readonly k: number;
  readonly collection?: string;
  /** `reembed --to-model`. */
  readonly toModel?: string;
  /** `reembed --from-model`. */
  readonly fromModel?: string;
  /** `reembed --set-default`. */
  readonly setDefault: boolean;
  /** `search --model`. */
  readonly model?: string;
  readonly cleanup: 'none' | 'incremental' | 'full';
  readonly vectors: boolean;
  readonly mode: SearchMode;
  /** The `--filter key=value` pairs as one metadata object. */
  readonly filter?: Readonly<Record<string, unknown>>;
  readonly contentType?: string;
  readonly json: boolean;
  readonly verbose: boolean;
}

/**
 * What a command line asks for.
 * @internal
 */
export type ParsedCommandLine =
  | { readonly kind: 'help'; readonly command?: CommandName }
  | { readonly kind: 'version' }
  | {
      readonly kind: 'command';
      readonly command: CommandName;
      readonly positionals: readonly string[];
      readonly options: CliOptions;
    };

/**
 * Parses and validates a command line (`argv` without `node` and the script): the command,
 * its positional arguments and options. Options may come before or after the command.
 *
 * @param argv - the arguments
 * @returns help, version, or a command with its options
 * @throws {@link UsageError} for an unknown command or option, an option the command does not
 *   take, a missing or malformed value
 * @internal
 */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const specs: Record<string, OptionSpec> = OPTION_SPECS;
  const parserOptions: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    parserOptions[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}) };
  }
  const { tokens } = parseArgs({
    args: [...argv],
    options: parserOptions,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });

  const positionals: string[] = [];
  const values = new Map<string, string | true>();
  const lists = new Map<string, string[]>();
  const given: { name: string; rawName: string }[] = [];
  let command: CommandName | 'help' | undefined;
  for (const token of tokens) {
    if (token.kind === 'positional') {
      if (command === undefined) command = commandOf(token.value);
      else positionals.push(token.value);
    } else if (token.kind === 'option') {
      given.push({ name: token.name, rawName: token.rawName });
      const spec = specs[token.name];
      if (!spec) continue; // reported below, once the command is known
      if (spec.type === 'boolean') {
        if (token.value !== undefined) {
          throw new UsageError(`option '${token.rawName}' takes no value`, knownCommand(command));
        }
        values.set(token.name, true);
      } else {
        const value = token.value;
        if (value === undefined || (!token.inlineValue && value.startsWith('-') && value !== '-')) {
          throw new UsageError(
            `option '${token.rawName}' needs a value ${spec.value ?? ''}`.trimEnd(),
            knownCommand(command),
          );
        }
        values.set(token.name, value);
        if (spec.multiple) lists.set(token.name, [...(lists.get(token.name) ?? []), value]);
      }
    }
  }

  if (command === 'help') {
    const about = positionals[0];
    if (about === undefined) return { kind: 'help' };
    const target = commandOf(about);
    if (target === 'help') return { kind: 'help' };
    return { kind: 'help', command: target };
  }
  if (values.has('help')) return command ? { kind: 'help', command } : { kind: 'help' };

  for (const { name, rawName } of given) {
    const spec = specs[name];
    if (!spec) {
      const names = Object.entries(specs)
        .filter(
          ([, s]) =>
            s.commands === 'all' ||
            (command === undefined
              ? s.commands === 'top'
              : typeof s.commands !== 'string' && s.commands.includes(command)),
        )
        .map(([n]) => n);
      const near = rawName.startsWith('--') ? closestMatch(name, names) : undefined;
      throw new UsageError(
        `unknown option '${rawName}'${near ? `; did you mean '--${near}'?` : ''}`,
        command,
      );
    }
    // without a command every known option passes here: 'missing command' is reported below
    const allowed =
      command === undefined ||
      spec.commands === 'all' ||
      (typeof spec.commands !== 'string' && spec.commands.includes(command));
    if (!allowed) {
      throw new UsageError(
        command === undefined
          ? `option '${rawName}' needs a command`
          : `'${command}' has no option '${rawName}'`,
        command,
      );
    }
  }
  if (values.has('version')) return { kind: 'version' };
  if (command === undefined) throw new UsageError('missing command');

  const string = (name: OptionName): string | undefined => {
    const v = values.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const choice = <T extends string>(name: OptionName, fallback: T): T => {
    const v = string(name);
    if (v === undefined) return fallback;
    const choices: readonly string[] = (specs[name] as OptionSpec).choices ?? [];
    if (!choices.includes(v)) {
      throw new UsageError(
        `--${name} must be one of ${choices.join(', ')}, got '${v}'`,
        command as string,
      );
    }
    return v as T;
  };
  const integer = (name: OptionName): number | undefined => {
    const v = string(name);
    if (v === undefined) return undefined;
    const { min, max } = (specs[name] as OptionSpec).integer ?? { min: 1, max: 2 ** 31 };
    const n = /^\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new UsageError(
        `--${name} must be an integer from ${min} to ${max}, got '${v}'`,
        command as string,
      );
    }
    return n;
  };
  const byteSize = (name: OptionName): number | undefined => {
    const v = string(name);
    if (v === undefined) return undefined;
    const { min, max } = (specs[name] as OptionSpec).bytes ?? { min: 1, max: 2 ** 31 };
    const n = parseByteSize(v);
    if (n === undefined || n < min || n > max) {
      throw new UsageError(
        `--${name} must be a size from ${min} byte to 1GiB, like 1048576, 512KiB or 4MiB, got '${v}'`,
        command as string,
      );
    }
    return n;
  };
  const globs = (name: OptionName): string[] => {
    const list = lists.get(name) ?? [];
    if (list.some((g) => g.trim() === '')) {
      throw new UsageError(`--${name} must not be empty`, command as string);
    }
    return list;
  };
  const nonEmpty = (name: OptionName): string | undefined => {
    const v = string(name);
    if (v !== undefined && v.trim() === '') {
      throw new UsageError(`--${name} must not be empty`, command as string);
    }
    return v;
  };

  const options: CliOptions = {
    db: nonEmpty('db'),
    dataDir: nonEmpty('data-dir'),
    schema: nonEmpty('schema'),
    split: choice<SplitMode>('split', 'paragraph'),
    embedder: choice<EmbedderKind>('embedder', 'local'),
    embedUrl: nonEmpty('embed-url'),
    embedModel: nonEmpty('embed-model'),
    dimensions: integer('dimensions'),
    batchSize: integer('batch-size'),
    include: globs('include'),
    exclude: globs('exclude'),
    gitignore: !values.has('no-gitignore'),
    maxBytes: byteSize('max-bytes'),
    quiet: values.has('quiet'),
    k: integer('k') ?? 5,
    collection: nonEmpty('collection'),
    toModel: nonEmpty('to-model'),
    fromModel: nonEmpty('from-model'),
    setDefault: values.has('set-default'),
    model: nonEmpty('model'),
    cleanup: choice<'none' | 'incremental' | 'full'>('cleanup', 'incremental'),
    vectors: values.has('vectors'),
    mode: choice<SearchMode>('mode', 'vector'),
    filter: metadataFilter(lists.get('filter'), command),
    contentType: nonEmpty('content-type'),
    json: values.has('json'),
    verbose: values.has('verbose'),
  };
  if ((command === 'sync' || command === 'delete') && options.collection === undefined) {
    throw new UsageError(`${command} needs --collection <name>`, command);
  }
  if (command === 'reembed' && options.toModel === undefined) {
    throw new UsageError('reembed needs --to-model <name>', command);
  }
  if (options.setDefault && options.collection === undefined) {
    throw new UsageError('--set-default needs --collection <name>', command);
  }
  checkDatabaseOptions(options, command);
  checkEmbedderOptions(options, command);
  return { kind: 'command', command, positionals, options };
}

/**
 * `--filter key=value` pairs as a metadata object: the value is read as JSON when it is valid
 * JSON (`n=2` is the number 2, `ok=true` a boolean, `tags=["a"]` an array), else as a string.
 */
function metadataFilter(
  pairs: readonly string[] | undefined,
  command: string,
): Record<string, unknown> | undefined {
  if (!pairs || pairs.length === 0) return undefined;
  const filter: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new UsageError(`--filter must be key=value, got '${pair}'`, command);
    }
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    filter[pair.slice(0, eq)] = value;
  }
  return filter;
}

function commandOf(word: string): CommandName | 'help' {
  if (word === 'help' || (COMMANDS as readonly string[]).includes(word)) {
    return word as CommandName | 'help';
  }
  const near = closestMatch(word, [...COMMANDS, 'help']);
  throw new UsageError(`unknown command '${word}'${near ? `; did you mean '${near}'?` : ''}`);
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * A byte size as the command line takes it: an integer with an optional binary unit
 * (`B`, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, any case; `KB`, `MB` and `GB` mean the same as their
 * `iB` forms). `1.5MiB` is allowed when it comes to whole bytes.
 *
 * @param text - e.g. `4MiB`
 * @returns the bytes, or undefined when malformed
 * @internal
 */
export function parseByteSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

function knownCommand(command: CommandName | 'help' | undefined): CommandName | undefined {
  return command === 'help' ? undefined : command;
}

function checkDatabaseOptions(options: CliOptions, command: CommandName): void {
  if (options.db !== undefined && options.dataDir !== undefined) {
    throw new UsageError(
      'give --db (a PostgreSQL server) or --data-dir (embedded PGlite), not both',
      command,
    );
  }
  if (options.db !== undefined) checkDatabaseUrl(options.db, '--db');
  if (options.schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(options.schema)) {
    throw new UsageError(
      `--schema must be a plain SQL identifier (letters, digits, _ and $), got '${options.schema}'`,
      command,
    );
  }
}

function checkEmbedderOptions(options: CliOptions, command: CommandName): void {
  if (options.embedder === 'openai') {
    // reembed asks the server for --to-model, search for --model, unless --embed-model is given
    const named = command === 'reembed' || (command === 'search' && options.model !== undefined);
    if (options.embedModel === undefined && !named) {
      throw new UsageError('--embedder openai needs --embed-model <name>', command);
    }
    if (options.embedUrl !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(options.embedUrl);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
        throw new UsageError('--embed-url must be an http:// or https:// URL', command);
      }
    }
  } else if (options.embedModel !== undefined || options.embedUrl !== undefined) {
    throw new UsageError(
      `--embed-model and --embed-url apply to --embedder openai (the local embedder has a fixed model)`,
      command,
    );
  }
}
