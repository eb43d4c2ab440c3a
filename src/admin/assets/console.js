// certflow console: submits forms marked data-api to the admin API as JSON (with the
// session's CSRF token), shows the answer, and draws the charts described by JSON blocks.
'use strict';

(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.getAttribute('content') ?? '';

  function flash(text, kind) {
    const el = document.getElementById('flash');
    if (!el) return;
    el.textContent = text;
    el.className = kind;
    el.hidden = false;
  }

  /** The form's fields as JSON: checkboxes are booleans, number inputs integers, data-type="array" comma lists; empty fields are left out. */
  function body(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled) continue;
      if (el.type === 'checkbox') {
        out[el.name] = el.checked;
        continue;
      }
      const v = el.value;
      if (v === '') continue;
      if (el.type === 'number') out[el.name] = Number.parseInt(v, 10);
      else if (el.dataset.type === 'array')
        out[el.name] = v
          .split(',')
          .map((s) => s.trim())
          .filter((s, i, a) => s !== '' || a.length === 1);
      else out[el.name] = v;
    }
    return out;
  }

  async function submit(form) {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
    const button = form.querySelector('button[type="submit"]');
    const output = form.querySelector('output.result');
    if (button) button.disabled = true;
    flash('Working…', 'info');
    try {
      const method = form.dataset.apiMethod || 'POST';
      const data = body(form);
      const res = await fetch(form.dataset.api, {
        method,
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': csrf() },
        body: Object.keys(data).length || method !== 'DELETE' ? JSON.stringify(data) : undefined,
      });
      const text = await res.text();
      let json = {};
      try {
        json = text ? JSON.parse(text) : {};
      } catch {
        json = { message: text };
      }
      if (!res.ok) {
        flash(json.error ? json.error.message : `HTTP ${res.status}`, 'error');
        return;
      }
      const then = form.dataset.then || 'reload';
      const message = json.message || 'Done.';
      if (then === 'show') {
        flash(message, 'ok');
        if (output) {
          output.hidden = false;
          output.textContent = JSON.stringify(json, null, 2);
        }
      } else if (then === 'reload') {
        sessionStorage.setItem('certflow-flash', message);
        window.location.reload();
      } else {
        sessionStorage.setItem('certflow-flash', message);
        window.location.assign(then);
      }
    } catch (e) {
      flash(`Request failed: ${e.message}`, 'error');
    } finally {
      if (button) button.disabled = false;
    }
  }

  function charts() {
    if (typeof window.Chart !== 'function') return;
    for (const canvas of document.querySelectorAll('canvas[data-chart]')) {
      const config = document.getElementById(canvas.dataset.chart);
      if (config) new window.Chart(canvas, JSON.parse(config.textContent));
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    const pending = sessionStorage.getItem('certflow-flash');
    if (pending) {
      sessionStorage.removeItem('certflow-flash');
      flash(pending, 'ok');
    }
    for (const form of document.querySelectorAll('form[data-api]')) {
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        void submit(form);
      });
    }
    charts();
    document.body.dataset.ready = '1';
  });
})();
