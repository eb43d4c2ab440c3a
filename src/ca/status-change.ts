/**
 * Which status changes an operator may ask for (revoke, hold, release), checked before a
 * revocation workflow is started so the answer names the reason at once. The workflow's
 * activity enforces the same rules again (certificates.setStatus).
 */
import { CaError } from '../core/errors.ts';

/** Reasons an operator may give to a revocation (hold has its own action). */
export const REVOKE_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
  'aACompromise',
] as const;

export type StatusAction = 'revoke' | 'hold' | 'release';

export function checkStatusChange(
  cert: { serial: string; status: string; revocationReason: string | null; revokedAt: Date | null },
  action: StatusAction,
): void {
  const { serial } = cert;
  const illegal =
    cert.status === 'signing'
      ? `certificate ${serial} is still being signed`
      : cert.status === 'revoked'
        ? `certificate ${serial} is already revoked (${cert.revocationReason ?? 'unspecified'}, ${cert.revokedAt?.toISOString()})`
        : action === 'release' && cert.status !== 'hold'
          ? `certificate ${serial} is ${cert.status}, not on hold`
          : action === 'hold' && cert.status !== 'valid'
            ? `certificate ${serial} is ${cert.status}; only valid certificates can be put on hold`
            : undefined;
  if (illegal) throw new CaError('conflict', illegal, { rule: 'certificate.status' });
}
