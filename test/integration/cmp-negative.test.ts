/**
 * CMP bad cases: each gets a CMP error (HTTP 200, protected where the request's protection
 * verified) or a 4xx for transport mistakes, never a 500 and never a crash. Also: a retried
 * HTTP request gets the same answer (one certificate), PBMAC1 protection, and a seeded fuzz
 * test over mutated DER of every message type (CERTFLOW_TEST_SEED replays a run).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInstance, runTool, type TestInstance } from '../helpers/certflow.ts';
import {
  buildCertConf,
  buildIr,
  failure,
  macProtect,
  newKey,
  opensslCmp,
  output,
  postCmp,
  readMessages,
  type CmpPeer,
} from '../helpers/cmp.ts';
import {
  CRLStatus,
  ErrorMsgContent,
  PKIStatusInfo,
  INFO_TYPES,
  InfoTypeAndValue,
  PKIMessage,
  ProofOfPossession,
  derSequence,
  describeProtection,
  distributionPointName,
  protectWithMac,
  protectWithSignature,
  verifyMac,
  type CertRepMessage,
} from '../../src/pki/cmp/index.ts';
import { pemDecodeAll } from '../../src/pki/index.ts';

const SECRET = 'fuzz-secret-123';

describe('CMP bad cases and fuzzing', () => {
  let cf: TestInstance;
  let peer: CmpPeer;
  /** Requests made by openssl against this server, by body type: the fuzz seeds. */
  const seeds = new Map<string, { der: Uint8Array; key?: string; cert?: string }>();

  before(async () => {
    const configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-cmpneg-${process.pid}.json`);
    await writeFile(
      configFile,
      JSON.stringify({
        cmp: {
          pollIntervalSeconds: 1,
          messageTimeToleranceSeconds: 120,
          aliases: [
            { name: 'maconly', protection: ['mac'] },
            { name: 'approve', requireApproval: true },
          ],
        },
      }),
    );
    cf = await createInstance({ CERTFLOW_CONFIG: configFile });
    await cf.startWorker();
    await cf.startServer();
    peer = { server: `127.0.0.1:${cf.httpPort}`, dir: cf.home, root: join(cf.home, 'ca', 'root.pem') };
    for (const args of [
      ['--ref', 'fuzz', '--secret', SECRET],
      ['--ref', 'other', '--secret', 'other-secret-1'],
    ]) {
      const r = await cf.cli(['cmp-client', 'add', ...args]);
      assert.equal(r.code, 0, r.stderr);
    }
  });
  after(async () => cf?.cleanup());

  const post = (der: Uint8Array, opts: Parameters<typeof postCmp>[2] = {}) => postCmp(cf.httpPort, der, opts);

  it('collects requests of every type made by openssl cmp (fuzz seeds)', async () => {
    const key = await newKey(peer, 'seed');
    let r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-ref',
      'fuzz',
      '-secret',
      `pass:${SECRET}`,
      '-newkey',
      key,
      '-subject',
      '/CN=seed',
      '-certout',
      'seed.pem',
      '-trusted',
      peer.root,
      '-reqout',
      'seed-ir.der,seed-certConf.der',
    ]);
    assert.equal(r.code, 0, output(r));
    const cert = join(cf.home, 'seed.pem');
    // Registered, the seed certificate signs requests for other names (cr) as a client.
    assert.equal((await cf.cli(['cmp-client', 'add', '--ref', 'seed', '--cert', cert])).code, 0);
    const key2 = await newKey(peer, 'seed2');
    r = await opensslCmp(peer, [
      '-cmd',
      'cr',
      '-cert',
      cert,
      '-key',
      key,
      '-newkey',
      key2,
      '-subject',
      '/CN=seed-cr',
      '-certout',
      'seed-cr.pem',
      '-trusted',
      peer.root,
      '-reqout',
      'seed-cr.der,seed-certConf-sig.der',
    ]);
    assert.equal(r.code, 0, output(r));
    r = await opensslCmp(peer, [
      '-cmd',
      'kur',
      '-cert',
      cert,
      '-key',
      key,
      '-newkey',
      key2,
      '-certout',
      'seed-kur.pem',
      '-trusted',
      peer.root,
      '-reqout',
      'seed-kur.der,seed-certConf-kur.der',
    ]);
    assert.equal(r.code, 0, output(r));
    const csr = join(cf.home, 'seed.csr');
    assert.equal((await runTool('openssl', ['req', '-new', '-key', key2, '-subj', '/CN=seed-p10', '-out', csr])).code, 0);
    r = await opensslCmp(peer, [
      '-cmd',
      'p10cr',
      '-ref',
      'fuzz',
      '-secret',
      `pass:${SECRET}`,
      '-csr',
      csr,
      '-certout',
      'seed-p10.pem',
      '-trusted',
      peer.root,
      '-reqout',
      'seed-p10cr.der,seed-certConf-p10.der',
    ]);
    assert.equal(r.code, 0, output(r));
    r = await opensslCmp(peer, [
      '-cmd',
      'genm',
      '-infotype',
      'caCerts',
      '-ref',
      'fuzz',
      '-secret',
      `pass:${SECRET}`,
      '-reqout',
      'seed-genm.der',
    ]);
    assert.equal(r.code, 0, output(r));
    r = await opensslCmp(peer, [
      '-cmd',
      'rr',
      '-ref',
      'fuzz',
      '-secret',
      `pass:${SECRET}`,
      '-oldcert',
      join(cf.home, 'seed-p10.pem'),
      '-revreason',
      '4',
      '-trusted',
      peer.root,
      '-reqout',
      'seed-rr.der',
    ]);
    assert.equal(r.code, 0, output(r));
    r = await opensslCmp(
      peer,
      [
        '-cmd',
        'ir',
        '-ref',
        'fuzz',
        '-secret',
        `pass:${SECRET}`,
        '-newkey',
        key2,
        '-subject',
        '/CN=seed-poll',
        '-certout',
        'seed-poll.pem',
        '-trusted',
        peer.root,
        '-msg_timeout',
        '2',
        '-total_timeout',
        '3',
        '-reqout',
        'seed-poll-ir.der,seed-pollReq.der',
      ],
      { alias: 'approve' },
    );
    assert.match(output(r), /POLLREQ|polling/i, output(r));
    for (const [type, file, k, c] of [
      ['ir', 'seed-ir.der'],
      ['certConf', 'seed-certConf.der'],
      ['cr', 'seed-cr.der', key, cert],
      ['kur', 'seed-kur.der', key, cert],
      ['p10cr', 'seed-p10cr.der'],
      ['genm', 'seed-genm.der'],
      ['rr', 'seed-rr.der'],
      ['pollReq', 'seed-pollReq.der'],
    ] as const) {
      seeds.set(type, { der: new Uint8Array(await readFile(join(cf.home, file))), key: k, cert: c });
    }
    // The client's own error message (aborting a transaction) is a request type too.
    const err = PKIMessage.fromDer(seeds.get('certConf')!.der);
    err.body = { type: 'error', content: new ErrorMsgContent(new PKIStatusInfo(2, ['abort'], ['badRequest'])) };
    seeds.set('error', { der: macProtect(err, SECRET) });
  });

  it('wrong secret: openssl gets an error (badMessageCheck) signed by the CMP signer', async () => {
    const key = await newKey(peer, 'wrong');
    const r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-ref',
      'fuzz',
      '-secret',
      'pass:not-the-secret',
      '-newkey',
      key,
      '-subject',
      '/CN=wrong',
      '-certout',
      'wrong.pem',
      '-unprotected_errors',
      '-rspout',
      'wrong-rsp.der',
    ]);
    assert.notEqual(r.code, 0);
    const [rsp] = await readMessages(cf.home, ['wrong-rsp.der']);
    const f = failure(rsp!.toDer());
    assert.equal(f.type, 'error');
    assert.deepEqual(f.failInfo, ['badMessageCheck']);
    assert.equal(rsp!.extraCerts?.length ? 'signature' : 'none', 'signature');
    // An unknown reference gets the very same answer.
    const unknown = await post(
      macProtect(buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, subject: 'CN=x', ref: 'nobody' }), SECRET),
    );
    assert.equal(unknown.status, 200);
    assert.deepEqual(failure(unknown.body).failInfo, ['badMessageCheck']);
  });

  it('tampered message: badMessageCheck; truncated DER: badDataFormat; both HTTP 200', async () => {
    const der = Buffer.from(seeds.get('ir')!.der);
    const tampered = Buffer.from(der);
    tampered[200]! ^= 0x01;
    const t = await post(tampered);
    assert.equal(t.status, 200);
    assert.ok(['badMessageCheck', 'badDataFormat', 'badAlg'].includes(failure(t.body).failInfo[0]!), failure(t.body).text);
    const cut = await post(der.subarray(0, der.length - 20));
    assert.equal(cut.status, 200);
    assert.deepEqual(failure(cut.body).failInfo, ['badDataFormat']);
    const empty = await post(new Uint8Array(0));
    assert.equal(empty.status, 200);
    assert.deepEqual(failure(empty.body).failInfo, ['badDataFormat']);
  });

  it('transport mistakes: unknown alias 404, wrong content type 415, GET 405, over 64 KiB 413', async () => {
    const der = seeds.get('genm')!.der;
    assert.equal((await post(der, { path: '/.well-known/cmp/p/nope' })).status, 404);
    assert.equal((await post(der, { contentType: 'application/octet-stream' })).status, 415);
    const get = await post(new Uint8Array(0), { method: 'GET' });
    assert.equal(get.status, 405);
    assert.equal(get.headers.allow, 'POST');
    assert.equal((await post(new Uint8Array(70 * 1024))).status, 413);
    const r = await opensslCmp(peer, ['-cmd', 'genm', '-infotype', 'caCerts', '-ref', 'fuzz', '-secret', `pass:${SECRET}`], {
      alias: 'nope',
    });
    assert.notEqual(r.code, 0);
    assert.match(output(r), /404|Not Found/i);
  });

  it('a retried request gets the same answer and never a second certificate', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const der = macProtect(buildIr({ key, subject: 'CN=retried', ref: 'fuzz', implicitConfirm: true }), SECRET);
    const [a, b] = await Promise.all([post(der), post(der)]);
    const c = await post(der);
    assert.equal(a.body.equals(b.body) && b.body.equals(c.body), true, 'the same bytes every time');
    assert.equal(PKIMessage.fromDer(a.body).body.type, 'ip');
    const msg = PKIMessage.fromDer(der);
    const requestId = `cmp-${Buffer.from(msg.header.transactionID!).toString('hex')}`;
    const { rows } = await cf.pool.query('SELECT count(*)::int AS n FROM certificates WHERE request_id = $1', [requestId]);
    assert.equal(rows[0].n, 1);
  });

  it('a replayed message (transaction finished) and a transactionID in use: transactionIdInUse', async () => {
    const replay = await post(seeds.get('ir')!.der);
    assert.deepEqual(failure(replay.body).failInfo, ['transactionIdInUse']);
    // Where the replayed message is the transaction's last one, it is a retry: the same answer again.
    const genm = seeds.get('genm')!.der;
    const [g1, g2] = [await post(genm), await post(genm)];
    assert.ok(g1.body.equals(g2.body));
    const ir = PKIMessage.fromDer(seeds.get('ir')!.der);
    const reuse = buildIr({
      key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      subject: 'CN=reuse',
      ref: 'fuzz',
      transactionID: ir.header.transactionID,
    });
    const r = await post(macProtect(reuse, SECRET));
    assert.equal(r.status, 200);
    assert.deepEqual(failure(r.body).failInfo, ['transactionIdInUse']);
    // The error is MAC-protected with the client's secret: its protection could be verified.
    assert.equal(PKIMessage.fromDer(r.body).extraCerts, undefined);
  });

  it('out-of-order certConf (wrong recipNonce), bad time, wrong protection kind, raVerified without RA', async () => {
    // An open transaction (no implicit confirmation): certConf must answer the ip's senderNonce.
    const ir = buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, subject: 'CN=ordered', ref: 'fuzz' });
    const irDer = macProtect(ir, SECRET);
    const ip = PKIMessage.fromDer((await post(irDer)).body);
    assert.equal(ip.body.type, 'ip');
    const cert = (ip.body.content as CertRepMessage).response[0]!.certifiedKeyPair!.certificate!;
    const certConf = (recipNonce: Uint8Array) => {
      const conf = buildCertConf(ir, ip, cert);
      conf.header.recipNonce = recipNonce;
      return macProtect(conf, SECRET);
    };
    assert.deepEqual(failure((await post(certConf(new Uint8Array(randomBytes(16))))).body).failInfo, ['badRecipientNonce']);
    assert.equal(PKIMessage.fromDer((await post(certConf(ip.header.senderNonce!))).body).body.type, 'pkiconf');
    // The ir again, now that the transaction went on: a replay.
    assert.deepEqual(failure((await post(irDer)).body).failInfo, ['transactionIdInUse']);
    const late = buildIr({
      key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      subject: 'CN=late',
      ref: 'fuzz',
      messageTime: new Date(Date.now() - 3600_000),
    });
    assert.deepEqual(failure((await post(macProtect(late, SECRET))).body).failInfo, ['badTime']);
    const cr = seeds.get('cr')!;
    const sig = PKIMessage.fromDer(cr.der);
    sig.header.transactionID = new Uint8Array(randomBytes(16));
    sig.header.senderNonce = new Uint8Array(randomBytes(16));
    protectWithSignature(sig, createPrivateKey(await readFile(cr.key!)), 'ecdsa-sha256');
    assert.deepEqual(failure((await post(sig.toDer(), { path: '/.well-known/cmp/p/maconly' })).body).failInfo, ['wrongIntegrity']);
    const ra = buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, subject: 'CN=ra', ref: 'fuzz' });
    (ra.body.content as { messages: Array<{ popo: unknown }> }).messages[0]!.popo = new ProofOfPossession('raVerified');
    assert.deepEqual(failure((await post(macProtect(ra, SECRET))).body).failInfo, ['badPOP']);
  });

  it('another client may not follow up on a transaction; policy refusals are negative ip', async () => {
    const conf = PKIMessage.fromDer(seeds.get('certConf')!.der);
    conf.header.senderKID = new TextEncoder().encode('other');
    assert.deepEqual(failure((await post(macProtect(conf, 'other-secret-1'))).body).failInfo, ['notAuthorized']);
    const rsa = buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey, subject: 'CN=p521', ref: 'fuzz' });
    const r = failure((await post(macProtect(rsa, SECRET))).body);
    assert.equal(r.type, 'ip');
    assert.deepEqual(r.failInfo, ['badCertTemplate']);
    assert.match(r.text, /P-521|curve/);
  });

  it('PBMAC1 protection (RFC 9481): the request verifies, the ip is protected with PBMAC1 too', async () => {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const der = macProtect(buildIr({ key, subject: 'CN=pbmac1', ref: 'fuzz', implicitConfirm: true }), SECRET, {
      type: 'pbmac1',
      hash: 'sha256',
      mac: 'sha256',
      iterations: 10_000,
    });
    const ip = PKIMessage.fromDer((await post(der)).body);
    assert.equal(ip.body.type, 'ip', failure(ip.toDer()).text);
    const p = describeProtection(ip.header.protectionAlg!, 100_000);
    assert.equal(p.type, 'pbmac1');
    assert.equal(verifyMac(ip, p as never, new TextEncoder().encode(SECRET)), true);
    assert.equal((ip.body.content as CertRepMessage).response[0]!.status.status, 0);
  });

  it("genm crlStatusList: the CRL when the client's is older, nothing when it is current", async () => {
    const crlUrl = `http://localhost:${cf.httpPort}/crl/certflow-issuing.crl`;
    const genm = (thisUpdate?: Date) => {
      const dpn = distributionPointName(crlUrl);
      const list = derSequence([new CRLStatus({ dpn }, thisUpdate).toDer()]);
      const ir = buildIr({ key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, subject: 'CN=crl', ref: 'fuzz' });
      return macProtect(
        new PKIMessage(ir.header, { type: 'genm', content: [new InfoTypeAndValue(INFO_TYPES.crlStatusList, list)] }),
        SECRET,
      );
    };
    const fresh = PKIMessage.fromDer((await post(genm(new Date(0)))).body);
    assert.equal(fresh.body.type, 'genp', failure(fresh.toDer()).text);
    const item = (fresh.body.content as InfoTypeAndValue[])[0]!;
    assert.equal(item.infoType, INFO_TYPES.crls);
    assert.ok(item.infoValue && item.infoValue.length > 100);
    const current = PKIMessage.fromDer((await post(genm(new Date(Date.now() + 3600_000)))).body);
    assert.equal((current.body.content as InfoTypeAndValue[])[0]!.infoValue, undefined);
  });

  it('fuzz: mutated DER of every message type never gets a 500 and the server stays up', async () => {
    const seed = Number(process.env.CERTFLOW_TEST_SEED ?? Date.now() % 100_000);
    let state = seed >>> 0 || 1;
    const rand = (n: number) => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    const statuses = new Map<number, number>();
    const perType = Number(process.env.CERTFLOW_CMP_FUZZ_CASES ?? 25);
    for (const [type, s] of seeds) {
      for (let i = 0; i < perType; i++) {
        const der = mutate(Buffer.from(s.der), rand);
        let candidate: Uint8Array = der;
        // Half of the cases are re-protected, so the mutation reaches the handlers, not only the parser.
        if (i % 2 === 1) {
          try {
            const m = PKIMessage.fromDer(der);
            if (s.key) protectWithSignature(m, createPrivateKey(await readFile(s.key)), 'ecdsa-sha256');
            else protectWithMac(m, new TextEncoder().encode(SECRET), { type: 'pbm', hash: 'sha256', mac: 'hmac-sha1', iterations: 500 });
            if (s.cert) m.extraCerts = [pemDecodeAll(await readFile(s.cert, 'utf8'))[0]!.der];
            candidate = m.toDer();
          } catch {
            /* not parseable: send the raw mutation */
          }
        }
        const r = await post(candidate);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (!(r.status === 200 || (r.status >= 400 && r.status < 500))) {
          const log = await readFile(join(cf.home, 'server.log'), 'utf8');
          assert.fail(
            `seed ${seed}, ${type} case ${i}: HTTP ${r.status} ${r.body.toString('utf8', 0, 200)}\n${Buffer.from(candidate).toString('hex')}\n${log.slice(-3000)}`,
          );
        }
        if (r.status === 200) PKIMessage.fromDer(new Uint8Array(r.body));
      }
    }
    const health = await fetch(`http://127.0.0.1:${cf.httpPort}/healthz`);
    assert.equal(health.status, 200, `seed ${seed}: the server is still healthy`);
    const { rows } = await cf.pool.query("SELECT count(*)::int AS n FROM certificates WHERE status = 'signing'");
    assert.equal(rows[0].n, 0);
  });
});

/** One to three mutations: bit flips, byte changes, truncation, insertion, length-byte edits. */
function mutate(der: Buffer, rand: (n: number) => number): Buffer {
  let out = Buffer.from(der);
  const n = 1 + rand(3);
  for (let k = 0; k < n; k++) {
    const pos = rand(out.length || 1);
    switch (rand(6)) {
      case 0:
        out[pos] = out[pos]! ^ (1 << rand(8));
        break;
      case 1:
        out[pos] = rand(256);
        break;
      case 2:
        out = out.subarray(0, pos);
        break;
      case 3:
        out = Buffer.concat([out.subarray(0, pos), Buffer.from([rand(256)]), out.subarray(pos)]);
        break;
      case 4:
        out = Buffer.concat([out.subarray(0, pos), out.subarray(pos + 1 + rand(8))]);
        break;
      default:
        // Lengths: make a short-form length byte larger or smaller.
        if (out[pos]! < 0x80) out[pos] = (out[pos]! + (rand(2) ? 1 : 255)) & 0x7f;
    }
  }
  return out;
}
