// Counterexamples: the failing schedule, shortened to the causal past of the violation, replayed
// with recording on, and printed as a readable trace (thread, operation, footprint, what changed),
// as JSON, or as a C program reproducing its syscall side.
//
// Schedule text: the threads of the transitions in order, comma separated, with runs written
// NAME*N ("user*3,closer,user*2"). `vfiosim explore FILE --replay SCHEDULE` replays one.

import { describeEvent } from '../cli/narrate.js';
import type { TraceEvent } from '../kernel/trace.js';
import { Execution, ExecOptions, PreparedScenario } from './execution.js';
import { MODE_NAMES, conflicts, keyName } from './footprint.js';
import { Violation, normalizeMessage } from './invariants.js';
import type { FoundViolation } from './engine.js';
import { CallSpan, exportC } from './cexport.js';
import { Prediction, predictionText } from './predict.js';

export class ReplayError extends Error {}

/** "user*3,closer" from thread indices. */
export function scheduleText(schedule: readonly number[], names: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < schedule.length; ) {
    let j = i;
    while (j < schedule.length && schedule[j] === schedule[i]) j++;
    const n = names[schedule[i]!] ?? `#${schedule[i]}`;
    out.push(j - i > 1 ? `${n}*${j - i}` : n);
    i = j;
  }
  return out.join(',');
}

/** Thread indices from schedule text (names or indices, NAME*N runs). */
export function parseSchedule(text: string, names: readonly string[]): number[] {
  const out: number[] = [];
  const t = text.trim();
  if (t === '' || t === '-') return out;
  for (const part of t.split(/[,\s]+/).filter(Boolean)) {
    const m = /^([^*]+?)(?:\*(\d+))?$/.exec(part);
    if (!m) throw new ReplayError(`bad schedule element "${part}" (NAME or NAME*COUNT)`);
    let i = names.indexOf(m[1]!);
    if (i < 0 && /^\d+$/.test(m[1]!)) i = Number(m[1]);
    if (i < 0 || i >= names.length) throw new ReplayError(`no thread "${m[1]}" (threads: ${names.join(', ')})`);
    const n = m[2] ? Number(m[2]) : 1;
    for (let k = 0; k < n; k++) out.push(i);
  }
  return out;
}

/** Run one execution along a schedule (thread indices). */
export function replay(prep: PreparedScenario, opts: ExecOptions, schedule: readonly number[]): Execution {
  const ex = new Execution(prep, opts);
  for (let i = 0; i < schedule.length; i++) {
    const t = schedule[i]!;
    const th = ex.threads[t];
    if (!th) throw new ReplayError(`step ${i + 1}: no thread #${t}`);
    const st = ex.status(th);
    if (st !== 'enabled')
      throw new ReplayError(`step ${i + 1}: thread ${th.name} cannot run (${st === 'done' ? 'it has finished' : `blocked in ${ex.nextOf(th)}`})`);
    ex.step(t);
  }
  return ex;
}

/**
 * The transitions the one at `last` depends on (program order and conflicting footprints),
 * optionally ignoring some keys (the monitor's observation keys).
 */
function causalPast(ex: Execution, last: number, ignore: (key: number) => boolean): number[] {
  const evs = ex.events;
  const keep = new Set<number>([last]);
  const threads = new Set<number>([evs[last]!.thread]);
  for (let j = last - 1; j >= 0; j--) {
    const e = evs[j]!;
    let need = threads.has(e.thread);
    if (!need)
      for (const k of keep) {
        const x = evs[k]!;
        for (let a = 0; a < e.keys.length && !need; a++) {
          const key = e.keys[a]!;
          if (ignore(key)) continue;
          const b = x.keys.indexOf(key);
          if (b >= 0 && conflicts(e.modes[a]!, x.modes[b]!)) need = true;
        }
        if (need) break;
      }
    if (need) {
      keep.add(j);
      threads.add(e.thread);
    }
  }
  return [...keep].sort((a, b) => a - b);
}

