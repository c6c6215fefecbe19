// The simulated kernel's execution substrate: tasks, visible operations and the run scheduler.
//
// Kernel code that can race is written as generators. Every *visible operation* (lock, unlock,
// atomic access, refcount get/put, completion wait/complete, exposed shared-field access) is
// yielded to the scheduler as an `Op`, which carries its footprint (object, read/write, memory
// ordering). The scheduler decides when the op executes: the run scheduler executes it at once
// when it is enabled (a task runs until it finishes or blocks, as in a kernel); the explorer
// (another scheduler over the same tasks and ops) chooses among the enabled ops of all tasks.
// Code between two visible operations is task-local and runs without interruption.

export type Access = 'read' | 'write';
export type MemOrder = 'plain' | 'once' | 'relaxed' | 'acquire' | 'release' | 'acq_rel' | 'seq_cst';

export type OpKind =
  | 'mutex_lock' | 'mutex_trylock' | 'mutex_unlock'
  | 'down_read' | 'up_read' | 'down_write' | 'up_write' | 'down_write_trylock'
  | 'spin_lock' | 'spin_unlock'
  | 'atomic_load' | 'atomic_store' | 'atomic_rmw'
  | 'ref_get' | 'ref_put'
  | 'wait' | 'complete'
  | 'load' | 'store'
  | 'sleep';

let nextKid = 1;

/** Anything a visible operation can act on: it has an identity and a readable label. */
export class KObject {
  readonly kid: number;
  label: string;
  constructor(label: string) {
    this.kid = nextKid++;
    this.label = label;
  }
  toString(): string {
    return this.label;
  }
}

/** A visible operation: the unit of scheduling. */
export interface Op {
  readonly kind: OpKind;
  readonly obj: KObject;
  readonly access: Access;
  readonly order: MemOrder;
  /** Executing it may unblock tasks waiting on `obj`. */
  readonly wakes: boolean;
  /** Whether the task can execute it now (false: it blocks, e.g. a held mutex). */
  enabled(t: Task): boolean;
  /** Perform the effect; the value is what the yielding generator receives. */
  exec(t: Task): unknown;
  /** Virtual-time deadline (ms) after which a blocking op becomes enabled anyway. */
  readonly deadline?: number;
}

/** The footprint of an executed op, as traces and the explorer see it. */
export interface Footprint {
  kind: OpKind;
  kid: number;
  label: string;
  access: Access;
  order: MemOrder;
}

export function footprintOf(op: Op): Footprint {
  return { kind: op.kind, kid: op.obj.kid, label: op.obj.label, access: op.access, order: op.order };
}

/** A kernel generator: yields visible operations, returns T. */
export type KGen<T> = Generator<Op, T, unknown>;

export type TaskState = 'runnable' | 'blocked' | 'done';

/** A simulated kernel bug (BUG_ON, lockdep splat, refcount misuse): the model is inconsistent. */
export class KernelBug extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KernelBug';
  }
}

/** The minimal view of "the kernel" the substrate needs from a task. */
export interface TaskOwner {
  readonly sched: Scheduler;
  readonly clock: VirtualClock;
  /** WARN_ON and refcount misuse: recorded (trace + violation list), execution goes on as in the kernel. */
  warn(message: string): void;
  /** Variant overrides of named kernel functions (see override.ts). */
  readonly overrides: Map<string, unknown>;
}

let nextTaskId = 1;
let cur: Task | null = null;

/** The task whose code is running (the kernel's `current`). */
export function current(): Task {
  if (!cur) throw new KernelBug('no current task: kernel code must run inside a task');
  return cur;
}

export function currentOrNull(): Task | null {
  return cur;
}

export class Task {
  readonly id: number;
  readonly name: string;
  readonly kernel: TaskOwner;
  /** The user process this task runs for (null for kernel threads). Typed loosely to keep the substrate layered. */
  readonly proc: unknown;
  /** Thread id inside the process (or the task id for kernel threads). */
  readonly tid: number;
  state: TaskState = 'runnable';
  pending: Op | null = null;
  result: unknown = undefined;
  error: unknown = undefined;
  /** Locks held, innermost last (lockdep, explorer). */
  readonly held: KObject[] = [];
  /** Deferred work run when the main body returns (task_work: e.g. the final fput's release). */
  readonly taskWork: Array<() => KGen<void>> = [];
  /** Free-form per-task context (e.g. the syscall it is executing, for trace causality). */
  ctx: Record<string, unknown> = {};
  private gen: KGen<unknown>;
  private readonly onDone: Array<(t: Task) => void> = [];

  constructor(kernel: TaskOwner, name: string, body: KGen<unknown>, proc: unknown = null, tid?: number) {
    this.id = nextTaskId++;
    this.kernel = kernel;
    this.name = name;
    this.proc = proc;
    this.tid = tid ?? this.id;
    this.gen = body;
  }

  whenDone(cb: (t: Task) => void): void {
    if (this.state === 'done') cb(this);
    else this.onDone.push(cb);
  }

