import {
  InvalidContentError,
  InvalidContentTypeError,
  InvalidMetadataError,
  InvalidSourceIdError,
} from './item-errors.js';
import { validateContent } from './validate-content.js';

/**
 * Options of {@link validateItem}.
 *
 * @example
 * ```ts
 * import type { ValidateItemOptions } from '@hartonomous/pipelines/atoms';
 * const strict: ValidateItemOptions = { maxContentBytes: 64 * 1024, maxMetadataDepth: 8 };
 * ```
 */
export interface ValidateItemOptions {
  /** Largest content accepted, in UTF-8 bytes. @default 1_048_576 (1 MiB) */
  maxContentBytes?: number;
  /** Deepest nesting of metadata objects and arrays accepted. @default 64 */
  maxMetadataDepth?: number;
}

/**
 * An atom input that passed {@link validateItem}: every field in the form it is stored in.
 *
 * @example
 * ```ts
 * import { validateItem, type ValidItem } from '@hartonomous/pipelines/atoms';
 * const item: ValidItem = validateItem({ content: 'hello', sourceId: 'greetings.txt' });
 * // { text: 'hello', byteSize: 5, contentType: 'text/plain', sourceId: 'greetings.txt', metadata: undefined }
 * ```
 */
export interface ValidItem {
  /** The content as text. */
  readonly text: string;
  /** Its size in UTF-8 bytes. */
  readonly byteSize: number;
  /** The MIME type (`'text/plain'` when none was given). */
  readonly contentType: string;
  /** The source id, or `undefined` when none was given (`null` counts as none). */
  readonly sourceId: string | undefined;
  /** The metadata, or `undefined` when none was given (`null` counts as none). */
  readonly metadata: Record<string, unknown> | undefined;
}

/** Longest content type accepted, in UTF-16 units. */
const MAX_CONTENT_TYPE_LENGTH = 255;
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Checks EVERY field of one atom input before it joins a batch, so a field that cannot be
 * stored fails its own item with a named error instead of failing the batch's insert:
 * - `content`: see `validateContent` (empty, too large, not UTF-8, NUL), and
 *   {@link InvalidContentError} when the input is not an object or `content` is neither a
 *   string nor a `Uint8Array`;
 * - `contentType`: a non-empty string of at most 255 characters without NUL or lone
 *   surrogates, else {@link InvalidContentTypeError};
 * - `sourceId`: a string without NUL or lone surrogates, else {@link InvalidSourceIdError};
 * - `metadata`: a plain object that survives `jsonb` exactly (no cycles, BigInt, functions,
 *   symbols, Maps, Sets, binary data, NaN/Infinity, NUL or lone surrogates in strings or
 *   keys, nesting within `maxMetadataDepth`), else {@link InvalidMetadataError} with the path
 *   of the bad value. Values with `toJSON` (a `Date`) are checked as what they serialise to;
 *   `undefined` properties are left out, as JSON does.
 *
 * `null` or absent `contentType`, `sourceId` and `metadata` mean "none".
 *
 * @param input - anything (a caller's `AtomInput`, or what a queue delivered)
 * @param options - limits
 * @returns the fields in stored form
 * @throws {@link InvalidContentError}, {@link InvalidContentTypeError},
 * {@link InvalidSourceIdError}, {@link InvalidMetadataError}, and the errors of
 * `validateContent` (`EmptyContentError`, `ContentTooLargeError`, `InvalidUtf8Error`)
 *
 * @example
 * ```ts
 * import { isInvalidMetadataError, validateItem } from '@hartonomous/pipelines/atoms';
 *
 * const self: Record<string, unknown> = {};
 * self.self = self;
 * try {
 *   validateItem({ content: 'hello', metadata: self });
 * } catch (e) {
 *   if (isInvalidMetadataError(e)) console.log(e.reason, e.path); // 'circular' '$.self'
 * }
 * ```
 */
export function validateItem(input: unknown, options: ValidateItemOptions = {}): ValidItem {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidContentError(
      kindOf(input),
      `an atom input must be an object with a content field, got ${kindOf(input)}`,
    );
  }
  const fields = input as Record<string, unknown>;
  const content = fields.content;
  if (typeof content !== 'string' && !(content instanceof Uint8Array)) {
    throw new InvalidContentError(kindOf(content));
  }
  const { text, byteSize } = validateContent(
    content,
    options.maxContentBytes === undefined ? {} : { maxBytes: options.maxContentBytes },
  );
  return {
    text,
    byteSize,
    contentType: checkContentType(fields.contentType),
    sourceId: checkSourceId(fields.sourceId),
    metadata: checkMetadata(fields.metadata, options.maxMetadataDepth ?? 64),
  };
}

