/**
 * EST as a device does it, for the EST integration tests: curl for the requests (so that
 * TLS client certificates and Basic credentials go through a real client), openssl for
 * keys, CSRs and the certs-only PKCS#7 answers.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { opensslCsr, runTool } from './certflow.ts';

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface CurlOptions {
  data?: string;
  type?: string;
  user?: string;
  cert?: [string, string];
  method?: string;
  headers?: string[];
  /** curl --max-time (seconds): an answer that takes longer fails the request. */
  maxTime?: number;
}

export interface EstDevice {
  /** curl as a device would use it; returns status, headers and the raw body. */
  curl(path: string, opts?: CurlOptions): Promise<HttpResult>;
  /** A CSR in the form EST wants: base64 of the DER, with line breaks unless `oneLine`. */
  csrBody(name: string, subj: string, opts?: { san?: string; oneLine?: boolean; key?: string }): Promise<string>;
  /** The certificates in a base64 certs-only PKCS#7 body, through openssl (PEM text). */
  pkcs7Certs(body: Buffer): Promise<string>;
  /** openssl verify against the root and chain. */
  verify(certPem: string): Promise<void>;
}

export function firstCert(printed: string): string {
  return printed.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/)![0];
}

const unique = () => `${Date.now()}-${Math.random().toString(36).slice(2)}`;

/** `dir` holds keys, CSRs and scratch files; `base` is https://localhost:<port>/.well-known/est. */
export function estDevice(dir: string, base: string, root: string, chain: string): EstDevice {
  return {
    async curl(path, opts = {}) {
      const out = join(dir, `curl-${unique()}`);
      const args = ['-sS', '--cacert', root, '-o', `${out}.body`, '-D', `${out}.headers`, '-w', '%{http_code}'];
      if (opts.user) args.push('-u', opts.user);
      if (opts.cert) args.push('--cert', opts.cert[0], '--key', opts.cert[1]);
      for (const h of opts.headers ?? []) args.push('-H', h);
      if (opts.data !== undefined) {
        await writeFile(`${out}.data`, opts.data);
        args.push('--data-binary', `@${out}.data`, '-H', `Content-Type: ${opts.type ?? 'application/pkcs10'}`);
      }
      if (opts.method) args.push('-X', opts.method);
      if (opts.maxTime) args.push('--max-time', String(opts.maxTime));
      args.push(`${base}${path}`);
      const r = await runTool('curl', args);
      assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
      const headers: Record<string, string> = {};
      for (const line of (await readFile(`${out}.headers`, 'utf8')).split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      return { status: Number(r.stdout), headers, body: await readFile(`${out}.body`) };
    },
    async csrBody(name, subj, opts = {}) {
      const pem = await opensslCsr(dir, name, { subj, san: opts.san, key: opts.key });
      const b64 = (await readFile(pem, 'utf8')).replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      return opts.oneLine ? b64 : `${b64.replace(/.{64}/g, '$&\n')}\n`;
    },
    async pkcs7Certs(body) {
      const file = join(dir, `p7-${unique()}.der`);
      await writeFile(file, Buffer.from(body.toString('ascii'), 'base64'));
      const r = await runTool('openssl', ['pkcs7', '-inform', 'DER', '-in', file, '-print_certs']);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    },
    async verify(certPem) {
      const file = join(dir, `v-${unique()}.pem`);
      await writeFile(file, certPem);
      const r = await runTool('openssl', ['verify', '-CAfile', root, '-untrusted', chain, file]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
    },
  };
}
