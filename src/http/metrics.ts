import type { Middleware } from 'koa';
import type { Pool } from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StuckBounds } from '../config/index.ts';
import * as certificates from '../db/repos/certificates.ts';
import { countStuckAndWaiting, type ConditionCounts } from '../db/repos/stuck.ts';
import { ocspFreshness, requestsByState } from '../db/repos/metrics.ts';
import { caValidity, deliveryCounts, newestCrls } from '../db/repos/notifications.ts';
import { authenticationFailures } from './auth-failures.ts';
import { cpuPoolStats } from './cpu-pool.ts';

/**
 * The process's Prometheus registry: default Node metrics, HTTP traffic, certificates by
 * status, stuck and waiting requests (the one definition of src/db/repos/stuck.ts).
 */
export function createMetrics(pool: Pool, bounds: StuckBounds) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'certflow_' });
  const requests = new Counter({
    name: 'certflow_http_requests_total',
    help: 'HTTP requests by listener, method, route and status',
    labelNames: ['listener', 'method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'certflow_http_request_duration_seconds',
    help: 'HTTP request duration by listener and route',
    labelNames: ['listener', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  new Gauge({
    name: 'certflow_certificates',
    help: 'Certificates in the database by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const counts = await certificates.countByStatus(pool);
      this.reset();
      // Only the statuses that have certificates, as before (no series at 0).
      for (const [status, n] of Object.entries(counts)) if (n) this.set({ status }, n);
    },
  });

  // Both request gauges come from one query per scrape.
  let counted: { at: number; counts: Promise<ConditionCounts> } | undefined;
  const conditions = () => {
    if (!counted || Date.now() - counted.at > 1000) counted = { at: Date.now(), counts: countStuckAndWaiting(pool, bounds) };
    return counted.counts;
  };
  new Gauge({
    name: 'certflow_requests_stuck',
    help: 'Requests stuck by protocol and reason: stalled by a server fault, or without progress past the bound of their state (reason = that state)',
    labelNames: ['protocol', 'reason'] as const,
    registers: [registry],
    async collect() {
      const { stuck } = await conditions();
      this.reset();
      for (const s of stuck) this.set({ protocol: s.protocol, reason: s.reason }, s.count);
    },
  });
  new Gauge({
    name: 'certflow_requests_waiting',
    help: 'Requests waiting for a person (approval) or for their client (challenge answer, finalize, certConf), by protocol',
    labelNames: ['protocol', 'on'] as const,
    registers: [registry],
    async collect() {
      const { waiting } = await conditions();
      this.reset();
      for (const w of waiting) this.set({ protocol: w.protocol, on: w.on }, w.count);
    },
  });

  // Work that requests buy (issue 16 item 3), counted where it is done.
  new Counter({
    name: 'certflow_cmp_mac_key_derivations_total',
    help: 'PBM/PBMAC1 key derivations run for CMP messages (in worker threads; never for an unknown senderKID)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(cpuPoolStats().macKey);
    },
  });
  new Counter({
    name: 'certflow_est_server_keys_generated_total',
    help: 'Key pairs generated for EST serverkeygen (in worker threads; only after the profile allowed the key)',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(cpuPoolStats().keyPair);
    },
  });
  new Counter({
    name: 'certflow_cpu_work_refused_total',
    help: 'Requests answered "busy, retry later" because too much CPU work was queued for the worker threads',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(cpuPoolStats().refused);
    },
  });
  new Counter({
    name: 'certflow_auth_failures_total',
    help: 'Failed authentications by protocol (wrong EST password, CMP MAC that does not verify)',
    labelNames: ['protocol'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [protocol, n] of authenticationFailures()) this.inc({ protocol }, n);
    },
  });

  operationalGauges(registry, pool);

  const middleware = (listener: string): Middleware =>
    async function metrics(ctx, next) {
      const end = duration.startTimer();
      try {
        await next();
      } finally {
        // The matched route pattern, not the raw path, keeps label cardinality bounded.
        const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
        requests.inc({ listener, method: ctx.method, route: String(route), status: String(ctx.status) });
        end({ listener, route: String(route) });
      }
    };
  return { registry, middleware };
}

