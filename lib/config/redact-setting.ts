import { redactUrl } from '../core/redact-url.js';
import { CONFIG_KEYS } from './config-keys.js';

/** Service Bus connection string parts that hold no secret: every other part is hidden. */
const PUBLIC_SERVICE_BUS_PARTS = new Set([
  'endpoint',
  'sharedaccesskeyname',
  'entitypath',
  'usedevelopmentemulator',
]);

/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Redacts the secret part of a setting's value: the password of a URL (of any setting whose
 * value is a URL), the key or signature of a Service Bus connection string, the values of a
 * header list, a whole API key. A malformed value is redacted too: what cannot be recognised
 * as a part that holds no secret is hidden.
 *
 * @param key - the setting's path
 * @param value - its value
 * @returns the value safe to print
 *
 * @example
 * ```ts
 * import { redactSetting } from '@hartonomous/pipelines/config';
 * redactSetting('database.url', 'postgres://app:s3cret@db:5432/atoms'); // 'postgres://app:***@db:5432/atoms'
 * ```
 */
export function redactSetting(key: string, value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  switch (key) {
    case 'database.url':
      return redactUrl(text);
    case 'serviceBus.connectionString':
      return text
        .split(';')
        .map((part) => {
          if (part.trim() === '') return part;
          const at = part.indexOf('=');
          if (at < 0) return '***';
          const name = part.slice(0, at);
          return PUBLIC_SERVICE_BUS_PARTS.has(name.trim().toLowerCase()) ? part : `${name}=***`;
        })
        .join(';');
    case 'otel.headers':
      return text
        .split(',')
        .map((part) => {
          const name = part.split('=')[0] ?? '';
          return part.includes('=') && HEADER_NAME.test(name.trim()) ? `${name}=***` : '***';
        })
        .join(',');
    default: {
      const spec = CONFIG_KEYS.find((k) => k.path === key);
      return spec?.secret ? '***' : redactUrl(text);
    }
  }
}