/**
 * Shorten a failing schedule: to the causal past of the violating transition (the transitions it
 * depends on), first ignoring the invariants' own observations, then with them; then without the
 * pieces of thread runs (whole calls, or a run's tail from a call) it does not need. A shortened
 * schedule is kept only if its replay shows the same violation at its last transition.
 */
export function minimize(prep: PreparedScenario, opts: ExecOptions, found: FoundViolation): number[] {
  const s = found.schedule;
  if (s.length < 2) return [...s];
  let ex: Execution;
  try {
    ex = replay(prep, { ...opts, record: false }, s);
  } catch {
    return [...s];
  }
  // an end-of-execution violation depends on the whole execution
  const v = found.violation;
  if (v.step >= ex.events.length && ['deadlock', 'unregister-completes', 'close-once'].includes(v.kind)) return [...s];
  const same = (sched: number[]): boolean => {
    try {
      const ex2 = replay(prep, { ...opts, record: false }, sched);
      const norm = normalizeMessage(v.message);
      // the violation is seen at the last transition of the shortened schedule
      return ex2.violations.some((x) => x.kind === v.kind && normalizeMessage(x.message) === norm && x.step === sched.length);
    } catch {
      return false;
    }
  };
  let best = [...s];
  const last = s.length - 1;
  for (const ignore of [(k: number) => keyName(k).startsWith('obs:'), () => false]) {
    const keep = causalPast(ex, last, ignore).map((k) => s[k]!);
    if (keep.length === s.length) break;
    if (same(keep)) {
      best = keep;
      break;
    }
  }
  // then drop pieces of one thread's runs (the calls a run starts, or its tail from one of them:
  // a call that only moved an fd number, say) while the same violation is still seen at the end
  let budget = 200;
  for (let changed = true; changed && budget > 0; ) {
    changed = false;
    let cur: Execution;
    try {
      cur = replay(prep, { ...opts, record: false }, best);
    } catch {
      break;
    }
    // cut points: where the thread changes or a thread step starts
    const cuts: number[] = [];
    for (let i = 0; i < best.length; i++) if (i === 0 || best[i] !== best[i - 1] || cur.events[i]!.opKind === 'start') cuts.push(i);
    cuts.push(best.length);
    const runEnd = (i: number) => {
      let j = i;
      while (j < best.length && best[j] === best[i]) j++;
      return j;
    };
    const cands: Array<[number, number]> = [];
    for (let c = 0; c < cuts.length - 1; c++) {
      const i = cuts[c]!;
      cands.push([i, runEnd(i)], [i, cuts[c + 1]!]);
    }
    for (const [i, j] of cands) {
      if (j <= i || budget-- <= 0) continue;
      const cand = best.slice(0, i).concat(best.slice(j));
      if (cand.length && same(cand)) {
        best = cand;
        changed = true;
        break;
      }
    }
  }
  return best;
}

export interface TraceStep {
  /** 1-based transition number */
  n: number;
  thread: string;
  /** the thread step (syscall or kernel event) the transition belongs to */
  call: string;
  /** 'begins', or the visible operation (READ_ONCE(...), mutex_lock(...)) */
  op: string;
  footprint: Array<{ object: string; access: string }>;
  /** what changed: kernel events, WARNs */
  effects: string[];
  /** the step's result when this transition ended it */
  result?: string;
}

export interface Counterexample {
  scenario: string;
  variant: string | null;
  violation: Violation;
  /** all violations seen along the schedule */
  violations: Violation[];
  threads: string[];
  schedule: string;
  /** transitions of the schedule before shortening */
  foundLength: number;
  steps: TraceStep[];
  /** the replay command */
  replay: string;
  /** the thread steps the schedule started, in start order (for the C export) */
  calls: CallSpan[];
}

function resultText(o: { ret?: number; errno?: string; skipped?: string; failure?: string }): string {
  if (o.skipped !== undefined) return `skipped: ${o.skipped}`;
  if (o.ret === undefined) return 'done';
  const r = o.ret < 0 ? `= -1 ${o.errno}` : `= ${o.ret}`;
  return o.failure ? `${r}  (expectation failed: ${o.failure})` : r;
}

