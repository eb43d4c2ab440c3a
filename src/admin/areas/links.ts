/** Links shared by the pages: a workflow in the Temporal Web UI, a certificate. */
import type { Config } from '../../config/index.ts';
import { workflowUrl } from '../../temporal/ui.ts';
import { html, link, type Html } from '../html.ts';

export { workflowUrl };

/** The workflow id, linked to the Temporal UI when its URL is known. */
export function workflowLink(config: Config, workflowId: string | null | undefined): Html {
  if (!workflowId) return html`-`;
  const url = workflowUrl(config, workflowId);
  return url
    ? html`<a href="${url}" class="workflow" rel="noreferrer" target="_blank">${workflowId}</a>`
    : html`<code>${workflowId}</code>`;
}

export function certLink(serial: string | null | undefined): Html {
  return serial ? link(`/certificates/${serial}`, html`<code>${serial}</code>`) : html`-`;
}
