// Invariants the explorer checks after every transition and at the end of every execution.
//
// Built in (names usable in a scenario's `invariants.disable`):
//   open-once             open_device is never called on a device that is open (per device, in its set)
//   close-once            close_device only on an open device; at the end, a device none of whose
//                         files is left is closed (close_device ran once after its last file went)
//   access-granted        no device access (ioctl, read, write, mmap) through a file before access
//                         was granted on it (the model's WARN in vfio_main.ts vfioNoteDeviceAccess)
//   access-while-closed   no device access while the device is closed (after close_device tore the
//                         driver's state down, before the next open_device)
//   use-after-put         no use of an object after its last reference was put (refcount_t WARNs,
//                         device access after the last registration put)
//   kernel-warn           no other WARN of the model
//   one-opener            at most one live group file per group
//   group-cdev-exclusion  never a live group file while a cdev of the group is bound
//   unregister-completes  at the end, no unregister still waits for a device none of whose files is left
//   deadlock              at the end, no task blocked forever (an unregister waiting for files still
//                         open is not a deadlock: that is the design)
//   lock-order            no cycle in the lock order seen across all executions (checked by the explorer)
//   task-error            no kernel bug in a task (lockdep assertion, unlock of a lock not held, ...)
//   expect                every thread step's `expect` holds
//
// Users add invariants over the model's state: an expression (scenario `invariants.check`) or a
// module exporting `invariants: UserInvariant[]` (see UserInvariant).

import type { Host } from '../host/host.js';
import type { Kernel } from '../kernel/kernel.js';
import type { TraceEvent } from '../kernel/trace.js';
import { File, fileHooks } from '../kernel/fs/file.js';
import { procTable } from '../kernel/process.js';
import type { Process } from '../api/process.js';
import type { VfioDevice, VfioDeviceFile } from '../vfio/vfio.js';
import type { Task } from '../kernel/sched.js';
import { Completion } from '../kernel/sync.js';

export interface Violation {
  /** a built-in invariant's name or a user invariant's name */
  kind: string;
  message: string;
  /** number of transitions executed when it was seen (0: during the setup steps) */
  step: number;
  thread?: string;
}

/** What an invariant sees. Views are computed on demand. */
export interface InvariantContext {
  host: Host;
  kernel: Kernel;
  /** 'step': after a transition; 'end': at the end of an execution */
  at: 'step' | 'end';
  /** transitions executed so far */
  step: number;
  /** the thread whose transition just ran (null at the end or during setup) */
  thread: string | null;
  /** trace events of the transition (syscall enter/exit, kernel events, WARNs) */
  events: TraceEvent[];
  /** the host's views (as `vfiosim host --json` prints them) */
  readonly devices: ReturnType<Host['devices']>;
  readonly groups: ReturnType<Host['groups']>;
  readonly sets: ReturnType<Host['deviceSets']>;
  /** the explorer's threads: name, finished, blocked */
  readonly threads: Array<{ name: string; finished: boolean; blocked: boolean }>;
  /** the vfio_device of a PCI function (BDF or topology name) */
  vfio(bdf: string): VfioDevice | null;
}

/**
 * A user invariant. `check` returns true, null or undefined when it holds; false or a message
 * when it is violated. Export a list of these as `invariants` from a module and name it in the
 * scenario (`invariants: { check: [ { module: ./my-invariants.js } ] }`) or pass them to explore().
 */
export interface UserInvariant {
  name: string;
  at?: 'step' | 'end';
  check(ctx: InvariantContext): unknown;
}

/** An expression invariant: the expression sees the context's fields as plain names. */
export function expressionInvariant(name: string, expr: string, at: 'step' | 'end' = 'step'): UserInvariant {
  // sloppy-mode function so that `with` can expose the context's fields as names
  const f = new Function('__ctx', `with (__ctx) { return (${expr}); }`) as (c: object) => unknown;
  return {
    name,
    at,
    check(ctx) {
      const scope = new Proxy(ctx as unknown as Record<string | symbol, unknown>, {
        has: (t, k) => typeof k === 'string' && k in t,
        get: (t, k) => t[k],
      });
      return f(scope);
    },
  };
}

interface ThreadView {
  name: string;
  finished: boolean;
  blocked: boolean;
  task: Task | null;
}