const unix = (d: Date) => d.getTime() / 1000;

/**
 * What operators alert on (deploy/prometheus/alerts.yml, deploy/grafana/certflow.json):
 * requests by protocol and state, CA and CRL expiry, OCSP freshness, notification
 * deliveries. Read from Postgres at most every 15 s, whatever the scrape rate.
 */
function operationalGauges(registry: Registry, pool: Pool): void {
  let snapshot: { at: number; data: ReturnType<typeof read> } | undefined;
  const read = async () => {
    const [requests, cas, crls, ocsp, deliveries] = await Promise.all([
      requestsByState(pool),
      caValidity(pool),
      newestCrls(pool),
      ocspFreshness(pool),
      deliveryCounts(pool),
    ]);
    return { requests, cas, crls, ocsp, deliveries };
  };
  const data = () => {
    if (!snapshot || Date.now() - snapshot.at > 15_000) {
      snapshot = { at: Date.now(), data: read() };
      snapshot.data.catch(() => (snapshot = undefined));
    }
    return snapshot.data;
  };
  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    fill: (g: Gauge<L>, d: Awaited<ReturnType<typeof read>>) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const d = await data();
        this.reset();
        fill(this, d);
      },
    });
  gauge(
    'certflow_requests',
    'Requests by protocol and state (ACME orders: protocol acme, their status), from the read model',
    ['protocol', 'state'],
    (g, d) => {
      for (const r of d.requests) g.set({ protocol: r.protocol, state: r.state }, r.count);
    },
  );
  gauge('certflow_ca_not_after_timestamp_seconds', 'When each CA certificate expires (unix time)', ['ca', 'role'], (g, d) => {
    for (const ca of d.cas) g.set({ ca: ca.name, role: ca.role }, unix(ca.notAfter));
  });
  gauge(
    'certflow_crl_next_update_timestamp_seconds',
    "nextUpdate of each CA's newest CRL (unix time): relying parties reject it after that",
    ['ca'],
    (g, d) => {
      for (const c of d.crls) g.set({ ca: c.caName }, unix(c.nextUpdate));
    },
  );
  gauge(
    'certflow_crl_this_update_timestamp_seconds',
    "thisUpdate of each CA's newest CRL (unix time): when it was signed",
    ['ca'],
    (g, d) => {
      for (const c of d.crls) g.set({ ca: c.caName }, unix(c.thisUpdate));
    },
  );
  gauge('certflow_ocsp_certificates_without_response', 'Unexpired certificates without a current pre-signed OCSP response', [], (g, d) => {
    g.set(d.ocsp.withoutResponse);
  });
  gauge(
    'certflow_ocsp_next_update_min_timestamp_seconds',
    'The earliest nextUpdate among the OCSP responses of unexpired certificates (unix time)',
    [],
    (g, d) => {
      if (d.ocsp.earliestNextUpdate) g.set(unix(d.ocsp.earliestNextUpdate));
    },
  );
  gauge('certflow_ocsp_this_update_min_timestamp_seconds', 'When the stalest current OCSP response was signed (unix time)', [], (g, d) => {
    if (d.ocsp.oldestThisUpdate) g.set(unix(d.ocsp.oldestThisUpdate));
  });
  gauge(
    'certflow_notification_deliveries',
    'Notification deliveries by channel and status (dead: dead-lettered after the last attempt)',
    ['channel', 'status'],
    (g, d) => {
      for (const c of ['email', 'webhook'] as const)
        for (const st of ['pending', 'delivered', 'dead'] as const) g.set({ channel: c, status: st }, 0);
      for (const x of d.deliveries) g.set({ channel: x.channel, status: x.status }, x.count);
    },
  );
  gauge(
    'certflow_notification_oldest_pending_seconds',
    'Age of the oldest notification delivery not made yet, by channel',
    ['channel'],
    (g, d) => {
      for (const c of ['email', 'webhook'] as const)
        g.set({ channel: c }, d.deliveries.find((x) => x.channel === c && x.status === 'pending')?.oldestSeconds ?? 0);
    },
  );
}
