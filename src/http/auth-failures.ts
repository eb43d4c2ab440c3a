/**
 * The one place the front ends report a failed authentication — a wrong EST password, a CMP
 * message whose MAC does not verify (unknown reference or wrong secret) — with the client's
 * address. Counted per protocol for /metrics (certflow_auth_failures_total). Limiting them
 * per client address (before the check) is src/http/auth-limiter.ts.
 */
export interface AuthFailure {
  protocol: 'est' | 'cmp' | 'console';
  /** The client's address (ctx.ip). */
  address: string | undefined;
  /** The user name or reference that was tried, if any. */
  credential?: string;
}

const counts = new Map<AuthFailure['protocol'], number>();

export function authenticationFailed(f: AuthFailure): void {
  counts.set(f.protocol, (counts.get(f.protocol) ?? 0) + 1);
}

/** Failed authentications so far, per protocol (this process). */
export function authenticationFailures(): ReadonlyMap<AuthFailure['protocol'], number> {
  return counts;
}
