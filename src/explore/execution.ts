// One execution of an explorer scenario: boot a fresh host (the model is deterministic), apply the
// variant, run the setup steps with the run scheduler, then hand the kernel to the exploring
// scheduler, under which nothing runs unless the explorer says so. Each call to step(thread)
// executes one transition of that thread: start its next step (a syscall or a kernel event, as a
// task), or execute its task's pending visible operation (with the task-local code that follows).
// Every transition is recorded with its footprint, its happens-before predecessors and vector
// clock (for DPOR and for counting Mazurkiewicz traces), and the monitor checks the invariants.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Host } from '../host/host.js';
import { Topology, parseTopology, validateTopology } from '../host/topology.js';
import { DEFAULT_HOST_YAML } from '../host/default_host.js';
import { KObject, KernelBug, Op, OpKind, Scheduler, Task } from '../kernel/sched.js';
import { Completion } from '../kernel/sync.js';
import { TraceEvent } from '../kernel/trace.js';
import { Scenario, Step } from '../scenario/scenario.js';
import { ScenarioRunner } from '../scenario/runner.js';
import {
  BlockKind, LockState, Mode, R, W, applyEffect, classify, describeOp, fdtKeys, instrument, keyId, lockState,
  recorder,
} from './footprint.js';
import { Monitor, UserInvariant, Violation, expressionInvariant } from './invariants.js';
import { StartedStep, StepOutcome, TVar, ThreadStepError, startThreadStep } from './threads.js';
import { Variant, applyVariant } from './variants.js';

/** A scenario ready to be executed many times (topology parsed once, invariants resolved). */
export interface PreparedScenario {
  scenario: Scenario;
  topology: Topology;
  invariants: UserInvariant[];
  disabled: Set<string>;
}

/**
 * Prepare a scenario: parse its host once; expression invariants become functions; module
 * invariants must be loaded by the caller (loadInvariantModules) and passed in `extra`.
 */
export function prepareScenario(sc: Scenario, opts: { host?: string; extra?: UserInvariant[] } = {}): PreparedScenario {
  let topology: Topology;
  if (opts.host) topology = parseTopology(readFileSync(opts.host, 'utf8'), opts.host);
  else if (sc.host === 'default') topology = parseTopology(DEFAULT_HOST_YAML, 'default host');
  else if (typeof sc.host === 'string') {
    const base = sc.source.startsWith('<') ? process.cwd() : dirname(resolve(sc.source));
    const path = resolve(base, sc.host);
    topology = parseTopology(readFileSync(path, 'utf8'), path);
  } else topology = validateTopology(sc.host, `${sc.source}: host`);
  const invariants: UserInvariant[] = [];
  for (const c of sc.invariants.check) if (c.expr !== undefined) invariants.push(expressionInvariant(c.name, c.expr, c.at));
  invariants.push(...(opts.extra ?? []));
  return { scenario: sc, topology, invariants, disabled: new Set(sc.invariants.disable) };
}

export interface ExecOptions {
  variant: Variant | null;
  /** how many times each task's timed wait may time out (a choice the explorer makes) */
  timeouts: number;
  /** transitions per execution before it is cut */
  depth: number;
  /** keep readable details of every transition (for counterexamples) */
  record: boolean;
}

/** A transition as the explorer records it. */
export interface XEvent {
  thread: number;
  /** index among the transitions of its thread */
  idx: number;
  /** accessed keys (interned) and modes, one entry per key */
  keys: number[];
  modes: Mode[];
  /** direct happens-before predecessors (other than the previous transition of the thread) */
  preds: number[];
  /** vector clock: vc[t] = transitions of thread t that happen before or are this one */
  vc: number[];
  /** how the op may block, its object's key and that object's lock state before/after */
  block: BlockKind | null;
  objKey: number;
  lockPre: LockState | null;
  lockPost: LockState | null;
  /** for timed waits: whether a timeout was still allowed (budget) */
  budget: boolean;
  /** the op's kind ('start' for the start of a step) */
  opKind: OpKind | 'start';
  /** the transition ended its thread's step (the syscall or kernel event returned) */
  ends: boolean;
  /** what it did, when recording */
  info?: EventInfo;
}

