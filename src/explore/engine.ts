// Exploration strategies over executions of a prepared scenario:
//
//   dpor        optimal dynamic partial-order reduction (Abdulla, Aronis, Jonsson, Sagonas:
//               source sets with wakeup trees): one execution per Mazurkiewicz trace of the
//               footprint dependency relation;
//   exhaustive  every interleaving (no reduction), counting the distinct traces by brute force;
//   bounded     every interleaving with at most K preemptions (a switch away from a thread that
//               could go on);
//   random      uniformly random schedules;
//   pct         probabilistic concurrency testing (random thread priorities, d-1 priority
//               change points).
//
// Every execution re-runs from scratch (a fresh host per execution). Blocking is handled through
// enabledness (a held mutex, an uncompleted completion); a timed wait may time out as the
// explorer's choice, at most `timeouts` times per task.

import { Execution, ExecOptions, PreparedScenario, XEvent } from './execution.js';
import { MODE_NAMES, Mode, W, conflicts, enabledIn, applyEffect, LockState, keyName } from './footprint.js';
import { Violation, normalizeMessage } from './invariants.js';

export type Strategy = 'dpor' | 'exhaustive' | 'bounded' | 'random' | 'pct';

export interface EngineOptions extends Omit<ExecOptions, 'record'> {
  strategy: Strategy;
  /** stop at the first violation (default true) */
  stopOnViolation: boolean;
  maxExecutions: number;
  /** wall-clock limit in ms (Infinity: none) */
  timeLimitMs: number;
  /** bounded: preemption bound */
  preemptions: number;
  /** random / pct: number of runs and the seed */
  runs: number;
  seed: number;
  /** pct: bug depth d (d - 1 priority change points) */
  pctDepth: number;
  /** count distinct traces (exhaustive always does; others on request) */
  countTraces: boolean;
}

/** Engine options with everything not given set as the tests and benchmarks use them. */
export function engineOptionsWith(over: Partial<EngineOptions> = {}): EngineOptions {
  return {
    strategy: 'dpor',
    variant: null,
    timeouts: 1,
    depth: 20000,
    stopOnViolation: false,
    maxExecutions: Infinity,
    timeLimitMs: Infinity,
    preemptions: 2,
    runs: 100,
    seed: 1,
    pctDepth: 3,
    countTraces: true,
    ...over,
  };
}

export interface Progress {
  executions: number;
  elapsedMs: number;
  rate: number;
  /** estimated fraction of the exploration done (0..1), or null when unknown */
  fraction: number | null;
  violations: number;
}

export interface FoundViolation {
  violation: Violation;
  /** thread indices of the transitions up to the violation */
  schedule: number[];
  threadNames: string[];
  /** executions explored when it was found, and the time */
  execution: number;
  atMs: number;
}

export interface LockCycle {
  /** lock labels along the cycle */
  locks: string[];
  /** for each edge: the thread that took the second lock while holding the first */
  edges: Array<{ from: string; to: string; thread: string }>;
}

export interface EngineStats {
  strategy: Strategy;
  executions: number;
  /** distinct Mazurkiewicz traces among the executions (when counted) */
  distinctTraces: number | null;
  transitions: number;
  /** dpor: races found, reversals inserted into wakeup trees, reversals already covered (pruned) */
  races: number;
  inserted: number;
  pruned: number;
  /** dpor: explorations that ended with every enabled thread asleep (0 for optimal DPOR) */
  sleepBlocked: number;
  /** dpor: wakeup sequences that could not be replayed (a blocked thread) */
  infeasible: number;
  /** dpor: transitions whose footprint differed from the one recorded for the same event */
  divergent: number;
  /** executions cut by the depth bound */
  truncated: number;
  elapsedMs: number;
  complete: boolean;
  violations: FoundViolation[];
  lockEdges: number;
  lockCycles: LockCycle[];
  notes: string[];
}

