/**
 * Issue 16 item 2, CMP: a signature-protected ir/cr/p10cr is accepted only from a
 * certificate meant to authenticate there. With `openssl cmp` as the attacker's client and
 * certificates obtained the ordinary way (over ACME for the attacker's own domain, or as a
 * device over CMP): the certificate must carry clientAuth and be unrevoked and valid; an
 * unregistered certificate enrolls only where the alias allows certificate enrollment
 * (`allowCertificateEnrollment`, false by default), only when it is of a profile the alias
 * accepts and not issued over ACME, and only for its own subject and SANs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { newKey } from '../helpers/cmp.ts';
import { startSecurityStack, type Held, type SecurityStack } from '../helpers/security.ts';

const SECRET = 'device-secret-42';

describe('CMP client-certificate authentication', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let s: SecurityStack;

  before(async () => {
    s = await startSecurityStack({
      cmp: { aliases: [{ name: 'devices', allowCertificateEnrollment: true }] },
      acme: { aliases: [{ name: 'devices', profile: 'device' }] },
    });
    const r = await s.cf.cli(['cmp-client', 'add', '--ref', 'dev', '--secret', SECRET]);
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => s?.stop());

  /** `openssl cmp -cmd <cmd>` signed with `held`, for a new key and `subject` / `sans`. */
  async function signed(cmd: 'ir' | 'cr', held: Held, subject: string, sans: string | undefined, alias?: string) {
    const key = await newKey(s.cmp, `new-${Date.now()}`);
    return s.cmpAttempt(
      [
        '-cmd',
        cmd,
        '-cert',
        held.cert,
        '-key',
        held.key,
        '-newkey',
        key,
        '-subject',
        subject,
        ...(sans ? ['-sans', sans] : ['-san_nodefault']),
        '-certout',
        `out-${Date.now()}.pem`,
      ],
      alias,
    );
  }

  it('an ACME certificate (serverAuth only) does not sign requests: signerNotTrusted, no certificate for the victim', async () => {
    const acme = await s.acmeCertificate('acme-attacker', ['attacker.example.test']);
    for (const [cmd, alias] of [
      ['ir', undefined],
      ['cr', 'devices'],
    ] as const) {
      const r = await signed(cmd, acme, '/CN=victim.example.test', 'victim.example.test', alias);
      assert.notEqual(r.code, 0, r.out);
      assert.equal(r.type, 'error', r.out);
      assert.deepEqual(r.failInfo, ['signerNotTrusted'], r.text);
      assert.match(r.text, /does not carry the extended key usage clientAuth/);
    }
    assert.equal(await s.issuedFor('victim.example.test'), 0);
  });

  it('allowCertificateEnrollment defaults to false: a device certificate of this CA does not enroll at the default alias', async () => {
    const device = await s.cmpCertificate('dev-a', '/CN=dev-a', { ref: 'dev', secret: SECRET, sans: 'dev-a.example.test' });
    const before = await s.issuedFor('dev-a');
    const r = await signed('cr', device, '/CN=dev-a', 'dev-a.example.test');
    assert.deepEqual(r.failInfo, ['notAuthorized'], r.text);
    assert.match(r.text, /alias "\(default\)" issues certificates only to registered clients/);
    assert.equal(await s.issuedFor('dev-a'), before);
  });

  it('where certificate enrollment is allowed: the certificate’s own subject and SANs only', async () => {
    const device = await s.cmpCertificate('dev-b', '/CN=dev-b', { ref: 'dev', secret: SECRET, sans: 'dev-b.example.test' });
    for (const [subject, sans] of [
      ['/CN=victim.example.test', 'victim.example.test'],
      ['/CN=dev-b', 'dev-b.example.test victim.example.test'],
      ['/CN=dev-b/O=Victim Corp', 'dev-b.example.test'],
    ] as const) {
      const r = await signed('cr', device, subject, sans, 'devices');
      assert.notEqual(r.code, 0, r.out);
      assert.deepEqual(r.failInfo, ['notAuthorized'], `${subject} ${sans}: ${r.text}`);
      assert.match(r.text, /may request only its own subject "CN=dev-b" and subjectAltName/);
    }
    assert.equal(await s.issuedFor('victim'), 0);
    const own = await signed('cr', device, '/CN=dev-b', 'dev-b.example.test', 'devices');
    assert.equal(own.code, 0, own.out);
    assert.equal(own.type, 'cp');
  });

  it('an ACME certificate with clientAuth, for its own names, does not enroll: notAuthorized (issued over ACME)', async () => {
    const acme = await s.acmeCertificate('acme-device', ['gadget.attacker.example.test'], 'devices');
    const before = await s.issuedFor('gadget.attacker.example.test');
    const r = await signed('cr', acme, '/CN=gadget.attacker.example.test', 'gadget.attacker.example.test', 'devices');
    assert.deepEqual(r.failInfo, ['notAuthorized'], r.text);
    assert.match(r.text, /was issued over ACME, which alias "devices" does not accept/);
    assert.equal(await s.issuedFor('gadget.attacker.example.test'), before);
  });

  it('a certificate on hold or revoked does not sign: signerNotTrusted', async () => {
    const device = await s.cmpCertificate('dev-c', '/CN=dev-c', { ref: 'dev', secret: SECRET });
    assert.equal((await s.cf.cli(['cert', 'hold', device.serial])).code, 0);
    const held = await signed('cr', device, '/CN=dev-c', undefined, 'devices');
    assert.deepEqual(held.failInfo, ['signerNotTrusted'], held.text);
    assert.match(held.text, /is on hold/);
    assert.equal((await s.cf.cli(['cert', 'revoke', device.serial])).code, 0);
    const revoked = await signed('cr', device, '/CN=dev-c', undefined, 'devices');
    assert.deepEqual(revoked.failInfo, ['signerNotTrusted'], revoked.text);
    assert.match(revoked.text, /is revoked/);
  });
});
