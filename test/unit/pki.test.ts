import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, randomInt, sign as nodeSign } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFileSync, writeFileSync } from 'node:fs';
import { CaError } from '../../src/core/errors.ts';
import {
  assembleCertificate,
  assertValidSerial,
  buildCsr,
  buildTbsCertificate,
  describeCertificate,
  encodeName,
  formatDn,
  inspectTbs,
  ipFromText,
  ipToText,
  keyIdentifier,
  normalizeIp,
  parseCsr,
  parseDn,
  pemDecodeAll,
  pemEncode,
  randomSerial,
  serialToHex,
  tbsSerialHex,
  toDer,
  verifyCertificateSignature,
  type TbsParams,
} from '../../src/pki/index.ts';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { readSignatureAlgorithm, signatureAlgorithmDer, signatureAlgorithmIdentifier, verifySignature } from '../../src/pki/algorithms.ts';
import { encodeKeyUsage, readExtensions } from '../../src/pki/extensions.ts';
import { bitString, derElement, encodeDer, oidDer, parseDer, sequenceElements, tlv } from '../../src/pki/der.ts';
import { decodeGeneralNames, emptySans } from '../../src/pki/san.ts';
import { attrsFromRdns, type RdnAttr } from '../../src/pki/names.ts';
import { OID } from '../../src/pki/oids.ts';
import { publicKeyJwk } from '../../src/pki/publickey.ts';
import { encodeNameConstraints } from '../../src/pki/name-constraints.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';
import { keyFile, makeCsr, openssl, tmpFile, x509Text } from '../helpers/openssl.ts';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Asserts that fn throws a CaError of `kind` whose message matches `message`. */
function throwsCa(fn: () => unknown, kind: string, message?: RegExp, rule?: string): CaError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof CaError,
    `expected CaError(${kind}), got ${caught instanceof Error ? `${caught.name}: ${caught.message}` : String(caught)}`,
  );
  assert.equal(caught.kind, kind, caught.message);
  if (message) assert.match(caught.message, message);
  if (rule) assert.equal(caught.rule, rule);
  return caught;
}

describe('PEM', () => {
  const der = fixture('csr-ec-p256.der');

  it('encodes with 64-column lines and a trailing newline', () => {
    const pem = pemEncode('CERTIFICATE REQUEST', der);
    const lines = pem.split('\n');
    assert.equal(lines[0], '-----BEGIN CERTIFICATE REQUEST-----');
    assert.equal(lines.at(-2), '-----END CERTIFICATE REQUEST-----');
    assert.equal(lines.at(-1), '');
    for (const l of lines.slice(1, -3)) assert.equal(l.length, 64);
    assert.ok(lines.at(-3)!.length <= 64);
    // OpenSSL reads it and writes the same text back
    const back = openssl(['req', '-inform', 'PEM', '-outform', 'PEM'], pem);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, pem);
  });

  it('decodes every block, ignoring explanatory text around them', () => {
    const text = `Certificate:\n  text\n${pemEncode('CERTIFICATE', der)}between\r\n${pemEncode('X509 CRL', new Uint8Array([0x30, 0]))}`;
    const blocks = pemDecodeAll(text);
    assert.deepEqual(
      blocks.map((b) => b.label),
      ['CERTIFICATE', 'X509 CRL'],
    );
    assert.deepEqual(blocks[0].der, der);
    assert.deepEqual(pemDecodeAll('no pem here'), []);
  });

  it('rejects broken blocks', () => {
    const pem = pemEncode('CERTIFICATE', der);
    throwsCa(() => pemDecodeAll(pem.replace('-----END CERTIFICATE-----\n', '')), 'malformed', /no "-----END CERTIFICATE-----"/);
    throwsCa(() => pemDecodeAll(pem.replace('END CERTIFICATE', 'END X509 CRL')), 'malformed', /mismatched/);
    throwsCa(() => pemDecodeAll(pem.replace(/\n(.)/, '\n#$1')), 'malformed', /not valid base64 \(character "#"\)/);
    throwsCa(() => pemDecodeAll(pem.replace('\n', '\nProc-Type: 4,ENCRYPTED\n')), 'malformed', /headers/);
  });

  it('toDer accepts PEM, DER, base64 and base64url, as text or bytes', () => {
    const labels = ['CERTIFICATE REQUEST'];
    const b64 = Buffer.from(der).toString('base64');
    const inputs: Array<string | Uint8Array> = [
      pemEncode('CERTIFICATE REQUEST', der),
      der,
      b64,
      b64.replace(/(.{76})/g, '$1\r\n'),
      Buffer.from(der).toString('base64url'),
      new Uint8Array(Buffer.from(pemEncode('CERTIFICATE REQUEST', der))),
      new Uint8Array(Buffer.from(b64)),
      `  \n${b64}\n`,
    ];
    for (const input of inputs) assert.deepEqual(toDer(input, labels), der);
  });

  it('toDer explains what is wrong, with the requested error kind', () => {
    const labels = ['CERTIFICATE'];
    throwsCa(() => toDer('', labels), 'malformed', /empty/);
    throwsCa(
      () => toDer(pemEncode('CERTIFICATE REQUEST', der), labels, 'badCSR'),
      'badCSR',
      /expected a PEM block labelled "CERTIFICATE", found "CERTIFICATE REQUEST"/,
    );
    throwsCa(() => toDer(pemEncode('CERTIFICATE', der) + pemEncode('CERTIFICATE', der), labels), 'malformed', /expected one PEM block/);
    throwsCa(() => toDer('this is not base64!', labels), 'malformed', /not valid base64/);
    throwsCa(() => toDer(new Uint8Array([0x01, 0xff, 0x00]), labels), 'malformed', /neither DER/);
    throwsCa(() => toDer(Buffer.from('hello').toString('base64'), labels), 'malformed', /does not decode to a DER SEQUENCE/);
  });
});

