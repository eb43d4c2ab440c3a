/**
 * A seeded fuzzer for certflow's front ends (issue 11, item 9). From valid requests it makes
 * mutated ones — JWS bodies and protected headers (raw bytes, header fields, payloads
 * signed with a real account key and a fresh nonce so they pass the signature check), CSRs
 * (DER mutations inside valid base64), EST bodies and headers — sends them to a running
 * server and checks every answer: never a 5xx, never a dropped connection, every error in
 * the protocol's own format (ACME: an RFC 7807 problem document with an ACME type and the
 * HTTP status; EST: text/plain). The same seed makes the same requests.
 *
 * Used by test/integration/fuzz.test.ts (npm test, >= 1,000 cases per front end) and by
 * `npm run fuzz -- --cases 20000 [--seed n]` (test/fuzz/run.ts) for long runs.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { Agent, request } from 'node:https';
import { FlattenedSign, type JWK } from 'jose';
import { buildCsr, emptySans } from '../../src/pki/index.ts';
import { rng, type Rng } from '../helpers/rng.ts';

export interface FuzzTarget {
  /** https://localhost:<port> */
  httpsBase: string;
  rootPem: string;
  /** A registered EST client. */
  estUser: string;
  estPassword: string;
}

export interface FuzzOptions {
  seed: number;
  /** Cases per front end (ACME, EST). */
  cases: number;
  concurrency?: number;
  /** Called every 500 cases. */
  progress?: (done: number, total: number) => void;
}

export interface FuzzFailure {
  frontEnd: 'acme' | 'est';
  what: string;
  status: number | string;
  why: string;
  body: string;
}

export interface FuzzReport {
  seed: number;
  cases: { acme: number; est: number };
  statuses: Record<string, number>;
  failures: FuzzFailure[];
}

// ---- randomness ---------------------------------------------------------------------------

const INTERESTING_BYTES = [
  0x00, 0x01, 0x7f, 0x80, 0x81, 0xff, 0x30, 0x02, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x17, 0x18, 0x82, 0x84, 0xa0, 0xa3,
];

/** Byte-level mutations (AFL style) of `input`: flips, interesting bytes, inserts, deletes, splices, length fields. */
function mutateBytes(r: Rng, input: Buffer): Buffer {
  let b = Buffer.from(input);
  const rounds = 1 + r.int(4);
  for (let i = 0; i < rounds; i++) {
    const at = b.length ? r.int(b.length) : 0;
    switch (r.int(9)) {
      case 0:
        if (b.length) b[at] = b[at]! ^ (1 << r.int(8));
        break;
      case 1:
        if (b.length) b[at] = r.pick(INTERESTING_BYTES);
        break;
      case 2:
        b = Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(8)), b.subarray(at)]);
        break;
      case 3:
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(16)))]);
        break;
      case 4:
        b = b.subarray(0, at);
        break;
      case 5: {
        const from = r.int(Math.max(1, b.length));
        b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + 1 + r.int(32)), b.subarray(at)]);
        break;
      }
      case 6:
        // An ASN.1 length made long or indefinite.
        if (b.length) b[at] = r.pick([0x80, 0x81, 0x82, 0x84, 0x89, 0xff]);
        break;
      case 7:
        b = Buffer.concat([b, b.subarray(0, r.int(b.length + 1))]);
        break;
      default:
        if (b.length) b[at] = (b[at]! + r.pick([1, -1, 16, -16, 128])) & 0xff;
    }
  }
  return b;
}

const WEIRD_STRINGS = [
  '',
  ' ',
  'null',
  '0',
  '-1',
  '1e309',
  'NaN',
  '\u0000',
  '\ud800',
  'é',
  '💥',
  'a'.repeat(5000),
  '../../etc/passwd',
  '%00',
  'https://',
  'dns',
  '*.',
  '*',
  '.',
  'xn--',
  '127.0.0.1',
  '::1',
  'mailto:',
  'urn:x',
];

