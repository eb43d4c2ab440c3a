import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError } from '../../src/core/errors.ts';
import { signOcspResponse } from '../../src/ca/ocsp.ts';
import {
  buildOcspResponseData,
  certIdMatches,
  describeCertificate,
  describeOcspResponse,
  keyIdentifier,
  ocspCertId,
  ocspErrorResponse,
  ocspRequestFromGetPath,
  parseOcspRequest,
  verifyOcspResponseSignature,
  type CertSummary,
  type OcspCertId,
  type OcspCertStatus,
  type OcspErrorStatus,
} from '../../src/pki/index.ts';
import type { OcspRequest } from '../../src/pki/ocsp.ts';
import { integerFromHex } from '../../src/pki/integer.ts';
import { serialToHex } from '../../src/pki/serial.ts';
import { REVOCATION_REASONS } from '../../src/pki/crl.ts';
import { NULL, bitString, derChildren, derElement, oidDer, parseDer, tlv } from '../../src/pki/der.ts';
import { signatureAlgorithmDer } from '../../src/pki/algorithms.ts';
import { mutateDer } from '../helpers/der-mutate.ts';
import { rng } from '../helpers/rng.ts';
import { tmpFile, writePem } from '../helpers/openssl.ts';
import { hierarchy, issueLeaf, opensslAll, writeDer, type Hierarchy } from '../helpers/revocation.ts';

const HOUR = 3_600_000;
const second = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