/** The readable steps of a recorded execution and the thread calls it started. */
export function traceOf(ex: Execution): { steps: TraceStep[]; calls: CallSpan[] } {
  const steps: TraceStep[] = ex.events.map((e, i) => {
    const info = e.info!;
    const effects: string[] = [];
    for (const te of info.events) {
      if (te.kind === 'warn') effects.push(`WARN: ${te.msg}`);
      else if (te.kind === 'kernel') effects.push(describe(te));
    }
    return {
      n: i + 1,
      thread: info.thread,
      call: info.call,
      op: info.op,
      // the invariants' own observation keys are left out (they order what the monitor watches)
      footprint: e.keys
        .map((k, j) => ({ k, object: objectName(ex, k), access: MODE_NAMES[e.modes[j]!] as string }))
        .filter((f) => !keyName(f.k).startsWith('obs:'))
        .map(({ object, access }) => ({ object, access })),
      effects,
      ...(info.outcome ? { result: resultText(info.outcome) } : {}),
    };
  });
  const calls: CallSpan[] = [];
  const open = new Map<number, CallSpan>();
  const started = new Map<number, number>();
  ex.events.forEach((e, i) => {
    const th = ex.threads[e.thread]!;
    if (th.orphan) return;
    if (e.info!.what === 'start') {
      const k = started.get(e.thread) ?? 0;
      started.set(e.thread, k + 1);
      const c: CallSpan = { thread: th.name, step: k, start: i, end: null };
      calls.push(c);
      open.set(e.thread, c);
    }
    if (e.info!.outcome) {
      const c = open.get(e.thread);
      if (c) c.end = i;
      open.delete(e.thread);
    }
  });
  return { steps, calls };
}

function describe(te: TraceEvent): string {
  const a = (te.args ?? {}) as Record<string, unknown>;
  switch (te.name) {
    case 'device_access':
      return `device access (${a.op}) to ${a.device} through file#${a.file}`;
    case 'access_revoked':
      return `access revoked on file#${a.file} of ${a.device} (bound -> unbound)`;
    case 'cdev_open':
      return `cdev file#${a.file} of ${a.device} opened${a.blocked ? ' (blocked until bound)' : ''}`;
  }
  return describeEvent(te);
}

function objectName(ex: Execution, k: number): string {
  const l = ex.keyLabels.get(k);
  if (l !== undefined) return l;
  const n = keyName(k);
  if (n.startsWith('vfs:')) return `vfs ${n.slice(4)}`;
  if (n.startsWith('fdt:')) {
    const [pid, fd] = n.slice(4).split(':');
    return fd === undefined ? `fd table of pid ${pid}` : `fd ${fd} of pid ${pid}`;
  }
  if (n.startsWith('chr:')) return `chrdev ${n.slice(4)}`;
  return n;
}

/** Replay a schedule with recording and build the readable counterexample. */
export function buildCounterexample(
  prep: PreparedScenario,
  opts: ExecOptions,
  found: FoundViolation,
  cmd: { file: string; variant: string | null; extra?: string },
): Counterexample {
  const schedule = minimize(prep, opts, found);
  const ex = replay(prep, { ...opts, record: true }, schedule);
  if (schedule.length === ex.events.length && ex.terminal()) ex.finish();
  const names = ex.threads.map((t) => t.name);
  const { steps, calls } = traceOf(ex);
  const violation = ex.violations.find((v) => v.kind === found.violation.kind) ?? found.violation;
  const text = scheduleText(schedule, names);
  return renumber({
    scenario: prep.scenario.source,
    variant: cmd.variant,
    violation,
    violations: ex.violations,
    threads: names,
    schedule: text,
    foundLength: found.schedule.length,
    steps,
    replay: `vfiosim explore ${cmd.file}${cmd.variant ? ` --variant ${cmd.variant}` : ''}${cmd.extra ?? ''} --replay '${text}'`,
    calls,
  });
}

