/**
 * Issue 22 item 1: a CMP key update (kur) renews exactly the old certificate's names, only
 * for certificates issued through CMP at that alias (or aliases / profiles configured for
 * it), with the alias's profile and CA. `openssl cmp -cmd kur` is the attacker's client; the
 * certificates come over ACME (the attacker's own domain) or over CMP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { newKey } from '../helpers/cmp.ts';
import { serialOf, startSecurityStack, type Held, type SecurityStack } from '../helpers/security.ts';

const SECRET = 'device-secret-42';

describe('CMP kur scope', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let s: SecurityStack;

  before(async () => {
    s = await startSecurityStack({
      cmp: {
        aliases: [
          { name: 'other', profile: 'tls-client' },
          { name: 'renew', profile: 'tls-client', kurAliases: ['', 'renew'] },
        ],
      },
      acme: { aliases: [{ name: 'devices', profile: 'device' }] },
    });
    const r = await s.cf.cli(['cmp-client', 'add', '--ref', 'dev', '--secret', SECRET]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => s?.stop());

  let n = 0;
  /** `openssl cmp -cmd kur` signed with `held` (the certificate it updates), a new key, optional -subject / -sans. */
  async function kur(held: Held, opts: { subject?: string; sans?: string; alias?: string } = {}) {
    const out = `kur-${++n}.pem`;
    const r = await s.cmpAttempt(
      [
        '-cmd',
        'kur',
        '-cert',
        held.cert,
        '-key',
        held.key,
        '-newkey',
        await newKey(s.cmp, `kur-${n}`),
        ...(opts.subject ? ['-subject', opts.subject] : []),
        ...(opts.sans ? ['-sans', opts.sans] : []),
        '-certout',
        out,
      ],
      opts.alias,
    );
    return { ...r, certFile: join(s.cf.home, out) };
  }

  it('the issue’s attack: an ACME certificate’s kur with an extra SAN gets nothing for the victim', async () => {
    const acme = await s.acmeCertificate('acme-attacker', ['attacker.example.test']);
    const r = await kur(acme, { subject: '/CN=attacker.example.test', sans: 'attacker.example.test victim.example.test' });
    assert.notEqual(r.code, 0, r.out);
    assert.deepEqual(r.failInfo, ['signerNotTrusted'], r.text);
    // With clientAuth (ACME alias with the device profile), the same names only: not issued through CMP.
    const device = await s.acmeCertificate('acme-device', ['gadget.attacker.example.test'], 'devices');
    const same = await kur(device, { subject: '/CN=gadget.attacker.example.test', sans: 'gadget.attacker.example.test' });
    assert.deepEqual(same.failInfo, ['notAuthorized'], same.text);
    assert.match(same.text, /was issued over ACME; alias "\(default\)" updates certificates of CMP alias "\(default\)" only/);
    assert.equal(await s.issuedFor('victim.example.test'), 0);
    const { rows } = await s.cf.pool.query('SELECT count(*)::int AS n FROM certificates WHERE replaces IN ($1, $2)', [
      acme.serial,
      device.serial,
    ]);
    assert.equal(rows[0].n, 0, 'no renewal of the ACME certificates');
  });

  it('a CMP certificate’s kur keeps exactly its names: an extra SAN or another subject is badCertTemplate', async () => {
    const dev = await s.cmpCertificate('dev-k', '/CN=dev-k', { ref: 'dev', secret: SECRET, sans: 'dev-k.example.test' });
    const wider = await kur(dev, { sans: 'dev-k.example.test victim.example.test' });
    assert.deepEqual(wider.failInfo, ['badCertTemplate'], wider.text);
    assert.match(wider.text, /a key update must keep the subject and subjectAltName of certificate [0-9a-f]+/);
    const fewer = await kur(dev, { sans: 'other.example.test' });
    assert.deepEqual(fewer.failInfo, ['badCertTemplate'], fewer.text);
    const renamed = await kur(dev, { subject: '/CN=victim.example.test', sans: 'dev-k.example.test' });
    assert.deepEqual(renamed.failInfo, ['badCertTemplate'], renamed.text);
    assert.equal(await s.issuedFor('victim.example.test'), 0);
    // The same names (openssl takes them from the old certificate): a new certificate.
    const ok = await kur(dev);
    assert.equal(ok.code, 0, ok.out);
    assert.equal(ok.type, 'kup');
  });

  it("only certificates issued through the alias: a certificate of the default alias is not updated at 'other'", async () => {
    const dev = await s.cmpCertificate('dev-o', '/CN=dev-o', { ref: 'dev', secret: SECRET, sans: 'dev-o.example.test' });
    const r = await kur(dev, { alias: 'other' });
    assert.deepEqual(r.failInfo, ['notAuthorized'], r.text);
    assert.match(r.text, /was issued through CMP alias "\(default\)"; alias "other" updates certificates of CMP alias "other" only/);
    const { rows } = await s.cf.pool.query('SELECT count(*)::int AS n FROM certificates WHERE replaces = $1', [dev.serial]);
    assert.equal(rows[0].n, 0);
  });

  it("the alias's profile and CA apply: 'renew' (kurAliases) updates a default-alias certificate with its tls-client profile", async () => {
    const dev = await s.cmpCertificate('dev-r', '/CN=dev-r', { ref: 'dev', secret: SECRET, sans: 'dev-r.example.test' });
    const r = await kur(dev, { alias: 'renew' });
    assert.equal(r.code, 0, r.out);
    const serial = serialOf(await readFile(r.certFile, 'utf8'));
    const { rows } = await s.cf.pool.query('SELECT profile, replaces FROM certificates WHERE serial = $1', [serial]);
    assert.deepEqual(rows[0], { profile: 'tls-client', replaces: dev.serial });
  });
});