/** A random JSON value, biased towards what parsers trip over. */
function weirdJson(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 2 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return r.pick([true, false]);
    case 2:
      return r.pick([0, -1, 1.5, 2 ** 53 + 1, -0, 1e308]);
    case 3:
    case 4:
      return r.pick(WEIRD_STRINGS);
    case 5:
      return r.bytes(r.int(40)).toString('base64url');
    case 6:
      return Array.from({ length: r.int(4) }, () => weirdJson(r, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [
          r.pick(['type', 'value', 'identifiers', 'contact', 'csr', 'x', '__proto__', 'constructor', '']),
          weirdJson(r, depth + 1),
        ]),
      );
  }
}

/** A JSON object with some members replaced, removed or added. */
function mutateObject(r: Rng, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  const keys = Object.keys(out);
  for (let i = 0, n = 1 + r.int(3); i < n; i++) {
    const k = keys.length && r.next() < 0.7 ? r.pick(keys) : r.pick(['extra', 'crit', 'b64', 'jwk', 'kid', 'x5c', '__proto__']);
    if (r.next() < 0.25) delete out[k];
    else out[k] = weirdJson(r);
  }
  return out;
}

// ---- HTTP ---------------------------------------------------------------------------------

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function send(
  target: FuzzTarget,
  agent: Agent,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // Content-Length always: Node sends a DELETE body unframed otherwise (an HTTP-level
    // mistake that the HTTP parser answers, not certflow).
    const framed = body ? { ...headers, 'Content-Length': String(body.length) } : headers;
    const req = request(`${target.httpsBase}${path}`, { method, headers: framed, agent, ca: target.rootPem, timeout: 60_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
    req.end(body);
  });
}

// ---- ACME ---------------------------------------------------------------------------------

interface AcmeSetup {
  dir: Record<string, string>;
  key: KeyObject;
  jwk: JWK;
  kid: string;
}

async function nonce(target: FuzzTarget, agent: Agent, dir: Record<string, string>): Promise<string> {
  const a = await send(target, agent, 'HEAD', new URL(dir.newNonce!).pathname, {});
  return String(a.headers['replay-nonce'] ?? 'no-nonce');
}

async function signed(header: Record<string, unknown>, payload: unknown, key: KeyObject): Promise<Buffer> {
  const bytes = payload === undefined ? new Uint8Array() : new TextEncoder().encode(JSON.stringify(payload));
  const jws = await new FlattenedSign(bytes).setProtectedHeader(header as never).sign(key);
  return Buffer.from(JSON.stringify(jws));
}

async function acmeSetup(target: FuzzTarget, agent: Agent): Promise<AcmeSetup> {
  const dirAnswer = await send(target, agent, 'GET', '/acme/directory', {});
  const dir = JSON.parse(dirAnswer.body.toString()) as Record<string, string>;
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const jwk = createPublicKey(key).export({ format: 'jwk' }) as JWK;
  const body = await signed(
    { alg: 'ES256', jwk, nonce: await nonce(target, agent, dir), url: dir.newAccount },
    { termsOfServiceAgreed: true, contact: ['mailto:fuzz@example.test'] },
    key,
  );
  const a = await send(target, agent, 'POST', new URL(dir.newAccount!).pathname, { 'Content-Type': 'application/jose+json' }, body);
  const kid = String(a.headers.location ?? '');
  if (a.status !== 201 || !kid) throw new Error(`fuzz: cannot create an ACME account: ${a.status} ${a.body}`);
  return { dir, key, jwk, kid };
}

