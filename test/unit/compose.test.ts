/**
 * docker-compose.yml cannot run here (no Docker engine), so this keeps it honest: it is
 * valid against the Compose Specification schema (check-jsonschema's vendored copy), and it
 * runs what `certflow cluster` runs and test/integration/cluster.test.ts proves — the same
 * Temporal release, history shards, pools and dynamic config, the namespace and search
 * attributes registered by certflow itself, 2 servers and 2 workers, mTLS to Temporal with
 * certflow's cluster CA for every process that connects to it, the Temporal UI server of
 * the same release with certflow's config on the console's loopback, two database logins
 * (the owner migrates, every other certflow process runs as a runtime login that owns
 * nothing), and only environment variables that certflow reads.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLUSTER_DEFAULTS, clusterMaxConnections } from '../../src/cli/cluster.ts';
import {
  DEFAULT_HISTORY_SHARDS,
  DYNAMIC_CONFIG,
  TEMPORAL_DATABASES,
  TEMPORAL_POOLS,
  TEMPORAL_SQL_PLUGIN,
} from '../../src/temporal/cluster-server.ts';
import { TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../src/temporal/server-build.ts';
import { renderTemporalUiConfig } from '../../src/temporal/ui-server.ts';
import { clusterTlsFiles, loadConfig, TEMPORAL_TLS_SERVER_NAME } from '../../src/config/index.ts';
import { composeFile, readCompose, serviceEnvironment, type ComposeService } from '../helpers/compose.ts';
import { CHECK_JSONSCHEMA, requireTool, runProgram, toolsSkip } from '../helpers/tools.ts';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const compose = readCompose();
const services = compose.services;
/** certflow's long-running processes (the one-shot jobs `cluster ...` and `migrate` aside). */
const certflowServices = Object.entries(services).filter(
  ([, s]) => s.build !== undefined && s.command?.[0] !== 'cluster' && s.command?.[0] !== 'migrate',
);

