/**
 * The tamper-evident audit log end to end: the worker creates the audit key and signs
 * checkpoints (openssl verifies one against ca/audit-key.pem); `certflow audit verify`
 * passes on an honest log and, after a row is UPDATEd or DELETEd directly in Postgres
 * (triggers disabled, as only the table's owner or a superuser can), fails with exit code
 * 4 naming the first broken entry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type TestInstance } from '../helpers/certflow.ts';
import { eventually } from '../helpers/acme.ts';

describe('audit log: checkpoints and tampering', () => {
  let cf: TestInstance;
  let keyFile: string;

  /** Runs SQL with the append-only triggers off. */
  async function tamper(sql: string, values: unknown[] = []): Promise<void> {
    const client = await cf.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await client.query(sql, values);
      await client.query('ALTER TABLE audit_log ENABLE TRIGGER USER');
      await client.query('COMMIT');
    } finally {
      client.release();
    }
  }

  before(async () => {
    cf = await createInstance();
    await cf.startWorker();
    keyFile = join(cf.home, 'ca', 'audit-key.pem');
    for (const name of ['a', 'b']) {
      const csr = await opensslCsr(cf.home, name, { subj: `/CN=${name}.example.test`, san: `DNS:${name}.example.test` });
      assert.equal((await cf.cli(['cert', 'issue', '--csr', csr, '--out', join(cf.home, `${name}.pem`)])).code, 0);
    }
    const add = await cf.cli(['users', 'add', '--name', 'alice', '--role', 'auditor', '--password', '-'], {
      input: 'a long enough password\n',
    });
    assert.equal(add.code, 0, add.stderr);
  });
  after(async () => cf?.cleanup());

  it('the worker signs checkpoints with the audit key; openssl verifies them', async () => {
    const r = await cf.cli(['--json', 'audit', 'checkpoint']);
    assert.equal(r.code, 0, r.stderr);
    const cp = JSON.parse(r.stdout) as { seq: number; created: boolean; keyId: string };
    assert.equal(cp.keyId, 'certflow-audit');
    const { rows } = await cf.pool.query('SELECT seq, hash, signed_at, signature FROM audit_checkpoints WHERE seq = $1', [cp.seq]);
    assert.equal(rows.length, 1);
    const message = `certflow-audit-checkpoint-1\nseq=${rows[0].seq}\nhash=${rows[0].hash}\nsigned_at=${rows[0].signed_at.toISOString()}\n`;
    await writeFile(join(cf.home, 'checkpoint.txt'), message);
    await writeFile(join(cf.home, 'checkpoint.sig'), rows[0].signature);
    const v = await runTool('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      keyFile,
      '-signature',
      join(cf.home, 'checkpoint.sig'),
      join(cf.home, 'checkpoint.txt'),
    ]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /Verified OK/);
    // The schedule triggered at worker start signed the first one by itself.
    await eventually('the scheduled checkpoint', 30_000, async () =>
      (await cf.pool.query('SELECT count(*)::int AS n FROM audit_checkpoints')).rows[0].n >= 1 ? true : undefined,
    );
  });

  it('`certflow audit verify` passes on the honest log, also against the pinned audit key', async () => {
    const r = await cf.cli(['audit', 'verify', '--key', keyFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /audit log OK: \d+ entries, head #\d+ [0-9a-f]{64}; \d+ signed checkpoint\(s\) verified, the newest at #\d+/);
    const list = JSON.parse((await cf.cli(['--json', 'audit', 'list', '--action', 'cert.'])).stdout) as Array<{
      action: string;
      actor: string;
    }>;
    assert.ok(list.length >= 2 && list.every((e) => e.action.startsWith('cert.')));
  });

  it('plain UPDATE and DELETE are refused by the database', async () => {
    await assert.rejects(cf.pool.query("UPDATE audit_log SET actor = 'mallory'"), /append-only/);
    await assert.rejects(cf.pool.query('DELETE FROM audit_log'), /append-only/);
  });

  it('an UPDATEd row makes verification fail, naming it', async () => {
    const { rows } = await cf.pool.query("SELECT seq, id, actor FROM audit_log WHERE action = 'user.add' AND object = 'alice'");
    const { seq, id, actor } = rows[0];
    await tamper("UPDATE audit_log SET actor = 'operator:mallory' WHERE seq = $1", [seq]);
    const r = await cf.cli(['audit', 'verify']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`audit log BROKEN at entry #${seq} \\(id ${id}\\): content changed after it was written`));
    const json = JSON.parse((await cf.cli(['--json', 'audit', 'verify'])).stdout);
    assert.equal(json.ok, false);
    assert.equal(json.firstBroken.seq, Number(seq));
    await tamper('UPDATE audit_log SET actor = $2 WHERE seq = $1', [seq, actor]);
    assert.equal((await cf.cli(['audit', 'verify'])).code, 0, 'the original content verifies again');
  });

  it('a DELETEd row makes verification fail, naming the gap', async () => {
    const { rows } = await cf.pool.query("SELECT seq FROM audit_log WHERE action = 'cert.issue' ORDER BY seq LIMIT 1");
    const seq = Number(rows[0].seq);
    await tamper('DELETE FROM audit_log WHERE seq = $1', [seq]);
    const r = await cf.cli(['audit', 'verify']);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`audit log BROKEN at entry #${seq}: missing \\(deleted\\): the next entry is #${seq + 1}`));
  });
});