function checkContentType(value: unknown): string {
  if (value === undefined || value === null) return 'text/plain';
  const fail = (reason: ConstructorParameters<typeof InvalidContentTypeError>[0], d: string) =>
    new InvalidContentTypeError(reason, d);
  if (typeof value !== 'string') throw fail('type', `expected a string, got ${kindOf(value)}`);
  if (value.trim().length === 0) throw fail('empty', 'it is empty');
  if (value.length > MAX_CONTENT_TYPE_LENGTH) {
    throw fail('too-long', `${value.length} characters, more than ${MAX_CONTENT_TYPE_LENGTH}`);
  }
  const bad = badText(value);
  if (bad) throw fail(bad, TEXT_PROBLEMS[bad]);
  return value;
}

function checkSourceId(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') {
    throw new InvalidSourceIdError('type', `expected a string, got ${kindOf(value)}`);
  }
  const bad = badText(value);
  if (bad) throw new InvalidSourceIdError(bad, TEXT_PROBLEMS[bad]);
  return value;
}

const TEXT_PROBLEMS = {
  nul: 'it holds a NUL character (U+0000), which PostgreSQL cannot store',
  'lone-surrogate': 'it holds a lone surrogate, which has no UTF-8 form',
} as const;

function badText(s: string): 'nul' | 'lone-surrogate' | undefined {
  if (s.includes('\u0000')) return 'nul';
  if (LONE_SURROGATE.test(s)) return 'lone-surrogate';
  return undefined;
}

function checkMetadata(value: unknown, maxDepth: number): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidMetadataError(
      'not-an-object',
      '$',
      `expected a JSON object, got ${kindOf(value)}`,
    );
  }
  const top = jsonOf(value, '');
  if (typeof top !== 'object' || top === null || Array.isArray(top)) {
    throw new InvalidMetadataError(
      'not-an-object',
      '$',
      `its toJSON() gives ${kindOf(top)}, not an object`,
    );
  }
  walk(top, '$', 0, maxDepth, []);
  return value as Record<string, unknown>;
}

/** What JSON.stringify would serialise in place of `value` (its `toJSON()` result). */
function jsonOf(value: unknown, key: string): unknown {
  if (
    (typeof value === 'object' && value !== null) ||
    typeof value === 'bigint' // BigInt.prototype.toJSON may be patched in by an application
  ) {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return toJSON.call(value, key);
  }
  return value;
}

/**
 * Checks one value the way JSON.stringify will serialise it (hand-written rather than a
 * JSON.stringify replacer: a replacer cannot tell the path of the bad value, nor a cycle).
 */
function walk(
  value: unknown,
  path: string,
  depth: number,
  maxDepth: number,
  ancestors: object[],
): void {
  switch (typeof value) {
    case 'string': {
      const bad = badText(value);
      if (bad)
        throw new InvalidMetadataError(bad, path, TEXT_PROBLEMS[bad].replace('it ', 'a string '));
      return;
    }
    case 'number':
      if (!Number.isFinite(value)) {
        throw new InvalidMetadataError(
          'not-finite',
          path,
          `${value} has no JSON form (it would be stored as null)`,
        );
      }
      return;
    case 'boolean':
    case 'undefined':
      return;
    case 'bigint':
      throw new InvalidMetadataError('bigint', path, 'a BigInt has no JSON form');
    case 'function':
    case 'symbol':
      throw new InvalidMetadataError(
        'not-serializable',
        path,
        `a ${typeof value} is not data (JSON would drop it)`,
      );
  }
  if (value === null) return;
  const obj = value as object;
  if (
    obj instanceof Map ||
    obj instanceof Set ||
    obj instanceof WeakMap ||
    obj instanceof WeakSet ||
    ArrayBuffer.isView(obj) ||
    obj instanceof ArrayBuffer
  ) {
    throw new InvalidMetadataError(
      'not-serializable',
      path,
      `a ${obj.constructor.name} would be stored as {} (convert it to an object or array)`,
    );
  }
  if (ancestors.includes(obj)) {
    throw new InvalidMetadataError(
      'circular',
      path,
      'the value refers to an object that contains it',
    );
  }
  if (depth >= maxDepth) {
    throw new InvalidMetadataError('too-deep', path, `nested deeper than ${maxDepth} levels`);
  }
  ancestors.push(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      const item = jsonOf(obj[i], String(i));
      // JSON writes null for undefined, functions and symbols inside arrays: keep the rule
      // that functions and symbols are not data, accept undefined/null
      walk(item, `${path}[${i}]`, depth + 1, maxDepth, ancestors);
    }
  } else {
    for (const key of Object.keys(obj)) {
      const item = jsonOf((obj as Record<string, unknown>)[key], key);
      if (item === undefined) continue; // JSON leaves the property out, key and all
      const where = `${path}.${key}`;
      const badKey = badText(key);
      if (badKey) {
        throw new InvalidMetadataError(
          badKey,
          where,
          TEXT_PROBLEMS[badKey].replace('it ', 'the key '),
        );
      }
      walk(item, where, depth + 1, maxDepth, ancestors);
    }
  }
  ancestors.pop();
}

/** A short description of a value's kind for messages (never the value itself). */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  }
  return typeof value;
}
