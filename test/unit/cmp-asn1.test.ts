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
  verifyMac,
  verifySignatureProtection,
  type CertReqMessages,
} from '../../src/pki/cmp/index.ts';
import { NULL_DN, PKIBody } from '../../src/pki/cmp/structures.ts';
import { NULL, bitString, int, octets, seq } from '../../src/pki/cmp/asn1.ts';
import { tlv } from '../../src/pki/der.ts';
import { CaError } from '../../src/core/errors.ts';
import { mutateDer } from '../helpers/der-mutate.ts';
import { rng } from '../helpers/rng.ts';

const dir = fileURLToPath(new URL('../fixtures/cmp/', import.meta.url));
const fixtures = readdirSync(dir).filter((f) => f.endsWith('.der'));
const load = (name: string) => new Uint8Array(readFileSync(dir + name));
const SECRET = new TextEncoder().encode('test1234');

describe('CMP structures from openssl cmp DER', () => {
  it('has a vector of every message type', () => {
    const types = new Set(fixtures.map((f) => PKIMessage.fromDer(load(f)).body.type));
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
      const msg = PKIMessage.fromDer(der);
      const header = msg.header.toDer();
      const body = PKIBody.toDer(msg.body);
      assert.deepEqual(Buffer.from(header), Buffer.from(msg.raw!.header), 'header');
      assert.deepEqual(Buffer.from(body), Buffer.from(msg.raw!.body), 'body');
      msg.raw = undefined;
      assert.deepEqual(Buffer.from(msg.toDer()), Buffer.from(der));
      assert.equal(msg.header.pvno, 2);
      assert.equal(msg.header.transactionID?.length, 16);
      assert.equal(msg.header.senderNonce?.length, 16);
    });
  }

  it("PasswordBasedMac of the ir and of the mock server's ip verify with the shared secret, not with another", () => {
    for (const f of ['ir.der', 'ip.der', 'certConf.der', 'pkiConf.der', 'genm.der', 'p10cr.der']) {
      const msg = PKIMessage.fromDer(load(f));
      const p = describeProtection(msg.header.protectionAlg!, 100_000);
      assert.equal(p.type, 'pbm', f);
      assert.match(p.name, /PasswordBasedMac\(sha256, HMAC-sha1, 500 iterations\)/);
      assert.equal(verifyMac(msg, p as never, SECRET), true, f);
      assert.equal(verifyMac(msg, p as never, new TextEncoder().encode('test12345')), false, f);
    }
  });

  it('signature protection of cr, kur, rr verifies with the signer certificate in extraCerts', () => {
    for (const f of ['cr.der', 'kur.der', 'rr.der', 'pollReq.der', 'cp.der']) {
      const msg = PKIMessage.fromDer(load(f));
      const p = describeProtection(msg.header.protectionAlg!, 100_000);
      assert.equal(p.type, 'signature');
      const cert = new X509Certificate(Buffer.from(msg.extraCerts![0]!));
      const spki = new Uint8Array(cert.publicKey.export({ type: 'spki', format: 'der' }));
      assert.equal(verifySignatureProtection(msg, p as never, spki), true, f);
      const tampered = PKIMessage.fromDer(load(f));
      tampered.raw!.body = tampered.raw!.body.slice();
      tampered.raw!.body[tampered.raw!.body.length - 3]! ^= 1;
      assert.equal(verifySignatureProtection(tampered, p as never, spki), false, `${f} tampered`);
    }
  });

  it('CRMF: ir, cr and kur carry a signature POP that verifies; templates read as requests', () => {
    for (const f of ['ir.der', 'cr.der', 'kur.der']) {
      const msg = PKIMessage.fromDer(load(f));
      const req = readCertReqMsg((msg.body.content as CertReqMessages).messages[0]!, { allowRaVerified: false });
      assert.equal(req.pop, 'signature');
      assert.equal(req.csr.key.type, 'ec');
      assert.deepEqual(
        req.csr.subject.map((a) => a.value),
        ['device-1'],
      );
    }
    const kur = readCertReqMsg((PKIMessage.fromDer(load('kur.der')).body.content as CertReqMessages).messages[0]!, {
      allowRaVerified: false,
    });
    assert.ok(kur.oldCertId, 'kur names the old certificate (oldCertID control)');
  });

  it('CRMF: an altered template fails the POP (badPOP), raVerified needs an RA', () => {
    const msg = PKIMessage.fromDer(load('ir.der'));
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
    const ip = PKIMessage.fromDer(load('ip.der')).body.content as CertRepMessage;
    const cert = ip.response[0]!.certifiedKeyPair!.certificate!;
    const conf = PKIMessage.fromDer(load('certConf.der')).body.content as CertConfirmContent;
    assert.deepEqual(Buffer.from(conf.statuses[0]!.certHash), Buffer.from(certHash(cert)));
    const rejecting = PKIMessage.fromDer(load('certConf-rejecting.der')).body.content as CertConfirmContent;
    assert.equal(rejecting.statuses[0]!.statusInfo?.status, 2);
    assert.ok(rejecting.statuses[0]!.statusInfo?.statusString?.length);
    assert.equal((PKIMessage.fromDer(load('cp-p10.der')).body.content as CertRepMessage).response[0]!.certReqId, -1);
  });

  it('waiting kup, pollRep, rr with its reason, error with failure bits', () => {
    const waiting = PKIMessage.fromDer(load('kup-waiting.der')).body.content as CertRepMessage;
    assert.equal(waiting.response[0]!.status.status, 3);
    const pollRep = PKIMessage.fromDer(load('pollRep.der')).body.content as PollRepContent;
    assert.equal(pollRep.entries[0]!.certReqId, 0);
    const rr = PKIMessage.fromDer(load('rr.der')).body.content as RevReqContent;
    assert.equal(crlEntryReasonCode(rr.details[0]!.crlEntryDetails), 1);
    assert.ok(rr.details[0]!.certDetails.serialNumber && rr.details[0]!.certDetails.issuer);
    const error = PKIMessage.fromDer(load('error.der')).body.content as ErrorMsgContent;
    assert.equal(error.pKIStatusInfo.status, 2);
  });

  it('PBMAC1 (PBKDF2-HMAC-SHA256, HMAC-SHA256): protect and verify round trip; parameters re-read', () => {
    const msg = PKIMessage.fromDer(load('genm.der'));
    protectWithMac(msg, SECRET, { type: 'pbmac1', hash: 'sha256', mac: 'sha256', iterations: 10_000 });
    const again = PKIMessage.fromDer(msg.toDer());
    const p = describeProtection(again.header.protectionAlg!, 100_000);
    assert.equal(p.type, 'pbmac1');
    assert.match(p.name, /PBMAC1\(PBKDF2-HMAC-sha256, HMAC-sha256, 10000 iterations\)/);
    assert.equal(verifyMac(again, p as never, SECRET), true);
    assert.equal(verifyMac(again, p as never, new TextEncoder().encode('nope-nope')), false);
    // PBM with SHA-1 OWF and HMAC-SHA256.
    protectWithMac(msg, SECRET, { type: 'pbm', hash: 'sha1', mac: 'sha256', iterations: 1000 });
    const pbm = PKIMessage.fromDer(msg.toDer());
    const q = describeProtection(pbm.header.protectionAlg!, 100_000);
    assert.equal(verifyMac(pbm, q as never, SECRET), true);
    assert.equal(computeMac(q as never, SECRET, pbm.protectedPart()).length, 32);
  });

  it('iteration counts beyond the cap (or below 100) are refused as badAlg', () => {
    const msg = PKIMessage.fromDer(load('genm.der'));
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
        () => PKIMessage.fromDer(der.slice(0, cut)),
        (e: unknown) => CaError.is(e, 'malformed'),
      );
    }
  });
});

