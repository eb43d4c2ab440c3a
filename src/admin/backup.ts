/**
 * Backup and restore of a certflow installation (`certflow backup create|restore`, and the
 * console's Backup page).
 *
 * An archive holds: the database (every table of the schema, dumped in ONE repeatable-read,
 * read-only transaction, so it is consistent), the CA key material (software keys as the
 * encrypted PKCS#8 files they are — never the key passphrase, not even the dev-mode
 * passphrase file; PKCS#11 keys stay in the token and are referenced by token label and key
 * id), the secrets key (keys/cmp-secrets.key: without it no CMP secret or EAB key could be
 * read after a restore), the configuration file, the trust files, the pinned audit key and
 * the audit checkpoints kept outside the database. Temporal's workflow histories are not
 * in it: requests in flight at backup time are not resumed after a restore.
 *
 * Sealing: to the backup recipient (src/admin/backup-recipient.ts) when a CA Administrator
 * set one — the file key is encrypted to that public key, so who makes a backup cannot open
 * it — else (the CLI only) under a key derived from a passphrase (scrypt).
 *
 * Format: the line "CERTFLOW-BACKUP-1", a JSON header line (recipient or scrypt parameters,
 * nonce prefix), then AES-256-GCM frames of at most 64 KiB: [u32 length][ciphertext][16-byte
 * tag], nonce = prefix || frame number, AAD = sha256(magic + header) || frame number || final
 * flag — frames cannot be reordered, dropped or cut off without the restore noticing. The
 * plaintext is a sequence of entries: 'B' + JSON meta, 'D' + data frames, 'E'; 'Z' ends it.
 * A restore reads and authenticates the whole archive before it writes anything.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Pool } from 'pg';
import { paths, type Config } from '../config/index.ts';
import { CaError, errorMessage } from '../core/errors.ts';
import { appliedMigrations, assertEmptyDatabase, dumpDatabase, loadTables, restoreSequences, type DumpSummary } from '../db/dump.ts';
import { loadMigrations, migrate } from '../db/migrate.ts';
import type * as auditLog from '../db/repos/audit.ts';
import { verifyAuditLog } from './audit-verify.ts';
import * as cas from '../db/repos/cas.ts';
import { serviceKeys } from '../db/repos/console.ts';
import { outsideCheckpointFile, pinnedAuditKeyFile } from '../core/audit-file.ts';
import { secretsKey } from '../core/secrets.ts';
import {
  currentRecipient,
  recipientFile,
  unwrapFileKey,
  wrapFileKey,
  type RecipientHeader,
  type RecipientKey,
} from './backup-recipient.ts';

const MAGIC = 'CERTFLOW-BACKUP-1\n';
const FRAME = 64 * 1024;
const KDF = { N: 2 ** 15, r: 8, p: 1 };
const MIN_BACKUP_PASSPHRASE = 12;

export interface BackupMeta {
  format: 1;
  createdAt: string;
  certflowVersion: string;
  host: string;
  home: string;
  keyBackend: 'software' | 'pkcs11';
  /**
   * Software keys: where their passphrase came from — CERTFLOW_KEY_PASSPHRASE ('env') or the
   * dev-mode file keys/passphrase ('file'). Neither is in the archive.
   */
  keyPassphrase?: 'env' | 'file';
  /** The recipient the archive is encrypted to (SHA-256 of its key), or none (a passphrase). */
  recipient?: { fingerprint: string; type: string };
  /** PKCS#11: where the keys stay (the PIN is never stored). */
  pkcs11?: { module?: string; tokenLabel?: string };
  /** Key ids the installation uses (CA keys; key archive and audit keys). */
  keyIds: string[];
  migrations: Array<{ version: number; name: string; checksum: string | null }>;
}

export interface BackupSummary extends DumpSummary {
  files: string[];
}

