/**
 * `--stuck` and `--waiting` of `certflow requests list` and `certflow orders list`: the
 * requests the one definition (src/db/repos/stuck.ts) calls stuck or waiting, each with why,
 * since when, its workflow (and its Temporal UI page where one is configured) and the
 * commands that act on it.
 */
import type { Config } from '../config/index.ts';
import { describeDuration, stuckRequests, waitingRequests, type RequestAction, type RequestCondition } from '../db/repos/stuck.ts';
import { workflowUrl } from '../temporal/ui.ts';
import type { CliContext } from './context.ts';

/** The command that performs `action` on the request. */
function command(action: RequestAction, e: RequestCondition): string {
  if (action === 'approve' || action === 'reject') return `certflow approvals ${action} ${e.id}`;
  return `certflow ${e.kind === 'order' ? 'orders' : 'requests'} ${action} ${e.id}`;
}

function conditionView(config: Config, e: RequestCondition) {
  return {
    id: e.id,
    kind: e.kind,
    protocol: e.protocol,
    state: e.state,
    ...(e.condition === 'stuck' ? { reason: e.reason } : { on: e.on }),
    since: e.since,
    for: describeDuration(e.seconds),
    seconds: e.seconds,
    why: e.why,
    error: e.lastError,
    label: e.label,
    requester: e.requester,
    profile: e.profile,
    workflow: e.workflowId,
    workflowUrl: workflowUrl(config, e.workflowId) ?? null,
    actions: e.actions.map((a) => command(a, e)),
  };
}

/** Prints the stuck (or waiting) requests, optionally of one protocol and state. */
export async function printConditions(
  cli: CliContext,
  which: 'stuck' | 'waiting',
  filter: { protocol?: string; state?: string; limit: number },
): Promise<void> {
  await cli.withPool(async (pool, config) => {
    const find = which === 'stuck' ? stuckRequests : waitingRequests;
    const rows = (await find(pool, config.stuck, { protocol: filter.protocol, limit: filter.limit })).filter(
      (e) => !filter.state || e.state === filter.state,
    );
    const view = rows.map((e) => conditionView(config, e));
    if (cli.json()) return cli.printJson(view);
    const columns = ['id', 'protocol', 'state', which === 'stuck' ? 'reason' : 'on', 'since', 'for', 'why', 'workflow', 'actions'];
    process.stdout.write(cli.table(view, columns));
  });
}
