/**
 * CA lifecycle activities (signing queue: they make keys and sign with CA keys). Each step
 * is idempotent, so a worker killed in the middle of one changes nothing: the retried
 * attempt finds the name it reserved, the key it made (a key store key under the CA's key
 * id), the TBS it stored (one serial per CA certificate, ever) and the certificate, and
 * writes no second audit entry.
 */
import { Context } from '@temporalio/activity';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { assertCanSign, cannotSign } from '../src/ca/authority.ts';
import { caSummary } from '../src/ca/ca-summary.ts';
import { certificatePath, isSelfSigned, type ChainCert } from '../src/ca/chain-check.ts';
import { linkTbs, rootTbs, signCaTbs, subjectDer, subordinatePathLen, subordinateTbs } from '../src/ca/hierarchy.ts';
import { caUrls } from '../src/ca/urls.ts';
import { writeTrustFiles } from '../src/ca/trust-files.ts';
import { CaError, errorMessage } from '../src/core/errors.ts';
import { withTransaction } from '../src/db/pool.ts';
import * as cas from '../src/db/repos/cas.ts';
import * as certs from '../src/db/repos/certificates.ts';
import type { CaKeyRow } from '../src/db/repos/cas.ts';
import { audit } from '../src/db/repos/audit.ts';
import { ARCHIVE_KEY_ID } from '../src/core/key-archive.ts';
import { keyLabelOf } from '../src/keys/pkcs11-uri.ts';
import { defaultSignAlg, isKeyAlg, type KeyAlg } from '../src/keys/types.ts';
import {
  assembleCsr,
  csrInfo,
  describeCertificate,
  describePublicKey,
  parseCsr,
  parseNameConstraint,
  pemDecodeAll,
  pemEncode,
  REVOCATION_REASONS,
  verifySignedWith,
  type NameConstraints,
} from '../src/pki/index.ts';
import { AUDIT_KEY_ID } from './audit.ts';
import { toActivityFailure } from './failures.ts';
import { heartbeatWhileRunning } from './heartbeat.ts';
import { makeCrl, signingKey, signOcspFor } from './revocation.ts';
import type { SigningDeps } from './signing.ts';
import type {
  CaActivities,
  CaCreateInput,
  CaImportInput,
  CaKeyStep,
  CaOperationResult,
  CaRevokeInput,
  CaRolloverInput,
  CaWatchActivities,
  NameConstraintsInput,
} from './types.ts';
import { caExpiryReport } from '../src/ra/ca-expiry.ts';

/** CA names: used in URLs, file names and key ids. */
const CA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$/;
const SERVICE_KEY_IDS = new Set([AUDIT_KEY_ID, ARCHIVE_KEY_ID]);
const MAX_VALIDITY_DAYS = 100 * 365;

/** A CA operation's parameter mistake: ends the operation at once (non-retryable), audited as failed. */
function refuse(message: string, rule: string): CaError {
  return new CaError('conflict', message, { rule });
}

function asRefusal(e: unknown): never {
  // Rules about CAs checked while preparing an operation are the operator's mistake here.
  if (e instanceof CaError && e.kind === 'config' && e.rule?.startsWith('ca.')) throw refuse(e.message, e.rule);
  throw e;
}

function workflowId(): string {
  return Context.current().info.workflowExecution?.workflowId ?? Context.current().info.activityId;
}

function checkCaName(name: string): void {
  if (!CA_NAME.test(name)) {
    throw new CaError('malformed', `CA name "${name}" must be 1-48 letters, digits, ".", "_" or "-", starting with a letter or digit`, {
      rule: 'ca.name',
    });
  }
  if (SERVICE_KEY_IDS.has(name)) throw refuse(`"${name}" is the id of certflow's own key; choose another CA name`, 'ca.name');
}

function keyAlgOf(config: SigningDeps['config'], alg: string | undefined): KeyAlg {
  const a = alg ?? config.ca.keyAlg;
  if (!isKeyAlg(a))
    throw new CaError('malformed', `key algorithm "${a}" is not one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096`, {
      rule: 'ca.keyAlg',
    });
  return a;
}

function validityOf(days: number | undefined, dflt: number): number {
  const d = days ?? dflt;
  if (!Number.isInteger(d) || d < 1 || d > MAX_VALIDITY_DAYS) {
    throw new CaError('malformed', `validity of ${d} days: use a whole number of days from 1 to ${MAX_VALIDITY_DAYS}`, {
      rule: 'ca.validity',
    });
  }
  return d;
}

function subjectOf(text: string): string {
  try {
    subjectDer(text);
  } catch (e) {
    throw new CaError('malformed', `subject "${text}": ${errorMessage(e)}`, { rule: 'ca.subject' });
  }
  return text;
}

function nameConstraintsOf(input: NameConstraintsInput | undefined): NameConstraints | undefined {
  if (!input || (!input.permitted.length && !input.excluded.length)) return undefined;
  return { permitted: input.permitted.map((c) => parseNameConstraint(c)), excluded: input.excluded.map((c) => parseNameConstraint(c)) };
}

