/**
 * The workflows of bench/floor.ts: Temporal's own cost for the shapes of certflow's requests,
 * with no work inside them. An enrollment is one workflow task with one local activity (B);
 * an ACME order is a workflow that takes a challenge Update and a finalize Update, each
 * doing its work as a local activity inside the Update's workflow task (H).
 */
import { condition, defineUpdate, proxyLocalActivities, setHandler } from '@temporalio/workflow';

const { nothing } = proxyLocalActivities<{ nothing(): Promise<string> }>({ startToCloseTimeout: '30s' });

export const challenge = defineUpdate<string>('challenge');
export const finalize = defineUpdate<string>('finalize');

/** B: an enrollment's shape. */
export async function floorEnrollment(): Promise<string> {
  return await nothing();
}

/** H: an order's shape. */
export async function floorOrder(): Promise<string> {
  let state = 'pending';
  setHandler(challenge, async () => {
    await nothing();
    state = 'ready';
    return state;
  });
  setHandler(finalize, async () => {
    await condition(() => state === 'ready');
    await nothing();
    state = 'valid';
    return state;
  });
  await condition(() => state === 'valid');
  return state;
}
