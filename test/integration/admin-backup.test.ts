/**
 * Backup and restore: issue (and revoke) certificates, `certflow backup create`, wipe the
 * installation, `certflow backup restore` into an empty CERTFLOW_HOME and an empty
 * database, start again: the same CA issues (the new certificate verifies against the
 * ORIGINAL root.pem), no serial is reused, the old certificates still answer OCSP (good
 * and revoked), the audit chain verifies. A wrong passphrase and a damaged archive are
 * refused; a restore into a home or database with state in it is refused; the embedded
 * Postgres path (no DATABASE_URL) restores too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from '../../src/core/net.ts';
import { embeddedDatabaseUrl, spawnPostgres } from '../../src/db/embedded.ts';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

const PASSPHRASE = 'backup passphrase of the test\n';

describe('backup and restore', () => {
  let work: string;
  let a: TestInstance;
  let b: TestInstance | undefined;
  let target: TestDatabase | undefined;
  let archive: string;
  let rootPem: string;
  const serials: Record<string, string> = {};

  async function issue(cf: TestInstance, name: string): Promise<string> {
    const csr = await opensslCsr(work, name, { subj: `/CN=${name}.example.test`, san: `DNS:${name}.example.test` });
    const r = await cf.cli(['--json', 'cert', 'issue', '--csr', csr, '--out', join(work, `${name}.pem`)]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).serial as string;
  }

  async function ocsp(cf: TestInstance, name: string): Promise<string> {
    const r = await runTool('openssl', [
      'ocsp',
      '-issuer',
      join(work, 'chain.pem'),
      '-cert',
      join(work, `${name}.pem`),
      '-url',
      `http://127.0.0.1:${cf.httpPort}/ocsp`,
      '-CAfile',
      join(work, 'root.pem'),
      '-no_nonce',
    ]);
    assert.match(r.stderr + r.stdout, /Response verify OK/, r.stderr + r.stdout);
    return r.stdout;
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certflow-backup-'));
    a = await createInstance();
    await a.startWorker();
    await a.startServer();
    rootPem = await readFile(join(a.home, 'ca', 'root.pem'), 'utf8');
    await writeFile(join(work, 'root.pem'), rootPem);
    await writeFile(join(work, 'chain.pem'), await readFile(join(a.home, 'ca', 'chain.pem')));
    serials.good = await issue(a, 'good');
    serials.bad = await issue(a, 'bad');
    assert.equal((await a.cli(['cert', 'revoke', serials.bad, '--reason', 'keyCompromise'])).code, 0);
    assert.match(await ocsp(a, 'good'), /: good/);
    archive = join(work, 'certflow.cfbk');
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await target?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('writes an encrypted archive (mode 0600) and audits it', async () => {
    const noPass = await a.cli(['backup', 'create', '--out', archive]);
    assert.equal(noPass.code, 2);
    assert.match(noPass.stderr, /no backup recipient key is set/, 'without a recipient, the CLI needs a passphrase');
    const r = await a.cli(['--json', 'backup', 'create', '--out', archive, '--passphrase', '-'], { input: PASSPHRASE });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.certificates, 4, "two certificates, the server's own and its CMP signer's");
    const keyFiles = out.files.filter((f: string) => f.endsWith('.key.pem'));
    assert.ok(keyFiles.length >= 3, `root, issuing and audit keys: ${keyFiles.join(', ')}`);
    for (const k of ['keys/certflow-root.key.pem', 'keys/certflow-issuing.key.pem'])
      assert.ok(keyFiles.includes(k), `${k} in ${keyFiles.join(', ')}`);
    assert.ok(!keyFiles.includes('keys/certflow-archive.key.pem'), 'no label archives server keys: no key-archive key');
    assert.ok(out.files.includes('keys/cmp-secrets.key'), 'the secrets key');
    assert.equal(statSync(archive).mode & 0o777, 0o600);
    const bytes = await readFile(archive);
    assert.ok(bytes.subarray(0, 18).toString() === 'CERTFLOW-BACKUP-1\n');
    assert.equal(bytes.includes(Buffer.from('BEGIN CERTIFICATE')), false, 'nothing readable inside');
    assert.equal(bytes.includes(Buffer.from(serials.good!)), false);
    const again = await a.cli(['backup', 'create', '--out', archive, '--passphrase', '-'], { input: PASSPHRASE });
    assert.equal(again.code, 2, 'an existing file is never overwritten');
    const { rows } = await a.pool.query("SELECT actor FROM audit_log WHERE action = 'backup.create'");
    assert.equal(rows.length, 1);
  });

  it('refuses a wrong passphrase, a damaged archive, and a target that is not empty', async () => {
    target = await testDatabase({ migrate: false });
    const home = await mkdtemp(join(tmpdir(), 'certflow-restore-'));
    const env = { CERTFLOW_HOME: home, DATABASE_URL: target.url };
    const wrong = await a.cli(['backup', 'restore', archive, '--passphrase', '-'], { input: 'not the passphrase at all\n', env });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /wrong passphrase/);
    const damaged = join(work, 'damaged.cfbk');
    const bytes = await readFile(archive);
    bytes[bytes.length - 100] ^= 0x01;
    await writeFile(damaged, bytes);
    const bad = await a.cli(['backup', 'restore', damaged, '--passphrase', '-'], { input: PASSPHRASE, env });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /damaged/);
    const intoA = await a.cli(['backup', 'restore', archive, '--passphrase', '-'], {
      input: PASSPHRASE,
      env: { DATABASE_URL: target.url },
    });
    assert.equal(intoA.code, 2);
    assert.match(intoA.stderr, /is not empty/);
    const intoUsedDb = await a.cli(['backup', 'restore', archive, '--passphrase', '-'], {
      input: PASSPHRASE,
      env: { CERTFLOW_HOME: await mkdtemp(join(tmpdir(), 'certflow-restore-')), DATABASE_URL: a.databaseUrl },
    });
    assert.equal(intoUsedDb.code, 2);
    assert.match(intoUsedDb.stderr, /target database is not empty/);
    await rm(home, { recursive: true, force: true });
  });

  it('restores into an empty home and database after a wipe: same CA, no serial reused, old certificates answer OCSP', async () => {
    // Wipe: stop everything of A; its database and state directory are dropped.
    await a.cleanup();
    assert.equal(existsSync(a.home), false);

    b = await createInstance();
    await target!.drop();
    target = await testDatabase({ migrate: false });
    const env = { DATABASE_URL: target.url };
    const r = await b.cli(['--json', 'backup', 'restore', archive, '--passphrase', '-'], { input: PASSPHRASE, env });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.audit.ok, true, JSON.stringify(out.audit));
    assert.equal(out.summary.certificates, 4);
    assert.equal(await readFile(join(b.home, 'ca', 'root.pem'), 'utf8'), rootPem, 'trust files restored');
    assert.equal(statSync(join(b.home, 'keys')).mode & 0o777, 0o700);

    await b.startWorker(env);
    await b.startServer(env);
    assert.equal(await readFile(join(b.home, 'ca', 'root.pem'), 'utf8'), rootPem, 'the worker found the same CA');
    assert.match(await ocsp(b, 'good'), /: good/);
    const revoked = await ocsp(b, 'bad');
    assert.match(revoked, /: revoked/);
    assert.match(revoked, /Reason: keyCompromise/);

    const csr = await opensslCsr(work, 'after', { subj: '/CN=after.example.test', san: 'DNS:after.example.test' });
    const issued = await b.cli(['--json', 'cert', 'issue', '--csr', csr, '--out', join(work, 'after.pem')], { env });
    assert.equal(issued.code, 0, issued.stderr);
    const newSerial = JSON.parse(issued.stdout).serial as string;
    assert.ok(!Object.values(serials).includes(newSerial));
    const verify = await runTool('openssl', [
      'verify',
      '-CAfile',
      join(work, 'root.pem'),
      '-untrusted',
      join(work, 'chain.pem'),
      join(work, 'after.pem'),
    ]);
    assert.equal(verify.code, 0, verify.stderr);
    const db = new pg.Client({ connectionString: target!.url });
    await db.connect();
    try {
      const all = await db.query('SELECT serial FROM certificates');
      assert.equal(new Set(all.rows.map((x) => x.serial)).size, all.rows.length, 'serials are unique');
      assert.ok(all.rows.length >= 5, 'the old certificates, the new one and the new HTTPS certificate');
      const crl = await db.query("SELECT max(crl_number)::int AS n FROM crls WHERE ca_name = 'certflow-issuing'");
      const generated = await b.cli(['--json', 'crl', 'generate'], { env });
      assert.equal(generated.code, 0, generated.stderr);
      assert.equal(Number(JSON.parse(generated.stdout).crls[0].crlNumber), crl.rows[0].n + 1, 'CRL numbers continue');
    } finally {
      await db.end();
    }
    const audit = await b.cli(['audit', 'verify'], { env });
    assert.equal(audit.code, 0, audit.stderr);
  });

  it('restores into a new embedded Postgres when no DATABASE_URL is set', async () => {
    const home = await mkdtemp(join(tmpdir(), 'certflow-restore-embedded-'));
    await chmod(home, 0o755); // the embedded Postgres runs as user "postgres" and must reach its data dir
    const port = await freePort();
    try {
      const env = { CERTFLOW_HOME: home, DATABASE_URL: '', CERTFLOW_POSTGRES_PORT: String(port) };
      const r = await b!.cli(['backup', 'restore', archive, '--passphrase', '-'], { input: PASSPHRASE, env });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /restored 4 certificates/);
      assert.match(r.stderr, /audit log verified/);
      const server = await spawnPostgres({ home }, { port, logFile: join(home, 'check-postgres.log') });
      try {
        const db = new pg.Client({ connectionString: embeddedDatabaseUrl({ home }, port) });
        await db.connect();
        const { rows } = await db.query('SELECT count(*)::int AS n FROM certificates');
        await db.end();
        assert.equal(rows[0].n, 4);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});
