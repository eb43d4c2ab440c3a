/**
 * The production topology, as `certflow cluster` runs it: its own embedded Postgres, a real
 * Temporal server on it (4 history shards), 2 workers and 2 servers behind a round-robin
 * load balancer. ACME orders (acme-client) and EST enrollments run through both servers
 * while the test SIGKILLs a worker, a server, the Temporal server and Postgres, one after
 * the other, each while requests are in flight. Every request ends with exactly one
 * certificate; every error a client saw on the way is a clean, retryable one; a nonce from
 * one server is accepted once by the other. Temporal's frontend admits only certflow's
 * cluster CA (mTLS); the Temporal UI is served by the console after login (chromium); a
 * renewed client certificate makes the cluster restart its processes one at a time.
 *
 * Needs the Temporal server and UI server built (`npm run cluster -- build`, which .ci/run
 * does where Go is installed); without Go and without a build the suite is skipped, saying so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import acme from 'acme-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { exportJWK, FlattenedSign } from 'jose';
import pg from 'pg';
import { freePort, freePortRange } from '../../src/core/net.ts';
import { embeddedDatabaseUrl } from '../../src/db/embedded.ts';
import { buildCsr, decodeBase64Body, parseCertsOnly } from '../../src/pki/index.ts';
import { clusterClientTls, clusterTlsFiles } from '../../src/config/index.ts';
import { resolveTemporalCli } from '../../src/temporal/cli.ts';
import { findTemporalServer, findTemporalUi, TEMPORAL_SERVER_VERSION } from '../../src/temporal/server-build.ts';
import { temporalTlsOptions } from '../../src/temporal/tls.ts';
import {
  ACME_ERROR,
  driveOrder,
  eventually,
  fetchAcme,
  freshNonce,
  newAccount,
  startHttp01Responder,
  trustRoot,
  type AcmeClient,
  type Http01Responder,
} from '../helpers/acme.ts';
import { startBalancer, type Balancer } from '../helpers/balancer.ts';
import { alive, certflowBin, runTool, startSupervised, type SupervisedStack } from '../helpers/certflow.ts';
import { startChalltestsrv, type ChallTestSrv } from '../helpers/challtestsrv.ts';
import { CHALLTESTSRV, requireTool, toolsSkip } from '../helpers/tools.ts';
import { artifactsDir, CHROMIUM, chromiumArgs } from '../helpers/admin.ts';
import { consoleLogin, cspViolations, followWorkflowLink, watchErrors } from '../helpers/temporal-ui.ts';
import { temporalBuildDir, temporalBuildSkip } from '../helpers/temporal.ts';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const serverDir = temporalBuildDir;
const built = Boolean((await findTemporalServer(serverDir)) && (await findTemporalUi(serverDir)));
const clusterSkip = toolsSkip(CHALLTESTSRV) || (await temporalBuildSkip(built, `the Temporal server ${TEMPORAL_SERVER_VERSION}`));

/** Requests per client loop at most; the loops stop once the faults are over. */
const MAX_REQUESTS_PER_CLIENT = 60;
/** Pause of an EST device between two enrollments (they are fast: keep some load for the end). */
const EST_PAUSE_MS = 1000;
const CLIENTS = { acme: 3, est: 3 };
const EST_PASSWORD = 'cluster test password';

/** The HTTP answers clients got, by status and (ACME) problem type: every one must be clean. */
class Answers {
  readonly seen = new Map<string, number>();
  readonly unclean: string[] = [];
  record(key: string, clean: boolean, detail: string): void {
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
    if (!clean) this.unclean.push(`${key}: ${detail}`);
  }
  summary(): string {
    return [...this.seen].map(([k, n]) => `${k} ×${n}`).join(', ');
  }
}