/** Key ids: the first generation's is the CA's name (as the bootstrap's), later ones "<name>.g<n>". */
function keyIdOf(name: string, generation: number): string {
  return generation === 1 ? name : `${name}.g${generation}`;
}

/** Makes the key of a generation, or finds the one an earlier attempt made (never another CA's). */
async function ensureKey(deps: SigningDeps, caName: string, generation: number, keyId: string, alg: KeyAlg) {
  const { keys, pool } = deps;
  const owner = await cas.keyInUse(pool, keys.backend, keyId);
  if (owner && (owner.caName !== caName || owner.generation !== generation)) {
    throw refuse(`the key "${keyId}" belongs to CA "${owner.caName}" (generation ${owner.generation})`, 'ca.key');
  }
  const existing = await keys.get(keyId);
  if (existing && existing.alg !== alg) {
    throw refuse(`a key "${keyId}" exists in the ${keys.backend} key store with algorithm ${existing.alg}, not ${alg}`, 'ca.key');
  }
  return existing ?? (await keys.generate(keyId, alg));
}

function resultOf(
  ca: { name: string; parent: string | null; status: 'pending' | 'active' | 'revoked' },
  key: CaKeyRow,
  message: string,
): CaOperationResult {
  return {
    name: ca.name,
    generation: key.generation,
    status: ca.status,
    subject: key.subject,
    parent: ca.parent,
    ...(key.certDer
      ? {
          serial: key.serial!,
          notBefore: key.notBefore!.toISOString(),
          notAfter: key.notAfter!.toISOString(),
          certPem: pemEncode('CERTIFICATE', key.certDer),
        }
      : {}),
    ...(key.csrDer && !key.certDer ? { csrPem: pemEncode('CERTIFICATE REQUEST', key.csrDer) } : {}),
    activateAt: key.activateAt.toISOString(),
    ...(key.newWithOld ? { newWithOldPem: pemEncode('CERTIFICATE', key.newWithOld) } : {}),
    ...(key.oldWithNew ? { oldWithNewPem: pemEncode('CERTIFICATE', key.oldWithNew) } : {}),
    message,
  };
}

async function entryOf(deps: SigningDeps, name: string) {
  const entry = await cas.getEntry(deps.pool, name);
  if (!entry) throw new CaError('notFound', `no CA named "${name}" (see \`certflow ca list\`)`, { rule: 'ca.unknown' });
  return entry;
}

// ---- create -----------------------------------------------------------------------------

async function prepareCreate(deps: SigningDeps, input: CaCreateInput): Promise<CaKeyStep> {
  const { config, pool, keys } = deps;
  checkCaName(input.name);
  const modes = [input.parent !== undefined, Boolean(input.root), Boolean(input.external)].filter(Boolean).length;
  if (modes !== 1)
    throw new CaError('malformed', 'name exactly one of: a parent CA (--parent), --root, or --external', { rule: 'ca.create.mode' });
  const alg = keyAlgOf(config, input.keyAlg);
  const subject = subjectOf(input.subject ?? `CN=${input.name}`);
  validityOf(input.validityDays, input.root ? config.ca.rootValidityDays : config.ca.issuingValidityDays);
  nameConstraintsOf(input.nameConstraints);
  if (input.pathLen !== undefined && (!Number.isInteger(input.pathLen) || input.pathLen < 0 || input.pathLen > 16)) {
    throw new CaError('malformed', `path length ${input.pathLen}: use a whole number from 0 to 16`, { rule: 'ca.pathLen' });
  }
  if (input.parent !== undefined) {
    const parent = await cas.get(pool, input.parent);
    if (!parent)
      throw new CaError('notFound', `no CA named "${input.parent}" to be the parent (see \`certflow ca list\`)`, { rule: 'ca.unknown' });
    const why = cannotSign(parent, new Date());
    if (why) throw refuse(`CA "${parent.name}" cannot sign a subordinate CA: ${why.message}`, why.rule ?? 'ca.parent');
    const summary = caSummary(parent.certDer);
    if (summary.keyUsage.length && !summary.keyUsage.includes('keyCertSign')) {
      throw refuse(`CA "${parent.name}"'s certificate does not allow keyCertSign`, 'ca.parent');
    }
    try {
      subordinatePathLen({ name: parent.name, pathLen: summary.pathLen }, input.pathLen);
    } catch (e) {
      asRefusal(e);
    }
  }
  if (input.crlProfile && !config.crlProfiles.has(input.crlProfile)) {
    throw new CaError('notFound', `no CRL profile "${input.crlProfile}" (see \`certflow profiles list --kind crl\`)`, {
      rule: 'crlProfile.unknown',
    });
  }
  const reserved = await cas.reserve(pool, {
    name: input.name,
    role: input.root ? 'root' : 'issuing',
    parent: input.parent ?? null,
    workflowId: workflowId(),
    crlProfile: input.crlProfile,
  });
  if (!reserved) throw refuse(`a CA named "${input.name}" exists already`, 'ca.exists');
  const keyId = keyIdOf(input.name, 1);
  const key = await ensureKey(deps, input.name, 1, keyId, alg);
  await cas.insertKey(pool, { caName: input.name, generation: 1, keyId, keyAlg: alg, keyBackend: keys.backend, spki: key.spki, subject });
  return { name: input.name, generation: 1, requester: input.requester };
}

