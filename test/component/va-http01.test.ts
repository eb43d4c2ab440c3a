/**
 * http-01 against local web servers on 127.0.0.1; names resolve through a local
 * pebble-challtestsrv (its A records), never through the system's resolver.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertPortFree, freePort } from '../../src/core/net.ts';
import {
  createDnsClient,
  createVaContext,
  validateChallenge,
  validateHttp01,
  type DnsClient,
  type RedirectPorts,
} from '../../src/va/index.ts';
import type { ValidationConfig } from '../../src/config/index.ts';
import { startChalltestsrv, type ChallTestSrv } from '../helpers/challtestsrv.ts';
import { CHALLTESTSRV, toolsSkip } from '../helpers/tools.ts';
import { rejectsWith, selfSignedCert, setAaaa, setDefaultIpv4, startHttpServer, vaConfig, type TestHttpServer } from '../helpers/va.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const THUMB = 'dGh1bWJwcmludA';
const ka = (token: string) => `${token}.${THUMB}`;
const challengePath = (token: string) => `/.well-known/acme-challenge/${token}`;

describe('http-01', { skip: toolsSkip(CHALLTESTSRV) }, () => {
  let srv: ChallTestSrv;
  let dns: DnsClient;
  /** The challenge port (config.http01Port). */
  let web: TestHttpServer;
  /** Stands for port 80 in redirects (ctx.redirectPorts.http). */
  let web80: TestHttpServer;
  /** Stands for port 443 in redirects (ctx.redirectPorts.https). */
  let tls443: HttpsServer;
  let tls443Port: number;
  const routes = new Map<string, Handler>();
  const route: Handler = (req, res) => {
    const h = routes.get(req.url ?? '');
    if (h) return h(req, res);
    res.writeHead(404).end('not found');
  };
  const answer =
    (body: string): Handler =>
    (_req, res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end(body);
  const redirect =
    (location: string, status = 302): Handler =>
    (_req, res) =>
      res.writeHead(status, { location }).end();

  const redirectPorts = (): RedirectPorts => ({ http: web80.port, https: tls443Port });
  const ctx = (config: Partial<ValidationConfig> = {}, ports: RedirectPorts = redirectPorts()) =>
    createVaContext(vaConfig({ http01Port: web.port, dnsResolver: srv.resolver, ...config }), { dns, redirectPorts: ports });
  const http01 = (token: string, value = 'example.test', config: Partial<ValidationConfig> = {}, ports?: RedirectPorts) =>
    validateHttp01(ctx(config, ports), {
      identifier: { type: value.includes(':') || /^\d/.test(value) ? 'ip' : 'dns', value },
      token,
      keyAuthorization: ka(token),
    });

  before(async () => {
    srv = await startChalltestsrv();
    dns = createDnsClient({ server: srv.resolver, timeoutMs: 2000 });
    await setDefaultIpv4(srv, ''); // names without A records have no address at all
    for (const name of ['example.test', 'other.test', 'secure.test']) await srv.setA(name, '127.0.0.1');
    web = await startHttpServer(route);
    web80 = await startHttpServer(route);
    const { key, cert } = selfSignedCert(['subjectAltName=DNS:unrelated.test']);
    tls443 = createHttpsServer({ key, cert }, route);
    await new Promise<void>((resolve) => tls443.listen(0, '127.0.0.1', () => resolve()));
    tls443Port = (tls443.address() as AddressInfo).port;
  });

  after(async () => {
    await web?.close();
    await web80?.close();
    tls443?.closeAllConnections();
    await new Promise((resolve) => (tls443 ? tls443.close(resolve) : resolve(undefined)));
    await srv?.stop();
  });

  it('accepts the key authorization (trailing whitespace ignored) from the resolved address, with the Host header', async () => {
    routes.set(challengePath('ok'), answer(`${ka('ok')} \r\n\t\n`));
    const records = await http01('ok');
    assert.deepEqual(records, [
      {
        url: `http://example.test:${web.port}${challengePath('ok')}`,
        hostname: 'example.test',
        port: web.port,
        addressesResolved: ['127.0.0.1'],
        addressUsed: '127.0.0.1',
      },
    ]);
    assert.deepEqual(web.requests.at(-1), { host: `example.test:${web.port}`, path: challengePath('ok') });
  });

  it('refuses a wrong answer, finally, naming the URL, the expected and the received body', async () => {
    routes.set(challengePath('wrong'), answer('nope'));
    await rejectsWith(http01('wrong'), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: `http://example.test:${web.port}/.well-known/acme-challenge/wrong: expected the key authorization "${ka('wrong')}", got "nope"`,
    });
  });

  it('refuses a 404 finally, retries a 503', async () => {
    await rejectsWith(http01('missing'), {
      problemType: 'unauthorized',
      retryable: false,
      message: `http://example.test:${web.port}/.well-known/acme-challenge/missing: expected status 200, got 404`,
    });
    routes.set(challengePath('busy'), (_req, res) => res.writeHead(503).end());
    await rejectsWith(http01('busy'), { problemType: 'incorrectResponse', retryable: true, message: /expected status 200, got 503/ });
  });

  it('refuses a body larger than 8 KiB without reading it all', async () => {
    routes.set(challengePath('big'), answer(`${ka('big')}${' '.repeat(9000)}`));
    await rejectsWith(http01('big'), {
      problemType: 'incorrectResponse',
      retryable: false,
      message: /the response body is larger than 8192 bytes/,
    });
  });

  it('follows a redirect to http on the redirect port, to another name, re-resolving it', async () => {
    routes.set(challengePath('hop'), redirect(`http://other.test:${web80.port}/elsewhere/hop`));
    routes.set('/elsewhere/hop', answer(ka('hop')));
    const records = await http01('hop');
    assert.equal(records.length, 2);
    assert.equal(records[1].url, `http://other.test:${web80.port}/elsewhere/hop`);
    assert.equal(records[1].hostname, 'other.test');
    assert.deepEqual(web80.requests.at(-1), { host: `other.test:${web80.port}`, path: '/elsewhere/hop' });
  });

  it('follows a redirect to https without verifying the certificate (RFC 8555 section 8.3)', async () => {
    routes.set(challengePath('tls'), redirect(`https://secure.test:${tls443Port}/secure/tls`, 301));
    routes.set('/secure/tls', answer(ka('tls')));
    const records = await http01('tls');
    assert.deepEqual(
      records.map((r) => r.url),
      [`http://example.test:${web.port}${challengePath('tls')}`, `https://secure.test:${tls443Port}/secure/tls`],
    );
  });

  it('refuses redirects to other ports (the challenge port included) and other schemes', async () => {
    routes.set(challengePath('port'), redirect(`http://example.test:${web.port}/x`));
    await rejectsWith(http01('port'), {
      problemType: 'connection',
      retryable: false,
      message: `http://example.test:${web.port}/.well-known/acme-challenge/port: redirect to http://example.test:${web.port}/x refused: only port ${web80.port} (http) and ${tls443Port} (https) are followed`,
    });
    routes.set(challengePath('https-port'), redirect(`https://example.test:${web80.port}/x`));
    await rejectsWith(http01('https-port'), { problemType: 'connection', retryable: false, message: /refused: only port/ });
    routes.set(challengePath('ftp'), redirect('ftp://example.test/x'));
    await rejectsWith(http01('ftp'), { problemType: 'connection', retryable: false, message: /refused: only http and https are followed/ });
  });

  it('with the production redirect ports, follows only to 80 (http) and 443 (https)', async () => {
    const production = { http: 80, https: 443 };
    routes.set(challengePath('p8080'), redirect('http://example.test:8080/x'));
    await rejectsWith(http01('p8080', 'example.test', {}, production), {
      problemType: 'connection',
      retryable: false,
      message: /refused: only port 80 \(http\) and 443 \(https\) are followed/,
    });
    // Followed: the target is resolved (and has no address, so nothing is contacted).
    routes.set(challengePath('p80'), redirect('http://nowhere.test/x'));
    await rejectsWith(http01('p80', 'example.test', {}, production), {
      problemType: 'dns',
      retryable: false,
      message: 'no A or AAAA records for nowhere.test',
    });
    routes.set(challengePath('p443'), redirect('https://nowhere.test:443/x'));
    await rejectsWith(http01('p443', 'example.test', {}, production), {
      problemType: 'dns',
      retryable: false,
      message: 'no A or AAAA records for nowhere.test',
    });
  });

  it('stops after 10 redirects, and at a loop', async () => {
    routes.set(challengePath('many'), redirect(`http://example.test:${web80.port}/many/1`));
    for (let i = 1; i <= 20; i++) routes.set(`/many/${i}`, redirect(`/many/${i + 1}`));
    await rejectsWith(http01('many'), { problemType: 'connection', retryable: false, message: /more than 10 redirects/ });
    routes.set(challengePath('loop'), redirect(`http://example.test:${web80.port}/loop`));
    routes.set('/loop', redirect('/loop'));
    await rejectsWith(http01('loop'), {
      problemType: 'connection',
      retryable: false,
      message: /redirect loop at http:\/\/example.test:\d+\/loop/,
    });
  });

  it('gives up on a server that does not answer within the attempt timeout: retryable', async () => {
    routes.set(challengePath('slow'), () => {}); // never responds
    const started = Date.now();
    await rejectsWith(http01('slow', 'example.test', { attemptTimeoutSeconds: 1 }), {
      problemType: 'connection',
      retryable: true,
      message: `http://example.test:${web.port}/.well-known/acme-challenge/slow: timeout after 1s`,
    });
    assert.ok(Date.now() - started < 2500, 'bounded by attemptTimeoutSeconds');
  });

  it('reports a refused connection as retryable', async () => {
    const closed = await freePort();
    await rejectsWith(http01('refused', 'example.test', { http01Port: closed }), {
      problemType: 'connection',
      retryable: true,
      message: `connection refused by 127.0.0.1:${closed}`,
    });
  });

  it('refuses loopback addresses unless allowLoopback, without connecting', async () => {
    routes.set(challengePath('lo'), answer(ka('lo')));
    const before = web.requests.length;
    await rejectsWith(http01('lo', 'example.test', { allowLoopback: false }), {
      problemType: 'rejectedIdentifier',
      retryable: false,
      message: 'refusing to connect to example.test: it resolves to 127.0.0.1 (a loopback address)',
    });
    await rejectsWith(http01('lo', '127.0.0.1', { allowLoopback: false }), {
      problemType: 'rejectedIdentifier',
      retryable: false,
      message: 'refusing to connect to 127.0.0.1 (a loopback address)',
    });
    assert.equal(web.requests.length, before);
  });

  it('validates an IPv4 identifier at the address itself (RFC 8738)', async () => {
    routes.set(challengePath('ip4'), answer(ka('ip4')));
    const records = await http01('ip4', '127.0.0.1');
    assert.equal(records[0].url, `http://127.0.0.1:${web.port}${challengePath('ip4')}`);
    assert.deepEqual(web.requests.at(-1), { host: `127.0.0.1:${web.port}`, path: challengePath('ip4') });
  });

  it('validates an IPv6 identifier in brackets', async (t) => {
    let web6: TestHttpServer;
    try {
      web6 = await startHttpServer(answer(ka('ip6')), '::1');
    } catch {
      t.skip('no IPv6 loopback on this machine');
      return;
    }
    try {
      const records = await http01('ip6', '::1', { http01Port: web6.port });
      assert.equal(records[0].url, `http://[::1]:${web6.port}${challengePath('ip6')}`);
      assert.deepEqual(web6.requests.at(-1), { host: `[::1]:${web6.port}`, path: challengePath('ip6') });
    } finally {
      await web6.close();
    }
  });

  it('tries IPv6 first and falls back to IPv4 when the IPv6 connection fails', async (t) => {
    try {
      await assertPortFree('::1', web.port, 'the IPv6 fallback test');
    } catch {
      t.skip(`something listens on [::1]:${web.port}`);
      return;
    }
    await srv.setA('dual.test', '127.0.0.1');
    await setAaaa(srv, 'dual.test', '::1');
    routes.set(challengePath('dual'), answer(ka('dual')));
    const [record] = await http01('dual', 'dual.test');
    assert.deepEqual(record.addressesResolved, ['::1', '127.0.0.1']);
    assert.equal(record.addressUsed, '127.0.0.1');
  });

  it('refuses a peer that does not speak HTTP, finally', async () => {
    // resume(): a paused socket would never read the client's FIN, and close() would wait forever.
    const garbage: TcpServer = createTcpServer((s) => s.resume().end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    await new Promise<void>((resolve) => garbage.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (garbage.address() as AddressInfo).port;
      await rejectsWith(http01('ssh', 'example.test', { http01Port: port }), {
        problemType: 'incorrectResponse',
        retryable: false,
        message: /malformed HTTP response \(HPE_/,
      });
    } finally {
      await new Promise((resolve) => garbage.close(resolve));
    }
  });

  it('validateChallenge: http-01 cannot validate a wildcard; the key authorization must match the token', async () => {
    const c = ctx();
    await rejectsWith(
      validateChallenge(c, {
        type: 'http-01',
        identifier: { type: 'dns', value: 'example.test' },
        wildcard: true,
        token: 'w',
        keyAuthorization: ka('w'),
      }),
      { problemType: 'malformed', retryable: false, message: /only dns-01 can/ },
    );
    await rejectsWith(
      validateChallenge(c, {
        type: 'http-01',
        identifier: { type: 'dns', value: '*.example.test' },
        wildcard: false,
        token: 'w',
        keyAuthorization: ka('w'),
      }),
      { problemType: 'malformed', retryable: false, message: 'http-01 cannot validate the wildcard *.example.test: only dns-01 can' },
    );
    await rejectsWith(
      validateChallenge(c, {
        type: 'http-01',
        identifier: { type: 'dns', value: 'example.test' },
        wildcard: false,
        token: 'a',
        keyAuthorization: ka('b'),
      }),
      { problemType: 'malformed', retryable: false },
    );
    routes.set(challengePath('vc'), answer(ka('vc')));
    const records = await validateChallenge(c, {
      type: 'http-01',
      identifier: { type: 'dns', value: 'Example.TEST.' },
      wildcard: false,
      token: 'vc',
      keyAuthorization: ka('vc'),
    });
    assert.equal(records[0].hostname, 'example.test');
  });
});
