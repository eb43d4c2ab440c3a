/**
 * The Temporal UI as the console serves it at /temporal/, in a real browser: log in through
 * the console's login page, follow a request's workflow link, wait for its event history.
 * Used by test/security/temporal-ui.test.ts and cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { artifactsDir } from './admin.ts';

/** The little of the DOM the page functions use (the project compiles without the DOM library). */
interface BrowserDocument {
  body: { innerText: string };
}

/** Collects script errors and CSP violations of a page (and of the pages it opens). */
export function watchErrors(page: Page, errors: string[]): void {
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
}

/** Logs in at the console's login page the browser was sent to; waits until it is back where it wanted to go. */
export async function consoleLogin(page: Page, name: string, password: string, back: (u: URL) => boolean): Promise<void> {
  assert.equal(new URL(page.url()).pathname, '/login', 'the browser is sent to the login page first');
  await page.fill('#login input[name="name"]', name);
  await page.fill('#login input[name="password"]', password);
  await Promise.all([page.waitForURL(back), page.click('#login button[type="submit"]')]);
}

/**
 * Clicks a console workflow link (it opens a new tab) and waits until the Temporal UI shows
 * the workflow and, on its Event History tab, the started and completed events. Returns the
 * UI's page; on failure, a screenshot and the page's text say what was there instead.
 */
export async function followWorkflowLink(
  context: BrowserContext,
  link: ReturnType<Page['locator']>,
  expect: { workflowId: string; workflowType: string; screenshot: string },
  errors: string[],
): Promise<Page> {
  const [ui] = await Promise.all([context.waitForEvent('page'), link.click()]);
  watchErrors(ui, errors);
  await ui.waitForLoadState('domcontentloaded');
  const pageText = () => ui.evaluate(() => (globalThis as unknown as { document: BrowserDocument }).document.body.innerText);
  const until = (what: string, patterns: RegExp[]) =>
    ui
      .waitForFunction(
        (sources) => {
          const text = (globalThis as unknown as { document: BrowserDocument }).document.body.innerText;
          return sources.every((src) => new RegExp(src, 'i').test(text));
        },
        patterns.map((p) => p.source),
        { timeout: 60_000 },
      )
      .catch(async (e: unknown) => {
        await ui.screenshot({ path: join(artifactsDir('console'), `${expect.screenshot}-failed.png`), fullPage: true });
        throw new Error(
          `${what}: ${String(e)}\nat ${ui.url()}\npage text: ${(await pageText()).slice(0, 1500)}\nerrors: ${errors.join('\n')}`,
        );
      });
  // The UI finds the workflow's latest run.
  await until('the workflow page', [new RegExp(expect.workflowType), /COMPLETED/]);
  assert.ok((await pageText()).includes(expect.workflowId), 'the page names the workflow');
  await ui.getByRole('tab', { name: /Event History/ }).click();
  await until('the event history', [/Workflow\s*Execution\s*Started/, /Workflow\s*Execution\s*Completed/]);
  assert.match(
    new URL(ui.url()).pathname,
    new RegExp(`^/temporal/namespaces/default/workflows/${encodeURIComponent(expect.workflowId)}/[0-9a-f-]{36}/history`),
  );
  await ui.screenshot({ path: join(artifactsDir('console'), `${expect.screenshot}.png`), fullPage: true });
  return ui;
}

/** Script errors that are CSP violations. */
export const cspViolations = (errors: string[]) => errors.filter((e) => /Content.Security.Policy|Refused to/i.test(e));
