/**
 * A CMP transaction survives a worker killed with SIGKILL between the ip and the certConf:
 * a proxy between `openssl cmp` and certflow holds the certConf, kills the worker, starts
 * a new one, then lets the certConf through. The transaction ends confirmed with exactly
 * one certificate, which stays valid.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInstance, type TestInstance } from '../helpers/certflow.ts';
import { newKey, opensslCmp, output, readMessages, type CmpPeer } from '../helpers/cmp.ts';
import * as requests from '../../src/db/repos/requests.ts';
import * as certificates from '../../src/db/repos/certificates.ts';

describe('CMP and a worker crash', () => {
  let cf: TestInstance;
  let worker: Awaited<ReturnType<TestInstance['startWorker']>>;
  let proxy: http.Server;
  let killedBeforeCertConf = false;

  before(async () => {
    cf = await createInstance();
    worker = await cf.startWorker();
    await cf.startServer();
    assert.equal((await cf.cli(['cmp-client', 'add', '--ref', 'crash', '--secret', 'crash-secret-1'])).code, 0);
    let seen = 0;
    proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        seen++;
        if (seen === 2) {
          // The certConf: the ip has been answered, the workflow waits for confirmation.
          process.kill(worker.pid!, 'SIGKILL');
          await worker.exited;
          worker = await cf.startWorker();
          killedBeforeCertConf = true;
        }
        const body = Buffer.concat(chunks);
        const up = http.request(
          {
            host: '127.0.0.1',
            port: cf.httpPort,
            path: req.url,
            method: req.method,
            headers: { 'content-type': req.headers['content-type'] ?? '', 'content-length': body.length },
          },
          (r) => {
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on('error', () => res.writeHead(502).end());
        up.end(body);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    proxy?.close();
    await cf?.cleanup();
  });

  it('kill -9 of the worker between ip and certConf: confirmed, exactly one certificate', async () => {
    const peer: CmpPeer = {
      server: `127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      dir: cf.home,
      root: join(cf.home, 'ca', 'root.pem'),
    };
    const key = await newKey(peer, 'crash');
    const r = await opensslCmp(peer, [
      '-cmd',
      'ir',
      '-ref',
      'crash',
      '-secret',
      'pass:crash-secret-1',
      '-newkey',
      key,
      '-subject',
      '/CN=crash-device',
      '-certout',
      'crash.pem',
      '-trusted',
      peer.root,
      '-reqout',
      'crash-ir.der,crash-conf.der',
    ]);
    assert.equal(r.code, 0, output(r));
    assert.equal(killedBeforeCertConf, true, 'the worker was killed before the certConf reached the server');
    const [ir] = await readMessages(cf.home, ['crash-ir.der']);
    const requestId = `cmp-${Buffer.from(ir!.header.transactionID!).toString('hex')}`;
    const row = await requests.get(cf.pool, requestId);
    assert.equal(row?.state, 'confirmed');
    const { rows } = await cf.pool.query('SELECT serial FROM certificates WHERE request_id = $1', [requestId]);
    assert.equal(rows.length, 1);
    assert.equal((await certificates.get(cf.pool, rows[0].serial))?.status, 'valid');
  });
});
