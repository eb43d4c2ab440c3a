import { createHash, randomBytes } from 'node:crypto';

/**
 * A random, URL-safe identifier (128 bits) for requests, orders and enrollments. It never
 * starts with "-": operators pass ids to the CLI (`certflow orders cancel <id>`), where a
 * leading "-" would read as an option.
 */
export function newId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/**
 * An identifier derived from `input` (26 base64url characters of its SHA-256), for requests
 * whose id must be found again from the request itself (an EST device re-sending its CSR).
 * Like newId it never starts with "-" (a leading "-" becomes "_").
 */
export function derivedId(input: string): string {
  return createHash('sha256').update(input).digest('base64url').slice(0, 26).replace(/^-/, '_');
}
