import {
  type CommandName,
  OPTION_SPECS,
  type OptionName,
  type OptionSpec,
} from './parse-command-line.js';

/** The executable's name in usage texts. @internal */
export const BIN = 'hartonomous';

const ABOUT: Record<CommandName, { synopsis: string; summary: string; details: string[] }> = {
  ingest: {
    synopsis: 'ingest <path...> [options]',
    summary: 'ingest text files and folders as atoms (deduplicated, embedded, searchable)',
    details: [
      'Folders are read recursively: files with a text extension (.md, .txt, .rst, .csv, .json,',
      'source code, ...) or matching --include are ingested; hidden entries, node_modules, what',
      '--exclude matches, what .gitignore files ignore and binary files are skipped. Files named',
      'directly are ingested whatever their extension, unless binary. A path that does not exist',
      'is reported and the others are still ingested (exit status 3).',
      'Content already stored is reported as a duplicate, so a re-run only adds what is new.',
      'Ctrl-C stops cleanly: what was stored stays stored, and the partial report is printed.',
    ],
  },
  sync: {
    synopsis: 'sync <folder> --collection <name> [--cleanup none|incremental|full] [options]',
    summary: "keep a collection in sync with a folder's files (documents, chunks, cleanup)",
    details: [
      'Every text file of the folder is a document whose id is its path relative to the folder',
      '(found as ingest finds them); a .jsonl file holds one document per line (the format',
      'export writes: "content", "metadata", and "id", else "hash", as the id). Each document is',
      'cut into paragraphs, each distinct paragraph stored once as an atom. An unchanged document',
      'costs one lookup (no embedding, no write); a changed one gets its chunk list replaced.',
      '--cleanup incremental deletes the old chunks no document refers to any more; full also',
      'deletes the documents of the collection that the folder no longer has. Atoms stored by',
      'ingest are never deleted. A collection whose default model (reembed --set-default) is',
      "another gets that model's vectors too, from the same kind of embedder.",
    ],
  },
  delete: {
    synopsis: 'delete --collection <name> <id...> [options]',
    summary: 'delete documents of a collection, and the atoms no document refers to any more',
    details: ['Ids that are not stored are ignored (the report lists what was deleted).'],
  },
  export: {
    synopsis: 'export [--collection <name>] [--vectors] [options] > atoms.jsonl',
    summary: 'write atoms as JSON Lines to stdout (progress on stderr)',
    details: [
      'One line per atom, in id order: {"content", "hash", "contentType", "metadata", "sourceId"}',
      'and, with --vectors, "vector" (base64 float32 little-endian) and "model". ingest and sync',
      'read such a file back (a .jsonl file); the content is embedded again by their embedder.',
    ],
  },
  search: {
    synopsis:
      'search <text...> [-k <n>] [--mode vector|text|hybrid] [--filter key=value] [options]',
    summary: 'show the atoms most similar to a text',
    details: [
      'The text is embedded with the same embedder options as the ingest; only atoms embedded by',
      'that model are searched. --mode text uses full-text search instead (no embedding);',
      '--mode hybrid fuses both rankings. --filter and --content-type narrow the atoms searched.',
      "--model searches another model's vectors (one reembed added); with --collection and no",
      "--model the collection's default model is searched, if it has one.",
    ],
  },
  reembed: {
    synopsis: 'reembed --to-model <name> [--collection <name>] [--set-default] [options]',
    summary: 'embed the stored atoms with a new model, beside the old vectors (resumable)',
    details: [
      'Atoms that have no vector of the new model yet are embedded in batches (retried) and',
      'their vectors stored beside the existing ones; progress goes to stderr, the report to',
      'stdout. Each batch commits on its own: after Ctrl-C or a crash, run it again and only the',
      'missing vectors are embedded. --set-default then makes the new model the default search',
      'model of the collection (refused while some of its atoms lack a vector of it).',
    ],
  },
  stats: {
    synopsis: 'stats [options]',
    summary: 'atom count and bytes, outbox backlog, schema version, backend, vector storage',
    details: [],
  },
  migrate: {
    synopsis: 'migrate [options]',
    summary: 'apply missing database migrations and print the schema version',
    details: [
      'Creates the schema and tables if needed; several processes may migrate at once safely.',
    ],
  },
  config: {
    synopsis: 'config [--json]',
    summary: 'print the effective configuration, secrets redacted, and where each value came from',
    details: [
      'Settings come from defaults, the JSON file named by HARTONOMOUS_CONFIG, the environment',
      "(DATABASE_URL, SERVICEBUS_CONNECTION_STRING, OTEL_*, HARTONOMOUS_*) and this command's",
      '--db/--data-dir/--schema. An invalid setting prints one line each and exits with 2.',
      'HARTONOMOUS_METRICS_PORT=<port> makes ingest, sync and reembed serve /metrics, /healthz, /readyz.',
    ],
  },
};

