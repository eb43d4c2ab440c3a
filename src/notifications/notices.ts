/**
 * What certflow tells, to whom, in which words: one function per kind of notice, each
 * returning the notice (its fixed id: the thing and the threshold crossed, so that it is
 * told once) with its deliveries. Pure: the sweep (sources.ts) finds the facts, the
 * delivery activity sends (channels.ts).
 */
import type { NotificationsConfig, NoticeType } from '../config/index.ts';
import type { Channel, ExpiringCertificate, NewNotice } from '../db/repos/notifications.ts';
import type { CaExpiry } from '../ra/ca-expiry.ts';

const DAY = 86_400_000;

/** The tightest threshold crossed: the smallest t with left <= t; undefined if none is. */
function thresholdCrossed(left: number, thresholds: number[]): number | undefined {
  const crossed = thresholds.filter((t) => left <= t);
  return crossed.length ? Math.min(...crossed) : undefined;
}

/** Who gets a notice of `type`: the webhooks that take it, and the e-mail addresses given (when a mail server is set). */
function deliveries(config: NotificationsConfig, type: NoticeType, emails: string[]): NewNotice['deliveries'] {
  const out: Array<{ channel: Channel; target: string }> = [];
  if (config.smtp) for (const to of new Set(emails.map((e) => e.toLowerCase()))) out.push({ channel: 'email', target: to });
  for (const w of config.webhooks) if (!w.events || w.events.includes(type)) out.push({ channel: 'webhook', target: w.url });
  return out;
}

function notice(
  config: NotificationsConfig,
  type: NoticeType,
  key: string,
  subject: string,
  data: Record<string, unknown>,
  emails: string[],
): NewNotice {
  return { id: `${type}:${key}`, type, subject, data, deliveries: deliveries(config, type, emails) };
}

/** The thresholds and addresses of a certificate profile (notifications.profiles overrides the defaults). */
export function certificateRule(config: NotificationsConfig, profile: string) {
  const p = config.profiles[profile] ?? {};
  return {
    expiringDays: p.expiringDays ?? config.expiringDays,
    email: p.email ?? config.email,
    requesters: p.requesters ?? config.requesters,
  };
}

export function certificateExpiring(config: NotificationsConfig, c: ExpiringCertificate, now: Date): NewNotice | undefined {
  const rule = certificateRule(config, c.profile);
  const daysLeft = (c.notAfter.getTime() - now.getTime()) / DAY;
  const threshold = thresholdCrossed(daysLeft, rule.expiringDays);
  if (threshold === undefined) return undefined;
  const emails = [...rule.email, ...(rule.requesters ? c.requesterEmails : [])];
  const left = Math.max(0, Math.floor(daysLeft));
  return notice(
    config,
    'certificate.expiring',
    `${c.serial}:${threshold}d`,
    `certificate ${c.subject || c.sans.join(', ')} expires in ${left} day${left === 1 ? '' : 's'} (${c.notAfter.toISOString().slice(0, 10)})`,
    {
      serial: c.serial,
      subject: c.subject,
      sans: c.sans,
      profile: c.profile,
      ca: c.caName,
      protocol: c.protocol,
      requester: c.requester,
      notAfter: c.notAfter.toISOString(),
      daysLeft: left,
      thresholdDays: threshold,
    },
    emails,
  );
}

/** A CA the expiry watch reports (src/ra/ca-expiry.ts: the one definition), told once per key generation and level. */
export function caExpiring(config: NotificationsConfig, ca: CaExpiry): NewNotice {
  const left = Math.max(0, ca.remainingDays);
  return notice(
    config,
    'ca.expiring',
    `${ca.ca}:${ca.generation}:${ca.level}`,
    ca.level === 'expired'
      ? `CA ${ca.ca} expired on ${ca.notAfter.slice(0, 10)}`
      : `CA ${ca.ca} expires in ${left} day${left === 1 ? '' : 's'} (${ca.notAfter.slice(0, 10)}): ${ca.level === 'critical' ? 'certificates are cut short' : 'plan its rollover'}`,
    {
      message: ca.message,
      ca: ca.ca,
      generation: ca.generation,
      level: ca.level,
      notAfter: ca.notAfter,
      daysLeft: left,
      longestProfile: ca.longestProfile,
      external: ca.external,
    },
    config.email,
  );
}