/**
 * Certifies a generation: a root signs itself, a subordinate is signed by its parent's
 * active generation. The TBS is stored before signing, so a retry signs the same one.
 */
async function certify(
  deps: SigningDeps,
  input: CaKeyStep & { create?: CaCreateInput; rollover?: CaRolloverInput },
): Promise<CaOperationResult> {
  const { config, pool, keys, log } = deps;
  const entry = await entryOf(deps, input.name);
  let key = (await cas.getKey(pool, input.name, input.generation))!;
  if (key.certDer) return resultOf(entry, key, `CA "${entry.name}" key generation ${key.generation} is certified`);
  const now = new Date();
  const previous = input.generation > 1 ? await cas.getKey(pool, input.name, input.generation - 1) : null;
  const previousCert = previous?.certDer ? caSummary(previous.certDer) : undefined;
  const alg = key.keyAlg as KeyAlg;

  // Who signs: the key itself (a root), or the parent's generation recorded with the TBS.
  let parentGeneration = key.parentGeneration;
  if (!key.tbsDer) {
    const validity = validityOf(
      input.create?.validityDays ?? input.rollover?.validityDays,
      entry.role === 'root' ? config.ca.rootValidityDays : config.ca.issuingValidityDays,
    );
    let t;
    if (entry.role === 'root') {
      t = rootTbs({ spki: key.spki!, keyAlg: alg, subject: key.subject, validityDays: validity, now });
      parentGeneration = null;
    } else {
      const parent = entry.parent ? await cas.get(pool, entry.parent) : null;
      if (!parent) throw refuse(`the parent of CA "${entry.name}" is missing`, 'ca.parent');
      try {
        assertCanSign(parent, now);
        t = subordinateTbs({
          issuer: { name: parent.name, certDer: parent.certDer, keyAlg: parent.keyAlg as KeyAlg },
          spki: key.spki!,
          subject: key.subject,
          validityDays: validity,
          now,
          // A rollover keeps the CA's constraints; a creation takes the requested ones.
          pathLen: input.create ? input.create.pathLen : previousCert?.pathLen,
          nameConstraints: input.create ? nameConstraintsOf(input.create.nameConstraints) : previousCert?.nameConstraints,
          urls: caUrls(config, parent.name, parent.generation),
        });
      } catch (e) {
        asRefusal(e);
      }
      parentGeneration = parent.generation;
    }
    key = await cas.setKeyTbs(pool, input.name, input.generation, t!.tbs, parentGeneration);
    parentGeneration = key.parentGeneration;
  }
  let signer: { keyId: string; keyAlg: KeyAlg } = { keyId: key.keyId, keyAlg: alg };
  if (parentGeneration !== null) {
    const parentKey = await signingKey(pool, entry.parent!, parentGeneration);
    assertCanSign({ ...parentKey, name: entry.parent! }, now);
    signer = { keyId: parentKey.keyId, keyAlg: parentKey.keyAlg as KeyAlg };
  }
  const certDer = await signCaTbs(keys, signer, { tbs: key.tbsDer!, sigAlg: defaultSignAlg(signer.keyAlg) });
  const d = describeCertificate(certDer);

  // A root's new generation: the link certificates between the old and the new key.
  let links: { newWithOld: Uint8Array; oldWithNew: Uint8Array } | undefined;
  if (entry.role === 'root' && previous?.certDer && previous.keyBackend !== 'none') {
    const expires = previous.notAfter!;
    const newWithOld = await signCaTbs(
      keys,
      { keyId: previous.keyId, keyAlg: previous.keyAlg as KeyAlg },
      linkTbs({
        subjectCertDer: certDer,
        issuer: { name: entry.name, certDer: previous.certDer, keyAlg: previous.keyAlg as KeyAlg },
        notAfter: expires,
        now,
        urls: caUrls(config, entry.name, previous.generation),
      }),
    );
    const oldWithNew = await signCaTbs(
      keys,
      { keyId: key.keyId, keyAlg: alg },
      linkTbs({
        subjectCertDer: previous.certDer,
        issuer: { name: entry.name, certDer, keyAlg: alg },
        notAfter: expires,
        now,
        urls: caUrls(config, entry.name, key.generation),
      }),
    );
    links = { newWithOld, oldWithNew };
  }
  const stored = await withTransaction(pool, async (tx) => {
    const first = await cas.setKeyCertificate(tx, input.name, input.generation, {
      certDer,
      serial: d.serialHex,
      subject: d.subject,
      notBefore: d.notBefore,
      notAfter: d.notAfter,
      newWithOld: links?.newWithOld,
      oldWithNew: links?.oldWithNew,
    });
    if (first) {
      const rollover = input.generation > 1;
      await audit(tx, {
        actor: input.requester,
        action: rollover ? 'ca.rollover' : 'ca.create',
        object: input.name,
        details: {
          generation: input.generation,
          parent: entry.parent,
          subject: d.subject,
          serial: d.serialHex,
          notAfter: d.notAfter.toISOString(),
          keyAlg: key.keyAlg,
          keyBackend: key.keyBackend,
          pathLen: d.pathLen ?? null,
          nameConstraints: d.nameConstraints ?? null,
          activateAt: key.activateAt.toISOString(),
          ...(links ? { linkCertificates: true } : {}),
        },
        requestId: workflowId(),
        key: `ca.certify:${input.name}:${input.generation}`,
      });
    }
    return first;
  });
  if (stored) log.info({ ca: input.name, generation: input.generation, serial: d.serialHex }, 'CA certified');
  const after = (await cas.getKey(pool, input.name, input.generation))!;
  // Its first CRL at once: relying parties find the CRL its certificates name.
  await makeCrl(deps, await signingKey(pool, input.name, input.generation), input.requester).catch((e: unknown) =>
    log.warn(
      { ca: input.name, err: errorMessage(e) },
      'the first CRL of the new CA key could not be signed yet; the next refresh makes it',
    ),
  );
  return resultOf(
    await entryOf(deps, input.name),
    after,
    `CA "${input.name}" ${input.generation > 1 ? `key generation ${input.generation}` : ''} certified: ${d.subject}, valid until ${d.notAfter.toISOString()}`.replace(
      '  ',
      ' ',
    ),
  );
}

