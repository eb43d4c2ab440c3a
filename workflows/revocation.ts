/**
 * Revoke, hold or release one certificate (`revoke-<serial>`), and the periodic renewal of
 * CRLs and OCSP responses (`crlWorkflow`, run by the `certflow-revocation-refresh`
 * schedule and by `certflow crl generate`).
 */
import { proxyActivities, setCurrentDetails, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { RefreshInput, RefreshResult, RevocationActivities, StatusChangeInput, StatusChangeResult } from '../activities/types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import { signingTaskQueue } from './api.ts';
import { SIGNING_ACTIVITY_OPTIONS } from './options.ts';

function revocationActivities(): RevocationActivities {
  return proxyActivities<RevocationActivities>({ ...SIGNING_ACTIVITY_OPTIONS, taskQueue: signingTaskQueue(workflowInfo().taskQueue) });
}

export async function revocationWorkflow(input: StatusChangeInput): Promise<StatusChangeResult> {
  upsertSearchAttributes(
    searchAttributes({ protocol: input.protocol ?? 'operator', state: `${input.action}-pending`, account: input.requester }),
  );
  setCurrentDetails(`**${input.action}** certificate ${input.serial}: waiting for the signing worker (OCSP, CRL)`);
  const result = await revocationActivities().changeCertificateStatus(input);
  upsertSearchAttributes(searchAttributes({ state: result.status }));
  setCurrentDetails(`certificate ${result.serial} is **${result.status}**; CRL ${result.crlNumber} of ${result.caName} published`);
  return result;
}

export async function crlWorkflow(input: RefreshInput): Promise<RefreshResult> {
  const acts = revocationActivities();
  const total: RefreshResult = { crls: [], ocspSigned: 0, more: false };
  // Each run signs at most a batch of OCSP responses; a few rounds drain a backlog.
  for (let round = 0; round < 20; round++) {
    const r = await acts.refreshRevocationData(round === 0 ? input : { caName: input.caName });
    total.crls.push(...r.crls);
    total.ocspSigned += r.ocspSigned;
    setCurrentDetails(`renewed ${total.crls.length} CRL(s), ${total.ocspSigned} OCSP response(s)`);
    total.more = r.more;
    if (!r.more) break;
  }
  return total;
}
