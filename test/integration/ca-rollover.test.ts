/**
 * CA rollover (issue 19, part 5). An issuing CA gets a new key and certificate under the
 * same name; issuance moves to it at the chosen time (a durable timer), EST /cacerts and
 * CMP caCerts follow at that moment, and the old key keeps signing CRLs and OCSP responses
 * for the certificates it issued. A root rollover publishes the link certificates
 * (newWithOld, oldWithNew) that openssl verifies, answers CMP genm rootCaKeyUpdate, and ACME
 * offers the chain through the link certificate as Link rel="alternate" — certbot's
 * --preferred-chain picks it. A worker killed with SIGKILL while the parent signs the new
 * certificate: the rollover resumes and ends with one new key and one certificate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runTool } from '../helpers/certflow.ts';
import { serialHex, startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { estDevice, firstCert, type EstDevice } from '../helpers/est.ts';
import { opensslCmp, output, readMessages, type CmpPeer } from '../helpers/cmp.ts';
import { CERTBOT, CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { certbotCertonly, cliFails, cliJson, opensslVerify, pemFile, recordHistory } from '../helpers/ca.ts';
import { withTemporal } from '../helpers/temporal.ts';
import { derSequenceItems, fromDer, RootCaKeyUpdateContent, type InfoTypeAndValue } from '../../src/pki/cmp/index.ts';
import { pemDecodeAll, tbsSerialHex } from '../../src/pki/index.ts';

const skip = toolsSkip(CERTBOT, CHALLTESTSRV);
const PASSWORD = 'rollover test password';
const SECRET = 'pass:rollover-secret';

describe('CA rollover', { skip }, () => {
  let stack: AcmeStack;
  let device: EstDevice;
  let peer: CmpPeer;
  const files: Record<string, string> = {};

  async function akiOf(pemFileName: string): Promise<string | undefined> {
    const t = (await runTool('openssl', ['x509', '-in', pemFileName, '-noout', '-ext', 'authorityKeyIdentifier'])).stdout;
    return /([0-9A-F]{2}(:[0-9A-F]{2})+)/.exec(t)?.[1];
  }
  async function skiOf(pemFileName: string): Promise<string | undefined> {
    const t = (await runTool('openssl', ['x509', '-in', pemFileName, '-noout', '-ext', 'subjectKeyIdentifier'])).stdout;
    return /([0-9A-F]{2}(:[0-9A-F]{2})+)/.exec(t)?.[1];
  }

  async function estEnroll(name: string): Promise<string> {
    const res = await device.curl('/simpleenroll', { data: await device.csrBody(name, `/CN=${name}`), user: `dev:${PASSWORD}` });
    assert.equal(res.status, 200, res.body.toString());
    return pemFile(stack.cf, `${name}.pem`, firstCert(await device.pkcs7Certs(res.body)));
  }
  async function cacertsSubjects(): Promise<string> {
    return device.pkcs7Certs((await device.curl('/cacerts')).body);
  }

  before(async () => {
    stack = await startAcmeStack();
    device = estDevice(stack.cf.home, `https://localhost:${stack.cf.httpsPort}/.well-known/est`, stack.root, stack.chain);
    peer = { server: `127.0.0.1:${stack.cf.httpPort}`, dir: stack.cf.home, root: stack.root };
    assert.equal((await stack.cf.cli(['est-client', 'add', '--name', 'dev', '--password', PASSWORD])).code, 0);
    assert.equal((await stack.cf.cli(['cmp-client', 'add', '--ref', 'dev-1', '--secret', '-'], { input: `${SECRET.slice(5)}\n` })).code, 0);
    await stack.cts.setA('pref.example.test', '127.0.0.1');
    files.issuing1 = await pemFile(stack.cf, 'issuing-1.pem', (await stack.cf.cli(['ca', 'export', 'certflow-issuing'])).stdout);
  });
  after(async () => stack?.stop());

  it('rolls the issuing CA over at a chosen time: issuance, /cacerts and caCerts move then, not before', async () => {
    files.before = await estEnroll('before-rollover');
    const activateAt = new Date(Date.now() + 25_000).toISOString();
    const r = await cliJson(stack.cf, ['ca', 'rollover', 'certflow-issuing', '--activate-at', activateAt]);
    assert.equal(r.generation, 2);
    assert.equal(r.activateAt, activateAt);
    assert.match(r.message, /issuance moves to it at/);
    await recordHistory(r.workflowId, 'ca-rollover-issuing');
    files.issuing2 = await pemFile(stack.cf, 'issuing-2.pem', r.certPem!);
    // Same name and subject, new key, overlapping validity.
    const [c1, c2] = [new X509Certificate(await readFile(files.issuing1, 'utf8')), new X509Certificate(r.certPem!)];
    assert.equal(c2.subject, c1.subject);
    assert.notEqual(await skiOf(files.issuing2), await skiOf(files.issuing1));
    assert.ok(Date.parse(c2.validFrom) < Date.parse(c1.validTo));
    assert.equal((await opensslVerify(['-CAfile', stack.root, files.issuing2])).code, 0);

    // Before the activation time: still the old key.
    const early = await estEnroll('early');
    assert.equal(await akiOf(early), await skiOf(files.issuing1));
    assert.match(await cacertsSubjects(), /certflow Issuing CA 1/);
    const caCertsBefore = await caCertsGenp('before');
    const issuing1Der = certDer(await readFile(files.issuing1!, 'utf8'));
    assert.ok(caCertsBefore.some((d) => Buffer.from(d).equals(issuing1Der)));

    const wait = Date.parse(activateAt) - Date.now();
    if (wait > 0) await sleep(wait + 500);
    const late = await estEnroll('late');
    assert.equal(await akiOf(late), await skiOf(files.issuing2), 'issued by the new key after the activation time');
    assert.equal((await opensslVerify(['-CAfile', stack.root, '-untrusted', files.issuing2, late])).code, 0);
    const cacerts = await device.pkcs7Certs((await device.curl('/cacerts')).body);
    const firstIssuing = firstCert(cacerts);
    assert.equal(
      certDer(firstIssuing).toString('base64'),
      certDer(r.certPem!).toString('base64'),
      '/cacerts serves the new issuing certificate',
    );
    const caCertsAfter = await caCertsGenp('after');
    assert.ok(caCertsAfter.some((d) => Buffer.from(d).equals(certDer(r.certPem!))));

    // The activation is recorded once, by the child workflow that waited for it.
    const activation = await withTemporal(async (c) => {
      const h = c.workflow.getHandle('ca-activate-certflow-issuing-2');
      await h.result();
      return (await h.describe()).status.name;
    });
    assert.equal(activation, 'COMPLETED');
    await recordHistory('ca-activate-certflow-issuing-2', 'ca-activation');
    const { rows } = await stack.cf.pool.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'ca.activate' AND object = 'certflow-issuing'",
    );
    assert.equal(rows[0].n, 1);
  });

  it('the old key keeps signing CRLs and OCSP responses for its certificates', async () => {
    const serial = serialHex(await readFile(files.before!, 'utf8'));
    assert.equal((await stack.cf.cli(['cert', 'revoke', serial, '--reason', 'superseded'])).code, 0);
    const ocsp = await runTool('openssl', [
      'ocsp',
      '-issuer',
      files.issuing1!,
      '-cert',
      files.before!,
      '-url',
      `http://127.0.0.1:${stack.cf.httpPort}/ocsp`,
      '-CAfile',
      stack.root,
      '-verify_other',
      files.issuing1!,
    ]);
    assert.match(ocsp.stdout, /: revoked/, ocsp.stdout + ocsp.stderr);
    assert.match(ocsp.stderr + ocsp.stdout, /Response verify OK/);
    const crl1 = await fetchCrl('/crl/certflow-issuing.crl', 'gen1');
    const v1 = await runTool('openssl', ['crl', '-in', crl1, '-CAfile', files.issuing1!, '-noout', '-text']);
    assert.match(v1.stderr + v1.stdout, /verify OK/);
    assert.match(v1.stdout, new RegExp(`Serial Number: ${serial.toUpperCase()}`));
    const crl2 = await fetchCrl('/crl/certflow-issuing/2.crl', 'gen2');
    const v2 = await runTool('openssl', ['crl', '-in', crl2, '-CAfile', files.issuing2!, '-noout', '-text']);
    assert.match(v2.stderr + v2.stdout, /verify OK/);
    assert.doesNotMatch(v2.stdout, new RegExp(serial.toUpperCase()));
    // Each generation's certificate is published where its certificates' AIA says.
    assert.equal((await fetch(`http://127.0.0.1:${stack.cf.httpPort}/ca/certflow-issuing/2.crt`)).status, 200);
    assert.match((await runTool('openssl', ['x509', '-in', files.issuing2!, '-noout', '-text'])).stdout, /crl\/certflow-root\.crl/);
  });

  it('rolls the root over: link certificates openssl verifies, CMP genm rootCaKeyUpdate, EST /cacerts with all four', async () => {
    const r = await cliJson(stack.cf, ['ca', 'rollover', 'certflow-root', '--subject', 'CN=certflow Root CA G2,O=certflow']);
    await recordHistory(r.workflowId, 'ca-rollover-root');
    files.root2 = await pemFile(stack.cf, 'root-2.pem', r.certPem!);
    files.newWithOld = await pemFile(stack.cf, 'new-with-old.pem', r.newWithOldPem!);
    files.oldWithNew = await pemFile(stack.cf, 'old-with-new.pem', r.oldWithNewPem!);
    // newWithOld: the new root certified by the old one; oldWithNew the other way round.
    assert.equal((await opensslVerify(['-CAfile', stack.root, files.newWithOld])).code, 0);
    assert.equal((await opensslVerify(['-CAfile', files.root2, files.oldWithNew])).code, 0);
    // A client that trusts only the new root reaches certificates of the old one through oldWithNew.
    const v = await opensslVerify([
      '-CAfile',
      files.root2,
      '-untrusted',
      `${files.issuing2}`,
      '-untrusted',
      files.oldWithNew,
      files.issuing2!,
    ]);
    assert.equal(v.code, 0, v.stdout + v.stderr);

    const g = await opensslCmp(peer, [
      '-cmd',
      'genm',
      '-infotype',
      'rootCaKeyUpdate',
      '-ref',
      'dev-1',
      '-secret',
      SECRET,
      '-rspout',
      'genp-rootca.der',
    ]);
    assert.equal(g.code, 0, output(g));
    const [genp] = await readMessages(stack.cf.home, ['genp-rootca.der']);
    const item = (genp!.body.content as InfoTypeAndValue[])[0]!;
    assert.ok(item.infoValue, 'an update is announced');
    const update = RootCaKeyUpdateContent.read(fromDer(item.infoValue!, 'RootCaKeyUpdateContent'));
    assert.ok(Buffer.from(update.newWithNew).equals(certDer(r.certPem!)));
    assert.ok(Buffer.from(update.newWithOld!).equals(certDer(r.newWithOldPem!)));
    assert.ok(Buffer.from(update.oldWithNew!).equals(certDer(r.oldWithNewPem!)));

    const cacerts = await cacertsSubjects();
    assert.match(cacerts, /subject=CN = certflow Root CA G2/);
    assert.equal((cacerts.match(/BEGIN CERTIFICATE/g) ?? []).length, 5, 'issuing CA, old root, new root and the two link certificates');
  });

  it('ACME offers the chain through the link certificate as Link rel="alternate"; certbot --preferred-chain picks it', async () => {
    const dir = join(stack.cf.home, 'certbot');
    await mkdir(dir, { recursive: true });
    const r = await certbotCertonly(stack, dir, 'pref.example.test', { extra: ['--preferred-chain', 'certflow Root CA G2'] });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const live = join(dir, 'config', 'live', 'pref.example.test');
    const chain = await readFile(join(live, 'chain.pem'), 'utf8');
    assert.equal((chain.match(/BEGIN CERTIFICATE/g) ?? []).length, 2, 'the issuing CA and oldWithNew');
    assert.equal(
      certDer(chain.split(/(?=-----BEGIN)/)[1]!).toString('base64'),
      certDer(await readFile(files.oldWithNew!, 'utf8')).toString('base64'),
    );
    const v = await opensslVerify(['-CAfile', files.root2!, '-untrusted', join(live, 'chain.pem'), join(live, 'cert.pem')]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    // The default chain still ends below the old root.
    const d = await opensslVerify(['-CAfile', stack.root, '-untrusted', files.issuing2!, join(live, 'cert.pem')]);
    assert.equal(d.code, 0, d.stdout + d.stderr);
  });

  it('survives SIGKILL of the worker while the new certificate is signed: one new key, one certificate', async () => {
    await cliJson(stack.cf, ['ca', 'create', '--name', 'roll-ca', '--parent', 'certflow-root']);
    await stack.worker.stop();
    const doomed = await stack.cf.startWorker({}, { signingFaults: { pauseBeforeSignMs: 600_000, activities: ['caCertify'] } });
    const rolling = stack.cf.cliStart(['--json', 'ca', 'rollover', 'roll-ca', '--timeout', '180']);
    let tbsSerial: string | undefined;
    for (let i = 0; i < 240 && !tbsSerial; i++) {
      const { rows } = await stack.cf.pool.query("SELECT tbs_der, cert_der FROM ca_keys WHERE ca_name = 'roll-ca' AND generation = 2");
      if (rows[0]?.tbs_der && !rows[0].cert_der) tbsSerial = tbsSerialHex(rows[0].tbs_der);
      else await sleep(250);
    }
    assert.ok(tbsSerial, 'the new certificate was being signed');
    process.kill(doomed.pid!, 'SIGKILL');
    await doomed.exited;
    await stack.cf.startWorker();
    const r = await rolling.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).serial, tbsSerial);
    const { rows } = await stack.cf.pool.query("SELECT generation, serial FROM ca_keys WHERE ca_name = 'roll-ca' ORDER BY generation");
    assert.deepEqual(
      rows.map((x) => x.generation),
      [1, 2],
    );
    assert.equal(rows[1].serial, tbsSerial);
    assert.deepEqual(
      readdirSync(join(stack.cf.home, 'keys')).filter((f) => f.startsWith('roll-ca') && f.endsWith('.key.pem')),
      ['roll-ca.g2.key.pem', 'roll-ca.key.pem'],
    );
    const audited = await stack.cf.pool.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'ca.rollover' AND object = 'roll-ca' AND result = 'ok'",
    );
    assert.equal(audited.rows[0].n, 1);
    await cliFails(stack.cf, ['ca', 'rollover', 'nope'], 2, /no CA named "nope"/);
  });

  async function caCertsGenp(tag: string): Promise<Uint8Array[]> {
    const g = await opensslCmp(peer, [
      '-cmd',
      'genm',
      '-infotype',
      'caCerts',
      '-ref',
      'dev-1',
      '-secret',
      SECRET,
      '-rspout',
      `genp-cacerts-${tag}.der`,
    ]);
    assert.equal(g.code, 0, output(g));
    const [genp] = await readMessages(stack.cf.home, [`genp-cacerts-${tag}.der`]);
    const value = (genp!.body.content as InfoTypeAndValue[])[0]!.infoValue!;
    return derSequenceItems(value, 'caCerts');
  }

  async function fetchCrl(path: string, tag: string): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${stack.cf.httpPort}${path}`);
    assert.equal(res.status, 200, path);
    const der = join(stack.cf.home, `${tag}.crl.der`);
    await writeFile(der, Buffer.from(await res.arrayBuffer()));
    const pem = join(stack.cf.home, `${tag}.crl.pem`);
    assert.equal((await runTool('openssl', ['crl', '-inform', 'DER', '-in', der, '-out', pem])).code, 0);
    return pem;
  }
});

/** The DER of the first certificate in PEM text. */
function certDer(pem: string): Buffer {
  return Buffer.from(pemDecodeAll(pem)[0]!.der);
}
