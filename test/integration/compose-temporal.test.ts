/**
 * docker-compose.yml's Temporal half, run without Docker: its `temporal-certs` job, its
 * `temporal` service and its `temporal-setup` job, each with the environment and command the
 * file gives it, in the order Compose runs them.
 *
 * - `temporal-certs`: `certflow cluster certs`, as the file calls it, with the cluster CA's
 *   key in a software key store.
 * - `temporal`: the same temporal-server release as the image's (built by `npm run cluster
 *   -- build`), started as the image's entrypoint starts it: `temporal-server start`, its
 *   configuration rendered from the environment by the server's embedded template, so the
 *   Postgres driver (DB), shards, pools, mTLS and the dynamic config file are the file's.
 * - `temporal-setup`: `certflow cluster namespace` against it, through mTLS.
 *
 * What a container would see differently is replaced: mounted volumes and configs by local
 * paths, its own network's addresses by loopback and free ports, the `postgres` service by the
 * test run's Postgres (Temporal's schemas set up there as the `temporal-schema` job does).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect as tlsConnect } from 'node:tls';
import { dirname, join } from 'node:path';
import { Connection } from '@temporalio/client';
import pg from 'pg';
import { freePort } from '../../src/core/net.ts';
import { logTail, spawnLogged, type ChildHandle } from '../../src/core/child.ts';
import { clusterClientTls, clusterTlsFiles, TEMPORAL_TLS_SERVER_NAME } from '../../src/config/index.ts';
import { setupTemporalSchemas, TEMPORAL_DATABASES } from '../../src/temporal/cluster-server.ts';
import { findTemporalServer, TEMPORAL_SERVER_VERSION, type TemporalServerBinaries } from '../../src/temporal/server-build.ts';
import { temporalTlsOptions } from '../../src/temporal/tls.ts';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.ts';
import { mapPaths, readCompose, serviceEnvironment, serviceMounts, type ComposeService } from '../helpers/compose.ts';
import { certflowBin, runTool } from '../helpers/certflow.ts';
import { makeOutsideCa } from '../helpers/outside-ca.ts';
import { testDatabase, testDatabaseAdminUrl, type TestDatabase } from '../helpers/stack.ts';
import { temporalBuildDir, temporalBuildSkip } from '../helpers/temporal.ts';

const serverDir = temporalBuildDir;
const binaries = await findTemporalServer(serverDir);
const skip = await temporalBuildSkip(Boolean(binaries), `the Temporal server ${TEMPORAL_SERVER_VERSION}`);

const compose = readCompose();
const { services } = compose;

/** The ports a container has to itself, which the embedded config template reads (its defaults are 7233-7239, 6933-6939). */
const PORT_VARIABLES = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
];

