/**
 * Outages (issue 11, item 1): while ACME and EST clients keep enrolling, Postgres is
 * stopped (SIGSTOP of the postmaster and every backend), then killed (SIGKILL) and started
 * again; later Temporal refuses connections and then swallows them. Every answer is counted
 * by status: no 500, no request that hangs, every 503 carries Retry-After in the protocol's
 * own format (ACME problem document, EST plain text); /healthz names the part that is down;
 * each EST device ends with exactly one certificate for its key and each ACME order with a
 * certificate or an ACME problem; nothing is restarted but Postgres itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import acme from 'acme-client';
import { buildCsr, emptySans } from '../../src/pki/index.ts';
import {
  csrFor,
  eventually,
  newAccount,
  startAcmeStack,
  startHttp01Responder,
  type AcmeStack,
  type Http01Responder,
} from '../helpers/acme.ts';
import { startOwnPostgres, startTcpProxy, type OwnPostgres, type TcpProxy } from '../helpers/faults.ts';
import { temporalAddress } from '../helpers/stack.ts';

interface Answer {
  status: number | 'timeout' | 'network';
  /** How long the request took. */
  ms?: number;
  type?: string;
  retryAfter?: string;
  nonce?: boolean;
  body?: string;
}

const CLIENT_TIMEOUT_MS = 30_000;