export interface EngineHooks {
  progress?(p: Progress): void;
  /** every complete execution (after its end invariants), before the next one starts */
  execution?(ex: Execution): void;
  /** every this many ms (default 1000) */
  progressEveryMs?: number;
}

interface Fp {
  keys: number[];
  modes: Mode[];
}

function conflictFp(a: Fp, b: Fp): boolean {
  for (let i = 0; i < a.keys.length; i++) {
    const k = a.keys[i]!;
    for (let j = 0; j < b.keys.length; j++) if (b.keys[j] === k && conflicts(a.modes[i]!, b.modes[j]!)) return true;
  }
  return false;
}

interface WuNode {
  thread: number;
  fp: Fp | null;
  children: WuNode[];
}

interface Node {
  sleep: Map<number, Fp>;
  wut: WuNode[];
  explored: number;
}

interface VEv extends Fp {
  thread: number;
}

/** A small deterministic PRNG (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/** The Mazurkiewicz trace of an execution, as a canonical string (for counting distinct ones). */
export function traceKey(events: readonly XEvent[]): string {
  const perKey = new Map<number, string[]>();
  for (const e of events) {
    for (let i = 0; i < e.keys.length; i++) {
      const k = e.keys[i]!;
      let l = perKey.get(k);
      if (!l) perKey.set(k, (l = []));
      l.push(`${e.modes[i]}${e.thread}.${e.idx}`);
    }
  }
  const parts: string[] = [];
  for (const k of [...perKey.keys()].sort((a, b) => a - b)) {
    const l = perKey.get(k)!;
    const out: string[] = [];
    let run: string[] = [];
    let runMode = '';
    const flush = () => {
      if (run.length) out.push(run.sort().join('|'));
      run = [];
    };
    for (const tok of l) {
      const m = tok[0]!;
      if (m !== String(W) && m === runMode) run.push(tok);
      else {
        flush();
        run.push(tok);
        runMode = m === String(W) ? '' : m;
      }
    }
    flush();
    parts.push(`${k}:${out.join(',')}`);
  }
  // thread lengths (a thread cut short by blocking differs from one that finished)
  const lens = new Map<number, number>();
  for (const e of events) lens.set(e.thread, e.idx + 1);
  return [...lens.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => `${t}=${n}`).join(' ') + '#' + parts.join(';');
}

export class Engine {
  readonly stats: EngineStats;
  private readonly t0 = performance.now();
  private lastProgress = performance.now();
  private readonly traces = new Set<string>();
  private readonly lockEdges = new Map<string, { fromLabel: string; toLabel: string; from: string; to: string; thread: string }>();
  private readonly noteSet = new Set<string>();
  private stopped = false;
  /** estimated fraction (dpor/bounded/exhaustive) */
  private fraction: number | null = null;

  constructor(
    readonly prep: PreparedScenario,
    readonly opts: EngineOptions,
    readonly hooks: EngineHooks = {},
  ) {
    this.stats = {
      strategy: opts.strategy,
      executions: 0,
      distinctTraces: null,
      transitions: 0,
      races: 0,
      inserted: 0,
      pruned: 0,
      sleepBlocked: 0,
      infeasible: 0,
      divergent: 0,
      truncated: 0,
      elapsedMs: 0,
      complete: false,
      violations: [],
      lockEdges: 0,
      lockCycles: [],
      notes: [],
    };
  }

  private newExecution(): Execution {
    return new Execution(this.prep, { variant: this.opts.variant, timeouts: this.opts.timeouts, depth: this.opts.depth, record: false });
  }

  run(): EngineStats {
    switch (this.opts.strategy) {
      case 'dpor':
        this.dpor();
        break;
      case 'exhaustive':
        this.dfs(Infinity);
        break;
      case 'bounded':
        this.dfs(this.opts.preemptions);
        break;
      case 'random':
      case 'pct':
        this.sample();
        break;
    }
    this.stats.elapsedMs = performance.now() - this.t0;
    if (this.opts.countTraces || this.opts.strategy === 'exhaustive') this.stats.distinctTraces = this.traces.size;
    this.stats.lockEdges = this.lockEdges.size;
    this.stats.lockCycles = this.findCycles();
    this.stats.notes = [...this.noteSet];
    return this.stats;
  }

