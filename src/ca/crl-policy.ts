/**
 * How often a CA's CRLs are made and how long they are valid: the CA's CRL profile (a managed
 * profile, `ca create --crl-profile`), or the `revocation` settings of the configuration.
 */
import type { Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';

export interface CrlPolicy {
  /** A new complete CRL when the latest is older than this (and at every revocation without deltas). */
  refreshSeconds: number;
  /** nextUpdate - thisUpdate of a complete CRL. */
  validitySeconds: number;
  /** Delta CRLs: a new one at every revocation or hold, and at least this often. */
  delta?: { intervalSeconds: number };
  /** The CRL profile's name, when one applies. */
  profile?: string;
}

export function crlPolicy(config: Pick<Config, 'revocation' | 'crlProfiles'>, profileName: string | null | undefined): CrlPolicy {
  if (!profileName) return { refreshSeconds: config.revocation.crlRefreshSeconds, validitySeconds: config.revocation.crlValiditySeconds };
  const p = config.crlProfiles.get(profileName);
  if (!p) throw new CaError('config', `CRL profile "${profileName}" does not exist (any more)`, { rule: 'crlProfile.unknown' });
  return {
    profile: p.name,
    refreshSeconds: p.intervalSeconds,
    validitySeconds: p.intervalSeconds + p.overlapSeconds,
    delta: p.deltaCrls ? { intervalSeconds: p.deltaIntervalSeconds ?? Math.max(60, Math.round(p.intervalSeconds / 24)) } : undefined,
  };
}
