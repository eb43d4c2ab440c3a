import { Context } from '@temporalio/activity';

/**
 * Heartbeats every `everyMs` until the returned function is called. For activities whose
 * work may take long in a single call (a PKCS#11 C_Sign on a busy token runs on the libuv
 * thread pool, so the event loop stays free): Temporal notices a dead worker after the
 * heartbeat timeout, but a slow live one is never timed out into a second attempt.
 */
export function heartbeatWhileRunning(everyMs = 1000): () => void {
  const ctx = Context.current();
  // A local activity has no heartbeats: the worker that runs it keeps its workflow task alive.
  if (ctx.info.isLocal) return () => {};
  // No beat at once: work done within `everyMs` (almost every signature) costs no heartbeat RPC.
  const timer = setInterval(() => ctx.heartbeat(), everyMs);
  return () => clearInterval(timer);
}
