/**
 * The Temporal dev server that scripts/test.js started through spawnTemporalDevServer has
 * certflow's search attributes, with the types the workflows upsert.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Connection } from '@temporalio/client';
import { ensureSearchAttributes } from '../../src/temporal/devserver.ts';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.ts';
import { temporalAddress, temporalNamespace } from '../helpers/stack.ts';

/** Temporal's IndexedValueType enum values (temporal.api.enums.v1). */
const INDEXED_VALUE_TYPE = { Text: 1, Keyword: 2, KeywordList: 7 } as const;

describe('Temporal dev server', () => {
  let connection: Connection;
  before(async () => {
    connection = await Connection.connect({ address: temporalAddress() });
  });
  after(() => connection?.close());

  it('registered all five certflow search attributes with their types', async () => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: temporalNamespace() });
    assert.equal(Object.keys(SEARCH_ATTRIBUTES).length, 5);
    for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
      assert.equal(customAttributes?.[name], INDEXED_VALUE_TYPE[type], `${name} should be ${type}`);
    }
  });

  it('ensureSearchAttributes is idempotent', async () => {
    assert.deepEqual(await ensureSearchAttributes(connection, temporalNamespace()), []);
  });
});