describe('outages of Postgres and Temporal under load', () => {
  let pg: OwnPostgres;
  let proxy: TcpProxy;
  let stack: AcmeStack;
  let responder: Http01Responder;
  let rootPem: string;
  const estAnswers: Answer[] = [];
  const acmeAnswers: Answer[] = [];
  /** When ACME orders ended with a certificate. */
  const acmeIssuedAt: number[] = [];
  const password = 'outage test password';

  before(async () => {
    pg = await startOwnPostgres();
    proxy = await startTcpProxy(temporalAddress());
    stack = await startAcmeStack({
      env: { DATABASE_URL: pg.url, TEMPORAL_ADDRESS: proxy.address, CERTFLOW_EST_WAIT_SECONDS: '5' },
      config: { issuance: { faultRetryInitialSeconds: 1, faultRetryMaxSeconds: 4 } },
    });
    rootPem = stack.rootPem;
    responder = await startHttp01Responder(stack.http01Port);
    const r = await stack.cf.cli(['est-client', 'add', '--name', 'loader', '--password', password]);
    assert.equal(r.code, 0, r.stderr);
    // Count every ACME answer at the transport: acme-client's own interceptor retries 503s
    // (after Retry-After), so interceptors would see only the last answer.
    const { default: axios } = await import('axios');
    const transport = axios.getAdapter(acme.axios.defaults.adapter);
    acme.axios.defaults.adapter = async (config) => {
      const started = Date.now();
      try {
        const res = await transport(config);
        acmeAnswers.push({ ...acmeAnswer(res.status, res.headers as Record<string, unknown>, res.data), ms: Date.now() - started });
        return res;
      } catch (e) {
        // Statuses refused by validateStatus come back as errors with the response.
        const err = e as { code?: string; response?: { status: number; headers: Record<string, unknown>; data: unknown } };
        if (err.response)
          acmeAnswers.push({ ...acmeAnswer(err.response.status, err.response.headers, err.response.data), ms: Date.now() - started });
        else
          acmeAnswers.push({
            status: err.code === 'ECONNABORTED' || err.code === 'ETIMEDOUT' ? 'timeout' : 'network',
            body: String(err.code),
          });
        throw e;
      }
    };
    acme.axios.defaults.timeout = CLIENT_TIMEOUT_MS;
  });
  after(async () => {
    await responder?.close();
    if (process.env.CERTFLOW_TEST_KEEP) return;
    await stack?.stop();
    await proxy?.close();
    await pg?.stop();
  });

  function acmeAnswer(status: number, headers: Record<string, unknown>, data: unknown): Answer {
    let d: unknown = data;
    if (typeof data === 'string' && String(headers['content-type']).includes('json')) {
      try {
        d = JSON.parse(data);
      } catch {
        d = undefined;
      }
    }
    return {
      status,
      type: typeof d === 'object' && d ? (d as { type?: string }).type : undefined,
      retryAfter: headers['retry-after'] as string | undefined,
      nonce: Boolean(headers['replay-nonce']),
    };
  }

  /** One EST POST, as a device would send it; never throws. */
  function estPost(body: string): Promise<Answer & { cert?: string }> {
    const started = Date.now();
    return new Promise((resolve) => {
      const req = httpsRequest(
        `https://localhost:${stack.cf.httpsPort}/.well-known/est/simpleenroll`,
        {
          method: 'POST',
          ca: rootPem,
          agent: false,
          headers: { 'Content-Type': 'application/pkcs10', Authorization: `Basic ${Buffer.from(`loader:${password}`).toString('base64')}` },
          timeout: CLIENT_TIMEOUT_MS,
        },
        (res) => {
          let text = '';
          res.setEncoding('latin1');
          res.on('data', (c: string) => (text += c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              type: String(res.headers['content-type'] ?? ''),
              retryAfter: res.headers['retry-after'] as string | undefined,
              body: text,
              ms: Date.now() - started,
              cert: res.statusCode === 200 ? text : undefined,
            }),
          );
        },
      );
      req.on('timeout', () => {
        req.destroy();
        resolve({ status: 'timeout' });
      });
      req.on('error', () => resolve({ status: 'network' }));
      req.end(body);
    });
  }

  /**
   * A device that enrolls one key: re-sends the same CSR (RFC 7030 4.2.3) after 202 and
   * 503 until it has its certificate or the deadline passes.
   */
  async function enrollDevice(name: string, deadline: number): Promise<{ key: KeyObject; cert?: string }> {
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const csr = Buffer.from(buildCsr({ subject: `CN=${name}`, sans: emptySans(), privateKey: key })).toString('base64');
    while (Date.now() < deadline) {
      const a = await estPost(csr);
      estAnswers.push({ ...a, body: a.status === 200 ? undefined : a.body });
      if (a.cert) return { key, cert: a.cert };
      await sleep(a.status === 202 || a.status === 503 ? 500 : 2000);
    }
    return { key };
  }

  /** Load of `devices` EST loops and `orders` ACME loops until `stop()` resolves. */
  function startLoad(tag: string, opts: { est: number; acme: number }) {
    let stopping = false;
    const est: Array<Promise<Array<{ key: KeyObject; cert?: string }>>> = [];
    const orders: Array<Promise<Array<{ ok: boolean; error?: string }>>> = [];
    for (let i = 0; i < opts.est; i++) {
      est.push(
        (async () => {
          const out = [];
          for (let n = 0; !stopping; n++) out.push(await enrollDevice(`${tag}-est-${i}-${n}`, Date.now() + 120_000));
          return out;
        })(),
      );
    }
    for (let i = 0; i < opts.acme; i++) {
      orders.push(
        (async () => {
          const { client } = await newAccount(stack.directoryUrl());
          const out: Array<{ ok: boolean; error?: string }> = [];
          for (let n = 0; !stopping; n++) {
            const name = `${tag}-${i}-${n}.outage.test`;
            try {
              await issueOne(client, name);
              acmeIssuedAt.push(Date.now());
              out.push({ ok: true });
            } catch (e) {
              out.push({ ok: false, error: (e as Error).message });
              await sleep(1000);
            }
          }
          return out;
        })(),
      );
    }
    return {
      async stop() {
        stopping = true;
        return { est: (await Promise.all(est)).flat(), acme: (await Promise.all(orders)).flat() };
      },
    };
  }

  async function issueOne(client: acme.Client, name: string): Promise<void> {
    const order = await client.createOrder({ identifiers: [{ type: 'dns', value: name }] });
    const [authz] = await client.getAuthorizations(order);
    const challenge = authz!.challenges.find((c) => c.type === 'http-01')!;
    responder.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(authz!);
    const { csr } = await csrFor([name]);
    const finalized = await client.finalizeOrder(order, csr);
    const valid = await client.waitForValidStatus({ ...finalized, url: order.url });
    const pem = await client.getCertificate({ ...order, ...(valid as object) } as acme.Order);
    assert.match(pem, /BEGIN CERTIFICATE/);
  }

  async function healthz(): Promise<{ status: number; body: { down?: string[]; checks?: Record<string, string> } }> {
    const r = await fetch(`http://127.0.0.1:${stack.cf.httpPort}/healthz`, { signal: AbortSignal.timeout(10_000) });
    return { status: r.status, body: (await r.json()) as never };
  }

  /** Every answer in a protocol's format; no 500, no timeout; every 503 with Retry-After. */
  function checkAnswers(): Record<string, unknown> {
    const count = (answers: Answer[]) =>
      answers.reduce<Record<string, number>>((m, a) => ({ ...m, [String(a.status)]: (m[String(a.status)] ?? 0) + 1 }), {});
    const slowest = (answers: Answer[]) => Math.max(0, ...answers.map((a) => a.ms ?? 0));
    const summary = {
      est: count(estAnswers),
      acme: count(acmeAnswers),
      slowestMs: { est: slowest(estAnswers), acme: slowest(acmeAnswers) },
    };
    for (const a of estAnswers) {
      assert.ok(typeof a.status === 'number', `EST request without an answer (${a.status}): ${JSON.stringify(summary)}`);
      assert.ok([200, 202, 503].includes(a.status), `EST answered ${a.status}: ${a.body} ${JSON.stringify(summary)}`);
      if (a.status === 503) {
        assert.ok(a.retryAfter && Number(a.retryAfter) > 0, `EST 503 without Retry-After: ${a.body}`);
        assert.match(a.type!, /^text\/plain/);
      }
    }
    for (const a of acmeAnswers) {
      assert.ok(typeof a.status === 'number', `ACME request without an answer (${a.status}): ${JSON.stringify(summary)}`);
      assert.ok(a.status < 500 || a.status === 503, `ACME answered ${a.status} (${a.type}): ${JSON.stringify(summary)}`);
      if (a.status >= 400) assert.match(a.type ?? '', /^urn:ietf:params:acme:error:/, `ACME error ${a.status} without a problem document`);
      if (a.status === 503) {
        assert.equal(a.type, 'urn:ietf:params:acme:error:serverInternal');
        assert.ok(a.retryAfter && Number(a.retryAfter) > 0, 'ACME 503 without Retry-After');
        // Nonces are HMACs under a key the server has in memory: they can be made without the database.
        assert.ok(a.nonce, 'ACME 503 without a Replay-Nonce');
      }
    }
    return summary;
  }

  async function checkOutcome(result: {
    est: Array<{ key: KeyObject; cert?: string }>;
    acme: Array<{ ok: boolean; error?: string }>;
  }): Promise<void> {
    for (const d of result.est) {
      assert.ok(d.cert, 'an EST device got no certificate');
      const der = Buffer.from(d.cert!.replace(/\s+/g, ''), 'base64');
      assert.ok(der.length > 100);
    }
    for (const o of result.acme) {
      if (!o.ok)
        assert.doesNotMatch(
          o.error ?? '',
          /timeout|socket hang up|ECONNRESET|ECONNREFUSED/i,
          `an ACME order ended without a certificate or a problem: ${o.error}`,
        );
    }
  }

  it('Postgres stopped (SIGSTOP), then killed (SIGKILL) and restarted: 503s while it is down, then issuance goes on', async (t) => {
    const load = startLoad('pg', { est: 3, acme: 2 });
    await eventually(
      'first certificates under load',
      120_000,
      async () => (estAnswers.some((a) => a.status === 200) ? true : undefined),
      500,
    );
    pg.freeze();
    const frozenAt = Date.now();
    const health = await eventually('healthz naming postgres', 30_000, async () => {
      const h = await healthz();
      return h.status === 503 && h.body.down?.includes('postgres') ? h : undefined;
    });
    assert.ok(!health.body.down!.includes('temporal'), JSON.stringify(health.body));
    await sleep(Math.max(0, 8000 - (Date.now() - frozenAt)));
    await pg.kill();
    await sleep(3000);
    const duringOutage = estAnswers.length;
    await pg.restart();
    const restartedAt = Date.now();
    await eventually('healthz ok again', 60_000, async () => ((await healthz()).status === 200 ? true : undefined), 500);
    await eventually(
      'EST certificates after the restart',
      120_000,
      async () => (estAnswers.slice(duringOutage).some((a) => a.status === 200) ? true : undefined),
      500,
    ).catch((e: Error) => {
      const after = estAnswers.slice(duringOutage);
      throw new Error(
        `${e.message}; answers since: ${JSON.stringify(after.slice(-5).map((a) => [a.status, a.body?.slice(0, 200)]))}; home ${stack.cf.home}`,
      );
    });
    await eventually(
      'an ACME order issued after the restart',
      120_000,
      async () => (acmeIssuedAt.some((t) => t > restartedAt) ? true : undefined),
      500,
    );
    const result = await load.stop();
    assert.ok(
      estAnswers.some((a) => a.status === 503),
      'no 503 was seen while Postgres was down',
    );
    t.diagnostic(
      `answers by status: ${JSON.stringify(checkAnswers())}; ACME nonces on 503: ${acmeAnswers.filter((a) => a.status === 503 && a.nonce).length}`,
    );
    await checkOutcome(result);
    t.diagnostic(
      `ACME orders: ${result.acme.filter((o) => o.ok).length} issued, refused: ${JSON.stringify(result.acme.filter((o) => !o.ok).map((o) => o.error))}`,
    );
  });

  it('Temporal refusing, then swallowing connections: 503s (never a hanging request), then issuance goes on', async (t) => {
    estAnswers.length = 0;
    acmeAnswers.length = 0;
    const load = startLoad('tp', { est: 3, acme: 1 });
    await eventually('certificates under load', 120_000, async () => (estAnswers.some((a) => a.status === 200) ? true : undefined), 500);
    await proxy.set('refuse');
    const health = await eventually('healthz naming temporal', 30_000, async () => {
      const h = await healthz();
      return h.status === 503 && h.body.down?.includes('temporal') ? h : undefined;
    });
    assert.ok(!health.body.down!.includes('postgres'), JSON.stringify(health.body));
    await sleep(6000);
    await proxy.set('blackhole');
    await sleep(8000);
    const duringOutage = estAnswers.length;
    await proxy.set('forward');
    await eventually(
      'EST certificates after Temporal is back',
      180_000,
      async () => (estAnswers.slice(duringOutage).some((a) => a.status === 200) ? true : undefined),
      500,
    );
    const result = await load.stop();
    t.diagnostic(`answers by status: ${JSON.stringify(checkAnswers())}`);
    await checkOutcome(result);
    assert.equal((await healthz()).status, 200);
  });

  it('leaves exactly one certificate per enrollment and per order', async () => {
    const r = await fetch(`http://127.0.0.1:${stack.cf.httpPort}/metrics`);
    assert.equal(r.status, 200);
    const pool = new (await import('pg')).default.Pool({ connectionString: pg.url });
    try {
      const { rows } = await pool.query<{ request_id: string; n: string }>(
        "SELECT request_id, count(*) AS n FROM certificates WHERE status <> 'signing' GROUP BY request_id HAVING count(*) > 1",
      );
      assert.deepEqual(rows, []);
      const { rows: est } = await pool.query<{ cert_der: Buffer }>(
        "SELECT cert_der FROM certificates WHERE protocol = 'est' AND cert_der IS NOT NULL",
      );
      for (const row of est) new X509Certificate(row.cert_der); // every stored certificate parses
      assert.ok(est.length > 0);
    } finally {
      await pool.end();
    }
  });
});
