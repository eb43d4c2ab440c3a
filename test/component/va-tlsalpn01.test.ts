/**
 * tls-alpn-01 against local TLS servers on 127.0.0.1 presenting certificates made by
 * `openssl req -x509 -addext` (an independent encoder of the acmeIdentifier extension).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext, createServer, type TlsOptions, type Server } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { freePort } from '../../src/core/net.ts';
import { parseAcmeChallengeCertificate, pemDecodeAll } from '../../src/pki/index.ts';
import {
  createDnsClient,
  createVaContext,
  reverseDnsName,
  validateChallenge,
  validateTlsAlpn01,
  type DnsClient,
} from '../../src/va/index.ts';
import type { ValidationConfig } from '../../src/config/index.ts';
import { startChalltestsrv, type ChallTestSrv } from '../helpers/challtestsrv.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { acmeIdentifierExt, rejectsWith, selfSignedCert, setDefaultIpv4, vaConfig } from '../helpers/va.ts';

const KA = 'tok.dGh1bWJwcmludA';

interface TlsServer {
  port: number;
  /** SNI names the server saw. */
  serverNames: string[];
  close(): Promise<void>;
}

async function startTlsServer(opts: TlsOptions): Promise<TlsServer> {
  const serverNames: string[] = [];
  const context = createSecureContext(opts);
  const server: Server = createServer(
    {
      ...opts,
      // Called with the ClientHello: records the SNI even when the VA hangs up right after.
      SNICallback: (name, cb) => {
        serverNames.push(name);
        cb(null, context);
      },
    },
    (socket) => {
      socket.resume();
      socket.end();
    },
  );
  server.on('tlsClientError', () => {}); // handshakes the VA aborts on purpose
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as AddressInfo).port,
    serverNames,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('tls-alpn-01', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let srv: ChallTestSrv;
  let dns: DnsClient;
  const servers: TlsServer[] = [];
  /** A TLS server presenting a certificate with `addext`; alpn null: a server without ALPN. */
  const serve = async (addext: string[], alpn: string[] | null = ['acme-tls/1']) => {
    const s = await startTlsServer({ ...selfSignedCert(addext), ...(alpn ? { ALPNProtocols: alpn } : {}) });
    servers.push(s);
    return s;
  };
  const validate = (port: number, value = 'example.test', config: Partial<ValidationConfig> = {}) =>
    validateTlsAlpn01(createVaContext(vaConfig({ tlsAlpn01Port: port, dnsResolver: srv.resolver, ...config }), { dns }), {
      identifier: { type: /^[\d:]/.test(value) ? 'ip' : 'dns', value },
      keyAuthorization: KA,
    });

  before(async () => {
    srv = await startChalltestsrv();
    dns = createDnsClient({ server: srv.resolver, timeoutMs: 2000 });
    await setDefaultIpv4(srv, '');
    await srv.setA('example.test', '127.0.0.1');
  });
  after(async () => {
    for (const s of servers) await s.close();
    await srv?.stop();
  });

  it('accepts the right certificate, sending the domain as SNI', async () => {
    const s = await serve(['subjectAltName=DNS:example.test', acmeIdentifierExt(KA)]);
    assert.deepEqual(await validate(s.port), [
      { hostname: 'example.test', port: s.port, serverName: 'example.test', addressesResolved: ['127.0.0.1'], addressUsed: '127.0.0.1' },
    ]);
    assert.deepEqual(s.serverNames, ['example.test']);
  });

  it('pki: parses the acmeIdentifier and SANs of an openssl-made certificate', () => {
    const { cert } = selfSignedCert(['subjectAltName=DNS:example.test', acmeIdentifierExt(KA)]);
    const parsed = parseAcmeChallengeCertificate(pemDecodeAll(cert)[0].der);
    assert.deepEqual(parsed.sans.dns, ['example.test']);
    assert.equal(parsed.acmeIdentifier?.critical, true);
    assert.equal(Buffer.from(parsed.acmeIdentifier!.digest).toString('hex'), acmeIdentifierExt(KA).slice(-64));
  });

  it('validates an IP identifier: SNI is the reverse-mapping name, the SAN an iPAddress (RFC 8738 section 6)', async () => {
    assert.equal(reverseDnsName('127.0.0.1'), '1.0.0.127.in-addr.arpa');
    assert.equal(reverseDnsName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
    const s = await serve(['subjectAltName=IP:127.0.0.1', acmeIdentifierExt(KA)]);
    const [record] = await validate(s.port, '127.0.0.1');
    assert.equal(record.serverName, '1.0.0.127.in-addr.arpa');
    assert.deepEqual(s.serverNames, ['1.0.0.127.in-addr.arpa']);
  });

  it('refuses a wrong acmeIdentifier value, finally', async () => {
    const s = await serve(['subjectAltName=DNS:example.test', acmeIdentifierExt('other.key-authorization')]);
    await rejectsWith(validate(s.port), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: new RegExp(`^example.test:${s.port}: acmeIdentifier is [0-9a-f]{64}, expected SHA-256`),
    });
  });

  it('refuses a non-critical or missing acmeIdentifier', async () => {
    const nc = await serve(['subjectAltName=DNS:example.test', acmeIdentifierExt(KA, false)]);
    await rejectsWith(validate(nc.port), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: /acmeIdentifier extension is not critical/,
    });
    const none = await serve(['subjectAltName=DNS:example.test']);
    await rejectsWith(validate(none.port), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: /has no acmeIdentifier extension/,
    });
  });

  it('refuses an acmeIdentifier that is not an OCTET STRING of 32 bytes', async () => {
    const s = await serve(['subjectAltName=DNS:example.test', '1.3.6.1.5.5.7.1.31=critical,DER:0403010203']);
    await rejectsWith(validate(s.port), { problemType: 'incorrectResponse', retryable: false, message: /not an OCTET STRING of 32 bytes/ });
  });

  it('requires exactly one SAN, the identifier', async () => {
    const two = await serve(['subjectAltName=DNS:example.test,DNS:www.example.test', acmeIdentifierExt(KA)]);
    await rejectsWith(validate(two.port), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: `example.test:${two.port}: the certificate must have exactly one subjectAltName, DNS:example.test; it has DNS:example.test, DNS:www.example.test`,
    });
    const other = await serve(['subjectAltName=DNS:other.test', acmeIdentifierExt(KA)]);
    await rejectsWith(validate(other.port), { problemType: 'incorrectResponse', retryable: false, message: /it has DNS:other.test$/ });
    const ip = await serve(['subjectAltName=DNS:127.0.0.1', acmeIdentifierExt(KA)]);
    await rejectsWith(validate(ip.port, '127.0.0.1'), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: /exactly one subjectAltName, IP:127.0.0.1; it has DNS:127.0.0.1/,
    });
  });

  it('requires the acme-tls/1 protocol to be negotiated', async () => {
    const h2 = await serve(['subjectAltName=DNS:example.test', acmeIdentifierExt(KA)], ['h2', 'http/1.1']);
    // A server without a common protocol answers with a no_application_protocol alert.
    await rejectsWith(validate(h2.port), {
      problemType: 'tls',
      retryable: false,
      message: /TLS handshake failed: tlsv1 alert no application protocol/,
    });
    const noAlpn = await serve(['subjectAltName=DNS:example.test', acmeIdentifierExt(KA)], null);
    await rejectsWith(validate(noAlpn.port), {
      problemType: 'tls',
      retryable: false,
      message: `example.test:${noAlpn.port}: the server negotiated no protocol instead of ALPN "acme-tls/1"`,
    });
  });

  it('reports a refused connection as retryable; refuses loopback without allowLoopback', async () => {
    const closed = await freePort();
    await rejectsWith(validate(closed), {
      problemType: 'connection',
      retryable: true,
      message: `connection refused by 127.0.0.1:${closed}`,
    });
    await rejectsWith(validate(closed, 'example.test', { allowLoopback: false }), {
      problemType: 'rejectedIdentifier',
      retryable: false,
      message: /a loopback address/,
    });
  });

  it('validateChallenge: tls-alpn-01 cannot validate a wildcard', async () => {
    const ctx = createVaContext(vaConfig({ dnsResolver: srv.resolver }), { dns });
    await rejectsWith(
      validateChallenge(ctx, {
        type: 'tls-alpn-01',
        identifier: { type: 'dns', value: 'example.test' },
        wildcard: true,
        token: 'tok',
        keyAuthorization: KA,
      }),
      { problemType: 'malformed', retryable: false },
    );
  });
});
