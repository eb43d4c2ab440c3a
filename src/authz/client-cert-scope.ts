/**
 * Where a certificate that is not registered as a client may authenticate an enrollment
 * (EST simpleenroll / serverkeygen, CMP ir / cr / p10cr): issue 16 item 2. Each EST label
 * and CMP alias lists the profiles (`clientCertProfiles`, default: its own) and the
 * protocols (`clientCertProtocols`, default est, cmp, operator) whose certificates it
 * accepts: a certificate obtained over ACME for one's own domain never opens an enrollment
 * door unless an operator says so.
 */
import { CaError } from '../core/errors.ts';
import type { IssuingProtocol } from '../config/index.ts';
import type { CertificateWithOrigin } from '../db/repos/certificates.ts';

export interface ClientCertScope {
  /** 'label "iot"', 'alias "(default)"': named in the refusal. */
  place: string;
  profiles: readonly string[];
  protocols: readonly string[];
}

const HOW: Record<IssuingProtocol, string> = { acme: 'over ACME', est: 'over EST', cmp: 'over CMP', operator: 'by an operator' };

/** How a certificate was issued, for messages: "over ACME", "by an operator". */
export function issuedHow(protocol: string): string {
  return HOW[protocol as IssuingProtocol] ?? `over ${protocol}`;
}

/** Throws CaError('forbidden', rule clientCert.origin) unless `cert` is of a protocol and profile `scope` accepts. */
export function certificateMayEnroll(cert: CertificateWithOrigin, scope: ClientCertScope): void {
  const refuse = (why: string): never => {
    throw new CaError('forbidden', `the client certificate ${cert.serial} ${why}`, { rule: 'clientCert.origin' });
  };
  if (!scope.protocols.includes(cert.protocol)) {
    refuse(`was issued ${issuedHow(cert.protocol)}, which ${scope.place} does not accept for enrollment`);
  }
  if (!scope.profiles.includes(cert.profile)) {
    refuse(`is of profile "${cert.profile}", which ${scope.place} does not accept for enrollment (accepted: ${scope.profiles.join(', ')})`);
  }
}