// ---- external CAs -----------------------------------------------------------------------

async function makeCsr(deps: SigningDeps, input: CaKeyStep & { subject?: string }): Promise<CaOperationResult> {
  const { pool, keys } = deps;
  const entry = await entryOf(deps, input.name);
  let key = (await cas.getKey(pool, input.name, input.generation))!;
  if (!key.csrDer) {
    const info = csrInfo(key.subject, key.spki!);
    const sigAlg = defaultSignAlg(key.keyAlg as KeyAlg);
    const der = assembleCsr(info, sigAlg, await keys.sign(key.keyId, sigAlg, info));
    parseCsr(der); // verifies the self-signature: the key store signed with the key of the request
    key = await cas.setKeyCsr(pool, input.name, input.generation, der);
    await audit(pool, {
      actor: input.requester,
      action: input.generation > 1 ? 'ca.rollover' : 'ca.create',
      object: input.name,
      details: { generation: input.generation, external: true, subject: key.subject, keyAlg: key.keyAlg, keyBackend: key.keyBackend },
      requestId: workflowId(),
      key: `ca.csr:${input.name}:${input.generation}`,
    });
  }
  return resultOf(
    entry,
    key,
    `CA "${input.name}" is pending: have the request signed by the outside CA, then \`certflow ca import-cert --name ${input.name} --cert <certificate>\``,
  );
}

/** The configured outside trust anchors (ca.trustAnchors), DER. */
async function trustAnchors(deps: SigningDeps): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const file of deps.config.ca.trustAnchors) {
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (e) {
      throw new CaError('config', `trust anchor file ${file} (ca.trustAnchors) cannot be read: ${errorMessage(e)}`, {
        rule: 'ca.trustAnchors',
      });
    }
    out.push(
      ...pemDecodeAll(pem)
        .filter((b) => b.label === 'CERTIFICATE')
        .map((b) => b.der),
    );
  }
  return out;
}

/** The key algorithm of a certificate's public key in certflow's words ("ec-p256", "rsa-4096"; else the key kind). */
function keyAlgName(spki: Uint8Array): string {
  const k = describePublicKey(spki, 'malformed');
  const name = k.type === 'ec' ? `ec-${k.curve.toLowerCase().replace('-', '')}` : k.type === 'rsa' ? `rsa-${k.bits}` : k.type;
  return name;
}

/** A name for an outside CA that certflow records for chains (its CN, made unique). */
async function externalName(deps: SigningDeps, c: ChainCert, taken: Set<string>): Promise<string> {
  const cn = /(?:^|,)CN=([^,]+)/.exec(c.summary.subject)?.[1] ?? 'external';
  const base =
    cn
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+|-+$/g, '')
      .slice(0, 40) || 'external';
  for (let i = 1; ; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    if (!taken.has(name) && !(await cas.getEntry(deps.pool, name))) return name;
  }
}

function pemCerts(pem: string | undefined, what: string): Uint8Array[] {
  if (!pem) return [];
  const blocks = pemDecodeAll(pem);
  if (!blocks.length || blocks.some((b) => b.label !== 'CERTIFICATE')) {
    throw new CaError('malformed', `${what} must hold PEM certificates (-----BEGIN CERTIFICATE-----)`, { rule: 'ca.import.pem' });
  }
  return blocks.map((b) => b.der);
}

