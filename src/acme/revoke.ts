/**
 * Certificate revocation through ACME (RFC 8555 7.6). Who may revoke: the account that
 * ordered the certificate, an account that holds valid authorizations for all of its
 * names (only for certificates issued through the same directory, and only for
 * unspecified or cessationOfOperation), or anyone holding the certificate's private key
 * (the request is then signed with it, "jwk"). The revocation itself is the revocation
 * workflow's (CRL and OCSP included).
 */
import type { Context } from 'koa';
import { createPublicKey } from 'node:crypto';
import * as accounts from '../db/repos/acme-accounts.ts';
import * as certificates from '../db/repos/certificates.ts';
import type { CertificateRow } from '../db/repos/certificates.ts';
import { describeCertificate, reasonFromCode, REVOCATION_REASONS, type CertSummary, type RevocationReason } from '../pki/index.ts';
import * as orders from '../db/repos/acme-orders.ts';
import type { AcmeDeps, AcmeDirectory, ShellRoute, VerifiedRequest } from './api.ts';
import { jwkThumbprint } from './jws.ts';
import { problem } from './problems.ts';

/** How long the request waits for the revocation workflow (CRL signed, OCSP renewed). */
const REVOCATION_DEADLINE_MS = 30_000;

/**
 * The RFC 5280 reasons a subscriber may give. certificateHold is not a revocation (and ACME
 * has no release); 7 is unassigned; removeFromCRL only exists in delta CRLs; cACompromise
 * and aACompromise are claims about the CA that no subscriber can make (CA/Browser Forum
 * Baseline Requirements 7.2.2 allow none of the three for subscriber certificates).
 */
const SUBSCRIBER_REASONS: ReadonlySet<RevocationReason> = new Set([
  'unspecified',
  'keyCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'privilegeWithdrawn',
]);

/** The reason name for the payload's "reason" (absent = unspecified); badRevocationReason otherwise. */
export function revocationReason(value: unknown): RevocationReason {
  if (value === undefined) return 'unspecified';
  const name = typeof value === 'number' && Number.isInteger(value) ? reasonFromCode(value) : undefined;
  if (!name || !SUBSCRIBER_REASONS.has(name)) {
    const allowed = [...SUBSCRIBER_REASONS].map((r) => `${REVOCATION_REASONS[r]} (${r})`).join(', ');
    throw problem('badRevocationReason', `revocation reason ${JSON.stringify(value)} is not accepted; use one of ${allowed}`);
  }
  return name;
}

/** The certificate of the payload, as this CA issued it (byte for byte). */
async function issuedCertificate(deps: AcmeDeps, value: unknown): Promise<{ row: CertificateRow; summary: CertSummary }> {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw problem('malformed', '"certificate" must be the base64url-encoded DER certificate');
  }
  const der = Buffer.from(value, 'base64url');
  const summary = describeCertificate(der);
  const row = await certificates.get(deps.pool, summary.serialHex);
  if (!row?.certDer || !row.certDer.equals(der)) {
    throw problem('malformed', `certificate ${summary.serialHex} was not issued by this CA`, { status: 404 });
  }
  return { row, summary };
}

/** The certificate's names as ACME identifiers; null if it has names ACME cannot authorize. */
function identifiersOf(summary: CertSummary): Array<{ type: 'dns' | 'ip'; value: string }> | null {
  if (summary.sans.email.length || summary.sans.uri.length) return null;
  return [
    ...summary.sans.dns.map((value) => ({ type: 'dns' as const, value })),
    ...summary.sans.ip.map((value) => ({ type: 'ip' as const, value })),
  ];
}

/** Whether `jwk` is the certificate's own public key (compared by RFC 7638 thumbprint). */
async function isCertificateKey(jwk: NonNullable<VerifiedRequest['jwk']>, summary: CertSummary): Promise<boolean> {
  const certJwk = createPublicKey({ key: Buffer.from(summary.spki), format: 'der', type: 'spki' }).export({ format: 'jwk' });
  return (await jwkThumbprint(certJwk)) === (await jwkThumbprint(jwk));
}

/**
 * Who asks (RFC 8555 7.6): the account that ordered the certificate (its subscriber), an
 * account that holds valid authorizations for all of its names (control), or whoever holds
 * the certificate's key.
 */
type Requester = { kind: 'subscriber' | 'control'; accountId: string } | { kind: 'certificateKey' };