describe('distinguished names', () => {
  it('parses RFC 4514-style text in encoding order', () => {
    assert.deepEqual(parseDn('CN=foo,O=bar'), [
      { type: '2.5.4.3', short: 'CN', value: 'foo' },
      { type: '2.5.4.10', short: 'O', value: 'bar' },
    ]);
    assert.deepEqual(
      parseDn('cn = Foo\\, Inc. , o="Bar, Ltd", 2.5.4.11=ops, OID.2.5.4.6=US').map((a) => [a.short, a.value]),
      [
        ['CN', 'Foo, Inc.'],
        ['O', 'Bar, Ltd'],
        ['OU', 'ops'],
        ['C', 'US'],
      ],
    );
    assert.deepEqual(parseDn('CN=caf\\C3\\A9\\2b\\ '), [{ type: '2.5.4.3', short: 'CN', value: 'café+ ' }]);
    assert.deepEqual(parseDn('/CN=a/O=b\\/c'), [
      { type: '2.5.4.3', short: 'CN', value: 'a' },
      { type: '2.5.4.10', short: 'O', value: 'b/c' },
    ]);
    assert.deepEqual(parseDn('  '), []);
  });

  it('rejects what it cannot represent', () => {
    throwsCa(() => parseDn('XX=1'), 'malformed', /unknown attribute type "XX"/, 'dn.syntax');
    throwsCa(() => parseDn('CN=a,bogus'), 'malformed', /has no "="/);
    throwsCa(() => parseDn('CN='), 'malformed', /empty value/);
    throwsCa(() => parseDn('CN=a+OU=b'), 'malformed', /multi-valued/);
    throwsCa(() => parseDn('CN=a,'), 'malformed', /ends with a separator/);
    throwsCa(() => parseDn('CN="open'), 'malformed', /not closed/);
  });

  it('formats with escaping so that text round-trips', () => {
    const tricky = [' lead', 'trail ', '#hash', 'a,b+c;d<e>f"g\\h=i', 'ünïcødé', 'x'];
    for (const value of tricky) {
      const attrs = [{ type: '2.5.4.3', short: 'CN', value }];
      assert.deepEqual(parseDn(formatDn(attrs)), attrs, formatDn(attrs));
    }
    assert.equal(formatDn([{ type: '1.2.3.4', value: 'x' }]), '1.2.3.4=x');
    assert.equal(formatDn(parseDn('CN=foo,O=Foo\\, Inc.')), 'CN=foo,O=Foo\\, Inc.');
  });

  it('encodes names exactly like openssl -subj (PrintableString C/serialNumber, IA5 emailAddress, UTF8 otherwise)', () => {
    const subj = '/CN=foo/O=bär/C=US/serialNumber=1234/emailAddress=a@b.c';
    const cert = openssl(['req', '-x509', '-new', '-utf8', '-key', keyFile('ec:P-256'), '-subj', subj, '-days', '1', '-outform', 'DER']);
    assert.equal(cert.code, 0, cert.stderr);
    const opensslSubject = describeCertificate(new Uint8Array(Buffer.from(cert.stdout, 'latin1'))).subjectDer;
    assert.equal(hex(encodeName(parseDn('CN=foo,O=bär,C=US,serialNumber=1234,emailAddress=a@b.c'))), hex(opensslSubject));
    assert.equal(hex(encodeName([])), '3000');
    throwsCa(() => encodeName(parseDn('C=U@')), 'malformed', /PrintableString/, 'dn.value');
    throwsCa(() => encodeName([{ type: '2.5.4.3', value: 'a\uD800b' }]), 'malformed', /lone surrogate/, 'dn.value');
  });

  it('encodes names on their bytes as pkijs and asn1js did, long values and many attributes included', () => {
    // The encoding encodeName replaced, kept as the reference.
    const reference = (attrs: RdnAttr[]) =>
      encodeDer(
        new asn1js.Sequence({
          value: attrs.map((a) => {
            const short = a.short;
            const value =
              short === 'C' || short === 'serialNumber'
                ? new asn1js.PrintableString({ value: a.value })
                : short === 'emailAddress' || short === 'DC'
                  ? new asn1js.IA5String({ value: a.value })
                  : new asn1js.Utf8String({ value: a.value });
            return new asn1js.Set({ value: [new pkijs.AttributeTypeAndValue({ type: a.type, value }).toSchema()] });
          }),
        }),
      );
    const names = [
      'CN=a',
      'C=DE,O=ünïcødé \\F0\\9D\\84\\9E,OU=x',
      `CN=${'é'.repeat(70)},O=${'o'.repeat(130)},L=${'l'.repeat(300)}`,
      'DC=example,DC=com,emailAddress=ops@example.com,serialNumber=A-1 2,2.5.4.97=VATDE-123',
      Array.from({ length: 40 }, (_, i) => `OU=unit ${i}`).join(','),
    ];
    for (const text of names) {
      const attrs = parseDn(text);
      assert.equal(hex(encodeName(attrs)), hex(reference(attrs)), text);
    }
  });
});

