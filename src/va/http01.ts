/**
 * http-01 (RFC 8555 section 8.3, RFC 8738 for IP identifiers): GET
 * http://<identifier>:<http01Port>/.well-known/acme-challenge/<token> must answer 200 with
 * the key authorization (trailing whitespace ignored).
 *
 * The VA resolves names itself and connects to the address the SSRF guard checked; the Host
 * header carries the name. Redirects are followed (at most MAX_REDIRECTS) only to http/https
 * on the redirect ports (80/443), each target resolved and checked again; https is spoken
 * without certificate verification, as RFC 8555 section 8.3 allows. The whole attempt,
 * redirects included, must fit into attemptTimeoutSeconds.
 */
import { request, type IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { connectFirst, resolveTarget, tlsHandshake } from './connect.ts';
import { Deadline, type VaContext } from './context.ts';
import { quote, ValidationError } from './errors.ts';
import { normalizeIdentifier, urlHost, type Identifier } from './identifier.ts';

const MAX_REDIRECTS = 10;
/** A key authorization is ~87 bytes; anything much larger is not one (and is not read). */
const MAX_BODY_BYTES = 8192;

export interface Http01Input {
  identifier: Identifier;
  token: string;
  keyAuthorization: string;
}

/** One request of the validation (RFC 8555 section 8.3 asks CAs to record what they did). */
export interface Http01Record {
  url: string;
  hostname: string;
  port: number;
  addressesResolved: string[];
  addressUsed: string;
}

type HttpResponse = { status: number; location?: string; body?: Buffer };

const TOKEN = /^[A-Za-z0-9_-]+$/;

export async function validateHttp01(ctx: VaContext, input: Http01Input): Promise<Http01Record[]> {
  const id = normalizeIdentifier(input.identifier);
  if (!TOKEN.test(input.token)) throw ValidationError.final('malformed', `token ${quote(input.token)} is not base64url`);
  const deadline = Deadline.seconds(ctx.config.attemptTimeoutSeconds);
  const records: Http01Record[] = [];
  const seen = new Set<string>();
  let url = new URL(`http://${urlHost(id.value)}:${ctx.config.http01Port}/.well-known/acme-challenge/${input.token}`);
  for (;;) {
    seen.add(url.href);
    const res = await fetchOnce(ctx, url, deadline, records);
    if (isRedirect(res.status)) {
      if (records.length > MAX_REDIRECTS)
        throw ValidationError.final('connection', `${records[0].url}: more than ${MAX_REDIRECTS} redirects`);
      url = redirectTarget(ctx, url, res);
      if (seen.has(url.href)) throw ValidationError.final('connection', `${records[0].url}: redirect loop at ${url.href}`);
      continue;
    }
    checkResponse(url, res, input.keyAuthorization);
    return records;
  }
}

function isRedirect(status: number): boolean {
  return [301, 302, 303, 307, 308].includes(status);
}

/** The checked next URL of a redirect; refusals are final (the responder chose them). */
function redirectTarget(ctx: VaContext, from: URL, res: HttpResponse): URL {
  if (!res.location) throw ValidationError.final('incorrectResponse', `${from.href}: redirect (${res.status}) without a Location header`);
  let next: URL;
  try {
    next = new URL(res.location, from);
  } catch {
    throw ValidationError.final('connection', `${from.href}: redirect to an invalid URL ${quote(res.location)}`);
  }
  const refuse = (why: string) => ValidationError.final('connection', `${from.href}: redirect to ${next.href} refused: ${why}`);
  if (next.protocol !== 'http:' && next.protocol !== 'https:') throw refuse('only http and https are followed');
  const { http, https } = ctx.redirectPorts;
  if (portOf(next) !== (next.protocol === 'http:' ? http : https))
    throw refuse(`only port ${http} (http) and ${https} (https) are followed`);
  const host = hostOf(next);
  if (!isIP(host) && !/^[a-z0-9.-]+$/.test(host)) throw refuse('the host is not a DNS name or an IP address');
  // Credentials and fragments are never sent.
  next.username = '';
  next.password = '';
  next.hash = '';
  return next;
}

function portOf(url: URL): number {
  return url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

/** URL.hostname keeps the brackets of an IPv6 address; DNS and connect want it without. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

function checkResponse(url: URL, res: HttpResponse, keyAuthorization: string): void {
  if (res.status !== 200) {
    // A server error or rate limit may pass; any other status is the server's answer.
    const transient = res.status >= 500 || res.status === 429;
    throw new ValidationError(transient ? 'incorrectResponse' : 'unauthorized', `${url.href}: expected status 200, got ${res.status}`, {
      retryable: transient,
    });
  }
  // RFC 8555 section 8.3: whitespace at the end of the body is ignored.
  const got = (res.body ?? Buffer.alloc(0)).toString('utf8').replace(/[\t\n\v\f\r ]+$/, '');
  if (got !== keyAuthorization) {
    throw ValidationError.final(
      'incorrectResponse',
      `${url.href}: expected the key authorization ${quote(keyAuthorization)}, got ${quote(got)}`,
    );
  }
}

/** One GET: resolve, guard, connect (TLS for https), exchange. Appends its record. */
async function fetchOnce(ctx: VaContext, url: URL, deadline: Deadline, records: Http01Record[]): Promise<HttpResponse> {
  const host = hostOf(url);
  const port = portOf(url);
  const target = await resolveTarget(ctx, host, deadline, records.length ? 'connection' : 'rejectedIdentifier');
  const { socket, address } = await connectFirst(target, port, deadline);
  records.push({ url: url.href, hostname: host, port, addressesResolved: target.addressesResolved, addressUsed: address });
  let stream: Socket = socket;
  try {
    if (url.protocol === 'https:') {
      stream = await tlsHandshake(socket, { servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'] }, deadline, url.href);
    }
    return await exchange(stream, url, deadline);
  } finally {
    stream.destroy();
    socket.destroy();
  }
}

/** The HTTP request over an established connection; the body is read only for a 200. */
function exchange(stream: Socket, url: URL, deadline: Deadline): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const req = request({
      createConnection: () => stream,
      method: 'GET',
      path: `${url.pathname}${url.search}`,
      // url.host: the name (IPv6 in brackets) plus the port when it is not the scheme's default.
      headers: { Host: url.host, 'User-Agent': 'certflow-va (+ACME validation)', Accept: '*/*', Connection: 'close' },
      setHost: false,
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(ValidationError.transient('connection', `${url.href}: timeout after ${deadline.describe()}`));
    }, deadline.remainingMs());
    const done = (f: () => void) => {
      clearTimeout(timer);
      f();
    };
    req.once('error', (e: NodeJS.ErrnoException) => done(() => reject(requestFailure(e, url))));
    req.once('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        done(() => resolve({ status, location: res.headers.location }));
        return;
      }
      readBody(res, url).then(
        (body) => done(() => resolve({ status, body })),
        (e: unknown) => done(() => reject(e)),
      );
    });
    req.end();
  });
}

function readBody(res: IncomingMessage, url: URL): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy();
        reject(ValidationError.final('incorrectResponse', `${url.href}: the response body is larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    res.once('end', () => resolve(Buffer.concat(chunks)));
    res.once('error', (e: NodeJS.ErrnoException) => reject(requestFailure(e, url)));
  });
}

function requestFailure(e: NodeJS.ErrnoException, url: URL): ValidationError {
  // llhttp's parse errors: the peer speaks something, but not HTTP/1.1. That is its answer.
  if (e.code?.startsWith('HPE_')) return ValidationError.final('incorrectResponse', `${url.href}: malformed HTTP response (${e.code})`, e);
  const why = e.code === 'ECONNRESET' ? 'connection reset' : e.message;
  return ValidationError.transient('connection', `${url.href}: ${why}`, e);
}
