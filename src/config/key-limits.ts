/**
 * A profile's key limits (`keys` of a certificate profile): the one rule that decides which
 * public keys a profile certifies. The issuer's policy applies it to every request, and EST
 * serverkeygen applies it to the key it is asked to generate, before generating anything.
 */
import { CaError } from '../core/errors.ts';
import { describeKeyKind, type PublicKeyKind } from '../pki/publickey.ts';
import type { CertProfile } from './profiles.ts';

function allowedKeysText(p: CertProfile): string {
  const parts: string[] = [];
  if (p.keys.rsa) parts.push(`RSA ${p.keys.rsa.minBits}-${p.keys.rsa.maxBits} bits`);
  if (p.keys.ec) parts.push(`EC ${p.keys.ec.curves.join('/')}`);
  if (p.keys.ed25519) parts.push('Ed25519');
  if (p.keys.ed448) parts.push('Ed448');
  return parts.join(', ') || 'none';
}

/** Throws CaError('badKey') naming the rule (key.type, key.rsa.minBits, ...) when `profile` does not allow `key`. */
export function checkProfileKey(key: PublicKeyKind, p: CertProfile): void {
  const reject = (rule: string, message: string): never => {
    throw new CaError('badKey', `${message} (rule ${rule})`, { rule, details: { profile: p.name, key } });
  };
  const typeNotAllowed = (): never =>
    reject('key.type', `${describeKeyKind(key)} keys are not allowed by profile "${p.name}" (allowed: ${allowedKeysText(p)})`);
  switch (key.type) {
    case 'rsa': {
      const rsa = p.keys.rsa ?? typeNotAllowed();
      if (key.bits < rsa.minBits)
        reject('key.rsa.minBits', `RSA key of ${key.bits} bits is below the profile "${p.name}" minimum of ${rsa.minBits}`);
      if (key.bits > rsa.maxBits)
        reject('key.rsa.maxBits', `RSA key of ${key.bits} bits is above the profile "${p.name}" maximum of ${rsa.maxBits}`);
      return;
    }
    case 'ec': {
      const ec = p.keys.ec ?? typeNotAllowed();
      if (!ec.curves.includes(key.curve)) {
        reject('key.ec.curve', `EC curve ${key.curve} is not allowed by profile "${p.name}" (allowed: ${ec.curves.join(', ')})`);
      }
      return;
    }
    case 'ed25519':
      if (!p.keys.ed25519) typeNotAllowed();
      return;
    case 'ed448':
      if (!p.keys.ed448) typeNotAllowed();
      return;
  }
}
