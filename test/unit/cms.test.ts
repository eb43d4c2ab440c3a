import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { CaError } from '../../src/core/errors.ts';
import { base64Body, buildCertsOnly, decodeBase64Body, parseCertsOnly, pemDecodeAll, pemEncode } from '../../src/pki/index.ts';
import { openssl, tmpFile } from '../helpers/openssl.ts';

/** Runs openssl and fails the test with its stderr when it exits non-zero. */
function run(args: string[], input?: string | Uint8Array): string {
  const r = openssl(args, input);
  assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function bytes(latin1: string): Uint8Array {
  return new Uint8Array(Buffer.from(latin1, 'latin1'));
}

function writeBytes(name: string, data: Uint8Array | string): string {
  const file = tmpFile(name);
  writeFileSync(file, data);
  return file;
}

interface SelfSigned {
  der: Uint8Array;
  pemFile: string;
  keyFile: string;
}

/** A self-signed P-256 certificate made by `openssl req -x509`. */
function selfSigned(cn: string): SelfSigned {
  const pemFile = tmpFile(`${cn}.pem`);
  const keyFile = tmpFile(`${cn}.key`);
  run([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    keyFile,
    '-out',
    pemFile,
  ]);
  return { der: pemDecodeAll(readFileSync(pemFile, 'latin1'))[0].der, pemFile, keyFile };
}

/** Asserts that fn throws CaError(kind) whose message matches `message`. */
function throwsCa(fn: () => unknown, kind: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CaError, `not a CaError: ${String(e)}`);
    assert.equal(e.kind, kind, e.message);
    assert.match(e.message, message);
    return true;
  });
}

let one: SelfSigned;
let two: SelfSigned;
let bothPem: string;

before(() => {
  one = selfSigned('one');
  two = selfSigned('two');
  bothPem = writeBytes('both.pem', readFileSync(one.pemFile, 'latin1') + readFileSync(two.pemFile, 'latin1'));
});

describe('certs-only CMS', () => {
  it('is read by openssl pkcs7, certificates in the given order', () => {
    const p7 = buildCertsOnly([one.der, two.der]);
    const out = run(['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], p7);
    const subjects = [...out.matchAll(/^subject=(.*)$/gm)].map((m) => m[1].trim());
    assert.deepEqual(subjects, ['CN = one', 'CN = two']);
  });

  it('is byte for byte what openssl crl2pkcs7 -nocrl produces', () => {
    const fromOpenssl = bytes(run(['crl2pkcs7', '-nocrl', '-certfile', bothPem, '-outform', 'DER']));
    assert.deepEqual(buildCertsOnly([one.der, two.der]), fromOpenssl);
  });

  it('has the degenerate SignedData shape (version 1, no digests, no eContent, no signers)', () => {
    const out = run(['asn1parse', '-inform', 'DER', '-i'], buildCertsOnly([one.der]));
    const top = out.split('\n').filter((l) => /d=[0-3] /.test(l));
    assert.match(top[1], /OBJECT\s+:pkcs7-signedData/);
    assert.match(top[4], /INTEGER\s+:01/);
    assert.match(top[5], /l=\s*0 cons:\s+SET/);
    assert.match(top[6], /l=\s*11 cons:\s+SEQUENCE/); // encapContentInfo: just the id-data OID
    assert.match(top[7], /cont \[ 0 \]/);
    assert.match(top[8], /l=\s*0 cons:\s+SET/);
    assert.equal(top.length, 9);
  });

  it('round-trips through parseCertsOnly', () => {
    assert.deepEqual(parseCertsOnly(buildCertsOnly([two.der, one.der])), [two.der, one.der]);
  });

  it("parses openssl's own certs-only output", () => {
    const fromOpenssl = bytes(run(['crl2pkcs7', '-nocrl', '-certfile', bothPem, '-outform', 'DER']));
    assert.deepEqual(parseCertsOnly(fromOpenssl), [one.der, two.der]);
  });

  it('reads the certificates of a signed message, including streamed BER', () => {
    const data = writeBytes('data.txt', 'hello\n');
    const signed = bytes(
      run([
        'cms',
        '-sign',
        '-stream',
        '-nodetach',
        '-in',
        data,
        '-signer',
        one.pemFile,
        '-inkey',
        one.keyFile,
        '-certfile',
        two.pemFile,
        '-outform',
        'DER',
      ]),
    );
    assert.equal(signed[1], 0x80, 'expected indefinite-length BER from -stream');
    const certs = parseCertsOnly(signed);
    assert.equal(certs.length, 2);
    assert.ok(certs.some((c) => Buffer.from(c).equals(Buffer.from(one.der))));
    assert.ok(certs.some((c) => Buffer.from(c).equals(Buffer.from(two.der))));
  });

  it('rejects what is not a SignedData ContentInfo as malformed', () => {
    const p7 = buildCertsOnly([one.der]);
    throwsCa(() => parseCertsOnly(new Uint8Array(0)), 'malformed', /empty/);
    throwsCa(() => parseCertsOnly(one.der), 'malformed', /not a CMS ContentInfo/);
    throwsCa(() => parseCertsOnly(new Uint8Array([...p7, 0])), 'malformed', /1 byte of trailing data/);
    throwsCa(() => parseCertsOnly(p7.slice(0, p7.length - 10)), 'malformed', /not valid DER/);
    const dataMsg = bytes(run(['cms', '-data_create', '-in', writeBytes('d.txt', 'x'), '-outform', 'DER']));
    throwsCa(() => parseCertsOnly(dataMsg), 'malformed', /is data, not signedData/);
    // A SignedData whose certificates field holds SEQUENCE { INTEGER 1 } instead of a certificate.
    const signedData = '3019' + '020101' + '3100' + '300b06092a864886f70d010701' + 'a0053003020101' + '3100';
    const badCert = Buffer.from('302a' + '06092a864886f70d010702' + 'a01b' + signedData, 'hex');
    throwsCa(() => parseCertsOnly(new Uint8Array(badCert)), 'malformed', /the CMS SignedData is malformed/);
  });

  it('refuses to build from no certificates or from something that is not a certificate', () => {
    throwsCa(() => buildCertsOnly([]), 'internal', /at least one certificate/);
    throwsCa(
      () => buildCertsOnly([one.der, new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01])]),
      'internal',
      /certificate 2 .* not an X\.509 certificate/,
    );
  });
});

