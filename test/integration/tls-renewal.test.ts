/**
 * Two servers share $CERTFLOW_HOME/tls/, as in `certflow cluster`. `certflow tls renew`
 * makes both find the HTTPS certificate due at once: both start the renewal's workflow
 * (fixed id), the CA issues exactly one new certificate, and both serve it without a
 * restart. A second renewal replaces that one in turn (the ids follow the certificate).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../src/core/net.ts';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';

/** The serial (lower-case hex, no leading zeros) of the certificate a listener presents now. */
function servedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      const serial = socket.getPeerCertificate().serialNumber.toLowerCase().replace(/^0+/, '');
      socket.end();
      resolve(serial);
    });
    socket.on('error', reject);
  });
}

describe('own certificates shared by two servers: one renewal, both serve it', () => {
  let cf: TestInstance;
  let ports: [number, number];
  let ca: string;

  before(async () => {
    cf = await createInstance({ CERTFLOW_TLS_CHECK_SECONDS: '1' });
    // Signing takes a moment longer than the servers' checks are apart, so that both
    // servers see a renewal due before either has finished it: the race, every time.
    await cf.startWorker({}, { signingFaults: { pauseBeforeSignMs: 2500 } });
    await cf.startServer();
    ports = [cf.httpsPort, await freePort()];
    await cf.startServer({ CERTFLOW_HTTPS_PORT: String(ports[1]), CERTFLOW_HTTP_PORT: String(await freePort()) });
    ca = readFileSync(join(cf.home, 'ca', 'root.pem'), 'utf8');
  });
  after(async () => {
    await cf?.cleanup();
  });

  const httpsCertificates = async () =>
    (
      await cf.pool.query<{ serial: string; request_id: string }>(
        "SELECT serial, request_id FROM certificates WHERE requester = 'certflow-server' AND profile = 'tls-server' ORDER BY issued_at",
      )
    ).rows;
  const untilBothServe = async (stored: string) => {
    // The database keeps the serial as DER bytes in hex (a leading 0 nibble included).
    const serial = stored.toLowerCase().replace(/^0+/, '');
    const deadline = Date.now() + 60_000;
    for (;;) {
      const served = await Promise.all(ports.map((p) => servedSerial(p, ca)));
      if (served.every((s) => s === serial)) return;
      if (Date.now() > deadline) throw new Error(`the servers serve ${served.join(', ')}, not ${serial}`);
      await sleep(250);
    }
  };

  it('starts with one certificate, served by both servers', async () => {
    const issued = await httpsCertificates();
    assert.equal(issued.length, 1, JSON.stringify(issued));
    await untilBothServe(issued[0]!.serial);
  });

  for (const round of [1, 2]) {
    it(`renewal ${round}: both servers race for it, exactly one new certificate is issued, both serve it without a restart`, async () => {
      const before = await httpsCertificates();
      const old = before.at(-1)!.serial;
      const logFrom = readFileSync(join(cf.home, 'server.log'), 'utf8').length;
      const r = await cf.cli(['--json', 'tls', 'renew', 'server', '--timeout', '90']);
      assert.equal(r.code, 0, r.stderr);
      const [renewed] = JSON.parse(r.stdout) as Array<{ old: string; serial: string }>;
      assert.equal(renewed!.old, old);
      await untilBothServe(renewed!.serial);
      // Give a straggler a few more checks: still exactly one new certificate.
      await sleep(3000);
      const after = await httpsCertificates();
      assert.equal(after.length, before.length + 1, JSON.stringify(after));
      assert.equal(after.at(-1)!.serial, renewed!.serial);
      assert.equal(after.at(-1)!.request_id, `server-renew-${old}`, 'the request id is fixed by the certificate it replaces');
      // Both server processes asked for that same request: the workflow id made it one.
      const lines = readFileSync(join(cf.home, 'server.log'), 'utf8')
        .slice(logFrom)
        .split('\n')
        .filter((l) => l.includes(`server-renew-${old}`))
        .map((l) => JSON.parse(l) as { pid: number });
      assert.equal(new Set(lines.map((l) => l.pid)).size, 2, 'both servers requested the renewal');
      const list = await cf.cli(['--json', 'tls', 'list']);
      const server = (JSON.parse(list.stdout) as Array<{ name: string; serial: string; renewalAsked: boolean }>).find(
        (c) => c.name === 'server',
      );
      assert.deepEqual([server?.serial, server?.renewalAsked], [renewed!.serial, false]);
    });
  }
});
