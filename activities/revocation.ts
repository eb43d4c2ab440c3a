/**
 * Revocation activities (signing queue: they sign CRLs and OCSP responses with CA keys).
 * Front ends serve what these store; they never sign.
 */
import { Context } from '@temporalio/activity';
import { CaError } from '../src/core/errors.ts';
import { caSummary } from '../src/ca/ca-summary.ts';
import { signCrl } from '../src/ca/crl.ts';
import { signOcspResponse } from '../src/ca/ocsp.ts';
import { caUrls } from '../src/ca/urls.ts';
import { ocspCertId, REVOCATION_REASONS, type RevocationReason, type OcspCertStatus } from '../src/pki/index.ts';
import type { KeyAlg } from '../src/keys/types.ts';
import { lockForTransaction } from '../src/db/locks.ts';
import { withTransaction } from '../src/db/pool.ts';
import * as cas from '../src/db/repos/cas.ts';
import type { CaRow, CertifiedKey } from '../src/db/repos/cas.ts';
import type { Queryable } from '../src/db/pool.ts';
import { assertCanSign, cannotSign } from '../src/ca/authority.ts';
import { crlPolicy } from '../src/ca/crl-policy.ts';
import * as certificates from '../src/db/repos/certificates.ts';
import * as revocation from '../src/db/repos/revocation.ts';
import { audit } from '../src/db/repos/audit.ts';
import { toActivityFailure } from './failures.ts';
import type { SigningDeps } from './signing.ts';
import type { RefreshInput, RefreshResult, RevocationActivities, StatusChangeInput, StatusChangeResult } from './types.ts';

type RevocationDeps = SigningDeps;

/** certID hash algorithms we pre-sign for: SHA-1 (what most clients send) and SHA-256. */
const OCSP_HASHES = ['sha1', 'sha256'] as const;
const OCSP_BATCH = 500;

export function createRevocationActivities(deps: RevocationDeps): RevocationActivities {
  return {
    async changeCertificateStatus(input) {
      try {
        return await changeStatus(deps, input);
      } catch (e) {
        throw toActivityFailure(e);
      }
    },
    async refreshRevocationData(input) {
      try {
        return await refresh(deps, input);
      } catch (e) {
        throw toActivityFailure(e);
      }
    },
  };
}

function revokeReason(input: StatusChangeInput): RevocationReason | null {
  if (input.action === 'release') return null;
  if (input.action === 'hold') return 'certificateHold';
  const reason = (input.reason ?? 'unspecified') as RevocationReason;
  if (!(reason in REVOCATION_REASONS) || reason === 'removeFromCRL' || reason === 'certificateHold') {
    const allowed = Object.keys(REVOCATION_REASONS).filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold');
    throw new CaError(
      'malformed',
      `"${input.reason}" is not a revocation reason (use one of ${allowed.join(', ')}; "cert hold" for certificateHold)`,
      {
        rule: 'revocation.reason',
      },
    );
  }
  return reason;
}

async function changeStatus(deps: RevocationDeps, input: StatusChangeInput): Promise<StatusChangeResult> {
  const { pool, log } = deps;
  const reason = revokeReason(input);
  const target = input.action === 'revoke' ? 'revoked' : input.action === 'hold' ? 'hold' : 'valid';
  const row = await certificates.setStatus(pool, input.serial, target, { reason });
  const { workflowExecution, activityId, activityType } = Context.current().info;
  const run = workflowExecution ? `${workflowExecution.workflowId}/${workflowExecution.runId}` : activityType;
  // Keyed by the activity: a retried attempt writes no second entry.
  await audit(pool, {
    actor: input.requester ?? 'operator',
    action: `cert.${input.action}`,
    object: row.serial,
    details: { reason: row.revocationReason },
    requestId: workflowExecution?.workflowId,
    key: `${run}/${activityId}`,
  });
  const ca = await signingKey(pool, row.caName, row.caGeneration);
  await signOcspFor(deps, ca, [row.serial]);
  // With delta CRLs, a revocation or hold is published in a delta; a release (which the
  // delta cannot take back without removeFromCRL) in a new complete CRL.
  const delta = Boolean(crlPolicy(deps.config, ca.crlProfile).delta) && input.action !== 'release';
  const crl = await makeCrl(deps, ca, input.requester ?? 'operator', { delta });
  log.info(
    { serial: row.serial, status: row.status, reason: row.revocationReason, crlNumber: String(crl.crlNumber) },
    'certificate status changed',
  );
  return {
    serial: row.serial,
    status: row.status as StatusChangeResult['status'],
    reason: row.revocationReason,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    caName: row.caName,
    crlNumber: crl.crlNumber.toString(),
  };
}

/** A CA key generation that signs CRLs and OCSP responses, with what the signing rule looks at. */
export interface SigningKey extends CertifiedKey {
  status: CaRow['status'];
  external: boolean;
  revokedAt: Date | null;
  revocationReason: string | null;
  crlProfile: string | null;
}

