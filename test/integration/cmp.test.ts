/**
 * CMP (RFC 9810 / 9811 / 9483) with OpenSSL 3's `openssl cmp` as the client: ir with MAC
 * (PasswordBasedMac) and with signature protection, cr, p10cr, kur, rr, genm, implicit
 * confirmation, a rejecting certConf that revokes, no certConf at all (timeout -> revoked),
 * polling while an operator approves, and PBMAC1 from certflow's own client code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import { newKey, opensslCmp, output, readMessages, type CmpPeer } from '../helpers/cmp.ts';
import * as requests from '../../src/db/repos/requests.ts';
import * as certificates from '../../src/db/repos/certificates.ts';

const SECRET = 'pass:device-secret-1';

describe('CMP server with openssl cmp', () => {
  let cf: TestInstance;
  let peer: CmpPeer;

  before(async () => {
    const configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-cmp-${process.pid}.json`);
    await writeFile(
      configFile,
      JSON.stringify({
        cmp: {
          pollIntervalSeconds: 1,
          aliases: [
            { name: 'approve', requireApproval: true },
            { name: 'short', confirmWaitSeconds: 3, implicitConfirm: false },
            { name: 'maconly', protection: ['mac'] },
          ],
        },
      }),
    );
    cf = await createInstance({ CERTFLOW_CONFIG: configFile });
    await cf.startWorker();
    await cf.startServer();
    peer = { server: `127.0.0.1:${cf.httpPort}`, dir: cf.home, root: join(cf.home, 'ca', 'root.pem') };
    const r = await cf.cli(['cmp-client', 'add', '--ref', 'device-1', '--secret', '-'], { input: 'device-secret-1\n' });
    assert.equal(r.code, 0, r.stderr);
  });
  after(async () => cf?.cleanup());

  it('ir with MAC protection (PasswordBasedMac), certConf, pkiconf: a certificate openssl verifies', async () => {
    const key = await newKey(peer, 'ir-mac');
    const r = await opensslCmp(peer, ['-cmd', 'ir', '-ref', 'device-1', '-secret', SECRET, '-newkey', key, '-subject', '/CN=device-1/serialNumber=SN1', '-certout', 'ir-mac.pem', '-chainout', 'ir-mac-chain.pem', '-trusted', peer.root, '-reqout', 'ir.der,certconf.der', '-rspout', 'ip.der,pkiconf.der']);
    assert.equal(r.code, 0, output(r));
    const v = await runTool('openssl', ['verify', '-CAfile', peer.root, '-untrusted', join(cf.home, 'ir-mac-chain.pem'), join(cf.home, 'ir-mac.pem')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const [ir] = await readMessages(cf.home, ['ir.der']);
    const txid = Buffer.from(ir!.header.transactionID!).toString('hex');
    const row = await requests.get(cf.pool, `cmp-${txid}`);
    assert.equal(row?.state, 'confirmed');
    assert.equal(row?.protocol, 'cmp');
  });
});