for (const keyAlg of ['ec-p256', 'rsa-2048'] as const) {
  describe(`OCSP with ${keyAlg} CAs`, () => {
    let h: Hierarchy;
    let issuer: CertSummary;
    let leaf: { der: Uint8Array; serialHex: string; pem: string };
    let other: { der: Uint8Array; serialHex: string; pem: string };
    let files: { issuing: string; cas: string };
    const ca = () => ({ certDer: h.issuing.certDer, keyId: h.issuing.keyId, keyAlg: h.issuing.keyAlg });

    before(async () => {
      h = await hierarchy(keyAlg);
      issuer = describeCertificate(h.issuing.certDer);
      const [a, b] = await Promise.all([issueLeaf(h, 'leaf.example'), issueLeaf(h, 'other.example')]);
      leaf = { ...a, pem: writePem('leaf.pem', a.der) };
      other = { ...b, pem: writePem('other.pem', b.der) };
      files = { issuing: writePem('issuing.pem', h.issuing.certDer), cas: writePem('cas.pem', h.root.certDer, h.issuing.certDer) };
    });

    /** An OCSP request made by openssl for `certs` (paths), returned as DER. */
    function opensslRequest(certs: string[], extra: string[] = []): { der: Uint8Array; file: string } {
      const file = tmpFile('req.der');
      const r = opensslAll(['ocsp', '-issuer', files.issuing, ...extra, ...certs.flatMap((c) => ['-cert', c]), '-reqout', file]);
      assert.equal(r.code, 0, r.out);
      return { der: new Uint8Array(readFileSync(file)), file };
    }

    /**
     * `openssl ocsp` checking `resp` (signature, signer, nonce) against the request, with
     * root + issuing as trust anchors. With `certs`, openssl also prints each certificate's
     * status; it then builds its own request from them, adding a fresh nonce unless told
     * -no_nonce, so the nonce comparison with -reqin only happens without `certs`.
     */
    function opensslCheck(resp: Uint8Array, reqFile: string, certs: string[] = []) {
      const perCert = certs.length ? ['-no_nonce', ...certs.flatMap((c) => ['-cert', c])] : [];
      return opensslAll([
        'ocsp',
        '-respin',
        writeDer('resp.der', resp),
        '-reqin',
        reqFile,
        '-issuer',
        files.issuing,
        '-CAfile',
        files.cas,
        ...perCert,
        '-resp_text',
      ]);
    }

    const sign = (certIds: OcspCertId[], statuses: OcspCertStatus[], nonce?: Uint8Array) => {
      const now = second(new Date());
      return signOcspResponse(h.keys, ca(), {
        producedAt: now,
        responses: certIds.map((certId, i) => ({
          certId,
          status: statuses[i]!,
          thisUpdate: now,
          nextUpdate: new Date(now.getTime() + HOUR),
        })),
        nonce,
      });
    };

    it('parses openssl requests (SHA-1 and SHA-256 CertIDs) and matches the issuer', () => {
      const req = parseOcspRequest(opensslRequest([leaf.pem], ['-no_nonce']).der);
      assert.equal(req.nonce, undefined);
      assert.equal(req.certIds.length, 1);
      const [id] = req.certIds;
      assert.equal(id!.hashAlgorithm, '1.3.14.3.2.26');
      assert.equal(id!.serialHex, leaf.serialHex);
      assert.ok(certIdMatches(id!, issuer));
      assert.ok(!certIdMatches(id!, describeCertificate(h.root.certDer)));
      assert.deepEqual(id, ocspCertId(issuer, leaf.serialHex, 'sha1'));
      assert.equal(Buffer.from(id!.issuerKeyHash).toString('hex'), issuer.subjectKeyIdHex);

      const sha256 = parseOcspRequest(opensslRequest([leaf.pem, other.pem], ['-no_nonce', '-sha256']).der);
      assert.deepEqual(
        sha256.certIds.map((c) => c.serialHex),
        [leaf.serialHex, other.serialHex],
      );
      assert.equal(sha256.certIds[0]!.hashAlgorithm, '2.16.840.1.101.3.4.2.1');
      assert.ok(sha256.certIds.every((c) => certIdMatches(c, issuer)));
      assert.deepEqual(sha256.certIds[1], ocspCertId(issuer, other.serialHex, 'sha256'));
      assert.ok(!certIdMatches({ ...sha256.certIds[0]!, hashAlgorithm: '1.2.3.4' }, issuer));

      const withNonce = parseOcspRequest(opensslRequest([leaf.pem]).der);
      assert.ok(withNonce.nonce && withNonce.nonce.length > 0);
    });

    it('openssl verifies a "good" response and the echoed nonce', async () => {
      const req = opensslRequest([leaf.pem]);
      const parsed = parseOcspRequest(req.der);
      const resp = await sign(parsed.certIds, [{ status: 'good' }], parsed.nonce);
      const r = opensslCheck(resp, req.file);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /Response verify OK/);
      assert.match(r.out, /Cert Status: good/);
      assert.doesNotMatch(r.out, /WARNING|error/i);
      assert.match(r.out, /OCSP Nonce:\s*\n\s*([0-9A-F]+)/);
      assert.equal(/OCSP Nonce:\s*\n\s*([0-9A-F]+)/.exec(r.out)?.[1], Buffer.from(parsed.nonce!).toString('hex').toUpperCase());
      assert.ok(r.out.includes(`Responder Id: ${issuer.subjectKeyIdHex!.toUpperCase()}`), r.out);
      const named = opensslCheck(resp, req.file, [leaf.pem]);
      assert.equal(named.code, 0, named.out);
      assert.match(named.out, /leaf\.pem: good/);

      const missing = opensslCheck(await sign(parsed.certIds, [{ status: 'good' }]), req.file);
      assert.match(missing.out, /WARNING: no nonce in response/);
      const wrong = await sign(parsed.certIds, [{ status: 'good' }], new Uint8Array([0x04, 0x02, 0xab, 0xcd]));
      const mismatch = opensslCheck(wrong, req.file);
      assert.notEqual(mismatch.code, 0, mismatch.out);
      assert.match(mismatch.out, /Nonce Verify error/);
    });

    it('openssl reads revoked (with reason), good and unknown statuses in one response', async () => {
      const req = opensslRequest([leaf.pem, other.pem], ['-no_nonce']);
      const parsed = parseOcspRequest(req.der);
      const revokedAt = second(new Date(Date.now() - HOUR));
      const unknownId = ocspCertId(issuer, '7f0102', 'sha1');
      const resp = await sign(
        [...parsed.certIds, unknownId],
        [{ status: 'revoked', revokedAt, reason: 'keyCompromise' }, { status: 'good' }, { status: 'unknown' }],
      );
      const r = opensslCheck(resp, req.file, [leaf.pem, other.pem]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /Response verify OK/);
      assert.match(r.out, /leaf\.pem: revoked\s+This Update: [^\n]+\s+Next Update: [^\n]+\s+Reason: keyCompromise\s+Revocation Time: /);
      assert.match(r.out, /other\.pem: good/);
      assert.match(r.out, /Cert Status: unknown/);
      assert.match(r.out, /Revocation Reason: keyCompromise \(0x1\)/);

      const d = describeOcspResponse(resp);
      assert.equal(d.status, 'successful');
      assert.equal(d.responderKeyIdHex, Buffer.from(keyIdentifier(issuer.spki)).toString('hex'));
      assert.deepEqual(
        d.responses.map(({ serialHex, status, revokedAt: at, reason }) => ({ serialHex, status, at, reason })),
        [
          { serialHex: leaf.serialHex, status: 'revoked', at: revokedAt, reason: 'keyCompromise' },
          { serialHex: other.serialHex, status: 'good', at: undefined, reason: undefined },
          { serialHex: '7f0102', status: 'unknown', at: undefined, reason: undefined },
        ],
      );
      assert.ok(d.responses.every((s) => s.nextUpdate && s.nextUpdate.getTime() - s.thisUpdate.getTime() === HOUR));
      assert.ok(d.producedAt instanceof Date);
      assert.ok(verifyOcspResponseSignature(resp, issuer.spki));
      assert.ok(!verifyOcspResponseSignature(resp, describeCertificate(h.root.certDer).spki));
    });

    it('revoked without a reason (or "unspecified") carries no revocationReason', async () => {
      const req = opensslRequest([leaf.pem], ['-no_nonce']);
      const { certIds } = parseOcspRequest(req.der);
      for (const reason of [undefined, 'unspecified' as const]) {
        const resp = await sign(certIds, [{ status: 'revoked', revokedAt: new Date(), reason }]);
        const r = opensslCheck(resp, req.file, [leaf.pem]);
        assert.equal(r.code, 0, r.out);
        assert.match(r.out, /leaf\.pem: revoked/);
        assert.doesNotMatch(r.out, /Reason:/);
        assert.equal(describeOcspResponse(resp).responses[0]!.reason, undefined);
      }
      const held = await sign(certIds, [{ status: 'revoked', revokedAt: new Date(), reason: 'certificateHold' }]);
      assert.match(opensslCheck(held, req.file, [leaf.pem]).out, /Reason: certificateHold/);
    });

    it('refuses CertIDs of another issuer and signatures that do not verify', async () => {
      const foreign = ocspCertId(describeCertificate(h.root.certDer), leaf.serialHex, 'sha1');
      await assert.rejects(sign([foreign], [{ status: 'good' }]), (e) => CaError.is(e, 'internal'));
      h.keys.tamper = (sig) => {
        const out = sig.slice();
        out[out.length - 1] ^= 1;
        return out;
      };
      try {
        await assert.rejects(
          sign([ocspCertId(issuer, leaf.serialHex, 'sha1')], [{ status: 'good' }]),
          (e) => CaError.is(e, 'internal') && e.rule === 'sign.verify',
        );
      } finally {
        h.keys.tamper = undefined;
      }
    });
  });
}

