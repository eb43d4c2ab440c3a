// A worker thread of src/http/cpu-pool.ts: the front ends' CPU-heavy work (CMP MAC key
// derivations, EST serverkeygen key pairs) runs here, never on the event loop nor in libuv's
// small thread pool (which DNS lookups, files and database connections need).
// Plain JavaScript: a worker does not inherit the main thread's tsx loader, so it registers
// its own before importing the TypeScript module.
import { parentPort } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { deriveMacKey } = await import('../pki/cmp/kdf.ts');
const { generateDerKeyPairSync } = await import('../pki/keygen.ts');

function run(task) {
  if (task.kind === 'macKey') return deriveMacKey(task.secret, task.derivation);
  if (task.kind === 'keyPair') {
    return new Uint8Array(generateDerKeyPairSync(task.type, task.options).privateKey);
  }
  throw new Error(`unknown task ${task.kind}`);
}

parentPort.on('message', ({ id, task }) => {
  try {
    const result = run(task);
    parentPort.postMessage({ id, result }, [result.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: e instanceof Error ? e.message : String(e) });
  }
});
parentPort.postMessage({ ready: true });
