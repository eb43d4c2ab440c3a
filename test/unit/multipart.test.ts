import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFileSync } from 'node:fs';
import { CaError } from '../../src/core/errors.ts';
import {
  buildCertsOnly,
  buildServerKeygenResponse,
  decodeBase64Body,
  parseCertsOnly,
  parseMultipart,
  pemDecodeAll,
} from '../../src/pki/index.ts';
import { openssl, tmpFile } from '../helpers/openssl.ts';

function throwsCa(fn: () => unknown, kind: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof CaError && e.kind === kind && message.test(e.message));
}

let pkcs8: Uint8Array;
let certDer: Uint8Array;
let certsOnly: Uint8Array;

before(() => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  pkcs8 = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }));
  const pem = tmpFile('cert.pem');
  const r = openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=device',
    '-keyout',
    tmpFile('k'),
    '-out',
    pem,
  ]);
  assert.equal(r.code, 0, r.stderr);
  certDer = pemDecodeAll(readFileSync(pem, 'latin1'))[0].der;
  certsOnly = buildCertsOnly([certDer]);
});

describe('buildServerKeygenResponse (RFC 7030 4.4.2)', () => {
  it('is multipart/mixed with a random boundary', () => {
    const a = buildServerKeygenResponse({ privateKeyPkcs8: pkcs8, certsOnly });
    const b = buildServerKeygenResponse({ privateKeyPkcs8: pkcs8, certsOnly });
    assert.match(a.contentType, /^multipart\/mixed; boundary=certflow-[0-9a-f]{32}$/);
    assert.notEqual(a.contentType, b.contentType);
  });

  it('uses CRLF line ends only and closes with the final delimiter', () => {
    const { contentType, body } = buildServerKeygenResponse({ privateKeyPkcs8: pkcs8, certsOnly });
    const boundary = contentType.split('boundary=')[1];
    assert.ok(!body.replace(/\r\n/g, '').includes('\n'));
    assert.ok(!body.includes('\r\r'));
    assert.ok(body.startsWith(`--${boundary}\r\nContent-Type: application/pkcs8\r\nContent-Transfer-Encoding: base64\r\n\r\n`));
    assert.ok(body.endsWith(`\r\n--${boundary}--\r\n`));
  });

  it('round-trips through parseMultipart: a PKCS#8 key that node:crypto accepts, then the certs-only message', () => {
    const { contentType, body } = buildServerKeygenResponse({ privateKeyPkcs8: pkcs8, certsOnly });
    const parts = parseMultipart(contentType, body);
    assert.equal(parts.length, 2);
    assert.deepEqual(parts[0].headers, { 'content-type': 'application/pkcs8', 'content-transfer-encoding': 'base64' });
    assert.deepEqual(parts[1].headers, {
      'content-type': 'application/pkcs7-mime; smime-type=certs-only',
      'content-transfer-encoding': 'base64',
    });

    const keyDer = decodeBase64Body(parts[0].body);
    assert.deepEqual(keyDer, pkcs8);
    const key = createPrivateKey({ key: Buffer.from(keyDer), format: 'der', type: 'pkcs8' });
    assert.equal(key.asymmetricKeyType, 'ec');
    assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');

    assert.deepEqual(parseCertsOnly(decodeBase64Body(parts[1].body)), [certDer]);
  });

  it('refuses inputs that are not PKCS#8 or certs-only (a bug upstream)', () => {
    throwsCa(() => buildServerKeygenResponse({ privateKeyPkcs8: certDer, certsOnly }), 'internal', /not PKCS#8/);
    throwsCa(() => buildServerKeygenResponse({ privateKeyPkcs8: new Uint8Array(0), certsOnly }), 'internal', /private key is empty/);
    throwsCa(() => buildServerKeygenResponse({ privateKeyPkcs8: pkcs8, certsOnly: certDer }), 'internal', /not a certs-only message/);
  });
});

describe('parseMultipart', () => {
  it('handles quoted boundaries, LF line ends, preamble, epilogue, folded headers and header-less parts', () => {
    const body = [
      'preamble text',
      '--b.1 (x)',
      'Content-Type: text/plain;',
      '\tcharset=us-ascii',
      '',
      'first',
      'line two',
      '--b.1 (x)  ',
      '',
      'no headers',
      '--b.1 (x)--',
      'epilogue',
    ].join('\n');
    const parts = parseMultipart('Multipart/Mixed; boundary="b.1 (x)"', body);
    assert.deepEqual(parts, [
      { headers: { 'content-type': 'text/plain;\tcharset=us-ascii' }, body: 'first\nline two' },
      { headers: {}, body: 'no headers' },
    ]);
  });

  it('does not take a line that merely starts with the boundary as a delimiter', () => {
    const parts = parseMultipart('multipart/mixed; boundary=xy', '--xy\r\n\r\n--xyz\r\n--xy--\r\n');
    assert.deepEqual(parts, [{ headers: {}, body: '--xyz' }]);
  });

  it('rejects bodies and content types that are not multipart', () => {
    throwsCa(() => parseMultipart('application/pkcs8', 'x'), 'malformed', /not a multipart content type/);
    throwsCa(() => parseMultipart('multipart/mixed', 'x'), 'malformed', /no valid boundary/);
    throwsCa(() => parseMultipart('multipart/mixed; boundary=b', '--b\r\n\r\nbody\r\n'), 'malformed', /no closing boundary/);
    throwsCa(() => parseMultipart('multipart/mixed; boundary=b', '--b--\r\n'), 'malformed', /no parts/);
    throwsCa(
      () => parseMultipart('multipart/mixed; boundary=b', '--b\r\nnot a header\r\n\r\nx\r\n--b--'),
      'malformed',
      /bad header line "not a header"/,
    );
    throwsCa(
      () => parseMultipart('multipart/mixed; boundary=b', '--b\r\nContent-Type: x\r\n--b--'),
      'malformed',
      /no empty line after its headers/,
    );
  });
});
