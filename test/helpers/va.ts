/**
 * Helpers of the validation-authority tests (test/component/va-*.test.ts): a ValidationConfig,
 * the challtestsrv management calls test/helpers/challtestsrv.ts does not wrap (AAAA,
 * CNAME, SERVFAIL, default addresses), local HTTP/TLS servers, a DNS server that never
 * answers, and an assertion for ValidationError. Everything listens on loopback only.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ValidationConfig } from '../../src/config/index.ts';
import { ValidationError, type ProblemType } from '../../src/va/index.ts';
import type { ChallTestSrv } from './challtestsrv.ts';
import { keyFile, openssl, tmpFile } from './openssl.ts';

export function vaConfig(overrides: Partial<ValidationConfig> = {}): ValidationConfig {
  return { http01Port: 80, tlsAlpn01Port: 443, allowLoopback: true, retryWindowSeconds: 60, attemptTimeoutSeconds: 3, ...overrides };
}

/** POSTs to a challtestsrv management endpoint (host names must be fully qualified). */
async function manage(srv: ChallTestSrv, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${srv.managementUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`challtestsrv ${path} ${JSON.stringify(body)}: HTTP ${res.status} ${text}`);
}

const fqdn = (host: string) => (host.endsWith('.') ? host : `${host}.`);

export const setAaaa = (srv: ChallTestSrv, host: string, ...ips: string[]) =>
  manage(srv, '/add-aaaa', { host: fqdn(host), addresses: ips });
export const setCname = (srv: ChallTestSrv, host: string, target: string) =>
  manage(srv, '/set-cname', { host: fqdn(host), target: fqdn(target) });
export const setServfail = (srv: ChallTestSrv, host: string) => manage(srv, '/set-servfail', { host: fqdn(host) });
/** '' = names without an A record have none (instead of challtestsrv's default 127.0.0.1). */
export const setDefaultIpv4 = (srv: ChallTestSrv, ip: string) => manage(srv, '/set-default-ipv4', { ip });

/** Asserts that `p` rejects with a ValidationError of that type/retryability (and message). */
export async function rejectsWith(
  p: Promise<unknown>,
  expected: { problemType: ProblemType; retryable: boolean; message?: string | RegExp },
): Promise<ValidationError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(
    caught instanceof ValidationError,
    `expected a ValidationError, got ${caught instanceof Error ? caught.stack : String(caught)}`,
  );
  const got = { problemType: caught.problemType, retryable: caught.retryable };
  assert.deepEqual(got, { problemType: expected.problemType, retryable: expected.retryable }, `for: ${caught.message}`);
  if (typeof expected.message === 'string') assert.equal(caught.message, expected.message);
  else if (expected.message) assert.match(caught.message, expected.message);
  return caught;
}

export interface TestHttpServer {
  port: number;
  /** Host headers and paths of the requests received, in order. */
  requests: Array<{ host?: string; path?: string }>;
  close(): Promise<void>;
}

/** An HTTP server on host (127.0.0.1) and a free port. */
export async function startHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  host = '127.0.0.1',
): Promise<TestHttpServer> {
  const requests: TestHttpServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ host: req.headers.host, path: req.url });
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A UDP "DNS server" on 127.0.0.1 that reads queries and never answers (timeouts). */
export async function startBlackholeDns(): Promise<{ address: string; close(): Promise<void> }> {
  const socket: UdpSocket = createSocket('udp4');
  socket.on('message', () => {});
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  return {
    address: `127.0.0.1:${socket.address().port}`,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/**
 * A self-signed certificate made by `openssl req -x509` (an implementation independent of
 * certflow's pki layer), with the SAN and extra -addext values given.
 * @param addext e.g. ["subjectAltName=DNS:example.test", "1.3.6.1.5.5.7.1.31=critical,DER:0420<hex>"]
 */
export function selfSignedCert(addext: string[]): { key: string; cert: string } {
  const out = tmpFile('cert.pem');
  const key = keyFile('ec:P-256');
  const args = ['req', '-x509', '-key', key, '-subj', '/CN=certflow va test', '-days', '1', '-out', out];
  for (const e of addext) args.push('-addext', e);
  const r = openssl(args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(out, 'utf8') };
}

/** The -addext value of an acmeIdentifier extension holding SHA-256(keyAuthorization). */
export function acmeIdentifierExt(keyAuthorization: string, critical = true): string {
  const hex = createHash('sha256').update(keyAuthorization).digest('hex');
  return `1.3.6.1.5.5.7.1.31=${critical ? 'critical,' : ''}DER:0420${hex}`;
}
