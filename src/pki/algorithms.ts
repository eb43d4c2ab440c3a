/**
 * Signature algorithms: certflow's SignAlg names <-> X.509 AlgorithmIdentifiers, and
 * signature verification with node:crypto (synchronous, and it covers every algorithm we
 * accept, unlike WebCrypto which lacks e.g. Ed448 in places).
 */
import { constants, createPublicKey, verify as nodeVerify, type KeyObject, type VerifyKeyObjectInput } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CaError, type ErrorKind } from '../core/errors.ts';
import type { KeyAlg, SignAlg } from '../keys/types.ts';
import { derChildren, derElement, derOid, parseDer, wrapAsn1 } from './der.ts';
import { OID } from './oids.ts';
import { publicKeyJwk } from './publickey.ts';

export type HashName = 'sha256' | 'sha384' | 'sha512';

const HASH_OID: Record<HashName, string> = { sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 };
const HASH_BY_OID = new Map(Object.entries(HASH_OID).map(([name, oid]) => [oid, name as HashName]));
const HASH_BYTES: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };

export interface SignAlgInfo {
  scheme: 'ecdsa' | 'rsa-pkcs1' | 'rsa-pss';
  hash: HashName;
}

const SIGN_ALG_INFO: Record<SignAlg, SignAlgInfo & { oid: string }> = {
  'ecdsa-sha256': { scheme: 'ecdsa', hash: 'sha256', oid: OID.ecdsaWithSha256 },
  'ecdsa-sha384': { scheme: 'ecdsa', hash: 'sha384', oid: OID.ecdsaWithSha384 },
  'ecdsa-sha512': { scheme: 'ecdsa', hash: 'sha512', oid: OID.ecdsaWithSha512 },
  'rsa-pkcs1-sha256': { scheme: 'rsa-pkcs1', hash: 'sha256', oid: OID.sha256WithRsa },
  'rsa-pkcs1-sha384': { scheme: 'rsa-pkcs1', hash: 'sha384', oid: OID.sha384WithRsa },
  'rsa-pkcs1-sha512': { scheme: 'rsa-pkcs1', hash: 'sha512', oid: OID.sha512WithRsa },
  'rsa-pss-sha256': { scheme: 'rsa-pss', hash: 'sha256', oid: OID.rsassaPss },
  'rsa-pss-sha384': { scheme: 'rsa-pss', hash: 'sha384', oid: OID.rsassaPss },
  'rsa-pss-sha512': { scheme: 'rsa-pss', hash: 'sha512', oid: OID.rsassaPss },
};

export function signAlgInfo(alg: SignAlg): SignAlgInfo {
  const info = SIGN_ALG_INFO[alg];
  if (!info) throw new CaError('internal', `unknown signature algorithm "${alg}"`);
  return { scheme: info.scheme, hash: info.hash };
}

/** Whether a CA key of algorithm `keyAlg` can produce signatures of algorithm `signAlg`. */
export function signAlgFitsKey(signAlg: SignAlg, keyAlg: KeyAlg): boolean {
  const { scheme } = signAlgInfo(signAlg);
  return keyAlg.startsWith('ec-') ? scheme === 'ecdsa' : scheme !== 'ecdsa';
}

/** A hash AlgorithmIdentifier with NULL parameters, as OpenSSL writes it inside RSASSA-PSS-params. */
function hashAlgorithmIdentifier(hash: HashName): pkijs.AlgorithmIdentifier {
  return new pkijs.AlgorithmIdentifier({ algorithmId: HASH_OID[hash], algorithmParams: new asn1js.Null() });
}

/**
 * The AlgorithmIdentifier for certificates/CRLs signed with `alg`: ECDSA with absent
 * parameters (RFC 5758), PKCS#1 v1.5 with NULL parameters (RFC 4055), RSASSA-PSS with
 * complete parameters: hash, MGF1 with the same hash, salt length = hash length.
 */
export function signatureAlgorithmIdentifier(alg: SignAlg): pkijs.AlgorithmIdentifier {
  const { scheme, hash, oid } = SIGN_ALG_INFO[alg];
  switch (scheme) {
    case 'ecdsa':
      return new pkijs.AlgorithmIdentifier({ algorithmId: oid });
    case 'rsa-pkcs1':
      return new pkijs.AlgorithmIdentifier({ algorithmId: oid, algorithmParams: new asn1js.Null() });
    case 'rsa-pss': {
      const params = new pkijs.RSASSAPSSParams({
        hashAlgorithm: hashAlgorithmIdentifier(hash),
        maskGenAlgorithm: new pkijs.AlgorithmIdentifier({
          algorithmId: OID.mgf1,
          algorithmParams: hashAlgorithmIdentifier(hash).toSchema(),
        }),
        saltLength: HASH_BYTES[hash],
      });
      return new pkijs.AlgorithmIdentifier({ algorithmId: oid, algorithmParams: params.toSchema() });
    }
  }
}

