/** Links into the Temporal Web UI, for every surface that names a workflow (console, CLI, API). */
import type { Config } from '../config/index.ts';

/** The workflow's page in the Temporal Web UI; undefined when no UI is configured (CERTFLOW_TEMPORAL_UI_URL). */
export function workflowUrl(config: Pick<Config, 'admin' | 'temporal'>, workflowId: string): string | undefined {
  const ui = config.admin.temporalUiUrl;
  return ui ? `${ui}/namespaces/${encodeURIComponent(config.temporal.namespace)}/workflows/${encodeURIComponent(workflowId)}` : undefined;
}
