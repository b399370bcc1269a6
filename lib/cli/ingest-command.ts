import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type IngestionReport, ingest } from '../atoms/ingest.js';
import { pingDatabase } from '../ops/ping-database.js';
import type { CliIo } from './cli-io.js';
import { type PathNotFoundError, UsageError } from './errors.js';
import { EXIT } from './exit-status.js';
import { findTextFiles } from './find-text-files.js';
import { formatBytes, formatCount, formatDuration, formatRate } from './format.js';
import { makeEmbedder } from './make-embedder.js';
import { openCliDatabase } from './open-cli-database.js';
import { addReadinessCheck } from './operations.js';
import type { CliOptions, SplitMode } from './parse-command-line.js';
import { progressReporter } from './progress-reporter.js';
import { MAX_FILE_BYTES, readAtoms, type SkippedFile } from './read-atoms.js';

/**
 * What `ingest --json` prints: the library's {@link IngestionReport} plus what the command
 * line adds (files, skipped files, whether it was interrupted, where it went).
 * @internal
 */
export interface IngestCommandReport extends IngestionReport {
  /** Stopped early by the signal (Ctrl-C): the counts cover what finished. */
  readonly interrupted: boolean;
  /** How files were cut into atoms. */
  readonly split: SplitMode;
  /** Files read. */
  readonly files: number;
  /** Files not read (binary, empty, ...), with reasons. */
  readonly skipped: readonly SkippedFile[];
  /** Paths given that do not exist or cannot be read, with reasons (the others were read). */
  readonly missing: readonly { readonly path: string; readonly reason: string }[];
  /** `'postgres'` or `'pglite'`. */
  readonly backend: string;
  /** Server URL without password, or the PGlite folder. */
  readonly location: string;
  /** PostgreSQL schema written to. */
  readonly schema: string;
  /** The embedding model. */
  readonly embeddingModel: string;
}

/**
 * `hartonomous ingest <path...>`: finds the text files, opens (and migrates) the database,
 * ingests the pieces with progress on stderr, prints the report on stdout.
 *
 * @param paths - files and folders
 * @param options - the parsed options
 * @param io - streams, environment, cancellation
 * @returns the exit status: 0 every item stored (or a duplicate), 3 some items failed or some
 *   paths were missing, 130 interrupted
 * @throws the {@link PathNotFoundError} of the first path when no path given exists
 * @internal
 */