describe('reading extensions from DER bytes (extensions.ts, der.ts)', () => {
  const opensslCert = (exts: string[]) => {
    const args = ['req', '-x509', '-new', '-key', keyFile('ec:P-256'), '-subj', '/CN=ext.test', '-days', '1', '-outform', 'DER'];
    for (const e of exts) args.push('-addext', e);
    const r = openssl(args);
    assert.equal(r.code, 0, r.stderr);
    return new Uint8Array(Buffer.from(r.stdout, 'latin1'));
  };

  it('decodes what openssl writes: pathLen, key usages, EKUs, AKI with issuer and serial, several CDP and AIA URIs', () => {
    const der = opensslCert([
      'basicConstraints=critical,CA:TRUE,pathlen:300',
      'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
      'extendedKeyUsage=serverAuth,clientAuth,1.2.3.4.5',
      'subjectAltName=DNS:a.ext.test,IP:192.0.2.1,email:a@ext.test,URI:https://ext.test/x',
      'authorityKeyIdentifier=keyid:always,issuer:always',
      'crlDistributionPoints=URI:http://ca.test/a.crl,URI:ldap://ca.test/b,URI:http://ca.test/c.crl',
      'authorityInfoAccess=OCSP;URI:http://ocsp.ca.test,caIssuers;URI:http://ca.test/ca.crt,OCSP;URI:http://ocsp2.ca.test',
      'certificatePolicies=2.23.140.1.2.1,2.999.18446744073709551617,1.3.6.1.4.1.44947.1.1.1',
    ]);
    const d = describeCertificate(der);
    const text = x509Text(der);
    assert.equal(d.isCa, true);
    assert.equal(d.pathLen, 300);
    assert.deepEqual(new Set(d.keyUsage), new Set(['digitalSignature', 'keyCertSign', 'cRLSign']));
    assert.deepEqual(d.extKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.2.3.4.5']);
    assert.deepEqual(d.sans.dns, ['a.ext.test']);
    assert.deepEqual(d.sans.ip, ['192.0.2.1']);
    assert.equal(d.authorityKeyIdHex, d.subjectKeyIdHex);
    assert.match(text, new RegExp(d.subjectKeyIdHex!.match(/../g)!.join(':'), 'i'));
    assert.deepEqual(d.crlUrls, ['http://ca.test/a.crl', 'ldap://ca.test/b', 'http://ca.test/c.crl']);
    assert.deepEqual(d.ocspUrls, ['http://ocsp.ca.test', 'http://ocsp2.ca.test']);
    assert.deepEqual(d.caIssuersUrls, ['http://ca.test/ca.crt']);
  });

  it('reads policy OIDs with arcs beyond 2^53 and refuses a malformed extension value', () => {
    const der = opensslCert(['certificatePolicies=2.999.18446744073709551617,1.3.6.1.4.1.44947.1.1.1', 'basicConstraints=CA:FALSE']);
    const tbs = buildTbsFrom(der);
    assert.deepEqual(tbs.decoded.policies, ['2.999.18446744073709551617', '1.3.6.1.4.1.44947.1.1.1']);
    assert.equal(tbs.decoded.isCa, false);
    assert.equal(tbs.decoded.pathLen, undefined);
    // basicConstraints whose pathLenConstraint is a BOOLEAN
    throwsCa(
      () =>
        readExtensions([{ oid: '2.5.29.19', critical: true, value: Uint8Array.from([0x30, 0x06, 0x01, 0x01, 0xff, 0x01, 0x01, 0xff]) }]),
      'malformed',
      /basicConstraints/,
    );
    // a keyUsage that is an OCTET STRING, an EKU list with trailing bytes
    throwsCa(
      () => readExtensions([{ oid: '2.5.29.15', critical: true, value: Uint8Array.from([0x04, 0x02, 0x07, 0x80]) }]),
      'malformed',
      /2\.5\.29\.15/,
    );
    throwsCa(
      () => readExtensions([{ oid: '2.5.29.37', critical: false, value: Uint8Array.from([0x30, 0x00, 0x00]) }], 'internal'),
      'internal',
      /trailing/,
    );
  });

  /** The TBS of an openssl certificate, inspected like one certflow is about to sign. */
  function buildTbsFrom(cert: Uint8Array) {
    const view = inspectTbs(sequenceElements(cert, 'the certificate')[0]!);
    assert.equal(view.version, 2);
    assert.equal(view.notBeforeType, 'UTCTime');
    assert.ok(Math.abs(view.notAfter.getTime() - view.notBefore.getTime() - 86_400_000) < 2000);
    return view;
  }
});

describe('IP addresses', () => {
  it('formats IPv6 in RFC 5952 canonical form', () => {
    const cases: Array<[string, string]> = [
      ['0:0:0:0:0:0:0:1', '::1'],
      ['::', '::'],
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      ['192.0.2.1', '192.0.2.1'],
    ];
    for (const [input, want] of cases) assert.equal(normalizeIp(input), want, input);
    assert.equal(normalizeIp('example.com'), undefined);
    assert.equal(normalizeIp('fe80::1%eth0'), undefined);
    assert.equal(ipToText(ipFromText('2001:db8::1')!), '2001:db8::1');
  });
});

describe('GeneralNames (a SAN extension value)', () => {
  const tlv = (tag: number, body: Uint8Array | number[]) => {
    const b = Uint8Array.from(body);
    assert.ok(b.length < 128);
    return [tag, b.length, ...b];
  };
  const ascii = (t: string) => [...Buffer.from(t, 'latin1')];
  const names = (...items: number[][]) => new Uint8Array(tlv(0x30, items.flat()));
  const decode = (der: Uint8Array) => decodeGeneralNames(der, 'badCSR');

  it('dNSName, iPAddress, rfc822Name and URI are read as pkijs reads them, in order, bytes one character each', () => {
    const der = names(
      tlv(0x82, ascii('a.example')),
      tlv(0x87, [192, 0, 2, 1]),
      tlv(0x87, [...ipFromText('2001:db8::1')!]),
      tlv(0x81, ascii('x@example.com')),
      tlv(0x86, ascii('https://e.example/')),
      tlv(0x82, ascii('caf\u00e9.example')),
      tlv(0x82, []),
    );
    assert.deepEqual(decode(der), {
      sans: {
        dns: ['a.example', 'caf\u00e9.example', ''],
        ip: ['192.0.2.1', '2001:db8::1'],
        email: ['x@example.com'],
        uri: ['https://e.example/'],
      },
      other: [],
    });
    throwsCa(() => decode(names(tlv(0x82, ascii('a.example')), tlv(0x87, [1, 2, 3, 4, 5]))), 'badCSR', /5 bytes/, 'san.ipSyntax');
  });

  it('other kinds of names go through pkijs: described, or refused when malformed', () => {
    const directoryName = tlv(0xa4, tlv(0x30, tlv(0x31, tlv(0x30, [...tlv(0x06, [0x55, 0x04, 0x03]), ...tlv(0x0c, ascii('x'))]))));
    assert.deepEqual(decode(names(tlv(0x82, ascii('a.example')), directoryName)), {
      sans: { dns: ['a.example'], ip: [], email: [], uri: [] },
      other: ['directoryName CN=x'],
    });
    // A dNSName with the constructed bit, a universal tag, an empty SEQUENCE: not GeneralNames.
    for (const bad of [names(tlv(0xa2, tlv(0x16, ascii('a')))), names(tlv(0x16, ascii('a'))), names()]) {
      throwsCa(() => decode(bad), 'badCSR', /subjectAltName extension is malformed/, 'san.syntax');
    }
  });
});

describe('parseCsr', () => {
  it('refuses a request nested deeper than 64 levels as badCSR, without exhausting the stack', () => {
    let el: Uint8Array = Uint8Array.of(0x05, 0);
    for (let i = 0; i < 15_000; i++) el = tlv(0x30, el);
    throwsCa(() => parseCsr(el), 'badCSR', /nests elements deeper than 64 levels/);
  });

  it('reads the EC fixture', () => {
    const der = fixture('csr-ec-p256.der');
    const csr = parseCsr(der);
    assert.deepEqual(csr.der, der);
    assert.equal(formatDn(csr.subject), 'CN=fixture.example.com,O=certflow');
    assert.deepEqual(csr.key, { type: 'ec', curve: 'P-256' });
    assert.deepEqual(csr.sans, {
      dns: ['fixture.example.com', 'www.fixture.example.com'],
      ip: ['192.0.2.10', '2001:db8::1'],
      email: [],
      uri: [],
    });
    assert.deepEqual(
      csr.extensions.map((e) => [e.oid, e.critical]),
      [['2.5.29.17', false]],
    );
    assert.equal(csr.challengePassword, undefined);
    assert.equal(csr.unsupportedSans, undefined);
    // the SPKI is the DER SubjectPublicKeyInfo openssl sees
    const pub = openssl(['req', '-inform', 'DER', '-noout', '-pubkey'], der);
    assert.deepEqual(toDer(pub.stdout, ['PUBLIC KEY']), csr.spki);
  });

  it('reads the RSA fixture', () => {
    const csr = parseCsr(pemEncode('NEW CERTIFICATE REQUEST', fixture('csr-rsa-2048.der')));
    assert.deepEqual(csr.key, { type: 'rsa', bits: 2048 });
    assert.deepEqual(csr.sans.dns, ['rsa.fixture.example.com']);
  });

  it('rejects the fixture with a corrupted signature', () => {
    throwsCa(() => parseCsr(fixture('csr-ec-badsig.der')), 'badCSR', /signature \(ecdsa-with-SHA256\) does not verify/, 'csr.signature');
  });

  it('verifies every supported signature algorithm', () => {
    const cases: Array<{ key: string; extra?: string[]; want: object }> = [
      { key: 'ec:P-256', want: { type: 'ec', curve: 'P-256' } },
      { key: 'ec:P-384', extra: ['-sha384'], want: { type: 'ec', curve: 'P-384' } },
      { key: 'ec:P-521', extra: ['-sha512'], want: { type: 'ec', curve: 'P-521' } },
      { key: 'ec:P-256', extra: ['-sha512'], want: { type: 'ec', curve: 'P-256' } },
      { key: 'rsa:2048', extra: ['-sha384'], want: { type: 'rsa', bits: 2048 } },
      { key: 'rsa:2048', extra: ['-sha512'], want: { type: 'rsa', bits: 2048 } },
      {
        key: 'rsa:2048',
        extra: ['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest'],
        want: { type: 'rsa', bits: 2048 },
      },
      {
        key: 'rsa:2048',
        extra: ['-sha384', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:max'],
        want: { type: 'rsa', bits: 2048 },
      },
      { key: 'ed25519', want: { type: 'ed25519' } },
      { key: 'ed448', want: { type: 'ed448' } },
    ];
    for (const c of cases) {
      const { pem } = makeCsr({ key: c.key, subj: '/CN=alg.example', extra: c.extra });
      assert.deepEqual(parseCsr(pem).key, c.want, `${c.key} ${c.extra?.join(' ') ?? ''}`);
    }
  });

  it('refuses SHA-1 signatures as unsupported', () => {
    const { der } = makeCsr({ key: 'rsa:1024', subj: '/CN=sha1.example', extra: ['-sha1'] });
    throwsCa(() => parseCsr(der), 'badCSR', /unsupported signature algorithm: sha1WithRSAEncryption/, 'signature.algorithm');
  });

  it('returns all SAN kinds, IPs as canonical text', () => {
    const { der } = makeCsr({
      subj: '/CN=sans.example',
      san: 'DNS:a.example,IP:0:0:0:0:0:0:0:1,IP:10.1.2.3,IP:2001:DB8:0:0:0:0:0:FF,email:ops@example.com,URI:spiffe://example.org/ns/a',
    });
    assert.deepEqual(parseCsr(der).sans, {
      dns: ['a.example'],
      ip: ['::1', '10.1.2.3', '2001:db8::ff'],
      email: ['ops@example.com'],
      uri: ['spiffe://example.org/ns/a'],
    });
  });

  it('reports SAN kinds a SanSet cannot hold', () => {
    const { der } = makeCsr({
      subj: '/CN=x.example',
      san: 'DNS:x.example,dirName:dir_sect,RID:1.2.3.4',
      extra: ['-config', dirNameConfig()],
    });
    assert.deepEqual(parseCsr(der).unsupportedSans, ['directoryName CN=inner,O=org', 'registeredID 1.2.3.4']);
  });

  it('reads the challenge password', () => {
    const config = tmpFile('challenge.cnf');
    writeFileSync(
      config,
      '[req]\ndistinguished_name=dn\nattributes=attrs\nprompt=no\n[dn]\nCN=pw.example\n[attrs]\nchallengePassword=s3cret-Pa55\n',
    );
    const r = openssl(['req', '-new', '-key', keyFile('ec:P-256'), '-config', config, '-outform', 'DER']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseCsr(new Uint8Array(Buffer.from(r.stdout, 'latin1'))).challengePassword, 's3cret-Pa55');
  });

  it('rejects input that is not a well-formed request, always as badCSR', () => {
    const der = fixture('csr-ec-p256.der');
    throwsCa(() => parseCsr(der.subarray(0, der.length - 20)), 'badCSR', /not valid DER/);
    throwsCa(() => parseCsr(new Uint8Array([...der, 0x00, 0x00])), 'badCSR', /2 bytes of trailing data/);
    throwsCa(() => parseCsr(pemEncode('CERTIFICATE REQUEST', der).replace(/\n(.{10})/, '\n$1garbage\u0000')), 'badCSR', /not valid base64/);
    throwsCa(() => parseCsr(pemEncode('CERTIFICATE REQUEST', new Uint8Array([...der, 1, 2, 3]))), 'badCSR', /trailing data/);
    throwsCa(() => parseCsr('hello world'), 'badCSR', /does not decode to a DER SEQUENCE/);
    throwsCa(() => parseCsr('MIIB!!'), 'badCSR', /not valid base64 \(character "!"\)/);
    throwsCa(() => parseCsr(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])), 'badCSR', /not a PKCS#10 certification request/);
    throwsCa(() => parseCsr(new Uint8Array(0)), 'badCSR', /empty/);
    // BER: the same request with its outer length in a longer form than needed, or indefinite.
    assert.equal(der[0], 0x30);
    const body = der.subarray(der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2);
    const longer = new Uint8Array([
      0x30,
      0x84,
      ...Buffer.alloc(4)
        .fill(0)
        .map((_, i) => (body.length >> (8 * (3 - i))) & 0xff),
      ...body,
    ]);
    throwsCa(() => parseCsr(longer), 'badCSR', /is not valid DER \(a length is not minimal\)/);
    throwsCa(
      () => parseCsr(new Uint8Array([0x30, 0x80, ...body, 0, 0])),
      'badCSR',
      /is not valid DER \(an indefinite length, which is BER\)/,
    );
    const cert = openssl(['req', '-x509', '-new', '-key', keyFile('ec:P-256'), '-subj', '/CN=c', '-days', '1', '-outform', 'DER']);
    throwsCa(
      () => parseCsr(new Uint8Array(Buffer.from(cert.stdout, 'latin1'))),
      'badCSR',
      /is an X\.509 certificate, not a PKCS#10 request/,
    );
  });

  it('never lets a raw pkijs/asn1js error escape (mutation fuzzing)', () => {
    const seeds = [fixture('csr-ec-p256.der'), fixture('csr-rsa-2048.der')];
    for (let i = 0; i < 600; i++) {
      const seed = seeds[i % 2];
      let input = seed.slice();
      switch (i % 3) {
        case 0:
          input[randomInt(input.length)] = randomInt(256);
          break;
        case 1:
          input = input.subarray(0, randomInt(1, input.length));
          break;
        default: {
          const at = randomInt(input.length);
          input = new Uint8Array([...input.subarray(0, at), randomInt(256), ...input.subarray(at)]);
        }
      }
      try {
        parseCsr(input);
      } catch (e) {
        assert.ok(
          e instanceof CaError && (e.kind === 'badCSR' || e.kind === 'badKey'),
          `mutation ${i}: ${(e as Error).name}: ${(e as Error).message}`,
        );
      }
    }
  });
});

describe('parseCsr on its bytes, against a reading through pkijs', () => {
  // The reading parseCsr replaced: asn1js' BER parser and pkijs' schema. Kept here as the
  // reference that every request both accept must read the same through.
  function pkijsRead(der: Uint8Array): object {
    const csr = new pkijs.CertificationRequest({ schema: parseDer(der, 'the request', 'badCSR') });
    if (csr.version !== 0) throw new Error('version');
    const alg = readSignatureAlgorithm(csr.signatureAlgorithm, 'badCSR');
    const spki = new Uint8Array(csr.subjectPublicKeyInfo.toSchema().toBER(false));
    const sig = csr.signatureValue.valueBlock;
    if (sig.unusedBits !== 0 || !verifySignature(spki, alg, csr.tbsView, sig.valueHexView)) throw new Error('signature');
    // Text: the string types of a DirectoryString and of PKCS#9 (asn1js reads times and
    // TIME as strings too, a time as empty text); any other value as "#" + its DER in hex.
    const subject = attrsFromRdns(csr.subject).map((a, i) => {
      const v = csr.subject.typesAndValues[i]!.value as asn1js.BaseBlock;
      const text = v.idBlock.tagClass === 1 && [12, 18, 19, 20, 21, 22, 25, 26, 27, 28, 29, 30].includes(v.idBlock.tagNumber);
      return text ? a : { ...a, value: `#${Buffer.from(v.valueBeforeDecodeView).toString('hex')}` };
    });
    const out: Record<string, unknown> = { subject, spki, sans: emptySans(), extensions: [] };
    const seen = new Set<string>();
    for (const attr of csr.attributes ?? []) {
      if (seen.has(attr.type)) throw new Error('attribute twice');
      seen.add(attr.type);
      if (attr.type === OID.extensionRequest) {
        if (attr.values.length !== 1) throw new Error('values');
        const v = attr.values[0] as asn1js.Sequence;
        if (v instanceof asn1js.Sequence && v.valueBlock.value.length === 0) continue;
        const exts = new pkijs.Extensions({ schema: v }).extensions.map((e) => ({
          oid: e.extnID,
          critical: e.critical,
          valueDer: e.extnValue.valueBlock.valueHexView.slice(),
        }));
        if (new Set(exts.map((e) => e.oid)).size !== exts.length) throw new Error('extension twice');
        out.extensions = exts;
        const san = exts.find((e) => e.oid === OID.subjectAltName);
        if (san) {
          const names = decodeGeneralNames(san.valueDer, 'badCSR');
          out.sans = names.sans;
          if (names.other.length) out.unsupportedSans = names.other;
        }
      } else if (attr.type === OID.challengePassword) {
        if (attr.values.length !== 1 || !(attr.values[0] instanceof asn1js.BaseStringBlock)) throw new Error('password');
        out.challengePassword = (attr.values[0] as asn1js.BaseStringBlock).getValue();
      }
    }
    return out;
  }

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const ascii = (t: string) => new Uint8Array(Buffer.from(t, 'latin1'));
  const oid = (dotted: string) => encodeDer(new asn1js.ObjectIdentifier({ value: dotted }));
  const atv = (type: string, value: Uint8Array) => tlv(0x31, tlv(0x30, oid(type), value));
  const subject = tlv(
    0x30,
    atv('2.5.4.3', tlv(0x0c, new Uint8Array(Buffer.from('diff.example ü', 'utf8')))),
    tlv(
      0x31,
      tlv(0x30, oid('2.5.4.10'), tlv(0x13, ascii('Org'))),
      tlv(0x30, oid('2.5.4.11'), tlv(0x1e, Buffer.from('ünit', 'utf16le').swap16())),
    ),
    atv('2.5.4.7', tlv(0x1c, Uint8Array.of(0, 0, 0, 0x5a, 0, 0, 0, 0xfc, 0, 1, 0xd1, 0x1e))),
    atv('1.2.840.113549.1.9.1', tlv(0x16, ascii('a@b.example'))),
    atv('2.5.4.5', tlv(0x14, ascii('T\xe9l'))),
    atv('2.5.4.99', tlv(0x02, Uint8Array.of(5))),
  );
  const generalNames = tlv(
    0x30,
    tlv(0x82, ascii('a.diff.example')),
    tlv(0x87, Uint8Array.of(192, 0, 2, 1)),
    tlv(0x81, ascii('x@diff.example')),
    tlv(0x86, ascii('https://diff.example/')),
    tlv(0xa4, tlv(0x30, atv('2.5.4.3', tlv(0x0c, ascii('dir'))))),
  );
  const extension = (type: string, critical: boolean | undefined, value: Uint8Array) =>
    tlv(0x30, oid(type), ...(critical === undefined ? [] : [tlv(0x01, Uint8Array.of(critical ? 0xff : 0))]), tlv(0x04, value));
  const attributes = tlv(
    0xa0,
    tlv(0x30, oid(OID.challengePassword), tlv(0x31, tlv(0x13, ascii('pw-123')))),
    tlv(
      0x30,
      oid(OID.extensionRequest),
      tlv(
        0x31,
        tlv(
          0x30,
          extension(OID.subjectAltName, undefined, generalNames),
          extension(OID.basicConstraints, true, tlv(0x30)),
          extension(OID.keyUsage, false, Uint8Array.of(0x03, 0x02, 0x07, 0x80)),
        ),
      ),
    ),
    tlv(0x30, oid('1.2.840.113549.1.9.2'), tlv(0x31, tlv(0x16, ascii('unstructured')))),
  );
  const info = tlv(0x30, Uint8Array.of(0x02, 0x01, 0x00), subject, spki, attributes);
  const signed = (tbs: Uint8Array) =>
    tlv(
      0x30,
      tbs,
      signatureAlgorithmDer('ecdsa-sha256'),
      bitString(new Uint8Array(nodeSign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' }))),
    );
  const outcome = (read: () => object): object | Error => {
    try {
      const r = read() as Record<string, unknown>;
      delete r.der;
      delete r.key;
      return r;
    } catch (e) {
      return e as Error;
    }
  };

  it('reads a request with every kind of string, a multi-valued RDN and all attributes as pkijs does', () => {
    const der = signed(info);
    const got = outcome(() => parseCsr(der));
    assert.deepEqual(
      got,
      outcome(() => pkijsRead(der)),
    );
    assert.deepEqual(
      (got as { subject: RdnAttr[] }).subject.map((a) => [a.short ?? a.type, a.value]),
      [
        ['CN', 'diff.example ü'],
        ['O', 'Org'],
        ['OU', 'ünit'],
        ['L', 'Zü\u{1d11e}'],
        ['emailAddress', 'a@b.example'],
        ['serialNumber', 'Tél'],
        ['2.5.4.99', '#020105'],
      ],
    );
    assert.deepEqual((got as { unsupportedSans: string[] }).unsupportedSans, ['directoryName CN=dir']);
    assert.equal((got as { challengePassword: string }).challengePassword, 'pw-123');
  });

  it('agrees with pkijs on every mutated request both read, and refuses only BER or wrong text where pkijs reads', () => {
    const counts = { same: 0, bothRefuse: 0, onlyPkijsReads: 0, onlyParseCsrReads: 0 };
    for (let i = 0; i < 1500; i++) {
      let tbs = info.slice();
      for (let n = 1 + (i % 2); n > 0; n--) {
        const at = randomInt(tbs.length);
        switch (randomInt(4)) {
          case 0:
            tbs[at] = randomInt(256);
            break;
          case 1:
            tbs[at] = [0x00, 0x01, 0x04, 0x0c, 0x13, 0x14, 0x16, 0x1c, 0x1e, 0x30, 0x31, 0x80, 0x81, 0x82, 0xa0, 0xff][randomInt(16)]!;
            break;
          case 2:
            tbs = new Uint8Array([...tbs.subarray(0, at), ...tbs.subarray(at + 1)]);
            break;
          default:
            tbs = new Uint8Array([...tbs.subarray(0, at), randomInt(256), ...tbs.subarray(at)]);
        }
      }
      const der = signed(tbs);
      const got = outcome(() => parseCsr(der));
      const want = outcome(() => pkijsRead(der));
      const hex = Buffer.from(tbs).toString('hex');
      if (got instanceof Error) {
        assert.ok(CaError.is(got) && (got.kind === 'badCSR' || got.kind === 'badKey'), `${hex}: ${got.name}: ${got.message}`);
        if (want instanceof Error) counts.bothRefuse++;
        else {
          // What parseCsr refuses and pkijs read: BER, octets that are no text in their string
          // type, a time as a challengePassword, empty OIDs, and elements after an attribute's
          // or extension's value (which pkijs ignores).
          assert.match(
            got.message,
            /not valid DER|not a DER BOOLEAN|not valid text|empty relative distinguished name|malformed requested extension|not an OBJECT IDENTIFIER|not a type and a|not a single string/,
            `${hex}: ${got.message}`,
          );
          counts.onlyPkijsReads++;
        }
      } else {
        if (want instanceof Error) {
          // asn1js checks the value of every string, integer and time it meets, also inside
          // attributes certflow does not read; parseCsr reads those only as far as their framing.
          assert.match(
            want.message,
            /must be a multiple of|Too big integer|Wrong input string|is reserved|End of input reached|Unused bits/,
            `${hex}: parseCsr read what pkijs refuses (${want.message})`,
          );
          counts.onlyParseCsrReads++;
        } else {
          assert.deepEqual(got, want, hex);
          counts.same++;
        }
      }
    }
    // The mutations reach past the framing: some requests are still read, some refused by both.
    assert.ok(counts.same > 50 && counts.bothRefuse > 50, JSON.stringify(counts));
  });
});

describe('buildCsr', () => {
  for (const [name, pair] of [
    ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' })],
    ['RSA 2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['Ed25519', () => generateKeyPairSync('ed25519')],
  ] as const) {
    it(`makes a request openssl verifies (${name})`, () => {
      const { privateKey } = pair();
      const der = buildCsr({
        subject: 'CN=localhost',
        sans: { dns: ['localhost'], ip: ['127.0.0.1', '::1'], email: [], uri: [] },
        privateKey,
      });
      const v = openssl(['req', '-inform', 'DER', '-noout', '-verify'], der);
      assert.equal(v.code, 0, v.stderr);
      const csr = parseCsr(der);
      assert.equal(formatDn(csr.subject), 'CN=localhost');
      assert.deepEqual(csr.sans.ip, ['127.0.0.1', '::1']);
    });
  }
});

describe('serial numbers', () => {
  it('randomSerial is 20 bytes, positive, without a leading zero', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const s = randomSerial();
      assert.equal(s.length, 20);
      assert.ok(s[0] >= 0x01 && s[0] <= 0x7f, `first byte ${s[0]}`);
      assertValidSerial(s);
      seen.add(serialToHex(s));
    }
    assert.equal(seen.size, 2000);
  });

  it('serialToHex is lower-case without sign padding', () => {
    assert.equal(serialToHex(new Uint8Array([0x00, 0xab, 0x01])), 'ab01');
    assert.equal(serialToHex(new Uint8Array([0x7f, 0xee])), '7fee');
    assert.equal(serialToHex(new Uint8Array([0x00])), '00');
  });

  it('assertValidSerial rejects what RFC 5280 forbids', () => {
    throwsCa(() => assertValidSerial(new Uint8Array([0x80])), 'malformed', /negative/);
    throwsCa(() => assertValidSerial(new Uint8Array(21).fill(1)), 'malformed', /at most 20/);
    throwsCa(() => assertValidSerial(new Uint8Array([0x00, 0x01])), 'malformed', /leading zero/);
    throwsCa(() => assertValidSerial(new Uint8Array([0x00])), 'malformed', /zero/);
  });
});

describe('buildTbsCertificate', () => {
  /** The extensions as pkijs' schemas encode them: what buildExtensions wrote until the tenth round. */
  function pkijsExtensions(e: TbsParams['extensions'], subjectEmpty: boolean): pkijs.Extension[] {
    const ext = (extnID: string, critical: boolean, value: Uint8Array | asn1js.BaseBlock) =>
      new pkijs.Extension({
        extnID,
        critical,
        extnValue: (value instanceof Uint8Array ? value : new Uint8Array(value.toBER(false))).slice().buffer,
      });
    const uri = (value: string) => new pkijs.GeneralName({ type: 6, value });
    const crlDps = (urls: string[]) =>
      new pkijs.CRLDistributionPoints({
        distributionPoints: [new pkijs.DistributionPoint({ distributionPoint: urls.map(uri) })],
      }).toSchema();
    const out: pkijs.Extension[] = [];
    const bc = e.basicConstraints;
    if (bc) {
      const value =
        bc.pathLen === undefined
          ? new pkijs.BasicConstraints({ cA: bc.ca })
          : new pkijs.BasicConstraints({ cA: true, pathLenConstraint: bc.pathLen });
      out.push(ext(OID.basicConstraints, true, value.toSchema()));
    }
    if (e.keyUsage?.length) {
      const bits = encodeKeyUsage(e.keyUsage); // checked against openssl's bytes below
      out.push(ext(OID.keyUsage, true, new asn1js.BitString({ valueHex: bits.subarray(3), unusedBits: bits[2] })));
    }
    if (e.nameConstraints) out.push(ext(OID.nameConstraints, true, encodeNameConstraints(e.nameConstraints)));
    if (e.extKeyUsage?.length) out.push(ext(OID.extKeyUsage, false, new pkijs.ExtKeyUsage({ keyPurposes: [...e.extKeyUsage] }).toSchema()));
    out.push(ext(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: e.subjectKeyId })));
    if (e.authorityKeyId) {
      const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: e.authorityKeyId }) });
      out.push(ext(OID.authorityKeyIdentifier, false, aki.toSchema()));
    }
    const s = e.sans;
    if (s && s.dns.length + s.ip.length + s.email.length + s.uri.length) {
      const names = [
        ...s.dns.map((value) => new pkijs.GeneralName({ type: 2, value })),
        ...s.ip.map((v) => new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: ipFromText(v)! }) })),
        ...s.email.map((value) => new pkijs.GeneralName({ type: 1, value })),
        ...s.uri.map(uri),
      ];
      out.push(ext(OID.subjectAltName, subjectEmpty, new pkijs.GeneralNames({ names }).toSchema()));
    }
    if (e.crlUrls?.length) out.push(ext(OID.crlDistributionPoints, false, crlDps(e.crlUrls)));
    if (e.deltaCrlUrls?.length) out.push(ext(OID.freshestCrl, false, crlDps(e.deltaCrlUrls)));
    const aia = [
      ...(e.ocspUrls ?? []).map((u) => new pkijs.AccessDescription({ accessMethod: OID.adOcsp, accessLocation: uri(u) })),
      ...(e.caIssuersUrls ?? []).map((u) => new pkijs.AccessDescription({ accessMethod: OID.adCaIssuers, accessLocation: uri(u) })),
    ];
    if (aia.length) out.push(ext(OID.authorityInfoAccess, false, new pkijs.InfoAccess({ accessDescriptions: aia }).toSchema()));
    if (e.policies?.length) {
      const policies = e.policies.map((policyIdentifier) => new pkijs.PolicyInformation({ policyIdentifier }));
      out.push(ext(OID.certificatePolicies, false, new pkijs.CertificatePolicies({ certificatePolicies: policies }).toSchema()));
    }
    return out;
  }

  /** What buildTbsCertificate encoded until issue 18's third round: a pkijs Certificate's encodeTBS. */
  function pkijsTbs(p: TbsParams): Uint8Array {
    const time = (d: Date) => {
      const year = d.getUTCFullYear();
      const type = year >= 1950 && year <= 2049 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime;
      return new pkijs.Time({ type, value: new Date(Math.floor(d.getTime() / 1000) * 1000) });
    };
    const cert = new pkijs.Certificate({
      version: 2,
      serialNumber: new asn1js.Integer({ valueHex: p.serial }),
      signature: signatureAlgorithmIdentifier(p.sigAlg),
      issuer: new pkijs.RelativeDistinguishedNames({ valueBeforeDecode: p.issuer.slice().buffer }),
      notBefore: time(p.notBefore),
      notAfter: time(p.notAfter),
      subject: new pkijs.RelativeDistinguishedNames({ valueBeforeDecode: p.subject.slice().buffer }),
      subjectPublicKeyInfo: new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(p.spki).result }),
      extensions: pkijsExtensions(p.extensions, p.subject.length === 2),
    });
    return new Uint8Array(cert.encodeTBS().toBER(false));
  }
  const spkiOf = (type: 'ec' | 'rsa' | 'ed25519') =>
    new Uint8Array(
      (type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 })
          : generateKeyPairSync('ed25519')
      ).publicKey.export({ type: 'spki', format: 'der' }),
    );
  const base = (): TbsParams => ({
    serial: randomSerial(),
    issuer: encodeName(parseDn('CN=Test Issuing CA,O=certflow,C=DE')),
    subject: encodeName(parseDn('CN=a.example')),
    notBefore: new Date('2026-12-06T16:40:00.250Z'),
    notAfter: new Date('2027-03-06T16:40:00.999Z'),
    spki: spkiOf('ec'),
    sigAlg: 'ecdsa-sha256',
    extensions: {
      basicConstraints: { ca: false },
      keyUsage: ['digitalSignature'],
      extKeyUsage: ['1.3.6.1.5.5.7.3.1'],
      sans: { dns: ['a.example', 'b.example'], ip: ['192.0.2.1'], email: [], uri: [] },
      subjectKeyId: new Uint8Array(20).fill(1),
      authorityKeyId: new Uint8Array(20).fill(2),
      crlUrls: ['http://ca.example/crl'],
      deltaCrlUrls: ['http://ca.example/delta'],
      ocspUrls: ['http://ca.example/ocsp'],
      caIssuersUrls: ['http://ca.example/ca.crt'],
      policies: ['2.23.140.1.2.1'],
    },
  });

  it('encodes the same bytes as a pkijs Certificate did, for every kind of key, time and extension set', () => {
    const cases: Array<Partial<TbsParams>> = [
      {},
      { spki: spkiOf('rsa'), sigAlg: 'rsa-pkcs1-sha256' },
      { spki: spkiOf('ed25519') },
      { sigAlg: 'ecdsa-sha384', notBefore: new Date('2049-12-31T23:59:59.900Z'), notAfter: new Date('2050-01-01T00:00:00Z') },
      { notBefore: new Date('1949-06-01T00:00:00Z'), notAfter: new Date('9999-12-31T23:59:59Z') },
      {
        subject: encodeName([]),
        extensions: {
          ...base().extensions,
          sans: { dns: ['c.example'], ip: ['2001:db8::1'], email: ['x@example.com'], uri: ['https://u.example/'] },
        },
      },
      { serial: Uint8Array.of(0x01), extensions: { subjectKeyId: new Uint8Array(20).fill(3) } },
      {
        extensions: {
          basicConstraints: { ca: true, pathLen: 0 },
          keyUsage: ['keyCertSign', 'cRLSign'],
          subjectKeyId: new Uint8Array(20).fill(4),
          nameConstraints: { permitted: ['example.com'], excluded: [] },
        } as never,
      },
      { extensions: { basicConstraints: { ca: true }, keyUsage: ['keyCertSign'], subjectKeyId: new Uint8Array(20).fill(5) } },
      ...[1, 127, 128, 200, 255, 256, 300, 70000].map((pathLen) => ({
        extensions: { basicConstraints: { ca: true, pathLen }, subjectKeyId: new Uint8Array(20).fill(6) },
      })),
      {
        extensions: {
          ...base().extensions,
          keyUsage: ['digitalSignature', 'keyEncipherment', 'decipherOnly'],
          extKeyUsage: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.2.840.113549.1.9.16.1.99999999999'],
          sans: { dns: Array.from({ length: 40 }, (_, k) => `host-${k}.long.example`), ip: ['10.0.0.1', '::1'], email: [], uri: [] },
          crlUrls: ['http://ca.example/a.crl', 'http://ca2.example/a.crl'],
          ocspUrls: ['http://ocsp.example/', 'http://ocsp2.example/'],
          caIssuersUrls: [],
          policies: ['2.23.140.1.2.1', '1.3.6.1.4.1.99999.1.2.3'],
        },
      },
    ];
    for (const [i, over] of cases.entries()) {
      const p = { ...base(), ...over };
      assert.equal(hex(buildTbsCertificate(p)), hex(pkijsTbs(p)), `case ${i}`);
    }
  });

  it('refuses a name or key that is not one DER element with minimal lengths', () => {
    const longForm = (der: Uint8Array) => Uint8Array.of(der[0]!, 0x81, der[1]!, ...der.subarray(2)); // a short length written long
    const name = encodeName(parseDn('CN=a.example'));
    throwsCa(() => buildTbsCertificate({ ...base(), issuer: longForm(name) }), 'malformed', /issuer name is not valid DER.*not minimal/);
    throwsCa(
      () => buildTbsCertificate({ ...base(), subject: Uint8Array.of(...name, 0) }),
      'malformed',
      /subject name is not valid DER.*trailing data/,
    );
    throwsCa(() => buildTbsCertificate({ ...base(), spki: name }), 'malformed', /not a SubjectPublicKeyInfo/);
  });
});