  private limitReached(): boolean {
    if (this.stopped) return true;
    if (this.stats.executions >= this.opts.maxExecutions) return true;
    if (performance.now() - this.t0 >= this.opts.timeLimitMs) return true;
    return false;
  }

  /** Bookkeeping at the end of an execution (cut: stopped at a violation, not at its end). */
  private finished(ex: Execution, cut = false): void {
    if (!cut) ex.finish();
    this.stats.executions++;
    this.stats.transitions += ex.events.length;
    if (ex.truncated) this.stats.truncated++;
    if (this.opts.countTraces || this.opts.strategy === 'exhaustive') this.traces.add(hashKey(traceKey(ex.events)));
    for (const [k, e] of ex.lockEdges) if (!this.lockEdges.has(k)) this.lockEdges.set(k, e);
    for (const n of ex.monitor.notes) this.noteSet.add(n);
    this.collect(ex);
    this.hooks.execution?.(ex);
    const now = performance.now();
    if (this.hooks.progress && now - this.lastProgress >= (this.hooks.progressEveryMs ?? 1000)) {
      this.lastProgress = now;
      const el = now - this.t0;
      this.hooks.progress({
        executions: this.stats.executions,
        elapsedMs: el,
        rate: (this.stats.executions / el) * 1000,
        fraction: this.fraction,
        violations: this.stats.violations.length,
      });
    }
  }

  private collect(ex: Execution): void {
    for (const v of ex.violations) {
      const schedule = ex.schedule.slice(0, v.step);
      const norm = normalizeMessage(v.message);
      const same = this.stats.violations.find((f) => f.violation.kind === v.kind && normalizeMessage(f.violation.message) === norm);
      if (same) {
        if (schedule.length < same.schedule.length) {
          same.schedule = schedule;
          same.violation = v;
        }
        continue;
      }
      this.stats.violations.push({
        violation: v,
        schedule,
        threadNames: ex.threads.map((t) => t.name),
        execution: this.stats.executions,
        atMs: performance.now() - this.t0,
      });
    }
    if (ex.violations.length && this.opts.stopOnViolation) this.stopped = true;
  }

  // ---- optimal DPOR ----------------------------------------------------------------------------------