/** The generation `generation` of CA `name` with the CA's current status (fresh: a revocation changes it). */
export async function signingKey(pool: Queryable, name: string, generation: number): Promise<SigningKey> {
  const [entry, key] = await Promise.all([cas.getEntry(pool, name), cas.getKeyCached(pool, name, generation)]);
  if (!entry || !key) throw new CaError('internal', `CA ${name} (key generation ${generation}) is missing`);
  return {
    ...key,
    status: entry.status,
    external: entry.external,
    revokedAt: entry.revokedAt,
    revocationReason: entry.revocationReason,
    crlProfile: entry.crlProfile,
  };
}

function signer(ca: CertifiedKey) {
  return { certDer: ca.certDer, keyId: ca.keyId, keyAlg: ca.keyAlg as KeyAlg };
}

/**
 * Signs and stores a new CRL of one key generation of a CA, listing its revoked and held,
 * unexpired certificates (and the revoked subordinate CAs it certified), audited (once per
 * CRL number) as crl.generate by `by`. `final`: the last CRL of a CA being revoked, valid
 * until the CA's own notAfter; after it the CA signs nothing. `delta`: a delta CRL (RFC
 * 5280 5.2.4) of what changed since the latest complete CRL (a complete one if there is none).
 */
export async function makeCrl(
  deps: RevocationDeps,
  ca: SigningKey,
  by: string,
  opts: { final?: boolean; delta?: boolean } = {},
): Promise<revocation.CrlRow> {
  const { pool, keys, config } = deps;
  const now = new Date();
  assertCanSign({ ...ca, name: ca.caName }, now, opts);
  const policy = crlPolicy(config, ca.crlProfile);
  const urls = caUrls(config, ca.caName, ca.generation, { delta: Boolean(policy.delta) });
  // The CRL number is taken under a per-CA lock so concurrent workers never reuse one.
  return withTransaction(pool, async (tx) => {
    await lockForTransaction(tx, `certflow:crl:${ca.caName}`);
    const base = opts.delta && policy.delta ? await revocation.latestCrl(tx, ca.caName, ca.generation) : null;
    const entries = await revocation.revokedEntries(tx, ca.caName, now, ca.generation, base ? { since: base.thisUpdate } : {});
    const crlNumber = await revocation.nextCrlNumber(tx, ca.caName);
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = opts.final
      ? new Date(Math.max(thisUpdate.getTime() + 1000, Math.floor(ca.notAfter.getTime() / 1000) * 1000))
      : base
        ? new Date(Math.min(base.nextUpdate.getTime(), thisUpdate.getTime() + 2 * policy.delta!.intervalSeconds * 1000))
        : new Date(thisUpdate.getTime() + policy.validitySeconds * 1000);
    const der = await signCrl(keys, signer(ca), {
      thisUpdate,
      nextUpdate,
      crlNumber,
      entries: entries.map((e) => ({
        serialHex: e.serial,
        revokedAt: e.revokedAt,
        reason: (e.reason ?? undefined) as RevocationReason | undefined,
      })),
      // A delta has its base's scope: the same distribution point (RFC 5280 5.2.4).
      idpUrl: urls.crl,
      ...(base ? { deltaBase: base.crlNumber } : urls.deltaCrl && !opts.final ? { freshestUrl: urls.deltaCrl } : {}),
    });
    const row = {
      caName: ca.caName,
      generation: ca.generation,
      crlNumber,
      thisUpdate,
      nextUpdate,
      entries: entries.length,
      der: Buffer.from(der),
      deltaBase: base?.crlNumber ?? null,
    };
    await revocation.insertCrl(tx, row);
    await audit(tx, {
      actor: by,
      action: 'crl.generate',
      object: ca.caName,
      details: {
        crlNumber: crlNumber.toString(),
        generation: ca.generation,
        entries: entries.length,
        nextUpdate: nextUpdate.toISOString(),
        ...(opts.final ? { final: true } : {}),
        ...(base ? { deltaBase: base.crlNumber.toString() } : {}),
      },
    });
    return row;
  });
}

/**
 * Signs OCSP responses (SHA-1 and SHA-256 certIDs) for certificates of one key generation of
 * a CA, as their status is now. `final`: the last responses of a CA being revoked, valid
 * until the CA's notAfter.
 */