describe('certificates', () => {
  it('keyIdentifier equals the subject key identifier openssl computes', () => {
    for (const spec of ['ec:P-256', 'rsa:2048', 'ed25519']) {
      const r = openssl(['req', '-x509', '-new', '-key', keyFile(spec), '-subj', '/CN=ski', '-days', '1', '-outform', 'DER']);
      const der = new Uint8Array(Buffer.from(r.stdout, 'latin1'));
      const d = describeCertificate(der);
      assert.equal(hex(keyIdentifier(d.spki)), d.subjectKeyIdHex, spec);
    }
  });

  it('describeCertificate reads an openssl certificate', () => {
    const r = openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile('ec:P-256'),
      '-subj',
      '/CN=desc.example/O=Org',
      '-days',
      '3',
      '-outform',
      'DER',
      '-set_serial',
      '0x00c0ffee',
      '-addext',
      'subjectAltName=DNS:desc.example,IP:::1,email:a@desc.example,URI:urn:x:y',
      '-addext',
      'keyUsage=critical,digitalSignature,keyAgreement',
      '-addext',
      'extendedKeyUsage=serverAuth,clientAuth',
      '-addext',
      'crlDistributionPoints=URI:http://crl.example/ca.crl',
      '-addext',
      'authorityInfoAccess=OCSP;URI:http://ocsp.example,caIssuers;URI:http://ca.example/ca.crt',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const der = new Uint8Array(Buffer.from(r.stdout, 'latin1'));
    const d = describeCertificate(der);
    assert.equal(d.serialHex, 'c0ffee');
    assert.equal(d.subject, 'CN=desc.example,O=Org');
    assert.equal(d.issuer, 'CN=desc.example,O=Org');
    assert.deepEqual(d.sans, { dns: ['desc.example'], ip: ['::1'], email: ['a@desc.example'], uri: ['urn:x:y'] });
    assert.equal(d.isCa, true); // openssl req -x509 adds basicConstraints CA:TRUE
    assert.deepEqual(d.keyUsage, ['digitalSignature', 'keyAgreement']);
    assert.deepEqual(d.extKeyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.deepEqual(d.crlUrls, ['http://crl.example/ca.crl']);
    assert.deepEqual(d.ocspUrls, ['http://ocsp.example']);
    assert.deepEqual(d.caIssuersUrls, ['http://ca.example/ca.crt']);
    assert.equal(d.subjectKeyIdHex, d.authorityKeyIdHex);
    assert.equal(Math.round((d.notAfter.getTime() - d.notBefore.getTime()) / 86_400_000), 3);
    const fp = openssl(['x509', '-inform', 'DER', '-noout', '-fingerprint', '-sha256'], der).stdout;
    assert.equal(fp.trim().split('=')[1].replace(/:/g, '').toLowerCase(), d.fingerprintSha256);
    assert.ok(verifyCertificateSignature(der, d.spki));
  });

  it('encodes keyUsage as a minimal DER BIT STRING', () => {
    assert.equal(hex(encodeKeyUsage(['digitalSignature'])), '03020780');
    assert.equal(hex(encodeKeyUsage(['keyCertSign', 'cRLSign'])), '03020106');
    assert.equal(hex(encodeKeyUsage(['digitalSignature', 'keyEncipherment'])), '030205a0');
    assert.equal(hex(encodeKeyUsage(['digitalSignature', 'decipherOnly'])), '0303078080');
  });

  async function selfSigned(keys: MemoryKeyStore, overrides: Partial<TbsParams> = {}, extensions: Partial<TbsParams['extensions']> = {}) {
    const key = (await keys.get('k')) ?? (await keys.generate('k', 'ec-p256'));
    const name = encodeName(parseDn('CN=self'));
    const ski = keyIdentifier(key.spki);
    const params: TbsParams = {
      serial: randomSerial(),
      issuer: name,
      subject: name,
      notBefore: new Date('2024-01-01T00:00:00.750Z'),
      notAfter: new Date('2051-06-01T12:00:00Z'),
      spki: key.spki,
      sigAlg: 'ecdsa-sha256',
      extensions: {
        basicConstraints: { ca: true },
        keyUsage: ['keyCertSign', 'cRLSign'],
        subjectKeyId: ski,
        authorityKeyId: ski,
        ...extensions,
      },
      ...overrides,
    };
    const tbs = buildTbsCertificate(params);
    const cert = assembleCertificate(tbs, params.sigAlg, await keys.sign('k', params.sigAlg, tbs));
    return { tbs, cert, params, spki: key.spki };
  }

  it('builds certificates openssl reads, with GeneralizedTime from 2050 and whole seconds', async () => {
    const keys = new MemoryKeyStore();
    const { tbs, cert, params, spki } = await selfSigned(keys);
    assert.equal(tbsSerialHex(tbs), serialToHex(params.serial));
    const text = x509Text(cert);
    assert.match(text, /Not Before: Jan {2}1 00:00:00 2024 GMT/);
    assert.match(text, /Not After : Jun {2}1 12:00:00 2051 GMT/);
    const d = describeCertificate(cert);
    assert.equal(d.notAfter.toISOString(), '2051-06-01T12:00:00.000Z');
    assert.equal(d.notBefore.toISOString(), '2024-01-01T00:00:00.000Z');
    assert.equal(d.serialHex, serialToHex(params.serial));
    assert.ok(verifyCertificateSignature(cert, spki));
    const v = openssl(['verify', '-x509_strict', '-no_check_time', '-CAfile', writeTmp('self.pem', cert), writeTmp('self2.pem', cert)]);
    assert.equal(v.code, 0, v.stderr + v.stdout);
  });

  it('verifyCertificateSignature rejects another key and altered certificates', async () => {
    const keys = new MemoryKeyStore();
    const { cert, spki } = await selfSigned(keys);
    const other = await keys.generate('other', 'ec-p256');
    assert.equal(verifyCertificateSignature(cert, other.spki), false);
    const altered = cert.slice();
    altered[40] ^= 0x01; // inside the TBS (serial number)
    assert.equal(verifyCertificateSignature(altered, spki), false);
    assert.equal(verifyCertificateSignature(new Uint8Array([0x30, 0x00]), spki), false);
  });

  it('marks the SAN critical when the subject is empty, and refuses an empty subject without SANs', async () => {
    const keys = new MemoryKeyStore();
    const sans = { dns: ['only-san.example'], ip: [], email: [], uri: [] };
    const { cert } = await selfSigned(
      keys,
      { subject: encodeName([]) },
      { basicConstraints: { ca: false }, keyUsage: ['digitalSignature'], sans },
    );
    assert.match(x509Text(cert), /X509v3 Subject Alternative Name: critical\s+DNS:only-san\.example/);
    const { cert: withSubject } = await selfSigned(keys, {}, { sans });
    assert.match(x509Text(withSubject), /X509v3 Subject Alternative Name: \n/);
    await assert.rejects(
      selfSigned(keys, { subject: encodeName([]) }),
      (e: unknown) => CaError.is(e, 'policy') && e.rule === 'subject.empty',
    );
  });

  it('assembleCertificate refuses a signature algorithm the TBS was not built for', async () => {
    const keys = new MemoryKeyStore();
    const { tbs } = await selfSigned(keys);
    throwsCa(
      () => assembleCertificate(tbs, 'ecdsa-sha384', new Uint8Array([1])),
      'internal',
      /not built for signature algorithm ecdsa-sha384/,
    );
  });

  it('copies the issuer name byte for byte, without re-encoding it', () => {
    // CN as PrintableString: encodeName would write UTF8String, so a re-encoding would show.
    const issuer = new Uint8Array([0x30, 0x0e, 0x31, 0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x13, 0x03, 0x66, 0x6f, 0x6f]);
    const tbs = buildTbsCertificate({
      serial: randomSerial(),
      issuer,
      subject: encodeName(parseDn('CN=x')),
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 1_000_000),
      spki: fixtureSpki(),
      sigAlg: 'ecdsa-sha256',
      extensions: { subjectKeyId: new Uint8Array(20) },
    });
    assert.ok(hex(tbs).includes(hex(issuer)));
    throwsCa(
      () => buildTbsCertificate({ ...validParams(), issuer: new Uint8Array([0x30, 0x05, 0x31]) }),
      'malformed',
      /issuer name is not valid DER/,
    );
    throwsCa(() => buildTbsCertificate({ ...validParams(), serial: new Uint8Array([0xff]) }), 'malformed', /negative/, 'serial');
    throwsCa(() => buildTbsCertificate({ ...validParams(), notAfter: new Date(0) }), 'internal', /not after notBefore/);
  });
});

