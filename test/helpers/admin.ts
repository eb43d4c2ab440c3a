/**
 * A client of the operator console's admin API for the admin-* tests: HTTPS to the admin
 * listener trusting the instance's root, sessions (cookie + CSRF header, as the console's
 * own JavaScript sends them) or API tokens.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExternalTool } from './tools.ts';

export interface AdminResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface Credentials {
  cookie?: string;
  csrf?: string;
  token?: string;
}

export interface CallOptions extends Credentials {
  body?: unknown;
  headers?: Record<string, string>;
  /** A TLS client certificate and key (PEM) for this connection. */
  cert?: string;
  key?: string;
}

export class AdminClient {
  constructor(
    readonly port: number,
    readonly ca: string,
  ) {}

  call(method: string, path: string, opts: CallOptions = {}): Promise<AdminResponse> {
    const data = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
    if (data !== undefined) headers['Content-Type'] = 'application/json';
    if (opts.cookie) headers.Cookie = opts.cookie;
    if (opts.csrf) headers['X-CSRF-Token'] = opts.csrf;
    if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: this.port,
          method,
          path,
          ca: this.ca,
          headers,
          cert: opts.cert,
          key: opts.key,
          agent: false,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            const text = body.toString('utf8');
            let json: unknown;
            try {
              json = text && /json/.test(String(res.headers['content-type'])) ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  /** Logs in with a password; returns the session cookie and CSRF token. */
  async login(name: string, password: string): Promise<Credentials & { response: AdminResponse }> {
    const r = await this.call('POST', '/admin/api/v1/session', { body: { name, password } });
    if (r.status !== 200) return { response: r };
    return { cookie: sessionCookie(r), csrf: r.json.csrfToken as string, response: r };
  }
}

/** "name=value" of the session cookie a response set. */
function sessionCookie(r: AdminResponse): string {
  const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  const c = set.find((s) => s.startsWith('__Host-certflow_session='));
  if (!c) throw new Error(`no session cookie in ${JSON.stringify(r.headers)}`);
  return c.split(';')[0]!;
}

// ---- a real browser --------------------------------------------------------------------------

/**
 * Debian's chromium-headless-shell (apt-get install chromium-headless-shell, as .ci/run
 * does): Chromium's "old" headless browser, built from the same sources as Debian's chromium,
 * which Playwright itself runs for headless tests. It needs about half the CPU of the full
 * browser in headless mode (admin-ui.test.ts: 14 against 26 s). Driven by playwright-core;
 * nothing is downloaded. CERTFLOW_TEST_CHROMIUM=/usr/bin/chromium runs the full browser.
 */
export const CHROMIUM: ExternalTool = {
  name: 'chromium-headless-shell',
  envVar: 'CERTFLOW_TEST_CHROMIUM',
  hint: 'install the Debian package: apt-get install chromium-headless-shell (as .ci/run does)',
};

/**
 * Chromium flags for the tests: headless, no sandbox (root in CI), nothing fetched from the
 * network, and the console's TLS key pinned (base64 SHA-256 of its SPKI) instead of
 * installing certflow's root into an NSS database.
 */
export function chromiumArgs(serverCertPem: string): string[] {
  const spki = new X509Certificate(serverCertPem).publicKey.export({ type: 'spki', format: 'der' });
  return [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`,
  ];
}

/** Where screenshots go: $CERTFLOW_TEST_ARTIFACTS or <repo>/test-artifacts (gitignored). */
export function artifactsDir(sub: string): string {
  const base = process.env.CERTFLOW_TEST_ARTIFACTS || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'test-artifacts');
  const dir = join(base, sub);
  mkdirSync(dir, { recursive: true });
  return dir;
}
