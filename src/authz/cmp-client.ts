/**
 * What a registered CMP client (a shared secret, or a pinned certificate) may do beyond
 * authenticating (issue 22 item 2): use the aliases recorded for it (`cmp-client add
 * --alias`, none = all), and — as a registration authority (`--ra`) — revoke certificates
 * issued through those aliases, never others.
 */
import { CaError } from '../core/errors.ts';
import type { CmpClientRow } from '../db/repos/cmp-clients.ts';
import type { CertificateWithOrigin } from '../db/repos/certificates.ts';
import { issuedHow } from './client-cert-scope.ts';

const shown = (alias: string) => `"${alias || '(default)'}"`;

/** Throws CaError('forbidden') unless the client is enabled and may use `alias` (rule cmp.client.alias). */
export function cmpClientMayUse(client: Pick<CmpClientRow, 'ref' | 'aliases' | 'enabled'>, alias: string): void {
  if (!client.enabled) throw new CaError('forbidden', `CMP client "${client.ref}" is disabled`, { rule: 'cmp.client.disabled' });
  if (client.aliases.length && !client.aliases.includes(alias)) {
    throw new CaError('forbidden', `CMP client "${client.ref}" may not use alias ${shown(alias)}`, {
      rule: 'cmp.client.alias',
    });
  }
}

/**
 * Whether `client` may revoke `cert` as a registration authority: it must be registered with
 * --ra and `cert` issued through CMP at one of its aliases. Throws CaError('forbidden',
 * rule cmp.client.revoke) otherwise. (Revoking one's own certificate — signing the rr with
 * it, or being the client that requested it — is the handler's other way in.)
 */
export function raMayRevoke(client: Pick<CmpClientRow, 'ref' | 'aliases' | 'ra'> | undefined, cert: CertificateWithOrigin): void {
  const own = client?.aliases.length ? client.aliases.map((a) => a || "''").join(', ') : 'all';
  if (client?.ra && cert.protocol === 'cmp' && cert.via !== null && (!client.aliases.length || client.aliases.includes(cert.via))) return;
  const origin = cert.protocol === 'cmp' && cert.via !== null ? `through CMP alias ${shown(cert.via)}` : issuedHow(cert.protocol);
  throw new CaError(
    'forbidden',
    client?.ra
      ? `CMP client "${client.ref}" may revoke only certificates issued through its CMP aliases (${own}); certificate ${cert.serial} was issued ${origin}`
      : `this client may not revoke certificate ${cert.serial} (sign the rr with it, or use the client that requested it)`,
    { rule: 'cmp.client.revoke' },
  );
}
