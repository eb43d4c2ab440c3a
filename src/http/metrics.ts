import type { Middleware } from 'koa';
import type { Pool } from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StuckBounds } from '../config/index.ts';
import { countStuckAndWaiting, type ConditionCounts } from '../db/repos/stuck.ts';

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
      const { rows } = await pool.query<{ status: string; n: string }>(
        'SELECT status, count(*)::text AS n FROM certificates GROUP BY status',
      );
      this.reset();
      for (const r of rows) this.set({ status: r.status }, Number(r.n));
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
