/**
 * Shared by the ACME integration tests: a certflow instance whose validation authority
 * resolves names through pebble-challtestsrv and reaches challenge responders on loopback,
 * an http-01 responder (also serving a client's webroot), acme-client set up to trust
 * certflow's root, raw JWS requests (jose) for what acme-client cannot send, ARI certificate
 * ids, and the checks of what external clients saved (openssl verify, names, key type, OCSP,
 * CRL).
 */
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import type { Client, Order } from 'acme-client';
import { exportJWK, FlattenedSign, type JWK } from 'jose';
import * as pkijs from 'pkijs';
import { freePort } from '../../src/core/net.ts';
import { createInstance, runTool, type CliResult, type TestInstance } from './certflow.ts';
import { startChalltestsrv, type ChallTestSrv } from './challtestsrv.ts';

export type AcmeClient = Client;
export type AcmeOrder = Order;

// ---- the stack ---------------------------------------------------------------------------

export interface AcmeStack {
  cts: ChallTestSrv;
  cf: TestInstance;
  /** CERTFLOW_HTTP01_PORT: where certflow's VA sends http-01 requests. */
  http01Port: number;
  root: string;
  chain: string;
  rootPem: string;
  worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  server: Awaited<ReturnType<TestInstance['startServer']>>;
  /** https://localhost:<port>/acme/directory or /acme/<alias>/directory. */
  directoryUrl(alias?: string): string;
  stop(): Promise<void>;
}

/**
 * challtestsrv + a certflow instance (worker and server) whose VA uses it, with an optional
 * JSON configuration file. Call stop() in `after`.
 */
export async function startAcmeStack(opts: { config?: unknown; env?: NodeJS.ProcessEnv } = {}): Promise<AcmeStack> {
  const cts = await startChalltestsrv();
  let cf: TestInstance | undefined;
  let configFile: string | undefined;
  try {
    const http01Port = await freePort();
    const env: NodeJS.ProcessEnv = {
      CERTFLOW_HTTP01_PORT: String(http01Port),
      CERTFLOW_DNS_RESOLVER: cts.resolver,
      CERTFLOW_VALIDATION_ALLOW_LOOPBACK: '1',
      ...opts.env,
    };
    if (opts.config !== undefined) {
      configFile = join(process.env.TMPDIR ?? '/tmp', `certflow-acme-${process.pid}-${Date.now()}.json`);
      await writeFile(configFile, JSON.stringify(opts.config));
      env.CERTFLOW_CONFIG = configFile;
    }
    cf = await createInstance(env);
    const worker = await cf.startWorker();
    const server = await cf.startServer();
    const root = join(cf.home, 'ca', 'root.pem');
    const chain = join(cf.home, 'ca', 'chain.pem');
    const rootPem = readFileSync(root, 'utf8');
    trustRoot(rootPem);
    const instance = cf;
    return {
      cts,
      cf: instance,
      http01Port,
      root,
      chain,
      rootPem,
      worker,
      server,
      directoryUrl: (alias?: string) => `https://localhost:${instance.httpsPort}/acme${alias ? `/${alias}` : ''}/directory`,
      async stop() {
        await instance.cleanup().catch(() => {});
        await cts.stop();
        if (configFile) await rm(configFile, { force: true });
      },
    };
  } catch (e) {
    await cf?.cleanup().catch(() => {});
    await cts.stop();
    if (configFile) await rm(configFile, { force: true });
    throw e;
  }
}

/** Environment for external ACME clients: certflow's root trusted, no proxy for loopback. */
export function clientEnv(stack: AcmeStack, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NO_PROXY: 'localhost,127.0.0.1,::1',
    no_proxy: 'localhost,127.0.0.1,::1',
    ...extra,
  };
}

// ---- acme-client -------------------------------------------------------------------------

let trustedRoot: string | undefined;