  private dpor(): void {
    const nodes: Node[] = [];
    const root: WuNode[] = [];
    for (;;) {
      if (this.limitReached()) return;
      const ex = this.newExecution();
      let pos = 0;
      let ending: 'max' | 'sleep' | 'infeasible' = 'max';
      let cut = false;
      for (;;) {
        if (ex.terminal()) break;
        let node = nodes[pos];
        if (!node) {
          const parent = nodes[pos - 1];
          const sleep = new Map<number, Fp>();
          if (parent) {
            const pe = ex.events[pos - 1]!;
            for (const [q, fp] of parent.sleep) if (!conflictFp(fp, pe)) sleep.set(q, fp);
          }
          const wut = parent ? parent.wut[0]!.children : root;
          node = { sleep, wut, explored: 0 };
          nodes.push(node);
          if (wut.length === 0) {
            const en = ex.enabled().filter((t) => !sleep.has(t));
            if (en.length === 0) {
              ending = 'sleep';
              break;
            }
            // prefer the thread that ran last: fewer context switches, readable schedules
            const last = pos > 0 ? ex.events[pos - 1]!.thread : -1;
            const p = en.includes(last) ? last : en[0]!;
            wut.push({ thread: p, fp: null, children: [] });
          }
        }
        const b = node.wut[0]!;
        const th = ex.threads[b.thread];
        if (!th || ex.status(th) !== 'enabled') {
          ending = 'infeasible';
          break;
        }
        const ev = ex.step(b.thread);
        if (b.fp === null) b.fp = { keys: ev.keys, modes: ev.modes };
        else if (!sameFp(b.fp, ev)) {
          this.stats.divergent++;
          if (process.env.VFIOSIM_EXPLORE_DEBUG)
            console.error(`divergent: ${ex.threads[b.thread]!.name} at ${pos}: expected ${fpText(b.fp)} got ${fpText(ev)} after ${ex.schedule.slice(0, pos).map((t) => ex.threads[t]!.name).join(',')}`);
          b.fp = { keys: ev.keys, modes: ev.modes };
        }
        pos++;
        if (ex.violations.length && this.opts.stopOnViolation) {
          cut = true;
          break;
        }
      }
      if (ending === 'max') this.finished(ex, cut);
      else if (ending === 'sleep') this.stats.sleepBlocked++;
      else this.stats.infeasible++;
      if (this.stopped) return;
      this.analyze(ex, nodes);
      // backtrack
      let j = nodes.length - 1;
      if (ending === 'sleep') {
        nodes.pop();
        j--;
      } else if (ending === 'infeasible') {
        const n = nodes[j]!;
        n.wut.shift();
        if (n.wut.length > 0) {
          nodes.length = j + 1;
          this.updateFraction(nodes);
          continue;
        }
        nodes.pop();
        j--;
      }
      while (j >= 0) {
        const n = nodes[j]!;
        const b = n.wut.shift()!;
        if (b.fp) n.sleep.set(b.thread, b.fp);
        n.explored++;
        if (n.wut.length > 0) break;
        nodes.pop();
        j--;
      }
      if (j < 0) {
        this.stats.complete = !this.stopped;
        return;
      }
      nodes.length = j + 1;
      this.updateFraction(nodes);
    }
  }

  private updateFraction(nodes: Node[]): void {
    let f = 0;
    let w = 1;
    for (const n of nodes) {
      const total = n.explored + n.wut.length;
      if (total <= 0) break;
      f += (w * n.explored) / total;
      w /= total;
    }
    this.fraction = Math.min(1, f);
  }

  /** Race detection on an execution: reversible races become wakeup sequences. */
  private analyze(ex: Execution, nodes: Node[]): void {
    const evs = ex.events;
    const n = evs.length;
    // previous transition of the same thread, per event
    const prevOf: number[] = new Array(evs.length).fill(-1);
    const last = new Map<number, number>();
    for (let i = 0; i < evs.length; i++) {
      const t = evs[i]!.thread;
      prevOf[i] = last.get(t) ?? -1;
      last.set(t, i);
    }
    const done = new Set<number>();
    for (let i = 1; i < n; i++) {
      const e = evs[i]!;
      for (const d of e.preds) {
        if (d >= i || evs[d]!.thread === e.thread) continue;
        if (this.hbVia(evs, prevOf, i, d)) continue;
        let r = d;
        if (e.block && !this.reversible(evs, i, d)) {
          r = this.walkBack(evs, prevOf, i, d);
          if (r < 0) continue;
        }
        const key = r * 100003 + i;
        if (done.has(key)) continue;
        done.add(key);
        this.stats.races++;
        this.insertRace(evs, nodes, r, i);
      }
    }
  }

  /** Whether d happens before i through i's other predecessors (not the direct edge d -> i). */
  private hbVia(evs: XEvent[], prevOf: number[], i: number, d: number): boolean {
    const td = evs[d]!.thread;
    const idx = evs[d]!.idx;
    const p = prevOf[i]!;
    if (p >= 0 && (evs[p]!.vc[td] ?? 0) > idx) return true;
    for (const q of evs[i]!.preds) {
      if (q === d) continue;
      if ((evs[q]!.vc[td] ?? 0) > idx) return true;
    }
    return false;
  }

