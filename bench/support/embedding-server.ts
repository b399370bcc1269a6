/**
 * An OpenAI-compatible `POST /v1/embeddings` server on 127.0.0.1 (port 0) for benchmarks. It
 * answers with PRECOMPUTED vectors (their JSON is built once, at start), after a fixed latency
 * per request, so that the server, which runs in the benchmark's own process, spends almost
 * no CPU per request: the figures then describe the client. (test/support/embedding-server.ts
 * computes each vector and serialises it on every request, a cost that on a 2-core machine
 * would be charged to whichever contender sends the most inputs.)
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running benchmark embeddings server. */
export interface BenchEmbeddingServer {
  /** Base URL ending in `/v1`. */
  readonly baseUrl: string;
  /** Requests answered so far. */
  readonly requests: number;
  /** Inputs embedded so far. */
  readonly inputs: number;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Starts the server. Answers `encoding_format: 'base64'` (float32 little-endian) or JSON floats
 * (six decimals, the default). Texts not in `vectors` get HTTP 400.
 * @param vectors - text -> its vector
 * @param latencyMs - delay before every answer
 */
export async function startBenchEmbeddingServer(
  vectors: ReadonlyMap<string, Float32Array>,
  latencyMs: number,
): Promise<BenchEmbeddingServer> {
  const json = new Map<string, string>();
  const base64 = new Map<string, string>();
  for (const [text, v] of vectors) {
    const parts = new Array<string>(v.length);
    for (let i = 0; i < v.length; i++) parts[i] = v[i]!.toFixed(6);
    json.set(text, `[${parts.join(',')}]`);
    base64.set(text, `"${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}"`);
  }
  const counts = { requests: 0, inputs: 0 };
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let status = 200;
      let body: string;
      try {
        const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          model?: string;
          input?: string | string[];
          encoding_format?: string;
        };
        const table = parsed.encoding_format === 'base64' ? base64 : json;
        const inputs = Array.isArray(parsed.input) ? parsed.input : [parsed.input ?? ''];
        const data: string[] = [];
        for (let i = 0; i < inputs.length; i++) {
          const vector = table.get(inputs[i]!);
          if (vector === undefined) throw new Error(`unknown input ${i}`);
          data.push(`{"object":"embedding","index":${i},"embedding":${vector}}`);
        }
        counts.requests++;
        counts.inputs += inputs.length;
        body = `{"object":"list","model":${JSON.stringify(parsed.model ?? '')},"data":[${data.join(',')}],"usage":{"prompt_tokens":0,"total_tokens":0}}`;
      } catch (e) {
        status = 400;
        body = JSON.stringify({ error: { message: e instanceof Error ? e.message : String(e) } });
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(body);
      }, latencyMs);
      timers.add(timer);
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return counts.requests;
    },
    get inputs() {
      return counts.inputs;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
