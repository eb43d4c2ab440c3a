/** Request, order and authorization ids: URL-safe, unique, and usable as CLI arguments. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { derivedId, newId } from '../../src/core/ids.ts';

describe('newId', () => {
  it('is 22 base64url characters, never starting with "-" (the CLI would read an option)', () => {
    const ids = Array.from({ length: 20_000 }, newId);
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
    assert.equal(new Set(ids).size, ids.length);
  });
});

describe('derivedId', () => {
  it('is the same for the same input, 26 base64url characters, never starting with "-"', () => {
    assert.equal(derivedId('est\nsome request'), derivedId('est\nsome request'));
    const ids = Array.from({ length: 5000 }, (_, i) => derivedId(`request ${i}`));
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{25}$/);
    // Some inputs hash to a leading "-" (1 in 64): they become "_".
    assert.ok(ids.some((id) => id.startsWith('_')));
  });
});
