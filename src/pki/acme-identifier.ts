/**
 * Reading a tls-alpn-01 challenge certificate (RFC 8737 section 3): its subjectAltName and
 * its acmeIdentifier extension (id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31), whose value is
 *   Authorization ::= OCTET STRING (SIZE (32))  -- SHA-256 of the key authorization
 * The certificate is self-signed by the applicant: nothing here verifies it, the VA only
 * compares these fields with what it expects.
 */
import * as asn1js from 'asn1js';
import { CaError } from '../core/errors.ts';
import { parseCertificate } from './certificate.ts';
import { bytesOf, parseDer, wrapAsn1 } from './der.ts';
import { OID } from './oids.ts';
import { decodeGeneralNames, emptySans, type SanSet } from './san.ts';

const ACME_IDENTIFIER_OID = '1.3.6.1.5.5.7.1.31';

export interface AcmeChallengeCertificate {
  /** Subject alternative names (IP addresses in canonical text); empty without the extension. */
  sans: SanSet;
  /** SAN entries a SanSet cannot hold (otherName, directoryName, ...), described. */
  otherSans: string[];
  /** The acmeIdentifier extension; undefined when the certificate has none. */
  acmeIdentifier?: {
    critical: boolean;
    /** The 32 bytes of the Authorization OCTET STRING. */
    digest: Uint8Array;
  };
}

/**
 * Parses the fields of a challenge certificate (DER). A certificate that cannot be parsed, a
 * repeated extension, or an acmeIdentifier that is not an OCTET STRING of 32 bytes is a
 * CaError('malformed').
 */
export function parseAcmeChallengeCertificate(der: Uint8Array): AcmeChallengeCertificate {
  const cert = parseCertificate(der, 'malformed');
  return wrapAsn1('malformed', 'the challenge certificate has a malformed extension', () => {
    const out: AcmeChallengeCertificate = { sans: emptySans(), otherSans: [] };
    const seen = new Set<string>();
    for (const ext of cert.extensions ?? []) {
      // RFC 5280 4.2: a certificate MUST NOT include more than one instance of an extension.
      if (seen.has(ext.extnID)) throw new CaError('malformed', `the challenge certificate has the extension ${ext.extnID} twice`);
      seen.add(ext.extnID);
      const raw = bytesOf(ext.extnValue.valueBlock.valueHexView);
      if (ext.extnID === OID.subjectAltName) {
        const names = decodeGeneralNames(raw, 'malformed');
        out.sans = names.sans;
        out.otherSans = names.other;
      } else if (ext.extnID === ACME_IDENTIFIER_OID) {
        out.acmeIdentifier = { critical: ext.critical, digest: decodeAuthorization(raw) };
      }
    }
    return out;
  });
}

function decodeAuthorization(raw: Uint8Array): Uint8Array {
  const node = parseDer(raw, 'the acmeIdentifier extension', 'malformed');
  // Constructed (BER) OCTET STRINGs are not DER: only the primitive form is accepted.
  if (!(node instanceof asn1js.OctetString) || node.idBlock.isConstructed || node.valueBlock.valueHexView.length !== 32) {
    throw new CaError('malformed', 'the acmeIdentifier extension is not an OCTET STRING of 32 bytes (RFC 8737 section 3)');
  }
  return bytesOf(node.valueBlock.valueHexView).slice();
}
