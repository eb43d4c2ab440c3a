/**
 * EST CSR attributes (RFC 7030 4.5.2, clarified by RFC 9908): what the server tells a device
 * to put into its certification request, answered at /csrattrs.
 *
 *   CsrAttrs  ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
 *   AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute }
 *   Attribute ::= SEQUENCE { type OBJECT IDENTIFIER, values SET SIZE (1..MAX) OF ANY }
 *
 * A bare OID names something the CSR should contain (an attribute such as challengePassword,
 * a subject attribute type, a key or signature algorithm); an Attribute also says which
 * values are wanted (RFC 7030's example: id-ecPublicKey with value secp384r1 = "use a P-384
 * key"). Only OID values are built here; that covers the RFC 7030 examples and everything a
 * profile can express.
 */
import * as asn1js from 'asn1js';
import { CaError } from '../core/errors.ts';
import { encodeDer, parseDer, toHex } from './der.ts';
import { CURVE_NAMES, OID } from './oids.ts';

/** X.520 serialNumber attribute type (device serial numbers in the subject, e.g. IEEE 802.1AR). */
const OID_SERIAL_NUMBER = '2.5.4.5';

export type CsrAttrItem = { oid: string } | { attribute: string; values: Array<{ oid: string }> };

/** A parsed AttrOrOID: attribute values are dotted OIDs, or the hex DER of values that are not OIDs. */
export type ParsedCsrAttr = { oid: string } | { attribute: string; values: string[] };

/** The parts of a certificate profile that decide the CSR attributes (CertProfile fits). */
export interface CsrAttrsProfile {
  keys: { rsa?: { minBits: number; maxBits: number }; ec?: { curves: string[] }; ed25519?: boolean };
  /** The subject must carry a serialNumber attribute. */
  requireSerialNumber?: boolean;
  /** The CSR must carry a challengePassword attribute (e.g. a one-time enrollment secret). */
  challengePassword?: boolean;
}

// ---------------------------------------------------------------------------------------
// Building

/** DER CsrAttrs with the items in the given order. An empty list gives an empty SEQUENCE. */
export function buildCsrAttrs(items: CsrAttrItem[]): Uint8Array {
  return encodeDer(new asn1js.Sequence({ value: items.map((item, i) => itemNode(item, i)) }));
}

function itemNode(item: CsrAttrItem, index: number): asn1js.BaseBlock {
  if ('oid' in item) return oidNode(item.oid, `CSR attribute ${index + 1}`);
  const what = `CSR attribute ${index + 1} (${item.attribute})`;
  if (item.values.length === 0) throw new CaError('internal', `${what} has no values; an Attribute needs at least one`);
  const values = item.values.map((v) => oidNode(v.oid, `a value of ${what}`));
  return new asn1js.Sequence({ value: [oidNode(item.attribute, what), derSet(values)] });
}

function oidNode(oid: string, what: string): asn1js.ObjectIdentifier {
  if (!isValidOid(oid)) throw new CaError('internal', `${what}: "${oid}" is not a dotted object identifier`);
  return new asn1js.ObjectIdentifier({ value: oid });
}

/** Dotted decimal with at least two arcs and a first arc X.660 allows (0..2; 0..39 below it for 0 and 1). */
function isValidOid(oid: string): boolean {
  if (!/^[0-2](\.(0|[1-9]\d*))+$/.test(oid)) return false;
  const [first, second] = oid.split('.').map(Number);
  return first === 2 || second < 40;
}

/**
 * A SET OF in DER order (X.690 11.6: ascending by encoding), duplicates dropped. The values
 * of a CSR attribute are an unordered choice, so sorting loses nothing.
 */