export function crlExpiring(
  config: NotificationsConfig,
  crl: { caName: string; crlNumber: string; thisUpdate: Date; nextUpdate: Date },
  now: Date,
): NewNotice | undefined {
  const hoursLeft = (crl.nextUpdate.getTime() - now.getTime()) / 3_600_000;
  const threshold = thresholdCrossed(hoursLeft, config.crlExpiringHours);
  if (threshold === undefined) return undefined;
  const left = Math.max(0, Math.floor(hoursLeft));
  return notice(
    config,
    'crl.expiring',
    `${crl.caName}:${crl.crlNumber}:${threshold}h`,
    `the CRL of ${crl.caName} (number ${crl.crlNumber}) ${hoursLeft <= 0 ? 'has expired' : `expires in ${left} h`} and no newer one was made`,
    {
      ca: crl.caName,
      crlNumber: crl.crlNumber,
      thisUpdate: crl.thisUpdate.toISOString(),
      nextUpdate: crl.nextUpdate.toISOString(),
      hoursLeft: left,
      thresholdHours: threshold,
    },
    config.email,
  );
}

export function requestStuck(
  config: NotificationsConfig,
  r: {
    kind: string;
    id: string;
    protocol: string;
    state: string;
    reason: string | null;
    since: Date;
    seconds: number;
    why: string;
    workflowId: string;
    requester: string | null;
    profile: string;
  },
): NewNotice | undefined {
  if (r.seconds < config.stuckMinutes * 60) return undefined;
  return notice(
    config,
    'request.stuck',
    // Once per episode: a request that moves on and gets stuck again has a new `since`.
    `${r.kind}:${r.id}:${r.since.getTime()}`,
    `${r.protocol} ${r.kind} ${r.id} is stuck (${r.reason}): ${r.why}`,
    {
      kind: r.kind,
      id: r.id,
      protocol: r.protocol,
      state: r.state,
      reason: r.reason,
      since: r.since.toISOString(),
      seconds: r.seconds,
      why: r.why,
      workflowId: r.workflowId,
      requester: r.requester,
      profile: r.profile,
    },
    config.email,
  );
}

export function auditVerificationFailed(
  config: NotificationsConfig,
  r: { entries: number; head: { seq: number }; firstBroken?: { seq: number; reason: string }; problems: string[] },
  digest: string,
): NewNotice {
  return notice(
    config,
    'audit.verification_failed',
    // Once per distinct break (what is broken, not when it was seen).
    digest,
    r.firstBroken
      ? `the audit log is broken at entry #${r.firstBroken.seq}: ${r.firstBroken.reason}`
      : `the audit log does not verify: ${r.problems[0] ?? 'see `certflow audit verify`'}`,
    { entries: r.entries, headSeq: r.head.seq, firstBroken: r.firstBroken ?? null, problems: r.problems.slice(0, 20) },
    config.email,
  );
}

/** Every target of a channel, whatever event types a webhook takes: where a test goes. */
function testTargets(config: NotificationsConfig, channel: Channel): string[] {
  if (channel === 'webhook') return config.webhooks.map((w) => w.url);
  return config.smtp ? [...new Set(config.email.map((e) => e.toLowerCase()))] : [];
}

/** Why there is nothing to test on a channel (undefined: there is). */
export function nothingToTest(config: NotificationsConfig, channel: Channel): string | undefined {
  if (testTargets(config, channel).length) return undefined;
  return channel === 'email'
    ? 'there is nothing to test: configure notifications.smtp and notifications.email'
    : 'there is nothing to test: configure notifications.webhooks';
}

/** A test notice for every configured target of one channel (`notifications test`, the console's button). */
export function testNotice(config: NotificationsConfig, channel: Channel, id: string, requestedBy: string, now: Date): NewNotice {
  const n = notice(
    config,
    'test',
    id,
    `test notice from certflow (${channel}, asked for by ${requestedBy})`,
    { channel, requestedBy, at: now.toISOString() },
    config.email,
  );
  return { ...n, deliveries: testTargets(config, channel).map((target) => ({ channel, target })) };
}
