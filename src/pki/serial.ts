/** Certificate serial numbers (RFC 5280 4.1.2.2: positive, at most 20 octets). */
import { randomBytes } from 'node:crypto';
import { CaError } from '../core/errors.ts';

/**
 * 20 random bytes whose first byte is in 0x01..0x7f: the DER INTEGER is then positive,
 * exactly 20 octets (no 0x00 sign byte needed, no leading zero to strip) and carries
 * ~159 bits of entropy, well above the CA/B Forum's 64.
 */
export function randomSerial(): Uint8Array {
  const serial = new Uint8Array(randomBytes(20));
  serial[0] = (serial[0] % 0x7f) + 1;
  return serial;
}

/**
 * Lower-case hex of a serial's INTEGER content octets, without sign-padding zero bytes,
 * so that the same number always has the same text ("00ff" and "ff" are both "ff").
 */
export function serialToHex(bytes: Uint8Array): string {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  return Buffer.from(bytes.subarray(i)).toString('hex');
}

/** Throws unless `serial` is the minimal big-endian encoding of a positive number of <= 20 octets. */
export function assertValidSerial(serial: Uint8Array): void {
  const bad = (why: string): never => {
    throw new CaError('malformed', `certificate serial number ${Buffer.from(serial).toString('hex') || '(empty)'} ${why}`, {
      rule: 'serial',
    });
  };
  if (serial.length === 0) bad('is empty');
  if (serial.length > 20) bad(`is ${serial.length} octets long; RFC 5280 allows at most 20`);
  if (serial[0] & 0x80) bad('is negative (high bit set)');
  if (serial.length > 1 && serial[0] === 0 && (serial[1] & 0x80) === 0) bad('has a superfluous leading zero octet');
  if (serial.every((b) => b === 0)) bad('is zero; it must be positive');
}
