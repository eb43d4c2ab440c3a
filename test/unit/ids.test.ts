/** Request, order and authorization ids: URL-safe, unique, and usable as CLI arguments. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newId } from '../../src/core/ids.ts';

describe('newId', () => {
  it('is 22 base64url characters, never starting with "-" (the CLI would read an option)', () => {
    const ids = Array.from({ length: 20_000 }, newId);
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
    assert.equal(new Set(ids).size, ids.length);
  });
});
