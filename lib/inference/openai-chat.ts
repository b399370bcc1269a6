import { InvalidAnswerError } from './errors.js';
import type { ModelAdapter, ModelCall } from './model-client.js';

/**
 * Options of {@link openAIChat}.
 *
 * @example
 * ```ts
 * import type { OpenAIChatOptions } from '@hartonomous/pipelines/inference';
 * const options: OpenAIChatOptions = {
 *   system: 'Classify the sentiment. Answer with one word: positive, negative or neutral.',
 *   labels: ['positive', 'negative', 'neutral'],
 * };
 * ```
 */
export interface OpenAIChatOptions {
  /** The system message. @default a short instruction to answer with the label or number only */
  system?: string;
  /** Builds the user message from the call. @default `String(input)` (JSON for non-strings) */
  prompt?: (call: ModelCall) => string;
  /**
   * Allowed answers: the reply is matched case-insensitively to one of them (an exact match
   * first, else the first label the reply contains); no match is an invalid answer.
   * @default any text
   */
  labels?: readonly string[];
  /** Parse the reply as a number (for mean, median, ...). @default false */
  numeric?: boolean;
  /** Sent as `Authorization: Bearer <key>`. @default none */
  apiKey?: string;
  /** Most tokens of the reply. @default 16 */
  maxTokens?: number;
}

/**
 * An adapter for OpenAI-compatible chat completions endpoints (OpenAI, vLLM, Ollama,
 * LocalAI, llama.cpp server, ...): register it under a kind (say `'openai-chat'`) and give
 * the model that kind, with `endpoint` the full `/v1/chat/completions` URL and
 * `options.model` the remote model id (default: the model's name). It sends the input as the
 * user message at temperature 0 and reads `choices[0].message.content` as the answer.
 *
 * @param options - system message, prompt, allowed labels, numeric parsing, API key
 * @returns the adapter
 * @throws TypeError when an option is invalid
 *
 * @example
 * ```ts
 * import { ensemble, openAIChat, registerModels } from '@hartonomous/pipelines/inference';
 *
 * await registerModels(db, [
 *   { name: 'llama', kind: 'openai-chat', endpoint: 'http://127.0.0.1:11434/v1/chat/completions', options: { model: 'llama3.2' } },
 * ]);
 * const sentiment = ensemble({
 *   models: db,
 *   adapters: { 'openai-chat': openAIChat({ labels: ['positive', 'negative', 'neutral'] }) },
 * });
 * ```
 */
export function openAIChat(options: OpenAIChatOptions = {}): ModelAdapter {
  const labels = options.labels;
  if (
    labels !== undefined &&
    (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string' || !l))
  ) {
    throw new TypeError('openAIChat: labels must be non-empty strings');
  }
  const maxTokens = options.maxTokens ?? 16;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new TypeError(`openAIChat: maxTokens must be a positive integer, got ${maxTokens}`);
  }
  const system =
    options.system ??
    (labels
      ? `Answer with exactly one of: ${labels.join(', ')}.`
      : options.numeric
        ? 'Answer with a number only.'
        : 'Answer briefly.');
  const prompt =
    options.prompt ??
    ((call: ModelCall) =>
      typeof call.request.input === 'string'
        ? call.request.input
        : JSON.stringify(call.request.input));
  const headers: Record<string, string> = options.apiKey
    ? { authorization: `Bearer ${options.apiKey}` }
    : {};
  const adapter: ModelAdapter = {
    request: (call: ModelCall) => ({
      headers,
      json: {
        model:
          typeof call.model.options.model === 'string' ? call.model.options.model : call.model.name,
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: prompt(call) },
        ],
        temperature: 0,
        max_tokens: maxTokens,
      },
    }),
    response: (body: unknown, call: ModelCall) => {
      const content = (body as { choices?: { message?: { content?: unknown } }[] } | null)
        ?.choices?.[0]?.message?.content;
      if (typeof content !== 'string') {
        throw new InvalidAnswerError(call.model.name, 'no choices[0].message.content in the reply');
      }
      const text = content.trim();
      if (options.numeric) {
        const n = Number.parseFloat(
          text
            .replace(/[^0-9eE+.-]/g, ' ')
            .trim()
            .split(/\s+/)[0] ?? '',
        );
        if (!Number.isFinite(n))
          throw new InvalidAnswerError(call.model.name, `not a number: ${JSON.stringify(text)}`);
        return { answer: n };
      }
      if (!labels) return { answer: text };
      const lower = text.toLowerCase().replace(/[.!\s]+$/, '');
      const exact = labels.find((l) => l.toLowerCase() === lower);
      const contained = exact ?? labels.find((l) => lower.includes(l.toLowerCase()));
      if (!contained) {
        throw new InvalidAnswerError(
          call.model.name,
          `${JSON.stringify(text)} is none of ${labels.join(', ')}`,
        );
      }
      return { answer: contained };
    },
  };
  return Object.freeze(adapter);
}
