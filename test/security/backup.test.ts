/**
 * Attacks on backups (issue 16, item 4), on an installation whose software keys are
 * protected by the dev-mode passphrase file keys/passphrase (no CERTFLOW_KEY_PASSPHRASE, as
 * in `certflow cluster`):
 *
 * 1. The Operator role may create and download backups. The archive held keys/passphrase
 *    next to the encrypted CA keys, under a passphrase the Operator chose: the Operator took
 *    the CA keys home. Now the passphrase file is never archived, and the console makes
 *    backups only encrypted to the recipient key a CA Administrator set: the Operator can
 *    make one but not open it.
 * 2. A restore made a new CMP secrets key, and every MAC client broke. Now the key is in
 *    the backup: openssl cmp with the old secret enrolls against the restored installation.
 * 3. A damaged archive wrote files before the damage was found. Now the whole archive is
 *    authenticated first: nothing is written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { existsSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';
import { AdminClient, type Credentials } from '../helpers/admin.ts';
import { newKey, opensslCmp, type CmpPeer } from '../helpers/cmp.ts';

const PASSWORD = 'a console password';
const CLI_PASSPHRASE = 'a passphrase of the host operator';

describe('attack: backups', () => {
  let work: string;
  let a: TestInstance;
  let b: TestInstance | undefined;
  let target: TestDatabase | undefined;
  let api: AdminClient;
  let operator: Credentials;
  let caAdmin: Credentials;
  let operatorArchive: string;
  const recipient = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const RECIPIENT_KEY_PASSPHRASE = 'the recipient key passphrase';

  /** An empty CERTFLOW_HOME and an empty database to restore into. */
  async function emptyTarget(): Promise<{ home: string; env: NodeJS.ProcessEnv }> {
    await target?.drop();
    target = await testDatabase({ migrate: false });
    const home = await mkdtemp(join(work, 'restore-'));
    return { home, env: { CERTFLOW_HOME: home, DATABASE_URL: target.url, CERTFLOW_KEY_PASSPHRASE: '' } };
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'certflow-backup-attack-'));
    a = await createInstance({ CERTFLOW_KEY_PASSPHRASE: '' });
    await a.startWorker();
    await a.startServer();
    await a.startAdmin();
    assert.ok(existsSync(join(a.home, 'keys', 'passphrase')), 'the CA keys are protected by the passphrase file');
    for (const [name, role] of [
      ['op', 'operator'],
      ['boss', 'ca-admin'],
    ]) {
      const r = await a.cli(['users', 'add', '--name', name!, '--role', role!, '--password', '-'], { input: `${PASSWORD}\n` });
      assert.equal(r.code, 0, r.stderr);
    }
    // Enough rows that the archive spans several 64 KiB frames (the files come first, in the first one).
    await a.pool.query(
      "INSERT INTO acme_used_nonces (nonce, expires_at) SELECT decode(md5(i::text), 'hex'), now() + interval '1 day' FROM generate_series(1, 6000) i",
    );
    const cmp = await a.cli(['cmp-client', 'add', '--ref', 'device-7', '--secret', '-'], { input: 'device seven secret\n' });
    assert.equal(cmp.code, 0, cmp.stderr);
    // A checkpoint of the log so far, in the database and in the file outside it.
    const checkpoint = await a.cli(['audit', 'checkpoint']);
    assert.equal(checkpoint.code, 0, checkpoint.stderr);
    api = new AdminClient(a.adminPort, await readFile(join(a.home, 'ca', 'root.pem'), 'utf8'));
    operator = await api.login('op', PASSWORD);
    caAdmin = await api.login('boss', PASSWORD);
    const pem = recipient.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: RECIPIENT_KEY_PASSPHRASE });
    await writeFile(join(work, 'recipient.key'), pem as string, { mode: 0o600 });
  });
  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await target?.drop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('never archives the key passphrase; always the CMP secrets key, the pinned audit key and the outside checkpoints', async () => {
    const out = join(work, 'cli.cfbk');
    const r = await a.cli(['--json', 'backup', 'create', '--out', out, '--passphrase', '-'], { input: `${CLI_PASSPHRASE}\n` });
    assert.equal(r.code, 0, r.stderr);
    const { files, size } = JSON.parse(r.stdout) as { files: string[]; size: number };
    assert.ok(size > 4 * 65536, `several frames (${size} bytes)`);
    assert.ok(!files.includes('keys/passphrase'), `the key passphrase is in the backup: ${files.join(', ')}`);
    for (const f of ['keys/cmp-secrets.key', 'ca/audit-key.pem', 'audit/checkpoints.jsonl'])
      assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
    assert.ok(files.filter((f) => f.endsWith('.key.pem')).length >= 3, 'the (encrypted) key files: root, issuing, audit');
  });

  it('a damaged archive is refused before anything is written', async () => {
    const bytes = await readFile(join(work, 'cli.cfbk'));
    bytes[bytes.length - 40] ^= 0x01; // in the last frame: the files come first
    await writeFile(join(work, 'damaged.cfbk'), bytes);
    const { home, env } = await emptyTarget();
    const r = await a.cli(['backup', 'restore', join(work, 'damaged.cfbk'), '--passphrase', '-'], { input: `${CLI_PASSPHRASE}\n`, env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /damaged/);
    assert.deepEqual(await readdir(home), [], 'nothing written into the home');
    const { rows } = await target!.pool.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'");
    assert.equal(rows[0].n, 0, 'nothing written into the database');
  });

  it('an Operator cannot make a backup it can open: no passphrase of its own, no backup without a recipient', async () => {
    const none = await api.call('POST', '/admin/api/v1/backups', { ...operator, body: {} });
    const own = await api.call('POST', '/admin/api/v1/backups', { ...operator, body: { passphrase: 'the operator chose it' } });
    if (own.status === 201) {
      // The attack as it worked: download, restore with one's own passphrase, decrypt a CA key with the archived passphrase file.
      const file = join(work, 'operator-own.cfbk');
      await writeFile(file, (await api.call('GET', `/admin/api/v1/backups/${own.json.name}`, operator)).body);
      const { home, env } = await emptyTarget();
      await a.cli(['backup', 'restore', file, '--passphrase', '-'], { input: 'the operator chose it\n', env });
      const keyFile = (await readdir(join(home, 'keys')).catch(() => [])).find((f) => f.startsWith('certflow-issuing'));
      const opened = keyFile
        ? await runTool('openssl', ['pkey', '-in', join(home, 'keys', keyFile), '-passin', `file:${join(home, 'keys', 'passphrase')}`])
        : undefined;
      assert.notEqual(opened?.code, 0, 'the Operator decrypted the issuing CA key from its backup');
    }
    assert.equal(none.status, 409, none.text);
    assert.equal(none.json.error.rule, 'backup.noRecipient');
    assert.equal(own.status, 400, 'an Operator cannot choose a passphrase');
  });

  it('the CA Administrator sets the recipient; the Operator makes and downloads a backup it cannot open', async () => {
    const byOperator = await api.call('PUT', '/admin/api/v1/backup/recipient', {
      ...operator,
      body: { publicKey: generateKeyPairSync('x25519').publicKey.export({ type: 'spki', format: 'pem' }) },
    });
    assert.equal(byOperator.status, 403, 'only a CA Administrator sets the recipient');
    const set = await api.call('PUT', '/admin/api/v1/backup/recipient', {
      ...caAdmin,
      body: { publicKey: recipient.publicKey.export({ type: 'spki', format: 'pem' }) },
    });
    assert.equal(set.status, 200, set.text);
    const audited = await a.pool.query("SELECT actor, object FROM audit_log WHERE action = 'backup.recipient.set'");
    assert.deepEqual(audited.rows, [{ actor: 'user:boss', object: set.json.fingerprint }]);

    const made = await api.call('POST', '/admin/api/v1/backups', { ...operator, body: {} });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.recipient.fingerprint, set.json.fingerprint);
    operatorArchive = join(work, 'operator.cfbk');
    const download = await runTool('curl', [
      ...['-sS', '--fail', '--cacert', join(a.home, 'ca', 'root.pem'), '-H', `Cookie: ${operator.cookie}`, '-o', operatorArchive],
      `https://localhost:${a.adminPort}/admin/api/v1/backups/${made.json.name}`,
    ]);
    assert.equal(download.code, 0, download.stderr);

    const { env } = await emptyTarget();
    const guess = await a.cli(['backup', 'restore', operatorArchive, '--passphrase', '-'], { input: 'the operator chose it\n', env });
    assert.equal(guess.code, 2);
    assert.match(guess.stderr, /encrypted to the backup recipient key .*restore it with --key/);
    const otherKey = join(work, 'other.key');
    await writeFile(
      otherKey,
      generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    );
    const wrong = await a.cli(['backup', 'restore', operatorArchive, '--key', otherKey], { env });
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /not to the key given/);
  });

  it("restored with the recipient's private key, plus the key passphrase kept apart: the CMP client's old secret still enrolls", async () => {
    const { home, env } = await emptyTarget();
    const r = await a.cli(['backup', 'restore', operatorArchive, '--key', join(work, 'recipient.key'), '--key-passphrase', '-'], {
      input: `${RECIPIENT_KEY_PASSPHRASE}\n`,
      env,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /their passphrase, which is never in a backup: set CERTFLOW_KEY_PASSPHRASE .*keys\/passphrase/);
    assert.equal(existsSync(join(home, 'keys', 'passphrase')), false, 'the key passphrase did not travel in the backup');
    assert.equal(
      await readFile(join(home, 'keys', 'cmp-secrets.key'), 'utf8'),
      await readFile(join(a.home, 'keys', 'cmp-secrets.key'), 'utf8'),
      'the same secrets key',
    );

    // The restored installation runs with the passphrase file copied from the old host (docs: Backups).
    b = await createInstance({ CERTFLOW_KEY_PASSPHRASE: '' });
    await copyFile(join(a.home, 'keys', 'passphrase'), join(home, 'keys', 'passphrase'));
    const run = { ...env, CERTFLOW_HOME: home };
    await b.startWorker(run);
    await b.startServer(run);
    const peer: CmpPeer = { server: `127.0.0.1:${b.httpPort}`, dir: work, root: join(home, 'ca', 'root.pem') };
    const key = await newKey(peer, 'device-7');
    const ir = await opensslCmp(peer, [
      ...['-cmd', 'ir', '-ref', 'device-7', '-secret', 'pass:device seven secret', '-newkey', key],
      ...['-subject', '/CN=device-7', '-certout', 'device-7.pem', '-trusted', peer.root],
    ]);
    assert.equal(ir.code, 0, `the MAC client enrolls with its old secret: ${ir.stdout}${ir.stderr}`);
    const audit = await b.cli(['audit', 'verify'], { env: run });
    assert.equal(audit.code, 0, `the restored log verifies against the restored pinned key and outside checkpoints: ${audit.stderr}`);
  });
});
