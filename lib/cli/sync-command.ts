import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { relative, resolve, sep } from 'node:path';
import { markdownChunker } from '../chunking/markdown-chunker.js';
import type { DocumentInput } from '../documents/document.js';
import {
  type DocumentSyncProgress,
  type DocumentSyncReport,
  ingestDocuments,
} from '../documents/ingest-documents.js';
import { defaultModelOf } from '../documents/set-default-model.js';
import { pingDatabase } from '../ops/ping-database.js';
import type { CliIo } from './cli-io.js';
import { UsageError } from './errors.js';
import { EXIT } from './exit-status.js';
import { findTextFiles, type TextFile } from './find-text-files.js';
import { formatCount, formatDuration, formatRate } from './format.js';
import { makeDefaultModelEmbedder, makeEmbedder } from './make-embedder.js';
import { openCliDatabase } from './open-cli-database.js';
import { addReadinessCheck } from './operations.js';
import type { CliOptions } from './parse-command-line.js';
import { MAX_FILE_BYTES, type SkippedFile } from './read-atoms.js';
import { isJsonlFile, readJsonl } from './read-jsonl.js';

/**
 * What `sync --json` prints: the library's {@link DocumentSyncReport} plus the files read and
 * skipped and where it went.
 * @internal
 */
export interface SyncCommandReport extends DocumentSyncReport {
  readonly collection: string;
  /** Files read. */
  readonly files: number;
  /** Files (or JSON lines, as `<file>:<line>`) not read, with reasons. */
  readonly skipped: readonly SkippedFile[];
  readonly backend: string;
  readonly location: string;
  readonly schema: string;
  readonly embeddingModel: string;
}

/**
 * `hartonomous sync <folder> --collection NAME --cleanup MODE`: the folder's text files are the
 * documents of the collection (ids: paths relative to the folder, `/`-separated); a `.jsonl`
 * file holds one document per line. Progress on stderr, the report on stdout.
 *
 * @returns 0 every document synced, 3 some failed, 130 interrupted
 * @internal
 */
