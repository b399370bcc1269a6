import { InvalidAnswerError } from './errors.js';
import type { ModelAdapter } from './model-client.js';

/**
 * The library's model endpoint protocol (model kind `'json'`), JSON over HTTP.
 *
 * Request: `POST <endpoint>` with `content-type: application/json`, the headers
 * `traceparent` (and `tracestate`) of W3C trace context, `x-request-id` and
 * `x-correlation-id`, and the body
 * ```json
 * { "requestId": "req-1", "model": "sentiment-a", "input": "The food was great", "parameters": {} }
 * ```
 * where `input` and `parameters` are the request's, as given (any JSON).
 *
 * Response: `200` (any 2xx) with
 * ```json
 * { "answer": "positive", "confidence": 0.93 }
 * ```
 * `answer` is a string (a label, for votes) or a finite number (for mean, median, ...);
 * `confidence` is optional, a number in [0, 1]; other fields are ignored. A body without a
 * valid `answer` is an {@link InvalidAnswerError} (not retried).
 *
 * Errors: 408, 425, 429 and 5xx are retried (honouring `Retry-After`, seconds or an HTTP
 * date); other statuses are not. Every attempt is bounded by the model's `timeoutMs`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 *
 * // a model endpoint in a few lines
 * createServer((req, res) => {
 *   let body = '';
 *   req.on('data', (c) => (body += c));
 *   req.on('end', () => {
 *     const { input } = JSON.parse(body) as { input: string };
 *     res.setHeader('content-type', 'application/json');
 *     res.end(JSON.stringify({ answer: /great|good/.test(input) ? 'positive' : 'negative', confidence: 0.8 }));
 *   });
 * }).listen(8001, '127.0.0.1');
 * ```
 */
export const jsonProtocol: ModelAdapter = Object.freeze<ModelAdapter>({
  request: (call) => ({
    json: {
      requestId: call.requestId,
      model: call.model.name,
      input: call.request.input ?? null,
      parameters: call.request.parameters ?? {},
    },
  }),
  response: (body, call) => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new InvalidAnswerError(call.model.name, 'the response is not a JSON object');
    }
    const { answer, confidence } = body as { answer?: unknown; confidence?: unknown };
    if (!(typeof answer === 'string' || (typeof answer === 'number' && Number.isFinite(answer)))) {
      throw new InvalidAnswerError(
        call.model.name,
        `"answer" must be a string or a finite number, got ${JSON.stringify(answer) ?? 'nothing'}`,
      );
    }
    if (confidence === undefined || confidence === null) return { answer };
    if (typeof confidence !== 'number' || !(confidence >= 0 && confidence <= 1)) {
      throw new InvalidAnswerError(
        call.model.name,
        `"confidence" must be a number in [0, 1], got ${JSON.stringify(confidence)}`,
      );
    }
    return { answer, confidence };
  },
});
