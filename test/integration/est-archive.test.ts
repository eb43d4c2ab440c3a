/**
 * EST server-side key generation with key archival (RFC 7030 4.4, label option
 * archiveServerKeys): the key handed to the device is stored encrypted under the
 * key-archive key of the CA key store, and `certflow keys recover` gets it back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';

describe('EST serverkeygen with key archival', () => {
  let cf: TestInstance;
  let root: string;
  let base: string;
  const password = 'correct horse battery staple';

  async function serverkeygen(label: string, name: string): Promise<{ status: number; body: string; type: string }> {
    const pem = await opensslCsr(cf.home, name, { subj: `/CN=${name}` });
    const b64 = (await readFile(pem, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
    const out = join(cf.home, `${name}.out`);
    await writeFile(`${out}.data`, `${b64}\n`);
    const r = await runTool('curl', [
      '-sS',
      '--cacert',
      root,
      '-o',
      `${out}.body`,
      '-w',
      '%{http_code} %{content_type}',
      '-u',
      `archiver:${password}`,
      '--data-binary',
      `@${out}.data`,
      '-H',
      'Content-Type: application/pkcs10',
      `${base}${label ? `/${label}` : ''}/serverkeygen`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [status, ...type] = r.stdout.split(' ');
    return { status: Number(status), type: type.join(' '), body: await readFile(`${out}.body`, 'utf8') };
  }

  /** The PKCS#8 and the certificate's serial (as certflow stores it) of a multipart answer. */
  async function parse(r: { body: string; type: string }): Promise<{ pkcs8: Buffer; serial: string }> {
    const boundary = /boundary="?([^";]+)"?/.exec(r.type)?.[1];
    assert.ok(boundary, r.type);
    const parts = r.body
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((p) => {
        const [head, ...rest] = p.split('\r\n\r\n');
        return { head: head!, body: rest.join('\r\n\r\n').trim() };
      });
    const keyPart = parts.find((p) => /application\/pkcs8/.test(p.head))!;
    const certPart = parts.find((p) => /application\/pkcs7-mime/.test(p.head))!;
    const p7 = join(cf.home, `p7-${Math.random().toString(36).slice(2)}.der`);
    await writeFile(p7, Buffer.from(certPart.body, 'base64'));
    const printed = await runTool('openssl', ['pkcs7', '-inform', 'DER', '-in', p7, '-print_certs']);
    assert.equal(printed.code, 0, printed.stderr);
    const certFile = `${p7}.pem`;
    await writeFile(certFile, printed.stdout);
    const serialOut = await runTool('openssl', ['x509', '-in', certFile, '-noout', '-serial']);
    let serial = serialOut.stdout
      .trim()
      .replace(/^serial=/, '')
      .toLowerCase();
    if (serial.length % 2) serial = `0${serial}`;
    return { pkcs8: Buffer.from(keyPart.body, 'base64'), serial };
  }

  const spkiPem = (key: Parameters<typeof createPublicKey>[0]) => createPublicKey(key).export({ type: 'spki', format: 'pem' });

  /** What the first worker, whose configuration archives nothing, left: rows of archive_keys, key files. */
  let withoutArchivingLabel: { rows: number; keyFile: boolean };

  before(async () => {
    const configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-est-archive-${process.pid}.json`);
    await writeFile(configFile, JSON.stringify({ est: { labels: [{ name: 'archive', profile: 'device', archiveServerKeys: true }] } }));
    const plainConfig = `${configFile}.plain.json`;
    await writeFile(plainConfig, JSON.stringify({ est: { labels: [{ name: 'plain', profile: 'device' }] } }));
    cf = await createInstance({ CERTFLOW_CONFIG: configFile });
    const plain = await cf.startWorker({ CERTFLOW_CONFIG: plainConfig });
    await plain.stop();
    withoutArchivingLabel = {
      rows: (await cf.pool.query('SELECT count(*)::int AS n FROM archive_keys')).rows[0].n,
      keyFile: existsSync(join(cf.home, 'keys', 'certflow-archive.key.pem')),
    };
    await cf.startWorker();
    await cf.startServer();
    root = join(cf.home, 'ca', 'root.pem');
    base = `https://localhost:${cf.httpsPort}/.well-known/est`;
    const r = await cf.cli(['est-client', 'add', '--name', 'archiver', '--password', password]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => cf?.cleanup());

  it('the worker created the key-archive key once a label archives keys; without it, archiving labels answer 503', async () => {
    assert.deepEqual(withoutArchivingLabel, { rows: 0, keyFile: false }, 'a configuration that archives nothing makes no key-archive key');
    assert.ok(existsSync(join(cf.home, 'keys', 'certflow-archive.key.pem')));
    const { rows } = await cf.pool.query('SELECT key_id, key_backend, spki FROM archive_keys');
    assert.equal(rows.length, 1);
    assert.equal(rows[0].key_id, 'certflow-archive');
    assert.equal(createPublicKey({ key: rows[0].spki, format: 'der', type: 'spki' }).asymmetricKeyDetails?.modulusLength, 3072);
    await cf.pool.query('DELETE FROM archive_keys');
    try {
      const r = await serverkeygen('archive', 'no-archive-key');
      assert.equal(r.status, 503, r.body);
      assert.doesNotMatch(r.body, /PRIVATE KEY|pkcs8/);
    } finally {
      await cf.pool.query('INSERT INTO archive_keys (key_id, key_backend, spki) VALUES ($1, $2, $3)', [
        rows[0].key_id,
        rows[0].key_backend,
        rows[0].spki,
      ]);
    }
    assert.equal((await cf.pool.query('SELECT count(*)::int AS n FROM archived_keys')).rows[0].n, 0);
  });

  it('archives the key encrypted, and `certflow keys recover` returns the same key', async () => {
    const r = await serverkeygen('archive', 'archived-device');
    assert.equal(r.status, 200, r.body);
    const { pkcs8, serial } = await parse(r);
    const { rows } = await cf.pool.query('SELECT * FROM archived_keys WHERE serial = $1', [serial]);
    assert.equal(rows.length, 1, `archived row for ${serial}`);
    const row = rows[0];
    assert.equal(row.key_id, 'certflow-archive');
    assert.equal(row.iv.length, 12);
    assert.equal(row.tag.length, 16);
    assert.equal(row.wrapped_key.length, 384);
    assert.ok(!Buffer.from(row.ciphertext).equals(pkcs8), 'no plaintext in the database');
    assert.equal(Buffer.from(row.ciphertext).indexOf(pkcs8.subarray(-32)), -1);
    const { rows: req } = await cf.pool.query('SELECT kind FROM issuance_requests WHERE id = $1', [row.request_id]);
    assert.equal(req[0]?.kind, 'serverkeygen');

    const out = join(cf.home, 'recovered.key');
    const rec = await cf.cli(['keys', 'recover', serial, '--out', out]);
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(rec.stderr + rec.stdout, new RegExp(`recovered .* ${serial}`));
    assert.equal((await stat(out)).mode & 0o777, 0o600);
    const recovered = createPrivateKey(await readFile(out));
    assert.equal(spkiPem(recovered), spkiPem(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })));
    const audited = await cf.pool.query("SELECT actor FROM audit_log WHERE action = 'key.recover' AND object = $1", [serial]);
    assert.equal(audited.rows[0]?.actor, 'operator');

    const unknown = await cf.cli(['keys', 'recover', '0badc0de', '--out', join(cf.home, 'nope.key')]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no certificate with serial 0badc0de/);
  });

  it('the default label (archiveServerKeys false) stores nothing', async () => {
    const before = (await cf.pool.query('SELECT count(*)::int AS n FROM archived_keys')).rows[0].n;
    const r = await serverkeygen('', 'unarchived-device');
    assert.equal(r.status, 200, r.body);
    const { serial } = await parse(r);
    assert.equal((await cf.pool.query('SELECT count(*)::int AS n FROM archived_keys')).rows[0].n, before);
    const rec = await cf.cli(['keys', 'recover', serial, '--out', join(cf.home, 'none.key')]);
    assert.equal(rec.code, 2);
    assert.match(rec.stderr, /has no archived key/);
  });
});
