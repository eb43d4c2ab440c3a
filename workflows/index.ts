/**
 * The workflow bundle's entry (src/temporal/worker.ts): every function exported here is a
 * workflow type, under its export name. Callers take names, ids, inputs and Updates from
 * api.ts, never from here.
 */
export { acmeAuthzWorkflow } from './acme-authz.ts';
export { acmeOrderWorkflow } from './acme-order.ts';
export { auditCheckpointWorkflow, keyRecoveryWorkflow } from './audit.ts';
export {
  caActivationWorkflow,
  caCreateWorkflow,
  caExpiryWatchWorkflow,
  caImportWorkflow,
  caRevokeWorkflow,
  caRolloverWorkflow,
} from './ca.ts';
export { cmpWorkflow } from './cmp.ts';
export { enrollmentWorkflow } from './enrollment.ts';
export { notificationDeliveryWorkflow, notificationSweepWorkflow, notificationTestWorkflow } from './notifications.ts';
export { crlWorkflow, revocationWorkflow } from './revocation.ts';