/** Socket-level failures a client sees while a server or the balancer's backend is killed. */
const TRANSPORT_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ECONNABORTED', 'ERR_SOCKET_CONNECTION_TIMEOUT']);
const isTransportError = (e: { code?: string; message?: string }) =>
  TRANSPORT_ERRORS.has(e.code ?? '') || /socket hang up|Client network socket disconnected/.test(e.message ?? '');

describe('certflow cluster: Temporal on Postgres, 2 servers, 2 workers, failures under load', { skip: clusterSkip }, () => {
  let home: string;
  let cluster: SupervisedStack | undefined;
  let cts: ChallTestSrv | undefined;
  let responder: Http01Responder | undefined;
  let balancer: Balancer | undefined;
  let db: pg.Pool | undefined;
  let env: NodeJS.ProcessEnv;
  let httpsPorts: [number, number];
  let temporalAddress: string;
  let failed = false;

  const pidOf = (name: string) => Number(readFileSync(join(home, 'run', `${name}.pid`), 'utf8'));
  /** The cluster's own client side of Temporal's mTLS. */
  const clusterTls = () => temporalTlsOptions(clusterClientTls(clusterTlsFiles(join(home, 'temporal-tls'))));
  const lb = (path: string) => `https://localhost:${balancer!.port}${path}`;

  before(async () => {
    if (!built)
      throw new Error(
        `Go is installed but the Temporal server ${TEMPORAL_SERVER_VERSION} is not built in ${serverDir}: .ci/run runs \`npm run cluster -- build\` first`,
      );
    home = await mkdtemp(join(tmpdir(), 'certflow-cluster-'));
    await chmod(home, 0o755); // the embedded Postgres runs as user "postgres" and must reach its data dir
    cts = await startChalltestsrv();
    const http01Port = await freePort();
    responder = await startHttp01Responder(http01Port);
    // Server 1: HTTPS, HTTP, admin on base..base+2; server 2 three ports higher (--port-step 3).
    const base = await freePortRange(6);
    httpsPorts = [base, base + 3];
    const temporalPort = await freePortRange(10, { below: 32768 }); // Temporal stores ports as smallint
    temporalAddress = `127.0.0.1:${temporalPort}`;
    env = {
      ...process.env,
      CERTFLOW_HOME: home,
      CERTFLOW_BIND: '127.0.0.1',
      CERTFLOW_HTTPS_PORT: String(base),
      CERTFLOW_HTTP_PORT: String(base + 1),
      CERTFLOW_ADMIN_PORT: String(base + 2),
      CERTFLOW_POSTGRES_PORT: String(await freePort()),
      CERTFLOW_TEMPORAL_PORT: String(temporalPort),
      CERTFLOW_TEMPORAL_UI_PORT: String(await freePort()),
      CERTFLOW_TEMPORAL_SERVER_DIR: serverDir,
      CERTFLOW_KEY_PASSPHRASE: 'cluster-test-passphrase',
      CERTFLOW_HTTP01_PORT: String(http01Port),
      CERTFLOW_DNS_RESOLVER: cts.resolver,
      CERTFLOW_VALIDATION_ALLOW_LOOPBACK: '1',
      // The shared test servers must not leak into the cluster under test.
      DATABASE_URL: '',
      TEMPORAL_ADDRESS: '',
      CERTFLOW_TASK_QUEUE: '',
    };
    cluster = startSupervised(['cluster', '--port-step', '3'], env);
    await cluster.waitFor(/certflow cluster ready/, 400_000);
    trustRoot(readFileSync(join(home, 'ca', 'root.pem'), 'utf8'));
    balancer = await startBalancer(httpsPorts);
    db = new pg.Pool({ connectionString: embeddedDatabaseUrl({ home }, Number(env.CERTFLOW_POSTGRES_PORT)), max: 2 });
    db.on('error', () => {}); // Postgres is killed on purpose below
    const add = await runTool(
      process.execPath,
      [certflowBin, 'est-client', 'add', '--name', 'cluster-device', '--password', EST_PASSWORD],
      { env },
    );
    assert.equal(add.code, 0, add.stderr);
  });

  after(async () => {
    if (cluster && cluster.proc.exitCode === null) {
      cluster.proc.kill('SIGTERM');
      await new Promise((r) => cluster!.proc.once('exit', r));
    }
    await balancer?.close();
    await responder?.close();
    await cts?.stop();
    await db?.end().catch(() => {});
    if (failed)
      process.stderr.write(
        `cluster home (logs in logs/) kept: ${home}\n--- certflow cluster output (end) ---\n${cluster?.output().slice(-6000)}\n`,
      );
    else if (home) await rm(home, { recursive: true, force: true });
  });

  it('runs a Temporal server with 4 history shards on Postgres, 2 servers and 2 workers, with pid files', async () => {
    try {
      for (const name of ['postgres', 'temporal', 'temporal-ui', 'server-1', 'server-2', 'worker-1', 'worker-2', 'admin'])
        assert.ok(alive(pidOf(name)), `${name} running`);
      const connection = await Connection.connect({ address: temporalAddress, tls: clusterTls() });
      try {
        const info = await connection.workflowService.getClusterInfo({});
        assert.equal(info.historyShardCount, 4);
        // The ready line names the shards the cluster has, not those a config asked for.
        assert.match(cluster!.output(), /certflow cluster ready .*\(4 history shards on Postgres, mTLS\)/);
        // The store's name; the driver (pgx) is the config's pluginName, checked below.
        assert.equal(info.persistenceStore, 'postgres12');
        assert.equal(info.visibilityStore, 'postgres12');
        assert.equal(info.serverVersion, TEMPORAL_SERVER_VERSION.replace(/^v/, ''));
      } finally {
        await connection.close();
      }
      for (const port of httpsPorts) {
        const r = await fetchAcme(`https://localhost:${port}/healthz`);
        assert.equal(r.status, 200, r.text);
      }
      // `cluster setup` against the existing cluster's database: its config keeps the 4 shards
      // Temporal recorded, and the operator is told that 8 is not taken.
      const configFile = join(home, 'temporal', 'config.yaml');
      const setup = await runTool(
        process.execPath,
        [certflowBin, 'cluster', 'setup', '--history-shards', '8', '--port', temporalAddress.split(':')[1]!],
        { env },
      );
      assert.equal(setup.code, 0, setup.stderr);
      assert.match(
        setup.stdout + setup.stderr,
        /--history-shards 8 applies only to a new Temporal cluster: this one was created with 4 history shards/,
      );
      const config = readFileSync(configFile, 'utf8');
      assert.match(config, /^ {2}numHistoryShards: 4$/m);
      assert.equal(config.match(/^ {8}pluginName: "postgres12_pgx"$/gm)?.length, 2, 'both stores through pgx');
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  it("Temporal's frontend admits only the cluster CA's client certificate: no TLS, no certificate or a device certificate cannot start a workflow", async () => {
    try {
      const files = clusterTlsFiles(join(home, 'temporal-tls'));
      const ca = readFileSync(files.ca);
      // A clientAuth certificate of certflow's issuing CA, as any EST/CMP device gets one.
      const csr = join(home, 'intruder.csr');
      const made = await runTool('openssl', [
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        join(home, 'intruder.key'),
        '-subj',
        '/CN=intruder',
        '-out',
        csr,
      ]);
      assert.equal(made.code, 0, made.stderr);
      const issued = await runTool(process.execPath, [certflowBin, '--json', 'cert', 'issue', '--csr', csr, '--profile', 'device'], {
        env,
      });
      assert.equal(issued.code, 0, issued.stderr);
      const device = { crt: Buffer.from(JSON.parse(issued.stdout).certificate), key: readFileSync(join(home, 'intruder.key')) };
      assert.ok(
        new X509Certificate(device.crt).toLegacyObject().ext_key_usage?.includes('1.3.6.1.5.5.7.3.2'),
        'the device certificate has clientAuth',
      );

      const attempts: Array<[string, Parameters<typeof Connection.connect>[0]]> = [
        ['no TLS', { address: temporalAddress }],
        [
          'TLS without a client certificate',
          { address: temporalAddress, tls: { serverRootCACertificate: ca, serverNameOverride: 'localhost' } },
        ],
        [
          "a device certificate of certflow's issuing CA",
          { address: temporalAddress, tls: { serverRootCACertificate: ca, serverNameOverride: 'localhost', clientCertPair: device } },
        ],
      ];
      for (const [what, options] of attempts) {
        const attempt = async () => {
          const connection = await Connection.connect({ ...options, connectTimeout: 5000 });
          try {
            await new Client({ connection }).workflow.start('keyRecoveryWorkflow', {
              taskQueue: 'certflow',
              workflowId: `intruder-${what.replace(/\W+/g, '-')}`,
              args: [{ serial: '00', requester: 'intruder' }],
            });
          } finally {
            await connection.close();
          }
        };
        await assert.rejects(attempt, (e: Error) => !/already started/i.test(e.message), what);
      }
      // The temporal CLI without TLS, and the frontend's HTTP API without a client certificate.
      const cli = await resolveTemporalCli({ home: join(repo, '.certflow'), log: () => {} });
      const started = await runTool(cli, [
        'workflow',
        'start',
        '--address',
        temporalAddress,
        '--namespace',
        'default',
        '--task-queue',
        'certflow',
        '--type',
        'keyRecoveryWorkflow',
        '--workflow-id',
        'intruder-cli',
        '--command-timeout',
        '10s',
      ]);
      assert.notEqual(started.code, 0, `temporal workflow start without TLS: ${started.stdout}${started.stderr}`);
      const httpApi = `https://localhost:${Number(temporalAddress.split(':')[1]) + 8}/api/v1/namespaces/default/workflows`;
      const curl = await runTool('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', files.ca, httpApi]);
      assert.notEqual(curl.code, 0, `curl without a client certificate: HTTP ${curl.stdout}`);
      // The cluster's own certificate opens it, and nothing was started by the intruders.
      const connection = await Connection.connect({ address: temporalAddress, tls: clusterTls() });
      try {
        const { count } = await connection.workflowService.countWorkflowExecutions({
          namespace: 'default',
          query: "WorkflowId STARTS_WITH 'intruder'",
        });
        assert.equal(Number(count), 0);
      } finally {
        await connection.close();
      }
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  it('accepts a nonce from one server once at the other, and shares accounts between them', async () => {
    try {
      const directories = await Promise.all(
        httpsPorts.map(async (port) => (await fetchAcme(`https://localhost:${port}/acme/directory`)).data as Record<string, string>),
      );
      const [d1, d2] = directories as [Record<string, string>, Record<string, string>];
      const key = createPrivateKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const jwk = await exportJWK(createPublicKey(key));
      const newAccount = async (url: string, nonce: string) => {
        const payload = new TextEncoder().encode(JSON.stringify({ termsOfServiceAgreed: true, contact: ['mailto:cluster@example.test'] }));
        const jws = await new FlattenedSign(payload).setProtectedHeader({ alg: 'ES256', jwk, nonce, url }).sign(key);
        return fetchAcme(url, { method: 'POST', body: JSON.stringify(jws), headers: { 'Content-Type': 'application/jose+json' } });
      };
      const nonce = await freshNonce(d1.newNonce!);
      const created = await newAccount(d2.newAccount!, nonce);
      assert.equal(created.status, 201, created.text);
      const replayed = await newAccount(d2.newAccount!, nonce);
      assert.equal(replayed.status, 400, replayed.text);
      assert.equal(replayed.data.type, ACME_ERROR('badNonce'));
      const back = await newAccount(d1.newAccount!, nonce);
      assert.equal(back.status, 400, back.text);
      assert.equal(back.data.type, ACME_ERROR('badNonce'));
      // The account made at server 2 is the one server 1 finds for the key.
      const atServer1 = new acme.Client({
        directoryUrl: `https://localhost:${httpsPorts[0]}/acme/directory`,
        accountKey: key.export({ type: 'pkcs8', format: 'pem' }),
      });
      const found = (await atServer1.createAccount({ onlyReturnExisting: true })) as { status?: string };
      assert.equal(found.status, 'valid');
      assert.equal(new URL(atServer1.getAccountUrl()).pathname, new URL(created.headers.location!).pathname);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  it('ACME and EST through both servers survive SIGKILL of a worker, a server, Temporal and Postgres: one certificate each', async (t) => {
    try {
      await loadWithFaults(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  it(
    "serves the Temporal UI through the console only after login: an ACME order's workflow link shows its history (chromium)",
    { skip: toolsSkip(CHROMIUM) },
    async () => {
      const errors: string[] = [];
      const base = `https://localhost:${env.CERTFLOW_ADMIN_PORT}`;
      const rootPem = join(home, 'ca', 'root.pem');
      let browser: Browser | undefined;
      let consolePage: Page | undefined;
      try {
        // Without a session: curl gets the login page, the UI's API 401; the UI server itself
        // listens on loopback only.
        const page = await runTool('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code} %{redirect_url}',
          '--cacert',
          rootPem,
          `${base}/temporal/`,
        ]);
        assert.match(page.stdout, /^302 .*\/login\?next=%2Ftemporal%2F$/);
        const settings = await runTool('curl', [
          '-s',
          '-o',
          '/dev/null',
          '-w',
          '%{http_code}',
          '--cacert',
          rootPem,
          `${base}/temporal/api/v1/settings`,
        ]);
        assert.equal(settings.stdout, '401');
        const uiPort = Number(env.CERTFLOW_TEMPORAL_UI_PORT);
        assert.match(readFileSync(join(home, 'temporal-ui', 'config', 'certflow.yaml'), 'utf8'), /^host: "127\.0\.0\.1"$/m);
        assert.equal((await fetch(`http://127.0.0.1:${uiPort}/temporal/healthz`)).status, 200, 'the UI server is on loopback');

        const password = 'cluster ui password';
        const add = await runTool(
          process.execPath,
          [certflowBin, 'users', 'add', '--name', 'ui-officer', '--role', 'officer', '--password', password],
          { env },
        );
        assert.equal(add.code, 0, add.stderr);
        browser = await chromium.launch({
          executablePath: requireTool(CHROMIUM),
          headless: true,
          args: chromiumArgs(readFileSync(join(home, 'tls', 'admin.pem'), 'utf8')),
        });
        const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
        const console = await context.newPage();
        consolePage = console;
        watchErrors(console, errors);
        await console.goto(`${base}/requests`);
        await consoleLogin(console, 'ui-officer', password, (u) => u.pathname === '/requests');
        // An ACME order of its own, its page in the console, its workflow link.
        const { client } = await newAccount(lb('/acme/directory'));
        const driven = await driveOrder(client, responder!, 'ui.clusterui.test', Date.now() + 120_000);
        const orderId = driven.order.url.split('/').at(-1)!;
        await console.goto(`${base}/requests`);
        await Promise.all([console.waitForURL(/\/requests\/orders\//), console.click(`#orders a:text-is("${orderId}")`)]);
        const link = console.locator('dl a.workflow');
        const workflowId = (await link.textContent())!.trim();
        assert.match(workflowId, /^acme-order-/);
        await followWorkflowLink(
          context,
          link,
          { workflowId, workflowType: 'acmeOrderWorkflow', screenshot: 'cluster-temporal-ui-history' },
          errors,
        );
        assert.deepEqual(cspViolations(errors), []);
      } catch (e) {
        failed = true;
        if (consolePage) {
          await consolePage
            .screenshot({ path: join(artifactsDir('console'), 'cluster-console-failed.png'), fullPage: true })
            .catch(() => {});
          process.stderr.write(`console page at ${consolePage.url()} when the test failed (screenshot cluster-console-failed.png)\n`);
        }
        throw e;
      } finally {
        await browser?.close();
      }
    },
  );

  it("renews Temporal's client certificate while it runs: certflow's processes restart one at a time and keep issuing", async () => {
    try {
      const files = clusterTlsFiles(join(home, 'temporal-tls'));
      const before = readFileSync(files.clientCert, 'utf8');
      const names = ['worker-1', 'worker-2', 'server-1', 'server-2', 'admin'];
      const pids = new Map(names.map((n) => [n, pidOf(n)]));
      const from = cluster!.output().length;
      const renewed = await runTool(process.execPath, [certflowBin, 'cluster', 'certs', '--force'], { env });
      assert.equal(renewed.code, 0, renewed.stderr);
      assert.notEqual(readFileSync(files.clientCert, 'utf8'), before, 'a new client certificate');
      await cluster!.waitFor(/use the renewed Temporal client certificate/, 300_000, from);
      for (const n of names) assert.notEqual(pidOf(n), pids.get(n), `${n} was restarted`);
      // The restarted processes reach Temporal with the new certificate: an order is issued.
      const { client } = await newAccount(lb('/acme/directory'));
      const order = await driveOrder(client, responder!, 'after-renewal.clusterui.test', Date.now() + 120_000);
      assert.match(order.certPem, /BEGIN CERTIFICATE/);
    } catch (e) {
      failed = true;
      throw e;
    }
  });

  async function loadWithFaults(t: { diagnostic(msg: string): void }): Promise<void> {
    const answers = new Answers();
    const record = (status: number, type: string | undefined, retryAfter: unknown) => {
      const clean =
        (status === 503 && retryAfter !== undefined) ||
        (status === 400 && type === ACME_ERROR('badNonce')) ||
        // A finalize retried after a crash that had applied it: the client re-reads the order.
        (status === 403 && type === ACME_ERROR('orderNotReady'));
      answers.record(`acme ${status} ${type ?? ''}`.trim(), clean, JSON.stringify({ type, retryAfter }));
    };
    // acme-client retries 5xx answers inside its own response interceptor: to see every answer
    // before that, this handler goes first in axios's (internal, stable in 1.x) handler list.
    // acme-client makes every response a rejection (validateStatus), successes included.
    const handlers = (acme.axios.interceptors.response as unknown as { handlers: unknown[] }).handlers;
    const observer = {
      fulfilled: (res: unknown) => res,
      rejected: (err: {
        response?: { status: number; data?: { type?: string }; headers?: Record<string, unknown> };
        code?: string;
        message?: string;
      }) => {
        if (!err.response) answers.record(`acme transport ${err.code ?? err.message}`, isTransportError(err), String(err.message));
        else if (err.response.status >= 400) record(err.response.status, err.response.data?.type, err.response.headers?.['retry-after']);
        throw err;
      },
      synchronous: false,
      runWhen: null,
    };
    handlers.unshift(observer);
    const accounts: AcmeClient[] = [];
    for (let i = 0; i < CLIENTS.acme; i++) accounts.push((await newAccount(lb('/acme/directory'))).client);

    let faultsDone = false;
    const deadline = Date.now() + 300_000;
    const completed = { acme: 0, est: 0 };
    const acmeLoop = async (c: number) => {
      const done = [];
      for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && (!faultsDone || i === 0); i++) {
        const name = `a${String(c).padStart(2, '0')}-${String(i).padStart(2, '0')}.cluster.test`;
        done.push(await driveOrder(accounts[c]!, responder!, name, deadline));
        completed.acme++;
      }
      return done;
    };
    const estLoop = async (c: number) => {
      const done: Array<{ cn: string; cert: X509Certificate; key: ReturnType<typeof generateKeyPairSync>['publicKey'] }> = [];
      for (let i = 0; i < MAX_REQUESTS_PER_CLIENT && (!faultsDone || i === 0); i++) {
        const cn = `e${String(c).padStart(2, '0')}-${String(i).padStart(2, '0')}.cluster.test`;
        const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const csr = Buffer.from(buildCsr({ subject: `CN=${cn}`, privateKey })).toString('base64');
        const cert = await enrollUntilIssued(csr, cn, deadline, answers);
        done.push({ cn, cert, key: publicKey });
        completed.est++;
        await sleep(EST_PAUSE_MS);
      }
      return done;
    };
    const acmeRuns = Promise.all(Array.from({ length: CLIENTS.acme }, (_, c) => acmeLoop(c)));
    const estRuns = Promise.all(Array.from({ length: CLIENTS.est }, (_, c) => estLoop(c)));
    const settled = Promise.allSettled([acmeRuns, estRuns]);

    // The faults, one after the other, each once requests are flowing again.
    const started = Date.now();
    const log: string[] = [];
    const at = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const progress = async (atLeast: number) => {
      const target = completed.acme + completed.est + atLeast;
      while (completed.acme + completed.est < target) {
        if (Date.now() > deadline) throw new Error(`no progress: ${completed.acme} ACME orders and ${completed.est} EST enrollments done`);
        await sleep(100);
      }
    };
    for (const name of ['worker-1', 'server-1', 'temporal', 'postgres']) {
      await progress(2);
      const pid = pidOf(name);
      const from = cluster!.output().length;
      process.kill(pid, 'SIGKILL');
      log.push(`${at()}: SIGKILL ${name} (pid ${pid}) with ${completed.acme}+${completed.est} requests done`);
      await cluster!.waitFor(new RegExp(`${name} restarted \\(pid \\d+\\)`), 120_000, from);
      log.push(`${at()}: ${name} restarted`);
    }
    await progress(2);
    faultsDone = true;
    t.diagnostic(log.join('; '));

    const [acmeResult, estResult] = await settled;
    handlers.splice(handlers.indexOf(observer), 1);
    if (acmeResult.status === 'rejected') throw acmeResult.reason;
    if (estResult.status === 'rejected') throw estResult.reason;
    const orders = acmeResult.value.flat();
    const enrollments = estResult.value.flat();
    const retried = orders.reduce((n, o) => n + o.retried.length, 0);
    const retriedKinds = [...new Set(orders.flatMap((o) => o.retried.map((r) => r.replace(/[a-z0-9_-]{16,}/gi, '…'))))];
    t.diagnostic(
      `${orders.length} ACME orders and ${enrollments.length} EST enrollments, all issued after ${at()}; ` +
        `answers other than success: ${answers.summary() || 'none'}; ${retried} ACME steps retried by the clients (${retriedKinds.slice(0, 6).join(' | ')}); ` +
        `balancer connections per server: ${balancer!.counts.join('/')}`,
    );
    assert.deepEqual(answers.unclean, [], 'every error a client saw is a clean, retryable one');
    assert.ok(
      balancer!.counts.every((n) => n > 0),
      'both servers served requests',
    );

    // Each client got its certificate for its name and key.
    for (const o of orders) {
      const leaf = new X509Certificate(acme.crypto.splitPemChain(o.certPem)[0]!);
      assert.equal(leaf.subjectAltName, `DNS:${o.name}`);
    }
    for (const e of enrollments) {
      assert.match(e.cert.subject, new RegExp(`CN=${e.cn.replace(/\./g, '\\.')}`));
      assert.ok(e.cert.publicKey.equals(e.key), `${e.cn}: the certificate is for the enrolled key`);
    }
    // Exactly one certificate per name: no retry, crash or restart issued a second one.
    const { rows } = await db!.query<{ subject: string; serials: string[]; protocols: string[] }>(
      `SELECT subject, array_agg(serial) AS serials, array_agg(protocol) AS protocols FROM certificates
        WHERE subject LIKE '%.cluster.test%' GROUP BY subject`,
    );
    const bySubject = new Map(rows.map((r) => [r.subject.replace(/^CN=/, ''), r]));
    const names = [...orders.map((o) => o.name), ...enrollments.map((e) => e.cn)];
    for (const name of names) assert.equal(bySubject.get(name)?.serials.length, 1, `${name}: ${JSON.stringify(bySubject.get(name))}`);
    assert.equal(
      rows.length,
      names.length,
      `certificates for names no client asked for: ${rows.map((r) => r.subject).filter((s) => !names.includes(s.replace(/^CN=/, '')))}`,
    );
    for (const e of enrollments) {
      const serial = e.cert.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, '');
      assert.equal(bySubject.get(e.cn)!.serials[0], serial, `${e.cn}: the stored certificate is the one the device got`);
    }
    assert.ok(orders.length >= CLIENTS.acme && enrollments.length >= CLIENTS.est);

    // certflow's search attributes work on Postgres visibility: Keyword and KeywordList
    // queries find the requests (visibility is written a moment later), a Text one is accepted.
    const connection = await Connection.connect({ address: temporalAddress, tls: clusterTls() });
    try {
      const count = async (query: string) =>
        Number((await connection.workflowService.countWorkflowExecutions({ namespace: 'default', query })).count);
      await eventually('visibility of the EST enrollments', 30_000, async () =>
        (await count("CertflowProtocol = 'est'")) >= enrollments.length ? true : undefined,
      );
      assert.ok((await count(`CertflowIdentifiers = 'dns:${orders[0]!.name}'`)) >= 1, 'an order is found by its identifier');
      // A Text query is accepted, and it filters: no request failed like this (an ignored filter would count them all).
      assert.equal(await count("CertflowLastError = 'nothing failed like this'"), 0);
    } finally {
      await connection.close();
    }
  }

  /**
   * An EST device: POSTs its CSR through the balancer until it gets the certificate. 202 and
   * 503 (with Retry-After) and broken connections make it wait and send the same CSR again,
   * which finds the same enrollment; any other answer is a failure.
   */
  async function enrollUntilIssued(csr: string, cn: string, deadline: number, answers: Answers): Promise<X509Certificate> {
    const auth = `Basic ${Buffer.from(`cluster-device:${EST_PASSWORD}`).toString('base64')}`;
    let last = '';
    while (Date.now() < deadline) {
      const r = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolveReq, rejectReq) => {
        const req = httpsRequest(
          lb('/.well-known/est/simpleenroll'),
          {
            method: 'POST',
            ca: readFileSync(join(home, 'ca', 'root.pem')),
            headers: { 'Content-Type': 'application/pkcs10', Authorization: auth },
            agent: false,
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolveReq({ status: res.statusCode ?? 0, headers: res.headers, body }));
            res.on('error', rejectReq);
          },
        );
        req.on('error', rejectReq);
        req.end(csr);
      }).catch((e: { code?: string; message?: string }) => {
        answers.record(`est transport ${e.code ?? e.message}`, isTransportError(e), String(e.message));
        return undefined;
      });
      if (r?.status === 200) return new X509Certificate(parseCertsOnly(decodeBase64Body(r.body))[0]!);
      if (r) {
        answers.record(
          `est ${r.status}`,
          (r.status === 202 || r.status === 503) && r.headers['retry-after'] !== undefined,
          `${cn}: ${r.body.slice(0, 200)}`,
        );
        last = `${r.status} ${r.body.slice(0, 200)}`;
        if (r.status !== 202 && r.status !== 503) throw new Error(`${cn}: EST answered ${last}`);
      }
      await sleep(500);
    }
    throw new Error(`${cn}: no certificate before the deadline (last answer: ${last})`);
  }
});