async function importCa(deps: SigningDeps, input: CaImportInput): Promise<CaOperationResult> {
  const { pool, keys, config, log } = deps;
  checkCaName(input.name);
  const [certDer, ...extra] = pemCerts(input.certPem, 'the certificate');
  const chain = [...extra, ...pemCerts(input.chainPem, 'the chain')];
  const cert = { der: certDer!, summary: describeCertificate(certDer!) };
  const now = new Date();
  const entry = await cas.getEntry(pool, input.name);
  const generations = entry ? await cas.keys(pool, input.name) : [];
  const same = generations.find((g) => g.certDer && caSummary(g.certDer).fingerprintSha256 === cert.summary.fingerprintSha256);
  // An outside CA certflow recorded for chains gets its key: it becomes a CA of certflow.
  const adopt = Boolean(input.key && entry?.external && same);
  if (entry && same && !adopt)
    return resultOf(entry, same, `CA "${input.name}" has this certificate already (key generation ${same.generation})`);
  if (input.key && !entry) {
    const twin = (await cas.allCertifiedKeys(pool)).find((k) => caSummary(k.certDer).fingerprintSha256 === cert.summary.fingerprintSha256);
    if (twin?.keyBackend === 'none') {
      throw refuse(
        `this certificate is CA "${twin.caName}" already (recorded as the parent of a CA); import it with --name ${twin.caName} to give it its key`,
        'ca.exists',
      );
    }
    if (twin) throw refuse(`this certificate is CA "${twin.caName}"'s already`, 'ca.exists');
  }

  // The key: a pending generation's (import-cert), or an existing key in the store (import).
  let pending: CaKeyRow | undefined;
  let keyRef: { keyId: string; keyAlg: KeyAlg } | undefined;
  if (!input.key) {
    if (!entry)
      throw new CaError('notFound', `no CA named "${input.name}" (create it with \`certflow ca create --name ${input.name} --external\`)`, {
        rule: 'ca.unknown',
      });
    pending = generations.find((g) => !g.certDer);
    if (!pending) throw refuse(`CA "${input.name}" waits for no certificate (no pending request)`, 'ca.import.notPending');
    if (!Buffer.from(cert.summary.spki).equals(pending.spki!)) {
      throw new CaError(
        'policy',
        `the certificate's public key is not the key of CA "${input.name}"'s request: it was issued for another request`,
        { rule: 'ca.import.keyMismatch' },
      );
    }
    const inStore = await keys.get(pending.keyId);
    if (!inStore)
      throw new CaError('config', `the key "${pending.keyId}" of CA "${input.name}" is not in the ${keys.backend} key store`, {
        rule: 'ca.key',
      });
  } else {
    if (entry && !adopt) throw refuse(`a CA named "${input.name}" exists already`, 'ca.exists');
    const keyId = 'keyId' in input.key ? input.key.keyId : keyLabelOf(input.key.pkcs11Uri, config.keys.pkcs11.tokenLabel);
    if ('pkcs11Uri' in input.key && keys.backend !== 'pkcs11') {
      throw refuse('a pkcs11: URI needs CERTFLOW_KEY_BACKEND=pkcs11 on the worker', 'ca.import.backend');
    }
    const owner = await cas.keyInUse(pool, keys.backend, keyId);
    if (owner) throw refuse(`the key "${keyId}" belongs to CA "${owner.caName}"`, 'ca.key');
    const key = await keys.get(keyId);
    if (!key) {
      throw new CaError(
        'notFound',
        `no key "${keyId}" in the ${keys.backend} key store${keys.backend === 'pkcs11' ? ` (token "${config.keys.pkcs11.tokenLabel}")` : ''}`,
        {
          rule: 'ca.import.noKey',
        },
      );
    }
    if (!Buffer.from(key.spki).equals(Buffer.from(cert.summary.spki))) {
      throw new CaError('policy', `the key "${keyId}" does not match the certificate of "${cert.summary.subject}" (another public key)`, {
        rule: 'ca.import.keyMismatch',
      });
    }
    // Possession, not only the public half: the key store signs a challenge that the
    // certificate's public key must verify (a mislabelled public key object is caught here).
    const challenge = randomBytes(32);
    const sigAlg = defaultSignAlg(key.alg);
    if (!verifySignedWith(cert.summary.spki, sigAlg, challenge, await keys.sign(keyId, sigAlg, challenge))) {
      throw new CaError('policy', `the key "${keyId}" does not sign for the certificate's public key`, { rule: 'ca.import.keyMismatch' });
    }
    keyRef = { keyId, keyAlg: key.alg };
  }

  // Where it hangs: a root (self-signed), or below a trust anchor or one of certflow's CAs.
  const selfSigned = isSelfSigned(cert);
  if (selfSigned && pending)
    throw new CaError('policy', 'the certificate is self-signed; an external CA is signed by another CA', { rule: 'ca.import.chain' });
  const known = (await cas.allCertifiedKeys(pool)).filter((k) => k.caName !== input.name);
  let path: ChainCert[] = [cert];
  if (selfSigned) {
    const problem = cert.summary.isCa && (!cert.summary.keyUsage.length || cert.summary.keyUsage.includes('keyCertSign'));
    if (!problem)
      throw new CaError('policy', 'the certificate is not a CA certificate allowed to sign certificates', { rule: 'ca.import.chain' });
    if (cert.summary.notAfter.getTime() <= now.getTime())
      throw new CaError('policy', `the certificate expired on ${cert.summary.notAfter.toISOString()}`, { rule: 'ca.import.chain' });
  } else {
    path = certificatePath(cert.der, chain, [...(await trustAnchors(deps)), ...known.map((k) => k.certDer)], now);
  }

  const message = await withTransaction(pool, async (tx) => {
    // The certificates above it that certflow does not know yet: outside CAs, recorded for chains.
    let parent: { name: string; generation: number } | null = null;
    const taken = new Set<string>();
    for (const c of path.slice(1).reverse()) {
      const mine = known.find((k) => caSummary(k.certDer).fingerprintSha256 === c.summary.fingerprintSha256);
      if (mine) {
        parent = { name: mine.caName, generation: mine.generation };
        continue;
      }
      const name = await externalName(deps, c, taken);
      taken.add(name);
      await cas.insert(tx, {
        name,
        role: isSelfSigned(c) ? 'root' : 'issuing',
        parent: parent?.name ?? null,
        parentGeneration: parent?.generation ?? null,
        keyId: '',
        keyAlg: keyAlgName(c.summary.spki),
        keyBackend: 'none',
        subject: c.summary.subject,
        serial: c.summary.serialHex,
        notBefore: c.summary.notBefore,
        notAfter: c.summary.notAfter,
        certDer: c.der,
        external: true,
      });
      parent = { name, generation: 1 };
    }
    const d = cert.summary;
    if (pending) {
      await cas.setParent(tx, input.name, parent?.name ?? null);
      await cas.setKeyCertificate(tx, input.name, pending.generation, {
        certDer: cert.der,
        serial: d.serialHex,
        subject: d.subject,
        notBefore: d.notBefore,
        notAfter: d.notAfter,
        parentGeneration: parent?.generation ?? null,
      });
    } else if (adopt) {
      await cas.adoptKey(tx, input.name, same!.generation, { keyId: keyRef!.keyId, keyAlg: keyRef!.keyAlg, keyBackend: keys.backend });
    } else {
      await cas.insert(tx, {
        name: input.name,
        role: selfSigned ? 'root' : 'issuing',
        parent: parent?.name ?? null,
        parentGeneration: parent?.generation ?? null,
        keyId: keyRef!.keyId,
        keyAlg: keyRef!.keyAlg,
        keyBackend: keys.backend,
        subject: d.subject,
        serial: d.serialHex,
        notBefore: d.notBefore,
        notAfter: d.notAfter,
        certDer: cert.der,
        createdByWorkflow: workflowId(),
      });
    }
    const anchor = path.at(-1)!.summary.subject;
    await audit(tx, {
      actor: input.requester,
      action: pending ? 'ca.importCert' : 'ca.import',
      object: input.name,
      details: {
        generation: pending?.generation ?? (adopt ? same!.generation : 1),
        ...(adopt ? { adopted: true } : {}),
        subject: d.subject,
        serial: d.serialHex,
        notAfter: d.notAfter.toISOString(),
        fingerprintSha256: d.fingerprintSha256,
        parent: parent?.name ?? null,
        trustAnchor: selfSigned ? null : anchor,
        ...(keyRef ? { keyId: keyRef.keyId, keyBackend: keys.backend } : {}),
      },
      requestId: workflowId(),
      key: `ca.import:${input.name}:${d.fingerprintSha256}`,
    });
    return selfSigned
      ? `CA "${input.name}" imported as a root`
      : `CA "${input.name}" ${pending ? 'activated' : 'imported'}, chained to "${anchor}"`;
  });
  const generation = pending?.generation ?? (adopt ? same!.generation : 1);
  log.info({ ca: input.name, generation }, message);
  await makeCrl(deps, await signingKey(pool, input.name, generation), input.requester).catch((e: unknown) =>
    log.warn(
      { ca: input.name, err: errorMessage(e) },
      'the first CRL of the imported CA could not be signed yet; the next refresh makes it',
    ),
  );
  return resultOf(await entryOf(deps, input.name), (await cas.getKey(pool, input.name, generation))!, message);
}

