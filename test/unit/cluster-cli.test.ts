/**
 * `certflow cluster` as an operator drives it, without starting one (test/integration/
 * cluster.test.ts starts the real thing): what it says about options an existing cluster
 * does not take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { historyShardsNote } from '../../src/cli/cluster.ts';

describe('certflow cluster --history-shards', () => {
  it('says nothing when the option is not given or matches the cluster', () => {
    assert.equal(historyShardsNote(undefined, 2), undefined);
    assert.equal(historyShardsNote(4, 4), undefined);
  });

  it('says that an existing cluster keeps the shards it was created with', () => {
    assert.equal(
      historyShardsNote(8, 4),
      '--history-shards 8 applies only to a new Temporal cluster: this one was created with 4 history shards and keeps them',
    );
  });
});
