/**
 * What every validator needs: the validation configuration, a DNS client and the ports
 * redirects may go to. Passed explicitly (no module state) so that tests can point the VA
 * at their own DNS server and web servers without touching globals.
 */
import type { ValidationConfig } from '../config/index.ts';
import { dnsClientFromConfig, type DnsClient } from './dns.ts';

export interface RedirectPorts {
  http: number;
  https: number;
}

/**
 * Redirects may only go to http on 80 and https on 443 (Let's Encrypt's rule for RFC 8555
 * section 8.3): otherwise a challenge responder could aim the CA at any service port of
 * any host it can name.
 */
const DEFAULT_REDIRECT_PORTS: RedirectPorts = { http: 80, https: 443 };

export interface VaContext {
  config: ValidationConfig;
  dns: DnsClient;
  /** Production: DEFAULT_REDIRECT_PORTS. Tests bind unprivileged ports and override this. */
  redirectPorts: RedirectPorts;
}

export interface VaOverrides {
  /** A DNS client to use instead of one built from config.dnsResolver (tests: fakes). */
  dns?: DnsClient;
  redirectPorts?: RedirectPorts;
}

export function createVaContext(config: ValidationConfig, overrides: VaOverrides = {}): VaContext {
  return {
    config,
    dns: overrides.dns ?? dnsClientFromConfig(config),
    redirectPorts: overrides.redirectPorts ?? DEFAULT_REDIRECT_PORTS,
  };
}

/**
 * A point in time by which an attempt must be over. One per validation attempt, so that DNS
 * look-ups, connects and redirects share attemptTimeoutSeconds instead of each getting it.
 */
export class Deadline {
  readonly totalMs: number;
  private readonly at: number;

  constructor(ms: number) {
    this.totalMs = ms;
    this.at = Date.now() + ms;
  }

  static seconds(s: number): Deadline {
    return new Deadline(s * 1000);
  }

  remainingMs(): number {
    return Math.max(0, this.at - Date.now());
  }

  /** "10s", for messages. */
  describe(): string {
    return `${Math.round(this.totalMs / 100) / 10}s`;
  }
}
