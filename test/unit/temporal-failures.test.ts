/**
 * src/temporal/client.ts recognises Temporal's ApplicationFailure without loading the SDK
 * (isApplicationFailure), and turns a requester's mistake back into a CaError.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { CaError } from '../../src/core/errors.ts';
import { isApplicationFailure, unwrapWorkflowFailure } from '../../src/temporal/client.ts';

describe('Temporal failures', () => {
  it('isApplicationFailure answers as `instanceof ApplicationFailure` does', () => {
    const failure = ApplicationFailure.create({ type: 'badCSR', message: 'no', nonRetryable: true });
    assert.ok(failure instanceof ApplicationFailure);
    assert.equal(isApplicationFailure(failure), true);
    class Lookalike extends Error {
      override name = 'ApplicationFailure';
      type = 'badCSR';
    }
    for (const other of [
      new Error('no'),
      new Lookalike('no'),
      { name: 'ApplicationFailure', type: 'badCSR' },
      null,
      undefined,
      'ApplicationFailure',
    ]) {
      assert.equal(other instanceof ApplicationFailure, false);
      assert.equal(isApplicationFailure(other), false, String(other));
    }
  });

  it("unwrapWorkflowFailure: a requester's mistake becomes its CaError, anything else stays what it was", () => {
    const failed = (type: string) =>
      new WorkflowFailedError(
        'workflow failed',
        ApplicationFailure.create({ type, message: 'the CSR does not parse' }),
        'NON_RETRYABLE_FAILURE',
      );
    const unwrapped = unwrapWorkflowFailure(failed('badCSR'));
    assert.ok(unwrapped instanceof CaError);
    assert.equal(unwrapped.kind, 'badCSR');
    assert.equal(unwrapped.message, 'the CSR does not parse');
    // A server fault (not the requester's) is not turned into a refusal.
    const internal = failed('internal');
    assert.equal(unwrapWorkflowFailure(internal), internal);
  });
});
