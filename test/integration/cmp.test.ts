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
import type { CertRepMessage } from '../../src/pki/cmp/index.ts';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { fileURLToPath } from 'node:url';
import { withTemporal } from '../helpers/temporal.ts';

/**
 * CERTFLOW_RECORD_HISTORIES=1 writes the histories of the workflows these tests run to
 * test/replay/histories/cmp-*-signing-queue.json (for the replay test), once each
 * transaction is done. Transactions run on the signing queue since issue 18 (patched
 * 'cmp-sign-in-workflow-task'), and their signing activity writes the projections of its
 * task since its third round (patched 'cmp-projections-in-signing': the suffix
 * `-signing-queue-projected`); the histories of the runs before keep their names.
 */
const SIGNING_QUEUE_RUN = '-signing-queue-projected';
async function recordHistory(workflowId: string, name: string): Promise<void> {
  if (process.env.CERTFLOW_RECORD_HISTORIES !== '1') return;
  await withTemporal(async (client) => {
    const handle = client.workflow.getHandle(workflowId);
    await handle.result();
    const file = fileURLToPath(new URL(`../replay/histories/${name}${SIGNING_QUEUE_RUN}.json`, import.meta.url));
    await writeFile(file, historyToJSON(await handle.fetchHistory()) + '\n');
  });
}

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
            // Its issuing CA does not exist: a server fault at signing.
            { name: 'broken', caName: 'no-such-ca' },
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
    const r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-ref',
      'device-1',
      '-secret',
      SECRET,
      '-newkey',
      key,
      '-subject',
      '/CN=device-1/serialNumber=SN1',
      '-certout',
      'ir-mac.pem',
      '-chainout',
      'ir-mac-chain.pem',
      '-trusted',
      peer.root,
      '-reqout',
      'ir.der,certconf.der',
      '-rspout',
      'ip.der,pkiconf.der',
    ]);
    assert.equal(r.code, 0, output(r));
    const v = await runTool('openssl', [
      'verify',
      '-CAfile',
      peer.root,
      '-untrusted',
      join(cf.home, 'ir-mac-chain.pem'),
      join(cf.home, 'ir-mac.pem'),
    ]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    const [ir, ip] = await readMessages(cf.home, ['ir.der', 'ip.der']);
    // caPubs (RFC 9483 4.1.1, MAC protection only): the root the new certificate chains to.
    const root = new X509Certificate(await readFile(peer.root)).raw;
    assert.deepEqual(
      (ip!.body.content as CertRepMessage).caPubs?.map((c) => Buffer.from(c)),
      [root],
    );
    const txid = Buffer.from(ir!.header.transactionID!).toString('hex');
    // pkiconf answers once the certConf Update is taken; the workflow projects `confirmed` after it.
    const row = await until('the transaction confirmed in the read model', async () => {
      const r = await requests.get(cf.pool, `cmp-${txid}`);
      return r?.state === 'confirmed' && r;
    });
    assert.equal(row.protocol, 'cmp');
    await recordHistory(`cmp-${txid}`, 'cmp-ir-confirmed');
    const audited = await cf.pool.query('SELECT action, actor FROM audit_log WHERE request_id = $1 ORDER BY seq', [`cmp-${txid}`]);
    assert.deepEqual(
      audited.rows.map((x) => `${x.action} ${x.actor}`),
      ['cert.issue cmp:ref:device-1', 'request.confirm cmp:ref:device-1'],
    );
  });

  /** An ir with MAC protection; returns the certificate and key files. */
  async function enrollMac(name: string, subject: string, extra: string[] = []): Promise<{ cert: string; key: string; txid: string }> {
    const key = await newKey(peer, name);
    const r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-ref',
      'device-1',
      '-secret',
      SECRET,
      '-newkey',
      key,
      '-subject',
      subject,
      '-certout',
      `${name}.pem`,
      '-trusted',
      peer.root,
      '-reqout',
      `${name}-req.der`,
      ...extra,
    ]);
    assert.equal(r.code, 0, output(r));
    const [req] = await readMessages(cf.home, [`${name}-req.der`]);
    return { cert: join(cf.home, `${name}.pem`), key, txid: Buffer.from(req!.header.transactionID!).toString('hex') };
  }

  async function serialOf(certFile: string): Promise<string> {
    return new X509Certificate(await readFile(certFile)).serialNumber.toLowerCase().replace(/^(00)+/, '');
  }

  async function stateOf(txid: string) {
    return requests.get(cf.pool, `cmp-${txid}`);
  }

  async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(200);
    }
  }

  it('implicit confirmation: granted when asked, no certConf sent', async () => {
    const { txid } = await enrollMac('implicit', '/CN=device-implicit', ['-implicit_confirm', '-rspout', 'implicit-ip.der']);
    const [ip] = await readMessages(cf.home, ['implicit-ip.der']);
    assert.ok(
      ip!.header.generalInfo?.some((i) => i.infoType === '1.3.6.1.5.5.7.4.13'),
      'implicitConfirm in the ip',
    );
    assert.equal((await stateOf(txid))?.state, 'confirmed');
    await recordHistory(`cmp-${txid}`, 'cmp-ir-implicit-confirm');
  });

  let signerCert: string;
  let signerKey: string;
  it('ir with signature protection by a registered certificate of this CA; extraCerts carry the chain', async () => {
    const first = await enrollMac('bootstrap', '/CN=device-sig');
    signerCert = first.cert;
    signerKey = first.key;
    // A certificate that is not registered enrolls only for its own names, and only where the
    // alias allows it (test/security/cmp-client-cert.test.ts); registered, it is a client.
    const reg = await cf.cli(['cmp-client', 'add', '--ref', 'device-sig', '--cert', signerCert]);
    assert.equal(reg.code, 0, reg.stderr);
    const key = await newKey(peer, 'ir-sig');
    const r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-cert',
      signerCert,
      '-key',
      signerKey,
      '-newkey',
      key,
      '-subject',
      '/CN=device-sig-2',
      '-certout',
      'ir-sig.pem',
      '-trusted',
      peer.root,
      '-rspout',
      'ir-sig-ip.der,ir-sig-conf.der',
    ]);
    assert.equal(r.code, 0, output(r));
    const [ip] = await readMessages(cf.home, ['ir-sig-ip.der']);
    assert.ok((ip!.extraCerts?.length ?? 0) >= 2, 'signer certificate and issuing CA in extraCerts');
    const signer = new X509Certificate(Buffer.from(ip!.extraCerts![0]!));
    assert.match(signer.subject, /CMP signer/);
    assert.match(new X509Certificate(await readFile(join(cf.home, 'ir-sig.pem'))).subject, /CN=device-sig-2/);
  });

  it('cr (signature protection) and p10cr (MAC protection)', async () => {
    const key = await newKey(peer, 'cr');
    const r = await opensslCmp(peer, [
      '-cmd',
      'cr',
      '-cert',
      signerCert,
      '-key',
      signerKey,
      '-newkey',
      key,
      '-subject',
      '/CN=device-cr',
      '-certout',
      'cr.pem',
      '-trusted',
      peer.root,
    ]);
    assert.equal(r.code, 0, output(r));
    const csr = join(cf.home, 'p10.csr');
    const g = await runTool('openssl', [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(cf.home, 'p10.key'),
      '-subj',
      '/CN=device-p10',
      '-out',
      csr,
    ]);
    assert.equal(g.code, 0, g.stderr);
    const p = await opensslCmp(peer, [
      '-cmd',
      'p10cr',
      '-ref',
      'device-1',
      '-secret',
      SECRET,
      '-csr',
      csr,
      '-certout',
      'p10.pem',
      '-trusted',
      peer.root,
    ]);
    assert.equal(p.code, 0, output(p));
    assert.match(new X509Certificate(await readFile(join(cf.home, 'p10.pem'))).subject, /CN=device-p10/);
  });

  it('kur: signed with the old certificate, new key; the old one is revoked once the new one is confirmed', async () => {
    const old = await enrollMac('kur-old', '/CN=device-kur');
    const oldSerial = await serialOf(old.cert);
    const key = await newKey(peer, 'kur-new');
    const r = await opensslCmp(peer, [
      '-cmd',
      'kur',
      '-cert',
      old.cert,
      '-key',
      old.key,
      '-newkey',
      key,
      '-certout',
      'kur-new.pem',
      '-trusted',
      peer.root,
    ]);
    assert.equal(r.code, 0, output(r));
    const fresh = new X509Certificate(await readFile(join(cf.home, 'kur-new.pem')));
    assert.match(fresh.subject, /CN=device-kur/);
    const row = await until('old certificate revoked', async () => {
      const c = await certificates.get(cf.pool, oldSerial);
      return c?.status === 'revoked' ? c : undefined;
    });
    assert.equal(row.revocationReason, 'superseded');
    const renewed = await certificates.get(cf.pool, fresh.serialNumber.toLowerCase().replace(/^(00)+/, ''));
    assert.equal(renewed?.replaces, oldSerial);
    await recordHistory(renewed!.requestId, 'cmp-kur-old-revoked');
  });

  it('rr: revocation with a reason through the revocation workflow', async () => {
    const c = await enrollMac('rr', '/CN=device-rr');
    const r = await opensslCmp(peer, [
      '-cmd',
      'rr',
      '-cert',
      c.cert,
      '-key',
      c.key,
      '-oldcert',
      c.cert,
      '-revreason',
      '1',
      '-trusted',
      peer.root,
    ]);
    assert.equal(r.code, 0, output(r));
    const row = await certificates.get(cf.pool, await serialOf(c.cert));
    assert.equal(row?.status, 'revoked');
    assert.equal(row?.revocationReason, 'keyCompromise');
    // A second rr for the same certificate: rejected with certRevoked.
    const again = await opensslCmp(peer, ['-cmd', 'rr', '-ref', 'device-1', '-secret', SECRET, '-oldcert', c.cert, '-trusted', peer.root]);
    assert.notEqual(again.code, 0);
    assert.match(output(again), /certRevoked|already revoked/);
  });

  it('genm: caCerts, rootCaKeyUpdate, certReqTemplate, signKeyPairTypes, currentCRL', async () => {
    for (const type of ['caCerts', 'rootCaKeyUpdate', 'certReqTemplate', 'signKeyPairTypes', 'currentCRL']) {
      const r = await opensslCmp(peer, [
        '-cmd',
        'genm',
        '-infotype',
        type,
        '-ref',
        'device-1',
        '-secret',
        SECRET,
        '-rspout',
        `genp-${type}.der`,
      ]);
      assert.equal(r.code, 0, output(r));
      const [genp] = await readMessages(cf.home, [`genp-${type}.der`]);
      assert.equal(genp!.body.type, 'genp');
      const items = genp!.body.content as Array<{ infoType: string; infoValue?: Uint8Array }>;
      assert.equal(items.length, 1, `${type}: ${items.map((i) => i.infoType).join(', ')}`);
    }
    const [caCerts] = await readMessages(cf.home, ['genp-caCerts.der']);
    assert.ok(((caCerts!.body.content as Array<{ infoValue?: Uint8Array }>)[0]!.infoValue?.length ?? 0) > 500);
  });

  it('a rejecting certConf revokes the certificate (openssl rejects one its -out_trusted cannot verify)', async () => {
    const other = join(cf.home, 'other-root.pem');
    const g = await runTool('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      join(cf.home, 'other.key'),
      '-subj',
      '/CN=Other Root',
      '-out',
      other,
    ]);
    assert.equal(g.code, 0, g.stderr);
    const key = await newKey(peer, 'rejected');
    const r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-ref',
      'device-1',
      '-secret',
      SECRET,
      '-newkey',
      key,
      '-subject',
      '/CN=device-rejected',
      '-certout',
      'rejected.pem',
      '-trusted',
      peer.root,
      '-out_trusted',
      other,
      '-reqout',
      'rej-ir.der,rej-conf.der',
    ]);
    assert.notEqual(r.code, 0, 'openssl does not accept the certificate');
    assert.match(output(r), /sending CERTCONF/, output(r));
    const [ir, conf] = await readMessages(cf.home, ['rej-ir.der', 'rej-conf.der']);
    assert.equal(conf!.body.type, 'certConf');
    const txid = Buffer.from(ir!.header.transactionID!).toString('hex');
    const row = await until('revoked', async () => ((await stateOf(txid))?.state === 'revoked' ? stateOf(txid) : undefined));
    const cert = await certificates.get(cf.pool, row!.serial!);
    assert.equal(cert?.status, 'revoked');
    await recordHistory(`cmp-${txid}`, 'cmp-certconf-rejected');
  });

  it('no certConf at all: the certificate is revoked when the confirmation period ends', async () => {
    const key = await newKey(peer, 'noconf');
    const r = await opensslCmp(
      peer,
      [
        '-cmd',
        'ir',
        '-ref',
        'device-1',
        '-secret',
        SECRET,
        '-newkey',
        key,
        '-subject',
        '/CN=device-noconf',
        '-disable_confirm',
        '-certout',
        'noconf.pem',
        '-trusted',
        peer.root,
        '-reqout',
        'noconf-ir.der',
      ],
      { alias: 'short' },
    );
    assert.equal(r.code, 0, output(r));
    const [ir] = await readMessages(cf.home, ['noconf-ir.der']);
    const txid = Buffer.from(ir!.header.transactionID!).toString('hex');
    assert.equal((await stateOf(txid))?.state, 'issued');
    await until('revoked after the confirmation period', async () => (await stateOf(txid))?.state === 'revoked');
    assert.equal((await certificates.get(cf.pool, await serialOf(join(cf.home, 'noconf.pem'))))?.status, 'revoked');
    await recordHistory(`cmp-${txid}`, 'cmp-unconfirmed-revoked');
  });

  it('polling while an operator approves: ip waiting, pollReq/pollRep, then the certificate', async () => {
    const key = await newKey(peer, 'approve');
    const client = opensslCmp(
      peer,
      [
        '-cmd',
        'ir',
        '-ref',
        'device-1',
        '-secret',
        SECRET,
        '-newkey',
        key,
        '-subject',
        '/CN=device-approve',
        '-certout',
        'approve.pem',
        '-trusted',
        peer.root,
      ],
      { alias: 'approve' },
    );
    const pending = await until(
      'a request awaiting approval',
      async () => (await requests.list(cf.pool, { state: 'awaiting-approval', protocol: 'cmp' }))[0],
    );
    const list = await cf.cli(['--json', 'approvals', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as Array<{ id: string; protocol: string; subject: string }>;
    assert.ok(
      listed.some((l) => l.id === pending.id && l.protocol === 'cmp' && /device-approve/.test(l.subject)),
      list.stdout,
    );
    await sleep(2500); // the client polls meanwhile
    const ok = await cf.cli(['approvals', 'approve', pending.id]);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await client;
    assert.equal(r.code, 0, output(r));
    assert.match(output(r), /POLLREQ|pollReq|polling/i);
    assert.match(new X509Certificate(await readFile(join(cf.home, 'approve.pem'))).subject, /device-approve/);
    await until('confirmed', async () => (await requests.get(cf.pool, pending.id))?.state === 'confirmed');
    const listing = await cf.cli(['--json', 'requests', 'list', '--protocol', 'cmp']);
    assert.equal(listing.code, 0, listing.stderr);
    assert.ok((JSON.parse(listing.stdout) as Array<{ id: string }>).some((x) => x.id === pending.id));
    await recordHistory(pending.id, 'cmp-approved-polled');
  });

  it('a server fault at signing: the transaction is stalled and visible, the client is told to poll, an operator can retry', async () => {
    const key = await newKey(peer, 'broken');
    const client = opensslCmp(
      peer,
      [
        '-cmd',
        'ir',
        '-ref',
        'device-1',
        '-secret',
        SECRET,
        '-newkey',
        key,
        '-subject',
        '/CN=device-broken',
        '-certout',
        'broken.pem',
        '-trusted',
        peer.root,
        '-msg_timeout',
        '20',
        '-total_timeout',
        '40',
      ],
      { alias: 'broken' },
    );
    const stalled = await until(
      'a stalled CMP request',
      async () => (await requests.list(cf.pool, { state: 'stalled', protocol: 'cmp' }))[0],
    );
    assert.match(String(stalled.error), /unknown issuing CA "no-such-ca"/);
    const stuck = await cf.cli(['--json', 'requests', 'list', '--stuck']);
    assert.ok(
      (JSON.parse(stuck.stdout) as Array<{ id: string; state: string }>).some((x) => x.id === stalled.id && x.state === 'stalled'),
      stuck.stdout,
    );
    const description = await withTemporal((c) => c.workflow.getHandle(stalled.id).describe());
    assert.equal(description.status.name, 'RUNNING', 'the workflow does not fail');
    assert.match(
      String(description.typedSearchAttributes.getAll().find((p) => p.key.name === 'CertflowLastError')?.value),
      /unknown issuing CA/,
    );
    const retried = await cf.cli(['requests', 'retry', stalled.id]);
    assert.equal(retried.code, 0, retried.stderr + retried.stdout);
    if (process.env.CERTFLOW_RECORD_HISTORIES === '1') {
      // Stalled, retried, stalled again: the workflow is still running, its history so far replays.
      await until('stalled again', async () => (await requests.get(cf.pool, stalled.id))?.state === 'stalled' && (await sleep(500), true));
      await withTemporal(async (c) => {
        const file = fileURLToPath(new URL(`../replay/histories/cmp-stalled-retried${SIGNING_QUEUE_RUN}.json`, import.meta.url));
        await writeFile(file, historyToJSON(await c.workflow.getHandle(stalled.id).fetchHistory()) + '\n');
      });
    }
    const r = await client;
    assert.notEqual(r.code, 0, 'no certificate while the CA is missing');
    assert.match(output(r), /POLLREQ|pollReq|polling|timeout/i);
    assert.equal((await cf.pool.query('SELECT count(*)::int AS n FROM certificates WHERE request_id = $1', [stalled.id])).rows[0].n, 0);
  });
});
