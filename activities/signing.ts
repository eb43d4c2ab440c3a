/**
 * Signing activities: the only code that touches CA keys. They run on the
 * `certflow-signing` task queue, polled only by workers that hold the keys.
 *
 * Exactly one certificate per request: the TBSCertificate (serial included) is persisted
 * for the request before it is signed. A retried activity finds that row and either
 * returns the stored certificate or signs the very same TBS again; it never draws a
 * second serial for a request.
 *
 * OCSP responses are not signed here: the transaction that stores a certificate queues it
 * (table ocsp_queue) and the worker's background signer (ocsp-signer.ts) signs its
 * responses within moments, off the request's path.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Pool } from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { getProfile, type Config } from '../src/config/index.ts';
import { asServerFault, CaError } from '../src/core/errors.ts';
import type { Logger } from '../src/core/logger.ts';
import { caUrls } from '../src/ca/urls.ts';
import { assertCanSign, issuingCaName } from '../src/ca/authority.ts';
import { crlPolicy } from '../src/ca/crl-policy.ts';
import { prepareCertificate, signCertificate } from '../src/ca/issuer.ts';
import { checkOrderNames, parseCsr, pemEncode, randomSerial, sanList } from '../src/pki/index.ts';
import { parseCrmfRequest } from '../src/pki/cmp/index.ts';
import { defaultSignAlg, type KeyAlg, type KeyStore } from '../src/keys/types.ts';
import * as cas from '../src/db/repos/cas.ts';
import * as certificates from '../src/db/repos/certificates.ts';
import type { CertificateRow } from '../src/db/repos/certificates.ts';
import { audit, requesterActor } from '../src/db/repos/audit.ts';
import type { IssueInput, IssuedCertificate, RequestProjection, RequestState, SigningActivities } from './types.ts';
import { auditTransition, project, projectState } from './storage.ts';
import { toActivityFailure } from './failures.ts';
import { heartbeatWhileRunning } from './heartbeat.ts';
import * as acmeOrders from '../src/db/repos/acme-orders.ts';
import { withTransaction, type Queryable } from '../src/db/pool.ts';
import * as ocspQueue from '../src/db/repos/ocsp-queue.ts';

/** What the activities that use CA keys need (signing queue). */
export interface SigningDeps {
  config: Config;
  pool: Pool;
  keys: KeyStore;
  log: Logger;
}

export function createSigningActivities(deps: SigningDeps): SigningActivities {
  return {
    async issueCertificate(input: IssueInput): Promise<IssuedCertificate> {
      // A slow token is no failure: heartbeats keep Temporal from starting a second attempt.
      const stopHeartbeats = heartbeatWhileRunning();
      try {
        return await issue(deps, input);
      } catch (e) {
        const failure = toActivityFailure(e);
        if (input.acme && !failure.nonRetryable) await recordOrderFault(deps, input.acme.orderId, `${failure.type}: ${failure.message}`);
        throw failure;
      } finally {
        stopHeartbeats();
      }
    },
  };
}

/**
 * An ACME order's signing fault, which Temporal retries within the activity: the order stays
 * processing, and operators see why it does not move (src/db/repos/stuck.ts). Best effort
 * and brief: the fault may be the database itself.
 */
async function recordOrderFault(deps: SigningDeps, orderId: string, fault: string): Promise<void> {
  const recorded = acmeOrders.recordSigningFault(deps.pool, orderId, fault).catch((e) => {
    deps.log.warn({ orderId, err: e }, 'could not record the signing fault of the order');
  });
  await Promise.race([recorded, sleep(2000, undefined, { ref: false })]);
}

