export { enrollmentWorkflow, decideUpdate, retryUpdate, abandonUpdate } from './enrollment.ts';
export type { EnrollmentInput, EnrollmentResult, Decision } from './enrollment.ts';
export { revocationWorkflow, crlWorkflow } from './revocation.ts';
export { acmeOrderWorkflow, orderCreatedUpdate, finalizeUpdate, cancelOrderUpdate } from './acme-order.ts';
export { acmeAuthzWorkflow, respondChallengeUpdate, deactivateAuthzUpdate, retryValidationUpdate, authzChangedSignal } from './acme-authz.ts';
