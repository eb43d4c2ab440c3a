/**
 * A fixed-size pool of exclusive resources (PKCS#11 sessions) handed out to concurrent
 * callers through a FIFO queue. A PKCS#11 session runs one operation at a time
 * (C_SignInit + C_Sign must not interleave with another caller's), so every caller gets a
 * session of its own; callers beyond the pool size wait for one to be released.
 *
 * Resources that turn out broken are discarded; the next acquire() opens a replacement,
 * so the pool heals itself without a background task.
 */
export interface SessionPoolOptions<T> {
  size: number;
  /** Opens a resource (may throw; the error goes to the acquire() caller). */
  create: () => T;
  /** Closes a resource; must not throw (broken resources are destroyed too). */
  destroy: (resource: T) => void;
  /** The error acquire() rejects with once close() was called. */
  closedError: () => Error;
}

type Waiter<T> = { resolve: (resource: T | undefined) => void; reject: (e: Error) => void };

export class SessionPool<T> {
  private readonly idle: T[] = [];
  private readonly waiters: Array<Waiter<T>> = [];
  /** Resources that exist (idle + lent out). */
  private total = 0;
  private lent = 0;
  private closed = false;
  private drained?: () => void;

  constructor(private readonly opts: SessionPoolOptions<T>) {
    if (!Number.isInteger(opts.size) || opts.size < 1) throw new RangeError(`pool size must be a positive integer, got ${opts.size}`);
  }

  /** Opens every resource up front, so configuration errors (wrong PIN) show at start-up. */
  fill(): void {
    while (this.total < this.opts.size) {
      this.idle.push(this.opts.create());
      this.total++;
    }
  }

  get size(): number {
    return this.opts.size;
  }

  async acquire(): Promise<T> {
    for (;;) {
      if (this.closed) throw this.opts.closedError();
      const resource = this.idle.pop();
      if (resource !== undefined) return this.lend(resource);
      if (this.total < this.opts.size) return this.lend(this.createCounted());
      // undefined = "a slot was freed by discard()": loop and open a replacement.
      const handedOver = await new Promise<T | undefined>((resolve, reject) => this.waiters.push({ resolve, reject }));
      if (handedOver !== undefined) return handedOver; // release() lent it to us directly
    }
  }

  /** Returns a healthy resource; hands it straight to the longest waiting caller, if any. */
  release(resource: T): void {
    const waiter = this.closed ? undefined : this.waiters.shift();
    if (waiter) {
      waiter.resolve(resource);
      return;
    }
    this.lent--;
    this.idle.push(resource);
    this.checkDrained();
  }

  /** Destroys a broken resource that was lent out; a waiter gets to open a replacement. */
  discard(resource: T): void {
    this.lent--;
    this.total--;
    this.opts.destroy(resource);
    this.waiters.shift()?.resolve(undefined);
    this.checkDrained();
  }

  /** Destroys idle resources for which `alive` is false (after one was found broken). */
  sweepIdle(alive: (resource: T) => boolean): number {
    const dead = this.idle.filter((r) => !alive(r));
    for (const r of dead) {
      this.idle.splice(this.idle.indexOf(r), 1);
      this.total--;
      this.opts.destroy(r);
    }
    return dead.length;
  }

  /**
   * Rejects waiting callers, waits for lent resources to come back, then passes the idle
   * resources to `finish` (which closes them; e.g. logs out with the first one).
   */
  async close(finish: (idle: T[]) => void): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(this.opts.closedError());
    if (this.lent > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    const idle = this.idle.splice(0);
    this.total = 0;
    finish(idle);
  }

  private lend(resource: T): T {
    this.lent++;
    return resource;
  }

  private createCounted(): T {
    this.total++;
    try {
      return this.opts.create();
    } catch (e) {
      this.total--;
      throw e;
    }
  }

  private checkDrained(): void {
    if (this.closed && this.lent === 0) this.drained?.();
  }
}
