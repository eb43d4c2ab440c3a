/**
 * Subordinate CAs (issue 19, part 1): `certflow ca create --parent` under the root and under
 * another subordinate, with key algorithm, validity, path length and name constraints;
 * certificates from them verified by openssl (which also enforces the name constraints);
 * the refusals (a name taken, a path length exhausted, a name outside the constraints); and
 * a worker killed with SIGKILL while the parent signs the new CA's certificate: the
 * creation resumes and ends with exactly one certificate, one key, one audit entry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { cliFails, cliJson, opensslVerify, pemFile, recordHistory } from '../helpers/ca.ts';
import { withTemporal } from '../helpers/temporal.ts';
import { tbsSerialHex } from '../../src/pki/index.ts';

describe('subordinate CAs', () => {
  let cf: TestInstance;
  let worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  let rootFile: string;

  before(async () => {
    cf = await createInstance();
    worker = await cf.startWorker();
    await cf.startServer();
    rootFile = join(cf.home, 'ca', 'root.pem');
  });
  after(async () => cf?.cleanup());

  it('creates a subordinate CA under the root: its own P-384 key, validity, path length and name constraints', async () => {
    const r = await cliJson(cf, [
      'ca',
      'create',
      '--name',
      'devices',
      '--parent',
      'certflow-root',
      '--subject',
      'CN=Devices CA,O=certflow test',
      '--key-alg',
      'ec-p384',
      '--validity-days',
      '400',
      '--path-len',
      '1',
      '--permit',
      'dns:example.test',
      '--permit',
      'ip:10.0.0.0/8',
      '--exclude',
      'dns:secret.example.test',
    ]);
    assert.equal(r.status, 'active');
    assert.equal(r.parent, 'certflow-root');
    assert.equal(r.workflowId, 'ca-create-devices');
    await recordHistory(r.workflowId, 'ca-create-subordinate');
    const cert = await pemFile(cf, 'devices.pem', r.certPem!);
    const text = (await runTool('openssl', ['x509', '-in', cert, '-noout', '-text'])).stdout;
    assert.match(text, /Subject: CN = Devices CA, O = certflow test/);
    assert.match(text, /Issuer: CN = certflow Root CA/);
    assert.match(text, /Public-Key: \(384 bit\)/);
    assert.match(text, /CA:TRUE, pathlen:1/);
    assert.match(
      text,
      /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:example.test\s+IP:10.0.0.0\/255.0.0.0\s+Excluded:\s+DNS:secret.example.test/,
    );
    const days = (Date.parse(r.notAfter!) - Date.parse(r.notBefore!)) / 86_400_000;
    assert.ok(days > 399 && days < 401, `validity ${days} days`);
    assert.equal((await opensslVerify(['-CAfile', rootFile, cert])).code, 0);

    // The key is in the worker's key store; the CA is listed, audited and has published its first CRL.
    assert.ok(existsSync(join(cf.home, 'keys', 'devices.key.pem')));
    const list = await cliJson<Array<{ name: string; status: string; keyAlg: string; parent: string }>>(cf, ['ca', 'list']);
    const listed = list.find((c) => c.name === 'devices');
    assert.deepEqual([listed?.status, listed?.keyAlg, listed?.parent], ['active', 'ec-p384', 'certflow-root']);
    const { rows } = await cf.pool.query("SELECT actor, details FROM audit_log WHERE action = 'ca.create' AND object = 'devices'");
    assert.equal(rows.length, 1);
    assert.match(rows[0].actor, /^operator:/);
    assert.equal(rows[0].details.pathLen, 1);
    const crl = await fetch(`http://127.0.0.1:${cf.httpPort}/crl/devices.crl`);
    assert.equal(crl.status, 200);
    const crlFile = await pemFile(cf, 'devices.crl', '');
    await (await import('node:fs/promises')).writeFile(crlFile, Buffer.from(await crl.arrayBuffer()));
    const crlCheck = await runTool('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', cert, '-noout']);
    assert.match(crlCheck.stderr + crlCheck.stdout, /verify OK/);
  });

  it('creates a CA below a subordinate; its certificates verify with openssl, names outside the constraints are refused', async () => {
    const r = await cliJson(cf, ['ca', 'create', '--name', 'team', '--parent', 'devices', '--key-alg', 'rsa-2048']);
    assert.equal(r.parent, 'devices');
    const chain = await pemFile(cf, 'team-chain.pem', (await cf.cli(['ca', 'export', 'team', '--chain'])).stdout);
    const csr = await opensslCsr(cf.home, 'web', { subj: '/CN=web.example.test', san: 'DNS:web.example.test,IP:10.1.2.3' });
    const out = join(cf.home, 'web.pem');
    const issued = await cf.cli(['cert', 'issue', '--csr', csr, '--ca', 'team', '--out', out]);
    assert.equal(issued.code, 0, issued.stderr);
    const v = await opensslVerify(['-CAfile', rootFile, '-untrusted', chain, out]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
    assert.match((await runTool('openssl', ['x509', '-in', out, '-noout', '-issuer'])).stdout, /CN = team/);

    const outside = await opensslCsr(cf.home, 'outside', { subj: '/CN=web.other.test', san: 'DNS:web.other.test' });
    await cliFails(
      cf,
      ['cert', 'issue', '--csr', outside, '--ca', 'team'],
      2,
      /dns:web\.other\.test is outside the name constraints of CA "CN=Devices CA,O=certflow test"/,
    );
    const secret = await opensslCsr(cf.home, 'secret', { subj: '/CN=db.secret.example.test', san: 'DNS:db.secret.example.test' });
    await cliFails(cf, ['cert', 'issue', '--csr', secret, '--ca', 'team'], 2, /outside the name constraints/);
  });

  it('refuses what RFC 5280 and the hierarchy forbid, before anything is made', async () => {
    await cliFails(
      cf,
      ['ca', 'create', '--name', 'too-deep', '--parent', 'team'],
      2,
      /CA "team" has pathLen 0 and cannot issue subordinate CAs/,
    );
    await cliFails(
      cf,
      ['ca', 'create', '--name', 'wide', '--parent', 'devices', '--path-len', '1'],
      2,
      /pathLen 1 must be below the pathLen 1 of CA "devices"/,
    );
    await cliFails(cf, ['ca', 'create', '--name', 'devices', '--parent', 'certflow-root'], 2, /done already|exists already/);
    await cliFails(cf, ['ca', 'create', '--name', 'orphan', '--parent', 'nope'], 2, /no CA named "nope"/);
    await cliFails(cf, ['ca', 'create', '--name', 'bad name', '--parent', 'certflow-root'], 2, /CA name "bad name" must be/);
    await cliFails(
      cf,
      ['ca', 'create', '--name', 'nc', '--parent', 'certflow-root', '--permit', 'dns:-bad-'],
      2,
      /name constraint "dns:-bad-"/,
    );
    for (const n of ['too-deep', 'wide', 'orphan', 'nc']) {
      assert.equal(existsSync(join(cf.home, 'keys', `${n}.key.pem`)), false, `no key made for ${n}`);
    }
    const failed = await cf.pool.query("SELECT object FROM audit_log WHERE action = 'ca.create' AND result = 'failed' ORDER BY seq");
    assert.ok(
      failed.rows.some((r) => r.object === 'too-deep'),
      'refusals are audited',
    );
    await recordHistory('ca-create-too-deep', 'ca-create-refused');
  });

  it('survives SIGKILL of the worker while the parent signs: one CA certificate, one key, one audit entry', async () => {
    await worker.stop();
    const doomed = await cf.startWorker({}, { signingFaults: { pauseBeforeSignMs: 600_000, activities: ['caCertify'] } });
    const creating = cf.cliStart(['--json', 'ca', 'create', '--name', 'crash-ca', '--parent', 'certflow-root', '--timeout', '180']);
    let tbsSerial: string | undefined;
    for (let i = 0; i < 240 && !tbsSerial; i++) {
      const { rows } = await cf.pool.query("SELECT tbs_der, cert_der FROM ca_keys WHERE ca_name = 'crash-ca'");
      if (rows[0]?.tbs_der && !rows[0].cert_der) tbsSerial = tbsSerialHex(rows[0].tbs_der);
      else await sleep(250);
    }
    assert.ok(tbsSerial, 'the TBS of the CA certificate was stored and the signing step is pending');
    process.kill(doomed.pid!, 'SIGKILL');
    await doomed.exited;
    worker = await cf.startWorker();
    const r = await creating.done;
    assert.equal(r.code, 0, r.stderr);
    const created = JSON.parse(r.stdout);
    assert.equal(created.serial, tbsSerial, 'the TBS stored before the crash was signed: no second serial');
    const { rows } = await cf.pool.query("SELECT generation, serial FROM ca_keys WHERE ca_name = 'crash-ca'");
    assert.deepEqual(rows, [{ generation: 1, serial: tbsSerial }]);
    const audited = await cf.pool.query(
      "SELECT count(*)::int AS n FROM audit_log WHERE action = 'ca.create' AND object = 'crash-ca' AND result = 'ok'",
    );
    assert.equal(audited.rows[0].n, 1);
    assert.deepEqual(
      readdirSync(join(cf.home, 'keys')).filter((f) => f.startsWith('crash-ca')),
      ['crash-ca.json', 'crash-ca.key.pem'],
      'one key',
    );
    const status = await withTemporal(async (c) => (await c.workflow.getHandle('ca-create-crash-ca').describe()).status.name);
    assert.equal(status, 'COMPLETED');
    const cert = await pemFile(cf, 'crash-ca.pem', created.certPem);
    assert.equal((await opensslVerify(['-CAfile', rootFile, cert])).code, 0);
    assert.match(await readFile(cert, 'utf8'), /BEGIN CERTIFICATE/);
  });
});
