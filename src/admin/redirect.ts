/**
 * Where the console may send a browser after a login: a path of the console itself, never
 * another host. Browsers read "/\host" and "//host" as another host and drop tabs and
 * newlines inside URLs, so a target must be a plain absolute path that resolves to the
 * console's own origin; anything else becomes "/".
 */
const ORIGIN = 'https://console.invalid';

export function localRedirectTarget(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.length > 2000) return '/';
  // Backslashes, control characters and whitespace have no place in a console path.
  if (/[\\\s\p{Cc}]/u.test(next) || next.startsWith('//')) return '/';
  let url: URL;
  try {
    url = new URL(next, ORIGIN);
  } catch {
    return '/';
  }
  if (url.origin !== ORIGIN || url.pathname.startsWith('//')) return '/';
  return `${url.pathname}${url.search}${url.hash}`;
}
