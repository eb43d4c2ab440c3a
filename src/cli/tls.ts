/**
 * `certflow tls list|renew`: certflow's own certificates (the HTTPS listeners' and the CMP
 * signer's). `renew` leaves a marker the running servers act on at their next check
 * (CERTFLOW_TLS_CHECK_SECONDS): however many share the files, one of them renews through a
 * workflow with a fixed id and every server picks the new certificate up without a restart
 * (src/http/own-certificates.ts). The command waits for the new certificate.
 */
import { Option, type Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type Config } from '../config/index.ts';
import { CaError } from '../core/errors.ts';
import { writeFileAtomic } from '../core/files.ts';
import { cmpSignerCertificate } from '../cmp/signer.ts';
import { renewalMarker, type OwnCertificateSpec } from '../http/own-certificates.ts';
import { listenerCertificate } from '../http/tls-cert.ts';
import { describeCertificate, pemDecodeAll } from '../pki/index.ts';
import type { CliContext } from './context.ts';

const NAMES = ['server', 'admin', 'cmp-signer'] as const;

function specOf(config: Config, name: string): OwnCertificateSpec {
  if (name === 'cmp-signer') return cmpSignerCertificate(config);
  return listenerCertificate(config, name);
}

function leafOf(file: string) {
  if (!existsSync(file)) return undefined;
  const [first] = pemDecodeAll(readFileSync(file, 'utf8'));
  return first ? describeCertificate(first.der) : undefined;
}

export function registerTlsCommands(root: Command, cli: CliContext): void {
  const tls = root.command('tls').description("certflow's own certificates: the HTTPS listeners' (server, admin) and the CMP signer's");
  tls
    .command('list')
    .description('each own certificate: serial, validity, a renewal asked for')
    .action(() => {
      const config = loadConfig();
      const rows = NAMES.map((name) => {
        const spec = specOf(config, name);
        const leaf = leafOf(spec.certFile);
        const marker = renewalMarker(spec.certFile);
        return {
          name,
          file: spec.certFile,
          serial: leaf?.serialHex ?? null,
          notBefore: leaf?.notBefore ?? null,
          notAfter: leaf?.notAfter ?? null,
          renewalAsked: existsSync(marker) && readFileSync(marker, 'utf8').trim() === leaf?.serialHex,
        };
      });
      if (cli.json()) cli.printJson(rows);
      else process.stdout.write(cli.table(rows, ['name', 'serial', 'notAfter', 'renewalAsked', 'file']));
    });
  tls
    .command('renew')
    .description('renew now: the running servers renew it once between them and all switch to it without a restart')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the new certificate').default(120).argParser(Number))
    .argument('[names...]', `${NAMES.join(', ')} (default: server)`)
    .action(async (names: string[], opts: { timeout: number }) => {
      const config = loadConfig();
      const wanted = names.length ? names : ['server'];
      const unknown = wanted.filter((n) => !(NAMES as readonly string[]).includes(n));
      if (unknown.length) throw new CaError('malformed', `unknown certificate ${unknown.join(', ')} (one of ${NAMES.join(', ')})`);
      const pending = wanted.map((name) => {
        const spec = specOf(config, name);
        const leaf = leafOf(spec.certFile);
        if (!leaf)
          throw new CaError('notFound', `there is no ${name} certificate yet (${spec.certFile}): a server makes it when it starts`);
        return { name, spec, old: leaf.serialHex };
      });
      for (const p of pending) await writeFileAtomic(renewalMarker(p.spec.certFile), `${p.old}\n`, 0o600);
      cli.say(`asked for ${wanted.join(', ')}; waiting for a running server to renew (it looks every ${config.tlsCheckSeconds} s)`);
      const deadline = Date.now() + opts.timeout * 1000;
      const done: Array<{ name: string; old: string; serial: string; notAfter: Date }> = [];
      for (const p of pending) {
        for (;;) {
          const leaf = leafOf(p.spec.certFile);
          if (leaf && leaf.serialHex !== p.old) {
            done.push({ name: p.name, old: p.old, serial: leaf.serialHex, notAfter: leaf.notAfter });
            await rm(renewalMarker(p.spec.certFile), { force: true });
            break;
          }
          if (Date.now() > deadline) {
            throw new CaError(
              'unavailable',
              `no running server renewed the ${p.name} certificate within ${opts.timeout} s; the request stays, and the next server to start renews it`,
            );
          }
          await sleep(500);
        }
      }
      if (cli.json()) cli.printJson(done);
      else for (const d of done) cli.say(`${d.name}: ${d.old} replaced by ${d.serial} (valid until ${d.notAfter.toISOString()})`);
    });
}
