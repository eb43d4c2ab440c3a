/**
 * Several issuing CAs at once (issue 19, part 4) and CA revocation (part 6). An ACME
 * directory alias, an EST label and a CMP alias name a CA that is created after the
 * configuration (reported on /healthz until it exists); certbot, curl as an EST device and
 * `openssl cmp` then get certificates from it, openssl verifies each chain, while the
 * default endpoints keep issuing from the default CA. Then the CA is revoked: its parent's
 * CRL lists it (openssl crl), OCSP answers revoked (cACompromise) for the certificates it
 * issued, and it never signs again — every front end refuses with a message naming it; a
 * CA past its notAfter is refused the same way.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { opensslCsr, runTool } from '../helpers/certflow.ts';
import { serialHex, startAcmeStack, type AcmeStack } from '../helpers/acme.ts';
import { estDevice, firstCert, type EstDevice } from '../helpers/est.ts';
import { newKey, opensslCmp, output, type CmpPeer } from '../helpers/cmp.ts';
import { CERTBOT, CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { certbotCertonly, cliFails, cliJson, opensslVerify, pemFile, recordHistory } from '../helpers/ca.ts';

const skip = toolsSkip(CERTBOT, CHALLTESTSRV);
const PASSWORD = 'several cas test password';
const SECRET = 'pass:several-cas-secret';

describe('several issuing CAs, and revoking one', { skip }, () => {
  let stack: AcmeStack;
  let device: EstDevice;
  let peer: CmpPeer;
  let dir: string;
  const issued: Record<string, string> = {};

  const certbot = (alias: string, name: string) => certbotCertonly(stack, dir, name, { alias: alias || undefined });
  const live = (name: string, file: string) => join(dir, 'config', 'live', name, file);
  const issuerCn = (pem: string) => /CN=([^\n,]+)/.exec(new X509Certificate(pem).issuer)?.[1];

  before(async () => {
    stack = await startAcmeStack({
      config: {
        acme: { aliases: [{ name: 'devices', caName: 'devices-ca' }] },
        est: { labels: [{ name: 'devices', profile: 'device', caName: 'devices-ca' }] },
        cmp: { aliases: [{ name: 'devices', caName: 'devices-ca' }] },
      },
    });
    dir = join(stack.cf.home, 'certbot');
    await mkdir(dir, { recursive: true });
    for (const n of ['dev-web.example.test', 'default-web.example.test', 'after.example.test']) await stack.cts.setA(n, '127.0.0.1');
    device = estDevice(stack.cf.home, `https://localhost:${stack.cf.httpsPort}/.well-known/est`, stack.root, stack.chain);
    peer = { server: `127.0.0.1:${stack.cf.httpPort}`, dir: stack.cf.home, root: stack.root };
    assert.equal((await stack.cf.cli(['est-client', 'add', '--name', 'dev', '--password', PASSWORD])).code, 0);
    assert.equal((await stack.cf.cli(['cmp-client', 'add', '--ref', 'dev-1', '--secret', '-'], { input: `${SECRET.slice(5)}\n` })).code, 0);
  });
  after(async () => stack?.stop());

  it('reports a configured CA name that is no CA on /healthz, then uses the CA once it is created', async () => {
    const health = (await (await fetch(`http://127.0.0.1:${stack.cf.httpPort}/healthz`)).json()) as { status: string; warnings: string[] };
    assert.equal(health.status, 'ok');
    assert.ok(
      health.warnings.some((w: string) => /acme\.aliases\[0\]\.caName: no CA named "devices-ca"/.test(w)),
      JSON.stringify(health.warnings),
    );
    const r = await cliJson(stack.cf, [
      'ca',
      'create',
      '--name',
      'devices-ca',
      '--parent',
      'certflow-root',
      '--subject',
      'CN=Devices Issuing CA,O=certflow test',
    ]);
    issued.caPem = await pemFile(stack.cf, 'devices-ca.pem', r.certPem!);
  });

  it('certbot gets its certificate from the CA its ACME directory alias names; the default directory from the default CA', async () => {
    const r = await certbot('devices', 'dev-web.example.test');
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const pem = await readFile(live('dev-web.example.test', 'cert.pem'), 'utf8');
    assert.equal(issuerCn(pem), 'Devices Issuing CA');
    const v = await opensslVerify([
      '-CAfile',
      stack.root,
      '-untrusted',
      live('dev-web.example.test', 'chain.pem'),
      live('dev-web.example.test', 'cert.pem'),
    ]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
    issued.acme = pem;

    const d = await certbot('', 'default-web.example.test');
    assert.equal(d.code, 0, `${d.stdout}\n${d.stderr}`);
    assert.equal(issuerCn(await readFile(live('default-web.example.test', 'cert.pem'), 'utf8')), 'certflow Issuing CA 1');
  });

  it('EST: /cacerts and simpleenroll of the label come from its CA', async () => {
    const cacerts = await device.curl('/devices/cacerts');
    assert.equal(cacerts.status, 200);
    const printed = await device.pkcs7Certs(cacerts.body);
    assert.match(printed, /subject=CN = Devices Issuing CA/);
    assert.match(printed, /subject=CN = certflow Root CA/);
    assert.doesNotMatch(printed, /certflow Issuing CA 1/);
    const res = await device.curl('/devices/simpleenroll', {
      data: await device.csrBody('est-dev', '/CN=est-dev-1'),
      user: `dev:${PASSWORD}`,
    });
    assert.equal(res.status, 200, res.body.toString());
    const pem = firstCert(await device.pkcs7Certs(res.body));
    assert.equal(issuerCn(pem), 'Devices Issuing CA');
    const cert = await pemFile(stack.cf, 'est-dev.pem', pem);
    assert.equal((await opensslVerify(['-CAfile', stack.root, '-untrusted', issued.caPem!, cert])).code, 0);
    issued.est = pem;
  });

  it('CMP: an ir to the alias is answered with a certificate of its CA', async () => {
    const key = await newKey(peer, 'cmp-dev');
    const r = await opensslCmp(
      peer,
      [
        '-cmd',
        'ir',
        '-ref',
        'dev-1',
        '-secret',
        SECRET,
        '-newkey',
        key,
        '-subject',
        '/CN=cmp-dev-1',
        '-certout',
        'cmp-dev.pem',
        '-chainout',
        'cmp-dev-chain.pem',
        '-trusted',
        stack.root,
      ],
      { alias: 'devices' },
    );
    assert.equal(r.code, 0, output(r));
    const pem = await readFile(join(stack.cf.home, 'cmp-dev.pem'), 'utf8');
    assert.equal(issuerCn(pem), 'Devices Issuing CA');
    const v = await opensslVerify([
      '-CAfile',
      stack.root,
      '-untrusted',
      join(stack.cf.home, 'cmp-dev-chain.pem'),
      join(stack.cf.home, 'cmp-dev.pem'),
    ]);
    assert.equal(v.code, 0, v.stdout + v.stderr);
  });

  it('revoking the CA: the root CRL lists it, OCSP says revoked (cACompromise) for its certificates, nothing signs for it again', async () => {
    const caSerial = serialHex(await readFile(issued.caPem!, 'utf8'));
    const r = await cliJson(stack.cf, ['ca', 'revoke', 'devices-ca']);
    assert.equal(r.status, 'revoked');
    assert.match(r.message, /CRL \d+ of certflow-root lists it/);
    await recordHistory(r.workflowId, 'ca-revoke');

    // The root's CRL, verified by openssl against the root.
    const crlDer = Buffer.from(await (await fetch(`http://127.0.0.1:${stack.cf.httpPort}/crl/certflow-root.crl`)).arrayBuffer());
    const crlFile = join(stack.cf.home, 'root.crl');
    await writeFile(crlFile, crlDer);
    const crl = await runTool('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-CAfile', stack.root, '-noout', '-text']);
    assert.match(crl.stderr + crl.stdout, /verify OK/);
    assert.match(crl.stdout, new RegExp(`Serial Number: ${caSerial.toUpperCase()}[\\s\\S]*?CA Compromise`));
    // openssl itself now refuses the chain with CRL checking.
    const crlPem = join(stack.cf.home, 'root-crl.pem');
    await writeFile(crlPem, (await runTool('openssl', ['crl', '-inform', 'DER', '-in', crlFile])).stdout);
    const est = await pemFile(stack.cf, 'est-dev-check.pem', issued.est!);
    const refused = await opensslVerify([
      '-crl_check',
      '-CAfile',
      stack.root,
      '-CRLfile',
      crlPem,
      '-untrusted',
      issued.caPem!,
      issued.caPem!,
    ]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /certificate revoked/);

    // OCSP for a certificate it issued: revoked, cACompromise, signed by the revoked CA's last signature.
    let ocsp = { code: -1, stdout: '', stderr: '' };
    for (let i = 0; i < 30 && !/: revoked/.test(ocsp.stdout); i++) {
      if (i) await new Promise((r) => setTimeout(r, 500));
      ocsp = await runTool('openssl', [
        'ocsp',
        '-issuer',
        issued.caPem!,
        '-cert',
        est,
        '-url',
        `http://127.0.0.1:${stack.cf.httpPort}/ocsp`,
        '-CAfile',
        stack.root,
        '-verify_other',
        issued.caPem!,
      ]);
    }
    assert.match(ocsp.stdout, /: revoked/, ocsp.stdout + ocsp.stderr);
    assert.match(ocsp.stdout, /Reason: cACompromise/);
    const { rows } = await stack.cf.pool.query(
      "SELECT count(*)::int AS n FROM certificates WHERE ca_name = 'devices-ca' AND status <> 'revoked'",
    );
    assert.equal(rows[0].n, 0, 'every certificate of the revoked CA is revoked');

    // It never signs again: every front end refuses with a message naming the CA.
    const estAfter = await device.curl('/devices/simpleenroll', {
      data: await device.csrBody('est-after', '/CN=est-after'),
      user: `dev:${PASSWORD}`,
    });
    assert.equal(estAfter.status, 503);
    assert.ok(Number(estAfter.headers['retry-after']) > 0);
    // The client is told the CA cannot serve it; the log says which CA and why.
    const serverLog = await readFile(join(stack.cf.home, 'server.log'), 'utf8');
    assert.match(serverLog, /EST label \\"devices\\" issues from CA \\"devices-ca\\", which cannot sign: CA \\"devices-ca\\" was revoked/);
    const acmeAfter = await certbot('devices', 'after.example.test');
    assert.notEqual(acmeAfter.code, 0);
    assert.match(
      await readFile(join(stack.cf.home, 'server.log'), 'utf8'),
      /ACME directory \\"devices\\" issues from CA \\"devices-ca\\", which cannot sign/,
    );
    const csr = await opensslCsr(stack.cf.home, 'after', { subj: '/CN=after.example.test', san: 'DNS:after.example.test' });
    await cliFails(
      stack.cf,
      ['cert', 'issue', '--csr', csr, '--ca', 'devices-ca'],
      2,
      /CA "devices-ca" was revoked .*; it signs nothing any more/,
    );
    const signedAfter = await stack.cf.pool.query(
      "SELECT count(*)::int AS n FROM certificates c JOIN cas a ON a.name = c.ca_name WHERE c.ca_name = 'devices-ca' AND c.issued_at > a.revoked_at",
    );
    assert.equal(signedAfter.rows[0].n, 0, 'nothing signed after the revocation');
    await cliFails(stack.cf, ['ca', 'revoke', 'devices-ca'], 2, /done already/);
    await cliFails(stack.cf, ['ca', 'rollover', 'devices-ca'], 2, /was revoked/);
    await cliFails(stack.cf, ['crl', 'generate', 'devices-ca'], 2, /signs no CRLs \(revoked\)/);
  });

  it('a CA past its notAfter never signs', async () => {
    await cliJson(stack.cf, ['ca', 'create', '--name', 'short-lived', '--parent', 'certflow-root']);
    // What the worker reads for the rule: the generation's notAfter (as if its time had come).
    await stack.cf.pool.query("UPDATE ca_keys SET not_after = now() - interval '1 second' WHERE ca_name = 'short-lived'");
    const csr = await opensslCsr(stack.cf.home, 'expired', { subj: '/CN=expired.example.test', san: 'DNS:expired.example.test' });
    await cliFails(
      stack.cf,
      ['cert', 'issue', '--csr', csr, '--ca', 'short-lived'],
      2,
      /CA "short-lived" expired on .*; it signs nothing any more/,
    );
    // The worker refuses as well (a request that reached it before the CA expired): no CRL of it is signed any more.
    const refresh = await stack.cf.cli(['crl', 'generate', 'short-lived']);
    assert.equal(refresh.code, 2);
    assert.match(refresh.stderr, /signs no CRLs \(expired or pending\)/);
    const { rows } = await stack.cf.pool.query("SELECT count(*)::int AS n FROM certificates WHERE ca_name = 'short-lived'");
    assert.equal(rows[0].n, 0);
  });
});
