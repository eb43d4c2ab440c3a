/**
 * A client of the operator console's admin API for the admin-* tests: HTTPS to the admin
 * listener trusting the instance's root, sessions (cookie + CSRF header, as the console's
 * own JavaScript sends them) or API tokens.
 */
import { request } from 'node:https';

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
        { host: '127.0.0.1', servername: 'localhost', port: this.port, method, path, ca: this.ca, headers, cert: opts.cert, key: opts.key, agent: false },
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
export function sessionCookie(r: AdminResponse): string {
  const set = ([] as string[]).concat(r.headers['set-cookie'] ?? []);
  const c = set.find((s) => s.startsWith('__Host-certflow_session='));
  if (!c) throw new Error(`no session cookie in ${JSON.stringify(r.headers)}`);
  return c.split(';')[0]!;
}