/** How a new archive is sealed: to the recipient, or (CLI, no recipient set) under a passphrase. */
export type BackupSealing = { recipient: RecipientKey } | { passphrase: string };
/** What opens an archive: the recipient's private key (PEM, and its passphrase if encrypted), or the passphrase. */
export type BackupOpener = { privateKeyPem: string; keyPassphrase?: string } | { passphrase: string };

function scrypt(passphrase: string, salt: Buffer, p: typeof KDF): Promise<Buffer> {
  const options: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r };
  return new Promise((resolve, reject) => scryptCb(passphrase.normalize('NFC'), salt, 32, options, (e, k) => (e ? reject(e) : resolve(k))));
}

function checkBackupPassphrase(passphrase: string): void {
  if (passphrase.length < MIN_BACKUP_PASSPHRASE) {
    throw new CaError('malformed', `the backup passphrase must have at least ${MIN_BACKUP_PASSPHRASE} characters`, {
      rule: 'backup.passphrase',
    });
  }
}

function frameAad(headerHash: Buffer, index: number, final: boolean): Buffer {
  const b = Buffer.alloc(headerHash.length + 5);
  headerHash.copy(b);
  b.writeUInt32BE(index, headerHash.length);
  b[headerHash.length + 4] = final ? 1 : 0;
  return b;
}

function nonce(prefix: Buffer, index: number): Buffer {
  const n = Buffer.alloc(12);
  prefix.copy(n, 0, 0, 8);
  n.writeUInt32BE(index, 8);
  return n;
}

/** Encrypting writer: buffers plaintext into frames and writes them to the file. */
class ArchiveWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private index = 0;
  private constructor(
    private readonly fh: FileHandle,
    private readonly key: Buffer,
    private readonly prefix: Buffer,
    private readonly headerHash: Buffer,
  ) {}

  static async create(file: string, sealing: BackupSealing): Promise<ArchiveWriter> {
    const prefix = randomBytes(8);
    let key: Buffer;
    let keyHeader: Record<string, unknown>;
    if ('recipient' in sealing) {
      key = randomBytes(32);
      keyHeader = { recipient: wrapFileKey(sealing.recipient, key) };
    } else {
      const salt = randomBytes(16);
      key = await scrypt(sealing.passphrase, salt, KDF);
      keyHeader = { kdf: { name: 'scrypt', ...KDF, salt: salt.toString('base64') } };
    }
    const header = `${JSON.stringify({ ...keyHeader, cipher: 'aes-256-gcm', frame: FRAME, noncePrefix: prefix.toString('base64') })}\n`;
    const fh = await open(file, 'wx', 0o600);
    await fh.write(MAGIC + header);
    return new ArchiveWriter(
      fh,
      key,
      prefix,
      createHash('sha256')
        .update(MAGIC + header)
        .digest(),
    );
  }

  async write(data: Buffer): Promise<void> {
    this.pending.push(data);
    this.pendingBytes += data.length;
    while (this.pendingBytes >= FRAME) {
      const all = Buffer.concat(this.pending);
      await this.frame(all.subarray(0, FRAME), false);
      this.pending = [all.subarray(FRAME)];
      this.pendingBytes = all.length - FRAME;
    }
  }

  private async frame(plain: Buffer, final: boolean): Promise<void> {
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce(this.prefix, this.index));
    cipher.setAAD(frameAad(this.headerHash, this.index, final));
    const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(ct.length);
    await this.fh.write(Buffer.concat([len, ct, cipher.getAuthTag()]));
    this.index++;
  }

  async close(): Promise<void> {
    await this.frame(Buffer.concat(this.pending), true);
    await this.fh.sync();
    await this.fh.close();
    this.key.fill(0);
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
  }

  // Entries
  async begin(meta: Record<string, unknown>): Promise<void> {
    const json = Buffer.from(JSON.stringify(meta), 'utf8');
    const head = Buffer.alloc(5);
    head.write('B', 0);
    head.writeUInt32BE(json.length, 1);
    await this.write(Buffer.concat([head, json]));
  }
  async data(bytes: Buffer): Promise<void> {
    if (!bytes.length) return;
    const head = Buffer.alloc(5);
    head.write('D', 0);
    head.writeUInt32BE(bytes.length, 1);
    await this.write(Buffer.concat([head, bytes]));
  }
  async end(): Promise<void> {
    await this.write(Buffer.from('E'));
  }
  async entry(meta: Record<string, unknown>, bytes: Buffer): Promise<void> {
    await this.begin(meta);
    for (let i = 0; i < bytes.length; i += FRAME) await this.data(bytes.subarray(i, i + FRAME));
    await this.end();
  }
}