/**
 * Makes acme-client (its axios instance) trust certflow's root; short retry delays. Its
 * connections are kept alive, as certbot's and lego's are: a TLS handshake per request cost
 * the test process and the server ~8 s of CPU in the 200-order readiness test alone.
 */
export function trustRoot(rootPem: string): void {
  trustedRoot = rootPem;
  acme.axios.defaults.httpsAgent = new Agent({ ca: rootPem, keepAlive: true });
  acme.axios.defaults.proxy = false;
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryDefaultDelay: number; retryMaxAttempts: number } })
    .acmeSettings;
  settings.retryDefaultDelay = 1;
  settings.retryMaxAttempts = 5;
}

/** A new account (EC P-256 key) on the directory; returns the client and the account object. */
export async function newAccount(
  directoryUrl: string,
  opts: { eab?: { kid: string; hmacKey: string }; email?: string } = {},
): Promise<{ client: AcmeClient; accountKey: Buffer; account: Record<string, unknown> }> {
  const accountKey = await acme.crypto.createPrivateEcdsaKey();
  const client = new acme.Client({
    directoryUrl,
    accountKey,
    externalAccountBinding: opts.eab,
    backoffAttempts: 60,
    backoffMin: 200,
    backoffMax: 1000,
  });
  const account = (await client.createAccount({
    termsOfServiceAgreed: true,
    contact: [`mailto:${opts.email ?? 'test@example.test'}`],
  })) as unknown as Record<string, unknown>;
  return { client, accountKey, account };
}

