/**
 * The CMP/CRMF structures against real DER from OpenSSL 3 (`openssl cmp` client and its
 * mock server, test/fixtures/cmp/generate.sh): every message type parses, and re-encoding
 * it from the parsed fields (not from the kept bytes) gives the same bytes; the protection
 * (PasswordBasedMac, signatures) and the proofs of possession verify; PBMAC1 round-trips.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { X509Certificate } from 'node:crypto';
import {
  CertConfirmContent,
  CertRepMessage,
  ErrorMsgContent,
  PKIMessage,
  PollRepContent,
  RevReqContent,
  certHash,
  computeMac,
  crlEntryReasonCode,
  describeProtection,
  protectWithMac,
  readCertReqMsg,
  structureDer,
  verifyMac,
  verifySignatureProtection,
  type CertReqMessages,
} from '../../src/pki/cmp/index.ts';
import { PKIBody } from '../../src/pki/cmp/structures.ts';
import { CaError } from '../../src/core/errors.ts';

const dir = fileURLToPath(new URL('../fixtures/cmp/', import.meta.url));
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.der'));
const load = (name: string) => new Uint8Array(readFileSync(dir + name));
const SECRET = new TextEncoder().encode('test1234');

describe('CMP structures from openssl cmp DER', () => {
  it('has a vector of every message type', () => {
    const types = new Set(fixtures.map((f) => PKIMessage.fromBER(load(f)).body.type));
    for (const t of [
      'ir',
      'ip',
      'cr',
      'cp',
      'p10cr',
      'kur',
      'kup',
      'rr',
      'rp',
      'certConf',
      'pkiconf',
      'pollReq',
      'pollRep',
      'genm',
      'genp',
      'error',
    ]) {
      assert.ok(types.has(t as never), `a ${t} vector`);
    }
  });

  for (const f of fixtures) {
    it(`${f}: parses and re-encodes from its fields byte for byte`, () => {
      const der = load(f);
      const msg = PKIMessage.fromBER(der);
      const header = structureDer(msg.header);
      const body = structureDer({ toSchema: () => PKIBody.toSchema(msg.body) });
      assert.deepEqual(Buffer.from(header), Buffer.from(msg.raw!.header), 'header');
      assert.deepEqual(Buffer.from(body), Buffer.from(msg.raw!.body), 'body');
      msg.raw = undefined;
      assert.deepEqual(Buffer.from(msg.toBER()), Buffer.from(der));
      assert.equal(msg.header.pvno, 2);
      assert.equal(msg.header.transactionID?.length, 16);
      assert.equal(msg.header.senderNonce?.length, 16);
    });
  }

  it("PasswordBasedMac of the ir and of the mock server's ip verify with the shared secret, not with another", () => {
    for (const f of ['ir.der', 'ip.der', 'certConf.der', 'pkiConf.der', 'genm.der', 'p10cr.der']) {
      const msg = PKIMessage.fromBER(load(f));
      const p = describeProtection(msg.header.protectionAlg!, 100_000);
      assert.equal(p.type, 'pbm', f);
      assert.match(p.name, /PasswordBasedMac\(sha256, HMAC-sha1, 500 iterations\)/);
      assert.equal(verifyMac(msg, p as never, SECRET), true, f);
      assert.equal(verifyMac(msg, p as never, new TextEncoder().encode('test12345')), false, f);
    }
  });

  it('signature protection of cr, kur, rr verifies with the signer certificate in extraCerts', () => {
    for (const f of ['cr.der', 'kur.der', 'rr.der', 'pollReq.der', 'cp.der']) {
      const msg = PKIMessage.fromBER(load(f));
      const p = describeProtection(msg.header.protectionAlg!, 100_000);
      assert.equal(p.type, 'signature');
      const cert = new X509Certificate(Buffer.from(msg.extraCerts![0]!));
      const spki = new Uint8Array(cert.publicKey.export({ type: 'spki', format: 'der' }));
      assert.equal(verifySignatureProtection(msg, p as never, spki), true, f);
      const tampered = PKIMessage.fromBER(load(f));
      tampered.raw!.body = tampered.raw!.body.slice();
      tampered.raw!.body[tampered.raw!.body.length - 3]! ^= 1;
      assert.equal(verifySignatureProtection(tampered, p as never, spki), false, `${f} tampered`);
    }
  });

  it('CRMF: ir, cr and kur carry a signature POP that verifies; templates read as requests', () => {
    for (const f of ['ir.der', 'cr.der', 'kur.der']) {
      const msg = PKIMessage.fromBER(load(f));
      const req = readCertReqMsg((msg.body.content as CertReqMessages).messages[0]!, { allowRaVerified: false });
      assert.equal(req.pop, 'signature');
      assert.equal(req.csr.key.type, 'ec');
      assert.deepEqual(
        req.csr.subject.map((a) => a.value),
        ['device-1'],
      );
    }
    const kur = readCertReqMsg((PKIMessage.fromBER(load('kur.der')).body.content as CertReqMessages).messages[0]!, {
      allowRaVerified: false,
    });
    assert.ok(kur.oldCertId, 'kur names the old certificate (oldCertID control)');
  });

  it('CRMF: an altered template fails the POP (badPOP), raVerified needs an RA', () => {
    const msg = PKIMessage.fromBER(load('ir.der'));
    const reqMsg = (msg.body.content as CertReqMessages).messages[0]!;
    reqMsg.certReqDer = undefined;
    reqMsg.certReq.certTemplate.subject = reqMsg.certReq.certTemplate.issuer ?? new Uint8Array([0x30, 0x00]);
    assert.throws(
      () => readCertReqMsg(reqMsg, { allowRaVerified: false }),
      (e: unknown) => CaError.is(e) && e.rule === 'crmf.pop',
    );
    reqMsg.popo = { type: 'raVerified', toSchema: () => undefined } as never;
    assert.throws(
      () => readCertReqMsg(reqMsg, { allowRaVerified: false }),
      (e: unknown) => CaError.is(e) && e.rule === 'crmf.pop',
    );
  });

  it('certConf carries the hash of the certificate in the ip; the rejecting one a rejection status', () => {
    const ip = PKIMessage.fromBER(load('ip.der')).body.content as CertRepMessage;
    const cert = ip.response[0]!.certifiedKeyPair!.certificate!;
    const conf = PKIMessage.fromBER(load('certConf.der')).body.content as CertConfirmContent;
    assert.deepEqual(Buffer.from(conf.statuses[0]!.certHash), Buffer.from(certHash(cert)));
    const rejecting = PKIMessage.fromBER(load('certConf-rejecting.der')).body.content as CertConfirmContent;
    assert.equal(rejecting.statuses[0]!.statusInfo?.status, 2);
    assert.ok(rejecting.statuses[0]!.statusInfo?.statusString?.length);
    assert.equal((PKIMessage.fromBER(load('cp-p10.der')).body.content as CertRepMessage).response[0]!.certReqId, -1);
  });

  it('waiting kup, pollRep, rr with its reason, error with failure bits', () => {
    const waiting = PKIMessage.fromBER(load('kup-waiting.der')).body.content as CertRepMessage;
    assert.equal(waiting.response[0]!.status.status, 3);
    const pollRep = PKIMessage.fromBER(load('pollRep.der')).body.content as PollRepContent;
    assert.equal(pollRep.entries[0]!.certReqId, 0);
    const rr = PKIMessage.fromBER(load('rr.der')).body.content as RevReqContent;
    assert.equal(crlEntryReasonCode(rr.details[0]!.crlEntryDetails), 1);
    assert.ok(rr.details[0]!.certDetails.serialNumber && rr.details[0]!.certDetails.issuer);
    const error = PKIMessage.fromBER(load('error.der')).body.content as ErrorMsgContent;
    assert.equal(error.pKIStatusInfo.status, 2);
  });

  it('PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256): protect and verify round trip; parameters re-read', () => {
    const msg = PKIMessage.fromBER(load('genm.der'));
    protectWithMac(msg, SECRET, { type: 'pbmac1', hash: 'sha256', mac: 'sha256', iterations: 10_000 });
    const again = PKIMessage.fromBER(msg.toBER());
    const p = describeProtection(again.header.protectionAlg!, 100_000);
    assert.equal(p.type, 'pbmac1');
    assert.match(p.name, /PBMAC1\(PBKDF2-HMAC-sha256, HMAC-sha256, 10000 iterations\)/);
    assert.equal(verifyMac(again, p as never, SECRET), true);
    assert.equal(verifyMac(again, p as never, new TextEncoder().encode('nope-nope')), false);
    // PBM with SHA-1 OWF and HMAC-SHA256.
    protectWithMac(msg, SECRET, { type: 'pbm', hash: 'sha1', mac: 'sha256', iterations: 1000 });
    const pbm = PKIMessage.fromBER(msg.toBER());
    const q = describeProtection(pbm.header.protectionAlg!, 100_000);
    assert.equal(verifyMac(pbm, q as never, SECRET), true);
    assert.equal(computeMac(q as never, SECRET, pbm.protectedPart()).length, 32);
  });

  it('iteration counts beyond the cap (or below 100) are refused as badAlg', () => {
    const msg = PKIMessage.fromBER(load('genm.der'));
    protectWithMac(msg, SECRET, { type: 'pbm', hash: 'sha256', mac: 'sha256', iterations: 200_000 });
    assert.throws(
      () => describeProtection(msg.header.protectionAlg!, 100_000),
      (e: unknown) => CaError.is(e) && e.rule === 'cmp.protection.alg',
    );
    protectWithMac(msg, SECRET, { type: 'pbmac1', hash: 'sha256', mac: 'sha256', iterations: 50 });
    assert.throws(
      () => describeProtection(msg.header.protectionAlg!, 100_000),
      (e: unknown) => CaError.is(e) && e.rule === 'cmp.protection.alg',
    );
  });

  it('malformed DER is a CaError (cmp.asn1 / malformed), never another exception', () => {
    const der = load('ir.der');
    for (let cut = 1; cut < der.length; cut += 7) {
      assert.throws(
        () => PKIMessage.fromBER(der.slice(0, cut)),
        (e: unknown) => CaError.is(e, 'malformed'),
      );
    }
  });
});
