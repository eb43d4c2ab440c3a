/**
 * Real receivers for the notification tests: an SMTP server (npm smtp-server) that offers
 * STARTTLS with its own certificate and takes mail only after TLS and authentication, and an
 * HTTP webhook receiver that checks each delivery's Certflow-Signature the way the shared
 * CONTRACT describes it (written here from the contract, not with certflow's code).
 *
 * Both can hold each message for a while before they accept it; a message whose sender went
 * away meanwhile (a worker killed mid-delivery) is counted as received, not as accepted:
 * `accepted` is what certflow was told went through.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SMTPServer } from 'smtp-server';
import { runTool } from './certflow.ts';

export interface SunkMail {
  from: string;
  to: string[];
  subject: string;
  notice: string;
  event: string;
  body: string;
  /** STARTTLS was used and the client authenticated as: */
  secure: boolean;
  user: string | undefined;
}

export interface SmtpSink {
  port: number;
  /** The sink's certificate (PEM file): notifications.smtp.caFile. */
  caFile: string;
  received: SunkMail[];
  accepted: SunkMail[];
  /** How long each message is held before it is accepted. */
  holdMs: number;
  close(): Promise<void>;
}

export async function startSmtpSink(dir: string, auth: { user: string; pass: string }): Promise<SmtpSink> {
  const key = join(dir, 'smtp-key.pem');
  const cert = join(dir, 'smtp-cert.pem');
  const made = await runTool('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-keyout',
    key,
    '-out',
    cert,
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  if (made.code !== 0) throw new Error(`openssl: ${made.stderr}`);
  const closed = new Set<string>();
  const sink: Omit<SmtpSink, 'port' | 'close'> = { caFile: cert, received: [], accepted: [], holdMs: 0 };
  const server = new SMTPServer({
    key: await readFile(key),
    cert: await readFile(cert),
    // AUTH only after STARTTLS (the default), and required.
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: false,
    logger: false,
    onAuth(a, _session, cb) {
      if (a.username === auth.user && a.password === auth.pass) cb(null, { user: a.username });
      else cb(new Error('wrong user name or password'));
    },
    onClose(session) {
      closed.add(session.id);
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const [head = '', ...rest] = raw.split(/\r?\n\r?\n/);
        const header = (name: string) =>
          new RegExp(`^${name}: *(.*(?:\\r?\\n[ \\t].*)*)`, 'im')
            .exec(head)?.[1]
            ?.replace(/\r?\n[ \t]+/g, ' ')
            .trim() ?? '';
        const mail: SunkMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: header('Subject'),
          notice: header('X-Certflow-Notice'),
          event: header('X-Certflow-Event'),
          body: rest.join('\n\n'),
          secure: session.secure,
          user: session.user as string | undefined,
        };
        sink.received.push(mail);
        if (sink.holdMs) await sleep(sink.holdMs);
        if (closed.has(session.id)) return cb(new Error('the client went away'));
        sink.accepted.push(mail);
        cb(null);
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.server.address() as AddressInfo).port));
  });
  return Object.assign(sink, { port, close: () => new Promise<void>((r) => server.close(() => r())) });
}

export interface WebhookEvent {
  path: string;
  type: string;
  id: string;
  time: string;
  data: Record<string, unknown>;
  delivery: string;
}

export interface WebhookReceiver {
  port: number;
  url(path: string): string;
  received: WebhookEvent[];
  accepted: WebhookEvent[];
  /** Deliveries whose signature did not verify (none, if certflow signs right). */
  badSignatures: string[];
  holdMs: number;
  /** While true, /fail answers 500; then 204 (a receiver that was fixed). */
  failing: boolean;
  close(): Promise<void>;
}

/**
 * Answers /ok with 204, /fail with 500 (while `failing`) and /gone with 410, each after `holdMs`. Secrets per
 * path. A signature is checked as the contract says: t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>">, within five minutes.
 */
export async function startWebhookReceiver(secrets: Record<string, string>): Promise<WebhookReceiver> {
  const r: Omit<WebhookReceiver, 'port' | 'url' | 'close'> = { received: [], accepted: [], badSignatures: [], holdMs: 0, failing: true };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const path = req.url ?? '';
    const secret = secrets[path];
    const header = String(req.headers['certflow-signature'] ?? '');
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    const expected = m && secret ? createHmac('sha256', secret).update(`${m[1]}.${body}`).digest() : undefined;
    const fresh = m && Math.abs(Date.now() / 1000 - Number(m[1])) < 300;
    if (!m || !expected || !fresh || !timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'))) {
      r.badSignatures.push(`${path}: ${header}`);
      res.writeHead(401).end();
      return;
    }
    const parsed = JSON.parse(body) as Omit<WebhookEvent, 'path' | 'delivery'>;
    const event: WebhookEvent = { ...parsed, path, delivery: String(req.headers['certflow-delivery'] ?? '') };
    r.received.push(event);
    if (r.holdMs) await sleep(r.holdMs);
    if (req.socket.destroyed) return; // the sender went away: it never hears of this one
    const status = path === '/ok' || (path === '/fail' && !r.failing) ? 204 : path === '/gone' ? 410 : 500;
    res.writeHead(status).end(() => {
      if (status < 300) r.accepted.push(event);
    });
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
  return Object.assign(r, {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}
