/**
 * Audit entries written by activities are exactly-once: each activity is run twice with the
 * same activity info (what Temporal does when it retries an attempt whose result it never
 * got) and must leave one entry — issuance (also after a crash between storing the
 * certificate and its audit entry), status changes, approval decisions, key recovery and
 * certificate expiry. The audit checkpoint is signed with the audit key of the key store
 * and verifies, also against the public key file the worker writes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createDecipheriv, privateDecrypt } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createAuditActivities, createKeyRecoveryActivities, ensureAuditKey } from '../../activities/audit.ts';
import { createRevocationActivities } from '../../activities/revocation.ts';
import { createSigningActivities } from '../../activities/signing.ts';
import { createStorageActivities } from '../../activities/storage.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/core/logger.ts';
import * as auditLog from '../../src/db/repos/audit.ts';
import * as certificates from '../../src/db/repos/certificates.ts';
import { archiveAad } from '../../src/core/key-archive.ts';
import { archiveServerKey } from '../../src/ra/enrollment.ts';
import { bootstrapCa } from '../../src/temporal/worker.ts';
import { makeCsr } from '../helpers/openssl.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

describe('audit entries from activities', () => {
  let db: TestDatabase;
  let home: string;
  let config: Config;
  const keys = new MemoryKeyStore();
  const log = createLogger('test', 'silent');
  let deps: { config: Config; pool: TestDatabase['pool']; keys: MemoryKeyStore; log: typeof log };

  const count = async (action: string, object?: string) =>
    (
      await db.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM audit_log WHERE action = $1 AND ($2::text IS NULL OR object = $2)',
        [action, object ?? null],
      )
    ).rows[0]!.n;
  /** Two attempts of one activity: same workflow run, same activity id. */
  const twice = async <T>(fn: () => Promise<T>, activityId: string): Promise<[T, T]> => {
    const env = new MockActivityEnvironment({
      activityId,
      workflowExecution: { workflowId: `wf-${activityId}`, runId: `run-${activityId}` },
    });
    return [(await env.run(fn)) as T, (await env.run(fn)) as T];
  };
  const once = <T>(fn: () => Promise<T>): Promise<T> => new MockActivityEnvironment().run(fn) as Promise<T>;
  const csr = (cn: string) => Buffer.from(makeCsr({ subj: `/CN=${cn}`, san: `DNS:${cn}` }).der).toString('base64');

  before(async () => {
    db = await testDatabase();
    home = mkdtempSync(join(tmpdir(), 'certflow-admin-act-'));
    // A label that archives server keys: the bootstrap then creates the key-archive key (key recovery below).
    const configFile = join(home, 'config.json');
    writeFileSync(configFile, JSON.stringify({ est: { labels: [{ name: 'archive', profile: 'device', archiveServerKeys: true }] } }));
    config = loadConfig({ CERTFLOW_HOME: home, CERTFLOW_CONFIG: configFile });
    deps = { config, pool: db.pool, keys, log };
    await new MockActivityEnvironment().run(() => bootstrapCa(config, db.pool, keys, log));
    await ensureAuditKey(deps);
  });
  after(async () => {
    await db?.drop();
    rmSync(home, { recursive: true, force: true });
  });

  it('issuance: one cert.issue entry, committed with the certificate', async () => {
    const signing = createSigningActivities(deps);
    const input = {
      requestId: 'req-once',
      protocol: 'operator' as const,
      csr: csr('once.example.test'),
      profile: 'tls-server',
      requester: 'user:alice',
    };
    const [a, b] = await twice(() => signing.issueCertificate(input), 'issue-1');
    assert.equal(a.serial, b.serial);
    assert.equal(await count('cert.issue', a.serial), 1);

    // The entry commits with the certificate: when writing it fails (a crash), neither is
    // stored, and the retry signs the same TBS (same serial) and writes the entry once.
    const crashed = { ...input, requestId: 'req-crashed', csr: csr('crashed.example.test') };
    await db.pool.query(
      "CREATE TRIGGER crash BEFORE INSERT ON audit_log FOR EACH ROW WHEN (NEW.action = 'cert.issue') EXECUTE FUNCTION certflow_append_only()",
    );
    await assert.rejects(once(() => signing.issueCertificate(crashed)));
    await db.pool.query('DROP TRIGGER crash ON audit_log');
    const pending = (await certificates.getByRequest(db.pool, 'req-crashed'))!;
    assert.equal(pending.status, 'signing', 'not stored without its audit entry');
    const [again] = await twice(() => signing.issueCertificate(crashed), 'issue-2');
    assert.equal(again.serial, pending.serial, 'the same TBS, no second serial');
    assert.equal(await count('cert.issue', pending.serial), 1);
    assert.equal((await auditLog.verifyChain(db.pool)).ok, true);
  });

  it('status changes: one entry per activity, whatever the retries; each CRL once', async () => {
    const signing = createSigningActivities(deps);
    const revocation = createRevocationActivities(deps);
    const cert = await once(() =>
      signing.issueCertificate({ requestId: 'req-hold', protocol: 'operator', csr: csr('hold.example.test'), profile: 'tls-server' }),
    );
    const crlsBefore = await count('crl.generate');
    await twice(() => revocation.changeCertificateStatus({ serial: cert.serial, action: 'hold', requester: 'user:bob' }), 'hold-1');
    const rows = await auditLog.list(db.pool, { object: cert.serial, action: 'cert.hold' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.actor, 'user:bob');
    assert.equal(rows[0]!.requestId, 'wf-hold-1');
    assert.equal(await count('crl.generate'), crlsBefore + 2, 'each published CRL is an entry of its own');
    await twice(() => revocation.changeCertificateStatus({ serial: cert.serial, action: 'release', requester: 'user:bob' }), 'release-1');
    assert.equal(await count('cert.release', cert.serial), 1);
  });

  it('waiting for approval, decisions, refusals and stalls: once per request (per cause for stalls)', async () => {
    const storage = createStorageActivities({ pool: db.pool });
    const base = {
      id: 'enr-1',
      protocol: 'est' as const,
      workflowId: 'est-enr-1',
      profile: 'device',
      csr: csr('dev1'),
      requester: 'factory',
    };
    await twice(() => storage.projectRequest({ ...base, state: 'awaiting-approval' }), 'project-0');
    const decided = { ...base, state: 'signing' as const, decidedBy: 'user:carol', decidedAt: new Date().toISOString() };
    await twice(() => storage.projectRequest(decided), 'project-1');
    await twice(() => storage.projectRequest({ ...decided, state: 'stalled', error: 'hsm: token gone' }), 'project-1s');
    await storage.projectRequest({ ...decided, state: 'stalled', error: 'hsm: token gone again' });
    await storage.projectRequest({ ...decided, state: 'issued', serial: undefined });
    const rows = await auditLog.list(db.pool, { object: 'enr-1' });
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor]),
      [
        ['request.stall', 'system'],
        ['request.stall', 'system'],
        ['request.approve', 'user:carol'],
        ['request.create', 'est:factory'],
      ],
    );
    await twice(
      () => storage.projectRequest({ ...base, id: 'enr-2', workflowId: 'est-enr-2', state: 'failed', error: 'RSA key too small' }),
      'project-2',
    );
    assert.equal(await count('request.refuse', 'enr-2'), 1);
  });

  it('key recovery: the worker re-encrypts to the recipient, one key.recover entry', async () => {
    const signing = createSigningActivities(deps);
    const cert = await once(() =>
      signing.issueCertificate({ requestId: 'req-archived', protocol: 'est', csr: csr('archived.example.test'), profile: 'tls-server' }),
    );
    const deviceKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
    await archiveServerKey(db, { serial: cert.serial, requestId: 'req-archived', pkcs8: deviceKey });
    const recipient = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const recovery = createKeyRecoveryActivities(deps);
    const input = {
      serial: cert.serial,
      requester: 'user:dave',
      recipientSpki: recipient.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
    };
    const [r] = await twice(() => recovery.recoverKeyForRecipient(input), 'recover-1');
    assert.equal(await count('key.recover', cert.serial), 1);
    const aes = privateDecrypt(
      { key: recipient.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(r.wrappedKey, 'base64'),
    );
    const d = createDecipheriv('aes-256-gcm', aes, Buffer.from(r.iv, 'base64'));
    d.setAAD(archiveAad(cert.serial));
    d.setAuthTag(Buffer.from(r.tag, 'base64'));
    assert.deepEqual(Buffer.concat([d.update(Buffer.from(r.ciphertext, 'base64')), d.final()]), deviceKey);
    assert.doesNotMatch(JSON.stringify(r), new RegExp(deviceKey.toString('base64').slice(0, 40)), 'the key is not in the result in clear');
  });

  it('checkpoints: records expiries once, signs the head with the audit key; verifies against the key file', async () => {
    const signing = createSigningActivities(deps);
    const cert = await once(() =>
      signing.issueCertificate({ requestId: 'req-expiring', protocol: 'operator', csr: csr('old.example.test'), profile: 'tls-server' }),
    );
    await db.pool.query("UPDATE certificates SET not_after = now() - interval '1 hour' WHERE serial = $1", [cert.serial]);
    const audit = createAuditActivities(deps);
    const [a, b] = await twice(() => audit.signAuditCheckpoint({}), 'checkpoint-1');
    assert.equal(a.expired, 1);
    assert.equal(b.expired, 0);
    assert.equal(await count('cert.expire', cert.serial), 1);
    assert.equal(a.created, true);
    assert.equal(b.created, false, 'the same head is not signed twice');
    assert.equal(a.seq, (await auditLog.head(db.pool)).seq);
    const pem = readFileSync(join(home, 'ca', 'audit-key.pem'), 'utf8');
    const v = await auditLog.verifyChain(db.pool, { publicKey: pem });
    assert.equal(v.ok, true, v.problems.join('\n'));
    assert.equal(v.latestVerifiedCheckpoint?.seq, a.seq);
    assert.ok((await certificates.get(db.pool, cert.serial))!.status === 'valid', 'expiry is recorded, not a status change');
  });
});
