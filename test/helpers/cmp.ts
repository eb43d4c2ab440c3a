/**
 * OpenSSL 3's `openssl cmp` client as the peer of certflow's CMP server, and a few helpers
 * to read what it saved (-reqout / -rspout) with certflow's own CMP classes.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runProgram } from './tools.ts';
import type { CliResult } from './certflow.ts';
import http from 'node:http';
import { createHash, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import {
  CertReqMessages,
  CertReqMsg,
  CertRequest,
  CertTemplate,
  InfoTypeAndValue,
  INFO_TYPES,
  NULL_DN,
  PKIHeader,
  POPOSigningKey,
  ProofOfPossession,
  directoryName,
  protectWithMac,
  protectWithSignature,
  structureDer,
  type MacChoice,
  PKIMessage,
  type PKIBodyContent,
} from '../../src/pki/cmp/index.ts';
import { encodeName, parseDn } from '../../src/pki/index.ts';

export interface CmpPeer {
  /** host:port of the HTTP listener. */
  server: string;
  /** Working directory for keys, certificates and saved messages. */
  dir: string;
  /** The CA's root certificate (PEM file). */
  root: string;
}

/** Runs `openssl cmp` against certflow (path /.well-known/cmp[/p/<alias>]). */
export function opensslCmp(peer: CmpPeer, args: string[], opts: { alias?: string; timeoutMs?: number; server?: string } = {}): Promise<CliResult> {
  const path = opts.alias === undefined ? '/.well-known/cmp' : `/.well-known/cmp/p/${opts.alias}`;
  return runProgram('openssl', ['cmp', '-server', opts.server ?? peer.server, '-path', path, '-msg_timeout', '60', '-batch', ...args], { cwd: peer.dir, timeoutMs: opts.timeoutMs ?? 120_000 });
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
  return Promise.all(files.map(async (f) => PKIMessage.fromBER(new Uint8Array(await readFile(join(dir, f))))));
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
export function postCmp(port: number, der: Uint8Array, opts: { path?: string; contentType?: string; method?: string } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: opts.path ?? '/.well-known/cmp', method: opts.method ?? 'POST', headers: { 'Content-Type': opts.contentType ?? 'application/pkixcmp', 'Content-Length': der.length } },
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

/** An ir (one CertReqMsg, signature POP) for `key`, unprotected: protect it with macProtect / signProtect. */
export function buildIr(args: { key: KeyObject; subject: string; ref?: string; implicitConfirm?: boolean; messageTime?: Date; transactionID?: Uint8Array; body?: 'ir' | 'cr' }): PKIMessage {
  const subjectDer = encodeName(parseDn(args.subject));
  const spki = new Uint8Array(createPublicKey(args.key).export({ type: 'spki', format: 'der' }));
  const certReq = new CertRequest(0, new CertTemplate({ subject: subjectDer, publicKey: spki }));
  const certReqDer = structureDer(certReq);
  const signature = new Uint8Array(sign('sha256', certReqDer, { key: args.key, dsaEncoding: 'der' }));
  const ecdsaSha256 = new Uint8Array(Buffer.from('300a06082a8648ce3d040302', 'hex'));
  const popo = new ProofOfPossession('signature', new POPOSigningKey(ecdsaSha256, signature));
  const header = new PKIHeader({
    pvno: 2,
    sender: directoryName(subjectDer),
    recipient: NULL_DN,
    messageTime: args.messageTime ?? new Date(),
    senderKID: args.ref ? new TextEncoder().encode(args.ref) : undefined,
    transactionID: args.transactionID ?? new Uint8Array(randomBytes(16)),
    senderNonce: new Uint8Array(randomBytes(16)),
    generalInfo: args.implicitConfirm ? [new InfoTypeAndValue(INFO_TYPES.implicitConfirm, new Uint8Array([5, 0]))] : undefined,
  });
  const body: PKIBodyContent = { type: args.body ?? 'ir', content: new CertReqMessages([new CertReqMsg(certReq, popo)]) };
  return new PKIMessage(header, body);
}

export function macProtect(msg: PKIMessage, secret: string, choice: MacChoice = { type: 'pbm', hash: 'sha256', mac: 'hmac-sha1', iterations: 500 }): Uint8Array {
  protectWithMac(msg, new TextEncoder().encode(secret), choice);
  return msg.toBER();
}

export function signProtect(msg: PKIMessage, key: KeyObject, chain: Uint8Array[]): Uint8Array {
  msg.extraCerts = chain;
  protectWithSignature(msg, key, 'ecdsa-sha256');
  return msg.toBER();
}

/** The failure bits and texts of a response (error message or rejected certificate response). */
export function failure(der: Uint8Array): { type: string; failInfo: string[]; text: string } {
  const msg = PKIMessage.fromBER(der);
  const b = msg.body;
  const si =
    b.type === 'error'
      ? b.content.pKIStatusInfo
      : b.type === 'ip' || b.type === 'cp' || b.type === 'kup'
        ? b.content.response[0]?.status
        : b.type === 'rp'
          ? b.content.status[0]
          : undefined;
  return { type: b.type, failInfo: si?.failInfo ?? [], text: [...(si?.statusString ?? []), ...(b.type === 'error' ? (b.content.errorDetails ?? []) : [])].join(' | ') };
}

export function sha256(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}