// ---- rollover -----------------------------------------------------------------------------

async function prepareRollover(deps: SigningDeps, input: CaRolloverInput): Promise<CaKeyStep> {
  const { pool, keys, config } = deps;
  const ca = await cas.get(pool, input.name);
  if (!ca)
    throw new CaError('notFound', `no CA named "${input.name}" with a certificate (see \`certflow ca list\`)`, { rule: 'ca.unknown' });
  const why = cannotSign(ca, new Date());
  if (why) throw refuse(`CA "${ca.name}" cannot be rolled over: ${why.message}`, why.rule ?? 'ca.rollover');
  const all = await cas.keys(pool, input.name);
  const waiting = all.find((k) => k.certDer && k.generation > ca.generation);
  if (waiting) {
    throw refuse(
      `key generation ${waiting.generation} of CA "${ca.name}" takes over issuance at ${waiting.activateAt.toISOString()}; roll over again after that`,
      'ca.rollover.pending',
    );
  }
  // The generation this workflow makes: one the workflow reserved earlier (a retry), else a new one.
  const mine = all.find((k) => !k.certDer && k.keyBackend !== 'none' && k.generation > ca.generation);
  const generation = mine?.generation ?? Math.max(...all.map((k) => k.generation)) + 1;
  const alg = keyAlgOf(config, input.keyAlg ?? ca.keyAlg);
  const subject = subjectOf(input.subject ?? ca.subject);
  const activateAt = input.activateAt ? new Date(input.activateAt) : undefined;
  if (activateAt && Number.isNaN(activateAt.getTime()))
    throw new CaError('malformed', `--activate-at "${input.activateAt}" is not a time`, { rule: 'ca.rollover.activateAt' });
  if (ca.parent) {
    const parent = await cas.get(pool, ca.parent);
    const parentWhy = parent ? cannotSign(parent, new Date()) : refuse(`the parent of "${ca.name}" is missing`, 'ca.parent');
    if (parentWhy) {
      throw refuse(
        `the parent "${ca.parent}" cannot certify a new key for "${ca.name}": ${parentWhy.message}${parent?.external ? ' (roll it over with --external and have the outside CA sign the request)' : ''}`,
        'ca.parent',
      );
    }
  }
  const keyId = keyIdOf(input.name, generation);
  const key = await ensureKey(deps, input.name, generation, keyId, alg);
  await cas.insertKey(pool, { caName: input.name, generation, keyId, keyAlg: alg, keyBackend: keys.backend, spki: key.spki, subject });
  await cas.setActivateAt(pool, input.name, generation, activateAt ?? new Date());
  return { name: input.name, generation, requester: input.requester };
}

