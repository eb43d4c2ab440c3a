/**
 * One ACME order (`acme-order-<id>`), the only writer of the order's state:
 * pending -> ready (all authorizations valid) -> processing (finalize Update) -> valid, or
 * invalid (an authorization failed, the CSR was refused, the order expired or an operator
 * canceled it). Created with Update-with-Start: the `created` Update returns once the
 * order and its new authorizations are in the read model, so the handler can answer.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  ParentClosePolicy,
  condition,
  defineUpdate,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AcmeStorageActivities, AuthzChange, OrderInput, OrderStatus, Problem } from '../activities/acme-types.ts';
import type { SigningActivities } from '../activities/types.ts';
import type { ValidationActivities } from '../activities/validation-types.ts';
import { searchAttributes } from '../src/temporal/search-attributes.ts';
import { acmeAuthzWorkflow, authzChangedSignal } from './acme-authz.ts';
import { REQUESTER_ERROR_TYPES, SIGNING_ACTIVITY_OPTIONS, STORAGE_ACTIVITY_OPTIONS, STORAGE_AFTER_UPDATE_OPTIONS } from './options.ts';

export const orderCreatedUpdate = defineUpdate<{ status: OrderStatus }, []>('created');
export const finalizeUpdate = defineUpdate<{ status: OrderStatus }, [{ csr: string }]>('finalize');
export const cancelOrderUpdate = defineUpdate<{ status: OrderStatus }, [{ by: string; reason?: string }]>('cancel');

const storage = proxyLocalActivities<AcmeStorageActivities>(STORAGE_ACTIVITY_OPTIONS);
const storageAfterUpdate = proxyActivities<AcmeStorageActivities>(STORAGE_AFTER_UPDATE_OPTIONS);
const acmeError = (type: string, detail: string): Problem => ({ type: `urn:ietf:params:acme:error:${type}`, detail });

function msUntil(iso: string): number {
  return Math.max(0, new Date(iso).getTime() - Date.now());
}

export async function acmeOrderWorkflow(input: OrderInput): Promise<OrderStatus> {
  const { workflowId, taskQueue } = workflowInfo();
  let status: OrderStatus = 'pending';
  let created = false;
  let csr: string | undefined;
  let canceled: { by: string; reason?: string } | undefined;
  const authzs = new Map(input.authzs.map((a) => [a.id, { ...a, error: undefined as Problem | undefined }]));

  setHandler(orderCreatedUpdate, async () => {
    await condition(() => created);
    return { status };
  });
  setHandler(authzChangedSignal, (change: AuthzChange) => {
    const a = authzs.get(change.authzId);
    if (a) Object.assign(a, { status: change.status, method: change.method ?? a.method, error: change.error });
  });
  setHandler(
    finalizeUpdate,
    (req) => {
      csr = req.csr;
      status = 'processing';
      return { status: status as OrderStatus };
    },
    {
      validator: (_req: { csr: string }) => {
        if (status !== 'ready') throw ApplicationFailure.nonRetryable(`the order is ${status}, not ready`, 'orderNotReady');
      },
    },
  );
  setHandler(
    cancelOrderUpdate,
    (c) => {
      canceled = c;
      return { status: 'invalid' as OrderStatus };
    },
    {
      validator: (_c: { by: string; reason?: string }) => {
        if (status === 'valid' || status === 'invalid' || status === 'processing') {
          throw ApplicationFailure.nonRetryable(`the order is ${status}; it can no longer be canceled`, 'malformed');
        }
      },
    },
  );

  const identifiers = input.identifiers.map((i) => `${i.type}:${i.value}`);
  /** `afterUpdate`: the transition follows an Update (finalize, cancel): see STORAGE_AFTER_UPDATE_OPTIONS. */
  const transition = async (s: OrderStatus, details: string, p: { error?: Problem; serial?: string } = {}, afterUpdate = false) => {
    status = s;
    upsertSearchAttributes(
      searchAttributes({ protocol: 'acme', state: s, identifiers, account: input.accountId, lastError: p.error?.detail }),
    );
    setCurrentDetails(`**${s}** — ${details}`);
    await (afterUpdate ? storageAfterUpdate : storage).projectOrder({ id: input.orderId, status: s, ...p });
  };

  upsertSearchAttributes(searchAttributes({ protocol: 'acme', state: 'pending', identifiers, account: input.accountId }));
  await storage.createOrderRecords(
    {
      id: input.orderId,
      accountId: input.accountId,
      alias: input.alias,
      status: 'pending',
      identifiers: input.identifiers,
      authzIds: input.authzs.map((a) => a.id),
      expiresAt: input.expiresAt,
      profile: input.profile,
      acmeProfile: input.acmeProfile,
      replaces: input.replaces,
    },
    input.newAuthzs.map((a) => ({
      id: a.authzId,
      accountId: a.accountId,
      alias: a.alias,
      identifier: a.identifier,
      wildcard: a.wildcard,
      status: 'pending',
      expiresAt: a.expiresAt,
      challenges: a.challenges.map((c) => ({ ...c, status: 'pending' })),
    })),
  );
  for (const a of input.newAuthzs) {
    // Authorizations outlive their order (reuse by later orders, deactivation).
    await startChild(acmeAuthzWorkflow, {
      workflowId: `acme-authz-${a.authzId}`,
      taskQueue,
      args: [{ ...a, orderWorkflowIds: [workflowId] }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: searchAttributes({ protocol: 'acme', state: 'authz-pending', account: input.accountId }),
    });
  }
  created = true;
  setCurrentDetails(`**pending** — waiting for ${input.authzs.length} authorization(s)`);

  const all = () => [...authzs.values()];
  const failed = () => all().find((a) => a.status !== 'valid' && a.status !== 'pending');
  const decided = await condition(() => canceled !== undefined || failed() !== undefined || all().every((a) => a.status === 'valid'), msUntil(input.expiresAt));
  if (!decided) return end('invalid', 'expired before its authorizations were valid', acmeError('malformed', 'the order expired'));
  if (canceled) return end('invalid', `canceled by ${canceled.by}`, acmeError('malformed', `canceled by ${canceled.by}${canceled.reason ? `: ${canceled.reason}` : ''}`), true);
  const bad = failed();
  if (bad) {
    const error = bad.error ?? acmeError('unauthorized', `authorization for ${bad.identifier.value} is ${bad.status}`);
    return end('invalid', `authorization ${bad.id} is ${bad.status}`, { ...error, detail: `${bad.identifier.value}: ${error.detail}` });
  }

  await transition('ready', 'all authorizations are valid; waiting for finalize');
  const finalized = await condition(() => csr !== undefined || canceled !== undefined, msUntil(input.expiresAt));
  if (!finalized) return end('invalid', 'expired before it was finalized', acmeError('malformed', 'the order expired before it was finalized'));
  // (The cancel Update may have arrived while waiting: TypeScript cannot see handler writes.)
  const lateCancel = canceled as { by: string; reason?: string } | undefined;
  if (lateCancel) return end('invalid', `canceled by ${lateCancel.by}`, acmeError('malformed', `canceled by ${lateCancel.by}`), true);

  await transition('processing', 'checking CAA and signing', {}, true);
  const va = proxyActivities<ValidationActivities>({
    startToCloseTimeout: '30 seconds',
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
  });
  const signing = proxyActivities<SigningActivities>({ ...SIGNING_ACTIVITY_OPTIONS, taskQueue: `${taskQueue}-signing` });
  try {
    const dnsAuthzs = all().filter((a) => a.identifier.type === 'dns');
    if (dnsAuthzs.length) {
      await va.checkCaa({
        identifiers: dnsAuthzs.map((a) => ({ type: 'dns', value: a.identifier.value, wildcard: a.wildcard, method: a.method ?? 'http-01' })),
        accountUri: input.accountUri,
        caaIdentities: input.caaIdentities,
      });
    }
    const cert = await signing.issueCertificate({
      requestId: input.orderId,
      protocol: 'acme',
      csr: csr!,
      profile: input.profile,
      caName: input.caName,
      requester: input.accountId,
      replaces: input.replacesSerial,
    });
    await transition('valid', `certificate ${cert.serial} issued`, { serial: cert.serial });
    return status;
  } catch (err) {
    const app = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
    if (!app) throw err;
    const type = app.type === 'caa' ? 'caa' : REQUESTER_ERROR_TYPES.includes(app.type ?? '') ? 'badCSR' : (app.type ?? 'serverInternal');
    return end('invalid', `refused: ${app.message}`, acmeError(type, app.message));
  }

  async function end(s: OrderStatus, details: string, error: Problem, afterUpdate = false): Promise<OrderStatus> {
    await transition(s, details, { error }, afterUpdate);
    return s;
  }
}
