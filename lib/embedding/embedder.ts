/**
 * Turns texts into vectors. Implementations: {@link localEmbedder} (built-in, deterministic
 * feature hashing, no service needed) and `openAIEmbedder` (any OpenAI-compatible
 * `/v1/embeddings` server: OpenAI, Ollama, vLLM, LocalAI, TEI). Plug in your own by
 * implementing this interface.
 *
 * Contract: `embed` resolves with exactly one vector per input text, in order, each
 * `dimensions` long; it rejects with `signal.reason` when the signal aborts. When only some
 * inputs got no usable vector it may reject with a `PartialEmbeddingError` holding, per input,
 * the vector or its `InvalidEmbeddingError`: the ingestion pipeline then fails only those
 * items. Check outputs you do not trust with {@link validateVectors}.
 *
 * @example
 * ```ts
 * import type { Embedder } from '@hartonomous/pipelines/atoms';
 *
 * const constant: Embedder = {
 *   model: 'constant-v1',
 *   dimensions: 2,
 *   async embed(texts, signal) {
 *     signal.throwIfAborted();
 *     return texts.map(() => new Float32Array([Math.SQRT1_2, Math.SQRT1_2]));
 *   },
 * };
 * ```
 */
export interface Embedder {
  /** Identifies the embedding space; stored with each atom as `embedding_model`. */
  readonly model: string;
  /** Length of every vector returned. */
  readonly dimensions: number;
  /** Most texts worth sending in one `embed` call (callers batch accordingly). @default unlimited */
  readonly maxBatchSize?: number;
  /** Most characters (summed over texts) worth sending in one `embed` call. @default unlimited */
  readonly maxBatchChars?: number;
  /**
   * Embeds a batch of texts.
   * @param texts - the inputs
   * @param signal - cancels the work
   * @returns one vector per text, in order
   */
  embed(texts: readonly string[], signal: AbortSignal): Promise<Float32Array[]>;
}