async function activated(deps: SigningDeps, input: CaKeyStep): Promise<CaOperationResult> {
  const { pool, config, log } = deps;
  const entry = await entryOf(deps, input.name);
  const key = (await cas.getKey(pool, input.name, input.generation))!;
  await audit(pool, {
    actor: 'system',
    action: 'ca.activate',
    object: input.name,
    details: { generation: input.generation, serial: key.serial, activateAt: key.activateAt.toISOString(), requestedBy: input.requester },
    requestId: workflowId(),
    key: `ca.activate:${input.name}:${input.generation}`,
  });
  // The trust files follow the default issuing CA's chain (root.pem, chain.pem).
  const chain = await cas.issuingChain(pool, config.ca.issuingName, { includeRoot: true });
  if (chain.length) await writeTrustFiles(config, chain);
  log.info({ ca: input.name, generation: input.generation }, 'CA key generation active');
  return resultOf(entry, key, `CA "${input.name}" issues with key generation ${input.generation} since ${key.activateAt.toISOString()}`);
}

// ---- revoke -------------------------------------------------------------------------------

const CA_REVOCATION_REASONS = Object.keys(REVOCATION_REASONS).filter((r) => r !== 'removeFromCRL' && r !== 'certificateHold');

async function revokeCa(deps: SigningDeps, input: CaRevokeInput): Promise<CaOperationResult> {
  const { pool, log } = deps;
  const reason = input.reason ?? 'cACompromise';
  if (!CA_REVOCATION_REASONS.includes(reason)) {
    throw new CaError('malformed', `"${reason}" is not a revocation reason (use one of ${CA_REVOCATION_REASONS.join(', ')})`, {
      rule: 'revocation.reason',
    });
  }
  const entry = await entryOf(deps, input.name);
  if (entry.external) throw refuse(`CA "${input.name}" is outside certflow; revoke it where its parent is`, 'ca.external');
  if (entry.status === 'pending') throw refuse(`CA "${input.name}" has no certificate yet; nothing to revoke`, 'ca.pending');
  const { revokedAt, certificates } = await withTransaction(pool, async (tx) => {
    // Waits for signatures in flight (they share-lock the row) and stops every later one.
    const r = await cas.revoke(tx, input.name, reason);
    const rowCount = await certs.revokeAllOfCa(tx, input.name, r.revokedAt, r.reason);
    await audit(tx, {
      actor: input.requester,
      action: 'ca.revoke',
      object: input.name,
      details: { reason: r.reason, revokedAt: r.revokedAt.toISOString(), certificatesRevoked: rowCount, parent: entry.parent },
      requestId: workflowId(),
      key: `ca.revoke:${input.name}`,
    });
    return { revokedAt: r.revokedAt, certificates: rowCount };
  });
  log.warn({ ca: input.name, reason, certificates }, 'CA revoked');
  const key = (await cas.keys(pool, input.name)).filter((k) => k.certDer).at(-1)!;
  return resultOf(
    await entryOf(deps, input.name),
    key,
    `CA "${input.name}" revoked (${reason}) at ${revokedAt.toISOString()}; ${certificates} certificate(s) it issued are revoked with it`,
  );
}