/**
 * Whether an account's authorizations reach the certificate: only certificates issued over
 * ACME through this very directory (alias), hence by the CA that alias issues from. Accounts
 * and their authorizations belong to one directory; a directory with its own rules (EAB,
 * CAA identities, CA) is not to be reached from another, nor EST/CMP/operator certificates,
 * whose issuance proved something else than control of a domain.
 */
async function issuedThroughDirectory(deps: AcmeDeps, dir: AcmeDirectory, row: CertificateRow): Promise<boolean> {
  if (row.protocol !== 'acme') return false;
  return (await orders.getOrder(deps.pool, row.requestId))?.alias === dir.alias.name;
}

async function requesterOf(
  deps: AcmeDeps,
  dir: AcmeDirectory,
  req: VerifiedRequest,
  row: CertificateRow,
  summary: CertSummary,
): Promise<Requester> {
  const account = req.account;
  if (account) {
    // Certificates of ACME orders carry the ordering account as requester.
    if (row.protocol === 'acme' && row.requester === account.id) return { kind: 'subscriber', accountId: account.id };
    if (!(await issuedThroughDirectory(deps, dir, row))) {
      throw problem(
        'unauthorized',
        `certificate ${row.serial} was not issued through this ACME directory: an account's authorizations reach only certificates issued here; its key can revoke it (a JWS signed with it)`,
      );
    }
    const identifiers = identifiersOf(summary);
    if (identifiers !== null && (await accounts.holdsValidAuthorizations(deps.pool, account.id, identifiers)))
      return { kind: 'control', accountId: account.id };
    throw problem('unauthorized', 'this account neither ordered the certificate nor holds valid authorizations for all of its names');
  }
  if (req.jwk && (await isCertificateKey(req.jwk, summary))) return { kind: 'certificateKey' };
  throw problem('unauthorized', 'the request is signed neither by an account nor by the key of the certificate');
}

/**
 * The reason recorded, as Boulder decides it: the subscriber and the key holder may give any
 * subscriber reason; an account that only controls the names may say that the subscriber no
 * longer does (unspecified or cessationOfOperation, recorded as cessationOfOperation), and
 * a key compromise only with the key itself.
 */
function reasonFor(requester: Requester, reason: RevocationReason): RevocationReason {
  if (requester.kind !== 'control') return reason;
  if (reason === 'keyCompromise') {
    throw problem(
      'badRevocationReason',
      'keyCompromise can only be claimed with the certificate\'s key: sign the request with it (a JWS with its "jwk")',
    );
  }
  if (reason !== 'unspecified' && reason !== 'cessationOfOperation') {
    throw problem(
      'badRevocationReason',
      `an account that is not the subscriber may revoke only for unspecified (0) or cessationOfOperation (5), not ${reason} (${REVOCATION_REASONS[reason]})`,
    );
  }
  return 'cessationOfOperation';
}

async function revokeCert(deps: AcmeDeps, ctx: Context, req: VerifiedRequest | undefined, dir: AcmeDirectory): Promise<void> {
  const payload = (req?.payload ?? {}) as Record<string, unknown>;
  const requested = revocationReason(payload.reason);
  const { row, summary } = await issuedCertificate(deps, payload.certificate);
  const who = await requesterOf(deps, dir, req!, row, summary);
  const reason = reasonFor(who, requested);
  const requester = who.kind === 'certificateKey' ? 'certificate-key' : who.accountId;
  if (row.status === 'revoked') {
    throw problem(
      'alreadyRevoked',
      `certificate ${row.serial} was revoked on ${row.revokedAt?.toISOString()} (${row.revocationReason ?? 'unspecified'})`,
    );
  }
  const result = await deps.ra.revoke({ serial: row.serial, action: 'revoke', reason, requester }, REVOCATION_DEADLINE_MS);
  deps.log.info(
    { serial: row.serial, reason, requested, requester, as: who.kind, crlNumber: result.crlNumber },
    'certificate revoked through ACME',
  );
  ctx.status = 200;
  ctx.body = '';
}

/** POST /revoke-cert: signed by an account ("kid") or by the certificate's key ("jwk"). */
export function revokeRoutes(deps: AcmeDeps): ShellRoute[] {
  return [{ method: 'POST', path: '/revoke-cert', auth: 'either', handler: (ctx, req, dir) => revokeCert(deps, ctx, req, dir) }];
}
