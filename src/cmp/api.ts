/** What the CMP front end's modules share: their dependencies. */
import type { Pool } from 'pg';
import type { Config } from '../config/index.ts';
import type { Logger } from '../core/logger.ts';
import type { CmpRa } from '../ra/cmp.ts';
import type { CmpSigner } from './signer.ts';

export interface CmpDeps {
  config: Config;
  /** Authentication (registered clients, issued certificates), the answer store (cmp_transactions), genm's CA data. */
  pool: Pool;
  /** The registration authority: the transaction's workflow, revocation, the request's read model. */
  ra: CmpRa;
  log: Logger;
  signer: () => CmpSigner;
}
