/**
 * Issue 16 item 2, EST: a TLS client certificate authenticates simpleenroll and serverkeygen
 * only when it is meant for it — the chain verifies in the TLS handshake (for client
 * authentication), it is a certificate of a profile the label accepts, not issued over ACME,
 * unrevoked, not on hold — and then it buys a certificate for its own subject and SANs only.
 * The attacker holds certificates obtained the ordinary way: over ACME for a domain of their
 * own (acme-client, http-01), or as a device over EST.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { startSecurityStack, type Held, type SecurityStack } from '../helpers/security.ts';

const PASSWORD = 'device maker password';
const MAKER = `maker:${PASSWORD}`;
const CLIENTS = `clients-only:${PASSWORD}`;

describe('EST client-certificate authentication', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let s: SecurityStack;

  before(async () => {
    s = await startSecurityStack({
      est: { labels: [{ name: 'clients', profile: 'tls-client', allowCertAuth: false, serverKeygen: false }] },
      acme: { aliases: [{ name: 'devices', profile: 'device' }] },
    });
    for (const [name, extra] of [
      ['maker', []],
      ['clients-only', ['--label', 'clients']],
    ] as const) {
      const r = await s.cf.cli(['est-client', 'add', '--name', name, '--password', PASSWORD, ...extra]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => s?.stop());

  /** simpleenroll / serverkeygen with a certificate as the TLS client certificate, for a CSR of `subj` and `san`. */
  async function attempt(op: 'simpleenroll' | 'serverkeygen', held: Held, subj: string, san?: string, label = '') {
    const data = await s.est.csrBody(`try-${Date.now()}`, subj, { san });
    const r = await s.est.curl(`${label ? `/${label}` : ''}/${op}`, { data, cert: [held.cert, held.key] });
    return { status: r.status, text: r.body.toString() };
  }

  it('an ACME certificate (serverAuth) does not authenticate: 401, no certificate for the victim', async () => {
    const acme = await s.acmeCertificate('acme-attacker', ['attacker.example.test']);
    for (const op of ['simpleenroll', 'serverkeygen'] as const) {
      const r = await attempt(op, acme, '/CN=victim.example.test', 'DNS:victim.example.test');
      assert.equal(r.status, 401, `${op}: ${r.status} ${r.text}`);
      assert.match(r.text, /did not verify for TLS client authentication/);
    }
    assert.equal(await s.issuedFor('victim.example.test'), 0);
  });

  it('an ACME certificate with clientAuth (ACME alias with the device profile), even for its own names: 403', async () => {
    const acme = await s.acmeCertificate('acme-device', ['gadget.attacker.example.test'], 'devices');
    const before = await s.issuedFor('gadget.attacker.example.test');
    const r = await attempt('simpleenroll', acme, '/CN=gadget.attacker.example.test', 'DNS:gadget.attacker.example.test');
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /was issued over ACME, which label "\(default\)" does not accept/);
    assert.equal(await s.issuedFor('gadget.attacker.example.test'), before, 'no new certificate');
  });

  it('an EST device certificate asks for its own subject and SANs only: anything else is 403', async () => {
    const device = await s.estCertificate('device-a', '/simpleenroll', '/CN=device-a', { user: MAKER, san: 'DNS:device-a.example.test' });
    const cases: Array<[string, string | undefined]> = [
      ['/CN=victim.example.test', 'DNS:victim.example.test'],
      ['/CN=device-a', 'DNS:device-a.example.test,DNS:victim.example.test'],
      ['/CN=device-a', undefined],
      ['/CN=device-a/O=Victim Corp', 'DNS:device-a.example.test'],
    ];
    for (const [subj, san] of cases) {
      for (const op of ['simpleenroll', 'serverkeygen'] as const) {
        const r = await attempt(op, device, subj, san);
        assert.equal(r.status, 403, `${op} ${subj} ${san}: ${r.status} ${r.text}`);
        assert.match(r.text, /may request only its own subject "CN=device-a" and subjectAltName/);
      }
    }
    assert.equal(await s.issuedFor('victim'), 0);
    // Its own names: a new certificate (a new key), which is what certificate authentication is for.
    const same = await attempt('simpleenroll', device, '/CN=device-a', 'DNS:device-a.example.test');
    assert.equal(same.status, 200, same.text);
  });

  it("a certificate of a profile the label does not accept (tls-client from label 'clients'): 403", async () => {
    const other = await s.estCertificate('client-b', '/clients/simpleenroll', '/CN=client-b', {
      user: CLIENTS,
      san: 'DNS:client-b.example.test',
    });
    const r = await attempt('simpleenroll', other, '/CN=client-b', 'DNS:client-b.example.test');
    assert.equal(r.status, 403, r.text);
    assert.match(r.text, /of profile "tls-client", which label "\(default\)" does not accept/);
    // Where certificate authentication is off, only HTTP Basic opens the label.
    const off = await attempt('simpleenroll', other, '/CN=client-b', 'DNS:client-b.example.test', 'clients');
    assert.equal(off.status, 401, off.text);
  });

  it('a certificate on hold or revoked does not authenticate (the read model decides): 403', async () => {
    const device = await s.estCertificate('device-c', '/simpleenroll', '/CN=device-c', { user: MAKER });
    assert.equal((await s.cf.cli(['cert', 'hold', device.serial])).code, 0);
    const held = await attempt('simpleenroll', device, '/CN=device-c');
    assert.equal(held.status, 403, held.text);
    assert.match(held.text, /is on hold/);
    assert.equal((await s.cf.cli(['cert', 'revoke', device.serial, '--reason', 'keyCompromise'])).code, 0);
    const revoked = await attempt('simpleenroll', device, '/CN=device-c');
    assert.equal(revoked.status, 403, revoked.text);
    assert.match(revoked.text, /is revoked/);
  });
});
