/**
 * Revocation activities (signing queue: they sign CRLs and OCSP responses with CA keys).
 * Front ends serve what these store; they never sign.
 */
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
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
import type { CaRow } from '../src/db/repos/cas.ts';
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
  const ca = await issuingCa(pool, row.caName);
  await signOcspFor(deps, ca, [row.serial]);
  const crl = await makeCrl(deps, ca, input.requester ?? 'operator');
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

export async function issuingCa(pool: Pool, name: string): Promise<CaRow> {
  const ca = await cas.getCached(pool, name);
  if (!ca) throw new CaError('internal', `CA ${name} is missing`);
  return ca;
}

function signer(ca: CaRow) {
  return { certDer: ca.certDer, keyId: ca.keyId, keyAlg: ca.keyAlg as KeyAlg };
}

/**
 * Signs and stores a new CRL for `ca` listing its revoked and held, unexpired certificates,
 * audited (once per CRL number) as crl.generate by `by`.
 */
async function makeCrl(deps: RevocationDeps, ca: CaRow, by: string): Promise<revocation.CrlRow> {
  const { pool, keys, config } = deps;
  // The CRL number is taken under a per-CA lock so concurrent workers never reuse one.
  return withTransaction(pool, async (tx) => {
    await lockForTransaction(tx, `certflow:crl:${ca.name}`);
    const now = new Date();
    const entries = await revocation.revokedEntries(tx, ca.name, now);
    const crlNumber = await revocation.nextCrlNumber(tx, ca.name);
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + config.revocation.crlValiditySeconds * 1000);
    const der = await signCrl(keys, signer(ca), {
      thisUpdate,
      nextUpdate,
      crlNumber,
      entries: entries.map((e) => ({
        serialHex: e.serial,
        revokedAt: e.revokedAt,
        reason: (e.reason ?? undefined) as RevocationReason | undefined,
      })),
      idpUrl: caUrls(config, ca.name).crl,
    });
    const row = { caName: ca.name, crlNumber, thisUpdate, nextUpdate, entries: entries.length, der: Buffer.from(der) };
    await revocation.insertCrl(tx, row);
    await audit(tx, {
      actor: by,
      action: 'crl.generate',
      object: ca.name,
      details: { crlNumber: crlNumber.toString(), entries: entries.length, nextUpdate: nextUpdate.toISOString() },
    });
    return row;
  });
}

/** Signs OCSP responses (SHA-1 and SHA-256 certIDs) for certificates of `ca`, as their status is now. */
export async function signOcspFor(deps: RevocationDeps, ca: CaRow, serials: string[]): Promise<number> {
  const { pool, keys, config } = deps;
  const issuer = caSummary(ca.certDer);
  const responses: revocation.OcspRow[] = [];
  for (const row of await certificates.getMany(pool, serials)) {
    if (row.status === 'signing') continue;
    const status: OcspCertStatus =
      row.status === 'valid'
        ? { status: 'good' }
        : {
            status: 'revoked',
            revokedAt: row.revokedAt ?? new Date(),
            reason: (row.revocationReason ?? undefined) as RevocationReason | undefined,
          };
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const nextUpdate = new Date(now.getTime() + config.revocation.ocspValiditySeconds * 1000);
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

async function refresh(deps: RevocationDeps, input: RefreshInput): Promise<RefreshResult> {
  const { pool, config } = deps;
  const now = new Date();
  const all = (await cas.list(pool)).filter((c) => c.role === 'issuing' && (!input.caName || c.name === input.caName));
  if (input.caName && !all.length) throw new CaError('notFound', `no issuing CA named "${input.caName}"`);
  const crls: RefreshResult['crls'] = [];
  for (const ca of all) {
    const latest = await revocation.latestCrl(pool, ca.name);
    const due = !latest || now.getTime() - latest.thisUpdate.getTime() >= config.revocation.crlRefreshSeconds * 1000;
    if (input.force || due) {
      const crl = await makeCrl(deps, ca, input.requester ?? 'system');
      crls.push({ caName: ca.name, crlNumber: crl.crlNumber.toString(), entries: crl.entries });
    }
    Context.current().heartbeat();
  }
  const before = new Date(now.getTime() + config.revocation.ocspRefreshSeconds * 1000);
  const due = await revocation.serialsNeedingOcsp(pool, before, now, OCSP_BATCH);
  let ocspSigned = 0;
  const byCa = new Map<string, string[]>();
  for (const { serial, caName } of due) byCa.set(caName, [...(byCa.get(caName) ?? []), serial]);
  for (const [caName, list] of byCa) {
    ocspSigned += await signOcspFor(deps, await issuingCa(pool, caName), list);
    Context.current().heartbeat();
  }
  return { crls, ocspSigned, more: due.length === OCSP_BATCH };
}
