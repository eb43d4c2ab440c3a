/**
 * OpenSSL 3's `openssl cmp` client as the peer of certflow's CMP server, and a few helpers
 * to read what it saved (-reqout / -rspout) with certflow's own CMP classes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runProgram } from './tools.ts';
import type { CliResult } from './certflow.ts';
import http from 'node:http';
import { PKIMessage } from '../../src/pki/cmp/index.ts';
export { buildIr, buildCertConf, macProtect, failure } from '../../src/cmp/client.ts';

export interface CmpPeer {
  /** host:port of the HTTP listener. */
  server: string;
  /** Working directory for keys, certificates and saved messages. */
  dir: string;
  /** The CA's root certificate (PEM file). */
  root: string;
}

/** Runs `openssl cmp` against certflow (path /.well-known/cmp[/p/<alias>]). */
export function opensslCmp(
  peer: CmpPeer,
  args: string[],
  opts: { alias?: string; timeoutMs?: number; server?: string } = {},
): Promise<CliResult> {
  const path = opts.alias === undefined ? '/.well-known/cmp' : `/.well-known/cmp/p/${opts.alias}`;
  return runProgram('openssl', ['cmp', '-server', opts.server ?? peer.server, '-path', path, '-msg_timeout', '60', '-batch', ...args], {
    cwd: peer.dir,
    timeoutMs: opts.timeoutMs ?? 120_000,
  });
}

/** A fresh EC P-256 key file. */
export async function newKey(peer: CmpPeer, name: string): Promise<string> {
  const file = join(peer.dir, `${name}.key`);
  const r = await runProgram('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  if (r.code !== 0) throw new Error(r.stderr);
  return file;
}

/** The PKIMessages saved by -reqout / -rspout (comma-separated files). */
export async function readMessages(dir: string, files: string[]): Promise<PKIMessage[]> {
  return Promise.all(files.map(async (f) => PKIMessage.fromDer(new Uint8Array(await readFile(join(dir, f))))));
}

/** What openssl printed, for assertion messages. */
export function output(r: CliResult): string {
  return `exit ${r.code}\n${r.stdout}\n${r.stderr}`;
}

// ---- certflow's own CMP client pieces, for the cases openssl cannot produce ----------

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** POSTs (or sends another method) to the CMP path of the HTTP listener. */
export function postCmp(
  port: number,
  der: Uint8Array,
  opts: { path?: string; contentType?: string; method?: string } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: opts.path ?? '/.well-known/cmp',
        method: opts.method ?? 'POST',
        headers: { 'Content-Type': opts.contentType ?? 'application/pkixcmp', 'Content-Length': der.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      },
    );
    req.on('error', reject);
    req.end(Buffer.from(der));
  });
}
