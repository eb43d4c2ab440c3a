import { CaError } from '../core/errors.ts';

/**
 * Key ids become file names (software store) and CKA_LABEL values passed to tools such as
 * pkcs11-tool, so they are restricted to letters, digits, ".", "_" and "-", must start with a
 * letter or digit (no ".", "..", hidden files, or ids that look like command-line options)
 * and are at most 64 characters.
 */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function isValidKeyId(id: string): boolean {
  return KEY_ID.test(id);
}

export function assertKeyId(id: string): void {
  if (!isValidKeyId(id)) {
    throw new CaError(
      'malformed',
      `invalid key id ${JSON.stringify(id)}: use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      { rule: 'key.id' },
    );
  }
}
