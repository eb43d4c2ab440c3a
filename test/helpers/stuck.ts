/** The stuck-request bounds and clock of test/unit/stuck.test.ts and test/component/stuck-read-model.test.ts. */
import type { StuckBounds } from '../../src/config/index.ts';

export const BOUNDS: StuckBounds = {
  acme: { validatingSeconds: 75, processingSeconds: 120 },
  est: { pendingSeconds: 30, signingSeconds: 40 },
  cmp: { pendingSeconds: 50, signingSeconds: 60 },
  operator: { pendingSeconds: 70, signingSeconds: 80 },
};
export const NOW = new Date('2030-01-01T12:00:00.000Z');
export const ago = (ms: number) => new Date(NOW.getTime() - ms);