/** All TypeScript sources of certflow, for "is this variable read anywhere". */
function sources(dir: string): string {
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .map((path) => (statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? readFileSync(path, 'utf8') : ''))
    .join('\n');
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema', { skip: toolsSkip(CHECK_JSONSCHEMA) }, async () => {
    const r = await runProgram(requireTool(CHECK_JSONSCHEMA), ['--builtin-schema', 'vendor.compose-spec', composeFile], {
      env: { ...process.env, CERTFLOW_KEY_PASSPHRASE: 'x' },
    });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('runs the Temporal release, shards, pools and dynamic config of `certflow cluster`', () => {
    const version = TEMPORAL_SERVER_VERSION.replace(/^v/, '');
    const temporal = services.temporal!;
    assert.equal(temporal.image, `temporalio/server:${version}`);
    assert.equal(services['temporal-schema']!.image, `temporalio/admin-tools:${version}`);
    const env = temporal.environment!;
    // The driver `certflow cluster` runs (pgx), which the image's embedded config template
    // accepts as DB; test/integration/compose-temporal.test.ts starts the server with it.
    assert.equal(env.DB, TEMPORAL_SQL_PLUGIN);
    assert.equal(Number(env.NUM_HISTORY_SHARDS), DEFAULT_HISTORY_SHARDS);
    assert.equal(Number(env.SQL_MAX_CONNS), TEMPORAL_POOLS.default);
    assert.equal(Number(env.SQL_VIS_MAX_CONNS), TEMPORAL_POOLS.visibility);
    const dynamic = temporal.configs?.find((c) => c.target === env.DYNAMIC_CONFIG_FILE_PATH);
    assert.ok(dynamic, 'the dynamic config file is mounted where DYNAMIC_CONFIG_FILE_PATH points');
    assert.equal(compose.configs[dynamic.source]!.content, DYNAMIC_CONFIG);
    // The schema job sets up both databases with the tool's embedded postgres12 schemas.
    const setup = services['temporal-schema']!.command!.join('\n');
    for (const db of Object.values(TEMPORAL_DATABASES)) assert.match(setup, new RegExp(`\\b${db}:`));
    assert.match(setup, /--schema-name "postgresql\/v12\/\$\$schema"/);
    assert.match(setup, /setup-schema -v 0\.0/);
  });

  it('registers the namespace and search attributes with certflow itself', () => {
    assert.deepEqual(services['temporal-setup']!.command?.slice(0, 2), ['cluster', 'namespace']);
  });

  it('has the topology of `certflow cluster`: 2 workers, 2 servers on its default ports, enough connections', () => {
    assert.equal(services.worker!.deploy?.replicas, CLUSTER_DEFAULTS.workers);
    const servers = certflowServices.filter(([, s]) => s.command?.[0] === 'server');
    assert.equal(servers.length, CLUSTER_DEFAULTS.servers);
    servers.forEach(([name, s], i) => {
      const step = i * CLUSTER_DEFAULTS.portStep;
      assert.deepEqual(s.ports, [`${8443 + step}:8443`, `${8080 + step}:8080`], name);
    });
    const maxConnections = Number(/max_connections=(\d+)/.exec((services.postgres!.command ?? []).join(' '))?.[1]);
    assert.ok(maxConnections >= clusterMaxConnections(CLUSTER_DEFAULTS), `max_connections ${maxConnections}`);
  });

  it("gives certflow's processes the cluster's environment, with variables certflow reads", () => {
    const code = sources(join(repo, 'src'));
    for (const [name, s] of certflowServices) {
      const env = s.environment ?? {};
      for (const required of ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'CERTFLOW_HOME', 'CERTFLOW_PUBLIC_HTTP_URL']) {
        assert.ok(env[required] !== undefined, `${name} sets ${required}`);
      }
      for (const variable of Object.keys(env)) assert.ok(code.includes(variable), `${name}: ${variable} is read nowhere in src/`);
    }
    const urls = new Set(certflowServices.map(([, s]) => s.environment!.CERTFLOW_PUBLIC_HTTP_URL));
    assert.equal(urls.size, 1, 'one CRL/AIA base URL for every process');
  });

  /** A service's environment as Compose hands it over with only the required variable set: defaults filled in. */
  const environmentOf = (s: ComposeService): Record<string, string> => serviceEnvironment(s, { CERTFLOW_KEY_PASSPHRASE: 'set' }, {});

  it('migrates as the owner login in a one-shot job; every other certflow process connects as the runtime login', () => {
    const migrate = services.migrate!;
    assert.deepEqual(migrate.command, ['migrate', '--create-runtime-login']);
    const jobConfig = loadConfig({ ...environmentOf(migrate), CERTFLOW_HOME: '/nonexistent' });
    const owner = new URL(jobConfig.databaseOwnerUrl!);
    const runtime = new URL(jobConfig.databaseUrl!);
    assert.notEqual(runtime.username, owner.username, 'two logins');
    assert.equal(
      owner.username,
      services.postgres!.environment!.POSTGRES_USER,
      "the owner is the Postgres image's superuser, which creates the runtime login",
    );
    assert.equal(runtime.pathname, owner.pathname, 'one database');

    const others = Object.entries(services).filter(([name, s]) => s.build !== undefined && name !== 'migrate');
    assert.ok(others.some(([name]) => name === 'temporal-certs') && others.some(([name]) => name === 'worker'));
    for (const [name, s] of others) {
      const env = environmentOf(s);
      assert.equal(env.CERTFLOW_DATABASE_OWNER_URL, undefined, `${name} does not get the owner's login`);
      if (env.DATABASE_URL === undefined) continue; // temporal-setup: no database
      const config = loadConfig({ ...env, CERTFLOW_HOME: '/nonexistent' });
      assert.equal(config.databaseUrl, jobConfig.databaseUrl, `${name} connects as the runtime login the migrate job creates`);
      const deps = s.depends_on as Record<string, { condition: string }>;
      const after = (n: string): boolean => {
        const d = services[n]!.depends_on as Record<string, { condition: string }> | undefined;
        return d?.migrate?.condition === 'service_completed_successfully' || Object.keys(d ?? {}).some(after);
      };
      assert.ok(after(name), `${name} starts after the migrate job (${JSON.stringify(deps)})`);
    }
  });

  /** Where the temporal-tls volume is mounted, and the files `certflow cluster certs --dir` puts there. */
  const TLS_DIR = '/var/lib/certflow-temporal-tls';
  const tls = clusterTlsFiles(TLS_DIR);
  const mountsTls = (s: ComposeService, mode: RegExp) =>
    (s.volumes ?? []).some((v) => new RegExp(`^temporal-tls:${TLS_DIR}${mode.source}$`).test(v));

  it("makes Temporal's mTLS certificates with certflow's cluster CA before Temporal starts", () => {
    const certs = services['temporal-certs']!;
    assert.deepEqual(certs.command?.slice(0, 2), ['cluster', 'certs']);
    assert.equal(certs.command![certs.command!.indexOf('--dir') + 1], TLS_DIR);
    assert.equal(certs.command![certs.command!.indexOf('--name') + 1], 'temporal', "the server's certificate names its compose host");
    assert.ok(mountsTls(certs, /(:rw)?/));
    assert.ok((certs.volumes ?? []).includes('worker-home:/var/lib/certflow'), "the cluster CA's key is in the workers' key store");
    const deps = services.temporal!.depends_on as Record<string, { condition: string }>;
    assert.equal(deps['temporal-certs']?.condition, 'service_completed_successfully');
  });

  it('runs Temporal with mTLS required on the frontend and internode ports, trusting only the cluster CA', () => {
    const env = services.temporal!.environment!;
    assert.equal(String(env.TEMPORAL_TLS_REQUIRE_CLIENT_AUTH), 'true');
    for (const v of ['TEMPORAL_TLS_SERVER_CA_CERT', 'TEMPORAL_TLS_CLIENT1_CA_CERT', 'TEMPORAL_TLS_CLIENT2_CA_CERT'])
      assert.equal(env[v], tls.ca, v);
    for (const v of ['TEMPORAL_TLS_SERVER_CERT', 'TEMPORAL_TLS_FRONTEND_CERT']) assert.equal(env[v], tls.serverCert, v);
    for (const v of ['TEMPORAL_TLS_SERVER_KEY', 'TEMPORAL_TLS_FRONTEND_KEY']) assert.equal(env[v], tls.serverKey, v);
    for (const v of ['TEMPORAL_TLS_INTERNODE_SERVER_NAME', 'TEMPORAL_TLS_FRONTEND_SERVER_NAME'])
      assert.equal(env[v], TEMPORAL_TLS_SERVER_NAME, v);
    assert.ok(mountsTls(services.temporal!, /:ro/));
    assert.equal(services.temporal!.ports, undefined, "Temporal's ports are not published");
  });

  it('connects every certflow process to Temporal with the cluster client certificate', () => {
    for (const [name, s] of [...certflowServices, ['temporal-setup', services['temporal-setup']!] as const]) {
      const config = loadConfig({ ...environmentOf(s), CERTFLOW_HOME: '/nonexistent' });
      assert.deepEqual(
        config.temporal.tls,
        { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey, serverName: TEMPORAL_TLS_SERVER_NAME },
        name,
      );
      assert.ok(mountsTls(s, /:ro/), `${name} mounts the mTLS files read-only`);
    }
  });

  it("runs the Temporal UI server of the same release line on the console's loopback, with certflow's config", () => {
    const ui = services['temporal-ui']!;
    assert.equal(ui.image, `temporalio/ui:${TEMPORAL_UI_VERSION.replace(/^v/, '')}`);
    assert.equal(ui.network_mode, 'service:admin', "in admin's network namespace");
    assert.equal(ui.ports, undefined, 'no published port');
    const mounted = ui.configs?.find((c) => c.target === '/home/ui-server/config/docker.yaml');
    assert.ok(mounted, "certflow's config replaces the image's");
    const expected = renderTemporalUiConfig({
      temporalAddress: 'temporal:7233',
      host: '127.0.0.1',
      port: 8233,
      namespace: 'default',
      tls: { caFile: tls.ca, certFile: tls.clientCert, keyFile: tls.clientKey, serverName: TEMPORAL_TLS_SERVER_NAME },
    });
    assert.equal(compose.configs[mounted.source]!.content, expected);
    assert.ok(mountsTls(ui, /:ro/));
    const admin = loadConfig({ ...environmentOf(services.admin!), CERTFLOW_HOME: '/nonexistent' });
    assert.equal(admin.admin.temporalUiProxy, 'http://127.0.0.1:8233', 'the console proxies /temporal/ to it');
    assert.equal(admin.admin.temporalUiUrl, '/temporal', "the console's workflow links go there");
  });
});
