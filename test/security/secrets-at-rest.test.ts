/**
 * Attack (issue 16, item 8): read secrets out of the database. With the application's
 * database login (psql), an attacker read the ACME EAB MAC keys and the nonce HMAC key in
 * clear: with an unused EAB key they create accounts on a directory that requires EAB.
 *
 * Now both are stored sealed under the secrets key (which lives outside the database, like
 * the CMP secrets'): no row holds a key in clear, and a key written in clear by an older
 * certflow is sealed at the next server start — after which it still works for its owner.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import acme from 'acme-client';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import { trustRoot } from '../helpers/acme.ts';

describe('attack: reading ACME secrets out of the database', () => {
  let cf: TestInstance;
  let server: Awaited<ReturnType<TestInstance['startServer']>>;

  /** psql with the application's own login: one row per line, fields separated by "|". */
  async function appSql(sql: string): Promise<string[]> {
    const r = await runTool('psql', [cf.env.DATABASE_URL!, '-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim().split('\n').filter(Boolean);
  }

  const directory = () => `https://localhost:${cf.httpsPort}/acme/eab/directory`;

  async function eabAccount(eab: { kid: string; hmacKey: string }) {
    const client = new acme.Client({
      directoryUrl: directory(),
      accountKey: await acme.crypto.createPrivateEcdsaKey(),
      externalAccountBinding: eab,
      backoffAttempts: 1,
    });
    return client.createAccount({ termsOfServiceAgreed: true });
  }

  before(async () => {
    cf = await createInstance({ CERTFLOW_CONFIG: '' });
    await writeFile(join(cf.home, 'config.json'), JSON.stringify({ acme: { aliases: [{ name: 'eab', eabRequired: true }] } }));
    await cf.startWorker();
    server = await cf.startServer();
    trustRoot(await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8'));
  });
  after(async () => cf?.cleanup());

  it('an EAB MAC key from `certflow eab create` is nowhere in the database in clear, and works for its holder', async () => {
    const made = await cf.cli(['--json', 'eab', 'create', '--alias', 'eab']);
    assert.equal(made.code, 0, made.stderr);
    const eab = JSON.parse(made.stdout) as { kid: string; hmacKey: string };
    const key = Buffer.from(eab.hmacKey, 'base64url');
    const rows = await appSql(`SELECT row_to_json(k)::text FROM acme_eab_keys k WHERE kid = '${eab.kid}'`);
    assert.equal(rows.length, 1);
    for (const form of [key.toString('hex'), key.toString('base64'), eab.hmacKey]) {
      assert.ok(!rows[0]!.includes(form), `the MAC key is in the row in clear: ${rows[0]}`);
    }
    assert.match(rows[0]!, /"hmac_key":null/);
    assert.match(rows[0]!, /"hmac_key_enc":"v1\.[0-9a-f]{16}\./);
    const account = await eabAccount(eab);
    assert.equal(account.status, 'valid');
  });

  it('the nonce HMAC key is stored sealed, not in clear', async () => {
    const root = join(cf.home, 'ca', 'root.pem');
    const dir = JSON.parse((await runTool('curl', ['-sS', '--cacert', root, directory()])).stdout) as { newNonce: string };
    const nonce = await runTool('curl', ['-sS', '-I', '--cacert', root, dir.newNonce]);
    assert.match(nonce.stdout, /replay-nonce: [\w-]{43}/i);
    const rows = await appSql('SELECT row_to_json(k)::text FROM acme_nonce_keys k');
    assert.equal(rows.length, 1, 'the server made the shared nonce key');
    const row = JSON.parse(rows[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(row).sort(), ['created_at', 'hmac_key_enc', 'id']);
    assert.match(String(row.hmac_key_enc), /^v1\.[0-9a-f]{16}\.[\w-]+\.[\w-]+\.[\w-]{43}$/, '32 sealed bytes');
  });

  it('an EAB key an older certflow stored in clear is sealed at the next server start, and still works', async () => {
    const kid = randomBytes(16).toString('base64url');
    const key = randomBytes(32);
    // What a row written before migration 053 looks like (the owner writes it here).
    await cf.pool.query("INSERT INTO acme_eab_keys (kid, alias, hmac_key) VALUES ($1, 'eab', $2)", [kid, key]);
    await server.stop();
    server = await cf.startServer();
    const rows = await appSql(`SELECT row_to_json(k)::text FROM acme_eab_keys k WHERE kid = '${kid}'`);
    assert.ok(!rows[0]!.includes(key.toString('hex')), `sealed at start: ${rows[0]}`);
    assert.match(rows[0]!, /"hmac_key":null/);
    assert.match(rows[0]!, /"hmac_key_enc":"v1\./);
    const account = await eabAccount({ kid, hmacKey: key.toString('base64url') });
    assert.equal(account.status, 'valid');
  });
});