/** One mutated ACME request. */
async function acmeCase(r: Rng, target: FuzzTarget, agent: Agent, s: AcmeSetup): Promise<{ what: string; answer: Answer }> {
  const urls = [
    s.dir.newAccount!,
    s.dir.newOrder!,
    s.kid,
    s.dir.revokeCert!,
    s.dir.keyChange!,
    `${s.kid.replace(/acct\/.*/, 'order/')}${r.bytes(6).toString('hex')}`,
  ];
  const url = r.pick(urls);
  const path = new URL(url).pathname;
  const ct = { 'Content-Type': 'application/jose+json' };
  const header = { alg: 'ES256', kid: s.kid, nonce: await nonce(target, agent, s.dir), url };
  const payloads: unknown[] = [
    undefined,
    {},
    { identifiers: [{ type: 'dns', value: `${r.bytes(4).toString('hex')}.fuzz.test` }] },
    { contact: ['mailto:a@example.test'] },
    { csr: r.bytes(40).toString('base64url') },
    { certificate: r.bytes(60).toString('base64url'), reason: 1 },
  ];
  switch (r.int(5)) {
    case 0: {
      // Raw bytes of a valid JWS, mutated.
      const body = mutateBytes(r, await signed(header, r.pick(payloads), s.key));
      return { what: `raw JWS bytes to ${path}`, answer: await send(target, agent, 'POST', path, ct, body) };
    }
    case 1: {
      // Protected header fields mutated, then signed with the account key.
      const h = mutateObject(r, header);
      const alg = r.next() < 0.5 ? 'ES256' : r.pick(['none', 'HS256', 'RS1', 'ES999', '', 'es256']);
      const protectedB64 = Buffer.from(JSON.stringify({ ...h, alg: r.next() < 0.8 ? alg : weirdJson(r) })).toString('base64url');
      const payloadB64 = Buffer.from(JSON.stringify(r.pick(payloads) ?? '')).toString('base64url');
      const sig = await signed({ alg: 'ES256' }, {}, s.key); // a signature of something else
      const body = Buffer.from(
        JSON.stringify({ protected: protectedB64, payload: payloadB64, signature: JSON.parse(sig.toString()).signature }),
      );
      return {
        what: `header ${Buffer.from(protectedB64, 'base64url').toString().slice(0, 120)} to ${path}`,
        answer: await send(target, agent, 'POST', path, ct, body),
      };
    }
    case 2: {
      // A well-signed request with a fresh nonce and a mutated payload: reaches the handlers.
      const base = r.pick(payloads.filter((p) => p !== undefined)) as Record<string, unknown>;
      const payload = r.next() < 0.8 ? mutateObject(r, base) : weirdJson(r);
      const target2 = url === s.dir.newOrder ? s.kid : url; // no order workflows from the fuzzer
      const body = await signed({ ...header, url: target2 }, payload, s.key);
      return {
        what: `payload ${JSON.stringify(payload).slice(0, 120)} to ${new URL(target2).pathname}`,
        answer: await send(target, agent, 'POST', new URL(target2).pathname, ct, body),
      };
    }
    case 3: {
      // The JWS members themselves.
      const valid = JSON.parse((await signed(header, {}, s.key)).toString()) as Record<string, unknown>;
      const body = Buffer.from(JSON.stringify(r.next() < 0.8 ? mutateObject(r, valid) : weirdJson(r)));
      return { what: `JWS members to ${path}`, answer: await send(target, agent, 'POST', path, ct, body) };
    }
    default: {
      // HTTP level: content types, methods, empty and odd bodies.
      const method = r.pick(['POST', 'GET', 'PUT', 'DELETE', 'HEAD', 'PATCH']);
      const type = r.pick([
        'application/jose+json',
        'application/json',
        'text/plain',
        '',
        'application/jose+json; charset=utf-8',
        'multipart/form-data; boundary=x',
      ]);
      const body =
        method === 'GET' || method === 'HEAD'
          ? undefined
          : r.next() < 0.5
            ? r.bytes(r.int(300))
            : Buffer.from(JSON.stringify(weirdJson(r)));
      const p =
        r.next() < 0.8 ? path : `/acme/${r.pick(['', 'x', 'acct/', 'authz/', 'chall/a/b', 'cert/zz', '%00', '..%2f', 'directory/x'])}`;
      return { what: `${method} ${p} (${type})`, answer: await send(target, agent, method, p, type ? { 'Content-Type': type } : {}, body) };
    }
  }
}