  /** Whether events a and b conflict on a key other than `key`. */
  private linkedOtherThan(a: XEvent, b: XEvent, key: number): boolean {
    for (let i = 0; i < a.keys.length; i++) {
      const k = a.keys[i]!;
      if (k === key) continue;
      const j = b.keys.indexOf(k);
      if (j >= 0 && conflicts(a.modes[i]!, b.modes[j]!)) return true;
    }
    return false;
  }

  /** Could blocking event i have run right before event r (after r's non-dependent followers)? */
  private reversible(evs: XEvent[], i: number, r: number): boolean {
    const e = evs[i]!;
    const key = e.objKey;
    let s: LockState | null = null;
    for (let j = r - 1; j >= 0; j--) {
      if (evs[j]!.objKey === key && evs[j]!.lockPost) {
        s = evs[j]!.lockPost;
        break;
      }
    }
    if (!s) {
      for (let j = r; j <= i; j++) {
        if (evs[j]!.objKey === key && evs[j]!.lockPre) {
          s = evs[j]!.lockPre;
          break;
        }
      }
    }
    if (!s) return true;
    // the lock-like object's accesses among r's non-dependent followers happen first
    const tr = evs[r]!.thread;
    const ir = evs[r]!.idx;
    for (let j = r + 1; j < i; j++) {
      const x = evs[j]!;
      if (x.objKey !== key || x.opKind === 'start' || (x.vc[tr] ?? 0) > ir) continue;
      s = applyEffect(x.opKind, x.modes[x.keys.indexOf(key)] ?? W, s);
    }
    return enabledIn(e.block!, s, e.budget);
  }

  /** The latest earlier access to i's lock-like object that i could have preceded. */
  private walkBack(evs: XEvent[], prevOf: number[], i: number, d: number): number {
    const e = evs[i]!;
    const key = e.objKey;
    for (let j = d - 1; j >= 0; j--) {
      const x = evs[j]!;
      if (x.thread === e.thread) {
        // the thread's own earlier access: i is after it in program order
        if (x.objKey === key) return -1;
        continue;
      }
      if (x.objKey !== key) continue;
      const mi = e.keys.indexOf(key);
      const mj = x.keys.indexOf(key);
      if (mi < 0 || mj < 0 || !conflicts(e.modes[mi]!, x.modes[mj]!)) continue;
      if (!this.reversible(evs, i, j)) continue;
      if (this.hbNotThrough(evs, prevOf, i, j, key)) return -1;
      return j;
    }
    return -1;
  }

  /** Whether j happens before i other than through accesses to `key`. */
  private hbNotThrough(evs: XEvent[], prevOf: number[], i: number, j: number, key: number): boolean {
    const tj = evs[j]!.thread;
    const idx = evs[j]!.idx;
    const p = prevOf[i]!;
    if (p >= 0 && (evs[p]!.vc[tj] ?? 0) > idx) return true;
    const e = evs[i]!;
    for (const q of e.preds) {
      const x = evs[q]!;
      const viaKey = x.keys.includes(key) && !this.linkedOtherThan(x, e, key);
      if (viaKey) continue;
      if (q === j || (x.vc[tj] ?? 0) > idx) return true;
    }
    return false;
  }

  private insertRace(evs: XEvent[], nodes: Node[], r: number, i: number): void {
    const node = nodes[r];
    if (!node) return;
    const tr = evs[r]!.thread;
    const ir = evs[r]!.idx;
    const v: VEv[] = [];
    for (let j = r + 1; j < i; j++) {
      const x = evs[j]!;
      if ((x.vc[tr] ?? 0) > ir) continue;
      v.push({ thread: x.thread, keys: x.keys, modes: x.modes });
    }
    const e = evs[i]!;
    v.push({ thread: e.thread, keys: e.keys, modes: e.modes });
    for (const [q, fp] of node.sleep) {
      if (weakInitial(q, fp, v)) {
        this.stats.pruned++;
        return;
      }
    }
    let level = node.wut;
    let seq = v;
    let top = true;
    for (;;) {
      let m = -1;
      for (let k = 0; k < level.length; k++) {
        const b = level[k]!;
        if (weakInitial(b.thread, b.fp, seq)) {
          m = k;
          break;
        }
      }
      if (m < 0) {
        level.push(chain(seq));
        this.stats.inserted++;
        return;
      }
      const b = level[m]!;
      if ((top && m === 0) || b.children.length === 0) {
        this.stats.pruned++;
        return;
      }
      const k = seq.findIndex((x) => x.thread === b.thread);
      if (k >= 0) seq = seq.slice(0, k).concat(seq.slice(k + 1));
      if (seq.length === 0) {
        this.stats.pruned++;
        return;
      }
      level = b.children;
      top = false;
    }
  }