export interface EventInfo {
  thread: string;
  /** 'start' (a step begins), 'op' (a visible operation), 'timeout' */
  what: 'start' | 'op' | 'timeout';
  /** the step's call (ioctl(dev, ...)) */
  call: string;
  /** the operation: mutex_lock(dev_set(...)->lock) */
  op: string;
  footprint: string[];
  events: TraceEvent[];
  /** the step's outcome when the transition ended it */
  outcome?: StepOutcome;
}

export interface XThread {
  /** the scenario's thread name (bgN for a task left over from the setup) */
  name: string;
  /** what to show (the task's name for bgN threads) */
  label: string;
  index: number;
  steps: Step[];
  next: number;
  task: Task | null;
  started: StartedStep | null;
  /** the step being executed (for printing) */
  current: Step | null;
  vars: Map<string, TVar>;
  timeoutsUsed: number;
  events: number;
  tid: number;
  /** a thread made of a task left over from the setup (or spawned by kernel code) */
  orphan: boolean;
  /** outcomes of the finished steps */
  outcomes: StepOutcome[];
}

export type ThreadStatus = 'enabled' | 'blocked' | 'done';

/** The exploring scheduler: tasks run only when the explorer steps them. */
export class ExploreScheduler implements Scheduler {
  private readonly tasks = new Set<Task>();
  /** called after a task was added and advanced to its first visible op */
  onAdd: ((t: Task) => void) | null = null;
  add(t: Task): void {
    this.tasks.add(t);
    t.whenDone(() => this.tasks.delete(t));
    t.advance(undefined);
    this.onAdd?.(t);
  }
  /** Take over a task another scheduler started (it has advanced to its pending op already). */
  adopt(t: Task): void {
    this.tasks.add(t);
    t.whenDone(() => this.tasks.delete(t));
    if (t.state === 'blocked') t.state = 'runnable';
  }
  run(): void {}
  live(): Task[] {
    return [...this.tasks].filter((t) => t.state !== 'done');
  }
  onClockAdvance(): void {}
}

interface KeyState {
  lastW: number;
  reads: number[];
  adds: number[];
}

let probeLabel = '';
function probe(): number {
  return new KObject(probeLabel).kid;
}

export interface LockEdge {
  from: string;
  to: string;
  fromLabel: string;
  toLabel: string;
  thread: string;
}

export class Execution {
  readonly host: Host;
  readonly threads: XThread[] = [];
  readonly events: XEvent[] = [];
  /** thread index of every transition */
  readonly schedule: number[] = [];
  readonly monitor: Monitor;
  readonly runner: ScenarioRunner;
  readonly lockEdges = new Map<string, LockEdge>();
  /** the setup failed (an expectation, a model exception): no thread runs */
  setupFailure: string | null = null;
  truncated = false;
  private readonly sched = new ExploreScheduler();
  private readonly base: number;
  private readonly marks: number[] = [];
  private readonly markIds: string[] = [];
  private readonly canonCache = new Map<KObject, number>();
  /** interned key -> the label of the object it named in this execution */
  readonly keyLabels = new Map<number, string>();
  private readonly keyState = new Map<number, KeyState>();
  private expecting: XThread | null = null;

