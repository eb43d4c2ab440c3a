/**
 * The `notifications` section of the configuration file (shared CONTRACT: smtp, email,
 * webhooks, expiringDays; the rest extends it): its schema, its defaults and what it turns
 * into. What is worth telling, and how, is in src/notifications/.
 */
import { z } from 'zod';
import { CaError } from '../core/errors.ts';
import type { CertProfile } from './profiles.ts';

/** What certflow tells: the `type` of a webhook event and of a notice. */
export const NOTICE_TYPES = [
  'certificate.expiring',
  'ca.expiring',
  'crl.expiring',
  'request.stuck',
  'audit.verification_failed',
  'test',
] as const;
export type NoticeType = (typeof NOTICE_TYPES)[number];

const days = z.array(z.int().positive().max(36_500));
/** An address notices can be sent to (no display name, no list). */
const EMAIL_ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/;
const address = z.string().regex(EMAIL_ADDRESS, 'expected an e-mail address');

/** The e-mail address of an EST or CMP client (--email, the console's form). */
export function checkEmailAddress(s: string): string {
  if (!EMAIL_ADDRESS.test(s) || s.length > 254) throw new CaError('malformed', `"${s}" is not an e-mail address`, { rule: 'client.email' });
  return s;
}

export const notificationsSchema = z.strictObject({
  /** Mail server: smtp://user:pass@host:587 (STARTTLS) or smtps://user:pass@host:465 (TLS from the start). */
  smtp: z
    .strictObject({
      url: z.string().regex(/^smtps?:\/\/[^/]+\/?$/, 'expected smtp://[user:pass@]host[:port] or smtps://…'),
      from: address,
      /** PEM file of the CA certificate(s) that verify the mail server (default: the system's). */
      caFile: z.string().optional(),
      /** smtp://: refuse to send unless the server offers STARTTLS (default true). */
      requireTls: z.boolean().optional(),
    })
    .optional(),
  /** The operators: every notice except certificate expiry (which profiles can route here, see profiles). */
  email: z.array(address).optional(),
  webhooks: z
    .array(
      z.strictObject({
        url: z.url({ protocol: /^https?$/ }),
        secret: z.string().min(32, 'a webhook secret has at least 32 characters'),
        /** Only these event types (default: all). */
        events: z.array(z.enum(NOTICE_TYPES)).optional(),
      }),
    )
    .optional(),
  /** Certificates: a notice when fewer days than each of these are left. */
  expiringDays: days.optional(),
  /** Certificate expiry notices also go to the requester: the ACME account's contact, the EST/CMP client's e-mail. */
  requesters: z.boolean().optional(),
  /** Per certificate profile: other thresholds ([] = none), other addresses, requesters or not. */
  profiles: z
    .record(
      z.string(),
      z.strictObject({ expiringDays: days.optional(), email: z.array(address).optional(), requesters: z.boolean().optional() }),
    )
    .optional(),
  /** CRLs: a notice when the newest CRL of a CA expires in fewer hours than each of these (it is not being renewed). */
  crlExpiringHours: z.array(z.int().positive().max(8760)).optional(),
  /** Stuck requests (src/db/repos/stuck.ts): a notice once a request has been stuck this long (0: as soon as it is). */
  stuckMinutes: z.number().nonnegative().max(10_080).optional(),
  /** How often the sweep looks (a Temporal Schedule). */
  intervalMinutes: z.int().min(1).max(1440).optional(),
  /** Delivery retries: attempts in all, and the backoff between them (doubling). */
  retry: z
    .strictObject({
      maxAttempts: z.int().min(1).max(50).optional(),
      initialSeconds: z.int().min(1).max(3600).optional(),
      maxSeconds: z.int().min(1).max(86_400).optional(),
    })
    .optional(),
});

export interface NotificationsConfig {
  smtp?: { url: string; from: string; caFile?: string; requireTls: boolean };
  email: string[];
  webhooks: Array<{ url: string; secret: string; events?: NoticeType[] }>;
  expiringDays: number[];
  requesters: boolean;
  profiles: Record<string, { expiringDays?: number[]; email?: string[]; requesters?: boolean }>;
  crlExpiringHours: number[];
  stuckMinutes: number;
  intervalMinutes: number;
  retry: { maxAttempts: number; initialSeconds: number; maxSeconds: number };
}

const DEFAULT_EXPIRING_DAYS = [30, 7];

export function notificationsConfig(
  file: z.infer<typeof notificationsSchema> | undefined,
  profiles: Map<string, CertProfile>,
): NotificationsConfig {
  const n = file ?? {};
  for (const name of Object.keys(n.profiles ?? {})) {
    if (!profiles.has(name)) {
      throw new CaError('config', `notifications.profiles.${name}: no certificate profile is called "${name}"`, {
        rule: 'notifications.profile',
      });
    }
  }
  const urls = (n.webhooks ?? []).map((w) => w.url);
  if (new Set(urls).size !== urls.length)
    throw new CaError('config', 'notifications.webhooks: a URL is listed twice', { rule: 'notifications.webhooks' });
  const retry = { maxAttempts: 8, initialSeconds: 30, maxSeconds: 3600, ...n.retry };
  if (retry.maxSeconds < retry.initialSeconds) {
    throw new CaError('config', 'notifications.retry.maxSeconds is below initialSeconds', { rule: 'notifications.retry' });
  }
  return {
    smtp: n.smtp && { ...n.smtp, requireTls: n.smtp.requireTls ?? true },
    email: n.email ?? [],
    webhooks: n.webhooks ?? [],
    expiringDays: n.expiringDays ?? DEFAULT_EXPIRING_DAYS,
    requesters: n.requesters ?? true,
    profiles: n.profiles ?? {},
    crlExpiringHours: n.crlExpiringHours ?? [72, 24],
    stuckMinutes: n.stuckMinutes ?? 30,
    intervalMinutes: n.intervalMinutes ?? 15,
    retry,
  };
}
