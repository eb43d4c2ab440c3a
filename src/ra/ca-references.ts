/**
 * Whether the CAs the configuration names exist. CAs are made at run time (`certflow ca
 * create`, `ca import`), so the configuration file's schema checks names only syntactically
 * when it is loaded (the CAs it seeds, ca.rootName and ca.issuingName, are made by the
 * worker at first start). A name that is not a CA yet is allowed (configure first, create
 * after: an EST label may trust the client certificates of a CA made later) and reported:
 *
 * - at start (`certflow server`, `worker`, `admin`) and on /healthz and the console's
 *   dashboard: "acme.aliases[1].caName: no CA named "devices"", with the JSON path;
 * - at use: an enrollment through an ACME alias, EST label or CMP alias whose CA exists
 *   but cannot sign (revoked, expired, pending) is refused before any workflow starts, with
 *   a server fault (503) naming the CA and why; one whose CA does not exist is kept, like
 *   any request the server cannot serve yet, with `unknown issuing CA "…"` as its error
 *   (`certflow requests list --stuck`), and issued once the CA is there.
 */
import type { Config } from '../config/index.ts';
import type { CaReference } from '../config/schema.ts';
import type { CertProfile } from '../config/profiles.ts';
import { CaError } from '../core/errors.ts';
import type { Queryable } from '../db/pool.ts';
import * as cas from '../db/repos/cas.ts';
import { cannotSign, issuingCaName } from '../ca/authority.ts';

/** The configured CA names that are neither seeded nor in the database, each with a message naming its JSON path. */
export async function unknownCaReferences(
  config: Pick<Config, 'ca' | 'caReferences' | 'configFile'>,
  db: Queryable,
): Promise<Array<CaReference & { message: string }>> {
  if (!config.caReferences.length) return [];
  const existing = (await cas.list(db)).map((c) => c.name);
  const known = new Set([config.ca.rootName, config.ca.issuingName, ...existing]);
  return config.caReferences
    .filter((r) => !known.has(r.name))
    .map((r) => ({
      ...r,
      message: `configuration file ${config.configFile ?? '(none)'}: ${r.path}: no CA named "${r.name}" (create it with \`certflow ca create --name ${r.name}\`)`,
    }));
}

/**
 * The name of the CA a request through `what` (an ACME alias, EST label, CMP alias) is
 * issued by; CaError('config') naming it and why when it exists but cannot sign. Read fresh
 * (one primary-key lookup): a revocation applies to the next request.
 */
export async function usableIssuingCa(
  db: Queryable,
  config: Pick<Config, 'ca'>,
  what: string,
  named: string | undefined,
  profile: Pick<CertProfile, 'issuer'>,
): Promise<string> {
  const name = issuingCaName(config, named, profile);
  const ca = await cas.get(db, name);
  // A CA that does not exist (yet) is not refused here: the request is kept until it does.
  const why = !ca
    ? undefined
    : ca.role !== 'issuing'
      ? new CaError('config', `CA "${name}" is a root, not an issuing CA`, { rule: 'ca.notIssuing' })
      : cannotSign(ca, new Date());
  if (why)
    throw new CaError('config', `${what} issues from CA "${name}", which cannot sign: ${why.message}`, { rule: why.rule ?? 'ca.unusable' });
  return name;
}
