/**
 * deploy/prometheus/alerts.yml and deploy/grafana/certflow.json against what certflow
 * exports: promtool checks the rules and runs their unit tests (alerts.test.yml: each alert
 * fires on the series it is about and stays quiet otherwise), and every metric either file
 * names is one certflow's /metrics registry has — collected from a real database, so every
 * gauge's query runs too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/index.ts';
import { createMetrics } from '../../src/http/metrics.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';
import { PROMTOOL, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const rulesFile = join(repo, 'deploy', 'prometheus', 'alerts.yml');
const rulesTests = join(repo, 'deploy', 'prometheus', 'alerts.test.yml');
const dashboardFile = join(repo, 'deploy', 'grafana', 'certflow.json');

/** Prometheus's own series that rules may use besides certflow's. */
const PROMETHEUS_SERIES = new Set(['up']);

/** Metric names in a PromQL expression: identifiers followed by a selector, a range or an operator — not functions, labels or keywords. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutLabels = withoutStrings
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
  return [...withoutLabels.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1]!)
    .filter((n) => !/^(sum|min|max|avg|count|and|or|unless|bool|offset|time|le|inf|nan)$/i.test(n) && !/^\d/.test(n))
    .filter((n) => n.includes('_') || PROMETHEUS_SERIES.has(n));
}

describe('alert rules and dashboard', () => {
  let db: TestDatabase;
  let exported: Set<string>;

  before(async () => {
    db = await testDatabase();
    const metrics = createMetrics(db.pool, loadConfig({ CERTFLOW_HOME: '/nonexistent' }).stuck);
    const json = await metrics.registry.getMetricsAsJSON();
    exported = new Set(
      json.flatMap((m) =>
        m.type === ('histogram' as never) ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
      ),
    );
  });
  after(async () => {
    await db?.drop();
  });

  it('promtool: the rules are valid and their unit tests pass', { skip: toolsSkip(PROMTOOL) }, async () => {
    const check = await runProgram(requireTool(PROMTOOL), ['check', 'rules', rulesFile]);
    assert.equal(check.code, 0, check.stdout + check.stderr);
    const tests = await runProgram(requireTool(PROMTOOL), ['test', 'rules', rulesTests]);
    assert.equal(tests.code, 0, tests.stdout + tests.stderr);
    // Every alert has a unit test.
    const tested = new Set(
      (parse(readFileSync(rulesTests, 'utf8')).tests as Array<{ alert_rule_test?: Array<{ alertname: string }> }>).flatMap((t) =>
        (t.alert_rule_test ?? []).map((a) => a.alertname),
      ),
    );
    const rules = (parse(readFileSync(rulesFile, 'utf8')).groups as Array<{ rules: Array<{ alert: string }> }>).flatMap((g) =>
      g.rules.map((r) => r.alert),
    );
    const untested = rules.filter((r) => !tested.has(r));
    assert.deepEqual(untested, [], 'alerts without a unit test');
  });

  it('every rule names only metrics certflow exports, with a severity and a summary', () => {
    const groups = parse(readFileSync(rulesFile, 'utf8')).groups as Array<{
      rules: Array<{ alert: string; expr: string; labels?: { severity?: string }; annotations?: { summary?: string } }>;
    }>;
    const rules = groups.flatMap((g) => g.rules);
    assert.ok(rules.length >= 10);
    for (const r of rules) {
      const names = metricNames(r.expr);
      assert.ok(names.length, `${r.alert}: no metric in ${r.expr}`);
      for (const n of names) assert.ok(exported.has(n) || PROMETHEUS_SERIES.has(n), `${r.alert}: certflow exports no metric ${n}`);
      assert.match(r.labels?.severity ?? '', /^(critical|warning|info)$/, r.alert);
      assert.ok(r.annotations?.summary, r.alert);
    }
    // What operators alert on, per issue 20: each has a rule.
    const used = new Set(rules.flatMap((r) => metricNames(r.expr)));
    for (const m of [
      'certflow_requests_stuck',
      'certflow_ca_not_after_timestamp_seconds',
      'certflow_crl_next_update_timestamp_seconds',
      'certflow_ocsp_certificates_without_response',
      'certflow_notification_deliveries',
    ])
      assert.ok(used.has(m), `no alert on ${m}`);
  });

  it('the Grafana dashboard is valid JSON whose every query names metrics certflow exports', () => {
    const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as {
      uid: string;
      panels: Array<{ title: string; type: string; targets?: Array<{ expr: string }> }>;
    };
    assert.equal(dashboard.uid, 'certflow');
    const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    assert.ok(queries.length >= 10);
    for (const q of queries) {
      const names = metricNames(q.expr);
      assert.ok(names.length, `${q.panel}: no metric in ${q.expr}`);
      for (const n of names) assert.ok(exported.has(n), `${q.panel}: certflow exports no metric ${n}`);
    }
    // certflow_requests is in the registry: the query that fills it ran against a real schema.
    assert.ok(exported.has('certflow_requests') && exported.has('certflow_notification_deliveries'));
  });

  it('the name check catches a metric certflow does not export', () => {
    assert.deepEqual(metricNames('max by (ca) (certflow_crl_expiry_seconds{job="x"}) - time() < 86400'), ['certflow_crl_expiry_seconds']);
    assert.ok(!exported.has('certflow_crl_expiry_seconds'));
  });
});
