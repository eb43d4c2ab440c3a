/**
 * tls-alpn-01 (RFC 8737; RFC 8738 section 6 for IP identifiers): a TLS handshake with
 * <identifier>:<tlsAlpn01Port> offering only the ALPN protocol "acme-tls/1" must negotiate
 * it, and the (self-signed) certificate presented must have exactly one subjectAltName, the
 * identifier, and a critical acmeIdentifier extension holding SHA-256(key authorization).
 * The SNI is the domain, or for an IP address its reverse-mapping name (in-addr.arpa /
 * ip6.arpa), since SNI cannot carry IP addresses (RFC 6066 section 3).
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { CaError } from '../core/errors.ts';
import { parseAcmeChallengeCertificate, type AcmeChallengeCertificate } from '../pki/index.ts';
import { connectFirst, resolveTarget, tlsHandshake } from './connect.ts';
import { Deadline, type VaContext } from './context.ts';
import { ValidationError } from './errors.ts';
import { hostPort, normalizeIdentifier, reverseDnsName, type Identifier } from './identifier.ts';

const ACME_TLS_ALPN = 'acme-tls/1';

export interface TlsAlpn01Input {
  identifier: Identifier;
  keyAuthorization: string;
}

export interface TlsAlpn01Record {
  hostname: string;
  port: number;
  /** The SNI sent. */
  serverName: string;
  addressesResolved: string[];
  addressUsed: string;
}

export async function validateTlsAlpn01(ctx: VaContext, input: TlsAlpn01Input): Promise<TlsAlpn01Record[]> {
  const id = normalizeIdentifier(input.identifier);
  const port = ctx.config.tlsAlpn01Port;
  const deadline = Deadline.seconds(ctx.config.attemptTimeoutSeconds);
  const serverName = id.type === 'ip' ? reverseDnsName(id.value) : id.value;
  const target = await resolveTarget(ctx, id.value, deadline, 'rejectedIdentifier');
  const { socket, address } = await connectFirst(target, port, deadline);
  const what = hostPort(id.value, port);
  let tls: TLSSocket | undefined;
  try {
    tls = await tlsHandshake(socket, { servername: serverName, ALPNProtocols: [ACME_TLS_ALPN] }, deadline, what);
    checkAlpn(tls, what);
    checkCertificate(peerCertificate(tls, what), id, input.keyAuthorization, what);
  } finally {
    tls?.destroy();
    socket.destroy();
  }
  return [{ hostname: id.value, port, serverName, addressesResolved: target.addressesResolved, addressUsed: address }];
}

function checkAlpn(tls: TLSSocket, what: string): void {
  if (tls.alpnProtocol !== ACME_TLS_ALPN) {
    const got = tls.alpnProtocol ? `"${tls.alpnProtocol}"` : 'no protocol';
    throw ValidationError.final('tls', `${what}: the server negotiated ${got} instead of ALPN "${ACME_TLS_ALPN}"`);
  }
}

function peerCertificate(tls: TLSSocket, what: string): AcmeChallengeCertificate {
  const x509 = tls.getPeerX509Certificate();
  if (!x509) throw ValidationError.final('tls', `${what}: the server presented no certificate`);
  try {
    return parseAcmeChallengeCertificate(new Uint8Array(x509.raw));
  } catch (e) {
    if (e instanceof CaError) throw ValidationError.final('incorrectResponse', `${what}: ${e.message}`, e);
    throw e;
  }
}

/** RFC 8737 section 3 / RFC 8738 section 6: the checks on the challenge certificate. */
function checkCertificate(cert: AcmeChallengeCertificate, id: Identifier, keyAuthorization: string, what: string): void {
  const names = [
    ...cert.sans.dns.map((d) => `DNS:${d}`),
    ...cert.sans.ip.map((ip) => `IP:${ip}`),
    ...cert.sans.email,
    ...cert.sans.uri,
    ...cert.otherSans,
  ];
  const wanted = id.type === 'dns' ? `DNS:${id.value}` : `IP:${id.value}`;
  const only = names.length === 1 ? names[0] : undefined;
  // dNSName comparison is case-insensitive; IP texts are canonical on both sides.
  if (only === undefined || only.toLowerCase() !== wanted.toLowerCase()) {
    throw ValidationError.final(
      'incorrectResponse',
      `${what}: the certificate must have exactly one subjectAltName, ${wanted}; it has ${names.length ? names.join(', ') : 'none'}`,
    );
  }
  const ext = cert.acmeIdentifier;
  if (!ext)
    throw ValidationError.final('incorrectResponse', `${what}: the certificate has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)`);
  if (!ext.critical)
    throw ValidationError.final('incorrectResponse', `${what}: the certificate's acmeIdentifier extension is not critical`);
  const expected = createHash('sha256').update(keyAuthorization, 'utf8').digest();
  if (!expected.equals(ext.digest)) {
    throw ValidationError.final(
      'incorrectResponse',
      `${what}: acmeIdentifier is ${Buffer.from(ext.digest).toString('hex')}, expected SHA-256 of the key authorization ${expected.toString('hex')}`,
    );
  }
}
