/**
 * Replays every recorded workflow history against the current workflow code. A change
 * that would break running workflows (a different sequence of commands) fails here;
 * guard such changes with patched() and record a new history next to the old ones.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, type ReplayResult } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { workflowBundle } from '../../src/temporal/worker.ts';

const dir = fileURLToPath(new URL('./histories/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('workflow replay', () => {
  it('has recorded histories for every workflow type', () => {
    const types = new Set(
      files.map((f) => {
        const h = JSON.parse(readFileSync(dir + f, 'utf8'));
        return h.events[0].workflowExecutionStartedEventAttributes.workflowType.name as string;
      }),
    );
    for (const type of [
      'enrollmentWorkflow',
      'revocationWorkflow',
      'crlWorkflow',
      'acmeOrderWorkflow',
      'acmeAuthzWorkflow',
      'auditCheckpointWorkflow',
      'keyRecoveryWorkflow',
      'cmpWorkflow',
      'notificationSweepWorkflow',
      'notificationDeliveryWorkflow',
      'notificationTestWorkflow',
      'caCreateWorkflow',
      'caImportWorkflow',
      'caRolloverWorkflow',
      'caActivationWorkflow',
      'caRevokeWorkflow',
      'caExpiryWatchWorkflow',
    ]) {
      assert.ok(types.has(type), `${type} history recorded`);
    }
  });

  // One replay worker for all histories, one after the other, as runReplayHistory() does for
  // one: a replay worker's start (its workflow thread loading the bundle) costs ~0.3 s of CPU.
  const replayed = new Map<string, ReplayResult>();
  before(async () => {
    const histories = files.map((file) => ({ workflowId: file, history: historyFromJSON(JSON.parse(readFileSync(dir + file, 'utf8'))) }));
    for await (const r of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) replayed.set(r.workflowId, r);
  });

  for (const file of files) {
    it(`replays ${file}`, () => {
      const result = replayed.get(file);
      assert.ok(result, `${file} was replayed`);
      if (result.error) throw result.error;
    });
  }
});
