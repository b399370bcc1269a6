/**
 * A model endpoint on 127.0.0.1 speaking the library's JSON protocol (or an OpenAI-compatible
 * chat completions API), for tests, the ensemble example and the benchmark. Latency, failures
 * and hangs are scripted per call; every request received is recorded.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the server received. */
export interface ReceivedRequest {
  /** 1-based number of the call. */
  readonly n: number;
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body (undefined when not JSON). */
  readonly body: unknown;
}

/** What the server does for one call. */
export type Reply =
  | { readonly kind: 'answer'; readonly answer: unknown; readonly confidence?: number }
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly body?: string;
      readonly headers?: Record<string, string>;
    }
  | { readonly kind: 'hang' }
  /** waits for `until`, then sends `reply` (a reply ordered after events the test controls) */
  | { readonly kind: 'defer'; readonly until: Promise<unknown>; readonly reply: Reply }
  | { readonly kind: 'raw'; readonly status?: number; readonly body: string };

export interface ModelServerOptions {
  /** What to answer (the default reply). @default echo of the input */
  answer?: (input: unknown, req: ReceivedRequest) => unknown;
  /** Confidence sent with answers. @default none */
  confidence?: number;
  /** Delay before replying, in ms (a function of the call). @default 0 */
  latencyMs?: number | ((req: ReceivedRequest) => number);
  /** Overrides the reply of a call (fail it, hang it, send garbage); undefined keeps the default. */
  reply?: (req: ReceivedRequest) => Reply | undefined;
  /** `'json'`: the library's protocol; `'openai-chat'`: an OpenAI-compatible chat completions API. @default 'json' */
  protocol?: 'json' | 'openai-chat';
}

export interface ModelServer {
  /** The endpoint URL (`http://127.0.0.1:<port>/predict`, or `/v1/chat/completions`). */
  readonly url: string;
  readonly port: number;
  /** Requests received so far. */
  readonly requests: readonly ReceivedRequest[];
  /** Calls received. */
  readonly calls: number;
  /** Calls whose client went away before the reply (cancelled by the client). */
  readonly aborted: number;
  /** Calls replied to. */
  readonly replied: number;
  /** Most calls in progress at once. */
  readonly maxInFlight: number;
  close(): Promise<void>;
}

/** Starts a model server on 127.0.0.1, port 0 (a free port). */
export async function startModelServer(options: ModelServerOptions = {}): Promise<ModelServer> {
  const requests: ReceivedRequest[] = [];
  let aborted = 0;
  let replied = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const protocol = options.protocol ?? 'json';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const received: ReceivedRequest = {
        n: requests.length + 1,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
      };
      requests.push(received);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const input =
        protocol === 'json'
          ? (body as { input?: unknown } | undefined)?.input
          : (body as { messages?: { content?: unknown }[] } | undefined)?.messages?.at(-1)?.content;
      const reply: Reply = options.reply?.(received) ?? {
        kind: 'answer',
        answer: options.answer ? options.answer(input, received) : input,
        ...(options.confidence === undefined ? {} : { confidence: options.confidence }),
      };
      const latency =
        typeof options.latencyMs === 'function'
          ? options.latencyMs(received)
          : (options.latencyMs ?? 0);
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const respond = (r: Reply): void => {
        if (done) return;
        if (r.kind === 'hang') return;
        if (r.kind === 'defer') {
          void r.until.then(() => respond(r.reply));
          return;
        }
        timer = setTimeout(() => {
          if (done) return;
          done = true;
          replied++;
          inFlight--;
          send(res, r, protocol);
        }, latency);
      };
      respond(reply);
      res.on('close', () => {
        if (!done) {
          done = true;
          aborted++;
          inFlight--;
          if (timer) clearTimeout(timer);
        }
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const path = protocol === 'json' ? '/predict' : '/v1/chat/completions';
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    requests,
    get calls() {
      return requests.length;
    },
    get aborted() {
      return aborted;
    },
    get replied() {
      return replied;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(
  res: import('node:http').ServerResponse,
  reply: Exclude<Reply, { kind: 'hang' } | { kind: 'defer' }>,
  protocol: 'json' | 'openai-chat',
): void {
  if (reply.kind === 'status') {
    res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
    res.end(reply.body ?? `status ${reply.status}`);
    return;
  }
  if (reply.kind === 'raw') {
    res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
    res.end(reply.body);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' });
  if (protocol === 'openai-chat') {
    res.end(
      JSON.stringify({
        id: 'chatcmpl-test',
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: String(reply.answer) } }],
      }),
    );
    return;
  }
  res.end(
    JSON.stringify({
      answer: reply.answer,
      ...(reply.confidence === undefined ? {} : { confidence: reply.confidence }),
    }),
  );
}
