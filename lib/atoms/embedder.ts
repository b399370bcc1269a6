/**
 * The `Embedder` contract, re-exported where atom ingestion always had it. It lives in
 * lib/embedding (with its errors), a layer the HTTP embedder can import without importing atoms.
 *
 * @module
 */

export type { Embedder } from '../embedding/embedder.js';
