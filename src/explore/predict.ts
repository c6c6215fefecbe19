// What the C program of a counterexample prints on Linux 7.2's design, predicted by the model.
//
// The C export (cexport.ts) issues the thread calls a counterexample started, in the order it
// started them, and a call only after every call that had returned before it started (in the
// counterexample) has returned. Only the second is a guarantee about the kernel: a thread that set
// its "issued" flag may still be preempted before it enters the kernel, and calls that overlap
// interleave inside the kernel as the real scheduler decides. So the results a real 7.2 kernel
// may print are those of the interleavings of the model (no variant) in which every call starts
// after the calls it waits for have returned: the explorer finds them with DPOR over the scenario
// cut to the calls the counterexample started, keeping the traces in which these orderings can
// hold (the trace's partial order plus the program's edges has no cycle), and collects their
// distinct results. An outcome is marked `issueOrder` when some interleaving producing it also
// starts the calls in the order they are issued (what an unloaded machine most likely does).

import { Engine } from './engine.js';
import { ExecOptions, Execution, PreparedScenario } from './execution.js';
import type { Counterexample } from './counterexample.js';
import { CallSpan, reportedStep } from './cexport.js';
import { describeStep } from './threads.js';

/** One line of the program's output: the call's id (s1.. setup, c1.. thread calls), who, what, result. */
export interface PredictedLine {
  id: string;
  who: string;
  call: string;
  /** "= 3", "= -1 EINVAL" */
  result: string;
}

export interface PredictedOutcome {
  /** the program's lines in id order (setup first) */
  lines: PredictedLine[];
  /** some interleaving with this outcome starts the calls in the order the program issues them */
  issueOrder: boolean;
}

export interface Prediction {
  /** the distinct outcomes */
  outcomes: PredictedOutcome[];
  /** executions explored on 7.2, and those the program's orderings allow */
  executions: number;
  consistent: number;
  /** the exploration finished (every trace considered) */
  complete: boolean;
}

/** "= 3" / "= -1 EBADF" from a libc-style outcome (a step skipped for a name never bound used fd -1: EBADF). */
function resultOf(o: { ret?: number; errno?: string; skipped?: string }): string {
  if (o.ret === undefined) return o.skipped !== undefined ? '= -1 EBADF' : '= 0';
  return o.ret < 0 ? `= -1 ${o.errno}` : `= ${o.ret}`;
}

/** The program's orderings, as (before, after) pairs of call ids: issue order, and returned-before-started. */
export function programOrder(calls: readonly CallSpan[]): Array<{ before: number; after: number; kind: 'issued' | 'returned' }> {
  const out: Array<{ before: number; after: number; kind: 'issued' | 'returned' }> = [];
  calls.forEach((me, j) => {
    if (j > 0) out.push({ before: j - 1, after: j, kind: 'issued' });
    calls.forEach((c, i) => {
      if (c.thread !== me.thread && c.end !== null && c.end < me.start) out.push({ before: i, after: j, kind: 'returned' });
    });
  });
  return out;
}

/** Whether the execution's partial order plus the extra edges (event -> event) has no cycle. */
function acyclic(ex: Execution, extra: Array<[number, number]>): boolean {
  const n = ex.events.length;
  const adj: number[][] = Array.from({ length: n }, () => []);
  const indeg = new Array<number>(n).fill(0);
  const edge = (a: number, b: number) => {
    adj[a]!.push(b);
    indeg[b]!++;
  };
  const last = new Map<number, number>();
  ex.events.forEach((e, i) => {
    const p = last.get(e.thread);
    if (p !== undefined) edge(p, i);
    last.set(e.thread, i);
    for (const q of e.preds) edge(q, i);
  });
  for (const [a, b] of extra) edge(a, b);
  const queue: number[] = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) queue.push(i);
  let seen = 0;
  while (queue.length) {
    const a = queue.pop()!;
    seen++;
    for (const b of adj[a]!) if (--indeg[b]! === 0) queue.push(b);
  }
  return seen === n;
}

/**
 * The outcomes the counterexample's C program can print on Linux 7.2's design (the model with no
 * variant), one list of lines per distinct outcome.
 */