describe('docker-compose.yml: Temporal with its certificates and namespace', { skip }, () => {
  let dir: string;
  let db: TestDatabase;
  let server: TemporalServerBinaries;
  let temporal: ChildHandle | undefined;
  let address: string;
  /** Local path of each named volume, and of each config's file. */
  const volumes: Record<string, string> = {};
  let setup: { code: number; stdout: string; stderr: string };
  const logFile = () => join(dir, 'temporal.log');

  /** Container path -> local path, for the volumes and configs `service` mounts. */
  async function mountsOf(service: ComposeService): Promise<Record<string, string>> {
    const mounts: Record<string, string> = {};
    for (const m of serviceMounts(service)) {
      if (m.kind === 'volume') {
        volumes[m.source] ??= join(dir, 'volumes', m.source);
        await mkdir(volumes[m.source]!, { recursive: true });
        mounts[m.target] = volumes[m.source]!;
      } else {
        const file = join(dir, 'configs', m.source);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, compose.configs[m.source]!.content);
        mounts[m.target] = file;
      }
    }
    return mounts;
  }

  /** A one-shot certflow job of the file (`cluster ...`): its command and environment, run here. */
  async function runJob(name: string, extra: Record<string, string>) {
    const service = services[name]!;
    const mounts = await mountsOf(service);
    const env = serviceEnvironment(service, { CERTFLOW_KEY_PASSPHRASE: 'compose test passphrase' }, mounts);
    const args = service.command!.map((a) => mapPaths(a, mounts));
    // --owner hands the files to the temporalio images' user (uid 1000): Docker's concern, not this test's.
    const owner = args.indexOf('--owner');
    if (owner >= 0) args.splice(owner, 2);
    return runTool(process.execPath, [certflowBin, ...args], { env: { PATH: process.env.PATH, HOME: dir, ...env, ...extra } });
  }

  before(async () => {
    if (!binaries) throw new Error(`the Temporal server ${TEMPORAL_SERVER_VERSION} is not built in ${serverDir} (.ci/run builds it)`);
    server = binaries;
    dir = await mkdtemp(join(tmpdir(), 'certflow-compose-'));
    db = await testDatabase();
    const admin = new URL(testDatabaseAdminUrl());

    // temporal-certs: the cluster CA's key lives in the worker-home volume's key store.
    const certs = await runJob('temporal-certs', { DATABASE_URL: db.appUrl });
    assert.equal(certs.code, 0, certs.stdout + certs.stderr);

    // temporal-schema's work, as `certflow cluster setup` does it.
    await setupTemporalSchemas({ sqlTool: server.sqlTool, url: admin.toString() });

    // temporal: `temporal-server start` with the service's environment.
    const service = services.temporal!;
    const ports: Record<string, string> = {};
    for (const name of PORT_VARIABLES) ports[name] = String(await freePort());
    const env = {
      ...serviceEnvironment(service, {}, await mountsOf(service)),
      // The `postgres` service is the test run's Postgres, its owner login the image's superuser.
      POSTGRES_SEEDS: admin.hostname,
      DB_PORT: admin.port,
      POSTGRES_USER: decodeURIComponent(admin.username),
      POSTGRES_PWD: decodeURIComponent(admin.password),
      // A container's own address and ports.
      BIND_ON_IP: '127.0.0.1',
      ...ports,
    };
    address = `127.0.0.1:${ports.FRONTEND_GRPC_PORT}`;
    temporal = spawnLogged(server.server, ['start'], { logFile: logFile(), env: { PATH: process.env.PATH, ...env } });

    // temporal-setup: waits for the frontend (up to its --timeout), then registers; a server
    // that exits (a configuration it refuses) ends the wait.
    const exited = temporal.exited.then((code) => ({ code: -1, stdout: '', stderr: `temporal-server exited with code ${code}` }));
    setup = await Promise.race([runJob('temporal-setup', { TEMPORAL_ADDRESS: address }), exited]);
  });

  after(async () => {
    await temporal?.stop(15_000);
    const client = new pg.Client({ connectionString: testDatabaseAdminUrl() });
    await client.connect();
    try {
      for (const name of Object.values(TEMPORAL_DATABASES))
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`);
    } finally {
      await client.end();
    }
    await db?.drop().catch(() => {});
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts the server from the service environment and registers the namespace through mTLS', async () => {
    assert.equal(setup.code, 0, `${setup.stdout}${setup.stderr}\n--- temporal.log ---\n${await logTail(logFile(), 4000)}`);
    assert.match(setup.stdout + setup.stderr, /registered namespace default/);
    for (const name of Object.keys(SEARCH_ATTRIBUTES)) assert.match(setup.stdout + setup.stderr, new RegExp(name));
  });

  it("admits a client with the cluster CA's client certificate", async () => {
    const files = clusterTlsFiles(volumes['temporal-tls']!);
    const connection = await Connection.connect({ address, tls: temporalTlsOptions(clusterClientTls(files)), connectTimeout: 10_000 });
    try {
      const { namespaceInfo } = await connection.workflowService.describeNamespace({ namespace: 'default' });
      assert.equal(namespaceInfo?.name, 'default');
    } finally {
      await connection.close();
    }
  });

  it('refuses a client without a certificate, and one whose certificate another CA issued', async () => {
    const files = clusterTlsFiles(volumes['temporal-tls']!);
    const ca = readFileSync(files.ca);
    // The frontend's answer to a TLS client: its HTTP/2 SETTINGS when it admits the client,
    // else the TLS alert it ends the handshake with.
    const handshake = (client: { cert?: Buffer; key?: Buffer }) =>
      new Promise<string>((done) => {
        const [host, port] = address.split(':');
        const socket = tlsConnect({ host, port: Number(port), ca, servername: TEMPORAL_TLS_SERVER_NAME, ALPNProtocols: ['h2'], ...client });
        const end = (outcome: string) => {
          socket.destroy();
          done(outcome);
        };
        socket.once('data', () => end('admitted'));
        socket.once('error', (e: NodeJS.ErrnoException) => end(e.code ?? e.message));
        socket.once('close', () => end('closed'));
        socket.setTimeout(10_000, () => end('timeout'));
      });
    const own = await handshake({ cert: readFileSync(files.clientCert), key: readFileSync(files.clientKey) });
    assert.equal(own, 'admitted', 'the cluster client certificate (the check itself works)');
    assert.equal(await handshake({}), 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'no client certificate');
    // The key and certificate of another CA (an operator's offline root, as other tests make one).
    const other = await makeOutsideCa(join(dir, 'other'), { name: 'not the cluster CA' });
    const foreign = await handshake({ cert: readFileSync(other.cert), key: readFileSync(other.key) });
    assert.equal(foreign, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'a certificate the cluster CA did not issue');
  });
});
