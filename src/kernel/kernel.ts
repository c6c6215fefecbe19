// The simulated kernel instance: scheduler, virtual clock, trace, VFS, char-device registry and
// process table. Subsystems (vfio, iommufd, pci, ...) keep their global state in per-kernel
// objects reached through `Kernel.subsys`.

import { Chrdevs } from './fs/chrdev.js';
import { DevT, Inode, makeAnonInode } from './fs/file.js';
import { FsInfo, Vfs } from './fs/vfs.js';
import { KGen, RunScheduler, Scheduler, Task, TaskOwner, VirtualClock, currentOrNull } from './sched.js';
import { Trace, TraceEvent } from './trace.js';
import { errnoName } from './errno.js';

/** A syscall that cannot complete now (its task sleeps); the task stays in the scheduler. */
export class SyscallBlocked extends Error {
  constructor(readonly task: Task) {
    super(`${task.name} blocked (it would sleep in the kernel); start it with Process.spawn to wait for it`);
    this.name = 'SyscallBlocked';
  }
}

export interface KernelWarning {
  seq: number;
  message: string;
  task?: string;
}

export class Kernel implements TaskOwner {
  sched: Scheduler;
  readonly clock: VirtualClock;
  readonly trace = new Trace();
  readonly vfs = new Vfs();
  readonly chrdevs = new Chrdevs();
  readonly devFs: FsInfo = { name: 'devtmpfs', dev: { major: 0, minor: 5 } };
  readonly sysFs: FsInfo = { name: 'sysfs', dev: { major: 0, minor: 20 } };
  readonly procFs: FsInfo = { name: 'proc', dev: { major: 0, minor: 21 } };
  readonly anonFs: FsInfo = { name: 'anon_inodefs', dev: { major: 0, minor: 15 } };
  /** The single shared anonymous inode (fs/anon_inodes.c). */
  readonly anonInode: Inode;
  readonly warnings: KernelWarning[] = [];
  /** Per-subsystem global state (vfio's device IDA, group list, ...), keyed by subsystem. */
  readonly subsys = new Map<string, unknown>();
  /** Variant overrides of named kernel functions (override.ts). */
  readonly overrides = new Map<string, unknown>();
  /** Warnings are also thrown (tests of the model itself use this). */
  strict = false;

  constructor() {
    this.sched = new RunScheduler();
    this.clock = new VirtualClock(() => this.sched);
    this.anonInode = makeAnonInode(1, this.anonFs.dev);
    this.vfs.mkdirp('/dev', this.devFs).fs = this.devFs;
    this.vfs.mkdirp('/sys', this.sysFs).fs = this.sysFs;
  }

  /** Get or create a subsystem's global state. */
  state<T>(key: string, make: () => T): T {
    let s = this.subsys.get(key) as T | undefined;
    if (s === undefined) {
      s = make();
      this.subsys.set(key, s);
    }
    return s;
  }

  warn(message: string): void {
    const t = currentOrNull();
    const ev = this.trace.emit({
      kind: 'warn',
      name: 'WARN',
      time: this.clock.now,
      msg: message,
      ...(t ? { task: t.name, cause: t.ctx.cause as number | undefined } : {}),
    });
    this.warnings.push({ seq: ev.seq, message, ...(t ? { task: t.name } : {}) });
    if (this.strict) throw new Error(`kernel WARN: ${message}`);
  }

  /** A kernel log line (pr_info/pci_warn...): a trace event, not a WARN. */
  printk(msg: string): void {
    this.event('printk', undefined, msg);
  }

  /** Emit a kernel event caused by the current task (cheap no-op when nobody listens). */
  event(name: string, args?: Record<string, unknown>, msg?: string): void {
    if (!this.trace.active) return;
    const t = currentOrNull();
    const proc = t?.proc as { pid?: number } | null | undefined;
    this.trace.emit({
      kind: 'kernel',
      name,
      time: this.clock.now,
      ...(args ? { args } : {}),
      ...(msg ? { msg } : {}),
      ...(t ? { task: t.name, tid: t.tid, cause: t.ctx.cause as number | undefined } : {}),
      ...(proc?.pid !== undefined ? { pid: proc.pid } : {}),
    });
  }

  /** Start a kernel thread (driver unbind, hot-unplug, delayed work). Runs until it blocks. */
  spawnKernelTask(name: string, body: KGen<unknown>, cause?: number): Task {
    const t = new Task(this, name, body, null);
    if (cause !== undefined) t.ctx.cause = cause;
    this.sched.add(t);
    this.sched.run();
    return t;
  }

  /** Run a task to completion with the run scheduler; SyscallBlocked if it sleeps. */
  runToCompletion<T>(t: Task): T {
    this.sched.add(t);
    this.sched.run();
    if (t.state !== 'done') throw new SyscallBlocked(t);
    if (t.error !== undefined) throw t.error;
    return t.result as T;
  }

  /**
   * Start a syscall of process `proc` as a task and run it with the run scheduler. Trace: an
   * 'enter' event, the kernel events it causes, an 'exit' event with the libc-style result.
   * Returns the task (done, or sleeping if it blocked).
   */
  startSyscall(
    proc: { pid: number; comm: string },
    tid: number,
    name: string,
    args: Record<string, unknown>,
    body: KGen<number>,
  ): Task {
    const tr = this.trace.active;
    const enter = tr
      ? this.trace.emit({ kind: 'syscall', phase: 'enter', name, args, pid: proc.pid, tid, time: this.clock.now })
      : undefined;
    const t = new Task(this, `${proc.comm}[${tid}] ${name}`, body, proc, tid);
    if (enter) t.ctx.cause = enter.seq;
    t.ctx.syscall = name;
    if (tr)
      t.whenDone((done) => {
        if (!this.trace.active) return;
        const r = done.error === undefined ? (done.result as number) : undefined;
        this.trace.emit({
          kind: 'syscall',
          phase: 'exit',
          name,
          args,
          pid: proc.pid,
          tid,
          time: this.clock.now,
          ...(enter ? { cause: enter.seq } : {}),
          ...(r === undefined ? { msg: String(done.error) } : r < 0 ? { ret: -1, errno: errnoName(r) } : { ret: r }),
        });
      });
    this.sched.add(t);
    this.sched.run();
    return t;
  }

  /** A syscall run to completion: its kernel-style result (>= 0, or -errno). */
  syscall(proc: { pid: number; comm: string }, tid: number, name: string, args: Record<string, unknown>, body: KGen<number>): number {
    const t = this.startSyscall(proc, tid, name, args, body);
    if (t.state !== 'done') throw new SyscallBlocked(t);
    if (t.error !== undefined) throw t.error;
    return t.result as number;
  }

  devNumber(d: DevT): string {
    return `${d.major}:${d.minor}`;
  }

  emitAdmin(name: string, args: Record<string, unknown>, msg?: string): TraceEvent | undefined {
    if (!this.trace.active) return undefined;
    return this.trace.emit({ kind: 'admin', name, time: this.clock.now, args, ...(msg ? { msg } : {}) });
  }
}
