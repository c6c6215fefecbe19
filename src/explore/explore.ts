// The explorer's entry points: explore a scenario (optionally under a variant), replay a
// schedule, and summarise. `vfiosim explore` is a thin layer over these.

import type { Scenario } from '../scenario/scenario.js';
import { Engine, EngineOptions, EngineStats, FoundViolation, LockCycle, Progress, Strategy } from './engine.js';
import { ExecOptions, Execution, PreparedScenario, prepareScenario } from './execution.js';
import {
  Counterexample, ReplayError, TraceStep, buildCounterexample, parseSchedule, renumber, replay, scheduleText, traceOf,
} from './counterexample.js';
import { UserInvariant, Violation } from './invariants.js';
import { VARIANTS, Variant, variantByName } from './variants.js';

export interface ExploreOptions {
  mode?: Strategy;
  /** a variant (by name: built in or in `variants`) or none for Linux 7.2 */
  variant?: string | Variant | null;
  /** user variants (besides the built-in ones) */
  variants?: readonly Variant[];
  /** user invariants (besides the scenario's expressions) */
  invariants?: readonly UserInvariant[];
  /** a topology file instead of the scenario's host */
  host?: string;
  timeouts?: number;
  depth?: number;
  maxExecutions?: number;
  timeLimitMs?: number;
  preemptions?: number;
  runs?: number;
  seed?: number;
  pctDepth?: number;
  /** keep exploring after a violation (all distinct violations, the shortest schedule of each) */
  all?: boolean;
  /** count distinct Mazurkiewicz traces among the executions (default true) */
  countTraces?: boolean;
  progress?: (p: Progress) => void;
  progressEveryMs?: number;
  /** how the scenario file is named in replay commands */
  file?: string;
}

export type Verdict = 'verified' | 'violation' | 'no-violation-found';

export interface ExploreResult {
  scenario: string;
  description: string;
  variant: string | null;
  mode: Strategy;
  verdict: Verdict;
  /** why the search was not exhaustive, when it was not */
  incomplete?: string;
  /** the engine's counts; violations: distinct violations found */
  stats: Omit<EngineStats, 'violations' | 'lockCycles' | 'notes'> & { violations: number };
  counterexamples: Counterexample[];
  lockCycles: LockCycle[];
  /** benign observations (an unregister waiting for a file left open, by design) */
  notes: string[];
  /** time to the first violation (ms), when one was found */
  firstViolationMs: number | null;
}

export function resolveVariant(v: ExploreOptions['variant'], extra: readonly Variant[] = []): Variant | null {
  if (v === undefined || v === null || v === '' || v === 'linux-7.2' || v === 'none') return null;
  if (typeof v !== 'string') return v;
  const found = variantByName(v, extra);
  if (!found) throw new Error(`no variant named "${v}" (known: ${[...extra, ...VARIANTS].map((x) => x.name).join(', ')})`);
  return found;
}

function execOptions(sc: Scenario, opts: ExploreOptions, variant: Variant | null): ExecOptions {
  return {
    variant,
    timeouts: opts.timeouts ?? sc.explore.timeouts ?? 1,
    depth: opts.depth ?? sc.explore.depth ?? 20000,
    record: false,
  };
}