  // ---- exhaustive and preemption-bounded DFS ---------------------------------------------------------

  private dfs(bound: number): void {
    interface Frame {
      choices: number[];
      i: number;
      /** preemptions used before this state, the thread that ran last, whether it could go on */
      pre: number;
      last: number;
      lastEnabled: boolean;
    }
    const stack: Frame[] = [];
    for (;;) {
      if (this.limitReached()) return;
      const ex = this.newExecution();
      let depth = 0;
      let pre = 0;
      let cut = false;
      for (;;) {
        if (ex.terminal()) break;
        let f = stack[depth];
        if (!f) {
          const en = ex.enabled();
          const last = depth > 0 ? ex.events[depth - 1]!.thread : -1;
          const lastEnabled = en.includes(last);
          const choices = lastEnabled ? (pre < bound ? [last, ...en.filter((t) => t !== last)] : [last]) : en;
          f = { choices, i: 0, pre, last, lastEnabled };
          stack.push(f);
        }
        const t = f.choices[f.i]!;
        pre = f.pre + (f.lastEnabled && t !== f.last ? 1 : 0);
        ex.step(t);
        depth++;
        if (ex.violations.length && this.opts.stopOnViolation) {
          cut = true;
          break;
        }
      }
      this.finished(ex, cut);
      if (this.stopped) return;
      stack.length = Math.min(stack.length, depth);
      while (stack.length && stack[stack.length - 1]!.i >= stack[stack.length - 1]!.choices.length - 1) stack.pop();
      if (!stack.length) {
        this.stats.complete = !this.stopped;
        return;
      }
      stack[stack.length - 1]!.i++;
      let fr = 0;
      let w = 1;
      for (const f of stack) {
        fr += (w * f.i) / f.choices.length;
        w /= f.choices.length;
      }
      this.fraction = fr;
    }
  }

  // ---- random and PCT sampling ------------------------------------------------------------------------