  constructor(
    readonly prep: PreparedScenario,
    readonly opts: ExecOptions,
  ) {
    instrument();
    this.base = probe();
    const sc = prep.scenario;
    this.host = new Host(prep.topology);
    const k = this.host.kernel;
    if (opts.variant) applyVariant(k, opts.variant);
    this.runner = new ScenarioRunner({ ...sc, threads: [] }, this.host);
    this.monitor = new Monitor(
      this.host,
      prep.disabled,
      prep.invariants,
      () => this.runner.procs.values(),
      () => this.threads.map((t) => ({ name: t.name, finished: this.status(t) === 'done', blocked: this.status(t) === 'blocked', task: t.task })),
    );
    for (const p of this.runner.procs.values()) fdtKeys.set(p.kproc.fdt, `fdt:${p.pid}`);
    // the setup steps, in order, with the run scheduler
    try {
      for (const st of sc.steps) {
        const r = this.runner.runStep(st);
        if (r.failure) {
          this.setupFailure = `setup step ${st.index} (${r.call}): ${r.failure}`;
          break;
        }
      }
    } catch (e) {
      this.setupFailure = `setup: ${(e as Error).message}`;
    }
    for (const p of this.runner.procs.values()) fdtKeys.set(p.kproc.fdt, `fdt:${p.pid}`);
    this.monitor.afterTransition();
    if (this.setupFailure) this.monitor.violate('expect', this.setupFailure);
    // hand the kernel to the exploring scheduler; tasks still sleeping become threads
    const left = k.sched.live();
    k.sched = this.sched;
    left.forEach((t, i) => {
      this.sched.adopt(t);
      this.addThread(`bg${i + 1}`, [], t, true).label = t.name;
    });
    if (!this.setupFailure) for (const td of sc.threads) this.addThread(td.name, td.steps, null, false);
    this.sched.onAdd = (t) => this.onTaskAdded(t);
    this.marks.push(probe());
    this.markIds.push('setup');
  }

  private addThread(name: string, steps: Step[], task: Task | null, orphan: boolean): XThread {
    const index = this.threads.length;
    const th: XThread = {
      name,
      label: name,
      index,
      steps,
      next: 0,
      task,
      started: null,
      current: null,
      vars: new Map(),
      timeoutsUsed: 0,
      events: 0,
      tid: 0,
      orphan,
      outcomes: [],
    };
    this.threads.push(th);
    return th;
  }

  private onTaskAdded(t: Task): void {
    if (this.expecting && this.expecting.task === null) {
      this.expecting.task = t;
      return;
    }
    // kernel code started a task of its own: it becomes a thread
    const n = this.threads.filter((x) => x.orphan).length + 1;
    this.addThread(`bg${n}`, [], t, true).label = t.name;
  }

  /** A setup variable for thread steps. */
  private setupVar(name: string): TVar | undefined {
    const v = this.runner.vars.get(name);
    if (!v) return undefined;
    if (v.kind === 'fd' || v.kind === 'struct' || v.kind === 'value') return v as TVar;
    return { kind: 'other' };
  }

  // ---- enabledness ---------------------------------------------------------------------------------

  status(th: XThread): ThreadStatus {
    const t = th.task;
    if (t && t.state !== 'done') {
      const op = t.pending;
      if (!op) return 'blocked';
      if (op.kind === 'sleep') return 'enabled';
      if (op.deadline !== undefined) {
        if ((op.obj as Completion).done > 0) return 'enabled';
        return th.timeoutsUsed < this.opts.timeouts ? 'enabled' : 'blocked';
      }
      try {
        return op.enabled(t) ? 'enabled' : 'blocked';
      } catch {
        // a kernel bug (recursive locking): executing it reports the error
        return 'enabled';
      }
    }
    return th.next < th.steps.length ? 'enabled' : 'done';
  }

  enabled(): number[] {
    const out: number[] = [];
    for (const th of this.threads) if (this.status(th) === 'enabled') out.push(th.index);
    return out;
  }

  /** No thread can move (all done, or the rest blocked), or the depth bound was hit. */
  terminal(): boolean {
    if (this.events.length >= this.opts.depth) {
      this.truncated = true;
      return true;
    }
    return this.enabled().length === 0;
  }

  /** The explorer's description of what a thread would do next. */
  nextOf(th: XThread): string {
    const t = th.task;
    if (t && t.state !== 'done' && t.pending) return describeOp(t.pending);
    if (th.next < th.steps.length) return `start ${th.steps[th.next]!.op}`;
    return 'done';
  }

  // ---- canonical object names ------------------------------------------------------------------------