/** A message without object numbers (file#12, vfio_container#3 differ from one execution to the next). */
export function normalizeMessage(m: string): string {
  return m.replace(/#\d+/g, '#');
}

/** The explorer's per-execution monitor: trace events in, violations out. */
export class Monitor {
  readonly violations: Violation[] = [];
  /** benign observations at the end (an unregister waiting for open files) */
  readonly notes: string[] = [];
  private buf: TraceEvent[] = [];
  private readonly open = new Map<string, boolean>();
  private readonly groupOf = new Map<string, string>();
  private readonly groupFiles = new Map<string, Set<number>>();
  private readonly boundCdevs = new Map<string, Set<number>>();
  readonly devices: VfioDevice[] = [];
  private readonly seen = new Set<string>();
  /**
   * Observations of the current transition, as pseudo accesses: every event that changes what a
   * built-in invariant looks at writes its key (reads for device accesses), so that all such
   * events are ordered in every trace and the invariants see the same sequence of values in
   * every interleaving DPOR treats as equivalent.
   */
  obs: Array<[string, 0 | 1]> = [];
  step = 0;
  thread: string | null = null;

  constructor(
    readonly host: Host,
    private readonly disabled: ReadonlySet<string>,
    private readonly user: readonly UserInvariant[],
    private readonly procs: () => Iterable<Process>,
    private readonly threads: () => ThreadView[],
  ) {
    const k = host.kernel;
    for (const d of host.devices()) {
      if (!d.vfio) continue;
      const v = host.vfioDevice(d.bdf);
      if (!v) continue;
      this.devices.push(v);
      if (v.group) this.groupOf.set(v.dev.name, v.group.name);
      this.open.set(v.dev.name, v.openCount > 0);
    }
    k.trace.subscribe((e) => this.buf.push(e));
    fileHooks.set(k, { beforeRelease: (f) => this.released(f) });
  }

  private on(kind: string): boolean {
    return !this.disabled.has(kind);
  }

  violate(kind: string, message: string): void {
    if (!this.on(kind)) return;
    const key = `${kind}\u0000${normalizeMessage(message)}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.violations.push({ kind, message, step: this.step, ...(this.thread ? { thread: this.thread } : {}) });
  }

  private released(f: File): void {
    if (f.fOp.name === 'vfio_group_fops') {
      for (const [g, s] of this.groupFiles) if (s.delete(f.id)) this.obs.push([`obs:group:${g}`, 1]);
    } else if (f.fOp.name === 'vfio_device_fops') {
      for (const [g, s] of this.boundCdevs) if (s.delete(f.id)) this.obs.push([`obs:group:${g}`, 1]);
    }
  }

  private set(m: Map<string, Set<number>>, k: string): Set<number> {
    let s = m.get(k);
    if (!s) m.set(k, (s = new Set()));
    return s;
  }

  /** Consume the events of one transition (or of the setup); returns them. */
  afterTransition(): TraceEvent[] {
    const evs = this.buf;
    this.buf = [];
    for (const e of evs) this.event(e);
    for (const [g, files] of this.groupFiles) {
      const bound = this.boundCdevs.get(g);
      if (files.size > 0 && bound && bound.size > 0)
        this.violate('group-cdev-exclusion', `group ${g} has a live group file while a cdev of the group is bound`);
    }
    if (this.user.length) this.runUser('step', evs);
    return evs;
  }

  private event(e: TraceEvent): void {
    const a = (e.args ?? {}) as Record<string, unknown>;
    if (e.kind === 'warn') {
      const m = e.msg ?? '';
      if (/before access was granted/.test(m)) this.violate('access-granted', m);
      else if (/refcount_t|use-after-free|after its last registration put/.test(m)) this.violate('use-after-put', m);
      else this.violate('kernel-warn', m);
      return;
    }
    if (e.kind !== 'kernel') return;
    const dev = String(a.device ?? '');
    switch (e.name) {
      case 'open_device':
        this.obs.push([`obs:dev:${dev}`, 1]);
        if (this.open.get(dev)) this.violate('open-once', `open_device(${dev}) while ${dev} is open (no close_device since the last open_device)`);
        this.open.set(dev, true);
        break;
      case 'close_device':
        this.obs.push([`obs:dev:${dev}`, 1]);
        if (!this.open.get(dev)) this.violate('close-once', `close_device(${dev}) while ${dev} is not open`);
        this.open.set(dev, false);
        break;
      case 'device_access':
        this.obs.push([`obs:dev:${dev}`, 0]);
        if (!this.open.get(dev))
          this.violate('access-while-closed', `device access (${a.op}) to ${dev} through file#${a.file} while ${dev} is closed (after close_device)`);
        break;
      case 'group_open': {
        this.obs.push([`obs:group:${a.group}`, 1]);
        const s = this.set(this.groupFiles, String(a.group));
        s.add(Number(a.file));
        if (s.size > 1) this.violate('one-opener', `group ${a.group} has ${s.size} live group files`);
        break;
      }
      case 'access_granted':
        if (a.via === 'bind' && a.file !== undefined) {
          const g = this.groupOf.get(dev);
          if (g) {
            this.obs.push([`obs:group:${g}`, 1]);
            this.set(this.boundCdevs, g).add(Number(a.file));
          }
        }
        break;
      case 'access_revoked': {
        // a variant's bound -> unbound: the file no longer counts as a bound cdev
        const g = this.groupOf.get(dev);
        if (g && this.boundCdevs.get(g)?.delete(Number(a.file))) this.obs.push([`obs:group:${g}`, 1]);
        break;
      }
    }
  }

  /** Device files of `d` still in some fd table or mapping (userspace has not closed them). */
  liveFiles(d: VfioDevice): number {
    const files = new Set<File>();
    for (const p of procTable(this.host.kernel).procs.values()) {
      if (p.state !== 'alive') continue;
      for (const fd of p.fdt.fds()) {
        const f = p.fdt.get(fd);
        if (f) files.add(f);
      }
    }
    for (const p of this.procs()) {
      const maps = (p as unknown as { mappings: Array<{ file: File }> }).mappings;
      for (const m of maps) files.add(m.file);
    }
    let n = 0;
    for (const f of files)
      if (!f.released && f.fOp.name === 'vfio_device_fops' && (f.privateData as VfioDeviceFile).device === d) n++;
    return n;
  }

  /** End of an execution: close-once, unregister-completes, deadlock, user end invariants. */
  atEnd(): void {
    this.thread = null;
    const blocked = this.threads().filter((t) => t.blocked && t.task);
    if (blocked.length === 0)
      for (const d of this.devices) {
        if (this.open.get(d.dev.name) && this.liveFiles(d) === 0)
          this.violate('close-once', `${d.dev.name} is still open although none of its files is left (close_device missing)`);
      }
    const deadlocked: string[] = [];
    for (const t of blocked) {
      const op = t.task!.pending!;
      const dev = op.obj instanceof Completion ? this.devices.find((d) => d.comp === op.obj) : undefined;
      if (dev && op.kind === 'wait') {
        const n = this.liveFiles(dev);
        if (n === 0) this.violate('unregister-completes', `${t.name}: unregister of ${dev.dev.name} still waits although none of its files is left`);
        else this.notes.push(`${t.name}: unregister of ${dev.dev.name} waits for ${n} open file(s) (by design)`);
        continue;
      }
      const owner = (op.obj as { owner?: Task | null }).owner;
      deadlocked.push(`${t.name} blocked in ${op.kind}(${op.obj.label})${owner ? ` held by ${owner.name}` : ''}`);
    }
    if (deadlocked.length) this.violate('deadlock', `tasks blocked forever: ${deadlocked.join('; ')}`);
    if (this.user.length) this.runUser('end', this.buf.splice(0));
  }

  private runUser(at: 'step' | 'end', events: TraceEvent[]): void {
    const host = this.host;
    const self = this;
    let devices: ReturnType<Host['devices']> | undefined;
    let groups: ReturnType<Host['groups']> | undefined;
    let sets: ReturnType<Host['deviceSets']> | undefined;
    const ctx: InvariantContext = {
      host,
      kernel: host.kernel,
      at,
      step: this.step,
      thread: at === 'end' ? null : this.thread,
      events,
      get devices() {
        return (devices ??= host.devices());
      },
      get groups() {
        return (groups ??= host.groups());
      },
      get sets() {
        return (sets ??= host.deviceSets());
      },
      get threads() {
        return self.threads().map((t) => ({ name: t.name, finished: t.finished, blocked: t.blocked }));
      },
      vfio: (bdf: string) => host.vfioDevice(bdf),
    };
    for (const inv of this.user) {
      if ((inv.at ?? 'step') !== at) continue;
      let r: unknown;
      try {
        r = inv.check(ctx);
      } catch (e) {
        this.violate(inv.name, `the invariant threw: ${(e as Error).message}`);
        continue;
      }
      if (r === false) this.violate(inv.name, `${inv.name} does not hold`);
      else if (typeof r === 'string' && r.length) this.violate(inv.name, r);
    }
  }
}