export function predictLinux(prep: PreparedScenario, cx: Counterexample, opts: Pick<ExecOptions, 'timeouts' | 'depth'> & { maxExecutions?: number }): Prediction {
  const sc = prep.scenario;
  // the scenario cut to the thread steps the counterexample started
  const reach = new Map<string, number>();
  for (const c of cx.calls) reach.set(c.thread, Math.max(reach.get(c.thread) ?? 0, c.step + 1));
  const threads = sc.threads.filter((t) => reach.has(t.name)).map((t) => ({ ...t, steps: t.steps.slice(0, reach.get(t.name)) }));
  const cut: PreparedScenario = { ...prep, scenario: { ...sc, threads } };
  const order = programOrder(cx.calls);
  const outcomes = new Map<string, PredictedOutcome>();
  let consistent = 0;
  const onExecution = (ex: Execution) => {
    // where each call of the counterexample started and ended in this execution
    const spans = new Map<string, { start: number; end: number | null }>();
    const count = new Map<number, number>();
    ex.events.forEach((e, i) => {
      const th = ex.threads[e.thread]!;
      if (th.orphan) return;
      if (e.opKind === 'start') {
        const k = count.get(e.thread) ?? 0;
        count.set(e.thread, k + 1);
        spans.set(`${th.name}#${k}`, { start: i, end: null });
      }
      if (e.ends) {
        const k = (count.get(e.thread) ?? 1) - 1;
        const s = spans.get(`${th.name}#${k}`);
        if (s) s.end = i;
      }
    });
    const span = (id: number) => spans.get(`${cx.calls[id]!.thread}#${cx.calls[id]!.step}`);
    // every call ran and returned (else the program would hang)
    if (!cx.calls.every((_c, i) => span(i)?.end !== undefined && span(i)?.end !== null)) return;
    const returned: Array<[number, number]> = [];
    const issued: Array<[number, number]> = [];
    for (const o of order) {
      const a = span(o.before)!;
      const b = span(o.after)!;
      if (o.kind === 'returned') returned.push([a.end!, b.start]);
      else issued.push([a.start, b.start]);
    }
    if (!acyclic(ex, returned)) return;
    const inOrder = acyclic(ex, [...returned, ...issued]);
    consistent++;
    const lines: PredictedLine[] = [];
    let s = 0;
    for (const r of ex.runner.results) {
      if (!reportedStep(r.step)) continue;
      s++;
      lines.push({ id: `s${s}`, who: r.actor, call: r.call, result: resultOf(r) });
    }
    cx.calls.forEach((c, i) => {
      const th = ex.threads.find((t) => t.name === c.thread)!;
      const st = th.steps[c.step]!;
      if (!reportedStep(st)) return;
      lines.push({ id: `c${i + 1}`, who: c.thread, call: describeStep(st), result: resultOf(th.outcomes[c.step] ?? {}) });
    });
    const key = lines.map((l) => `${l.id} ${l.result}`).join('\n');
    const known = outcomes.get(key);
    if (known) known.issueOrder ||= inOrder;
    else outcomes.set(key, { lines, issueOrder: inOrder });
  };
  const engine = new Engine(
    cut,
    {
      strategy: 'dpor',
      variant: null,
      timeouts: opts.timeouts,
      depth: opts.depth,
      stopOnViolation: false,
      maxExecutions: opts.maxExecutions ?? 100000,
      timeLimitMs: Infinity,
      preemptions: 0,
      runs: 0,
      seed: 1,
      pctDepth: 1,
      countTraces: false,
    },
    { execution: onExecution },
  );
  const st = engine.run();
  const sorted = [...outcomes.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, v]) => v);
  return { outcomes: sorted, executions: st.executions, consistent, complete: st.complete };
}

/** One outcome as the C program prints it (in id order). */
export function predictionText(o: PredictedOutcome | readonly PredictedLine[]): string {
  const lines = 'lines' in o ? o.lines : o;
  return lines.map((l) => `${l.id.padEnd(4)} ${l.who.padEnd(10)} ${l.call.padEnd(52)} ${l.result}`).join('\n');
}

/** Parse the C program's output into id -> result ("c1" -> "= 0"); other lines are ignored. */
export function parseProgramOutput(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([sc]\d+)\s+.*?(= -?\d+(?: [A-Z0-9]+)?)\s*$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Whether a program output matches one of the predicted outcomes (same ids, same results). */
export function matchesPrediction(p: Prediction, output: Map<string, string>): PredictedOutcome | null {
  for (const o of p.outcomes) {
    if (o.lines.length !== output.size) continue;
    if (o.lines.every((l) => output.get(l.id) === l.result)) return o;
  }
  return null;
}
