/**
 * Issue 22 item 2 (and 16 item 2, RAs): a CMP client registered by certificate
 * (`cmp-client add --cert ra.pem --alias factory --ra`) is held to its aliases and to its
 * pinned certificate's status — expired, on hold or revoked is refused — and an RA (by
 * certificate or shared secret) revokes only certificates issued through its own aliases.
 * `openssl cmp` is the RA's client; raVerified proof of possession (-popo 0) as RAs send it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { opensslCsr } from '../helpers/certflow.ts';
import { newKey } from '../helpers/cmp.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { startSecurityStack, type Held, type SecurityStack } from '../helpers/security.ts';

const SECRET = 'device-secret-42';
const RA_SECRET = 'ra-shared-secret-1';
const PASSWORD = 'device maker password';

describe('CMP registration authorities', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let s: SecurityStack;
  let ra: Held;

  before(async () => {
    s = await startSecurityStack({
      profiles: [
        { name: 'ra', extends: 'tls-client', extKeyUsage: ['clientAuth', 'cmcRA'] },
        { name: 'shortra', extends: 'ra', validitySeconds: 4, backdateSeconds: 0 },
      ],
      cmp: { aliases: [{ name: 'factory' }, { name: 'lab' }] },
    });
    for (const args of [
      ['--ref', 'dev', '--secret', SECRET],
      ['--ref', 'mac-ra', '--secret', RA_SECRET, '--ra', '--alias', 'factory'],
    ]) {
      const r = await s.cf.cli(['cmp-client', 'add', ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await s.cf.cli(['est-client', 'add', '--name', 'maker', '--password', PASSWORD])).code, 0);
    ra = await raCertificate('ra-1', 'ra');
  });
  after(async () => s?.stop());

  /** An RA certificate from `certflow cert issue`, registered for alias factory. */
  async function raCertificate(name: string, profile: string): Promise<Held> {
    const csr = await opensslCsr(s.cf.home, name, { subj: `/CN=${name}` });
    const out = join(s.cf.home, `${name}.pem`);
    const issued = await s.cf.cli(['cert', 'issue', '--csr', csr, '--profile', profile, '--out', out]);
    assert.equal(issued.code, 0, issued.stderr);
    const added = await s.cf.cli(['cmp-client', 'add', '--ref', name, '--cert', out, '--alias', 'factory', '--ra']);
    assert.equal(added.code, 0, added.stderr);
    return s.hold(name, await readFile(out, 'utf8'));
  }

  let n = 0;
  /** An ir for a device, signed by the RA, with raVerified POP. */
  async function raEnroll(held: Held, alias: string) {
    const cn = `ra-device-${++n}`;
    const r = await s.cmpAttempt(
      [
        '-cmd',
        'ir',
        '-cert',
        held.cert,
        '-key',
        held.key,
        '-newkey',
        await newKey(s.cmp, cn),
        '-popo',
        '0',
        '-subject',
        `/CN=${cn}`,
        '-certout',
        `${cn}.pem`,
      ],
      alias,
    );
    return { ...r, cn };
  }

  async function rr(signer: string[], target: Held, alias: string) {
    return s.cmpAttempt(['-cmd', 'rr', ...signer, '-oldcert', target.cert, '-revreason', '0'], alias);
  }

  const statusOf = async (serial: string) =>
    (await s.cf.pool.query<{ status: string }>('SELECT status FROM certificates WHERE serial = $1', [serial])).rows[0]?.status;

  it("an RA registered for 'factory' enrolls there, and not through 'lab'", async () => {
    const ok = await raEnroll(ra, 'factory');
    assert.equal(ok.code, 0, ok.out);
    const refused = await raEnroll(ra, 'lab');
    assert.notEqual(refused.code, 0, refused.out);
    assert.deepEqual(refused.failInfo, ['notAuthorized'], refused.text);
    assert.match(refused.text, /CMP client "ra-1" may not use alias "lab"/);
    assert.equal(await s.issuedFor(refused.cn), 0);
  });

  it('an RA revokes only certificates issued through its aliases (certificate and shared-secret RAs)', async () => {
    const fromLab = await s.cmpCertificate('lab-dev', '/CN=lab-dev', { ref: 'dev', secret: SECRET, alias: 'lab' });
    const fromEst = await s.estCertificate('est-dev', '/simpleenroll', '/CN=est-dev', { user: `maker:${PASSWORD}` });
    const fromFactory = await s.cmpCertificate('factory-dev', '/CN=factory-dev', { ref: 'dev', secret: SECRET, alias: 'factory' });
    for (const signer of [
      ['-cert', ra.cert, '-key', ra.key],
      ['-ref', 'mac-ra', '-secret', `pass:${RA_SECRET}`],
    ]) {
      for (const victim of [fromLab, fromEst]) {
        const r = await rr(signer, victim, 'factory');
        assert.notEqual(r.code, 0, r.out);
        assert.deepEqual(r.failInfo, ['notAuthorized'], r.text);
        assert.match(r.text, /may revoke only certificates issued through its CMP aliases \(factory\)/);
        assert.equal(await statusOf(victim.serial), 'valid');
      }
    }
    const own = await rr(['-cert', ra.cert, '-key', ra.key], fromFactory, 'factory');
    assert.equal(own.code, 0, own.out);
    assert.equal(await statusOf(fromFactory.serial), 'revoked');
  });

  it('an RA certificate on hold, revoked or expired is refused: signerNotTrusted', async () => {
    assert.equal((await s.cf.cli(['cert', 'hold', ra.serial])).code, 0);
    const held = await raEnroll(ra, 'factory');
    assert.deepEqual(held.failInfo, ['signerNotTrusted'], held.text);
    assert.match(held.text, /is on hold/);
    assert.equal(await s.issuedFor(held.cn), 0);
    assert.equal((await s.cf.cli(['cert', 'revoke', ra.serial, '--reason', 'keyCompromise'])).code, 0);
    const revoked = await raEnroll(ra, 'factory');
    assert.deepEqual(revoked.failInfo, ['signerNotTrusted'], revoked.text);
    assert.match(revoked.text, /is revoked/);
    assert.equal(await s.issuedFor(revoked.cn), 0);

    const short = await raCertificate('ra-short', 'shortra');
    await sleep(Math.max(0, new Date(new X509Certificate(short.pem).validTo).getTime() - Date.now()) + 1500);
    const expired = await raEnroll(short, 'factory');
    assert.deepEqual(expired.failInfo, ['signerNotTrusted'], expired.text);
    assert.match(expired.text, /has expired/);
    assert.equal(await s.issuedFor(expired.cn), 0);
  });
});
