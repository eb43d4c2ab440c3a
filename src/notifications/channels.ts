/**
 * The two channels: e-mail over SMTP (nodemailer; STARTTLS required on smtp:// unless the
 * configuration says otherwise, authentication from the URL) and webhooks (an HTTP POST of
 * JSON, signed as the shared CONTRACT says). Each send either succeeds, fails for a reason
 * that a retry may cure, or fails for good (the receiver refused it): PermanentFailure.
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import type { NotificationsConfig } from '../config/index.ts';
import { errorMessage } from '../core/errors.ts';
import type { NoticeRow } from '../db/repos/notifications.ts';

/** A failure that no retry cures (a 4xx webhook answer, a 5xx SMTP reply): the delivery is dead-lettered at once. */
export class PermanentFailure extends Error {
  override name = 'PermanentFailure';
}

const SIGNATURE_HEADER = 'Certflow-Signature';

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` under the webhook's secret (shared CONTRACT). */
function webhookSignature(secret: string, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

/** The JSON body of a webhook delivery: {"type", "id", "time", "data"}. */
function webhookBody(n: NoticeRow): string {
  return JSON.stringify({ type: n.type, id: n.id, time: n.createdAt.toISOString(), data: n.data });
}

/** HTTP answers worth another attempt: timeouts, throttling, server errors. */
const RETRYABLE_STATUS = new Set([408, 425, 429]);

export async function postWebhook(url: string, secret: string, n: NoticeRow, deliveryId: string, userAgent: string): Promise<string> {
  const body = webhookBody(n);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(15_000),
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': userAgent,
        [SIGNATURE_HEADER]: webhookSignature(secret, body, Math.floor(Date.now() / 1000)),
        'Certflow-Event': n.type,
        'Certflow-Delivery': deliveryId,
      },
    });
  } catch (e) {
    throw new Error(`POST ${url}: ${errorMessage(e)}`, { cause: e });
  }
  await res.body?.cancel().catch(() => {});
  if (res.status >= 200 && res.status < 300) return `HTTP ${res.status}`;
  const detail = `POST ${url}: HTTP ${res.status}`;
  if (res.status >= 400 && res.status < 500 && !RETRYABLE_STATUS.has(res.status))
    throw new PermanentFailure(`${detail} (the receiver refused it)`);
  throw new Error(detail);
}

/** The plain-text mail of a notice: its subject line, then every detail. */
function emailText(n: NoticeRow): string {
  const lines = Object.entries(n.data).map(
    ([k, v]) => `  ${k}: ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`,
  );
  return `${n.subject}\n\n${lines.join('\n')}\n\nnotice ${n.id} (${n.type}), ${n.createdAt.toISOString()}\n-- \ncertflow notifications (docs/notifications.md)\n`;
}

export async function sendEmail(
  smtp: NonNullable<NotificationsConfig['smtp']>,
  to: string,
  n: NoticeRow,
  deliveryId: string,
): Promise<string> {
  const secure = smtp.url.startsWith('smtps:');
  const transport = nodemailer.createTransport({
    url: smtp.url,
    secure,
    requireTLS: !secure && smtp.requireTls,
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 30_000,
    tls: { minVersion: 'TLSv1.2', ...(smtp.caFile ? { ca: readFileSync(smtp.caFile, 'utf8') } : {}) },
  } as Parameters<typeof nodemailer.createTransport>[0]);
  try {
    const info = await transport.sendMail({
      from: smtp.from,
      to,
      subject: `[certflow] ${n.subject}`,
      text: emailText(n),
      // One Message-ID per delivery: a repeated attempt is recognisable as the same message.
      messageId: `<${deliveryId}@certflow>`,
      headers: { 'X-Certflow-Notice': n.id, 'X-Certflow-Event': n.type },
    });
    return info.response;
  } catch (e) {
    const code = (e as { responseCode?: number }).responseCode;
    const detail = `SMTP to ${to}: ${errorMessage(e)}`;
    // 5xx: the server refuses the message or the recipient for good.
    if (code !== undefined && code >= 500) throw new PermanentFailure(detail, { cause: e });
    throw new Error(detail, { cause: e });
  } finally {
    transport.close();
  }
}
