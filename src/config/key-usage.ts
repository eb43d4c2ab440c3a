/**
 * Which key usages fit a certificate's extended key usages (RFC 5280 4.2.1.12, as zlint's
 * e_key_usage_and_extended_key_usage_inconsistent checks them): the one rule the issuance
 * policy (src/ca/policy.ts) and the profile check (validateProfile) follow.
 */
/** The key usages RFC 5280 4.2.1.12 names as consistent with each extended key usage (by OID). */
const CONSISTENT: Record<string, readonly string[]> = {
  // serverAuth: digitalSignature, keyEncipherment (TLS 1.2 RSA key exchange) or keyAgreement
  '1.3.6.1.5.5.7.3.1': ['digitalSignature', 'keyEncipherment', 'keyAgreement'],
  // clientAuth: digitalSignature and/or keyAgreement
  '1.3.6.1.5.5.7.3.2': ['digitalSignature', 'keyAgreement'],
  // codeSigning
  '1.3.6.1.5.5.7.3.3': ['digitalSignature'],
  // emailProtection: digitalSignature, nonRepudiation, keyEncipherment or keyAgreement
  '1.3.6.1.5.5.7.3.4': ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'keyAgreement'],
  // timeStamping, OCSPSigning: digitalSignature and/or nonRepudiation
  '1.3.6.1.5.5.7.3.8': ['digitalSignature', 'nonRepudiation'],
  '1.3.6.1.5.5.7.3.9': ['digitalSignature', 'nonRepudiation'],
};

/**
 * The key usages (KEY_USAGES names) of `usages` that one of the extended key usages `ekuOids` permits, in
 * their order. With no extended key usage (any purpose) or one RFC 5280 does not describe,
 * nothing is left out: the purpose is not known.
 */
export function usagesFittingPurposes<U extends string>(usages: readonly U[], ekuOids: readonly string[]): U[] {
  if (ekuOids.length === 0 || ekuOids.some((oid) => !(oid in CONSISTENT))) return [...usages];
  return usages.filter((u) => ekuOids.some((oid) => CONSISTENT[oid]!.includes(u)));
}