function fixtureSpki(): Uint8Array {
  return parseCsr(fixture('csr-ec-p256.der')).spki;
}

function validParams(): TbsParams {
  return {
    serial: randomSerial(),
    issuer: encodeName(parseDn('CN=issuer')),
    subject: encodeName(parseDn('CN=x')),
    notBefore: new Date(),
    notAfter: new Date(Date.now() + 1_000_000),
    spki: fixtureSpki(),
    sigAlg: 'ecdsa-sha256',
    extensions: { subjectKeyId: new Uint8Array(20) },
  };
}

function writeTmp(name: string, der: Uint8Array): string {
  const file = tmpFile(name);
  writeFileSync(file, pemEncode('CERTIFICATE', der));
  return file;
}

/** An openssl config with a dirName section for a directoryName SAN. */
function dirNameConfig(): string {
  const file = tmpFile('dirname.cnf');
  writeFileSync(file, '[req]\ndistinguished_name=dn\n[dn]\n[dir_sect]\nCN=inner\nO=org\n');
  return file;
}

describe('public keys imported through a JWK (publicKeyJwk)', () => {
  const spkiOf = (k: ReturnType<typeof generateKeyPairSync>['publicKey']) => new Uint8Array(k.export({ type: 'spki', format: 'der' }));
  const keys = [
    generateKeyPairSync('rsa', { modulusLength: 2048 }),
    generateKeyPairSync('rsa', { modulusLength: 2047, publicExponent: 3 }),
    generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    generateKeyPairSync('ec', { namedCurve: 'P-384' }),
    generateKeyPairSync('ec', { namedCurve: 'P-521' }),
    generateKeyPairSync('ed25519'),
    generateKeyPairSync('ed448'),
  ];

  it('gives the same key as the DER, for every kind of key certflow takes', () => {
    for (const { publicKey, privateKey } of keys) {
      const spki = spkiOf(publicKey);
      const jwk = publicKeyJwk(spki);
      assert.ok(jwk, publicKey.asymmetricKeyType);
      assert.deepEqual(
        Buffer.from(createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' })),
        Buffer.from(spki),
      );
      const type = publicKey.asymmetricKeyType!;
      const hash = type === 'ed25519' || type === 'ed448' ? null : 'sha256';
      const signature = nodeSign(hash, Buffer.from('data'), privateKey);
      const algDer =
        type === 'rsa'
          ? signatureAlgorithmDer('rsa-pkcs1-sha256')
          : type === 'ec'
            ? signatureAlgorithmDer('ecdsa-sha256')
            : tlv(0x30, oidDer(type === 'ed25519' ? OID.ed25519 : OID.ed448));
      assert.equal(verifySignature(spki, readSignatureAlgorithm(algDer, 'malformed'), Buffer.from('data'), signature), true, type);
    }
  });

  it('leaves to the DER what a JWK cannot say exactly: PSS keys, compressed points, non-DER integers, junk', () => {
    // An RSA key labelled id-RSASSA-PSS.
    const rsaSpki = spkiOf(keys[0]!.publicKey);
    const pss = tlv(0x30, tlv(0x30, oidDer(OID.rsassaPss)), sequenceElements(rsaSpki, 'spki')[1]!);
    assert.equal(createPublicKey({ key: Buffer.from(pss), format: 'der', type: 'spki' }).asymmetricKeyType, 'rsa-pss');
    assert.equal(publicKeyJwk(pss), undefined);
    const ec = keys[2]!.publicKey;
    const compressed = new Uint8Array(
      Buffer.concat([
        Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex'),
        Buffer.from(ec.export({ format: 'jwk' }).x!, 'base64url'),
      ]),
    );
    compressed[compressed.length - 33] = 0x02;
    assert.equal(publicKeyJwk(compressed), undefined);
    // RSAPublicKey with a modulus INTEGER padded by a zero octet too many.
    const rsa = spkiOf(keys[0]!.publicKey);
    const bits = derElement(sequenceElements(rsa, 'spki')[1]!, 'bits', 'internal').content.subarray(1);
    const [n, e] = sequenceElements(bits, 'rsa');
    const padded = tlv(0x02, Uint8Array.of(0), derElement(n!, 'n', 'internal').content);
    const badRsa = tlv(0x30, sequenceElements(rsa, 'spki')[0]!, bitString(tlv(0x30, padded, e!)));
    assert.equal(publicKeyJwk(badRsa), undefined);
    assert.equal(publicKeyJwk(Uint8Array.of(0x30, 0)), undefined);
    assert.equal(publicKeyJwk(new Uint8Array(0)), undefined);
  });
});
