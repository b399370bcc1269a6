import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { type IngestionReport, ingest } from '../atoms/ingest.js';
import { pingDatabase } from '../ops/ping-database.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { findTextFiles } from './find-text-files.js';
import { formatBytes, formatCount, formatDuration, formatRate } from './format.js';
import { makeEmbedder } from './make-embedder.js';
import { openCliDatabase } from './open-cli-database.js';
import { addReadinessCheck } from './operations.js';
import type { CliOptions, SplitMode } from './parse-command-line.js';
import { progressReporter } from './progress-reporter.js';
import { readAtoms, type SkippedFile } from './read-atoms.js';

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
 * @returns the exit status: 0, or 130 when interrupted
 * @internal
 */
export async function ingestCommand(
  paths: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (paths.length === 0)
    throw new UsageError('ingest needs at least one file or folder', 'ingest');
  const files = await findTextFiles(paths, io.cwd ?? process.cwd(), io.signal);
  const { db, location } = await openCliDatabase(options, io, { migrate: true, mustExist: false });
  addReadinessCheck(io, 'database', (signal) => pingDatabase(db, signal));
  let embedding: ReturnType<typeof makeEmbedder> | undefined;
  try {
    embedding = makeEmbedder(options, db.embeddingDimensions, io);
    const { atoms, tally } = readAtoms(files, options.split);
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
      backend: db.backend,
      location,
      schema: db.schema,
      embeddingModel: embedding.embedder.model,
      ...report,
    };
    io.stdout.write(
      options.json ? `${JSON.stringify(result, null, 2)}\n` : formatIngestReport(result),
    );
    return interrupted ? 130 : 0;
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
  return `${lines.join('\n')}\n`;
}
