/**
 * A URL (or connection string) for logs and messages, with its password hidden: the password
 * of `scheme://user:pw@host`, or of `user:pw@host` with the scheme forgotten or mistyped, and
 * the value of a `password=` parameter or keyword (`?password=...`, `password=... host=...`).
 * By text, not URL parsing: a malformed URL, or a password with `/` or `@` in it, is still
 * hidden, and everything else is kept as given.
 *
 * @param text - the URL as given
 * @returns the same text with every password replaced by `***`
 * @example
 * ```ts
 * redactUrl('postgres://app:s3cret@db:5432/x'); // 'postgres://app:***@db:5432/x'
 * redactUrl('postgres://app@db/x?password=s3cret'); // 'postgres://app@db/x?password=***'
 * ```
 * @internal
 */
export function redactUrl(text: string): string {
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.exec(text)?.[0] ?? '';
  const rest = text
    .slice(scheme.length)
    .replace(/(^|[/\s])([^:/@\s]*):.*@/, '$1$2:***@')
    .replace(/(\bpassword\s*=\s*)[^&\s]*/gi, '$1***');
  return scheme + rest;
}
