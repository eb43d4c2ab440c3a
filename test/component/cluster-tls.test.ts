/**
 * The cluster CA and Temporal's mTLS certificates (src/ca/cluster-tls.ts, audited by
 * src/temporal/cluster-certs.ts): made once,
 * left alone while current, renewed when due or forced, each issuance audited; the
 * certificates verify with openssl against the cluster CA, with the purposes each side needs.
 * (test/integration/cluster.test.ts shows the frontend refusing a device's certificate.)
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { renewalDue } from '../../src/ca/cluster-tls.ts';
import { ensureAuditedClusterTls as ensureClusterTls } from '../../src/temporal/cluster-certs.ts';
import { clusterTlsFiles } from '../../src/config/index.ts';
import { MemoryKeyStore } from '../helpers/memory-keystore.ts';
import { runTool } from '../helpers/certflow.ts';
import { testDatabase, type TestDatabase } from '../helpers/stack.ts';

describe('cluster TLS (Temporal mTLS)', () => {
  let db: TestDatabase;
  let dir: string;
  const keys = new MemoryKeyStore();

  before(async () => {
    db = await testDatabase();
    dir = await mkdtemp(join(tmpdir(), 'certflow-cluster-tls-'));
  });
  after(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const serial = (file: string) => new X509Certificate(readFileSync(file)).serialNumber;

  it('makes the CA and both certificates once, with the purposes and names each side checks', async () => {
    const first = await ensureClusterTls({ dir, keys, keyAlg: 'ec-p256', db: db.pool, serverNames: ['temporal'] });
    assert.deepEqual(first.issued, ['ca', 'temporal-server', 'temporal-client']);
    const f = clusterTlsFiles(dir);
    const server = new X509Certificate(readFileSync(f.serverCert));
    assert.equal(server.subjectAltName, 'DNS:localhost, DNS:temporal, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    for (const [file, purpose] of [
      [f.serverCert, 'sslserver'],
      [f.serverCert, 'sslclient'],
      [f.clientCert, 'sslclient'],
    ] as const) {
      const r = await runTool('openssl', ['verify', '-CAfile', f.ca, '-purpose', purpose, file]);
      assert.equal(r.code, 0, `${file} ${purpose}: ${r.stdout}${r.stderr}`);
    }
    const notServer = await runTool('openssl', ['verify', '-CAfile', f.ca, '-purpose', 'sslserver', f.clientCert]);
    assert.notEqual(notServer.code, 0, 'the client certificate is no server certificate');
    assert.ok(server.checkPrivateKey(createPrivateKey(readFileSync(f.serverKey))), 'the key file belongs to the certificate');

    const again = await ensureClusterTls({ dir, keys, keyAlg: 'ec-p256', db: db.pool, serverNames: ['temporal'] });
    assert.deepEqual(again.issued, [], 'current certificates are left alone');
    const { rows } = await db.pool.query(
      "SELECT object, details->>'purpose' AS purpose FROM audit_log WHERE action = 'cluster-tls.issue' ORDER BY seq",
    );
    assert.deepEqual(
      rows.map((r) => r.purpose),
      ['ca', 'temporal-server', 'temporal-client'],
    );
  });

  it('renews a certificate that misses a name, is due, or when forced; never the CA needlessly', async () => {
    const f = clusterTlsFiles(dir);
    const before = serial(f.serverCert);
    const clientBefore = serial(f.clientCert);
    const named = await ensureClusterTls({ dir, keys, keyAlg: 'ec-p256', db: db.pool, serverNames: ['temporal', 'temporal.internal'] });
    assert.deepEqual(named.issued, ['temporal-server']);
    assert.notEqual(serial(f.serverCert), before);
    assert.equal(serial(f.clientCert), clientBefore);
    const later = new Date(Date.now() + 250 * 86_400_000);
    const due = await ensureClusterTls({
      dir,
      keys,
      keyAlg: 'ec-p256',
      db: db.pool,
      serverNames: ['temporal', 'temporal.internal'],
      now: later,
    });
    assert.deepEqual(due.issued, ['temporal-server', 'temporal-client'], 'due after two thirds of a year');
    const forced = await ensureClusterTls({
      dir,
      keys,
      keyAlg: 'ec-p256',
      db: db.pool,
      serverNames: ['temporal', 'temporal.internal'],
      force: true,
    });
    assert.deepEqual(forced.issued, ['temporal-server', 'temporal-client']);
    assert.equal(renewalDue(new Date(0), new Date(300), new Date(199)), false);
    assert.equal(renewalDue(new Date(0), new Date(300), new Date(200)), true);
  });
});