export async function signOcspFor(
  deps: RevocationDeps,
  ca: SigningKey,
  serials: string[],
  opts: { final?: boolean } = {},
): Promise<number> {
  const { pool, keys, config } = deps;
  assertCanSign({ ...ca, name: ca.caName }, new Date(), opts);
  const issuer = caSummary(ca.certDer);
  const responses: revocation.OcspRow[] = [];
  for (const row of await certificates.getMany(pool, serials)) {
    if (row.status === 'signing') continue;
    if (row.caName !== ca.caName || row.caGeneration !== ca.generation) {
      throw new CaError('internal', `certificate ${row.serial} was not signed by ${ca.caName} key generation ${ca.generation}`);
    }
    const status: OcspCertStatus =
      row.status === 'valid'
        ? { status: 'good' }
        : {
            status: 'revoked',
            revokedAt: row.revokedAt ?? new Date(),
            reason: (row.revocationReason ?? undefined) as RevocationReason | undefined,
          };
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const nextUpdate = opts.final
      ? new Date(Math.max(now.getTime() + 1000, Math.floor(ca.notAfter.getTime() / 1000) * 1000))
      : new Date(now.getTime() + config.revocation.ocspValiditySeconds * 1000);
    for (const hash of OCSP_HASHES) {
      const der = await signOcspResponse(keys, signer(ca), {
        producedAt: now,
        responses: [{ certId: ocspCertId(issuer, row.serial, hash), status, thisUpdate: now, nextUpdate }],
      });
      responses.push({ serial: row.serial, hashAlg: hash, certStatus: status.status, thisUpdate: now, nextUpdate, der: Buffer.from(der) });
    }
  }
  await revocation.upsertOcsp(pool, responses);
  return responses.length;
}

/**
 * The key generations whose CRLs certflow keeps fresh: every generation of an active CA
 * whose key certflow holds and whose certificate has not expired (roots included: their
 * CRLs list revoked subordinate CAs).
 */
async function crlSigners(pool: Queryable, caName: string | undefined, now: Date): Promise<SigningKey[]> {
  const entries = new Map((await cas.list(pool)).map((c) => [c.name, c]));
  const out: SigningKey[] = [];
  for (const key of await cas.allCertifiedKeys(pool)) {
    const ca = entries.get(key.caName);
    if (!ca || (caName && ca.name !== caName)) continue;
    const signing: SigningKey = {
      ...key,
      status: ca.status,
      external: ca.external,
      revokedAt: ca.revokedAt,
      revocationReason: ca.revocationReason,
      crlProfile: ca.crlProfile,
    };
    if (!cannotSign({ ...signing, name: ca.name }, now)) out.push(signing);
  }
  return out;
}

async function refresh(deps: RevocationDeps, input: RefreshInput): Promise<RefreshResult> {
  const { pool, config } = deps;
  const now = new Date();
  const signers = await crlSigners(pool, input.caName, now);
  if (input.caName && !signers.length) {
    const ca = await cas.getEntry(pool, input.caName);
    if (!ca) throw new CaError('notFound', `no CA named "${input.caName}"`);
    throw new CaError(
      'conflict',
      `CA "${input.caName}" signs no CRLs (${ca.status === 'revoked' ? 'revoked' : ca.external ? 'its key is outside certflow' : 'expired or pending'})`,
    );
  }
  const crls: RefreshResult['crls'] = [];
  for (const ca of signers) {
    const policy = crlPolicy(config, ca.crlProfile);
    const latest = await revocation.latestCrl(pool, ca.caName, ca.generation);
    const due = !latest || now.getTime() - latest.thisUpdate.getTime() >= policy.refreshSeconds * 1000;
    if (input.force || due) {
      const crl = await makeCrl(deps, ca, input.requester ?? 'system');
      crls.push({ caName: ca.caName, crlNumber: crl.crlNumber.toString(), entries: crl.entries });
    } else if (policy.delta) {
      const delta = await revocation.latestCrl(pool, ca.caName, ca.generation, { delta: true });
      const deltaDue =
        !delta || delta.deltaBase !== latest.crlNumber || now.getTime() - delta.thisUpdate.getTime() >= policy.delta.intervalSeconds * 1000;
      if (deltaDue) {
        const crl = await makeCrl(deps, ca, input.requester ?? 'system', { delta: true });
        crls.push({ caName: ca.caName, crlNumber: crl.crlNumber.toString(), entries: crl.entries });
      }
    }
    Context.current().heartbeat();
  }
  const before = new Date(now.getTime() + config.revocation.ocspRefreshSeconds * 1000);
  const due = await revocation.serialsNeedingOcsp(pool, before, now, OCSP_BATCH);
  let ocspSigned = 0;
  const byKey = new Map<string, { caName: string; generation: number; serials: string[] }>();
  for (const { serial, caName, generation } of due) {
    const k = `${generation}:${caName}`;
    if (!byKey.has(k)) byKey.set(k, { caName, generation, serials: [] });
    byKey.get(k)!.serials.push(serial);
  }
  for (const { caName, generation, serials } of byKey.values()) {
    ocspSigned += await signOcspFor(deps, await signingKey(pool, caName, generation), serials);
    Context.current().heartbeat();
  }
  return { crls, ocspSigned, more: due.length === OCSP_BATCH };
}
