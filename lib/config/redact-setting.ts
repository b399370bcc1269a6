import { CONFIG_KEYS } from './config-keys.js';

/**
 * Redacts the secret part of a setting's value: the password of a URL, the key or signature
 * of a Service Bus connection string, the values of a header list, a whole API key.
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
      // by text, not URL parsing: a password with '/' or '@' in it is still hidden
      return text
        .replace(/^([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^:/@]*):.*@/, '$1:***@')
        .replace(/([?&]password=)[^&]*/gi, '$1***');
    case 'serviceBus.connectionString':
      return text
        .split(';')
        .map((part) => {
          const at = part.indexOf('=');
          const name = at < 0 ? part : part.slice(0, at);
          return /^(sharedaccesskey|sharedaccesssignature)$/i.test(name.trim())
            ? `${name}=***`
            : part;
        })
        .join(';');
    case 'otel.headers':
      return text
        .split(',')
        .map((part) => `${part.split('=')[0]}=***`)
        .join(',');
    default: {
      const spec = CONFIG_KEYS.find((k) => k.path === key);
      return spec?.secret ? '***' : text;
    }
  }
}
