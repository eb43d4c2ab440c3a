/**
 * `certflow est-client ...` as an operator runs it: a subprocess against the instance's
 * database (no worker, server or Temporal needed). Checks output, exit codes, the audit
 * trail, that the stored hash authenticates through authenticateBasic, and that the
 * password itself is nowhere in the database.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { authenticateBasic } from '../../src/est/auth.ts';
import { verifyPassword } from '../../src/est/password.ts';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface ListedClient {
  name: string;
  profile: string | null;
  labels: string[];
  requireApproval: boolean;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
}

describe('certflow est-client', () => {
  let cf: TestInstance;
  const password = 'router password 42';
  const stdinPassword = 'from stdin: not in ps';

  const storedHash = async (name: string): Promise<string | undefined> => {
    const { rows } = await cf.pool.query<{ password_hash: string }>('SELECT password_hash FROM est_clients WHERE name = $1', [name]);
    return rows[0]?.password_hash;
  };
  const count = async () => Number((await cf.pool.query<{ n: string }>('SELECT count(*) AS n FROM est_clients')).rows[0]!.n);
  const listJson = async (): Promise<ListedClient[]> => {
    const r = await cf.cli(['--json', 'est-client', 'list']);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ListedClient[];
  };

  before(async () => {
    cf = await createInstance();
    // Two labels besides the built-in '' (/.well-known/est/).
    const config = {
      est: {
        labels: [
          { name: 'iot', profile: 'device' },
          { name: 'servers', profile: 'tls-server', requireApproval: true },
        ],
      },
    };
    await writeFile(join(cf.home, 'config.json'), JSON.stringify(config));
  });
  after(async () => cf?.cleanup());

  it('adds a client with profile, labels (the root label too), approval and a notification address', async () => {
    const r = await cf.cli([
      'est-client',
      'add',
      '--name',
      'router1',
      '--password',
      password,
      '--profile',
      'device',
      '--label',
      'iot',
      '--label',
      '',
      '--require-approval',
      '--email',
      'router-owner@example.test',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `certflow: EST client "router1" added (profile: device, labels: iot,'', approval: always)\n`);
    const [row] = await listJson();
    assert.deepEqual(
      { ...row, createdAt: undefined, updatedAt: undefined },
      {
        name: 'router1',
        profile: 'device',
        labels: ['iot', ''],
        requireApproval: true,
        enabled: true,
        email: 'router-owner@example.test',
        createdAt: undefined,
        updatedAt: undefined,
      },
    );
  });

  it('reads the password from stdin with --password - (one trailing newline dropped)', async () => {
    const r = await cf.cli(['est-client', 'add', '--name', 'plain', '--password', '-'], { input: `${stdinPassword}\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /EST client "plain" added \(profile: the label's, labels: \(all\), approval: as the label says\)/);
    assert.equal(await verifyPassword(stdinPassword, (await storedHash('plain'))!), true);
  });

  it('never stores the password: only an scrypt hash, which authenticateBasic accepts', async () => {
    const { rows } = await cf.pool.query<{ name: string; password_hash: string }>('SELECT name, password_hash FROM est_clients');
    for (const row of rows) {
      assert.match(row.password_hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
      assert.ok(!row.password_hash.includes(password) && !row.password_hash.includes(stdinPassword));
    }
    const { rows: audit } = await cf.pool.query<{ text: string }>('SELECT audit_log::text AS text FROM audit_log');
    assert.ok(audit.length > 0);
    for (const entry of audit) assert.ok(!entry.text.includes(password) && !entry.text.includes(stdinPassword), entry.text);
    assert.equal((await authenticateBasic(cf.pool, basic('router1', password))).name, 'router1');
    assert.equal((await authenticateBasic(cf.pool, basic('plain', stdinPassword))).name, 'plain');
  });

  it('lists clients as a table, without hashes', async () => {
    const r = await cf.cli(['est-client', 'list']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+ENABLED\s+PROFILE\s+LABELS\s+REQUIREAPPROVAL\s+EMAIL\s+CREATEDAT\s+UPDATEDAT$/);
    assert.match(lines[1]!, /^plain\s+true\s+\(label\)\s+\(all\)\s+false\s/);
    assert.match(lines[2]!, /^router1\s+true\s+device\s+iot,''\s+true\s/);
    assert.ok(!r.stdout.includes('scrypt'));
    const json = await cf.cli(['--json', 'est-client', 'list']);
    assert.ok(!json.stdout.includes('scrypt') && !json.stdout.includes('passwordHash'));
  });

  it('prints the new client as JSON with --json', async () => {
    const r = await cf.cli(['--json', 'est-client', 'add', '--name', 'json-client', '--password', password, '--label', 'servers']);
    assert.equal(r.code, 0, r.stderr);
    const row = JSON.parse(r.stdout) as ListedClient & { passwordHash?: string };
    assert.equal(row.name, 'json-client');
    assert.deepEqual(row.labels, ['servers']);
    assert.equal(row.passwordHash, undefined);
  });

  it('refuses bad input with exit code 2 and stores nothing', async () => {
    const before = await count();
    const cases: Array<[string[], RegExp, string?]> = [
      [['--name', 'router1', '--password', password], /error: EST client "router1" exists/],
      [['--name', 'new1', '--password', password, '--profile', 'nope'], /error: unknown certificate profile "nope" \(configured: .*device/],
      [['--name', 'new1', '--password', password, '--label', 'nope'], /error: unknown EST label "nope" \(configured: '',iot,servers\)/],
      [['--name', 'new1', '--password', 'short'], /error: the password must have at least 12 characters \(it has 5\)/],
      [['--name', 'new1', '--password', '-'], /error: the password must have at least 12 characters/, 'short\n'],
      [['--name', 'new1', '--password', '-'], /error: the password must not contain control characters/, 'two\nlines of password\n'],
      [['--name', 'a:b', '--password', password], /error: EST client name "a:b" must be/],
      [['--name', 'new1', '--password', password, '--email', 'not an address'], /error: "not an address" is not an e-mail address/],
      [['--name', 'new1'], /required option '--password <password>' not specified/],
    ];
    for (const [args, message, input] of cases) {
      const r = await cf.cli(['est-client', 'add', ...args], { input });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    assert.equal(await count(), before);
  });

  it('disables and enables a client', async () => {
    const r = await cf.cli(['est-client', 'disable', 'router1']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'certflow: EST client "router1" disabled\n');
    assert.equal((await listJson()).find((c) => c.name === 'router1')!.enabled, false);
    await assert.rejects(authenticateBasic(cf.pool, basic('router1', password)), /EST client "router1" is disabled/);
    const e = await cf.cli(['est-client', 'enable', 'router1']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stderr, 'certflow: EST client "router1" enabled\n');
    assert.equal((await authenticateBasic(cf.pool, basic('router1', password))).enabled, true);
  });

  it('replaces a password (argument or stdin); the old one stops working', async () => {
    const newPassword = 'a brand new password';
    const r = await cf.cli(['est-client', 'passwd', 'router1', '--password', newPassword]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'certflow: EST client "router1" has a new password\n');
    await assert.rejects(authenticateBasic(cf.pool, basic('router1', password)), /wrong user name or password/);
    assert.equal((await authenticateBasic(cf.pool, basic('router1', newPassword))).name, 'router1');

    const viaStdin = 'yet another password';
    const s = await cf.cli(['est-client', 'passwd', 'router1', '--password', '-'], { input: `${viaStdin}\r\n` });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(await verifyPassword(viaStdin, (await storedHash('router1'))!), true);

    const weak = await cf.cli(['est-client', 'passwd', 'router1', '--password', 'tooshort']);
    assert.equal(weak.code, 2);
    assert.match(weak.stderr, /at least 12 characters/);
    assert.equal(await verifyPassword(viaStdin, (await storedHash('router1'))!), true, 'a refused passwd changes nothing');
  });

  it('removes a client; unknown names are exit code 2', async () => {
    const r = await cf.cli(['est-client', 'remove', 'json-client']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'certflow: EST client "json-client" removed\n');
    assert.equal(await storedHash('json-client'), undefined);
    for (const args of [
      ['remove', 'json-client'],
      ['disable', 'ghost'],
      ['enable', 'ghost'],
      ['passwd', 'ghost', '--password', password],
    ]) {
      const u = await cf.cli(['est-client', ...args]);
      assert.equal(u.code, 2, `${args.join(' ')}: ${u.stderr}`);
      assert.match(u.stderr, /error: no EST client named "(json-client|ghost)" \(see `certflow est-client list`\)/);
    }
  });

  it('audits every change as the operator, in order', async () => {
    const { rows } = await cf.pool.query<{ actor: string; action: string; object: string }>(
      "SELECT actor, action, object FROM audit_log WHERE action LIKE 'estClient.%' ORDER BY id",
    );
    assert.deepEqual(
      rows.map((r) => `${r.actor} ${r.action} ${r.object}`),
      [
        'operator estClient.add router1',
        'operator estClient.add plain',
        'operator estClient.add json-client',
        'operator estClient.disable router1',
        'operator estClient.enable router1',
        'operator estClient.passwd router1',
        'operator estClient.passwd router1',
        'operator estClient.remove json-client',
      ],
    );
  });
});