describe('PKIMessage on its bytes: DER only, every byte read', () => {
  const ascii = (t: string) => new Uint8Array(Buffer.from(t, 'latin1'));
  /** A pkiconf message with the given header fields after pvno, sender and recipient. */
  const message = (fields: { pvno?: Uint8Array; header?: Uint8Array[]; body?: Uint8Array }) =>
    seq([
      seq([fields.pvno ?? int(2), NULL_DN, NULL_DN, ...(fields.header ?? [tlv(0xa4, octets(new Uint8Array(16)))])]),
      fields.body ?? tlv(0xb3, NULL),
    ]);
  const refused = (der: Uint8Array, why: RegExp) =>
    assert.throws(
      () => PKIMessage.fromDer(der),
      (e: unknown) => CaError.is(e, 'malformed') && why.test((e as Error).message),
    );
  const errorBody = (statusInfo: Uint8Array) => tlv(0xb7, seq([statusInfo]));

  it('reads a GeneralizedTime with fractions of a second (as DER writes them)', () => {
    const msg = PKIMessage.fromDer(message({ header: [tlv(0xa0, tlv(0x18, ascii('20261207193000.25Z')))] }));
    assert.equal(msg.header.messageTime?.toISOString(), '2026-12-07T19:30:00.250Z');
    refused(message({ header: [tlv(0xa0, tlv(0x18, ascii('20261207193000+0100')))] }), /messageTime has a time/);
    refused(message({ header: [tlv(0xa0, tlv(0x18, ascii('20261307193000Z')))] }), /no date/);
  });

  it('refuses BER framing, with the reason', () => {
    const der = message({});
    refused(Uint8Array.of(0x30, 0x80, ...der.subarray(2), 0, 0), /indefinite length, which is BER/);
    refused(Uint8Array.of(0x30, 0x81, ...der.subarray(1)), /a length is not minimal/);
    const withString = message({ header: [tlv(0xa4, tlv(0x24, octets(new Uint8Array(4))))] });
    refused(withString, /constructed string \(BER\)/);
  });

  it('refuses elements nested deeper than 64 levels, however deep (no stack overflow)', () => {
    for (const depth of [65, 15_000]) {
      let el: Uint8Array = NULL;
      for (let i = 0; i < depth; i++) el = seq([el]);
      refused(el, /nests elements deeper than 64 levels/);
    }
  });

  it('refuses values that are not DER: a long INTEGER, another type for INTEGER, bad UTF-8, loose failure bits', () => {
    refused(message({ pvno: tlv(0x02, Uint8Array.of(0, 2)) }), /pvno: is not DER \(an INTEGER with a leading octet too many\)/);
    refused(message({ pvno: tlv(0x0a, Uint8Array.of(2)) }), /pvno: expected an INTEGER/);
    refused(message({ pvno: tlv(0x02, new Uint8Array(0)) }), /pvno: is an INTEGER without content octets/);
    refused(message({ body: errorBody(seq([int(2), seq([tlv(0x0c, Uint8Array.of(0xc3, 0x28))])])) }), /is not valid UTF-8/);
    // badMessageCheck (bit 1): DER writes 03 02 06 40; with 0 unused bits the trailing zeros are still there.
    const failInfo = (unused: number) => errorBody(seq([int(2), bitString(Uint8Array.of(0x40), unused)]));
    const read = PKIMessage.fromDer(message({ body: failInfo(6) })).body.content as ErrorMsgContent;
    assert.deepEqual(read.pKIStatusInfo.failInfo, ['badMessageCheck']);
    refused(message({ body: failInfo(0) }), /failInfo: is not DER \(a named BIT STRING ends with its last set bit\)/);
    refused(
      message({ body: errorBody(seq([int(2), bitString(Uint8Array.of(0, 0, 0, 0x10), 4)])) }),
      /has bit 27 set, which RFC 9810 does not name/,
    );
  });

  it('mutated messages: each is read to the very bytes it came in, or refused as malformed', () => {
    const random = rng(20261207).int;
    const all = fixtures.map(load);
    const counts = { read: 0, refused: 0 };
    for (let i = 0; i < 3000; i++) {
      let der: Uint8Array = all[random(all.length)]!;
      for (let n = 1 + random(2); n > 0; n--) der = mutateDer(der, random, all);
      let msg: PKIMessage;
      try {
        msg = PKIMessage.fromDer(der);
      } catch (e) {
        assert.ok(CaError.is(e, 'malformed'), `${Buffer.from(der).toString('hex')}: ${(e as Error).stack}`);
        counts.refused++;
        continue;
      }
      counts.read++;
      // Every field was read: writing the message again from its fields gives the same bytes.
      const raw = msg.raw!;
      assert.deepEqual(Buffer.from(msg.header.toDer()), Buffer.from(raw.header), Buffer.from(der).toString('hex'));
      assert.deepEqual(Buffer.from(PKIBody.toDer(msg.body)), Buffer.from(raw.body), Buffer.from(der).toString('hex'));
      msg.raw = undefined;
      assert.deepEqual(Buffer.from(msg.toDer()), Buffer.from(der));
      // What reads the message further refuses with a CaError too, never another exception.
      const further: Array<() => unknown> = [() => msg.header.protectionAlg && describeProtection(msg.header.protectionAlg, 100_000)];
      const b = msg.body;
      if (b.type === 'ir' || b.type === 'cr' || b.type === 'kur')
        for (const m of b.content.messages) further.push(() => readCertReqMsg(m, { allowRaVerified: true }));
      if (b.type === 'rr') for (const d of b.content.details) further.push(() => crlEntryReasonCode(d.crlEntryDetails));
      for (const f of further) {
        try {
          f();
        } catch (e) {
          assert.ok(CaError.is(e), `${Buffer.from(der).toString('hex')}: ${(e as Error).stack}`);
        }
      }
    }
    // Both outcomes are common: the mutations reach the readers, not only the framing check.
    assert.ok(counts.read > 800 && counts.refused > 800, JSON.stringify(counts));
  });
});