function derSet(values: asn1js.BaseBlock[]): asn1js.Set {
  const byEncoding = new Map<string, asn1js.BaseBlock>();
  for (const v of values) byEncoding.set(toHex(encodeDer(v)), v);
  const sorted = [...byEncoding.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  return new asn1js.Set({ value: sorted });
}

// ---------------------------------------------------------------------------------------
// From a profile

const CURVE_OIDS: ReadonlyMap<string, string> = new Map(Object.entries(CURVE_NAMES).map(([oid, name]) => [name, oid]));

/**
 * The CSR attributes that tell a device how to build a request `p` accepts. In order:
 *
 * - challengePassword (bare OID), when the profile wants one;
 * - serialNumber (bare OID 2.5.4.5: "put a serialNumber into the subject"), when required;
 * - EC, when curves are allowed: the attribute id-ecPublicKey with every allowed curve as a
 *   value (RFC 7030's own form), followed by the ECDSA signature algorithm whose hash
 *   matches the weakest allowed curve (RFC 5480 4: P-256/SHA-256, P-384/SHA-384,
 *   P-521/SHA-512). So P-256 allowed => ecdsa-with-SHA256, only P-384 => ecdsa-with-SHA384.
 *   It is a hint: the CA accepts any ECDSA hash the CSR parser accepts.
 * - RSA, only when no EC curve is allowed: rsaEncryption and sha256WithRSAEncryption as bare
 *   OIDs. CsrAttrs cannot say "RSA or EC" (a client reads a key type OID as the key to make),
 *   so EC, the smaller and faster choice, is the one advertised; RSA CSRs are still accepted
 *   within the profile's size limits. Those limits are not expressed: OID values cannot
 *   carry a key size.
 * - Ed25519 (1.3.101.112, RFC 8410), when allowed. The one OID names both the key and the
 *   signature algorithm, so it needs no companion; a client without Ed25519 ignores it and
 *   uses the other advertised key type.
 *
 * A profile that requires nothing gives an empty SEQUENCE (the EST handler may answer 204
 * instead, RFC 7030 4.5.2). Unknown curve names are CaError('config').
 */
export function csrAttrsForProfile(p: CsrAttrsProfile): Uint8Array {
  const items: CsrAttrItem[] = [];
  if (p.challengePassword) items.push({ oid: OID.challengePassword });
  if (p.requireSerialNumber) items.push({ oid: OID_SERIAL_NUMBER });
  const curves = p.keys.ec?.curves ?? [];
  if (curves.length > 0) items.push(...ecItems(curves));
  else if (p.keys.rsa) items.push({ oid: OID.rsaEncryption }, { oid: OID.sha256WithRsa });
  if (p.keys.ed25519) items.push({ oid: OID.ed25519 });
  return buildCsrAttrs(items);
}

function ecItems(curves: string[]): CsrAttrItem[] {
  const curveOids = curves.map((name) => {
    const oid = CURVE_OIDS.get(name);
    if (!oid) throw new CaError('config', `unknown EC curve "${name}" in the profile (known: ${[...CURVE_OIDS.keys()].join(', ')})`);
    return { oid };
  });
  return [{ attribute: OID.ecPublicKey, values: curveOids }, { oid: ecdsaHashFor(curves) }];
}

/** The ECDSA signature algorithm matching the weakest of `curves` (see csrAttrsForProfile). */
function ecdsaHashFor(curves: string[]): string {
  if (curves.includes('P-384') && !curves.includes('P-256')) return OID.ecdsaWithSha384;
  if (curves.every((c) => c === 'P-521')) return OID.ecdsaWithSha512;
  return OID.ecdsaWithSha256;
}

// ---------------------------------------------------------------------------------------
// Reading

/** The items of a DER CsrAttrs, in order; CaError('malformed') when it is not one. */
export function parseCsrAttrs(der: Uint8Array): ParsedCsrAttr[] {
  const node = parseDer(der, 'the CSR attributes', 'malformed');
  if (!(node instanceof asn1js.Sequence)) throw new CaError('malformed', 'the CSR attributes are not a SEQUENCE');
  return node.valueBlock.value.map((item, i) => readItem(item, i));
}

function readItem(item: asn1js.BaseBlock, index: number): ParsedCsrAttr {
  const what = `CSR attribute ${index + 1}`;
  if (item instanceof asn1js.ObjectIdentifier) return { oid: item.getValue() };
  if (!(item instanceof asn1js.Sequence))
    throw new CaError('malformed', `${what} is neither an OBJECT IDENTIFIER nor an Attribute SEQUENCE`);
  const [type, values, ...rest] = item.valueBlock.value;
  if (!(type instanceof asn1js.ObjectIdentifier) || !(values instanceof asn1js.Set) || rest.length > 0) {
    throw new CaError('malformed', `${what} is not an Attribute (SEQUENCE { OBJECT IDENTIFIER, SET OF values })`);
  }
  if (values.valueBlock.value.length === 0) throw new CaError('malformed', `${what} (${type.getValue()}) has an empty SET of values`);
  return { attribute: type.getValue(), values: values.valueBlock.value.map(readValue) };
}

function readValue(value: asn1js.BaseBlock): string {
  return value instanceof asn1js.ObjectIdentifier ? value.getValue() : toHex(value.valueBeforeDecodeView);
}
