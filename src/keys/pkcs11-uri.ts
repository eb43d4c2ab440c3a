/**
 * PKCS#11 URIs (RFC 7512) naming a key in a token: `pkcs11:token=ca-hsm;object=issuing-2019;type=private`.
 * certflow uses the token attribute to check the URI names the token its key store opened,
 * and the object (CKA_LABEL) to find the key; the key itself never leaves the token.
 */
import { CaError } from '../core/errors.ts';

export interface Pkcs11Uri {
  token?: string;
  object?: string;
  /** CKA_ID, raw bytes. */
  id?: Uint8Array;
  type?: string;
  manufacturer?: string;
  serial?: string;
  model?: string;
}

const PATH_ATTRS = new Set([
  'token',
  'object',
  'id',
  'type',
  'manufacturer',
  'serial',
  'model',
  'library-description',
  'library-manufacturer',
  'library-version',
  'slot-description',
  'slot-id',
  'slot-manufacturer',
]);

function decode(value: string, uri: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw bad(uri, `"%${hex}" is not a percent-encoded byte`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes);
}

function bad(uri: string, why: string): CaError {
  return new CaError('malformed', `PKCS#11 URI "${uri}": ${why} (RFC 7512, e.g. pkcs11:token=<token label>;object=<key label>)`, {
    rule: 'pkcs11.uri',
  });
}

/** Parses a pkcs11: URI; query attributes (pin-value, module-path, ...) are refused: the PIN and module come from the configuration. */
export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!uri.startsWith('pkcs11:')) throw bad(uri, 'it does not start with "pkcs11:"');
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  if (q >= 0) {
    throw bad(
      uri,
      'query attributes (pin-value, module-path, …) are not taken: certflow uses CERTFLOW_PKCS11_MODULE and CERTFLOW_PKCS11_PIN',
    );
  }
  const out: Pkcs11Uri = {};
  for (const part of rest.split(';').filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw bad(uri, `"${part}" is not attribute=value`);
    const name = part.slice(0, eq).toLowerCase();
    if (!PATH_ATTRS.has(name)) throw bad(uri, `unknown attribute "${name}"`);
    const value = decode(part.slice(eq + 1), uri);
    if (name === 'id') out.id = new Uint8Array(value);
    else if (name === 'token' || name === 'object' || name === 'type' || name === 'manufacturer' || name === 'serial' || name === 'model') {
      out[name] = value.toString('utf8');
    }
  }
  if (out.type && out.type !== 'private') throw bad(uri, `type=${out.type}: name the private key (type=private)`);
  return out;
}

/**
 * The key label a URI names in the token the key store uses (`tokenLabel`): the URI's token,
 * when it names one, must be that token.
 */
export function keyLabelOf(uri: string, tokenLabel: string | undefined): string {
  const parsed = parsePkcs11Uri(uri);
  if (parsed.token !== undefined && tokenLabel !== undefined && parsed.token !== tokenLabel) {
    throw new CaError(
      'policy',
      `PKCS#11 URI "${uri}" names token "${parsed.token}", but the worker's key store is token "${tokenLabel}" (CERTFLOW_PKCS11_TOKEN_LABEL)`,
      { rule: 'pkcs11.uri.token' },
    );
  }
  if (!parsed.object) throw bad(uri, 'it names no key: give its label as object=<label>');
  return parsed.object;
}
