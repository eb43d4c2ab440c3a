/**
 * Issue 22 item 3: EST simplereenroll renews only certificates issued through EST for the
 * same label (or labels configured as equivalent), and the renewal takes the approval and
 * profile of the label and of the HTTP Basic client that co-authenticates — never the
 * shortcut around an approval or a domain validation that another label or protocol needed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { firstCert } from '../helpers/est.ts';
import { serialOf, startSecurityStack, type Held, type SecurityStack } from '../helpers/security.ts';

const PASSWORD = 'device maker password';

describe('EST simplereenroll scope', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let s: SecurityStack;

  before(async () => {
    s = await startSecurityStack({
      est: {
        labels: [
          { name: 'gated', profile: 'device', requireApproval: true },
          { name: 'open', profile: 'device' },
          { name: 'iot', profile: 'device', allowCertAuth: false },
          { name: 'legacy', profile: 'device', reenrollLabels: ['open', 'legacy'] },
        ],
      },
      acme: { aliases: [{ name: 'devices', profile: 'device' }] },
    });
    for (const [name, extra] of [
      ['maker', []],
      ['gatekeeper', ['--label', 'iot', '--require-approval']],
      ['clientsonly', ['--label', 'iot', '--profile', 'tls-client']],
    ] as const) {
      const r = await s.cf.cli(['est-client', 'add', '--name', name, '--password', PASSWORD, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => s?.stop());

  async function reenroll(path: string, held: Held, subj: string, san?: string, user?: string) {
    const data = await s.est.csrBody(`renew-${Date.now()}`, subj, { san });
    const r = await s.est.curl(path, { data, cert: [held.cert, held.key], user });
    return { status: r.status, text: r.body.toString(), body: r.body };
  }

  it("a certificate that needed approval on 'gated' is not renewed without approval through 'open'", async () => {
    const data = await s.est.csrBody('gated-1', '/CN=gated-1', { san: 'DNS:gated-1.example.test' });
    const ask = () => s.est.curl('/gated/simpleenroll', { data, user: `maker:${PASSWORD}` });
    assert.equal((await ask()).status, 202);
    const pending = JSON.parse((await s.cf.cli(['--json', 'approvals', 'list'])).stdout) as Array<{ id: string; subject: string }>;
    const mine = pending.find((p) => p.subject === 'CN=gated-1')!;
    assert.equal((await s.cf.cli(['approvals', 'approve', mine.id])).code, 0);
    let issued = await ask();
    for (let i = 0; issued.status === 202 && i < 40; i++) issued = (await sleep(250), await ask());
    assert.equal(issued.status, 200, issued.body.toString());
    const cert = await s.hold('gated-1', firstCert(await s.est.pkcs7Certs(issued.body)));
    const before = await s.issuedFor('gated-1');

    const elsewhere = await reenroll('/open/simplereenroll', cert, '/CN=gated-1', 'DNS:gated-1.example.test');
    assert.equal(elsewhere.status, 403, elsewhere.text);
    assert.match(
      elsewhere.text,
      /certificate [0-9a-f]+ was issued through EST label "gated"; label "open" renews certificates of EST label "open" only/,
    );
    const unlabelled = await reenroll('/simplereenroll', cert, '/CN=gated-1', 'DNS:gated-1.example.test');
    assert.equal(unlabelled.status, 403, unlabelled.text);
    assert.equal(await s.issuedFor('gated-1'), before, 'no certificate without approval');

    // Its own label: the renewal waits for approval like the first enrollment did.
    const own = await reenroll('/gated/simplereenroll', cert, '/CN=gated-1', 'DNS:gated-1.example.test');
    assert.equal(own.status, 202, own.text);
  });

  it('an ACME certificate is not renewed over EST (no domain validation, no CAA): 403', async () => {
    const acme = await s.acmeCertificate('acme-dev', ['renew.attacker.example.test'], 'devices');
    const before = await s.issuedFor('renew.attacker.example.test');
    const r = await reenroll('/simplereenroll', acme, '/CN=renew.attacker.example.test', 'DNS:renew.attacker.example.test');
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /was issued over ACME; label "\(default\)" renews certificates of EST label "\(default\)" only/);
    assert.equal(await s.issuedFor('renew.attacker.example.test'), before);
  });

  it('the Basic client that co-authenticates brings its approval and its profile', async () => {
    const device = await s.estCertificate('iot-1', '/iot/simpleenroll', '/CN=iot-1', {
      user: `maker:${PASSWORD}`,
      san: 'DNS:iot-1.example.test',
    });
    const gated = await reenroll('/iot/simplereenroll', device, '/CN=iot-1', 'DNS:iot-1.example.test', `gatekeeper:${PASSWORD}`);
    assert.equal(gated.status, 202, `the client requires approval: ${gated.text}`);
    assert.match(gated.text, /waits for approval/);

    const profiled = await reenroll('/iot/simplereenroll', device, '/CN=iot-1', 'DNS:iot-1.example.test', `clientsonly:${PASSWORD}`);
    assert.equal(profiled.status, 200, profiled.text);
    const renewed = firstCert(await s.est.pkcs7Certs(profiled.body));
    const { rows } = await s.cf.pool.query<{ profile: string; replaces: string }>(
      'SELECT profile, replaces FROM certificates WHERE serial = $1',
      [serialOf(renewed)],
    );
    assert.deepEqual(rows[0], { profile: 'tls-client', replaces: device.serial }, "the client's profile, not the old certificate's");
    assert.doesNotMatch(new X509Certificate(renewed).toLegacyObject().ext_key_usage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.1/);
  });

  it('labels configured as equivalent renew each other’s certificates; names stay exactly the same', async () => {
    const device = await s.estCertificate('open-1', '/open/simpleenroll', '/CN=open-1', {
      user: `maker:${PASSWORD}`,
      san: 'DNS:open-1.example.test',
    });
    const wider = await reenroll('/legacy/simplereenroll', device, '/CN=open-1', 'DNS:open-1.example.test,DNS:victim.example.test');
    assert.equal(wider.status, 400, wider.text);
    assert.match(wider.text, /must keep the subject and subjectAltName/);
    const r = await reenroll('/legacy/simplereenroll', device, '/CN=open-1', 'DNS:open-1.example.test');
    assert.equal(r.status, 200, r.text);
    assert.equal(await s.issuedFor('victim.example.test'), 0);
  });
});