export async function ingestCommand(
  paths: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (paths.length === 0)
    throw new UsageError('ingest needs at least one file or folder', 'ingest');
  const { files, missing } = await findTextFiles(paths, {
    cwd: io.cwd ?? process.cwd(),
    include: options.include,
    exclude: options.exclude,
    gitignore: options.gitignore,
    ...(io.signal ? { signal: io.signal } : {}),
  });
  if (missing.length === paths.length && missing[0]) throw missing[0];
  for (const m of missing) io.stderr.write(`warning: ${m.message} (skipped)\n`);
  const { db, location } = await openCliDatabase(options, io, { migrate: true, mustExist: false });
  addReadinessCheck(io, 'database', (signal) => pingDatabase(db, signal));
  let embedding: Awaited<ReturnType<typeof makeEmbedder>> | undefined;
  try {
    embedding = await makeEmbedder(options, db.embeddingDimensions, io);
    const { atoms, tally } = readAtoms(files, {
      split: options.split,
      ...(options.maxBytes !== undefined
        ? { maxFileBytes: Math.max(MAX_FILE_BYTES, options.maxBytes) }
        : {}),
    });
    if (!options.quiet) {
      io.stderr.write(
        `ingesting ${formatCount(files.length)} file${files.length === 1 ? '' : 's'} (${formatBytes(
          tally.totalBytes,
        )}) by ${options.split} into ${db.backend} ${location}${
          db.schema === 'public' ? '' : ` schema ${db.schema}`
        }, embedding with ${embedding.embedder.model}\n`,
      );
    }
    const progress = options.quiet ? undefined : progressReporter(io.stderr, tally);
    let report: IngestionReport;
    const owner = `hartonomous-cli:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    try {
      report = await ingest(atoms, {
        db,
        owner,
        embedder: embedding.embedder,
        ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
        ...(options.maxBytes !== undefined ? { maxContentBytes: options.maxBytes } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
        ...(progress ? { onProgress: (p) => progress.update(p) } : {}),
      });
    } finally {
      progress?.finish();
      await atoms.return(undefined);
    }
    const interrupted = io.signal?.aborted === true;
    const result: IngestCommandReport = {
      interrupted,
      split: options.split,
      files: tally.files,
      skipped: tally.skipped,
      missing: missing.map((m) => ({ path: m.path, reason: m.reason })),
      backend: db.backend,
      location,
      schema: db.schema,
      embeddingModel: embedding.embedder.model,
      ...report,
    };
    io.stdout.write(
      options.json ? `${JSON.stringify(result, null, 2)}\n` : formatIngestReport(result),
    );
    return interrupted
      ? EXIT.interrupted
      : report.failed > 0 || missing.length > 0
        ? EXIT.itemsFailed
        : EXIT.ok;
  } finally {
    embedding?.close();
    await db.close();
  }
}

const DUPLICATE_REASONS = [
  ['batch', 'same batch'],
  ['stored', 'already stored'],
  ['claimed', 'claimed by another worker'],
  ['race', 'stored concurrently'],
] as const;

/**
 * The human-readable ingest report.
 * @internal
 */
export function formatIngestReport(r: IngestCommandReport): string {
  const lines: string[] = [];
  lines.push(
    r.interrupted
      ? 'interrupted: partial report (what was stored stays stored; run again to continue)'
      : r.failed > 0 || r.missing.length > 0
        ? `ingest finished with failures: ${formatCount(r.failed)} item${r.failed === 1 ? '' : 's'} failed${
            r.missing.length > 0
              ? `, ${formatCount(r.missing.length)} path${r.missing.length === 1 ? '' : 's'} missing`
              : ''
          } (exit status 3)`
        : 'ingest complete',
  );
  const row = (label: string, value: string): void => {
    lines.push(`  ${label.padEnd(12)}${value}`);
  };
  row('files', `${formatCount(r.files)} read, ${formatCount(r.skipped.length)} skipped`);
  row('items', `${formatCount(r.processed)} (${formatBytes(r.bytes)})`);
  row('added', formatCount(r.added));
  const reasons = DUPLICATE_REASONS.filter(([key]) => r.duplicatesBy[key] > 0)
    .map(([key, label]) => `${label} ${formatCount(r.duplicatesBy[key])}`)
    .join(', ');
  row('duplicates', `${formatCount(r.duplicates)}${reasons ? ` (${reasons})` : ''}`);
  row('failed', formatCount(r.failed));
  row('duration', `${formatDuration(r.durationMs)}, ${formatRate(r.itemsPerSecond)}`);
  row(
    'step time',
    Object.entries(r.stepMs)
      .map(([step, ms]) => `${step} ${formatDuration(ms)}`)
      .join(', '),
  );
  if (r.failures.length > 0) {
    lines.push('failures:');
    for (const f of r.failures) {
      lines.push(`  ${f.sourceId ?? `item ${f.index}`} (${f.step}): ${f.error}: ${f.message}`);
    }
    if (r.failures.length < r.failed) {
      lines.push(`  ... and ${formatCount(r.failed - r.failures.length)} more`);
    }
  }
  if (r.skipped.length > 0) {
    lines.push('skipped files:');
    for (const s of r.skipped) lines.push(`  ${s.file}: ${s.reason}`);
  }
  if (r.missing.length > 0) {
    lines.push('missing paths:');
    for (const m of r.missing) lines.push(`  ${m.path}: ${m.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