async function issue(deps: SigningDeps, input: IssueInput): Promise<IssuedCertificate> {
  const { pool, keys, log } = deps;
  let row = await certificates.getByRequest(pool, input.requestId);
  if (row?.certDer) {
    // input.project: the final projection was committed with the certificate.
    log.info({ requestId: input.requestId, serial: row.serial }, 'certificate already issued for this request');
    return toResult(deps, row);
  }
  row ??= await persistTbs(deps, input);
  // The key of the CA generation the TBS was built for (its issuer name and AKI).
  const key = await cas.getKeyCached(pool, row.caName, row.caGeneration);
  if (!key) throw new CaError('config', `CA ${row.caName} of certificate ${row.serial} is missing`, { rule: 'ca.unknown' });

  const stored = row;
  // One commit: the certificate, its audit entry, its OCSP queue entry and (ACME) the order.
  // The signature is made inside it, with the CA's row share-locked: a revocation of the
  // CA either came first (nothing is signed) or waits for this certificate.
  const issued = await withTransaction(pool, async (tx) => {
    const ca = await cas.lockForSigning(tx, stored.caName);
    if (!ca) throw new CaError('config', `CA ${stored.caName} of certificate ${stored.serial} is missing`, { rule: 'ca.unknown' });
    assertCanSign({ ...ca, keyBackend: key.keyBackend, notAfter: key.notAfter }, new Date());
    const certDer = await signCertificate(
      keys,
      { keyId: key.keyId, keyAlg: key.keyAlg as KeyAlg },
      stored.tbsDer,
      defaultSignAlg(key.keyAlg as KeyAlg),
    );
    const cert = await certificates.markIssued(tx, stored.serial, certDer);
    if (input.acme) await acmeOrders.markOrderValid(tx, input.acme.orderId, cert.serial);
    await ocspQueue.enqueue(tx, cert.serial);
    const final = input.project && projection(input, input.project.final, cert.serial);
    if (final) await projectState(tx, final);
    // Last before the commit: the audit chain's head stays locked until then.
    await audit(tx, {
      actor: requesterActor(input.protocol, input.requester),
      action: 'cert.issue',
      object: cert.serial,
      details: { requestId: input.requestId, protocol: input.protocol, profile: cert.profile, ca: cert.caName, subject: cert.subject },
      requestId: input.requestId,
      // A zombie attempt that finds the certificate stored writes no second entry.
      key: `cert.issue:${cert.serial}`,
    });
    // A CMP certificate confirmed implicitly: its confirmation is audited after its issuance.
    if (final) await auditTransition(tx, final);
    return cert;
  });
  log.info({ requestId: input.requestId, serial: issued.serial, profile: issued.profile }, 'certificate issued');
  return toResult(deps, issued);
}