function checkAcme(a: Answer, method = 'POST'): string | undefined {
  if (a.status >= 500) return `a ${a.status}`;
  if (a.status < 400 || method === 'HEAD') return undefined;
  if (!String(a.headers['content-type']).startsWith('application/problem+json'))
    return `error without a problem document (${a.headers['content-type']})`;
  let doc: { type?: unknown; status?: unknown; detail?: unknown };
  try {
    doc = JSON.parse(a.body.toString());
  } catch {
    return 'a problem document that is not JSON';
  }
  if (typeof doc.type !== 'string' || !doc.type.startsWith('urn:ietf:params:acme:error:')) return `problem type ${String(doc.type)}`;
  if (doc.status !== a.status) return `problem status ${String(doc.status)} on an HTTP ${a.status}`;
  if (typeof doc.detail !== 'string') return 'problem without a detail';
  return undefined;
}

// ---- EST ----------------------------------------------------------------------------------

function estSetup(): { csrs: Buffer[] } {
  const csrs = ['ec', 'rsa', 'ed25519'].map((type) => {
    const key =
      type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
        : type === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
          : generateKeyPairSync('ed25519').privateKey;
    const sans = emptySans();
    sans.dns.push('fuzz-device.example.test');
    return Buffer.from(buildCsr({ subject: 'CN=fuzz-device,O=fuzz', sans, privateKey: key }));
  });
  return { csrs };
}

function lineBreaks(r: Rng, b64: string): string {
  const width = r.pick([64, 76, 1, 3, 1000]);
  const eol = r.pick(['\n', '\r\n', '\r', ' ', '\t']);
  return b64.replace(new RegExp(`.{1,${width}}`, 'g'), `$&${eol}`);
}

async function estCase(
  r: Rng,
  target: FuzzTarget,
  agent: Agent,
  setup: { csrs: Buffer[] },
): Promise<{ what: string; answer: Answer; method: string }> {
  const auth = `Basic ${Buffer.from(`${target.estUser}:${target.estPassword}`).toString('base64')}`;
  const headers: Record<string, string> = { 'Content-Type': 'application/pkcs10', Authorization: auth };
  const csr = r.pick(setup.csrs);
  const op = r.pick(['simpleenroll', 'simpleenroll', 'simpleenroll', 'serverkeygen', 'simplereenroll']);
  let path = `/.well-known/est/${op}`;
  let method = 'POST';
  let body: Buffer;
  let what: string;
  switch (r.int(4)) {
    case 0: {
      // CSR DER mutated inside valid base64.
      const der = mutateBytes(r, csr);
      body = Buffer.from(lineBreaks(r, der.toString('base64')));
      what = `CSR DER ${createHash('sha256').update(der).digest('hex').slice(0, 12)} to ${op}`;
      break;
    }
    case 1: {
      // The base64 text mutated.
      body = mutateBytes(
        r,
        Buffer.from(
          r.next() < 0.3
            ? `-----BEGIN CERTIFICATE REQUEST-----\n${lineBreaks(r, csr.toString('base64'))}-----END CERTIFICATE REQUEST-----\n`
            : lineBreaks(r, csr.toString('base64')),
        ),
      );
      what = `base64 body to ${op}`;
      break;
    }
    case 2: {
      // Headers.
      body = Buffer.from(lineBreaks(r, csr.toString('base64')));
      const h = r.pick(['Content-Type', 'Authorization', 'Content-Transfer-Encoding', 'Accept', 'Content-Encoding']);
      const values = {
        'Content-Type': [
          'text/plain',
          'application/pkcs10; charset=x',
          'application/pkcs7-mime',
          '',
          'application/pkcs10, text/plain',
          'a'.repeat(3000),
        ],
        Authorization: [
          'Basic',
          'Basic ',
          'Basic !!!!',
          `Basic ${Buffer.from('no-colon').toString('base64')}`,
          'Bearer abc',
          'Digest x',
          `Basic ${Buffer.from('\u0000:\u0000').toString('base64')}`,
          `basic ${Buffer.from(`${target.estUser}:${target.estPassword}`).toString('base64')}=`,
          `Basic ${r.bytes(600).toString('base64')}`,
        ],
        'Content-Transfer-Encoding': ['base64', 'binary', '7bit', 'quoted-printable', ''],
        Accept: ['*/*', 'text/html', ''],
        'Content-Encoding': ['gzip', 'identity', 'x'],
      }[h]!;
      const value = r.pick(values);
      if (value === '' && r.next() < 0.5) delete headers[h];
      else headers[h] = value.replace(/[^\x20-\x7e]/g, '?');
      what = `${h}: ${value.slice(0, 60)} to ${op}`;
      break;
    }
    default: {
      // Paths, labels and methods.
      method = r.pick(['POST', 'GET', 'PUT', 'DELETE']);
      const label = r.pick(['', 'nope/', '%2e%2e/', 'a'.repeat(300) + '/', '../', 'default/']);
      path = `/.well-known/est/${label}${r.pick(['cacerts', 'csrattrs', 'simpleenroll', 'serverkeygen', 'fullcmc', 'x', ''])}`;
      body = method === 'GET' ? Buffer.alloc(0) : Buffer.from(lineBreaks(r, csr.toString('base64')));
      what = `${method} ${path.slice(0, 80)}`;
    }
  }
  const answer = await send(target, agent, method, path, headers, method === 'GET' ? undefined : body);
  return { what, answer, method };
}

