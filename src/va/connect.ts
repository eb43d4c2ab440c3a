/**
 * Reaching a validation target: resolve the host, keep the addresses the SSRF guard allows,
 * connect to one of them (IPv6 first, falling back to the next address when the connection
 * cannot be made), optionally over TLS. All bounded by the attempt's Deadline.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Deadline, VaContext } from './context.ts';
import { ValidationError, type ProblemType } from './errors.ts';
import { hostPort } from './identifier.ts';
import { addressRefusal } from './ssrf.ts';

export interface ResolvedTarget {
  host: string;
  /** Everything DNS returned (for the validation record). */
  addressesResolved: string[];
  /** The addresses the guard allows, in the order they are tried. */
  usable: string[];
}

/** A failure to establish the TCP connection: the next address may still work. */
class ConnectError extends ValidationError {}

/**
 * Resolves `host` (or takes it as it is, when it is an IP address) and filters the addresses
 * through the SSRF guard.
 * @param refusedAs the problem type when no address is allowed: 'rejectedIdentifier' for the
 *   identifier itself, 'connection' for a redirect target
 */
export async function resolveTarget(ctx: VaContext, host: string, deadline: Deadline, refusedAs: ProblemType): Promise<ResolvedTarget> {
  const addressesResolved = isIP(host) ? [host] : await ctx.dns.resolveAddresses(host, { timeoutMs: deadline.remainingMs() });
  if (!addressesResolved.length) throw ValidationError.final('dns', `no A or AAAA records for ${host}`);
  const usable = addressesResolved.filter((a) => addressRefusal(a, ctx.config) === undefined);
  if (!usable.length) {
    const why = addressesResolved.map((a) => `${a} (${addressRefusal(a, ctx.config)})`).join(', ');
    throw ValidationError.final(
      refusedAs,
      isIP(host) ? `refusing to connect to ${why}` : `refusing to connect to ${host}: it resolves to ${why}`,
    );
  }
  return { host, addressesResolved, usable };
}

const RETRY_NEXT_ADDRESS = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'EAFNOSUPPORT', 'ETIMEDOUT']);

/** One TCP connection to address:port within timeoutMs. */
function connectTcp(address: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: address, port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new ConnectError('connection', `timeout connecting to ${hostPort(address, port)} after ${Math.round(timeoutMs / 100) / 10}s`, {
          retryable: true,
        }),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      handOver(socket);
      resolve(socket);
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      reject(connectFailure(e, address, port));
    });
  });
}

/**
 * Replaces the set-up error handler by one that ignores errors: from here on the layer on top
 * (TLS, HTTP) reports them, and its deadline ends a stalled exchange. Without any listener a
 * stray error would crash the worker process.
 */
function handOver(socket: Socket): void {
  socket.removeAllListeners('error');
  socket.on('error', () => {});
}

function connectFailure(e: NodeJS.ErrnoException, address: string, port: number): ValidationError {
  const where = hostPort(address, port);
  const text =
    e.code === 'ECONNREFUSED'
      ? `connection refused by ${where}`
      : e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH'
        ? `${where} is unreachable (${e.code})`
        : `cannot connect to ${where}: ${e.code ?? e.message}`;
  // All of these may be temporary (a server being restarted, a route flapping).
  return new ConnectError('connection', text, { retryable: true, cause: e });
}

/**
 * Connects to the first address that accepts. While other addresses remain, one connect may
 * use at most half of the remaining time, so that a black-holed IPv6 address cannot eat the
 * whole attempt. The last failure is the one reported.
 */
export async function connectFirst(target: ResolvedTarget, port: number, deadline: Deadline): Promise<{ socket: Socket; address: string }> {
  let last: ValidationError | undefined;
  for (const [i, address] of target.usable.entries()) {
    const more = i < target.usable.length - 1;
    const budget = more ? Math.floor(deadline.remainingMs() / 2) : deadline.remainingMs();
    if (budget <= 0) break;
    try {
      return { socket: await connectTcp(address, port, budget), address };
    } catch (e) {
      if (!(e instanceof ConnectError)) throw e;
      last = e;
      const code = (e.cause as NodeJS.ErrnoException | undefined)?.code;
      if (code !== undefined && !RETRY_NEXT_ADDRESS.has(code)) break;
    }
  }
  throw last ?? ValidationError.transient('connection', `timeout after ${deadline.describe()} before connecting to ${target.host}`);
}

/**
 * TLS handshake over a connected socket. Certificates are not verified: RFC 8555 section
 * 8.3 (https redirects) and RFC 8737 (self-signed challenge certificates) both say the
 * validation does not depend on it.
 * @param what the target for messages ("https://example.test/...", "example.test:443")
 */
export function tlsHandshake(socket: Socket, opts: ConnectionOptions, deadline: Deadline, what: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({
      ...opts,
      socket,
      rejectUnauthorized: false,
      // Never compare the certificate's names with the host either (see above).
      checkServerIdentity: () => undefined,
      minVersion: 'TLSv1.2',
    });
    const timer = setTimeout(() => {
      tls.destroy();
      reject(ValidationError.transient('connection', `${what}: timeout after ${deadline.describe()} during the TLS handshake`));
    }, deadline.remainingMs());
    tls.once('secureConnect', () => {
      clearTimeout(timer);
      handOver(tls);
      resolve(tls);
    });
    tls.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      tls.destroy();
      reject(tlsFailure(e, what));
    });
  });
}

function tlsFailure(e: NodeJS.ErrnoException, what: string): ValidationError {
  // A reset or a closed connection says nothing about the challenge: try again later.
  if (e.code === 'ECONNRESET' || e.code === 'EPIPE' || /socket disconnected/i.test(e.message)) {
    return ValidationError.transient('connection', `${what}: connection closed during the TLS handshake (${e.code ?? e.message})`, e);
  }
  // OpenSSL's messages carry a file/line trailer; its `reason` is the readable part.
  const reason = (e as { reason?: string }).reason ?? e.message.trim();
  return ValidationError.final('tls', `${what}: TLS handshake failed: ${reason}${e.code ? ` (${e.code})` : ''}`, e);
}
