/**
 * The rules about CAs that every surface asks: which CA issues for a request, and whether a
 * CA (one generation of it) may sign now. One home, so that issuance, CRL and OCSP signing,
 * the console and the CLI give the same answer with the same words.
 */
import type { Config } from '../config/index.ts';
import type { CertProfile } from '../config/profiles.ts';
import { CaError } from '../core/errors.ts';

/**
 * The CA that issues for a request: the one the request's front end names (ACME alias, EST
 * label, CMP alias, `cert issue --ca`), else the profile's issuer, else the default issuing CA.
 */
export function issuingCaName(config: Pick<Config, 'ca'>, named: string | undefined, profile: Pick<CertProfile, 'issuer'>): string {
  return named ?? profile.issuer ?? config.ca.issuingName;
}

/** What the signing rule looks at. */
export interface SigningCaState {
  name: string;
  status: 'pending' | 'active' | 'revoked';
  external?: boolean;
  keyBackend: string;
  notAfter: Date | null;
  revokedAt?: Date | null;
  revocationReason?: string | null;
}

/**
 * Why CA `ca` may not sign at `now`, or undefined when it may. A revoked CA never signs
 * again, except the last CRL and OCSP responses of its own revocation (`final`); a CA past
 * its notAfter never signs; certflow cannot sign for a CA whose key it does not hold.
 */
export function cannotSign(ca: SigningCaState, now: Date, opts: { final?: boolean } = {}): CaError | undefined {
  if (ca.status === 'pending') {
    return new CaError('config', `CA "${ca.name}" has no certificate yet (import it with \`certflow ca import-cert --name ${ca.name}\`)`, {
      rule: 'ca.pending',
    });
  }
  if (ca.status === 'revoked' && !opts.final) {
    return new CaError(
      'config',
      `CA "${ca.name}" was revoked${ca.revokedAt ? ` on ${ca.revokedAt.toISOString()}` : ''} (${ca.revocationReason ?? 'unspecified'}); it signs nothing any more`,
      { rule: 'ca.revoked' },
    );
  }
  if (ca.external || ca.keyBackend === 'none') {
    return new CaError('config', `certflow holds no key of CA "${ca.name}" (a CA outside certflow)`, { rule: 'ca.external' });
  }
  if (!ca.notAfter || ca.notAfter.getTime() <= now.getTime()) {
    return new CaError('config', `CA "${ca.name}" expired on ${ca.notAfter?.toISOString()}; it signs nothing any more`, {
      rule: 'ca.expired',
    });
  }
  return undefined;
}

/** cannotSign() as an assertion. */
export function assertCanSign(ca: SigningCaState, now: Date, opts: { final?: boolean } = {}): void {
  const why = cannotSign(ca, now, opts);
  if (why) throw why;
}