/** Decrypting reader: yields the plaintext, checking every frame and that the archive ends where it says. */
class ArchiveReader {
  private buf = Buffer.alloc(0);
  private index = 0;
  private done = false;
  private pos: number;
  private constructor(
    private readonly fh: FileHandle,
    private readonly key: Buffer,
    private readonly prefix: Buffer,
    readonly headerHash: Buffer,
    start: number,
  ) {
    this.pos = start;
  }

  static async open(file: string, opener: BackupOpener): Promise<ArchiveReader> {
    const fh = await open(file, 'r').catch((e: NodeJS.ErrnoException) => {
      throw new CaError('notFound', `cannot open ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    });
    try {
      const first = Buffer.alloc(4096);
      const { bytesRead } = await fh.read(first, 0, first.length, 0);
      const text = first.subarray(0, bytesRead).toString('latin1');
      if (!text.startsWith(MAGIC)) throw new CaError('malformed', `${file} is not a certflow backup`, { rule: 'backup.format' });
      const nl = text.indexOf('\n', MAGIC.length);
      if (nl < 0) throw new CaError('malformed', `${file} has a damaged header`, { rule: 'backup.format' });
      const headerLine = text.slice(MAGIC.length, nl + 1);
      const header = JSON.parse(headerLine) as {
        kdf?: { N: number; r: number; p: number; salt: string };
        recipient?: RecipientHeader;
        noncePrefix: string;
      };
      let key: Buffer;
      if (header.recipient) {
        if (!('privateKeyPem' in opener)) {
          throw new CaError(
            'malformed',
            `${file} is encrypted to the backup recipient key ${header.recipient.fingerprint.slice(0, 16)}…: restore it with --key (the recipient's private key)`,
            { rule: 'backup.recipientKey' },
          );
        }
        key = unwrapFileKey(header.recipient, opener.privateKeyPem, opener.keyPassphrase);
      } else if (header.kdf) {
        if (!('passphrase' in opener))
          throw new CaError('malformed', `${file} is encrypted under a passphrase, not to a recipient key: give the passphrase`, {
            rule: 'backup.passphrase',
          });
        if (header.kdf.N > 2 ** 20 || header.kdf.r > 16 || header.kdf.p > 4)
          throw new CaError('malformed', `${file}: key derivation parameters out of range`, { rule: 'backup.format' });
        key = await scrypt(opener.passphrase, Buffer.from(header.kdf.salt, 'base64'), header.kdf);
      } else {
        throw new CaError('malformed', `${file} has a damaged header`, { rule: 'backup.format' });
      }
      return new ArchiveReader(
        fh,
        key,
        Buffer.from(header.noncePrefix, 'base64'),
        createHash('sha256')
          .update(MAGIC + headerLine)
          .digest(),
        nl + 1,
      );
    } catch (e) {
      await fh.close();
      if (e instanceof SyntaxError) throw new CaError('malformed', `${file} has a damaged header`, { rule: 'backup.format' });
      throw e;
    }
  }

  private async readRaw(n: number): Promise<Buffer> {
    const b = Buffer.alloc(n);
    const { bytesRead } = await this.fh.read(b, 0, n, this.pos);
    this.pos += bytesRead;
    if (bytesRead < n) throw new CaError('malformed', 'the backup is truncated', { rule: 'backup.truncated' });
    return b;
  }