function checkEst(a: Answer): string | undefined {
  if (a.status >= 500) return `a ${a.status}`;
  if (a.status >= 400 && !String(a.headers['content-type']).startsWith('text/plain'))
    return `error without a plain-text reason (${a.headers['content-type']})`;
  return undefined;
}

// ---- the run ------------------------------------------------------------------------------

export async function runFuzz(target: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.concurrency ?? 4, ca: target.rootPem });
  const report: FuzzReport = { seed: opts.seed, cases: { acme: 0, est: 0 }, statuses: {}, failures: [] };
  try {
    const acmeState = await acmeSetup(target, agent);
    const estState = estSetup();
    const total = opts.cases * 2;
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < total; i = next++) {
        // Each case has its own generator: the same seed and index make the same request,
        // whatever the concurrency.
        const r = rng(opts.seed * 1_000_003 + i);
        const frontEnd = i % 2 === 0 ? 'acme' : 'est';
        let what = '';
        try {
          let answer: Answer;
          let problem: string | undefined;
          if (frontEnd === 'acme') {
            const c = await acmeCase(r, target, agent, acmeState);
            ({ what, answer } = c);
            problem = checkAcme(answer, what.startsWith('HEAD') ? 'HEAD' : 'POST');
          } else {
            const c = await estCase(r, target, agent, estState);
            ({ what, answer } = c);
            problem = checkEst(answer);
          }
          report.cases[frontEnd]++;
          report.statuses[`${frontEnd} ${answer.status}`] = (report.statuses[`${frontEnd} ${answer.status}`] ?? 0) + 1;
          if (problem)
            report.failures.push({ frontEnd, what, status: answer.status, why: problem, body: answer.body.toString('utf8').slice(0, 300) });
        } catch (e) {
          report.cases[frontEnd]++;
          report.failures.push({ frontEnd, what: `case ${i}: ${what}`, status: 'no answer', why: (e as Error).message, body: '' });
        }
        if ((i + 1) % 500 === 0) opts.progress?.(i + 1, total);
      }
    };
    await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  } finally {
    agent.destroy();
  }
  return report;
}
