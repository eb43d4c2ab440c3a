export { enrollmentWorkflow } from './enrollment.ts';
export type { EnrollmentInput, EnrollmentResult } from './enrollment.ts';
export { revocationWorkflow, crlWorkflow } from './revocation.ts';