  private async nextFrame(): Promise<void> {
    const len = (await this.readRaw(4)).readUInt32BE(0);
    if (len > FRAME + 64) throw new CaError('malformed', 'the backup is damaged (frame too long)', { rule: 'backup.damaged' });
    const ct = await this.readRaw(len);
    const tag = await this.readRaw(16);
    for (const final of [false, true]) {
      try {
        const d = createDecipheriv('aes-256-gcm', this.key, nonce(this.prefix, this.index));
        d.setAAD(frameAad(this.headerHash, this.index, final));
        d.setAuthTag(tag);
        const plain = Buffer.concat([d.update(ct), d.final()]);
        this.buf = Buffer.concat([this.buf, plain]);
        this.index++;
        if (final) this.done = true;
        return;
      } catch {
        // try the other flag; both failing means a wrong passphrase or a damaged file
      }
    }
    throw new CaError(
      'malformed',
      this.index === 0
        ? 'cannot decrypt the backup: wrong passphrase or key, or the file is damaged'
        : `the backup is damaged at frame ${this.index}`,
      { rule: this.index === 0 ? 'backup.passphrase' : 'backup.damaged' },
    );
  }

  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      if (this.done) throw new CaError('malformed', 'the backup ends in the middle of an entry', { rule: 'backup.truncated' });
      await this.nextFrame();
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** The next entry's meta, or undefined at the end of the archive. */
  async nextEntry(): Promise<Record<string, unknown> | undefined> {
    const t = (await this.read(1)).toString('latin1');
    if (t === 'Z') {
      if (!this.done) await this.nextFrame().catch(() => undefined);
      if (!this.done || this.buf.length) throw new CaError('malformed', 'the backup has data after its end', { rule: 'backup.damaged' });
      return undefined;
    }
    if (t !== 'B') throw new CaError('malformed', 'the backup is damaged (entry expected)', { rule: 'backup.damaged' });
    const len = (await this.read(4)).readUInt32BE(0);
    return JSON.parse((await this.read(len)).toString('utf8')) as Record<string, unknown>;
  }

  /** The data of the current entry, chunk by chunk. */
  async *entryData(): AsyncGenerator<Buffer> {
    for (;;) {
      const t = (await this.read(1)).toString('latin1');
      if (t === 'E') return;
      if (t !== 'D') throw new CaError('malformed', 'the backup is damaged (data expected)', { rule: 'backup.damaged' });
      const len = (await this.read(4)).readUInt32BE(0);
      yield Buffer.from(await this.read(len));
    }
  }

  async entryBytes(): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const p of this.entryData()) parts.push(p);
    return Buffer.concat(parts);
  }

  async close(): Promise<void> {
    this.key.fill(0);
    await this.fh.close();
  }
}

// ---------------------------------------------------------------------------------------
// Create

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * How backups of this installation are sealed: to the recipient when one is set (a
 * passphrase is then refused: it would let whoever makes the backup open it), else under
 * the passphrase, which only the CLI passes.
 */
async function backupSealing(config: Pick<Config, 'home'>, passphrase?: string): Promise<BackupSealing> {
  const recipient = await currentRecipient(config.home);
  if (recipient) {
    if (passphrase !== undefined)
      throw new CaError(
        'malformed',
        `backups are encrypted to the backup recipient key ${recipient.fingerprint.slice(0, 16)}… (${recipient.type}): give no passphrase`,
        { rule: 'backup.recipient' },
      );
    return { recipient };
  }
  if (passphrase === undefined)
    throw new CaError(
      'conflict',
      'no backup recipient key is set: a CA Administrator sets one (console Backup page, or `certflow backup recipient set`)',
      { rule: 'backup.noRecipient' },
    );
  checkBackupPassphrase(passphrase);
  return { passphrase };
}

/**
 * Writes a backup to `out` (a new file, mode 0600; written under a temporary name and
 * renamed when complete). Needs the database and, for software keys, the key directory.
 */