const algIdDer = new Map<SignAlg, Uint8Array>();

/** signatureAlgorithmIdentifier(alg) as DER bytes (computed once per algorithm). */
export function signatureAlgorithmDer(alg: SignAlg): Uint8Array {
  let der = algIdDer.get(alg);
  if (!der) algIdDer.set(alg, (der = new Uint8Array(signatureAlgorithmIdentifier(alg).toSchema().toBER(false))));
  return der;
}

// ---------------------------------------------------------------------------------------
// Reading algorithms from requests and certificates

export type KeyFamily = 'rsa' | 'ec' | 'ed25519' | 'ed448';

/** A signature algorithm read from a CSR or certificate, ready for node:crypto. */
export interface VerifyAlgorithm {
  /** Human name for messages, e.g. "ecdsa-with-SHA256", "RSASSA-PSS(SHA-384, salt 48)". */
  name: string;
  keyFamily: KeyFamily;
  /** null for EdDSA, which hashes internally. */
  hash: HashName | null;
  pssSaltLength?: number;
}

const SIMPLE_ALGORITHMS: Record<string, Omit<VerifyAlgorithm, 'pssSaltLength'>> = {
  [OID.ecdsaWithSha256]: { name: 'ecdsa-with-SHA256', keyFamily: 'ec', hash: 'sha256' },
  [OID.ecdsaWithSha384]: { name: 'ecdsa-with-SHA384', keyFamily: 'ec', hash: 'sha384' },
  [OID.ecdsaWithSha512]: { name: 'ecdsa-with-SHA512', keyFamily: 'ec', hash: 'sha512' },
  [OID.sha256WithRsa]: { name: 'sha256WithRSAEncryption', keyFamily: 'rsa', hash: 'sha256' },
  [OID.sha384WithRsa]: { name: 'sha384WithRSAEncryption', keyFamily: 'rsa', hash: 'sha384' },
  [OID.sha512WithRsa]: { name: 'sha512WithRSAEncryption', keyFamily: 'rsa', hash: 'sha512' },
  [OID.ed25519]: { name: 'Ed25519', keyFamily: 'ed25519', hash: null },
  [OID.ed448]: { name: 'Ed448', keyFamily: 'ed448', hash: null },
};

const SHA1_ALGORITHMS: Record<string, string> = {
  [OID.sha1WithRsa]: 'sha1WithRSAEncryption',
  [OID.ecdsaWithSha1]: 'ecdsa-with-SHA1',
};

/**
 * Interprets a signature AlgorithmIdentifier, parsed or as DER. Throws CaError(kind, rule
 * signature.algorithm) for anything not supported, SHA-1 included. The DER of an algorithm
 * without parameters (ECDSA, EdDSA, PKCS#1 with NULL) is read on its bytes; the rest
 * (RSASSA-PSS parameters, refusals) through pkijs' schema.
 */
export function readSignatureAlgorithm(algId: pkijs.AlgorithmIdentifier | Uint8Array, kind: ErrorKind): VerifyAlgorithm {
  if (algId instanceof Uint8Array) {
    const what = 'the signature algorithm';
    const [oidEl, params, ...extra] = derChildren(derElement(algId, what, kind, 0x30), what, kind);
    const simple = SIMPLE_ALGORITHMS[derOid(oidEl, what, kind)];
    if (simple && !extra.length && (!params || (params.tag === 0x05 && params.content.length === 0))) return { ...simple };
    const node = parseDer(algId, what, kind);
    algId = wrapAsn1(kind, `${what} is malformed`, () => new pkijs.AlgorithmIdentifier({ schema: node }));
  }
  const oid = algId.algorithmId;
  const unsupported = (why: string): never => {
    throw new CaError(kind, `unsupported signature algorithm: ${why}`, { rule: 'signature.algorithm', details: { oid } });
  };
  const simple = SIMPLE_ALGORITHMS[oid];
  if (simple) {
    if (!paramsAbsentOrNull(algId)) unsupported(`${simple.name} with unexpected parameters`);
    return { ...simple };
  }
  if (SHA1_ALGORITHMS[oid]) unsupported(`${SHA1_ALGORITHMS[oid]} (SHA-1 signatures are not accepted)`);
  if (oid === OID.rsassaPss) return readPssAlgorithm(algId, unsupported);
  return unsupported(
    `OID ${oid} (supported: RSA PKCS#1 v1.5 and RSASSA-PSS with SHA-256/384/512, ECDSA with SHA-256/384/512, Ed25519, Ed448)`,
  );
}

