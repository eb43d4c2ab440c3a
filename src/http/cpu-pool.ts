/**
 * The front ends' CPU-heavy work runs here, in a few worker threads (issue 16 item 3):
 *  - CMP password-based MAC key derivations: a PasswordBasedMac or PBMAC1 message makes the
 *    server iterate a hash as often as the *sender* says (up to cmp.maxIterations);
 *  - EST serverkeygen key pairs: an RSA-4096 key takes seconds.
 * On the event loop a few such requests a second would stall ACME, EST and OCSP in the same
 * process; in libuv's thread pool (crypto.generateKeyPair, crypto.pbkdf2) they would starve
 * what shares it (DNS lookups, files, database connections). Callers ask only for work a
 * request is entitled to (an unknown senderKID buys no derivation; a key the profile would
 * refuse is never generated). The queue is bounded: beyond it a request is answered "busy,
 * retry later" at once instead of queueing unbounded work.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CaError } from '../core/errors.ts';
import type { MacKeyDerivation } from '../pki/cmp/kdf.ts';
import type { PublicKeyKind } from '../pki/index.ts';

/** Worker threads: leave a core to the event loop (1 on a 2-core machine, at most 4). */
const WORKERS = Math.max(1, Math.min(4, availableParallelism() - 1));
/** Tasks waiting for a worker before new ones are refused. */
const MAX_QUEUED = 256;

type Task =
  | { kind: 'macKey'; secret: Uint8Array; derivation: MacKeyDerivation }
  | { kind: 'keyPair'; type: 'rsa' | 'ec' | 'ed25519' | 'ed448'; options?: { modulusLength?: number; namedCurve?: string } };

interface Job {
  id: number;
  task: Task;
  resolve(result: Uint8Array): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job?: Job;
}

const stats = { macKey: 0, keyPair: 0, refused: 0 };
const queue: Job[] = [];
const slots: Slot[] = [];
let nextId = 1;

function startWorker(): Slot {
  const worker = new Worker(new URL('./cpu-worker.mjs', import.meta.url));
  worker.unref();
  const slot: Slot = { worker, ready: false };
  worker.on('message', (m: { ready?: boolean; id?: number; result?: Uint8Array; error?: string }) => {
    if (m.ready) slot.ready = true;
    else if (slot.job && m.id === slot.job.id) {
      const job = slot.job;
      slot.job = undefined;
      if (m.result) job.resolve(new Uint8Array(m.result));
      else job.reject(new CaError('internal', `${job.task.kind} failed in a worker thread: ${m.error}`));
    }
    dispatch();
  });
  const fail = (e: Error) => {
    slots.splice(slots.indexOf(slot), 1);
    slot.job?.reject(new CaError('unavailable', `a worker thread stopped: ${e.message}`, { cause: e }));
    slot.job = undefined;
    dispatch();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => {
    if (slots.includes(slot)) fail(new Error(`exit code ${code}`));
  });
  return slot;
}

function dispatch(): void {
  while (slots.length < WORKERS && queue.length > slots.filter((s) => !s.job).length) slots.push(startWorker());
  for (const slot of slots) {
    if (!slot.ready || slot.job || !queue.length) continue;
    const job = queue.shift()!;
    slot.job = job;
    slot.worker.postMessage({ id: job.id, task: job.task });
  }
}

function run(task: Task, what: string): Promise<Uint8Array> {
  if (queue.length >= MAX_QUEUED) {
    stats.refused++;
    return Promise.reject(
      new CaError('unavailable', `the server is busy (${MAX_QUEUED} ${what} waiting); send the request again later`, {
        rule: 'cpu.busy',
        details: { retryAfterSeconds: 5 },
      }),
    );
  }
  stats[task.kind]++;
  return new Promise<Uint8Array>((resolve, reject) => {
    queue.push({ id: nextId++, task, resolve, reject });
    dispatch();
  });
}

/** A CMP MAC key (src/pki/cmp/kdf.ts), derived in a worker thread. */
export function deriveMacKeyOffLoop(secret: Uint8Array, derivation: MacKeyDerivation): Promise<Uint8Array> {
  return run({ kind: 'macKey', secret, derivation }, 'MAC key derivations');
}

/** A new private key of this kind, generated in a worker thread. */
export async function generateKeyOffLoop(kind: PublicKeyKind): Promise<KeyObject> {
  const task: Task =
    kind.type === 'rsa'
      ? { kind: 'keyPair', type: 'rsa', options: { modulusLength: kind.bits } }
      : kind.type === 'ec'
        ? { kind: 'keyPair', type: 'ec', options: { namedCurve: kind.curve } }
        : { kind: 'keyPair', type: kind.type };
  return createPrivateKey({ key: Buffer.from(await run(task, 'key generations')), format: 'der', type: 'pkcs8' });
}

/** Counters for /metrics: tasks started per kind, refused because the queue was full, waiting now. */
export function cpuPoolStats(): Readonly<typeof stats> & { queued: number } {
  return { ...stats, queued: queue.length };
}