  /** Resume the generator with `v` and run task-local code up to the next visible op or the end. */
  advance(v: unknown): void {
    const prev = cur;
    cur = this;
    try {
      for (;;) {
        let r: IteratorResult<Op, unknown>;
        try {
          r = this.gen.next(v);
        } catch (e) {
          this.finish(undefined, e);
          return;
        }
        if (!r.done) {
          this.pending = r.value;
          return;
        }
        if (this.taskWork.length > 0) {
          // Run deferred work (the final fput's release, ...) before the task returns.
          const result = r.value;
          const works = this.taskWork.splice(0, this.taskWork.length);
          this.gen = runTaskWork(works, result);
          v = undefined;
          continue;
        }
        this.finish(r.value, undefined);
        return;
      }
    } finally {
      cur = prev;
    }
  }

  /** Execute the pending op (the caller checked it is enabled) and advance. */
  step(): Op {
    const op = this.pending;
    if (!op) throw new KernelBug(`task ${this.name} has no pending op`);
    const prev = cur;
    cur = this;
    let v: unknown;
    try {
      v = op.exec(this);
    } catch (e) {
      cur = prev;
      this.finish(undefined, e);
      return op;
    }
    cur = prev;
    this.pending = null;
    this.advance(v);
    return op;
  }

  private finish(result: unknown, error: unknown): void {
    this.pending = null;
    this.state = 'done';
    this.result = result;
    this.error = error;
    if (error === undefined && this.held.length > 0) {
      this.error = new KernelBug(
        `task ${this.name} returned holding ${this.held.map((h) => h.label).join(', ')}`,
      );
    }
    const cbs = this.onDone.splice(0, this.onDone.length);
    for (const cb of cbs) cb(this);
  }
}

function* runTaskWork(works: Array<() => KGen<void>>, result: unknown): KGen<unknown> {
  // Deferred work may queue more deferred work (a release dropping the last ref of another file).
  const t = current();
  let queue = works;
  while (queue.length > 0) {
    for (const w of queue) yield* w();
    queue = t.taskWork.splice(0, t.taskWork.length);
  }
  return result;
}

/** A scheduler drives tasks. The run scheduler and the explorer both implement it. */
export interface Scheduler {
  /** A new task was created (its generator has not started yet). */
  add(t: Task): void;
  /** Run until no task can make progress. */
  run(): void;
  /** Tasks that exist and are not done. */
  live(): Task[];
  /** Called by an op's exec when a timed wait's deadline may have changed. */
  onClockAdvance(): void;
}

/** Virtual time for timeouts (wait_for_completion_timeout, msleep). Advances only when told. */
export class VirtualClock {
  now = 0;
  constructor(private readonly sched: () => Scheduler) {}
  /** Advance by `ms`, firing every deadline passed on the way, in order. */
  advance(ms: number): void {
    const target = this.now + ms;
    const s = this.sched();
    for (;;) {
      let next = Infinity;
      for (const t of s.live()) {
        const d = t.pending?.deadline;
        if (t.state === 'blocked' && d !== undefined && d > this.now && d <= target && d < next) next = d;
      }
      if (next === Infinity) break;
      this.now = next;
      s.onClockAdvance();
      s.run();
    }
    this.now = target;
    s.onClockAdvance();
    s.run();
  }
}

/**
 * The run scheduler: a task runs until it finishes or blocks; blocked tasks wait on the object
 * of their pending op and become runnable when an op that `wakes` executes on that object.
 */
export class RunScheduler implements Scheduler {
  private readonly runq: Task[] = [];
  private readonly waiters = new Map<KObject, Set<Task>>();
  private readonly all = new Set<Task>();
  /** Observers of every executed op (tracing of footprints; off by default for speed). */
  opObserver: ((t: Task, op: Op) => void) | null = null;

  add(t: Task): void {
    this.all.add(t);
    t.whenDone(() => this.all.delete(t));
    t.advance(undefined);
    if (t.state === 'runnable') this.runq.push(t);
  }

  live(): Task[] {
    return [...this.all];
  }

  run(): void {
    while (this.runq.length > 0) {
      const t = this.runq.shift()!;
      this.runTask(t);
    }
  }

  private runTask(t: Task): void {
    while (t.state === 'runnable') {
      const op = t.pending;
      if (!op) return;
      if (!op.enabled(t)) {
        t.state = 'blocked';
        let set = this.waiters.get(op.obj);
        if (!set) this.waiters.set(op.obj, (set = new Set()));
        set.add(t);
        return;
      }
      t.step();
      if (this.opObserver) this.opObserver(t, op);
      if (op.wakes) this.wake(op.obj);
    }
  }

  private wake(obj: KObject): void {
    const set = this.waiters.get(obj);
    if (!set || set.size === 0) return;
    this.waiters.delete(obj);
    for (const w of set) {
      if (w.state === 'blocked') {
        w.state = 'runnable';
        this.runq.push(w);
      }
    }
  }

  onClockAdvance(): void {
    for (const [obj, set] of this.waiters) {
      for (const w of set) {
        const d = w.pending?.deadline;
        if (d !== undefined && w.state === 'blocked' && w.pending!.enabled(w)) {
          set.delete(w);
          w.state = 'runnable';
          this.runq.push(w);
        }
      }
      if (set.size === 0) this.waiters.delete(obj);
    }
  }
}