/** Applies the profile, draws the serial and stores the TBS for the request (first attempt only). */
async function persistTbs(deps: SigningDeps, input: IssueInput): Promise<CertificateRow> {
  const { config, pool } = deps;
  if (input.project) await project(pool, projection(input, 'signing'));
  const csrDer = Buffer.from(input.csr, 'base64');
  const csr = input.requestFormat === 'crmf' ? parseCrmfRequest(csrDer) : parseCsr(csrDer);
  // The front ends check what a requester names; a profile or CA missing here is the
  // server's configuration (an EST label, an ACME alias), not the requester's mistake.
  let profile;
  try {
    profile = getProfile(config, input.profile);
  } catch (e) {
    throw asServerFault(e, 'the configuration names a profile that does not exist');
  }
  const caName = issuingCaName(config, input.caName, profile);
  // Fresh, not cached: the active generation moves at a rollover, the status at a revocation.
  const ca = await cas.get(pool, caName);
  if (!ca || ca.role !== 'issuing') throw new CaError('config', `unknown issuing CA "${caName}"`, { rule: 'ca.unknown' });
  assertCanSign(ca, new Date());
  const ancestors = (await cas.issuingChainCached(pool, ca.name, { generation: ca.generation, includeRoot: true })).slice(1);

  for (let attempt = 1; ; attempt++) {
    const prepared = prepareCertificate({
      csr,
      profile,
      ca: { name: ca.name, certDer: ca.certDer, keyId: ca.keyId, keyAlg: ca.keyAlg as KeyAlg },
      serial: randomSerial(),
      now: new Date(),
      urls: caUrls(config, ca.name, ca.generation, { delta: Boolean(crlPolicy(config, ca.crlProfile).delta) }),
      ancestors,
    });
    const pending = {
      serial: prepared.serialHex,
      requestId: input.requestId,
      protocol: input.protocol,
      caName: ca.name,
      caGeneration: ca.generation,
      profile: profile.name,
      subject: prepared.subject,
      sans: sanList(prepared.sans),
      notBefore: prepared.notBefore,
      notAfter: prepared.notAfter,
      tbsDer: prepared.tbsDer,
      csrDer,
      requester: input.requester ?? null,
      replaces: input.replaces ?? null,
    };
    try {
      if (!input.acme) return await certificates.insertPending(pool, pending);
      const { orderId, authzIds } = input.acme;
      // The order's authorizations are checked in the transaction that stores the TBS:
      // a deactivation committed first stops the issuance; one that comes later waits.
      return await withTransaction(pool, async (tx) => {
        const { authorized, limitKeys } = await acmeOrders.beginIssuance(tx, orderId, authzIds);
        // The CA signs only what the RA authorized: the names of the TBSCertificate as the
        // profile built them, against the authorizations (not the CSR). Refused, nothing is stored.
        checkOrderNames({ subject: prepared.tbs.subject, sans: prepared.tbs.decoded.sans }, authorized, 'certificate');
        await enforceCertificateLimit(tx, config.acme.rateLimits.certificatesPerDomainPerWeek, limitKeys);
        return certificates.insertPending(tx, pending);
      });
    } catch (e) {
      // A 160-bit serial collision is practically impossible, but cheap to handle.
      if (certificates.isSerialCollision(e) && attempt < 5) continue;
      throw e;
    }
  }
}

/** The request's projection in `state` (IssueInput.project). */
function projection(input: IssueInput, state: RequestState, serial?: string): RequestProjection {
  const p = input.project!;
  return {
    id: input.requestId,
    protocol: input.protocol,
    workflowId: p.workflowId,
    profile: input.profile,
    state,
    csr: input.csr,
    requester: input.requester,
    serial,
    label: p.label,
    kind: p.kind,
    requestHash: p.requestHash,
    replaces: input.replaces,
  };
}

/**
 * The per-domain certificate limit, exact: counted under the domains' locks in the
 * transaction that stores the certificate, so that concurrent finalizes never issue more
 * (new orders are refused early by the RA, src/ra/rate-limits.ts).
 */
async function enforceCertificateLimit(tx: Queryable, limit: number, limitKeys: string[]): Promise<void> {
  const WEEK_MS = 7 * 86_400_000;
  const full = await acmeOrders.domainAtCertificateLimit(tx, limitKeys, limit, new Date(Date.now() - WEEK_MS));
  if (!full) return;
  throw ApplicationFailure.create({
    type: 'rateLimited',
    message: `too many certificates for ${full.key}: at most ${limit} per week, and that many were issued; order again after ${new Date(full.oldest.getTime() + WEEK_MS).toISOString()}`,
    nonRetryable: true,
  });
}

async function toResult(deps: SigningDeps, row: CertificateRow): Promise<IssuedCertificate> {
  if (!row.certDer) throw new CaError('internal', `certificate ${row.serial} has no DER`);
  return {
    serial: row.serial,
    caName: row.caName,
    caGeneration: row.caGeneration,
    certPem: pemEncode('CERTIFICATE', row.certDer),
    chainPem: (await cas.issuingChainCached(deps.pool, row.caName, { generation: row.caGeneration }))
      .map((d) => pemEncode('CERTIFICATE', d))
      .join(''),
    notBefore: row.notBefore.toISOString(),
    notAfter: row.notAfter.toISOString(),
  };
}
