/**
 * The audit log's anchors outside Postgres (issue 16, item 5): whoever owns the database
 * can rewrite the log, its checkpoints and the audit key recorded there, so
 *
 * - the audit key's public half is PINNED in `$CERTFLOW_HOME/ca/audit-key.pem` (written
 *   once, by the worker that creates the key; never replaced from the database), and the
 *   verifiers trust only it;
 * - every signed checkpoint is also appended to `$CERTFLOW_HOME/audit/checkpoints.jsonl`
 *   (one JSON object per line, O_APPEND and fsync), which backups carry. `audit verify`
 *   checks the database's chain against every line of it.
 *
 * A checkpoint signs `checkpointMessage()` with ECDSA P-256 / SHA-256 (openssl can verify
 * it: docs/operations.md, "Audit log").
 */
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface SignedCheckpoint {
  seq: number;
  hash: string;
  signedAt: Date;
  keyId: string;
  signAlg: string;
  signature: Buffer;
}

/** The bytes an audit checkpoint signs. */
export function checkpointMessage(c: { seq: number; hash: string; signedAt: Date }): Buffer {
  return Buffer.from(`certflow-audit-checkpoint-1\nseq=${c.seq}\nhash=${c.hash}\nsigned_at=${c.signedAt.toISOString()}\n`, 'utf8');
}

/** Whether `cp` is signed by `key` (the pinned audit key). */
export function checkpointSignatureValid(cp: SignedCheckpoint, key: KeyObject): boolean {
  const digest = /^(?:ecdsa|rsa-pkcs1)-(sha256|sha384|sha512)$/.exec(cp.signAlg)?.[1];
  if (!digest) return false;
  try {
    return verifySignature(digest, checkpointMessage(cp), key, cp.signature);
  } catch {
    return false;
  }
}

/** Where the pinned public half of the audit key is. */
export function pinnedAuditKeyFile(home: string): string {
  return join(home, 'ca', 'audit-key.pem');
}

/** The pinned audit key, or undefined when the file does not exist. */
export async function readPinnedAuditKey(file: string): Promise<{ pem: string; key: KeyObject } | undefined> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return { pem, key: createPublicKey(pem) };
}

/** The append-only file of every checkpoint, outside the database. */
export function outsideCheckpointFile(home: string): string {
  return join(home, 'audit', 'checkpoints.jsonl');
}

/** Appends one checkpoint (one line, O_APPEND, fsync before returning). */
export async function appendOutsideCheckpoint(file: string, cp: SignedCheckpoint): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const line = `${JSON.stringify({
    seq: cp.seq,
    hash: cp.hash,
    signedAt: cp.signedAt.toISOString(),
    keyId: cp.keyId,
    signAlg: cp.signAlg,
    signature: cp.signature.toString('base64'),
  })}\n`;
  const fh = await open(file, 'a', 0o600);
  try {
    await fh.write(line);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export interface OutsideCheckpoints {
  file: string;
  /** Every readable line, in file order. */
  checkpoints: SignedCheckpoint[];
  /** Lines that cannot be read (the file was altered or cut). */
  problems: string[];
}

/**
 * The newest checkpoint of the outside file (by sequence number, among its last lines),
 * without reading the whole file: what the worker checks before it signs.
 */
export async function newestOutsideCheckpoint(file: string): Promise<SignedCheckpoint | undefined> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const { size } = await fh.stat();
    const length = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    const lines = buf.toString('utf8').split('\n');
    if (length < size) lines.shift(); // the first one may be cut
    return parseLines(file, lines.filter(Boolean)).checkpoints.reduce<SignedCheckpoint | undefined>(
      (a, c) => (!a || c.seq > a.seq ? c : a),
      undefined,
    );
  } finally {
    await fh.close();
  }
}

/** The checkpoints of the outside file (none when it does not exist). */
export async function readOutsideCheckpoints(file: string): Promise<OutsideCheckpoints> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { file, checkpoints: [], problems: [] };
    throw e;
  }
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return parseLines(file, lines);
}

function parseLines(file: string, lines: string[]): OutsideCheckpoints {
  const checkpoints: SignedCheckpoint[] = [];
  const problems: string[] = [];
  lines.forEach((line, i) => {
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      const signedAt = new Date(String(o.signedAt));
      if (!Number.isSafeInteger(o.seq) || typeof o.hash !== 'string' || Number.isNaN(signedAt.getTime())) throw new Error('fields');
      checkpoints.push({
        seq: o.seq as number,
        hash: o.hash,
        signedAt,
        keyId: String(o.keyId),
        signAlg: String(o.signAlg),
        signature: Buffer.from(String(o.signature), 'base64'),
      });
    } catch {
      problems.push(`${file} line ${i + 1} is not a checkpoint (the file was altered or cut)`);
    }
  });
  return { file, checkpoints, problems };
}
