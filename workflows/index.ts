export { enrollmentWorkflow, decideUpdate, retryUpdate, abandonUpdate } from './enrollment.ts';
export type { EnrollmentInput, EnrollmentResult, Decision } from './enrollment.ts';
export { revocationWorkflow, crlWorkflow } from './revocation.ts';
export { acmeOrderWorkflow, finalizeUpdate, cancelOrderUpdate } from './acme-order.ts';
export { acmeAuthzWorkflow } from './acme-authz.ts';
export { respondChallengeUpdate, deactivateAuthzUpdate, retryValidationUpdate, authzChangedSignal } from './acme-common.ts';
export { auditCheckpointWorkflow, keyRecoveryWorkflow } from './audit.ts';
export { cmpWorkflow, cmpRequestUpdate, certConfUpdate, certDeliveredUpdate } from './cmp.ts';
export type { CmpInput, CmpOutcome, CertConfDecision } from './cmp.ts';
export {
  caCreateWorkflow,
  caImportWorkflow,
  caRolloverWorkflow,
  caActivationWorkflow,
  caRevokeWorkflow,
  caExpiryWatchWorkflow,
} from './ca.ts';
