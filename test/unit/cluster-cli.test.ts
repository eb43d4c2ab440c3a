/**
 * `certflow cluster` as an operator drives it, without starting one (test/integration/
 * cluster.test.ts starts the real thing): what it says about options an existing cluster
 * does not take.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import protobuf from 'protobufjs/minimal.js';
import { historyShardsNote } from '../../src/cli/cluster.ts';
import { historyShardCountOf } from '../../src/temporal/cluster-server.ts';

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

describe('the history shards a Temporal cluster recorded (its ClusterMetadata)', () => {
  // Fields as the server writes them (go.temporal.io/server api/persistence/v1): cluster_name 1,
  // history_shard_count 2, cluster_id 3, version_info 4 (a message), failover_version_increment 7.
  const message = (shards?: number) => {
    const w = protobuf.Writer.create()
      .uint32((1 << 3) | 2)
      .string('active');
    if (shards !== undefined) w.uint32((2 << 3) | 0).int32(shards);
    w.uint32((3 << 3) | 2).string('9c7a0f0e-cluster-id');
    w.uint32((4 << 3) | 2)
      .fork()
      .uint32((1 << 3) | 2)
      .string('1.32.1')
      .ldelim();
    w.uint32((7 << 3) | 0).int64(10);
    return w.finish();
  };

  it('reads history_shard_count among the other fields', () => {
    assert.equal(historyShardCountOf(message(2)), 2);
    assert.equal(historyShardCountOf(message(512)), 512);
  });

  it('is undefined when the field is absent (proto3 leaves out zero)', () => {
    assert.equal(historyShardCountOf(message()), undefined);
  });
});