describe('base64Body', () => {
  it('writes 64-column LF lines with a final LF that GNU base64 -d and openssl base64 -d decode', () => {
    const p7 = buildCertsOnly([one.der, two.der]);
    const body = base64Body(p7);
    assert.ok(body.endsWith('\n'));
    assert.ok(!body.includes('\r'), 'no CR: GNU base64 -d refuses it (issue 11)');
    const lines = body.split('\n');
    assert.equal(lines.pop(), '');
    assert.ok(lines.slice(0, -1).every((l) => l.length === 64));
    assert.ok(lines[lines.length - 1].length > 0 && lines[lines.length - 1].length <= 64);
    assert.deepEqual(bytes(run(['base64', '-d'], body)), p7);
    assert.deepEqual(new Uint8Array(execFileSync('base64', ['-d'], { input: body })), p7);
  });

  it('with eol CRLF for MIME parts', () => {
    assert.equal(base64Body(new Uint8Array([1, 2, 3]), '\r\n'), 'AQID\r\n');
  });

  it('wrapped in PEM armor is a PKCS7 file openssl reads', () => {
    const body = base64Body(buildCertsOnly([one.der, two.der]));
    const pem = `-----BEGIN PKCS7-----\n${body}-----END PKCS7-----\n`;
    const out = run(['pkcs7', '-inform', 'PEM', '-print_certs', '-noout'], pem);
    assert.match(out, /subject=CN = one[\s\S]*subject=CN = two/);
  });

  it('handles short and empty input', () => {
    assert.equal(base64Body(new Uint8Array([1, 2, 3])), 'AQID\n');
    assert.equal(base64Body(new Uint8Array(0)), '');
  });
});

