import { randomBytes } from 'node:crypto';

/**
 * A random, URL-safe identifier (128 bits) for requests, orders and enrollments. It never
 * starts with "-": operators pass ids to the CLI (`certflow orders cancel <id>`), where a
 * leading "-" would read as an option.
 */
export function newId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Workflow ids (shared CONTRACT): one workflow per request, derived from its id. */
export const workflowIds = {
  operatorIssue: (requestId: string) => `operator-${requestId}`,
  acmeOrder: (orderId: string) => `acme-order-${orderId}`,
  acmeAuthz: (authzId: string) => `acme-authz-${authzId}`,
  est: (enrollmentId: string) => `est-${enrollmentId}`,
  cmp: (transactionIdHex: string) => `cmp-${transactionIdHex}`,
  revoke: (serialHex: string) => `revoke-${serialHex}`,
  caCreate: (name: string) => `ca-create-${name}`,
  caImport: (name: string) => `ca-import-${name}`,
  caRollover: (name: string) => `ca-rollover-${name}`,
  caRevoke: (name: string) => `ca-revoke-${name}`,
};
