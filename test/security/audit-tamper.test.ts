/**
 * Attack (issue 16, item 5): cut the audit log with database access, so that
 * `certflow audit verify` does not notice.
 *
 * 1. With the application's own database login (what servers and workers connect with),
 *    through psql: disable the append-only triggers, delete the newest entries, truncate
 *    audit_checkpoints, reset audit_head, or switch triggers off with
 *    session_replication_role. Each is refused: that login owns none of the audit tables
 *    and is no superuser.
 * 2. Whoever has the owner's login (a DBA, a stolen superuser password) does it all. The
 *    database is then self-consistent, but every checkpoint was also written outside it
 *    ($CERTFLOW_HOME/audit/checkpoints.jsonl) and is signed with the pinned key:
 *    `audit verify` exits 4 naming where the chain breaks, and the worker refuses to sign
 *    a new checkpoint over the cut log.
 * 3. A wholesale rewrite (recomputed hashes), with a forged checkpoint signed by a key the
 *    attacker recorded in audit_keys: the CLI and the console's verify trust only the
 *    pinned key, and the outside checkpoint names the rewritten entry.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { generateKeyPairSync } from '../../src/pki/keygen.ts';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInstance, opensslCsr, runTool, type CliResult, type TestInstance } from '../helpers/certflow.ts';
import { AdminClient } from '../helpers/admin.ts';
import { withTemporal } from '../helpers/temporal.ts';
import { scheduleIds } from '../../workflows/api.ts';

/** psql as a real client: one or more statements in one session, stopping at the first error. */
function psql(url: string, sql: string): Promise<CliResult> {
  return runTool('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql]);
}

const AUDIT_TABLES = ['audit_log', 'audit_checkpoints', 'audit_head', 'audit_keys'];

describe('attack: cutting the audit log with database access', () => {
  let cf: TestInstance;
  /** The runtime login of servers and workers (DATABASE_URL of every certflow process). */
  let appUrl: string;
  /** The owner login (migrations); an attacker who has it can do anything SQL can. */
  let ownerUrl: string;
  let checkpointSeq: number;
  const outsideFile = () => join(cf.home, 'audit', 'checkpoints.jsonl');

  async function honestState(): Promise<void> {
    // What the attacks below destroy, saved by the owner and put back between them.
    await psql(
      ownerUrl,
      AUDIT_TABLES.map((t) => `DROP TABLE IF EXISTS saved_${t}; CREATE TABLE saved_${t} AS SELECT * FROM ${t};`).join(''),
    );
  }

  async function restoreHonestState(): Promise<void> {
    const replace = (t: string) =>
      `ALTER TABLE ${t} DISABLE TRIGGER USER; DELETE FROM ${t}; INSERT INTO ${t} SELECT * FROM saved_${t}; ALTER TABLE ${t} ENABLE TRIGGER USER;`;
    const sql = [
      'BEGIN;',
      replace('audit_checkpoints'),
      'ALTER TABLE audit_keys DISABLE TRIGGER USER; DELETE FROM audit_keys WHERE key_id NOT IN (SELECT key_id FROM saved_audit_keys);',
      'ALTER TABLE audit_keys ENABLE TRIGGER USER;',
      replace('audit_log'),
      replace('audit_head'),
      'COMMIT;',
    ].join(' ');
    const r = await psql(ownerUrl, sql);
    assert.equal(r.code, 0, r.stderr);
    const v = await cf.cli(['audit', 'verify']);
    assert.equal(v.code, 0, `the honest log verifies again: ${v.stderr}`);
  }

  before(async () => {
    cf = await createInstance({ CERTFLOW_CONFIG: '' });
    await writeFile(join(cf.home, 'config.json'), JSON.stringify({ audit: { checkpointMinutes: 2 } }));
    appUrl = cf.env.DATABASE_URL!;
    ownerUrl = cf.databaseUrl;
    await cf.startWorker();
    // The worker made the checkpoint schedule (every 2 minutes, on the clock): paused here, so
    // that no checkpoint of its own lands between the entries this test cuts (the verdict then
    // names the scheduled checkpoint, not the test's).
    await withTemporal((client) =>
      client.schedule.getHandle(scheduleIds.auditCheckpoint(cf.env.CERTFLOW_TASK_QUEUE!)).pause('the test checkpoints by itself'),
    );
    for (const name of ['one', 'two', 'three']) {
      const csr = await opensslCsr(cf.home, name, { subj: `/CN=${name}.example.test`, san: `DNS:${name}.example.test` });
      const r = await cf.cli(['cert', 'issue', '--csr', csr, '--out', join(cf.home, `${name}.pem`)]);
      assert.equal(r.code, 0, r.stderr);
    }
    const add = await cf.cli(['users', 'add', '--name', 'aud', '--role', 'auditor', '--password', '-'], { input: 'auditor password 1\n' });
    assert.equal(add.code, 0, add.stderr);
    const cp = await cf.cli(['--json', 'audit', 'checkpoint']);
    assert.equal(cp.code, 0, cp.stderr);
    checkpointSeq = JSON.parse(cp.stdout).seq as number;
    assert.ok(checkpointSeq >= 4, `enough entries to cut (${checkpointSeq})`);
    await honestState();
  });
  after(async () => cf?.cleanup());

  it('checkpoints are kept outside the database too, signed with the pinned key, on a schedule in minutes', async () => {
    const lines = (await readFile(outsideFile(), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const newest = lines.find((l) => l.seq === checkpointSeq);
    assert.ok(newest, `checkpoint #${checkpointSeq} is in ${outsideFile()}`);
    const message = `certflow-audit-checkpoint-1\nseq=${newest.seq}\nhash=${newest.hash}\nsigned_at=${newest.signedAt}\n`;
    await writeFile(join(cf.home, 'cp.txt'), message);
    await writeFile(join(cf.home, 'cp.sig'), Buffer.from(newest.signature, 'base64'));
    const pinned = join(cf.home, 'ca', 'audit-key.pem');
    const v = await runTool('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      pinned,
      '-signature',
      join(cf.home, 'cp.sig'),
      join(cf.home, 'cp.txt'),
    ]);
    assert.match(v.stdout, /Verified OK/, v.stderr);

    const schedule = await withTemporal((client) =>
      client.schedule.getHandle(scheduleIds.auditCheckpoint(cf.env.CERTFLOW_TASK_QUEUE!)).describe(),
    );
    assert.deepEqual(
      schedule.spec.intervals?.map((i) => i.every),
      [120_000],
      'audit.checkpointMinutes: 2',
    );
  });

  it("the application's login cannot disable the triggers, delete, truncate or reset the head", async () => {
    const attempts: Array<[string, RegExp]> = [
      ['ALTER TABLE audit_log DISABLE TRIGGER USER', /must be owner of table audit_log/],
      ['ALTER TABLE audit_checkpoints DISABLE TRIGGER ALL', /must be owner of table audit_checkpoints/],
      ['SET session_replication_role = replica', /permission denied to set parameter/],
      [`DELETE FROM audit_log WHERE seq > ${checkpointSeq - 2}`, /permission denied for table audit_log/],
      ['TRUNCATE audit_checkpoints', /permission denied for table audit_checkpoints/],
      ['TRUNCATE audit_log', /permission denied for table audit_log/],
      ['UPDATE audit_log SET actor = $$mallory$$', /permission denied for table audit_log/],
      ['DELETE FROM audit_head', /permission denied for table audit_head/],
      [`UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_log WHERE seq = 1)`, /audit_head only advances by one entry/],
      ['DROP TABLE audit_checkpoints', /must be owner of table audit_checkpoints/],
      ['ALTER TABLE audit_keys OWNER TO CURRENT_USER', /must be owner of table audit_keys/],
    ];
    for (const [sql, refusal] of attempts) {
      const r = await psql(appUrl, sql);
      assert.notEqual(r.code, 0, `refused: ${sql}`);
      assert.match(r.stderr, refusal, sql);
    }
    const v = await cf.cli(['audit', 'verify']);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stderr, new RegExp(`the newest kept outside the database: #${checkpointSeq}`));
  });

  it('the owner who deletes the newest entries, truncates the checkpoints and resets the head is caught (exit 4, naming the break)', async () => {
    const keep = checkpointSeq - 2;
    const attack = await psql(
      ownerUrl,
      [
        'BEGIN;',
        'ALTER TABLE audit_log DISABLE TRIGGER USER;',
        `DELETE FROM audit_log WHERE seq > ${keep};`,
        'ALTER TABLE audit_log ENABLE TRIGGER USER;',
        'ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;',
        'TRUNCATE audit_checkpoints;',
        'ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;',
        'ALTER TABLE audit_head DISABLE TRIGGER USER;',
        `UPDATE audit_head SET seq = ${keep}, hash = (SELECT hash FROM audit_log WHERE seq = ${keep}), prev_hash = (SELECT prev_hash FROM audit_log WHERE seq = ${keep});`,
        'ALTER TABLE audit_head ENABLE TRIGGER USER;',
        'COMMIT;',
      ].join(' '),
    );
    assert.equal(attack.code, 0, `the owner can: ${attack.stderr}`);

    const v = await cf.cli(['audit', 'verify']);
    assert.equal(v.code, 4, v.stderr);
    assert.match(
      v.stderr,
      new RegExp(
        `audit log BROKEN at entry #${keep + 1}: the log ends at #${keep}, but a checkpoint names entry #${checkpointSeq}: entries were deleted — checkpoint #${checkpointSeq} kept outside the database`,
      ),
    );
    const json = JSON.parse((await cf.cli(['--json', 'audit', 'verify'])).stdout);
    assert.equal(json.ok, false);
    assert.equal(json.firstBroken.seq, keep + 1);

    const cp = await cf.cli(['audit', 'checkpoint']);
    assert.notEqual(cp.code, 0, 'no checkpoint is signed over the cut log');
    assert.match(cp.stderr, new RegExp(`no longer agrees with checkpoint #${checkpointSeq} kept outside the database`));
    await restoreHonestState();
  });

  it('a rewrite with recomputed hashes and a checkpoint signed by a key planted in the database is caught, by the CLI and the console', async () => {
    const planted = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const spkiHex = planted.publicKey.export({ type: 'spki', format: 'der' }).toString('hex');
    const rewrite = await psql(
      ownerUrl,
      [
        'BEGIN;',
        'ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_head DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;',
        "UPDATE audit_log SET actor = 'operator:nobody' WHERE seq = 2;",
        `DO $$ DECLARE r record; h text := repeat('0', 64); c text; BEGIN
           FOR r IN SELECT * FROM audit_log ORDER BY seq LOOP
             c := certflow_sha256_hex(certflow_audit_canonical(r.seq, r.at, r.actor, r.role, r.action, r.object, r.result, r.request_id, r.details));
             UPDATE audit_log SET prev_hash = h, content_hash = c, hash = certflow_sha256_hex(h || ':' || c) WHERE seq = r.seq RETURNING hash INTO h;
           END LOOP;
           UPDATE audit_head SET hash = h; END $$;`,
        'TRUNCATE audit_checkpoints;',
        `INSERT INTO audit_keys (key_id, key_backend, key_alg, spki) VALUES ('planted', 'software', 'ec-p256', '\\x${spkiHex}');`,
        'ALTER TABLE audit_log ENABLE TRIGGER USER; ALTER TABLE audit_head ENABLE TRIGGER USER; ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;',
        'COMMIT;',
      ].join(' '),
    );
    assert.equal(rewrite.code, 0, rewrite.stderr);
    // A checkpoint of the rewritten head, signed with the planted key.
    const head = await psql(ownerUrl, "COPY (SELECT seq || ' ' || hash FROM audit_head) TO STDOUT");
    const [seq, hash] = head.stdout.trim().split(' ');
    const signedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const message = `certflow-audit-checkpoint-1\nseq=${seq}\nhash=${hash}\nsigned_at=${signedAt.toISOString()}\n`;
    const signature = sign('sha256', Buffer.from(message), planted.privateKey).toString('hex');
    const forged = await psql(
      ownerUrl,
      `INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, sign_alg, signature) VALUES (${seq}, '${hash}', '${signedAt.toISOString()}', 'planted', 'ecdsa-sha256', '\\x${signature}')`,
    );
    assert.equal(forged.code, 0, forged.stderr);

    const v = await cf.cli(['audit', 'verify']);
    assert.equal(v.code, 4, v.stderr);
    assert.match(
      v.stderr,
      /entry #\d+ no longer has the hash that was signed: the log was rewritten — checkpoint #\d+ kept outside the database/,
    );
    assert.match(v.stderr, new RegExp(`checkpoint #${seq}, signed \\S+: the signature does not verify with the pinned audit key`));
    assert.match(v.stderr, /the audit key "planted" recorded in the database is not the pinned public key/);

    await cf.startAdmin();
    const api = new AdminClient(cf.adminPort, await readFile(join(cf.home, 'ca', 'root.pem'), 'utf8'));
    const session = await api.login('aud', 'auditor password 1');
    const r = await api.call('GET', '/admin/api/v1/audit/verify', session);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ok, false, 'the console trusts only the pinned key too');
    assert.match(r.json.problems.join('\n'), /does not verify with the pinned audit key/);
    await restoreHonestState();
  });
});