describe('decodeBase64Body (RFC 8951)', () => {
  const der = new Uint8Array(Array.from({ length: 200 }, (_, i) => (i * 37) & 0xff));
  const b64 = Buffer.from(der).toString('base64');

  it('accepts base64 with and without line breaks', () => {
    assert.deepEqual(decodeBase64Body(b64), der);
    assert.deepEqual(decodeBase64Body(base64Body(der)), der);
    assert.deepEqual(decodeBase64Body(base64Body(der).replace(/\r\n/g, '\n')), der);
    assert.deepEqual(decodeBase64Body(b64.replace(/(.{76})/g, '$1\r\n')), der);
    assert.deepEqual(decodeBase64Body(`  ${b64.slice(0, 10)} \t${b64.slice(10, 50)}\r${b64.slice(50)}\n\n`), der);
  });

  it('accepts bytes as well as strings', () => {
    assert.deepEqual(decodeBase64Body(new Uint8Array(Buffer.from(base64Body(der)))), der);
  });

  it('returns a plain Uint8Array', () => {
    assert.equal(decodeBase64Body(b64).constructor, Uint8Array);
  });

  it('accepts a PEM-wrapped body with LF or CRLF', () => {
    assert.deepEqual(decodeBase64Body(pemEncode('PKCS7', der)), der);
    assert.deepEqual(
      decodeBase64Body(`\r\n-----BEGIN CERTIFICATE REQUEST-----\r\n${base64Body(der)}-----END CERTIFICATE REQUEST-----\r\n`),
      der,
    );
  });

  it('rejects characters outside the base64 alphabet, naming the character and offset', () => {
    throwsCa(
      () => decodeBase64Body(`${b64.slice(0, 12)}!${b64.slice(12)}`),
      'malformed',
      /^the body is not base64: invalid character "!" at offset 12$/,
    );
    throwsCa(() => decodeBase64Body(`AAAA\r\nAA-_`), 'malformed', /invalid character "-" at offset 8/);
    throwsCa(() => decodeBase64Body(`AAAA\u00e9AAA`), 'malformed', /invalid character U\+00E9 at offset 4/);
    throwsCa(() => decodeBase64Body('not base64 at all?'), 'malformed', /invalid character "\?" at offset 17/);
  });

  it('reports offsets inside PEM relative to the whole body', () => {
    const pem = `-----BEGIN PKCS7-----\nAAAA*AAA\n-----END PKCS7-----\n`;
    throwsCa(() => decodeBase64Body(pem), 'malformed', /invalid character "\*" at offset 26/);
  });

  it('rejects wrong padding', () => {
    throwsCa(() => decodeBase64Body('QQ='), 'malformed', /3 base64 characters .* not a multiple of 4/);
    throwsCa(() => decodeBase64Body('QQ'), 'malformed', /padding is missing/);
    throwsCa(() => decodeBase64Body('Q==='), 'malformed', /3 "=" padding characters at offset 1/);
    throwsCa(() => decodeBase64Body('QQ==\r\nQUJD'), 'malformed', /data follows the "=" padding at offset 2/);
    throwsCa(() => decodeBase64Body('QUJDR'), 'malformed', /5 base64 characters/);
  });

  it('rejects raw DER, which RFC 8951 does not allow', () => {
    const cert = one.der;
    throwsCa(() => decodeBase64Body(cert), 'malformed', /binary .*raw DER.*base64/);
    throwsCa(() => decodeBase64Body(Buffer.from(cert).toString('latin1')), 'malformed', /raw DER/);
  });

  it('rejects an empty body', () => {
    throwsCa(() => decodeBase64Body(''), 'malformed', /^the body is empty$/);
    throwsCa(() => decodeBase64Body(new Uint8Array(0)), 'malformed', /^the body is empty$/);
    throwsCa(() => decodeBase64Body('\r\n \t\n'), 'malformed', /^the body is empty$/);
    throwsCa(() => decodeBase64Body('-----BEGIN PKCS7-----\n-----END PKCS7-----\n'), 'malformed', /^the body is empty$/);
  });

  it('rejects broken PEM armor', () => {
    throwsCa(() => decodeBase64Body(`-----BEGIN PKCS7-----\n${b64}\n`), 'malformed', /no "-----END PKCS7-----" line/);
    throwsCa(
      () => decodeBase64Body(`-----BEGIN PKCS7-----\n${b64}\n-----END CERTIFICATE-----\n`),
      'malformed',
      /no "-----END PKCS7-----" line/,
    );
    throwsCa(
      () => decodeBase64Body(`${pemEncode('PKCS7', der)}${pemEncode('PKCS7', der)}`),
      'malformed',
      /more data after the "-----END PKCS7-----" line/,
    );
    throwsCa(
      () => decodeBase64Body(`-----BEGIN PKCS7-----\nProc-Type: 4,ENCRYPTED\n\n${b64}\n-----END PKCS7-----\n`),
      'malformed',
      /invalid character "-"/,
    );
  });
});
