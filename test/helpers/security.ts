/**
 * The attacker's workbench for test/security/: a certflow instance with ACME (challtestsrv
 * as DNS, an http-01 responder on loopback), EST (curl + openssl) and CMP (`openssl cmp`),
 * and the ways an attacker gets certificates of this CA: over ACME for a domain of their
 * own (acme-client, http-01), or as a device over EST or CMP. Every certificate is written
 * to `<home>/<name>.pem` with its key in `<name>.key`, so curl and openssl can present it.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { issueHttp01, newAccount, startAcmeStack, startHttp01Responder, type AcmeStack, type Http01Responder } from './acme.ts';
import type { TestInstance } from './certflow.ts';
import { failure, newKey, opensslCmp, output, readMessages, type CmpPeer } from './cmp.ts';
import { estDevice, firstCert, type CurlOptions, type EstDevice, type HttpResult } from './est.ts';

export interface Held {
  /** PEM file of the certificate. */
  cert: string;
  key: string;
  pem: string;
  serial: string;
}

export interface SecurityStack {
  acme: AcmeStack;
  cf: TestInstance;
  est: EstDevice;
  cmp: CmpPeer;
  /** A certificate over ACME for `names` from the attacker's own account (http-01), at an ACME alias. */
  acmeCertificate(name: string, names: string[], alias?: string): Promise<Held>;
  /** simpleenroll (or another EST operation) that must succeed; the certificate as Held. */
  estCertificate(name: string, path: string, subj: string, opts: CurlOptions & { san?: string }): Promise<Held>;
  /** An `openssl cmp` ir with MAC protection that must succeed. */
  cmpCertificate(name: string, subject: string, opts: { ref: string; secret: string; alias?: string; sans?: string }): Promise<Held>;
  /** Runs `openssl cmp` and reads the answer it saved: its body type and failure bits. */
  cmpAttempt(args: string[], alias?: string): Promise<{ code: number; out: string; type: string; failInfo: string[]; text: string }>;
  /** Writes a certificate (PEM) as `<name>.pem` next to its key `<name>.key`. */
  hold(name: string, pem: string): Promise<Held>;
  /** Certificates (any status) whose subject or SANs contain `name`. */
  issuedFor(name: string): Promise<number>;
  stop(): Promise<void>;
}

export function serialOf(pem: string): string {
  const hex = new X509Certificate(pem).serialNumber.toLowerCase().replace(/^(00)+/, '');
  return hex.length % 2 ? `0${hex}` : hex;
}

let saved = 0;

export async function startSecurityStack(config: unknown, env: NodeJS.ProcessEnv = {}): Promise<SecurityStack> {
  const acme = await startAcmeStack({ config, env: { CERTFLOW_EST_WAIT_SECONDS: '5', ...env } });
  let responder: Http01Responder | undefined;
  try {
    responder = await startHttp01Responder(acme.http01Port);
    const cf = acme.cf;
    const est = estDevice(cf.home, `https://localhost:${cf.httpsPort}/.well-known/est`, acme.root, acme.chain);
    const cmp: CmpPeer = { server: `127.0.0.1:${cf.httpPort}`, dir: cf.home, root: acme.root };
    const accounts = new Map<string, Awaited<ReturnType<typeof newAccount>>>();
    const hold = async (name: string, pem: string, key?: string): Promise<Held> => {
      const cert = join(cf.home, `${name}.pem`);
      await writeFile(cert, pem);
      const keyFile = join(cf.home, `${name}.key`);
      if (key !== undefined) await writeFile(keyFile, key, { mode: 0o600 });
      return { cert, key: keyFile, pem, serial: serialOf(pem) };
    };
    const stack: SecurityStack = {
      acme,
      cf,
      est,
      cmp,
      hold: (name, pem) => hold(name, pem),
      async acmeCertificate(name, names, alias) {
        const directory = acme.directoryUrl(alias);
        let account = accounts.get(directory);
        if (!account) {
          account = await newAccount(directory, { email: 'attacker@example.test' });
          accounts.set(directory, account);
        }
        const issued = await issueHttp01(account.client, responder!, names);
        return hold(name, issued.leafPem, issued.key.toString());
      },
      async estCertificate(name, path, subj, opts) {
        const data = await est.csrBody(name, subj, { san: opts.san });
        let r: HttpResult = await est.curl(path, { ...opts, data });
        for (let i = 0; r.status === 202 && i < 40; i++) {
          await sleep(250);
          r = await est.curl(path, { ...opts, data });
        }
        assert.equal(r.status, 200, `${path} ${subj}: ${r.status} ${r.body}`);
        return hold(name, firstCert(await est.pkcs7Certs(r.body)));
      },
      async cmpCertificate(name, subject, opts) {
        const key = await newKey(cmp, name);
        const r = await opensslCmp(
          cmp,
          [
            '-cmd',
            'ir',
            '-ref',
            opts.ref,
            '-secret',
            `pass:${opts.secret}`,
            '-newkey',
            key,
            '-subject',
            subject,
            ...(opts.sans ? ['-sans', opts.sans] : []),
            '-certout',
            `${name}.pem`,
            '-trusted',
            cmp.root,
            '-implicit_confirm',
          ],
          { alias: opts.alias },
        );
        assert.equal(r.code, 0, output(r));
        return hold(name, await readFile(join(cf.home, `${name}.pem`), 'utf8'));
      },
      async cmpAttempt(args, alias) {
        const rsp = `attempt-${++saved}.der`;
        const r = await opensslCmp(cmp, [...args, '-trusted', cmp.root, '-rspout', rsp, '-unprotected_errors'], { alias });
        const [msg] = await readMessages(cf.home, [rsp]).catch(() => [undefined]);
        const f = msg ? failure(msg.toDer()) : { type: 'none', failInfo: [], text: '' };
        return { code: r.code, out: output(r), ...f };
      },
      async issuedFor(name) {
        const { rows } = await cf.pool.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM certificates WHERE subject LIKE $1 OR sans::text LIKE $1',
          [`%${name}%`],
        );
        return rows[0]!.n;
      },
      async stop() {
        await responder?.close();
        await acme.stop();
      },
    };
    return stack;
  } catch (e) {
    await responder?.close();
    await acme.stop();
    throw e;
  }
}