describe('OCSP request parsing and error responses', () => {
  let h: Hierarchy;
  let request: Uint8Array;
  before(async () => {
    h = await hierarchy('ec-p256');
    const leaf = await issueLeaf(h, 'leaf.example');
    const file = tmpFile('req.der');
    const r = opensslAll([
      'ocsp',
      '-issuer',
      writePem('issuing.pem', h.issuing.certDer),
      '-cert',
      writePem('leaf.pem', leaf.der),
      '-reqout',
      file,
    ]);
    assert.equal(r.code, 0, r.out);
    request = new Uint8Array(readFileSync(file));
  });

  it('malformed requests are CaError(malformed)', () => {
    const bad = [
      new Uint8Array(),
      new Uint8Array([0x30]),
      new Uint8Array([0x30, 0x00]),
      new Uint8Array([...request, 0x00]), // trailing byte
      request.slice(0, request.length - 1), // truncated
      h.issuing.certDer, // DER, but not an OCSP request
      new Uint8Array(Buffer.from('not der at all')),
      new Uint8Array([0x30, 0x04, 0x30, 0x02, 0x30, 0x00]), // empty request list
    ];
    for (const der of bad)
      assert.throws(
        () => parseOcspRequest(der),
        (e) => CaError.is(e, 'malformed'),
        Buffer.from(der).toString('hex'),
      );
  });

  // The reading parseOcspRequest replaced: asn1js' BER parser and pkijs' schema. Kept here
  // as the reference that every request both accept must read the same through.
  function pkijsRead(der: Uint8Array): OcspRequest {
    const req = new pkijs.OCSPRequest({ schema: parseDer(der, 'the OCSP request', 'malformed') });
    const tbs = req.tbsRequest;
    if (tbs.version !== undefined && tbs.version !== 0) throw new Error('version');
    if (tbs.requestList.length === 0) throw new Error('empty request list');
    const certIds = tbs.requestList.map(({ reqCert: id }) => {
      const serial = id.serialNumber.valueBlock.valueHexView;
      if (serial.length === 0 || serial[0]! & 0x80) throw new Error('negative serial');
      return {
        hashAlgorithm: id.hashAlgorithm.algorithmId,
        issuerNameHash: id.issuerNameHash.valueBlock.valueHexView.slice(),
        issuerKeyHash: id.issuerKeyHash.valueBlock.valueHexView.slice(),
        serialHex: serialToHex(serial),
      };
    });
    const nonce = tbs.requestExtensions?.find((e) => e.extnID === '1.3.6.1.5.5.7.48.1.2')?.extnValue.valueBlock.valueHexView;
    if (nonce && (nonce.length === 0 || nonce.length > 128)) throw new Error('nonce size');
    return nonce ? { certIds, nonce: nonce.slice() } : { certIds };
  }
  const outcome = (read: () => OcspRequest): OcspRequest | Error => {
    try {
      return read();
    } catch (e) {
      return e as Error;
    }
  };

  /** A request with every optional field RFC 6960 has, built on its bytes. */
  function everyField(): Uint8Array {
    const oid = oidDer;
    const ext = (type: string, critical: boolean, value: Uint8Array) =>
      tlv(0x30, oid(type), ...(critical ? [Uint8Array.of(0x01, 0x01, 0xff)] : []), tlv(0x04, value));
    const certId = (serial: number[], hashOid = '1.3.14.3.2.26') =>
      tlv(
        0x30,
        tlv(0x30, oid(hashOid), NULL),
        tlv(0x04, new Uint8Array(20).fill(1)),
        tlv(0x04, new Uint8Array(20).fill(2)),
        tlv(0x02, Uint8Array.from(serial)),
      );
    const tbs = tlv(
      0x30,
      tlv(0xa0, Uint8Array.of(0x02, 0x01, 0x00)),
      tlv(0xa1, tlv(0x82, new Uint8Array(Buffer.from('client.example')))),
      tlv(
        0x30,
        tlv(0x30, certId([0x00, 0x80, 0x01])),
        tlv(0x30, certId([0x7f], '2.16.840.1.101.3.4.2.1'), tlv(0xa0, tlv(0x30, ext('1.2.3.4', true, Uint8Array.of(0x05, 0x00))))),
      ),
      tlv(
        0xa2,
        tlv(
          0x30,
          ext('1.3.6.1.5.5.7.48.1.4', false, tlv(0x30, oid('1.3.6.1.5.5.7.48.1.1'))),
          ext('1.3.6.1.5.5.7.48.1.2', false, tlv(0x04, new Uint8Array(16).fill(9))),
        ),
      ),
    );
    const signature = tlv(
      0x30,
      signatureAlgorithmDer('ecdsa-sha256'),
      bitString(new Uint8Array(8)),
      tlv(0xa0, tlv(0x30, h.issuing.certDer)),
    );
    return tlv(0x30, tbs, tlv(0xa0, signature));
  }

  /** The request without its optionalSignature and requestorName, the fields the responder ignores. */
  function withoutIgnoredFields(der: Uint8Array): Uint8Array {
    const [tbs] = derChildren(derElement(der, 'request', 'malformed'), 'request', 'malformed');
    const kept = derChildren(tbs!, 'tbsRequest', 'malformed').filter((f) => f.tag !== 0xa1);
    return tlv(0x30, tlv(0x30, ...kept.map((f) => f.bytes)));
  }

  it('reads a request with every optional field, and openssl requests, as pkijs does', () => {
    const full = parseOcspRequest(everyField());
    assert.deepEqual(full, pkijsRead(everyField()));
    assert.deepEqual(
      full.certIds.map((c) => [c.hashAlgorithm, c.serialHex]),
      [
        ['1.3.14.3.2.26', '8001'],
        ['2.16.840.1.101.3.4.2.1', '7f'],
      ],
    );
    assert.equal(Buffer.from(full.nonce!).toString('hex'), `0410${'09'.repeat(16)}`);
    assert.deepEqual(parseOcspRequest(request), pkijsRead(request));
  });

  it('agrees with pkijs on every mutated request both read, and refuses only BER or broken extensions where pkijs reads', () => {
    const random = rng(20261208).int;
    const counts = { same: 0, bothRefuse: 0, onlyPkijsReads: 0, onlyParsed: 0 };
    const donors = [request, everyField(), h.issuing.certDer];
    for (let i = 0; i < 2000; i++) {
      let der = i % 2 ? everyField() : request.slice();
      for (let n = 1 + random(2); n > 0; n--) der = mutateDer(der, random, donors);
      const got = outcome(() => parseOcspRequest(der));
      const want = outcome(() => pkijsRead(der));
      const hex = Buffer.from(der).toString('hex');
      if (got instanceof Error) {
        assert.ok(CaError.is(got, 'malformed'), `${hex}: ${got.name}: ${got.message}`);
        if (want instanceof Error) counts.bothRefuse++;
        else {
          // What parseOcspRequest refuses and pkijs read: BER (a constructed OCTET STRING, an
          // indefinite length), fields out of order or after the last one (which pkijs'
          // schema skips), extensions that are no Extension or come twice, an OID with no arcs.
          assert.match(
            got.message,
            /not valid DER|trailing data|out of order|fields after|does not end with|malformed (single )?request extension|twice|not a DER BOOLEAN|not an OBJECT IDENTIFIER|not a SEQUENCE|parameters other than NULL|holds \d+ elements|the version is not/,
            `${hex}: ${got.message}`,
          );
          counts.onlyPkijsReads++;
        }
      } else if (want instanceof Error) {
        // asn1js and pkijs check every integer, string, time and certificate they meet, also
        // inside the signature and requestor name the responder ignores, which
        // parseOcspRequest reads only as far as their framing. Without those two, pkijs must
        // read the request as parseOcspRequest did.
        assert.deepEqual(got, pkijsRead(withoutIgnoredFields(der)), `${hex}: parseOcspRequest read what pkijs refuses (${want.message})`);
        counts.onlyParsed++;
      } else {
        assert.deepEqual(got, want, hex);
        counts.same++;
      }
    }
    // The mutations reach past the framing: some requests are still read, some refused by both.
    assert.ok(counts.same > 100 && counts.bothRefuse > 100, JSON.stringify(counts));
  });

  it('decodes the GET form with or without percent-encoding', () => {
    const b64 = Buffer.from(request).toString('base64');
    for (const path of [b64, `/${b64}`, encodeURIComponent(b64), b64.replace(/=/g, '%3D').replace(/\//g, '%2F')]) {
      assert.deepEqual(ocspRequestFromGetPath(path), request, path);
    }
    // "++++////AQ==": '+' and '/' in every spelling, '+' turned into ' ' by form decoding
    const bytes = new Uint8Array([0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff, 0x01]);
    for (const path of ['++++////AQ==', '%2B%2b++%2F%2f//AQ%3D%3d', '    ////AQ', '++++////AQ']) {
      assert.deepEqual(ocspRequestFromGetPath(path), bytes, path);
    }
    assert.ok(parseOcspRequest(ocspRequestFromGetPath(encodeURIComponent(b64))).certIds.length === 1);
    for (const path of ['', '/', 'MEI*', '%E0%A4%A', 'A', 'AB=C']) {
      assert.throws(
        () => ocspRequestFromGetPath(path),
        (e) => CaError.is(e, 'malformed'),
        path,
      );
    }
  });

  it('error responses carry only the status, and openssl reads them', () => {
    const statuses: Array<[OcspErrorStatus, number]> = [
      ['malformedRequest', 1],
      ['internalError', 2],
      ['tryLater', 3],
      ['sigRequired', 5],
      ['unauthorized', 6],
    ];
    for (const [status, code] of statuses) {
      const der = ocspErrorResponse(status);
      assert.deepEqual([...der], [0x30, 0x03, 0x0a, 0x01, code]);
      assert.deepEqual(describeOcspResponse(der), { status, responses: [] });
      assert.ok(!verifyOcspResponseSignature(der, describeCertificate(h.issuing.certDer).spki));
    }
    const r = opensslAll(['ocsp', '-respin', writeDer('err.der', ocspErrorResponse('malformedRequest')), '-resp_text', '-noverify']);
    assert.match(r.out, /Responder Error: malformedRequest \(1\)/i);
  });

  it('buildOcspResponseData writes the bytes asn1js and pkijs encoded, for every status, time and nonce', () => {
    // What buildOcspResponseData encoded until the tenth round of issue 18: asn1js nodes.
    const tagged = (tagNumber: number, value: asn1js.BaseBlock[]) => new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });
    const time = (d: Date) => new asn1js.GeneralizedTime({ valueDate: second(d) });
    const status = (st: OcspCertStatus): asn1js.BaseBlock => {
      if (st.status !== 'revoked') return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: st.status === 'good' ? 0 : 2 } });
      const code = st.reason && st.reason !== 'unspecified' ? REVOCATION_REASONS[st.reason] : undefined;
      return tagged(1, [time(st.revokedAt), ...(code === undefined ? [] : [tagged(0, [new asn1js.Enumerated({ value: code })])])]);
    };
    const reference = (p: Parameters<typeof buildOcspResponseData>[0]) => {
      const fields: asn1js.BaseBlock[] = [
        tagged(2, [new asn1js.OctetString({ valueHex: p.responderKeyId })]),
        time(p.producedAt),
        new asn1js.Sequence({
          value: p.responses.map(
            (r) =>
              new asn1js.Sequence({
                value: [
                  new asn1js.Sequence({
                    value: [
                      new pkijs.AlgorithmIdentifier({ algorithmId: r.certId.hashAlgorithm, algorithmParams: new asn1js.Null() }).toSchema(),
                      new asn1js.OctetString({ valueHex: r.certId.issuerNameHash }),
                      new asn1js.OctetString({ valueHex: r.certId.issuerKeyHash }),
                      new asn1js.Integer({ valueHex: integerFromHex(r.certId.serialHex, 'serial') }),
                    ],
                  }),
                  status(r.status),
                  time(r.thisUpdate),
                  tagged(0, [time(r.nextUpdate)]),
                ],
              }),
          ),
        }),
      ];
      if (p.nonce) {
        const ext = new pkijs.Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', critical: false, extnValue: p.nonce.slice().buffer });
        fields.push(tagged(1, [new asn1js.Sequence({ value: [ext.toSchema()] })]));
      }
      return Buffer.from(new asn1js.Sequence({ value: fields }).toBER(false)).toString('hex');
    };
    const issuer = describeCertificate(h.issuing.certDer);
    const at = new Date('2049-12-31T23:59:59.750Z');
    const single = (serial: string, hash: 'sha1' | 'sha256', st: OcspCertStatus) => ({
      certId: ocspCertId(issuer, serial, hash),
      status: st,
      thisUpdate: at,
      nextUpdate: new Date('2050-01-07T00:00:00Z'),
    });
    const cases = [
      [single('01', 'sha1', { status: 'good' })],
      [single('7f'.repeat(20), 'sha256', { status: 'unknown' }), single('80', 'sha1', { status: 'good' })],
      ...[undefined, 'unspecified', 'keyCompromise', 'certificateHold', 'aACompromise'].map((reason) => [
        single('00ff', 'sha256', {
          status: 'revoked',
          revokedAt: new Date('1999-03-04T05:06:07Z'),
          ...(reason ? { reason } : {}),
        } as OcspCertStatus),
      ]),
    ];
    for (const [i, responses] of cases.entries()) {
      for (const nonce of [undefined, Uint8Array.of(0x04, 0x02, 0xab, 0xcd), new Uint8Array(128).fill(7)]) {
        const p = { responderKeyId: keyIdentifier(issuer.spki), producedAt: at, responses, ...(nonce ? { nonce } : {}) };
        assert.equal(Buffer.from(buildOcspResponseData(p)).toString('hex'), reference(p), `case ${i}, nonce ${nonce?.length}`);
      }
    }
  });

  it('buildOcspResponseData validates its input', () => {
    const issuer = describeCertificate(h.issuing.certDer);
    const certId = ocspCertId(issuer, '01', 'sha1');
    const now = new Date();
    const ok = {
      responderKeyId: keyIdentifier(issuer.spki),
      producedAt: now,
      responses: [{ certId, status: { status: 'good' as const }, thisUpdate: now, nextUpdate: new Date(now.getTime() + HOUR) }],
    };
    assert.ok(buildOcspResponseData(ok).length > 0);
    const internal = (e: unknown) => CaError.is(e, 'internal');
    assert.throws(() => buildOcspResponseData({ ...ok, responderKeyId: new Uint8Array(19) }), internal);
    assert.throws(() => buildOcspResponseData({ ...ok, responses: [] }), internal);
    assert.throws(() => buildOcspResponseData({ ...ok, responses: [{ ...ok.responses[0]!, nextUpdate: now }] }), internal);
    const removed = { status: 'revoked' as const, revokedAt: now, reason: 'removeFromCRL' as const };
    assert.throws(() => buildOcspResponseData({ ...ok, responses: [{ ...ok.responses[0]!, status: removed }] }), internal);
  });
});
