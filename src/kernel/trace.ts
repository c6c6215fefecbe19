// Structured trace events: one format for every syscall and every kernel event, consumed by the
// CLI's narration, `--json`, tests, the explorer's counterexamples and the daemon's log.

export type TraceKind =
  /** a syscall entering (phase 'enter') or returning (phase 'exit') */
  | 'syscall'
  /** something the kernel did that userspace may care about (open_device, access granted, ...) */
  | 'kernel'
  /** an administrator's action on the host (bind, unbind, hot-unplug) */
  | 'admin'
  /** a WARN: refcount misuse, lockdep, a broken invariant inside the kernel */
  | 'warn'
  /** a visible operation (lock, atomic, get/put, ...) with its footprint; only when asked for */
  | 'op';

export interface TraceEvent {
  seq: number;
  kind: TraceKind;
  /** event name: 'open', 'ioctl', 'open_device', 'access_granted', 'mutex_lock', ... */
  name: string;
  phase?: 'enter' | 'exit';
  /** virtual time in ms */
  time: number;
  pid?: number;
  tid?: number;
  /** the task's name, e.g. "pid 100 ioctl" or "unbind 0000:01:00.0" */
  task?: string;
  /** seq of the syscall/admin 'enter' event this event happened inside */
  cause?: number;
  args?: Record<string, unknown>;
  /** syscall return value (libc-style: -1 on error) */
  ret?: number | string;
  errno?: string;
  /** human-readable summary */
  msg?: string;
}

export type TraceListener = (e: TraceEvent) => void;

export class Trace {
  private seq = 0;
  private readonly listeners: TraceListener[] = [];
  private recorded: TraceEvent[] | null = null;
  private limit = 0;
  /** Whether anything consumes events (cheap check before building one). */
  active = false;

  subscribe(l: TraceListener): () => void {
    this.listeners.push(l);
    this.active = true;
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
      this.active = this.listeners.length > 0 || this.recorded !== null;
    };
  }

  /** Keep events in memory (the last `limit` of them). */
  record(limit = 100_000): void {
    this.recorded = [];
    this.limit = limit;
    this.active = true;
  }

  events(): TraceEvent[] {
    return this.recorded ? [...this.recorded] : [];
  }

  clear(): void {
    if (this.recorded) this.recorded.length = 0;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  emit(e: Omit<TraceEvent, 'seq'> & { seq?: number }): TraceEvent {
    const ev = e as TraceEvent;
    if (ev.seq === undefined) ev.seq = ++this.seq;
    if (this.recorded) {
      this.recorded.push(ev);
      if (this.recorded.length > this.limit) this.recorded.splice(0, this.recorded.length - this.limit);
    }
    for (const l of this.listeners) l(ev);
    return ev;
  }
}
