import { randomBytes } from 'node:crypto';

/** A random, URL-safe identifier (128 bits) for requests, orders and enrollments. */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** Workflow ids (shared CONTRACT): one workflow per request, derived from its id. */
export const workflowIds = {
  operatorIssue: (requestId: string) => `operator-${requestId}`,
  acmeOrder: (orderId: string) => `acme-order-${orderId}`,
  acmeAuthz: (authzId: string) => `acme-authz-${authzId}`,
  est: (enrollmentId: string) => `est-${enrollmentId}`,
  cmp: (transactionIdHex: string) => `cmp-${transactionIdHex}`,
  revoke: (serialHex: string) => `revoke-${serialHex}`,
};