const DATABASE_OPTIONS: readonly OptionName[] = ['db', 'data-dir', 'schema'];
const GENERAL_OPTIONS: readonly OptionName[] = ['json', 'verbose', 'help'];

const EXIT_STATUS = [
  'Exit status:',
  '  0    every item stored (or already there)',
  '  1    an error stopped the run (one error: line; --verbose adds the stack)',
  '  2    bad usage',
  '  3    some items failed or some paths were missing; the rest was stored (see the report)',
  '  130  interrupted (Ctrl-C); what was stored stays stored',
  'With --json an error is also printed on stdout: {"error": {"name", "code", "message"}, "exitCode"}.',
];

const HELP_COLUMN = 28;
const WIDTH = 100;

function optionLine(name: OptionName): string {
  const spec: OptionSpec = OPTION_SPECS[name];
  const flags = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.value ? ` ${spec.value}` : ''}`;
  // wrap the help text at WIDTH, continuation lines aligned under it
  const lines: string[] = [];
  let line = '';
  for (const word of spec.help.split(' ')) {
    if (line !== '' && HELP_COLUMN + line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return `  ${flags.padEnd(HELP_COLUMN - 2)}${lines.join(`\n${' '.repeat(HELP_COLUMN)}`)}`;
}

function optionsOf(command: CommandName): OptionName[] {
  return (Object.keys(OPTION_SPECS) as OptionName[]).filter((name) => {
    const commands: OptionSpec['commands'] = OPTION_SPECS[name].commands;
    return (
      typeof commands !== 'string' &&
      commands.includes(command) &&
      !DATABASE_OPTIONS.includes(name) &&
      !GENERAL_OPTIONS.includes(name)
    );
  });
}

/**
 * The usage text of a command, or of the whole command line.
 *
 * @param command - the command (undefined: the overview)
 * @returns the text, ending in a newline
 * @internal
 */
export function usageOf(command?: CommandName): string {
  const lines: string[] = [];
  if (command === undefined) {
    lines.push(
      `Usage: ${BIN} <command> [options]`,
      '',
      'Ingest text into a PostgreSQL server or an embedded PGlite as deduplicated, embedded atoms,',
      'and search them by similarity.',
      '',
      'Commands:',
    );
    for (const [name, about] of Object.entries(ABOUT)) {
      lines.push(`  ${name.padEnd(10)}${about.summary}`);
    }
    lines.push(
      `  ${'help'.padEnd(10)}help on a command: ${BIN} help <command>`,
      '',
      'Database (every command):',
      ...DATABASE_OPTIONS.map(optionLine),
      '',
      'Options:',
      optionLine('verbose'),
      optionLine('help'),
      optionLine('version'),
      '',
      `Run '${BIN} <command> --help' for the options of a command.`,
      ...EXIT_STATUS,
    );
    return `${lines.join('\n')}\n`;
  }
  const about = ABOUT[command];
  lines.push(
    `Usage: ${BIN} ${about.synopsis}`,
    '',
    `${about.summary[0]?.toUpperCase()}${about.summary.slice(1)}.`,
  );
  if (about.details.length > 0) lines.push('', ...about.details);
  const own = optionsOf(command);
  if (own.length > 0) lines.push('', 'Options:', ...own.map(optionLine));
  lines.push(
    '',
    'Database:',
    ...DATABASE_OPTIONS.map(optionLine),
    '',
    'General:',
    ...GENERAL_OPTIONS.map(optionLine),
    '',
    ...EXIT_STATUS,
  );
  return `${lines.join('\n')}\n`;
}
