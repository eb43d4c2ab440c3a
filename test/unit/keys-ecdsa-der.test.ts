import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { test } from 'node:test';
import { ecdsaRawToDer } from '../../src/keys/ecdsa-der.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('minimal INTEGERs: leading zeros dropped, 0x00 added before a set high bit', () => {
  // r = 0x00..0001 (31 leading zero bytes), s = 0xff..ff (high bit set)
  const r = Buffer.alloc(32);
  r[31] = 1;
  const s = Buffer.alloc(32, 0xff);
  const der = ecdsaRawToDer(Buffer.concat([r, s]));
  assert.deepEqual(Buffer.from(der), Buffer.concat([hex('30 26 02 01 01 02 21 00'), s]));

  // r = 0x007f.. (leading zero, then high bit clear): the zero goes;
  // s = 0x0080.. (leading zero, then high bit set): the zero is exactly the one DER needs.
  const r2 = Buffer.alloc(32, 0x11);
  r2[0] = 0x00;
  r2[1] = 0x7f;
  const s2 = Buffer.alloc(32, 0x22);
  s2[0] = 0x00;
  s2[1] = 0x80;
  const der2 = Buffer.from(ecdsaRawToDer(Buffer.concat([r2, s2])));
  assert.deepEqual(der2, Buffer.concat([hex('30 43 02 1f'), r2.subarray(1), hex('02 20'), s2]));

  // zero encodes as a single 0x00 byte
  assert.deepEqual(Buffer.from(ecdsaRawToDer(Buffer.alloc(64))), hex('30 06 02 01 00 02 01 00'));
});

test('long-form SEQUENCE length when the content exceeds 127 bytes (P-521 sizes)', () => {
  const raw = Buffer.alloc(132, 0x80); // r and s of 66 bytes with the high bit set
  const der = Buffer.from(ecdsaRawToDer(raw));
  assert.deepEqual(der.subarray(0, 6), hex('30 81 8a 02 43 00'));
  assert.equal(der.length, 3 + 2 * (2 + 67));
});

test('rejects odd or empty input', () => {
  assert.throws(() => ecdsaRawToDer(Buffer.alloc(63)), RangeError);
  assert.throws(() => ecdsaRawToDer(Buffer.alloc(0)), RangeError);
});

for (const namedCurve of ['P-256', 'P-384']) {
  test(`${namedCurve}: 300 converted IEEE P1363 signatures verify as DER with OpenSSL`, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve });
    let highBit = 0;
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(`message ${i}`);
      const raw = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      if (raw[0]! & 0x80) highBit++;
      const der = ecdsaRawToDer(raw);
      // OpenSSL re-encodes and compares, so a non-minimal encoding would fail here.
      assert.ok(verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, der), `signature ${i}`);
    }
    assert.ok(highBit > 50, 'the sample covers r values with the high bit set');
  });
}
