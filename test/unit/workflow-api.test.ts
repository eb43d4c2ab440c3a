/**
 * workflows/api.ts is the one list of workflow types, ids and Updates: every definition
 * names a function workflows/index.ts exports (the bundle's workflow types), with the
 * declared signature (checked by tsc through `implementations`), and the names recorded in
 * history stay what the replay histories and running workflows know.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defineSignal, defineUpdate } from '@temporalio/workflow';
import * as api from '../../workflows/api.ts';
import * as workflows from '../../workflows/index.ts';

type Implementations = { [K in keyof typeof api.WORKFLOWS]: api.WorkflowOf<(typeof api.WORKFLOWS)[K]> };

/** Type-checked: each implementation fits its definition's signature. */
const implementations: Implementations = {
  acmeOrder: workflows.acmeOrderWorkflow,
  acmeAuthz: workflows.acmeAuthzWorkflow,
  enrollment: workflows.enrollmentWorkflow,
  cmp: workflows.cmpWorkflow,
  revocation: workflows.revocationWorkflow,
  crl: workflows.crlWorkflow,
  auditCheckpoint: workflows.auditCheckpointWorkflow,
  keyRecovery: workflows.keyRecoveryWorkflow,
  notificationSweep: workflows.notificationSweepWorkflow,
  notificationDelivery: workflows.notificationDeliveryWorkflow,
  notificationTest: workflows.notificationTestWorkflow,
  caCreate: workflows.caCreateWorkflow,
  caImport: workflows.caImportWorkflow,
  caRollover: workflows.caRolloverWorkflow,
  caActivation: workflows.caActivationWorkflow,
  caRevoke: workflows.caRevokeWorkflow,
  caExpiryWatch: workflows.caExpiryWatchWorkflow,
};

describe('workflows/api.ts', () => {
  it('every definition is a workflow the bundle exports under its type name, and the bundle exports nothing else', () => {
    for (const [key, def] of Object.entries(api.WORKFLOWS)) {
      assert.equal(def.type, implementations[key as keyof Implementations].name, key);
      assert.equal(typeof (workflows as Record<string, unknown>)[def.type], 'function', def.type);
    }
    assert.deepEqual(
      Object.keys(workflows).sort(),
      Object.values(api.WORKFLOWS)
        .map((d) => d.type)
        .sort(),
    );
  });

  it('keeps the names recorded in history: workflow types, id schemes, Updates and signals', () => {
    assert.deepEqual(Object.fromEntries(Object.entries(api.WORKFLOWS).map(([k, d]) => [k, d.type])), {
      acmeOrder: 'acmeOrderWorkflow',
      acmeAuthz: 'acmeAuthzWorkflow',
      enrollment: 'enrollmentWorkflow',
      cmp: 'cmpWorkflow',
      revocation: 'revocationWorkflow',
      crl: 'crlWorkflow',
      auditCheckpoint: 'auditCheckpointWorkflow',
      keyRecovery: 'keyRecoveryWorkflow',
      notificationSweep: 'notificationSweepWorkflow',
      notificationDelivery: 'notificationDeliveryWorkflow',
      notificationTest: 'notificationTestWorkflow',
      caCreate: 'caCreateWorkflow',
      caImport: 'caImportWorkflow',
      caRollover: 'caRolloverWorkflow',
      caActivation: 'caActivationWorkflow',
      caRevoke: 'caRevokeWorkflow',
      caExpiryWatch: 'caExpiryWatchWorkflow',
    });
    assert.deepEqual(
      [
        api.WORKFLOWS.acmeOrder.id('o'),
        api.WORKFLOWS.acmeAuthz.id('a'),
        api.WORKFLOWS.enrollment.id('operator', 'r'),
        api.WORKFLOWS.enrollment.id('est', 'e'),
        api.WORKFLOWS.cmp.id('0a'),
        api.WORKFLOWS.revocation.id('5e'),
        api.WORKFLOWS.crl.id('x'),
        api.WORKFLOWS.auditCheckpoint.id('x'),
        api.WORKFLOWS.keyRecovery.id('x'),
        api.WORKFLOWS.notificationSweep.id('x'),
        api.WORKFLOWS.notificationDelivery.id('d'),
        api.WORKFLOWS.notificationDelivery.id('d', 3),
        api.WORKFLOWS.notificationTest.id('x'),
        api.WORKFLOWS.caCreate.id('n'),
        api.WORKFLOWS.caImport.id('n'),
        api.WORKFLOWS.caRollover.id('n'),
        api.WORKFLOWS.caActivation.id('n', 2),
        api.WORKFLOWS.caRevoke.id('n'),
      ],
      [
        'acme-order-o',
        'acme-authz-a',
        'operator-r',
        'est-e',
        'cmp-0a',
        'revoke-5e',
        'crl-x',
        'audit-checkpoint-x',
        'key-recovery-x',
        'notification-sweep-x',
        'notify-d',
        'notify-d-retry-3',
        'notification-test-x',
        'ca-create-n',
        'ca-import-n',
        'ca-rollover-n',
        'ca-activate-n-2',
        'ca-revoke-n',
      ],
    );
    const definitions = [
      api.respondChallengeUpdate,
      api.deactivateAuthzUpdate,
      api.retryValidationUpdate,
      api.finalizeUpdate,
      api.cancelOrderUpdate,
      api.decideUpdate,
      api.retryUpdate,
      api.abandonUpdate,
      api.cmpRequestUpdate,
      api.certConfUpdate,
      api.certDeliveredUpdate,
      api.authzChangedSignal,
    ];
    // Each is what the SDK's own defineUpdate()/defineSignal() makes of its name.
    for (const d of definitions) assert.deepEqual(d, d.type === 'update' ? defineUpdate(d.name) : defineSignal(d.name), d.name);
    assert.deepEqual(
      definitions.map((d) => d.name),
      [
        'respondChallenge',
        'deactivate',
        'retryValidation',
        'finalize',
        'cancel',
        'decide',
        'retry',
        'abandon',
        'request',
        'certConf',
        'delivered',
        'authzChanged',
      ],
    );
    assert.equal(api.signingTaskQueue('certflow'), 'certflow-signing');
    assert.deepEqual(
      [
        api.scheduleIds.revocationRefresh('q'),
        api.scheduleIds.auditCheckpoint('q'),
        api.scheduleIds.caExpiryWatch('q'),
        api.scheduleIds.notificationSweep('q'),
      ],
      ['q-revocation-refresh', 'q-audit-checkpoint', 'q-ca-expiry-watch', 'q-notifications'],
    );
  });
});
