import type { Middleware } from 'koa';
import type { Pool } from 'pg';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import * as certificates from '../db/repos/certificates.ts';

/** The process's Prometheus registry: default Node metrics, HTTP traffic, certificates by status. */
export function createMetrics(pool: Pool) {
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
