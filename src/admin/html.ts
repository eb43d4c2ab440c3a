/**
 * Server-side HTML for the console: a tagged template that escapes every interpolated
 * value unless it is already Html (so user data never becomes markup), and small helpers
 * for tables, forms and definition lists.
 */
export class Html {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

type Value = Html | string | number | boolean | null | undefined | Date | Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v instanceof Date) return escapeHtml(formatTime(v));
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup that is trusted as it is (constants only). */
export function raw(s: string): Html {
  return new Html(s);
}

export function formatTime(d: Date | null | undefined): string {
  if (!d) return '-';
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** A table; `cells` returns the row's cells in the order of `headers`. */
export function table<T>(rows: T[], headers: string[], cells: (row: T) => Value[], opts: { id?: string; empty?: string } = {}): Html {
  if (!rows.length) return html`<p class="empty">${opts.empty ?? 'Nothing to show.'}</p>`;
  return html`<table${opts.id ? raw(` id="${escapeHtml(opts.id)}"`) : ''}>
<thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead>
<tbody>${rows.map(
    (r) =>
      html`<tr>
        ${cells(r).map((c) => html`<td>${c}</td>`)}
      </tr>`,
  )}</tbody></table>`;
}

/** A definition list of label/value pairs. */
export function fields(pairs: Array<[string, Value]>): Html {
  return html`<dl class="fields">
    ${pairs.map(
      ([k, v]) =>
        html`<dt>${k}</dt>
          <dd>${v === undefined || v === null || v === '' ? '-' : v}</dd>`,
    )}
  </dl>`;
}

export function link(href: string, text: Value): Html {
  return html`<a href="${href}">${text}</a>`;
}

/** A status word with its colour class. */
export function badge(text: string, kind?: string): Html {
  return html`<span class="badge ${kind ?? text}">${text}</span>`;
}

/**
 * A form that console.js submits to the admin API as JSON (with the CSRF header). Without
 * JavaScript nothing is sent: every change goes through the API.
 */
export function apiForm(opts: {
  method: 'POST' | 'PUT' | 'DELETE';
  action: string;
  body: Value;
  submit: string;
  confirm?: string;
  /** 'reload' (default), 'show' (print the answer, e.g. a secret shown once) or a URL to go to. */
  then?: string;
  id?: string;
  danger?: boolean;
  inline?: boolean;
}): Html {
  return html`<form
    class="api${opts.inline ? ' inline' : ''}"
    data-api-method="${opts.method}"
    data-api="${opts.action}"
    ${opts.confirm ? raw(` data-confirm="${escapeHtml(opts.confirm)}"`) : ''}
    data-then="${opts.then ?? 'reload'}"
    ${opts.id ? raw(` id="${escapeHtml(opts.id)}"`) : ''}
  >
    ${opts.body}<button type="submit" ${opts.danger ? raw(' class="danger"') : ''}>${opts.submit}</button
    ><output class="result" hidden></output>
  </form>`;
}

export function input(
  name: string,
  label: string,
  opts: { type?: string; value?: string; required?: boolean; placeholder?: string; autocomplete?: string } = {},
): Html {
  return html`<label
    >${label}
    <input
      name="${name}"
      type="${opts.type ?? 'text'}"
      ${opts.value !== undefined ? raw(` value="${escapeHtml(opts.value)}"`) : ''}${
        opts.required ? raw(' required') : ''
      }${opts.placeholder ? raw(` placeholder="${escapeHtml(opts.placeholder)}"`) : ''}${opts.autocomplete ? raw(` autocomplete="${escapeHtml(opts.autocomplete)}"`) : ''}
  /></label>`;
}

/** A multi-line text field (PEM, JSON). */
export function textarea(
  name: string,
  label: string,
  opts: { value?: string; rows?: number; required?: boolean; placeholder?: string } = {},
): Html {
  return html`<label
    >${label}
    <textarea
      name="${name}"
      rows="${String(opts.rows ?? 8)}"
      ${opts.required ? raw(' required') : ''}${opts.placeholder ? raw(` placeholder="${escapeHtml(opts.placeholder)}"`) : ''}
    >
${opts.value ?? ''}</textarea>
  </label>`;
}

/** A text field whose value console.js sends as an array (comma separated). */
export function listInput(name: string, label: string, placeholder?: string): Html {
  return html`<label
    >${label} <input name="${name}" type="text" data-type="array" ${placeholder ? raw(` placeholder="${escapeHtml(placeholder)}"`) : ''}
  /></label>`;
}

export function select(name: string, label: string, options: Array<string | [string, string]>, selected?: string): Html {
  return html`<label
    >${label}
    <select name="${name}">
      ${options.map((o) => {
        const [value, text] = Array.isArray(o) ? o : [o, o];
        return html`<option value="${value}" ${value === selected ? raw(' selected') : ''}>${text}</option>`;
      })}
    </select></label
  >`;
}

/** Data for console.js (charts): JSON in a non-executed script element (allowed by the CSP). */
function jsonData(id: string, data: unknown): Html {
  return raw(`<script type="application/json" id="${escapeHtml(id)}">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>`);
}

export function chart(id: string, config: unknown, opts: { small?: boolean } = {}): Html {
  return html`<div class="chart${opts.small ? ' small' : ''}"><canvas data-chart="${id}"></canvas></div>
    ${jsonData(id, config)}`;
}

/** A query string from a filter object (empty values left out). */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
