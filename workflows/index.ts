export { enrollmentWorkflow } from './enrollment.ts';
export type { EnrollmentInput, EnrollmentResult } from './enrollment.ts';
