import { streamAtoms } from '../documents/stream-atoms.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { EXIT } from './exit-status.js';
import { formatCount } from './format.js';
import { openCliDatabase } from './open-cli-database.js';
import type { CliOptions } from './parse-command-line.js';

/**
 * One line `export` writes (JSON Lines).
 * @internal
 */
export interface ExportLine {
  readonly content: string;
  /** SHA-256 of the content, lowercase hex. */
  readonly hash: string;
  readonly contentType: string;
  readonly metadata: Record<string, unknown>;
  readonly sourceId: string | null;
  /** With `--vectors`: the embedding as base64 float32 little-endian (absent without one). */
  readonly vector?: string;
  /** With `--vectors`: the model of the embedding. */
  readonly model?: string | null;
}

/**
 * `hartonomous export [--collection NAME] [--vectors]`: every atom (of the collection's
 * documents) as one JSON line on stdout, in id order, read page by page (bounded memory);
 * progress on stderr.
 *
 * @returns 0
 * @internal
 */
export async function exportCommand(
  args: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (args.length > 0)
    throw new UsageError(`export takes no arguments, got '${args[0]}'`, 'export');
  const { db } = await openCliDatabase(options, io, { migrate: false, mustExist: true });
  try {
    let n = 0;
    let last = performance.now();
    for await (const a of streamAtoms(db, {
      ...(options.collection !== undefined ? { collection: options.collection } : {}),
      embeddings: options.vectors,
      ...(io.signal ? { signal: io.signal } : {}),
    })) {
      const line: ExportLine = {
        content: a.content,
        hash: a.hash,
        contentType: a.contentType,
        metadata: a.metadata,
        sourceId: a.sourceId,
        ...(options.vectors
          ? {
              ...(a.embedding
                ? {
                    vector: Buffer.from(
                      a.embedding.buffer,
                      a.embedding.byteOffset,
                      a.embedding.byteLength,
                    ).toString('base64'),
                  }
                : {}),
              model: a.embeddingModel,
            }
          : {}),
      };
      io.stdout.write(`${JSON.stringify(line)}\n`);
      n++;
      if (!options.quiet && performance.now() - last >= 1_000) {
        last = performance.now();
        io.stderr.write(`  ${formatCount(n)} atoms exported\n`);
      }
    }
    if (!options.quiet) io.stderr.write(`exported ${formatCount(n)} atom${n === 1 ? '' : 's'}\n`);
    return EXIT.ok;
  } finally {
    await db.close();
  }
}