/**
 * The revoked CA's last signatures (a CRL listing everything it issued, OCSP responses
 * "revoked", both valid until its certificate expires), then its parent's CRL listing it.
 */
async function publishRevocation(deps: SigningDeps, input: CaRevokeInput): Promise<CaOperationResult> {
  const { pool, log } = deps;
  const entry = await entryOf(deps, input.name);
  if (entry.status !== 'revoked') throw new CaError('internal', `CA "${input.name}" is not revoked`);
  const now = new Date();
  const generations = (await cas.keys(pool, input.name)).filter((k) => k.certDer && k.notAfter! > now);
  const notes: string[] = [];
  for (const g of generations) {
    const key = await signingKey(pool, input.name, g.generation);
    const serials = await certs.unexpiredSerials(pool, input.name, g.generation);
    for (let i = 0; i < serials.length; i += 200) {
      await signOcspFor(deps, key, serials.slice(i, i + 200), { final: true });
      Context.current().heartbeat();
    }
    const crl = await makeCrl(deps, key, input.requester, { final: true });
    notes.push(`last CRL ${crl.crlNumber} of ${input.name}${g.generation > 1 ? ` (key ${g.generation})` : ''} with ${crl.entries} entries`);
  }
  const parent = entry.parent ? await cas.getEntry(pool, entry.parent) : null;
  if (parent && !parent.external) {
    const parentGenerations = new Set(generations.map((g) => g.parentGeneration).filter((g): g is number => g !== null));
    for (const pg of parentGenerations) {
      const key = await signingKey(pool, parent.name, pg);
      if (cannotSign({ ...key, name: parent.name }, now)) continue;
      const crl = await makeCrl(deps, key, input.requester);
      notes.push(`CRL ${crl.crlNumber} of ${parent.name} lists it`);
    }
  } else if (parent?.external) {
    notes.push(`its parent "${parent.name}" is outside certflow: have its certificate revoked there`);
  }
  log.info({ ca: input.name, notes }, 'CA revocation published');
  const key = (await cas.keys(pool, input.name)).filter((k) => k.certDer).at(-1)!;
  return resultOf(entry, key, `CA "${input.name}" revoked (${entry.revocationReason}); ${notes.join('; ')}`);
}

export function createCaActivities(deps: SigningDeps): CaActivities {
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      // Key generation (RSA in an HSM) may take long: heartbeats keep a live worker's attempt alive.
      const stop = heartbeatWhileRunning();
      try {
        return await fn(...a);
      } catch (e) {
        throw toActivityFailure(e);
      } finally {
        stop();
      }
    };
  return {
    caPrepareCreate: wrap((input: CaCreateInput) => prepareCreate(deps, input)),
    caPrepareRollover: wrap((input: CaRolloverInput) => prepareRollover(deps, input)),
    caCertify: wrap((input: CaKeyStep & { create?: CaCreateInput; rollover?: CaRolloverInput }) => certify(deps, input)),
    caMakeCsr: wrap((input: CaKeyStep & { subject?: string }) => makeCsr(deps, input)),
    caImport: wrap((input: CaImportInput) => importCa(deps, input)),
    caActivated: wrap((input: CaKeyStep) => activated(deps, input)),
    caRevoke: wrap((input: CaRevokeInput) => revokeCa(deps, input)),
    caPublishRevocation: wrap((input: CaRevokeInput) => publishRevocation(deps, input)),
    caRecordFailure: wrap(async (input) => {
      await audit(deps.pool, {
        actor: input.requester,
        action: `ca.${input.operation}`,
        object: input.name,
        result: 'failed',
        details: { error: input.error },
        requestId: workflowId(),
        key: `ca.failed:${workflowId()}:${Context.current().info.workflowExecution?.runId}`,
      });
    }),
  };
}

/** The daily expiry watch (main queue: no key needed). */
export function createCaWatchActivities(deps: Pick<SigningDeps, 'config' | 'pool' | 'log'>): CaWatchActivities {
  return {
    async caExpiryWatch() {
      try {
        const report = await caExpiryReport(deps.pool, deps.config);
        let recorded = 0;
        for (const w of report) {
          const written = await audit(deps.pool, {
            actor: 'system',
            action: 'ca.expiry',
            object: w.ca,
            result: 'ok',
            details: { ...w },
            // Once per CA key and level: a warning, then (if nothing is done) critical, then expired.
            key: `ca.expiry:${w.ca}:${w.generation}:${w.level}`,
          });
          if (written) {
            recorded++;
            deps.log.warn({ ca: w.ca, level: w.level }, w.message);
          }
        }
        return { warnings: report.length, recorded };
      } catch (e) {
        throw toActivityFailure(e);
      }
    },
  };
}