  canon(o: KObject): number {
    let id = this.canonCache.get(o);
    if (id !== undefined) return id;
    const kid = o.kid;
    let name: string;
    if (kid < this.marks[0]!) name = `b${kid - this.base}`;
    else {
      let lo = 0;
      let hi = this.marks.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (this.marks[mid]! <= kid) lo = mid;
        else hi = mid - 1;
      }
      name = `${this.markIds[lo]}.${kid - this.marks[lo]!}`;
    }
    id = keyId(name);
    this.canonCache.set(o, id);
    this.keyLabels.set(id, o.label);
    return id;
  }

  // ---- one transition ----------------------------------------------------------------------------

  step(ti: number): XEvent {
    const th = this.threads[ti]!;
    const idx = th.events++;
    this.marks.push(probe());
    this.markIds.push(`${th.name}:${idx}`);
    const k = this.host.kernel;
    const keys = new Map<number, Mode>();
    const add = (key: number, m: Mode) => {
      const old = keys.get(key);
      keys.set(key, old === undefined ? m : old === m ? m : W);
    };
    let block: BlockKind | null = null;
    let objKey = -1;
    let lockPre: LockState | null = null;
    let lockPost: LockState | null = null;
    let budget = false;
    let opKind: OpKind | 'start' = 'start';
    let info: EventInfo | undefined;
    const rec = this.opts.record;
    this.monitor.step = this.events.length + 1;
    this.monitor.thread = th.name;
    recorder.acc = [];
    this.monitor.obs = [];
    recorder.on = true;
    try {
      if (!th.task || th.task.state === 'done') {
        // start the thread's next step
        const st = th.steps[th.next]!;
        th.current = st;
        this.expecting = th;
        th.task = null;
        let started: StartedStep;
        try {
          started = startThreadStep(
            { host: this.host, procs: this.runner.procs, setupVar: (n) => this.setupVar(n) },
            th,
            st,
            this.tidOf(th, st),
          );
        } catch (e) {
          if (!(e instanceof ThreadStepError)) throw e;
          started = { task: null, call: st.op, finish: () => ({ skipped: (e as Error).message }) };
        } finally {
          this.expecting = null;
        }
        th.started = started;
        th.task = started.task;
        if (rec) info = { thread: th.name, what: 'start', call: started.call, op: 'begins', footprint: [], events: [] };
      } else {
        const t = th.task;
        const op = t.pending!;
        opKind = op.kind;
        const cls = classify(op);
        block = cls.block;
        objKey = this.canon(op.obj);
        lockPre = lockState(op.obj);
        let what: EventInfo['what'] = 'op';
        if (op.deadline !== undefined && op.kind !== 'sleep') {
          budget = th.timeoutsUsed < this.opts.timeouts;
          if ((op.obj as Completion).done === 0) {
            // the explorer's choice: this wait times out
            k.clock.now = Math.max(k.clock.now, op.deadline);
            th.timeoutsUsed++;
            what = 'timeout';
          }
        } else if (op.kind === 'sleep') k.clock.now = Math.max(k.clock.now, op.deadline ?? k.clock.now);
        if (op.kind === 'mutex_lock' || op.kind === 'spin_lock' || op.kind === 'down_read' || op.kind === 'down_write')
          this.lockOrder(t, op, th.name);
        const desc = rec ? describeOp(op) : '';
        t.step();
        add(objKey, cls.mode);
        lockPost = lockPre ? applyEffect(op.kind, cls.mode, lockPre) : null;
        if (rec) info = { thread: th.name, what, call: th.started?.call ?? th.name, op: what === 'timeout' ? `${desc} times out` : desc, footprint: [], events: [] };
      }
    } finally {
      recorder.on = false;
    }
    for (const [key, m] of recorder.acc) add(keyId(key), m);
    // the step is over when its task is
    let outcome: StepOutcome | undefined;
    if (!th.task || th.task.state === 'done') {
      if (th.task?.error !== undefined) {
        const e = th.task.error;
        this.monitor.violate('task-error', `${th.name}: ${e instanceof KernelBug ? e.message : `${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`}`);
        outcome = { skipped: `kernel bug: ${(e as Error).message}` };
      } else if (th.started) {
        try {
          outcome = th.started.finish();
        } catch (e) {
          this.monitor.violate('task-error', `${th.name}: ${(e as Error).message}`);
          outcome = { skipped: String((e as Error).message) };
        }
      } else outcome = {};
      if (outcome.failure) this.monitor.violate('expect', `${th.name}: ${th.started?.call ?? ''}: ${outcome.failure}`);
      th.outcomes.push(outcome);
      th.task = null;
      th.started = null;
      th.timeoutsUsed = 0;
      if (!th.orphan) th.next++;
      else th.next = th.steps.length;
    }
    const evs = this.monitor.afterTransition();
    for (const [key, m] of this.monitor.obs) add(keyId(key), m);
    const ev = this.record(th, idx, keys, block, objKey, lockPre, lockPost, budget, opKind, outcome !== undefined);
    if (info) {
      info.events = evs;
      info.footprint = ev.keys.map((kk, i) => `${kk}:${ev.modes[i]}`);
      if (outcome) info.outcome = outcome;
      ev.info = info;
    }
    return ev;
  }

  private tidOf(th: XThread, st: Step): number {
    const p = this.runner.procs.get(st.actor);
    return p ? p.pid * 1000 + th.index + 1 : th.index + 1;
  }

  private lockOrder(t: Task, op: Op, thread: string): void {
    if (t.held.length === 0) return;
    const to = this.canon(op.obj);
    for (const h of t.held) {
      if (h === op.obj) continue;
      const from = this.canon(h);
      const key = `${from}>${to}`;
      if (!this.lockEdges.has(key))
        this.lockEdges.set(key, { from: String(from), to: String(to), fromLabel: h.label, toLabel: op.obj.label, thread });
    }
  }

  private record(
    th: XThread,
    idx: number,
    keys: Map<number, Mode>,
    block: BlockKind | null,
    objKey: number,
    lockPre: LockState | null,
    lockPost: LockState | null,
    budget: boolean,
    opKind: OpKind | 'start',
    ends: boolean,
  ): XEvent {
    const i = this.events.length;
    const ks = [...keys.keys()];
    const ms = ks.map((x) => keys.get(x)!);
    const preds: number[] = [];
    for (let j = 0; j < ks.length; j++) {
      const key = ks[j]!;
      const m = ms[j]!;
      let s = this.keyState.get(key);
      if (!s) this.keyState.set(key, (s = { lastW: -1, reads: [], adds: [] }));
      if (s.lastW >= 0) preds.push(s.lastW);
      if (m !== R) preds.push(...s.reads);
      if (m !== 2) preds.push(...s.adds);
      if (m === R) s.reads.push(i);
      else if (m === 2) s.adds.push(i);
      else {
        s.lastW = i;
        s.reads = [];
        s.adds = [];
      }
    }
    const nthreads = this.threads.length;
    const vc = new Array<number>(nthreads).fill(0);
    // previous transition of the same thread
    for (let j = i - 1; j >= 0; j--) {
      const e = this.events[j]!;
      if (e.thread === th.index) {
        for (let t = 0; t < e.vc.length; t++) if (e.vc[t]! > vc[t]!) vc[t] = e.vc[t]!;
        break;
      }
    }
    const uniq = [...new Set(preds)];
    for (const p of uniq) {
      const e = this.events[p]!;
      for (let t = 0; t < e.vc.length; t++) if (e.vc[t]! > (vc[t] ?? 0)) vc[t] = e.vc[t]!;
    }
    for (let t = 0; t < nthreads; t++) vc[t] ??= 0;
    vc[th.index] = idx + 1;
    const ev: XEvent = { thread: th.index, idx, keys: ks, modes: ms, preds: uniq, vc, block, objKey, lockPre, lockPost, budget, opKind, ends };
    this.events.push(ev);
    this.schedule.push(th.index);
    return ev;
  }

  /** End of the execution: the end invariants. */
  finish(): void {
    this.monitor.step = this.events.length;
    if (!this.truncated) this.monitor.atEnd();
  }

  get violations(): Violation[] {
    return this.monitor.violations;
  }
}

/** Whether event a happens before event b (in the same execution). */
export function hb(events: XEvent[], a: number, b: number): boolean {
  const ea = events[a]!;
  return (events[b]!.vc[ea.thread] ?? 0) > ea.idx;
}