export async function syncCommand(
  paths: readonly string[],
  options: CliOptions,
  io: CliIo,
): Promise<number> {
  if (paths.length !== 1) throw new UsageError('sync needs exactly one folder', 'sync');
  const collection = options.collection!;
  const cwd = io.cwd ?? process.cwd();
  const root = resolve(cwd, paths[0]!);
  const { files, missing } = await findTextFiles([paths[0]!], {
    cwd,
    include: options.include,
    exclude: options.exclude,
    gitignore: options.gitignore,
    ...(io.signal ? { signal: io.signal } : {}),
  });
  if (missing[0]) throw missing[0];
  const rootIsFile = (await stat(root)).isFile();
  const idOf = (f: TextFile): string =>
    rootIsFile
      ? f.path.slice(f.path.lastIndexOf(sep) + 1)
      : relative(root, f.path).split(sep).join('/');
  const { db, location } = await openCliDatabase(options, io, { migrate: true, mustExist: false });
  addReadinessCheck(io, 'database', (signal) => pingDatabase(db, signal));
  let embedding: Awaited<ReturnType<typeof makeEmbedder>> | undefined;
  let modelEmbedding: Awaited<ReturnType<typeof makeEmbedder>> | undefined;
  try {
    embedding = await makeEmbedder(options, db.embeddingDimensions, io);
    // the collection searches with another model by default: its new atoms get that model's
    // vectors too
    const defaultModel = await defaultModelOf(
      db,
      collection,
      io.signal ? { signal: io.signal } : {},
    );
    if (defaultModel !== undefined && defaultModel !== embedding.embedder.model) {
      modelEmbedding = await makeDefaultModelEmbedder(options, db, io, defaultModel);
    }
    const skipped: SkippedFile[] = [];
    let read = 0;
    const maxFileBytes = Math.max(MAX_FILE_BYTES, options.maxBytes ?? 0);
    async function* documents(): AsyncGenerator<DocumentInput> {
      for (const file of files) {
        const text = await readDocument(file, maxFileBytes, skipped);
        if (text === undefined) continue;
        read++;
        const id = idOf(file);
        if (!isJsonlFile(file.path)) {
          yield { id, content: text };
          continue;
        }
        for (const entry of readJsonl(text)) {
          if ('error' in entry) {
            skipped.push({ file: `${file.name}:${entry.line}`, reason: entry.error });
            continue;
          }
          const r = entry.record;
          yield {
            id: r.id ?? r.hash ?? `${id}:${entry.line}`,
            content: r.content,
            ...(r.metadata ? { metadata: r.metadata } : {}),
          };
        }
      }
    }
    if (!options.quiet) {
      io.stderr.write(
        `syncing ${formatCount(files.length)} file${files.length === 1 ? '' : 's'} into collection ${collection} (cleanup ${options.cleanup}) of ${db.backend} ${location}${
          db.schema === 'public' ? '' : ` schema ${db.schema}`
        }, embedding with ${embedding.embedder.model}${
          modelEmbedding ? ` and ${modelEmbedding.embedder.model} (the collection's default)` : ''
        }\n`,
      );
    }
    let last = 0;
    const progress = (p: DocumentSyncProgress): void => {
      const now = performance.now();
      if (now - last < 1_000) return;
      last = now;
      io.stderr.write(`  ${progressLine(p)}\n`);
    };
    const report = await ingestDocuments(documents(), {
      db,
      collection,
      cleanup: options.cleanup,
      // the same blocks as `ingest --split paragraph`: a heading with its section, fences whole
      chunker: markdownChunker(),
      embedder: embedding.embedder,
      ...(modelEmbedding ? { models: [modelEmbedding.embedder] } : {}),
      owner: `hartonomous-cli:${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      ...(options.maxBytes !== undefined ? { maxContentBytes: options.maxBytes } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
      ...(options.quiet ? {} : { onProgress: progress }),
    });
    const result: SyncCommandReport = {
      ...report,
      interrupted: report.interrupted || io.signal?.aborted === true,
      collection,
      files: read,
      skipped,
      backend: db.backend,
      location,
      schema: db.schema,
      embeddingModel: embedding.embedder.model,
    };
    io.stdout.write(
      options.json ? `${JSON.stringify(result, null, 2)}\n` : formatSyncReport(result),
    );
    return result.interrupted
      ? EXIT.interrupted
      : report.failed > 0 || report.modelVectorsFailed > 0
        ? EXIT.itemsFailed
        : EXIT.ok;
  } finally {
    embedding?.close();
    modelEmbedding?.close();
    await db.close();
  }
}

async function readDocument(
  file: TextFile,
  maxFileBytes: number,
  skipped: SkippedFile[],
): Promise<string | undefined> {
  const skip = (reason: string): undefined => {
    skipped.push({ file: file.name, reason });
    return undefined;
  };
  if (file.size > maxFileBytes) return skip('too large');
  let bytes: Buffer;
  try {
    bytes = await readFile(file.path);
  } catch (e) {
    const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
    return skip(typeof code === 'string' ? code : 'unreadable');
  }
  if (bytes.includes(0)) return skip('binary');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return skip('not UTF-8');
  }
}

function progressLine(p: DocumentSyncProgress): string {
  return `${formatCount(p.processed)} documents: ${formatCount(p.added)} added, ${formatCount(
    p.changed,
  )} changed, ${formatCount(p.unchanged)} unchanged, ${formatCount(p.failed)} failed, ${formatCount(
    p.deleted,
  )} deleted; atoms +${formatCount(p.atomsAdded)} -${formatCount(p.atomsDeleted)}`;
}

/**
 * The human-readable sync report.
 * @internal
 */
export function formatSyncReport(r: SyncCommandReport): string {
  const lines: string[] = [
    r.interrupted
      ? 'interrupted: partial report (what was written stays written; run again to continue)'
      : r.failed > 0
        ? `sync finished with failures: ${formatCount(r.failed)} document${r.failed === 1 ? '' : 's'} failed (exit status 3)`
        : r.modelVectorsFailed > 0
          ? `sync finished with failures: ${formatCount(r.modelVectorsFailed)} atom${r.modelVectorsFailed === 1 ? '' : 's'} without a vector of the default model (exit status 3)`
          : 'sync complete',
  ];
  const row = (label: string, value: string): void => {
    lines.push(`  ${label.padEnd(12)}${value}`);
  };
  row('collection', `${r.collection} (cleanup ${r.cleanup})`);
  row('files', `${formatCount(r.files)} read, ${formatCount(r.skipped.length)} skipped`);
  row(
    'documents',
    `${formatCount(r.added)} added, ${formatCount(r.changed)} changed, ${formatCount(r.unchanged)} unchanged, ${formatCount(r.deleted)} deleted, ${formatCount(r.failed)} failed`,
  );
  row('atoms', `${formatCount(r.atomsAdded)} added, ${formatCount(r.atomsDeleted)} deleted`);
  if (r.modelVectorsAdded > 0 || r.modelVectorsFailed > 0) {
    row(
      'model',
      `${formatCount(r.modelVectorsAdded)} vectors of the default model added, ${formatCount(r.modelVectorsFailed)} failed`,
    );
  }
  row('duration', `${formatDuration(r.durationMs)}, ${formatRate(r.documentsPerSecond)}`);
  if (r.failures.length > 0) {
    lines.push('failures:');
    for (const f of r.failures) {
      lines.push(
        `  ${f.documentId ?? (f.index >= 0 ? `document ${f.index}` : (f.collection ?? ''))} (${f.step}): ${f.error}: ${f.message}`,
      );
    }
  }
  if (r.skipped.length > 0) {
    lines.push('skipped:');
    for (const s of r.skipped) lines.push(`  ${s.file}: ${s.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