  private sample(): void {
    const rand = rng(this.opts.seed);
    let lengthEstimate = 0;
    for (let run = 0; run < this.opts.runs; run++) {
      if (this.limitReached()) return;
      const ex = this.newExecution();
      const n = ex.threads.length;
      let prio: number[] = [];
      const changes = new Map<number, number>();
      if (this.opts.strategy === 'pct') {
        // random distinct priorities d, d+1, ...; d-1 change points over the expected length
        const perm = [...Array(n).keys()];
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [perm[i], perm[j]] = [perm[j]!, perm[i]!];
        }
        prio = perm.map((x) => x + this.opts.pctDepth);
        const L = Math.max(1, lengthEstimate || 50);
        for (let c = 1; c < this.opts.pctDepth; c++) changes.set(1 + Math.floor(rand() * L), this.opts.pctDepth - c);
      }
      let steps = 0;
      let cut = false;
      for (;;) {
        if (ex.terminal()) break;
        const en = ex.enabled();
        let t: number;
        if (this.opts.strategy === 'random') t = en[Math.floor(rand() * en.length)]!;
        else {
          while (prio.length < ex.threads.length) prio.push(this.opts.pctDepth + prio.length);
          t = en.reduce((a, b) => (prio[b]! > prio[a]! ? b : a));
        }
        ex.step(t);
        steps++;
        const c = changes.get(steps);
        if (c !== undefined) prio[t] = c;
        if (ex.violations.length && this.opts.stopOnViolation) {
          cut = true;
          break;
        }
      }
      lengthEstimate = Math.max(lengthEstimate, steps);
      this.fraction = (run + 1) / this.opts.runs;
      this.finished(ex, cut);
      if (this.stopped) return;
    }
  }

  // ---- lock order ---------------------------------------------------------------------------------

  private findCycles(): LockCycle[] {
    const adj = new Map<string, string[]>();
    const label = new Map<string, string>();
    for (const e of this.lockEdges.values()) {
      let l = adj.get(e.from);
      if (!l) adj.set(e.from, (l = []));
      l.push(e.to);
      label.set(e.from, e.fromLabel);
      label.set(e.to, e.toLabel);
    }
    // Tarjan's strongly connected components; every component with an edge inside is a cycle
    let index = 0;
    const idx = new Map<string, number>();
    const low = new Map<string, number>();
    const on = new Set<string>();
    const st: string[] = [];
    const comps: string[][] = [];
    const visit = (v: string): void => {
      idx.set(v, index);
      low.set(v, index);
      index++;
      st.push(v);
      on.add(v);
      for (const w of adj.get(v) ?? []) {
        if (!idx.has(w)) {
          visit(w);
          low.set(v, Math.min(low.get(v)!, low.get(w)!));
        } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
      if (low.get(v) === idx.get(v)) {
        const c: string[] = [];
        let w: string;
        do {
          w = st.pop()!;
          on.delete(w);
          c.push(w);
        } while (w !== v);
        if (c.length > 1) comps.push(c);
      }
    };
    for (const v of adj.keys()) if (!idx.has(v)) visit(v);
    return comps.map((c) => {
      const set = new Set(c);
      const edges = [...this.lockEdges.values()].filter((e) => set.has(e.from) && set.has(e.to));
      return {
        locks: c.map((x) => label.get(x) ?? x),
        edges: edges.map((e) => ({ from: e.fromLabel, to: e.toLabel, thread: e.thread })),
      };
    });
  }
}

function fpText(f: Fp): string {
  return f.keys.map((k, i) => `${MODE_NAMES[f.modes[i]!]} ${keyName(k)}`).join(', ');
}

/** A 64-bit hash of a trace key (two FNV-1a variants), to count traces without keeping them. */
export function hashKey(k: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ k.length;
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return `${(a >>> 0).toString(36)}.${(b >>> 0).toString(36)}`;
}

function sameFp(a: Fp, b: Fp): boolean {
  if (a.keys.length !== b.keys.length) return false;
  for (let i = 0; i < a.keys.length; i++) if (a.keys[i] !== b.keys[i] || a.modes[i] !== b.modes[i]) return false;
  return true;
}

/**
 * Whether thread q is a weak initial of v after the node: its first event in v depends on no
 * earlier event of v; or it is not in v and its next event (footprint fp) is independent of v.
 */
function weakInitial(q: number, fp: Fp | null, v: VEv[]): boolean {
  const i = v.findIndex((x) => x.thread === q);
  if (i >= 0) {
    for (let j = 0; j < i; j++) if (conflictFp(v[j]!, v[i]!)) return false;
    return true;
  }
  if (!fp) return false;
  for (const x of v) if (conflictFp(x, fp)) return false;
  return true;
}

function chain(seq: VEv[]): WuNode {
  const head: WuNode = { thread: seq[0]!.thread, fp: { keys: seq[0]!.keys, modes: seq[0]!.modes }, children: [] };
  let cur = head;
  for (let i = 1; i < seq.length; i++) {
    const n: WuNode = { thread: seq[i]!.thread, fp: { keys: seq[i]!.keys, modes: seq[i]!.modes }, children: [] };
    cur.children.push(n);
    cur = n;
  }
  return head;
}
