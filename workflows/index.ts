export { enrollmentWorkflow, decideUpdate } from './enrollment.ts';
export type { EnrollmentInput, EnrollmentResult, Decision } from './enrollment.ts';
export { revocationWorkflow, crlWorkflow } from './revocation.ts';
