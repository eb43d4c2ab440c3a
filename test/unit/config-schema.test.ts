/**
 * The configuration file is checked against its schema (src/config/schema.ts, zod) before
 * anything reads it (issue 11, item 8): an unknown key, a wrong type or an impossible value
 * in any section is refused with the JSON path and what is expected there, and `certflow`
 * exits with code 2 naming it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { SECTIONS } from '../../src/config/schema.ts';
import { CaError } from '../../src/core/errors.ts';
import { certflowBin } from '../helpers/certflow.ts';

describe('configuration file schema', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'certflow-config-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  let n = 0;
  async function load(content: unknown): Promise<ReturnType<typeof loadConfig>> {
    const file = join(dir, `config-${n++}.json`);
    await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
    return loadConfig({ CERTFLOW_HOME: dir, CERTFLOW_CONFIG: file });
  }

  async function refused(content: unknown, path: string, why: RegExp): Promise<void> {
    await assert.rejects(load(content), (e: unknown) => {
      assert.ok(e instanceof CaError && e.kind === 'config', String(e));
      assert.ok(e.message.includes(`${path}:`), `"${path}" in: ${e.message}`);
      assert.match(e.message, why);
      return true;
    });
  }

  it('accepts the README examples and an empty file', async () => {
    await load({});
    const c = await load({
      ca: { rootName: 'acme-root', rootSubject: 'CN=ACME Root CA,O=ACME', issuingName: 'acme-issuing-1' },
      defaultProfile: 'tls-server',
      profiles: [
        { name: 'tls-server', validitySeconds: 3888000 },
        {
          name: 'iot',
          extends: 'device',
          keys: { ec: { curves: ['P-256'] } },
          san: { uri: true, dns: false, ip: false, email: false, dnsWildcard: false, required: true, max: 2 },
        },
        { name: 'public', extends: 'tls-server', lint: 'cabf-serverauth', policies: ['2.23.140.1.2.1'] },
      ],
      est: {
        labels: [
          { name: 'iot', profile: 'device', caName: 'certflow-issuing', requireApproval: false, allowCertAuth: true, serverKeygen: true },
        ],
      },
      acme: {
        rateLimits: { newOrdersPerAccountPerHour: 300 },
        aliases: [{ name: 'partners', eabRequired: true, termsOfService: 'https://example.test/tos-v2' }],
      },
      validation: { retryWindowSeconds: 60, attemptTimeoutSeconds: 10 },
      revocation: { crlValiditySeconds: 604800 },
      issuance: { faultRetryInitialSeconds: 10, faultRetryMaxSeconds: 600 },
    });
    assert.equal(c.profiles.get('public')?.lint, 'cabf-serverauth');
    assert.equal(c.issuance.faultRetryInitialSeconds, 10);
  });

  it('an unknown key, in every section, with the keys allowed there', async () => {
    await refused({ acmee: {} }, 'acmee', /unknown key.*allowed here: ca, profiles/);
    await refused({ ca: { rootname: 'x' } }, 'ca.rootname', /unknown key.*rootName/);
    await refused({ profiles: [{ name: 'p', validity: 5 }] }, 'profiles[0].validity', /unknown key/);
    await refused({ profiles: [{ name: 'p', san: { dnss: true } }] }, 'profiles[0].san.dnss', /unknown key/);
    await refused({ revocation: { crlValidity: 1 } }, 'revocation.crlValidity', /unknown key/);
    await refused({ est: { labels: [{ name: 'a', allowCertAuthh: true }] } }, 'est.labels[0].allowCertAuthh', /unknown key/);
    await refused({ acme: { aliases: [{ name: 'a', eab: true }] } }, 'acme.aliases[0].eab', /unknown key/);
    await refused({ acme: { rateLimits: { perHour: 1 } } }, 'acme.rateLimits.perHour', /unknown key/);
    await refused({ validation: { retryWindow: 1 } }, 'validation.retryWindow', /unknown key/);
    await refused({ issuance: { retry: 1 } }, 'issuance.retry', /unknown key/);
  });

  it('a wrong type', async () => {
    await refused(
      { est: { labels: [{ name: 'a', allowCertAuth: 'yes' }] } },
      'est.labels[0].allowCertAuth',
      /expected boolean, received string/,
    );
    await refused({ profiles: [{ name: 'p', validitySeconds: '90 days' }] }, 'profiles[0].validitySeconds', /expected number/);
    await refused({ tlsNames: 'a.example' }, 'tlsNames', /expected array/);
    await refused({ acme: { aliases: { name: 'x' } } }, 'acme.aliases', /expected array/);
    await assert.rejects(
      load('{ "ca": '),
      (e: unknown) => e instanceof CaError && e.kind === 'config' && /cannot read configuration file .*JSON/.test(e.message),
    );
  });

  it('an impossible value', async () => {
    await refused({ profiles: [{ name: 'p', validitySeconds: -5 }] }, 'profiles[0].validitySeconds', /too small/i);
    await refused({ profiles: [{ name: 'p', keyUsage: ['signEverything'] }] }, 'profiles[0].keyUsage[0]', /expected one of/);
    await refused(
      { profiles: [{ name: 'p', extends: 'tls-client', keyUsage: ['digitalSignature', 'keyEncipherment'] }] },
      'profiles[0].keyUsage',
      /"keyEncipherment", which none of the extended key usages \(clientAuth\) permits/,
    );
    await refused({ profiles: [{ name: 'p', keys: { ec: { curves: ['P-192'] } } }] }, 'profiles[0].keys.ec.curves[0]', /expected one of/);
    await refused({ profiles: [{ name: 'p', lint: 'strict' }] }, 'profiles[0].lint', /expected one of "rfc5280"\|"cabf-serverauth"/);
    await refused({ validation: { http01Port: 70000 } }, 'validation.http01Port', /too big/i);
    await refused({ acme: { aliases: [{ name: 'bad alias!' }] } }, 'acme.aliases[0].name', /letters, digits/);
    await refused({ acme: { aliases: [{ name: 'x', termsOfService: 'not a url' }] } }, 'acme.aliases[0].termsOfService', /URL/i);
    await refused({ ca: { issuingName: 'bad name' } }, 'ca.issuingName', /letters, digits/);
    // Cross-references, after the schema: still with the path.
    await refused({ est: { labels: [{ name: 'a', profile: 'nope' }] } }, 'est.labels[0].profile', /unknown profile "nope"/);
    await refused({ profiles: [{ name: 'p', extends: 'nope' }] }, 'profiles[0].extends', /unknown profile "nope"/);
    await refused(
      { profiles: [{ name: 'web', extends: 'tls-server', san: { required: false } }] },
      'profiles[0].san.required',
      /serverAuth/,
    );
  });

  it('EST/CMP credential settings: safe defaults, and references that must exist (issues 16, 22)', async () => {
    const c = await load({
      est: { labels: [{ name: 'iot', profile: 'tls-client' }] },
      cmp: { aliases: [{ name: 'fleet', profile: 'tls-client' }] },
    });
    for (const label of [c.est.labels.get('')!, c.est.labels.get('iot')!]) {
      assert.deepEqual(label.clientCertProfiles, [label.profile]);
      assert.deepEqual(label.clientCertProtocols, ['est', 'cmp', 'operator'], 'ACME certificates open no label by default');
      assert.deepEqual(label.reenrollLabels, [label.name]);
    }
    for (const alias of [c.cmp.aliases.get('')!, c.cmp.aliases.get('fleet')!]) {
      assert.equal(alias.allowCertificateEnrollment, false);
      assert.deepEqual(alias.clientCertProfiles, [alias.profile]);
      assert.ok(!alias.clientCertProtocols.includes('acme'));
      assert.deepEqual(alias.kurAliases, [alias.name]);
      assert.deepEqual(alias.kurProfiles, []);
    }
    assert.equal(c.cmp.maxIterations, 10_000);
    await refused(
      { est: { labels: [{ name: 'a', clientCertProfiles: ['nope'] }] } },
      'est.labels[0].clientCertProfiles',
      /unknown profile "nope"/,
    );
    await refused({ est: { labels: [{ name: 'a', reenrollLabels: ['b'] }] } }, 'est.labels[0].reenrollLabels', /unknown EST label "b"/);
    await refused(
      { est: { labels: [{ name: 'a', clientCertProtocols: ['ftp'] }] } },
      'est.labels[0].clientCertProtocols[0]',
      /expected one of/,
    );
    await refused({ cmp: { aliases: [{ name: 'a', kurAliases: ['b'] }] } }, 'cmp.aliases[0].kurAliases', /unknown CMP alias "b"/);
    await refused({ cmp: { aliases: [{ name: 'a', kurProfiles: ['nope'] }] } }, 'cmp.aliases[0].kurProfiles', /unknown profile "nope"/);
    await refused({ cmp: { maxIterations: 1_000_000 } }, 'cmp.maxIterations', /too big/i);
    await refused({ cmp: { maxIterations: 50 } }, 'cmp.maxIterations', /too small/i);
  });

  it("the docs' JSON examples of the configuration file are valid", async () => {
    // Every ```json block of README.md and docs/*.md that is a configuration file (only
    // sections as its keys) or one section of it (`"name": {...}`) loads.
    const root = fileURLToPath(new URL('../../', import.meta.url));
    const files = [
      'README.md',
      ...readdirSync(join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => join('docs', f)),
    ];
    const examples: Array<{ file: string; config: Record<string, unknown> }> = [];
    for (const file of files) {
      for (const m of readFileSync(join(root, file), 'utf8').matchAll(/```json\n([\s\S]*?)```/g)) {
        const text = m[1]!.trim();
        const parsed = JSON.parse(text.startsWith('"') ? `{${text}}` : text) as unknown;
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) continue;
        if (Object.keys(parsed).every((k) => k in SECTIONS)) examples.push({ file, config: parsed as Record<string, unknown> });
      }
    }
    assert.ok(examples.length >= 10, `${examples.length} examples`);
    for (const { file, config } of examples) await load(config).catch((e: unknown) => assert.fail(`${file}: ${String(e)}`));
  });

  it('every section of the schema is optional and strict', () => {
    for (const [name, schema] of Object.entries(SECTIONS)) {
      assert.ok(schema.safeParse(undefined).success, `${name} may be left out`);
    }
  });

  it('certflow exits with code 2 and the path', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ est: { labels: [{ name: 'a', allowCertAuth: 'yes' }] } }));
    const r = await new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [certflowBin, 'ca', 'list'],
        { env: { ...process.env, CERTFLOW_HOME: dir, CERTFLOW_CONFIG: file } },
        (e, _o, stderr) => resolve({ code: (e as { code?: number } | null)?.code ?? 0, stderr }),
      ),
    );
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /est\.labels\[0\]\.allowCertAuth: expected boolean, received string/);
  });
});
