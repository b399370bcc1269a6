import { extraModel } from '../atoms/model-vectors.js';
import { messageOf } from '../core/errors.js';
import { type ReembedProgress, type ReembedReport, reembed } from '../documents/reembed.js';
import { setDefaultModel } from '../documents/set-default-model.js';
import { pingDatabase } from '../ops/ping-database.js';
import { readyStateOf, withClient } from '../postgres/database.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { EXIT } from './exit-status.js';
import { formatCount, formatDuration } from './format.js';
import { makeEmbedder } from './make-embedder.js';
import { openCliDatabase } from './open-cli-database.js';
import { addReadinessCheck } from './operations.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * What `reembed --json` prints.
 * @internal
 */
export interface ReembedCommandReport extends ReembedReport {
  /** The collection concerned, or null for every atom. */
  readonly collection: string | null;
  /** Stopped by Ctrl-C: the counts are those written so far. */
  readonly interrupted: boolean;
  /** Whether the new model became the collection's default (`--set-default`). */
  readonly defaultSet: boolean;
  /** Why `--set-default` was not applied, when it was asked for and refused. */
  readonly defaultRefused?: string;
  /** Wall time of the run. */
  readonly durationMs: number;
}

/**
 * `hartonomous reembed --to-model NAME`: fills the new model's vectors of the atoms (of a
 * collection) that have none yet, with progress on stderr and the report on stdout; with
 * `--set-default`, then makes the model the collection's default. Exit status: 0 done, 3 some
 * atoms failed (or the default was refused), 130 interrupted (partial report printed first).
 *
 * @param args - no positional arguments
 * @param options - the parsed options
 * @param io - streams, environment, cancellation
 * @returns the exit status
 * @internal
 */
export async function reembedCommand(
  args: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (args.length > 0) {
    throw new UsageError(`reembed takes no arguments, got '${args[0]}'`, 'reembed');
  }
  const model = options.toModel!;
  // --dimensions are the new model's, not the database's
  const { dimensions: _newDimensions, ...databaseOptions } = options;
  const { db } = await openCliDatabase(databaseOptions, io, { migrate: true, mustExist: true });
  addReadinessCheck(io, 'database', (signal) => pingDatabase(db, signal));
  let embedding: Awaited<ReturnType<typeof makeEmbedder>> | undefined;
  try {
    const state = readyStateOf(db);
    const stored = await withClient(state, io.signal, (client) => extraModel(state, client, model));
    const dimensions = options.dimensions ?? stored?.dimensions ?? db.embeddingDimensions;
    embedding = await makeEmbedder(options, dimensions, io, model);
    const collection = options.collection ?? null;
    if (!options.quiet) {
      io.stderr.write(
        `re-embedding ${collection === null ? 'every atom' : `the atoms of collection ${collection}`}${
          options.fromModel ? ` with a vector of ${options.fromModel}` : ''
        } with ${model} (${dimensions} dimensions)\n`,
      );
    }
    const started = performance.now();
    let last: ReembedProgress = {
      model,
      scanned: 0,
      embedded: 0,
      skipped: 0,
      failed: 0,
      batches: 0,
    };
    let shown = 0;
    const onProgress = (p: ReembedProgress): void => {
      last = p;
      const now = performance.now();
      if (options.quiet || now - shown < 1_000) return;
      shown = now;
      io.stderr.write(`  ${progressLine(p)}\n`);
    };
    let report: ReembedReport;
    let interrupted = false;
    try {
      report = await reembed(db, {
        to: embedding.embedder,
        ...(options.collection !== undefined ? { collection: options.collection } : {}),
        ...(options.fromModel !== undefined ? { from: options.fromModel } : {}),
        ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
        ...(io.signal ? { signal: io.signal } : {}),
        onProgress,
      });
    } catch (e) {
      if (!io.signal?.aborted) throw e;
      interrupted = true;
      report = { ...last, dimensions, failures: [] };
    }
    let defaultSet = false;
    let defaultRefused: string | undefined;
    if (options.setDefault && !interrupted && options.collection !== undefined) {
      try {
        await setDefaultModel(
          db,
          options.collection,
          model,
          io.signal ? { signal: io.signal } : {},
        );
        defaultSet = true;
      } catch (e) {
        if (io.signal?.aborted) interrupted = true;
        else defaultRefused = messageOf(e);
      }
    }
    const result: ReembedCommandReport = {
      ...report,
      collection,
      interrupted,
      defaultSet,
      ...(defaultRefused !== undefined ? { defaultRefused } : {}),
      durationMs: Math.round(performance.now() - started),
    };
    io.stdout.write(options.json ? `${JSON.stringify(result, null, 2)}\n` : formatReport(result));
    if (interrupted) return EXIT.interrupted;
    return report.failed > 0 || defaultRefused !== undefined ? EXIT.itemsFailed : EXIT.ok;
  } finally {
    embedding?.close();
    await db.close();
  }
}

function progressLine(p: ReembedProgress): string {
  return `${formatCount(p.embedded)} embedded, ${formatCount(p.skipped)} skipped, ${formatCount(
    p.failed,
  )} failed (${formatCount(p.batches)} batches)`;
}

/**
 * The human-readable reembed report.
 * @internal
 */
export function formatReport(r: ReembedCommandReport): string {
  const lines: string[] = [
    r.interrupted
      ? 'interrupted: partial report (what was written stays written; run again to continue)'
      : r.failed > 0
        ? `reembed finished with failures: ${formatCount(r.failed)} atom${r.failed === 1 ? '' : 's'} failed (exit status 3)`
        : 'reembed complete',
  ];
  const row = (label: string, value: string): void => {
    lines.push(`  ${label.padEnd(12)}${value}`);
  };
  row('model', `${r.model} (${r.dimensions} dimensions)`);
  row('collection', r.collection ?? '(every atom)');
  row(
    'atoms',
    `${formatCount(r.scanned)} without a vector, ${formatCount(r.embedded)} embedded, ${formatCount(r.skipped)} skipped, ${formatCount(r.failed)} failed`,
  );
  row('duration', formatDuration(r.durationMs));
  if (r.defaultSet) row('default', `${r.model} is now the default model of ${r.collection}`);
  if (r.defaultRefused !== undefined) row('default', `not set: ${r.defaultRefused}`);
  if (r.failures.length > 0) {
    lines.push('failures:');
    for (const f of r.failures) lines.push(`  atom ${f.atomId}: ${f.error}: ${f.message}`);
  }
  return `${lines.join('\n')}\n`;
}
