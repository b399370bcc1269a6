/**
 * LangChain.js as a bench contender: `index()` (`@langchain/core/indexing`) with
 * `PostgresRecordManager` and `PGVectorStore` (`@langchain/community`) and `OpenAIEmbeddings`
 * (`@langchain/openai`) pointed at the bench's local embeddings server. Its packages are
 * devDependencies; they are loaded lazily, and where they cannot be loaded the contender is
 * skipped with the reason.
 */

/** One LangChain indexing setup on one database, with its clean-up. */
export interface LangChainIndexer {
  /** Runs `index()` over the texts; returns what LangChain reports. */
  index(texts: readonly string[]): Promise<{ added: number; skipped: number }>;
  /**
   * Runs `index()` over chunks that name their document (`source`, LangChain's source id key),
   * with a cleanup mode; returns what LangChain reports.
   */
  indexDocuments(
    chunks: readonly { content: string; source: string }[],
    cleanup: 'incremental' | 'full',
  ): Promise<{ added: number; skipped: number; deleted: number }>;
  /** Rows in its vector store table. */
  count(): Promise<number>;
  /** Closes its pool, leaving the tables (another indexer on the same tag drops them). */
  close(): Promise<void>;
  /** Drops the tables it created and closes its pool. */
  dispose(): Promise<void>;
}

/** Creates indexers, or says why LangChain is not available. */
export type LangChainFactory = (options: {
  /** Where the pgvector database listens. */
  connection: { host: string; port: number; user: string; database: string };
  /** Base URL of the embeddings server (ending in /v1). */
  baseUrl: string;
  model: string;
  dimensions: number;
  /** A suffix making its table names unique. */
  tag: string;
}) => Promise<LangChainIndexer>;

/** Loads LangChain's packages. @returns a factory, or the reason they cannot be used */
export async function loadLangChain(): Promise<LangChainFactory | string> {
  let modules: [
    typeof import('@langchain/core/indexing'),
    typeof import('@langchain/core/documents'),
    typeof import('@langchain/community/indexes/postgres'),
    typeof import('@langchain/community/vectorstores/pgvector'),
    typeof import('@langchain/openai'),
  ];
  try {
    modules = await Promise.all([
      import('@langchain/core/indexing'),
      import('@langchain/core/documents'),
      import('@langchain/community/indexes/postgres'),
      import('@langchain/community/vectorstores/pgvector'),
      import('@langchain/openai'),
    ]);
  } catch (e) {
    return `LangChain.js packages cannot be loaded (${e instanceof Error ? e.message : String(e)})`;
  }
  const [{ index }, { Document }, { PostgresRecordManager }, { PGVectorStore }, openai] = modules;
  return async ({ connection, baseUrl, model, dimensions, tag }) => {
    const tableName = `lc_docs_${tag}`;
    const recordTable = `lc_records_${tag}`;
    const embeddings = new openai.OpenAIEmbeddings({
      model,
      dimensions,
      apiKey: 'bench',
      configuration: { baseURL: baseUrl },
    });
    const store = await PGVectorStore.initialize(embeddings, {
      // shared with the record manager; PGVectorStore keeps one client checked out for good,
      // so the pool needs two (the socket server runs their queries one at a time)
      postgresConnectionOptions: { ...connection, max: 2 },
      tableName,
      dimensions,
      columns: {
        idColumnName: 'id',
        vectorColumnName: 'vector',
        contentColumnName: 'content',
        metadataColumnName: 'metadata',
      },
    });
    const pool = store.pool;
    const recordManager = new PostgresRecordManager('bench', { pool, tableName: recordTable });
    await recordManager.createSchema();
    return {
      async index(texts) {
        const docsSource = texts.map(
          (t, i) => new Document({ pageContent: t, metadata: { source: `doc-${i}` } }),
        );
        const r = await index({
          docsSource,
          recordManager,
          vectorStore: store,
          options: { sourceIdKey: 'source' },
        });
        return { added: r.numAdded, skipped: r.numSkipped };
      },
      async indexDocuments(chunks, cleanup) {
        const docsSource = chunks.map(
          (c) => new Document({ pageContent: c.content, metadata: { source: c.source } }),
        );
        const r = await index({
          docsSource,
          recordManager,
          vectorStore: store,
          options: { sourceIdKey: 'source', cleanup },
        });
        return { added: r.numAdded, skipped: r.numSkipped, deleted: r.numDeleted };
      },
      async count() {
        const { rows } = await pool.query(`SELECT count(*)::int AS n FROM ${tableName}`);
        return Number((rows[0] as { n: number }).n);
      },
      async close() {
        await store.end();
      },
      async dispose() {
        try {
          await pool.query(`DROP TABLE IF EXISTS ${tableName}, ${recordTable}`);
        } finally {
          await store.end(); // releases the client it keeps, then ends the pool
        }
      },
    };
  };
}
