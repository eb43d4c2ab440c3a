/**
 * The one rule for the names of an ACME certificate (src/pki/order-names.ts): the names a
 * CSR asks for (SANs together with its CN) are exactly the order's identifiers; the
 * certificate to be signed carries each of them as a SAN.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CaError } from '../../src/core/errors.ts';
import { checkOrderNames, emptySans, parseCsr, parseDn, type NamedSubject, type SanSet } from '../../src/pki/index.ts';
import { makeCsr } from '../helpers/openssl.ts';

const dns = (...values: string[]) => values.map((value) => ({ type: 'dns' as const, value }));
const ip = (...values: string[]) => values.map((value) => ({ type: 'ip' as const, value }));
const named = (subject: string, sans: Partial<SanSet> = {}, unsupportedSans?: string[]): NamedSubject => ({
  subject: parseDn(subject),
  sans: { ...emptySans(), ...sans },
  unsupportedSans,
});
const csr = (subj: string, san?: string) => parseCsr(makeCsr({ subj, san }).der);

function refused(fn: () => void, rule: string, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CaError, `expected a refusal (${rule}), got ${String(caught)}`);
  assert.equal(caught.kind, 'badCSR');
  assert.equal(caught.rule, `acme.names.${rule}`, caught.message);
  assert.match(caught.message, message);
}

describe('checkOrderNames', () => {
  it('accepts the identifiers in the SANs, in the CN, or both (RFC 8555 7.4)', () => {
    checkOrderNames(csr('/CN=a.example', 'DNS:a.example,DNS:b.example'), dns('a.example', 'b.example'), 'csr');
    checkOrderNames(csr('/', 'DNS:a.example'), dns('a.example'), 'csr');
    // acme-tiny: -subj /CN=name and no SAN extension.
    checkOrderNames(csr('/CN=a.example'), dns('a.example'), 'csr');
    checkOrderNames(csr('/CN=a.example', 'DNS:b.example'), dns('a.example', 'b.example'), 'csr');
    checkOrderNames(csr('/CN=A.Example', 'DNS:*.B.example'), dns('a.example', '*.b.example'), 'csr');
    checkOrderNames(csr('/CN=127.0.0.1'), ip('127.0.0.1'), 'csr');
    checkOrderNames(named('CN=0:0::1', { ip: ['::1'] }), ip('::1'), 'csr');
    checkOrderNames(csr('/CN=a.example', 'IP:192.0.2.1'), [...dns('a.example'), ...ip('192.0.2.1')], 'csr');
  });

  it('refuses a second CN, naming both', () => {
    refused(
      () => checkOrderNames(csr('/CN=attacker.example/CN=victim.example', 'DNS:attacker.example'), dns('attacker.example'), 'csr'),
      'cnCount',
      /^the CSR has more than one common name \(CN=attacker\.example, CN=victim\.example\)/,
    );
    refused(() => checkOrderNames(named('CN=a.example,CN=a.example'), dns('a.example'), 'csr'), 'cnCount', /more than one/);
  });

  it('refuses a name beyond the identifiers, in the CN or the SANs, naming it', () => {
    refused(
      () => checkOrderNames(csr('/CN=victim.example', 'DNS:attacker.example'), dns('attacker.example'), 'csr'),
      'extra',
      /not in the order: dns:victim\.example$/,
    );
    refused(
      () => checkOrderNames(csr('/CN=a.example', 'DNS:a.example,DNS:victim.example'), dns('a.example'), 'csr'),
      'extra',
      /not in the order: dns:victim\.example$/,
    );
    refused(() => checkOrderNames(csr('/CN=My Web Server', 'DNS:a.example'), dns('a.example'), 'csr'), 'extra', /dns:my web server/);
    refused(
      () => checkOrderNames(csr('/CN=127.0.0.1', 'IP:127.0.0.1,IP:10.0.0.1'), ip('127.0.0.1'), 'csr'),
      'extra',
      /not in the order: ip:10\.0\.0\.1$/,
    );
    // A wildcard identifier does not cover a name under it, nor the other way round.
    refused(() => checkOrderNames(csr('/', 'DNS:www.b.example'), dns('*.b.example'), 'csr'), 'extra', /dns:www\.b\.example/);
  });

  it('refuses a CSR that lacks an identifier, naming it', () => {
    refused(
      () => checkOrderNames(csr('/CN=a.example'), dns('a.example', 'b.example'), 'csr'),
      'missing',
      /lacks names of the order: dns:b\.example$/,
    );
  });

  it('refuses names of other kinds', () => {
    refused(
      () => checkOrderNames(named('', { dns: ['a.example'], email: ['x@a.example'] }), dns('a.example'), 'csr'),
      'kind',
      /only name DNS names and IP addresses, not email:x@a\.example/,
    );
    refused(
      () => checkOrderNames(named('', { dns: ['a.example'] }, ['otherName 1.3.6.1.4.1.311.20.2.3']), dns('a.example'), 'csr'),
      'kind',
      /otherName/,
    );
  });

  it('certificate stage: every identifier must also be a SAN of the TBSCertificate', () => {
    checkOrderNames(named('CN=a.example', { dns: ['a.example'] }), dns('a.example'), 'certificate');
    refused(
      () => checkOrderNames(named('CN=a.example'), dns('a.example'), 'certificate'),
      'notSan',
      /^the certificate to be signed does not carry dns:a\.example as a SAN$/,
    );
    refused(
      () => checkOrderNames(named('CN=a.example', { dns: ['a.example', 'victim.example'] }), dns('a.example'), 'certificate'),
      'extra',
      /^the certificate to be signed asks for names that are not in the order: dns:victim\.example$/,
    );
  });
});