function paramsAbsentOrNull(algId: pkijs.AlgorithmIdentifier): boolean {
  const p: unknown = algId.algorithmParams;
  return p === undefined || p instanceof asn1js.Any || p instanceof asn1js.Null;
}

function readPssAlgorithm(algId: pkijs.AlgorithmIdentifier, unsupported: (why: string) => never): VerifyAlgorithm {
  // Absent parameters mean SHA-1 defaults (RFC 4055), which we do not accept.
  if (paramsAbsentOrNull(algId)) unsupported('RSASSA-PSS with default (SHA-1) parameters');
  let params: pkijs.RSASSAPSSParams;
  try {
    params = new pkijs.RSASSAPSSParams({ schema: algId.algorithmParams });
  } catch {
    return unsupported('RSASSA-PSS with malformed parameters');
  }
  const hash = HASH_BY_OID.get(params.hashAlgorithm.algorithmId) ?? unsupported(`RSASSA-PSS with hash ${params.hashAlgorithm.algorithmId}`);
  if (params.maskGenAlgorithm.algorithmId !== OID.mgf1)
    unsupported(`RSASSA-PSS with mask generation ${params.maskGenAlgorithm.algorithmId}`);
  let mgfHash: string;
  try {
    mgfHash = new pkijs.AlgorithmIdentifier({ schema: params.maskGenAlgorithm.algorithmParams }).algorithmId;
  } catch {
    return unsupported('RSASSA-PSS with malformed MGF1 parameters');
  }
  // node:crypto (OpenSSL) uses the signature hash for MGF1; other combinations cannot be verified.
  if (mgfHash !== HASH_OID[hash]) unsupported(`RSASSA-PSS with MGF1 hash ${mgfHash} different from the message hash`);
  if (params.trailerField !== 1) unsupported(`RSASSA-PSS with trailer field ${params.trailerField}`);
  if (!(params.saltLength >= 0)) unsupported('RSASSA-PSS with a negative salt length');
  return {
    name: `RSASSA-PSS(${hash.toUpperCase().replace('SHA', 'SHA-')}, salt ${params.saltLength})`,
    keyFamily: 'rsa',
    hash,
    pssSaltLength: params.saltLength,
  };
}

/**
 * Verifies `signature` over `data` with the public key `spki` (DER SubjectPublicKeyInfo).
 * Returns false for a wrong signature and for keys/signatures node:crypto cannot use
 * (wrong key type, malformed ECDSA value): the caller only needs "valid or not".
 */
export function verifySignature(spki: Uint8Array | KeyObject, alg: VerifyAlgorithm, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = spki instanceof Uint8Array ? publicKeyOf(spki) : spki;
    if (!keyTypeFits(key, alg.keyFamily)) return false;
    let opts: VerifyKeyObjectInput = { key };
    if (alg.keyFamily === 'rsa') {
      opts =
        alg.pssSaltLength === undefined
          ? { key, padding: constants.RSA_PKCS1_PADDING }
          : { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.pssSaltLength };
    } else if (alg.keyFamily === 'ec') {
      opts = { key, dsaEncoding: 'der' };
    }
    return nodeVerify(alg.hash, data, opts, signature);
  } catch {
    return false;
  }
}

/**
 * Verifies a signature made with one of certflow's own signature algorithms (a CA key's
 * signature over a TBSCertificate, TBSCertList or ResponseData) before the signed object
 * is assembled around it.
 */
export function verifySignedWith(spki: Uint8Array, alg: SignAlg, data: Uint8Array, signature: Uint8Array): boolean {
  const { scheme, hash } = signAlgInfo(alg);
  const verifyAlg: VerifyAlgorithm =
    scheme === 'ecdsa'
      ? { name: alg, keyFamily: 'ec', hash }
      : { name: alg, keyFamily: 'rsa', hash, ...(scheme === 'rsa-pss' ? { pssSaltLength: HASH_BYTES[hash] } : {}) };
  return verifySignature(spki, verifyAlg, data, signature);
}

/** Public keys of SubjectPublicKeyInfos seen recently (CA keys are verified against over and over). */
const publicKeys = new Map<string, KeyObject>();

function publicKeyOf(spki: Uint8Array): KeyObject {
  const id = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength).toString('base64');
  let key = publicKeys.get(id);
  if (!key) {
    if (publicKeys.size >= 256) publicKeys.clear();
    const jwk = publicKeyJwk(spki);
    key = jwk ? createPublicKey({ key: jwk, format: 'jwk' }) : createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
    publicKeys.set(id, key);
  }
  return key;
}

function keyTypeFits(key: KeyObject, family: KeyFamily): boolean {
  const t = key.asymmetricKeyType;
  return family === 'rsa' ? t === 'rsa' || t === 'rsa-pss' : t === family;
}
