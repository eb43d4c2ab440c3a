/**
 * Which certificates a renewal may renew (issue 22 items 1 and 3): EST simplereenroll
 * renews certificates issued through EST at that label (or the labels it lists in
 * `reenrollLabels`), CMP kur updates certificates issued through CMP at that alias (or the
 * aliases in `kurAliases`, or of the profiles in `kurProfiles`). A renewal takes the
 * approval and profile of the place it comes through; without this rule a certificate that
 * needed approval elsewhere, or one issued over ACME after a domain validation, would be
 * renewed without either.
 */
import { CaError } from '../core/errors.ts';
import type { CertificateWithOrigin } from '../db/repos/certificates.ts';
import { issuedHow } from './client-cert-scope.ts';

export interface RenewalScope {
  protocol: 'est' | 'cmp';
  /** The EST label or CMP alias the renewal comes through. */
  name: string;
  /** Labels / aliases (of `protocol`) whose certificates are renewed here. */
  from: readonly string[];
  /** Certificates of these profiles are renewed here as well, whatever issued them. */
  profiles?: readonly string[];
}

const shown = (name: string) => `"${name || '(default)'}"`;

/** Throws CaError('forbidden', rule renewal.origin) unless `cert` may be renewed through `scope`. */
export function mayRenew(cert: CertificateWithOrigin, scope: RenewalScope): void {
  const kind = scope.protocol === 'est' ? 'EST label' : 'CMP alias';
  const sameProtocol = cert.protocol === scope.protocol && cert.via !== null;
  if (sameProtocol && scope.from.includes(cert.via!)) return;
  if (scope.profiles?.includes(cert.profile)) return;
  const origin = sameProtocol ? `was issued through ${kind} ${shown(cert.via!)}` : `was issued ${issuedHow(cert.protocol)}`;
  const place = `${scope.protocol === 'est' ? 'label' : 'alias'} ${shown(scope.name)}`;
  const verb = scope.protocol === 'est' ? 'renews' : 'updates';
  const list = `${kind}${scope.from.length > 1 ? 's' : ''} ${scope.from.map(shown).join(', ')}`;
  const profiles = scope.profiles?.length ? ` and certificates of profile ${scope.profiles.map((p) => `"${p}"`).join(', ')}` : '';
  throw new CaError('forbidden', `certificate ${cert.serial} ${origin}; ${place} ${verb} certificates of ${list}${profiles} only`, {
    rule: 'renewal.origin',
  });
}
