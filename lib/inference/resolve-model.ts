import type { ModelDefinition, ResolvedModel } from './types.js';

/**
 * Validates a model definition and fills in its defaults (`kind: 'json'`, `weight: 1`,
 * `timeoutMs: 5_000`, `enabled: true`, `options: {}`).
 *
 * @param model - the definition
 * @returns the model with every field set
 * @throws TypeError when a field is invalid (empty name, endpoint not http(s), negative weight, ...)
 *
 * @example
 * ```ts
 * import { resolveModel } from '@hartonomous/pipelines/inference';
 * const m = resolveModel({ name: 'a', endpoint: 'http://127.0.0.1:8001/predict' });
 * m.timeoutMs; // 5000
 * ```
 */
export function resolveModel(model: ModelDefinition): ResolvedModel {
  const fail = (message: string): never => {
    throw new TypeError(`model '${String(model?.name)}': ${message}`);
  };
  if (typeof model !== 'object' || model === null) fail('must be an object');
  if (typeof model.name !== 'string' || model.name.trim().length === 0) {
    fail('name must be a non-empty string');
  }
  let url: URL | undefined;
  try {
    url = new URL(model.endpoint);
  } catch {
    fail(`endpoint must be an absolute URL, got ${JSON.stringify(model.endpoint)}`);
  }
  if (url && url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail(`endpoint must be http(s), got ${url.protocol}`);
  }
  const kind = model.kind ?? 'json';
  if (typeof kind !== 'string' || kind.length === 0) fail('kind must be a non-empty string');
  const weight = model.weight ?? 1;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    fail(`weight must be a finite number >= 0, got ${String(model.weight)}`);
  }
  const timeoutMs = model.timeoutMs ?? 5_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    fail(`timeoutMs must be a positive integer, got ${String(model.timeoutMs)}`);
  }
  const enabled = model.enabled ?? true;
  if (typeof enabled !== 'boolean') fail('enabled must be a boolean');
  const options = model.options ?? {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    fail('options must be an object');
  }
  return Object.freeze({
    name: model.name,
    endpoint: model.endpoint,
    kind,
    weight,
    timeoutMs,
    enabled,
    options: Object.freeze({ ...options }),
  });
}