export async function createBackup(
  config: Config,
  pool: Pool,
  out: string,
  opts: { passphrase?: string; version: string },
): Promise<{ meta: BackupMeta; summary: BackupSummary; size: number }> {
  const sealing = await backupSealing(config, opts.passphrase);
  if (existsSync(out)) throw new CaError('conflict', `${out} exists; choose another file`, { rule: 'backup.exists' });
  await mkdir(dirname(out), { recursive: true });
  const caKeyIds = await cas.allKeyIds(pool);
  const applied = await appliedMigrations(pool);
  const others = await serviceKeys(pool);
  const meta: BackupMeta = {
    format: 1,
    createdAt: new Date().toISOString(),
    certflowVersion: opts.version,
    host: hostname(),
    home: config.home,
    keyBackend: config.keys.backend,
    ...(config.keys.backend === 'software' ? { keyPassphrase: config.keys.passphrase ? 'env' : 'file' } : {}),
    ...('recipient' in sealing ? { recipient: { fingerprint: sealing.recipient.fingerprint, type: sealing.recipient.type } } : {}),
    ...(config.keys.backend === 'pkcs11'
      ? { pkcs11: { module: config.keys.pkcs11.module, tokenLabel: config.keys.pkcs11.tokenLabel } }
      : {}),
    keyIds: [...new Set([...caKeyIds, ...others.map((k) => k.keyId)])],
    migrations: applied,
  };
  const tmp = `${out}.${process.pid}.partial`;
  const w = await ArchiveWriter.create(tmp, sealing);
  try {
    await w.entry({ kind: 'meta' }, Buffer.from(JSON.stringify(meta), 'utf8'));
    const files: string[] = [];
    const addFile = async (path: string, name: string, mode: number) => {
      const bytes = await readIfExists(path);
      if (!bytes) return;
      await w.entry({ kind: 'file', name, mode }, bytes);
      files.push(name);
    };
    const p = paths(config);
    await addFile(config.configFile, 'config.json', 0o644);
    await addFile(p.rootPem, 'ca/root.pem', 0o644);
    await addFile(p.chainPem, 'ca/chain.pem', 0o644);
    await addFile(pinnedAuditKeyFile(config.home), 'ca/audit-key.pem', 0o644);
    await addFile(recipientFile(config.home), 'ca/backup-recipient.pem', 0o644);
    await addFile(outsideCheckpointFile(config.home), 'audit/checkpoints.jsonl', 0o600);
    // The secrets key (CERTFLOW_CMP_SECRETS_KEY or the key file): CMP secrets and EAB keys are sealed under it.
    await w.entry(
      { kind: 'file', name: 'keys/cmp-secrets.key', mode: 0o600 },
      Buffer.from(`${(await secretsKey(config)).key.toString('base64')}\n`),
    );
    files.push('keys/cmp-secrets.key');
    if (config.keys.backend === 'software') {
      // The key files only: their passphrase (the env or keys/passphrase) is never archived.
      const keyFiles = (await readdir(p.keysDir).catch(() => [] as string[])).filter((f) => f.endsWith('.key.pem')).sort();
      for (const f of keyFiles) await addFile(join(p.keysDir, f), `keys/${f}`, 0o600);
      const missing = meta.keyIds.filter((id) => !keyFiles.includes(`${id}.key.pem`));
      if (missing.length) {
        throw new CaError(
          'config',
          `the software keys ${missing.join(', ')} are not in ${p.keysDir}: run the backup where the worker's key directory is`,
          { rule: 'backup.keys' },
        );
      }
    }
    const db = await dumpDatabase(pool, w);
    const summary: BackupSummary = { ...db, files };
    await w.entry({ kind: 'summary' }, Buffer.from(JSON.stringify(summary), 'utf8'));
    await w.write(Buffer.from('Z'));
    await w.close();
    await rename(tmp, out);
    return { meta, summary, size: (await stat(out)).size };
  } catch (e) {
    await w.abort();
    await rm(tmp, { force: true });
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Restore

/** What a restore must not overwrite: a home with state in it is refused. */
export function assertEmptyHome(config: Config): void {
  const p = paths(config);
  // (An embedded Postgres data directory is checked by the caller, which creates it for the restore.)
  const taken = [p.keysDir, p.caDir, p.tlsDir, join(config.home, 'config.json')].filter((f) => existsSync(f));
  if (taken.length) {
    throw new CaError(
      'conflict',
      `CERTFLOW_HOME ${config.home} is not empty (${taken.join(', ')}): restore into an empty state directory`,
      { rule: 'backup.homeNotEmpty' },
    );
  }
}

/**
 * An archive read to its end. Its header (and so its key: frames of another archive do not
 * decrypt) is what the restore must find again when it reads the file the second time.
 */
export interface AuthenticatedArchive {
  headerHash: string;
}

/**
 * Reads the whole archive once, writing nothing: every frame's tag, their order and the
 * archive's end, and its structure (meta first, entries, summary, end mark). A wrong key
 * or passphrase, a damaged or cut file is refused here, before a restore writes anything.
 */
export async function authenticateArchive(file: string, opener: BackupOpener): Promise<AuthenticatedArchive> {
  const reader = await ArchiveReader.open(file, opener);
  try {
    const first = await reader.nextEntry();
    if (first?.kind !== 'meta') throw new CaError('malformed', 'the backup has no meta entry', { rule: 'backup.format' });
    let last: Record<string, unknown> = first;
    for (let entry: Record<string, unknown> | undefined = first; entry; entry = await reader.nextEntry()) {
      for await (const _ of reader.entryData()) {
        // read (and so authenticate) every frame
      }
      last = entry;
    }
    if (last.kind !== 'summary')
      throw new CaError('malformed', 'the backup has no summary entry (truncated?)', { rule: 'backup.truncated' });
    return { headerHash: reader.headerHash.toString('hex') };
  } finally {
    await reader.close();
  }
}

export interface RestoreTarget {
  config: Config;
  /** A pool on the (empty) target database; the caller starts and stops an embedded server if needed. */
  pool: Pool;
  log: (msg: string) => void;
  /** What authenticateArchive() found when it read the whole archive (with the same opener); else it is read first. */
  authenticated?: AuthenticatedArchive;
}

/**
 * Restores an archive into an empty CERTFLOW_HOME and an empty database: writes the key,
 * trust and configuration files, migrates the database to the backup's schema, loads
 * every table in one transaction, then applies newer migrations and verifies the audit
 * chain.
 */
export async function restoreBackup(
  file: string,
  opener: BackupOpener,
  target: RestoreTarget,
): Promise<{ meta: BackupMeta; summary: BackupSummary; audit: auditLog.VerifyResult }> {
  const { config, pool, log } = target;
  assertEmptyHome(config);
  await assertEmptyDatabase(pool);
  const authenticated = target.authenticated ?? (await authenticateArchive(file, opener));
  const reader = await ArchiveReader.open(file, opener);
  try {
    if (reader.headerHash.toString('hex') !== authenticated.headerHash)
      throw new CaError('malformed', `${file} changed while it was being restored`, { rule: 'backup.damaged' });
    const first = await reader.nextEntry();
    if (first?.kind !== 'meta') throw new CaError('malformed', 'the backup has no meta entry', { rule: 'backup.format' });
    const meta = JSON.parse((await reader.entryBytes()).toString('utf8')) as BackupMeta;
    if (meta.format !== 1) throw new CaError('malformed', `backup format ${meta.format} is not supported`, { rule: 'backup.format' });
    if (meta.keyBackend !== config.keys.backend) {
      throw new CaError(
        'config',
        `the backup's keys are in the ${meta.keyBackend} key store, but CERTFLOW_KEY_BACKEND=${config.keys.backend}`,
        { rule: 'backup.keyBackend' },
      );
    }
    const known = new Map(loadMigrations().map((m) => [m.version, m]));
    for (const m of meta.migrations) {
      const mine = known.get(m.version);
      if (!mine)
        throw new CaError(
          'config',
          `the backup was made by a newer certflow (migration ${m.name} is unknown here): restore it with that version`,
          { rule: 'backup.version' },
        );
      if (m.checksum && m.checksum !== mine.checksum)
        throw new CaError('config', `migration ${m.name} differs between the backup and this certflow`, { rule: 'backup.version' });
    }
    const upTo = Math.max(0, ...meta.migrations.map((m) => m.version));
    log(`backup of ${meta.home} on ${meta.host}, made ${meta.createdAt} by certflow ${meta.certflowVersion}`);

    // Files first (small), then the database.
    const p = paths(config);
    let entry = await reader.nextEntry();
    const files: string[] = [];
    while (entry?.kind === 'file') {
      const name = String(entry.name);
      const dest =
        name === 'config.json'
          ? join(config.home, 'config.json')
          : /^(ca|keys|audit)\/[A-Za-z0-9._-]+$/.test(name) && name !== 'keys/passphrase'
            ? join(config.home, name)
            : undefined;
      if (!dest) throw new CaError('malformed', `the backup has an unexpected file "${name}"`, { rule: 'backup.format' });
      const bytes = await reader.entryBytes();
      await mkdir(dirname(dest), { recursive: true, mode: /^(keys|audit)\//.test(name) ? 0o700 : 0o755 });
      await writeFile(dest, bytes, { mode: Number(entry.mode ?? 0o600) & 0o777, flag: 'wx' });
      files.push(name);
      entry = await reader.nextEntry();
    }
    if (files.includes('config.json') && config.configFileFromEnv)
      log(`the configuration is restored to ${join(config.home, 'config.json')} (CERTFLOW_CONFIG points elsewhere)`);
    if (!existsSync(p.keysDir) && config.keys.backend === 'software')
      throw new CaError('malformed', 'the backup has no software keys', { rule: 'backup.keys' });

    log(`migrating the database to the backup's schema (migration ${upTo})`);
    await migrate(pool, () => {}, { upTo });
    // Tables follow the files; the entry after the last table is the summary.
    let pending: Record<string, unknown> | undefined = entry;
    const rows = await loadTables(pool, async () => {
      if (pending?.kind !== 'table') return undefined;
      const name = String(pending.name);
      pending = undefined;
      return {
        name,
        chunks: (async function* () {
          yield* reader.entryData();
          pending = await reader.nextEntry();
        })(),
      };
    });
    entry = pending;
    if (entry?.kind !== 'summary')
      throw new CaError('malformed', 'the backup has no summary entry (truncated?)', { rule: 'backup.truncated' });
    const summary = JSON.parse((await reader.entryBytes()).toString('utf8')) as BackupSummary;
    if (await reader.nextEntry()) throw new CaError('malformed', 'the backup has entries after its summary', { rule: 'backup.damaged' });
    for (const t of summary.tables) {
      if ((rows[t.name] ?? 0) !== t.rows)
        throw new CaError('malformed', `table ${t.name}: ${rows[t.name] ?? 0} rows restored, the backup says ${t.rows}`, {
          rule: 'backup.damaged',
        });
    }
    await restoreSequences(pool, summary.sequences);
    const { applied } = await migrate(pool);
    if (applied.length) log(`applied newer migrations: ${applied.join(', ')}`);
    const audit = await verifyAuditLog(pool, config.home);
    return { meta, summary, audit };
  } catch (e) {
    if (CaError.is(e)) throw e;
    throw new CaError('internal', `restore failed: ${errorMessage(e)}`, { cause: e });
  } finally {
    await reader.close();
  }
}

/** The backups in the console's backup directory, newest first. */
export function backupDir(config: Pick<Config, 'home'>): string {
  return join(config.home, 'backups');
}

export async function listBackups(config: Pick<Config, 'home'>): Promise<Array<{ name: string; size: number; createdAt: Date }>> {
  const dir = backupDir(config);
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^[A-Za-z0-9._-]+\.cfbk$/.test(n));
  const out = await Promise.all(
    names.map(async (name) => ({ name, ...(await stat(join(dir, name)).then((s) => ({ size: s.size, createdAt: s.mtime }))) })),
  );
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime());
}
