import { randomBytes } from 'node:crypto';

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
