/**
 * An outside CA made with `openssl req -x509` and operated with `openssl ca`, as an
 * operator's offline root would be: it signs certflow's CSRs (externally signed CAs) and
 * CA certificates for keys certflow imports.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from './certflow.ts';

export interface OutsideCa {
  dir: string;
  /** The root certificate (PEM file): what certflow's ca.trustAnchors names. */
  cert: string;
  key: string;
  /** `openssl ca` signs a CSR as a subordinate CA certificate (pathlen 0); returns the PEM file. */
  signCa(csr: string, out: string, opts?: { pathLen?: number; forcePubkey?: string }): Promise<string>;
}

export async function makeOutsideCa(dir: string, opts: { name?: string; keySpec?: string[] } = {}): Promise<OutsideCa> {
  await mkdir(join(dir, 'newcerts'), { recursive: true });
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '1000\n');
  const cnf = join(dir, 'ca.cnf');
  await writeFile(
    cnf,
    `[ ca ]
default_ca = CA_default
[ CA_default ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = $dir/root.pem
private_key = $dir/root.key
default_md = sha384
default_days = 730
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
organizationName = optional
countryName = optional
[ v3_sub ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ v3_sub1 ]
basicConstraints = critical, CA:true, pathlen:1
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`,
  );
  const cert = join(dir, 'root.pem');
  const key = join(dir, 'root.key');
  const r = await runTool('openssl', [
    'req',
    '-x509',
    '-newkey',
    ...(opts.keySpec ?? ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384']),
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '3650',
    '-subj',
    `/CN=${opts.name ?? 'Outside Root CA'}/O=Outside`,
    '-addext',
    'basicConstraints=critical,CA:true',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  assert.equal(r.code, 0, r.stderr);
  return {
    dir,
    cert,
    key,
    async signCa(csr, out, o = {}) {
      const ext = o.pathLen === 1 ? 'v3_sub1' : 'v3_sub';
      const s = o.forcePubkey
        ? await runTool('openssl', [
            'x509',
            '-req',
            '-in',
            csr,
            '-CA',
            cert,
            '-CAkey',
            key,
            '-CAcreateserial',
            '-force_pubkey',
            o.forcePubkey,
            '-extfile',
            cnf,
            '-extensions',
            ext,
            '-days',
            '730',
            '-sha384',
            '-out',
            out,
          ])
        : await runTool('openssl', ['ca', '-batch', '-config', cnf, '-in', csr, '-out', out, '-extensions', ext, '-notext']);
      assert.equal(s.code, 0, s.stderr + s.stdout);
      return out;
    },
  };
}