export function explore(sc: Scenario, opts: ExploreOptions = {}): ExploreResult {
  const variant = resolveVariant(opts.variant, opts.variants);
  const prep = prepareScenario(sc, { ...(opts.host ? { host: opts.host } : {}), extra: [...(opts.invariants ?? [])] });
  const eo = execOptions(sc, opts, variant);
  const mode = opts.mode ?? 'dpor';
  const engineOpts: EngineOptions = {
    ...eo,
    strategy: mode,
    stopOnViolation: !opts.all,
    maxExecutions: opts.maxExecutions ?? Infinity,
    timeLimitMs: opts.timeLimitMs ?? Infinity,
    preemptions: opts.preemptions ?? 2,
    runs: opts.runs ?? 1000,
    seed: opts.seed ?? 1,
    pctDepth: opts.pctDepth ?? 3,
    countTraces: opts.countTraces ?? true,
  };
  const engine = new Engine(prep, engineOpts, {
    ...(opts.progress ? { progress: opts.progress } : {}),
    ...(opts.progressEveryMs !== undefined ? { progressEveryMs: opts.progressEveryMs } : {}),
  });
  const stats = engine.run();
  const file = opts.file ?? sc.source;
  const extra = [opts.timeouts !== undefined ? ` --timeouts ${opts.timeouts}` : '', opts.host ? ` --host ${opts.host}` : ''].join('');
  // violations seen at the same point of the same execution share one counterexample (the
  // others are listed with it)
  const groups = new Map<string, FoundViolation>();
  for (const f of [...stats.violations].sort((a, b) => a.schedule.length - b.schedule.length)) {
    const key = f.schedule.join(',');
    if (!groups.has(key)) groups.set(key, f);
  }
  const counterexamples = [...groups.values()].map((f) => buildCounterexample(prep, eo, f, { file, variant: variant?.name ?? null, extra }));
  const lockOn = !prep.disabled.has('lock-order');
  const lockCycles = lockOn ? stats.lockCycles : [];
  const violated = counterexamples.length > 0 || lockCycles.length > 0;
  let incomplete: string | undefined;
  if (!stats.complete) {
    if (mode === 'random' || mode === 'pct') incomplete = `${mode}: ${stats.executions} sampled execution(s)`;
    else if (stats.executions >= engineOpts.maxExecutions) incomplete = `stopped after ${stats.executions} executions (--max-executions)`;
    else if (stats.elapsedMs >= engineOpts.timeLimitMs) incomplete = `stopped after ${(stats.elapsedMs / 1000).toFixed(1)} s (--time-limit)`;
    else if (violated) incomplete = 'stopped at the first violation (--all explores everything)';
  } else if (mode === 'bounded') incomplete = `every interleaving with at most ${engineOpts.preemptions} preemption(s)`;
  if (stats.truncated) incomplete = `${incomplete ? incomplete + '; ' : ''}${stats.truncated} execution(s) cut at ${eo.depth} transitions`;
  const verdict: Verdict = violated ? 'violation' : stats.complete && mode !== 'bounded' && !stats.truncated ? 'verified' : 'no-violation-found';
  const { violations: _v, lockCycles: _l, notes, ...rest } = stats;
  const first = stats.violations.length ? Math.min(...stats.violations.map((v) => v.atMs)) : null;
  return {
    scenario: sc.source,
    description: sc.description,
    variant: variant?.name ?? null,
    mode,
    verdict,
    ...(incomplete ? { incomplete } : {}),
    stats: { ...rest, violations: stats.violations.length },
    counterexamples,
    lockCycles,
    notes,
    firstViolationMs: first,
  };
}

export interface ReplayResult {
  scenario: string;
  variant: string | null;
  schedule: string;
  threads: string[];
  steps: TraceStep[];
  violations: Violation[];
  /** the schedule ran to the end of the execution (no thread could go on) */
  ended: boolean;
}

/** Replay a schedule (text: NAME or NAME*N, comma separated) and trace it. */
export function replayScheduleText(sc: Scenario, text: string, opts: ExploreOptions = {}): ReplayResult {
  const variant = resolveVariant(opts.variant, opts.variants);
  const prep: PreparedScenario = prepareScenario(sc, { ...(opts.host ? { host: opts.host } : {}), extra: [...(opts.invariants ?? [])] });
  const eo = execOptions(sc, opts, variant);
  const names = new Execution(prep, eo).threads.map((t) => t.name);
  const schedule = parseSchedule(text, names);
  const ex = replay(prep, { ...eo, record: true }, schedule);
  const ended = ex.terminal() && !ex.truncated;
  if (ended) ex.finish();
  return renumber({
    scenario: sc.source,
    variant: variant?.name ?? null,
    schedule: scheduleText(schedule, names),
    threads: names,
    steps: traceOf(ex).steps,
    violations: ex.violations,
    ended,
  });
}

export { ReplayError };