/**
 * Files and containers renumbered by first appearance (file#1, file#2...): the model's global
 * counters differ from one execution to the next, the counterexample should not.
 */
export function renumber<T>(x: T): T {
  const ids = new Map<string, number>();
  const counts = new Map<string, number>();
  const fix = (s: string): string =>
    s.replace(/\b(file|vfio_container)#(\d+)/g, (_m, what: string, n: string) => {
      const key = `${what}#${n}`;
      let id = ids.get(key);
      if (id === undefined) {
        id = (counts.get(what) ?? 0) + 1;
        counts.set(what, id);
        ids.set(key, id);
      }
      return `${what}#${id}`;
    });
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return fix(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const [k, y] of Object.entries(v)) o[k] = walk(y);
      return o;
    }
    return v;
  };
  // the steps first (so numbering follows the trace), then the rest
  const o = x as unknown as Record<string, unknown>;
  const steps = 'steps' in o ? walk(o.steps) : undefined;
  const out = walk(o) as Record<string, unknown>;
  if (steps !== undefined) out.steps = steps;
  return out as T;
}

/**
 * The counterexample as a C program (see cexport.ts for what it can and cannot force); with a
 * prediction (predict.ts), its header lists what Linux 7.2 prints.
 */
export function counterexampleC(prep: PreparedScenario, cx: Counterexample, expected?: Prediction): string {
  return exportC(prep, cx.calls, {
    title: cx.scenario,
    violation: `(${cx.violation.kind}) ${cx.violation.message}`,
    schedule: cx.schedule,
    variant: cx.variant,
    ...(expected ? { expected: expected.outcomes.map((o) => ({ text: predictionText(o), issueOrder: o.issueOrder })) } : {}),
  });
}

/** The readable trace. */
export function formatCounterexample(cx: Counterexample, opts: { color?: boolean; footprints?: boolean } = {}): string {
  const c = opts.color ? (code: string, s: string) => `\x1b[${code}m${s}\x1b[0m` : (_c: string, s: string) => s;
  const lines: string[] = [];
  lines.push(c('1;31', `violation (${cx.violation.kind}): ${cx.violation.message}`));
  lines.push(
    `  after ${cx.violation.step} transition(s)${cx.violation.thread ? `, in thread ${cx.violation.thread}` : ''}; schedule of ${cx.steps.length} transition(s)` +
      (cx.foundLength !== cx.steps.length ? ` (shortened from ${cx.foundLength}: the violation's causal past, without the calls it does not need)` : ''),
  );
  lines.push(`  schedule: ${cx.schedule || '(none: the setup steps already violate it)'}`);
  lines.push(`  replay:   ${cx.replay}`);
  lines.push('');
  const w = Math.max(6, ...cx.steps.map((s) => s.thread.length));
  const lastCall = new Map<string, string>();
  for (const s of cx.steps) {
    const head = `${String(s.n).padStart(4)}  ${s.thread.padEnd(w)}  `;
    const pad = ' '.repeat(head.length);
    if (s.op === 'begins') {
      lines.push(head + c('1', s.call));
      lastCall.set(s.thread, s.call);
    } else {
      const ctx = lastCall.get(s.thread) === s.call ? '' : c('2', `  [in ${s.call}]`);
      lines.push(head + s.op + ctx);
    }
    if (opts.footprints !== false && s.footprint.length)
      lines.push(pad + c('2', 'footprint: ' + s.footprint.map((f) => `${f.access} ${f.object}`).join(', ')));
    for (const e of s.effects) lines.push(pad + (e.startsWith('WARN') ? c('1;31', e) : c('36', e)));
    if (s.result) lines.push(pad + c('33', `${s.call} ${s.result}`));
  }
  if (cx.violations.some((v) => v.kind !== cx.violation.kind || v.message !== cx.violation.message)) {
    lines.push('');
    lines.push('also seen along this schedule:');
    for (const v of cx.violations)
      if (v.kind !== cx.violation.kind || v.message !== cx.violation.message) lines.push(`  (${v.kind}) ${v.message} [after ${v.step}]`);
  }
  return lines.join('\n');
}