/** acme-client's internals used for requests it has no method for (stable since 4.x). */
interface AcmeInternals {
  api: {
    apiRequest(url: string, payload: unknown, validStatusCodes?: number[]): Promise<RawResponse>;
    apiResourceRequest(resource: string, payload: unknown, validStatusCodes?: number[]): Promise<RawResponse>;
  };
  http: { getDirectory(): Promise<Record<string, unknown>>; getNonce(): Promise<string> };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const internals = (client: AcmeClient) => client as unknown as AcmeInternals;

/** A kid-signed POST (payload null = POST-as-GET) through acme-client; any status is returned. */
export function signedPost(client: AcmeClient, url: string, payload: unknown): Promise<RawResponse> {
  return internals(client).api.apiRequest(url, payload);
}

export function directory(client: AcmeClient): Promise<Record<string, unknown>> {
  return internals(client).http.getDirectory();
}

// ---- http-01 responder -------------------------------------------------------------------

export interface Http01Responder {
  port: number;
  /** Serves `body` at /.well-known/acme-challenge/<token>. */
  set(token: string, body: string): void;
  delete(token: string): void;
  /** Answers requests for `token` only after `ms` (a slow web server: validation takes that long). */
  delay(token: string, ms: number): void;
  /** Paths requested so far, with their Host headers. */
  requests: Array<{ path: string; host: string | undefined }>;
  close(): Promise<void>;
}

/**
 * An http-01 responder on 127.0.0.1:`port`. With `webroot`, it also serves the files a client
 * writes into that directory (a client's webroot, the directory a web server would map to
 * /.well-known/acme-challenge/). Proxy-form request targets (`GET http://name/...`, from a
 * client's self-check sent through http_proxy) are answered like origin-form ones.
 */
export async function startHttp01Responder(port: number, opts: { webroot?: string } = {}): Promise<Http01Responder> {
  const tokens = new Map<string, string>();
  const delays = new Map<string, number>();
  const requests: Http01Responder['requests'] = [];
  const server: Server = createServer(async (req, res) => {
    const path = new URL(req.url ?? '', 'http://origin-form').pathname;
    requests.push({ path, host: req.headers.host });
    const m = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(path);
    if (m && delays.has(m[1]!)) await sleep(delays.get(m[1]!)!);
    let body = m ? tokens.get(m[1]!) : undefined;
    if (m && body === undefined && opts.webroot) body = await readFile(join(opts.webroot, m[1]!), 'utf8').catch(() => undefined);
    if (body === undefined) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    set: (token, body) => void tokens.set(token, body),
    delete: (token) => void tokens.delete(token),
    delay: (token, ms) => void delays.set(token, ms),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---- orders ------------------------------------------------------------------------------

export interface Issued {
  order: AcmeOrder;
  /** The PEM chain as downloaded (leaf first). */
  chainPem: string;
  leafPem: string;
  key: Buffer;
  cert: X509Certificate;
}

/**
 * acme-client's waitForValidStatus, keeping the item's URL (acme-client returns the bare
 * resource, without the `url` its other methods need).
 */
export async function waitValid<T extends { url: string }>(client: AcmeClient, item: T): Promise<T> {
  const r = await client.waitForValidStatus(item);
  return { ...item, ...(r as object), url: item.url };
}

/** Answers every pending authorization of `order` with http-01 and waits until each is valid. */
export async function authorizeHttp01(client: AcmeClient, order: AcmeOrder, responder: Http01Responder): Promise<void> {
  const authzs = await client.getAuthorizations(order);
  await Promise.all(
    authzs.map(async (authz) => {
      if (authz.status === 'valid') return;
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      if (!challenge) throw new Error(`authorization ${authz.url} offers no http-01: ${JSON.stringify(authz.challenges)}`);
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      responder.set(challenge.token, keyAuthorization);
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(authz);
    }),
  );
}

/** A CSR (EC P-256 key) for `names`, the first one as CN. */
export async function csrFor(names: string[]): Promise<{ key: Buffer; csr: Buffer }> {
  const [key, csr] = await acme.crypto.createCsr({ commonName: names[0], altNames: names }, await acme.crypto.createPrivateEcdsaKey());
  return { key, csr };
}

/** Finalizes a ready order with a fresh key and downloads the certificate. */
export async function finalizeAndDownload(client: AcmeClient, order: AcmeOrder, names: string[]): Promise<Issued> {
  const { key, csr } = await csrFor(names);
  const finalized = await client.finalizeOrder(order, csr);
  const valid = await waitValid(client, finalized);
  const chainPem = await client.getCertificate(valid);
  const leafPem = acme.crypto.splitPemChain(chainPem)[0]!;
  return { order: valid, chainPem, leafPem, key, cert: new X509Certificate(leafPem) };
}

/** new-order -> http-01 -> finalize -> certificate, for dns `names`. */
export async function issueHttp01(
  client: AcmeClient,
  responder: Http01Responder,
  names: string[],
  extra: Record<string, unknown> = {},
): Promise<Issued> {
  const order = await client.createOrder({ identifiers: names.map((value) => ({ type: 'dns', value })), ...extra } as Parameters<
    Client['createOrder']
  >[0]);
  await authorizeHttp01(client, order, responder);
  const ready = await waitValid(client, order);
  return finalizeAndDownload(client, ready, names);
}

/** An order that `driveOrder` saw through to its certificate. */
export interface DrivenOrder {
  name: string;
  order: AcmeOrder;
  certPem: string;
  /** Errors the client rode out (connection refused/reset, 503 during restarts, ...). */
  retried: string[];
}

/**
 * One client's http-01 order for `name`, driven the way a robust client does it: it re-reads
 * the order and does whatever its state asks for, and any failed request (a server or
 * worker killed, a 503 during a restart) is retried on the next round. Only an invalid
 * order or the deadline end it; the error then carries `orderUrl` for a diagnosis.
 */
export async function driveOrder(client: AcmeClient, responder: Http01Responder, name: string, deadline: number): Promise<DrivenOrder> {
  const started = Date.now();
  const retried: string[] = [];
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      retried.push(`${what}: ${(e as Error).message}`);
      return undefined;
    }
  };
  let order: AcmeOrder | undefined;
  let csr: Buffer | undefined;
  const answered = new Set<string>();
  while (Date.now() < deadline) {
    if (!order) {
      order = await attempt('new-order', () => client.createOrder({ identifiers: [{ type: 'dns', value: name }] }));
      if (!order) {
        await sleep(500);
        continue;
      }
    }
    const current = await attempt('get order', () => client.getOrder(order!));
    if (!current) {
      await sleep(500);
      continue;
    }
    order = current;
    switch (order.status) {
      case 'pending': {
        const authzs = (await attempt('get authorizations', () => client.getAuthorizations(order!))) ?? [];
        for (const authz of authzs) {
          if (authz.status === 'invalid')
            throw Object.assign(new Error(`${name}: authorization invalid: ${JSON.stringify(authz)}`), { orderUrl: order.url });
          if (authz.status !== 'pending') continue;
          const challenge = authz.challenges.find((c) => c.type === 'http-01');
          if (!challenge) throw new Error(`${name}: no http-01 challenge: ${JSON.stringify(authz)}`);
          responder.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
          // Answer until the server shows the challenge is being (or was) validated.
          if (challenge.status === 'pending' || !answered.has(challenge.url)) {
            const r = await attempt('respond to challenge', () => client.completeChallenge(challenge));
            if (r) answered.add(challenge.url);
          }
        }
        await sleep(700);
        break;
      }
      case 'ready': {
        csr ??= (await csrFor([name])).csr;
        // An error here may mean the finalize arrived before a crash: the next read tells.
        await attempt('finalize', () => client.finalizeOrder(order!, csr!));
        break;
      }
      case 'processing':
        await sleep(700);
        break;
      case 'valid': {
        const certPem = await attempt('download certificate', () => client.getCertificate(order!));
        if (certPem) return { name, order, certPem, retried };
        await sleep(500);
        break;
      }
      default:
        throw Object.assign(new Error(`${name}: order ${order.status}: ${JSON.stringify(order)}`), { orderUrl: order.url });
    }
  }
  throw Object.assign(
    new Error(
      `${name}: not valid after ${Math.round((Date.now() - started) / 1000)} s (order ${order?.url} ${order?.status}); last errors: ${retried.slice(-5).join(' | ')}`,
    ),
    { orderUrl: order?.url },
  );
}

// ---- certificates ------------------------------------------------------------------------

/** RFC 9773 certificate id: base64url(AKI keyIdentifier) "." base64url(serial's DER content). */
export function ariCertId(certPem: string): string {
  const x = new X509Certificate(certPem);
  const cert = pkijs.Certificate.fromBER(x.raw);
  const aki = cert.extensions?.find((e) => e.extnID === '2.5.29.35');
  if (!aki) throw new Error('the certificate has no authority key identifier');
  const parsed = aki.parsedValue as pkijs.AuthorityKeyIdentifier;
  const keyId = parsed.keyIdentifier?.valueBlock.valueHexView;
  if (!keyId) throw new Error('the authority key identifier has no keyIdentifier');
  const serial = Buffer.from(cert.serialNumber.valueBlock.valueHexView);
  return `${Buffer.from(keyId).toString('base64url')}.${serial.toString('base64url')}`;
}

/** Lower-case hex serial as certflow stores it (certificates.serial). */
export function serialHex(certPem: string): string {
  const cert = pkijs.Certificate.fromBER(new X509Certificate(certPem).raw);
  return Buffer.from(cert.serialNumber.valueBlock.valueHexView)
    .toString('hex')
    .replace(/^(00)+(?=.)/, '')
    .toLowerCase();
}

// ---- raw HTTPS and JWS -------------------------------------------------------------------

/** An HTTPS request to certflow trusting its root; the body is parsed as JSON when it is JSON. */
export function fetchAcme(
  url: string,
  opts: { method?: string; body?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse & { text: string }> {
  if (!trustedRoot) throw new Error('trustRoot() first');
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: opts.method ?? 'GET', ca: trustedRoot, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let data: unknown = text;
        if (/json/.test(String(res.headers['content-type'] ?? ''))) {
          try {
            data = JSON.parse(text);
          } catch {
            /* keep text */
          }
        }
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
        resolve({ status: res.statusCode ?? 0, headers, data, text });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

export async function freshNonce(newNonceUrl: string): Promise<string> {
  const r = await fetchAcme(newNonceUrl, { method: 'HEAD' });
  const nonce = r.headers['replay-nonce'];
  if (!nonce) throw new Error(`no Replay-Nonce from ${newNonceUrl} (HTTP ${r.status})`);
  return nonce;
}

function jwsAlg(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ec') {
    const crv = key.asymmetricKeyDetails?.namedCurve;
    return crv === 'secp384r1' ? 'ES384' : crv === 'secp521r1' ? 'ES512' : 'ES256';
  }
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  return 'RS256';
}

/**
 * A JWS-signed POST built by hand: `jwk` mode puts the public key in the header (new-account,
 * revocation by certificate key), `kid` mode an account URL.
 */
export async function jwsPost(
  dir: { newNonce: string },
  url: string,
  payload: unknown,
  keyPem: string | Buffer,
  mode: { kid: string } | 'jwk',
): Promise<RawResponse & { text: string }> {
  const key = createPrivateKey(keyPem);
  const alg = jwsAlg(key);
  for (let attempt = 0; ; attempt++) {
    const nonce = await freshNonce(dir.newNonce);
    const header: Record<string, unknown> = { alg, nonce, url };
    if (mode === 'jwk') header.jwk = (await exportJWK(createPublicKey(key))) as JWK;
    else header.kid = mode.kid;
    const body = payload === null ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
    const jws = await new FlattenedSign(body).setProtectedHeader(header as never).sign(key);
    const r = await fetchAcme(url, { method: 'POST', body: JSON.stringify(jws), headers: { 'Content-Type': 'application/jose+json' } });
    if (r.status === 400 && r.data?.type === 'urn:ietf:params:acme:error:badNonce' && attempt < 3) continue;
    return r;
  }
}

// ---- EAB ---------------------------------------------------------------------------------

/** Key id and base64url HMAC key from `certflow eab create --json` ({kid, hmacKey, alias, createdAt}). */
export function parseEab(stdout: string): { kid: string; hmacKey: string } {
  const { kid, hmacKey } = JSON.parse(stdout) as { kid?: unknown; hmacKey?: unknown };
  if (typeof kid !== 'string' || typeof hmacKey !== 'string') throw new Error(`no kid and hmacKey in: ${stdout}`);
  return { kid, hmacKey };
}

// ---- misc --------------------------------------------------------------------------------

/** Polls `fn` until it returns a value that is not undefined, or throws after `ms`. */
export async function eventually<T>(what: string, ms: number, fn: () => Promise<T | undefined>, everyMs = 250): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${ms / 1000} s${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export const ACME_ERROR = (type: string) => `urn:ietf:params:acme:error:${type}`;

/** A rate-limit refusal: 429 rateLimited whose detail matches `pattern`, with a Retry-After. */
export function assertRateLimited(r: RawResponse, pattern: RegExp): void {
  assert.equal(r.status, 429, JSON.stringify(r.data));
  assert.equal(r.data.type, ACME_ERROR('rateLimited'));
  assert.match(r.data.detail, pattern);
  assert.ok(Number(r.headers['retry-after']) > 0, JSON.stringify(r.headers));
}

// ---- certificates external clients saved -------------------------------------------------

/**
 * Checks a certificate an external client saved, given as the PEM chain it wrote (leaf
 * first, then intermediates): `openssl verify` against the stack's root, SANs exactly
 * `names` as DNS names, the key type, and certflow's database row (an ACME certificate,
 * still valid). Writes leaf.pem and intermediates.pem into `dir` for later openssl calls.
 */
export async function checkIssued(
  stack: AcmeStack,
  chainPem: string,
  opts: { names: string[]; keyType: 'rsa' | 'ec'; dir: string },
): Promise<{ cert: X509Certificate; leafFile: string; issuerFile: string; serial: string }> {
  const [leaf, ...rest] = acme.crypto.splitPemChain(chainPem);
  assert.ok(leaf && rest.length, `not a certificate followed by its intermediates:\n${chainPem}`);
  const leafFile = join(opts.dir, 'leaf.pem');
  const issuerFile = join(opts.dir, 'intermediates.pem');
  await writeFile(leafFile, leaf);
  await writeFile(issuerFile, rest.join('\n'));
  const verified = await runTool('openssl', ['verify', '-CAfile', stack.root, '-untrusted', issuerFile, leafFile]);
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  const cert = new X509Certificate(leaf);
  const sans = (cert.subjectAltName ?? '').split(/,\s*/).sort();
  assert.deepEqual(sans, opts.names.map((n) => `DNS:${n}`).sort(), `SANs of ${cert.subject}`);
  assert.equal(cert.publicKey.asymmetricKeyType, opts.keyType);
  const serial = serialHex(leaf);
  const { rows } = await stack.cf.pool.query('SELECT protocol, status FROM certificates WHERE serial = $1', [serial]);
  assert.deepEqual(rows, [{ protocol: 'acme', status: 'valid' }]);
  return { cert, leafFile, issuerFile, serial };
}

/**
 * certflow's OCSP answer for `certFile` (issued by the first certificate of `issuerFile`),
 * asked with `openssl ocsp` and verified against the stack's root: the certificate's status
 * ("good", "revoked", ...) and openssl's output.
 */
export async function ocspStatus(stack: AcmeStack, certFile: string, issuerFile: string): Promise<{ status: string; text: string }> {
  const url = `http://127.0.0.1:${stack.cf.httpPort}/ocsp`;
  const o = await runTool('openssl', ['ocsp', '-issuer', issuerFile, '-cert', certFile, '-url', url, '-CAfile', stack.root, '-no_nonce']);
  const text = o.stdout + o.stderr;
  assert.match(text, /Response verify OK/, text);
  const status = /^\S+: (\w+)$/m.exec(o.stdout)?.[1];
  assert.ok(status, text);
  return { status, text };
}

/** Waits until certflow's OCSP responder says `certFile` is revoked; returns openssl's output. */
export function ocspRevoked(stack: AcmeStack, certFile: string, issuerFile: string, ms = 15_000): Promise<string> {
  return eventually('OCSP says revoked', ms, async () => {
    const { status, text } = await ocspStatus(stack, certFile, issuerFile);
    return status === 'revoked' ? text : undefined;
  });
}

/**
 * `openssl verify -crl_check` of `certFile` (chain to the stack's root) with the CRL
 * downloaded from the certificate's own CRL distribution point, whose signature openssl
 * checks too: its exit code and output ("certificate revoked" once a CRL lists it).
 */
export async function crlVerify(stack: AcmeStack, certFile: string, issuerFile: string, dir: string): Promise<CliResult> {
  const ext = await runTool('openssl', ['x509', '-in', certFile, '-noout', '-ext', 'crlDistributionPoints']);
  const url = /URI:(http:\S+)/.exec(ext.stdout)?.[1];
  assert.ok(url, `no CRL distribution point: ${ext.stdout}${ext.stderr}`);
  const res = await fetch(url.replace('//localhost:', '//127.0.0.1:'));
  assert.equal(res.status, 200, `${url}: HTTP ${res.status}`);
  const crlFile = join(dir, 'crl.der');
  await writeFile(crlFile, Buffer.from(await res.arrayBuffer()));
  const crlPem = join(dir, 'crl.pem');
  const converted = await runTool('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-out', crlPem]);
  assert.equal(converted.code, 0, converted.stderr);
  return runTool('openssl', ['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', stack.root, '-untrusted', issuerFile, certFile]);
}
