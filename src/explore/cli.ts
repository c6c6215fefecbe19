// `vfiosim explore`: the explorer's command line.

import { writeFileSync } from 'node:fs';
import { HostConfigError } from '../host/topology.js';
import { ScenarioError } from '../scenario/scenario.js';
import { Progress, Strategy } from './engine.js';
import { ExploreOptions, ExploreResult, ReplayError, explore, replayScheduleText } from './explore.js';
import { formatCounterexample, renumber } from './counterexample.js';
import { ExploreUsageError, counterexampleProgram, loadScenarioFile, loadVariantModules } from './api.js';
import { VARIANTS, Variant } from './variants.js';

/** Where the command writes (the process's stdout and stderr; tests capture them in process). */
export interface ExploreIO {
  out(text: string): void;
  err(text: string): void;
  /** stdout is a terminal (colours by default) */
  outTTY: boolean;
  /** stderr is a terminal (a progress line rewritten in place) */
  errTTY: boolean;
}

const PROCESS_IO: ExploreIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  get outTTY() {
    return process.stdout.isTTY === true;
  },
  get errTTY() {
    return process.stderr.isTTY === true;
  },
};

export const EXPLORE_HELP = `usage: vfiosim explore FILE [options]

Explores the interleavings of a scenario's threads (each a list of syscalls or kernel events such
as unbind and hot-unplug) on the model, with dynamic partial-order reduction over the footprints
of the kernel's visible operations, and checks the invariants after every step and at the end of
every execution (see the README's "Exploring"). Prints the shortest counterexample found as a
readable trace, or a summary.

mode:
  --mode MODE           dpor (default: optimal DPOR, one execution per Mazurkiewicz trace),
                        exhaustive (every interleaving, distinct traces counted),
                        bounded (every interleaving with at most --preemptions N preemptions),
                        random, pct (sampled schedules, --runs N --seed S, pct: --pct-depth D)
  --preemptions N       preemption bound of bounded (default 2)
  --runs N              executions of random / pct (default 1000)
  --seed N              seed of random / pct (default 1)
  --pct-depth D         PCT bug depth: D - 1 priority change points (default 3)
design:
  --variant NAME        explore an older design instead of Linux 7.2 (--list-variants)
  --variant-module FILE load variants from a module exporting \`variants\` (JavaScript)
  --list-variants       list the variants and exit
  --invariants FILE     load invariants from a module exporting \`invariants\` (JavaScript)
limits:
  --timeouts N          times each task's timed wait may time out (default 1)
  --max-executions N    stop after N executions
  --time-limit S        stop after S seconds
  --max-depth N         cut an execution after N transitions (default 20000)
  --all                 keep exploring after a violation: every distinct violation, each with
                        the shortest schedule found
output:
  --replay SCHEDULE     run one schedule ("user*3,closer,user") and print its trace
  --json                one JSON document (summary, counterexamples with their traces)
  --export-json FILE    write the result (or the replay) as JSON to FILE
  --export-c FILE       write the first counterexample as a C program (pthreads; see README)
  --no-count-traces     do not count the distinct Mazurkiewicz traces (they are hashed, one
                        number per trace, for the summary)
  --no-footprints       leave footprints out of the printed trace
  --quiet               no progress line
  --host FILE           boot this topology instead of the scenario's host
  --no-color            no ANSI colours

Exit status: 0 verified (or no violation found in a bounded or sampled search), 1 a violation
found (or seen by --replay), 2 bad usage or an invalid file.`;

class UsageError extends ExploreUsageError {}

interface XFlags {
  file?: string;
  mode: Strategy;
  preemptions?: number;
  runs?: number;
  seed?: number;
  pctDepth?: number;
  variant?: string;
  variantModules: string[];
  invariantModules: string[];
  listVariants: boolean;
  timeouts?: number;
  maxExecutions?: number;
  timeLimit?: number;
  maxDepth?: number;
  all: boolean;
  replay?: string;
  json: boolean;
  exportJson?: string;
  exportC?: string;
  countTraces: boolean;
  footprints: boolean;
  quiet: boolean;
  host?: string;
  color: boolean;
  help: boolean;
}

const MODES: Strategy[] = ['dpor', 'exhaustive', 'bounded', 'random', 'pct'];

function parse(argv: string[], io: ExploreIO): XFlags {
  const f: XFlags = {
    mode: 'dpor',
    variantModules: [],
    invariantModules: [],
    listVariants: false,
    all: false,
    json: false,
    countTraces: true,
    footprints: true,
    quiet: false,
    color: io.outTTY,
    help: false,
  };
  const value = (i: number, name: string): string => {
    const v = argv[i];
    if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new UsageError(`${name} needs a value`);
    return v;
  };
  const int = (v: string, name: string, min = 0): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`${name}: "${v}" is not an integer >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    const eq = a.indexOf('=');
    if (a.startsWith('--') && eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const val = () => (inline !== undefined ? inline : value(++i, a));
    switch (a) {
      case '--mode': {
        const m = val();
        if (!MODES.includes(m as Strategy)) throw new UsageError(`--mode: "${m}" is not one of ${MODES.join(', ')}`);
        f.mode = m as Strategy;
        break;
      }
      case '--preemptions':
        f.preemptions = int(val(), a);
        break;
      case '--runs':
        f.runs = int(val(), a, 1);
        break;
      case '--seed':
        f.seed = int(val(), a);
        break;
      case '--pct-depth':
        f.pctDepth = int(val(), a, 1);
        break;
      case '--variant':
        f.variant = val();
        break;
      case '--variant-module':
        f.variantModules.push(val());
        break;
      case '--invariants':
        f.invariantModules.push(val());
        break;
      case '--list-variants':
        f.listVariants = true;
        break;
      case '--timeouts':
        f.timeouts = int(val(), a);
        break;
      case '--max-executions':
        f.maxExecutions = int(val(), a, 1);
        break;
      case '--time-limit': {
        const v = val();
        const n = Number(v);
        if (!(n > 0)) throw new UsageError(`--time-limit: "${v}" is not a positive number of seconds`);
        f.timeLimit = n;
        break;
      }
      case '--max-depth':
        f.maxDepth = int(val(), a, 1);
        break;
      case '--all':
        f.all = true;
        break;
      case '--replay':
        f.replay = val();
        break;
      case '--json':
        f.json = true;
        break;
      case '--export-json':
        f.exportJson = val();
        break;
      case '--export-c':
        f.exportC = val();
        break;
      case '--count-traces':
        f.countTraces = true;
        break;
      case '--no-count-traces':
        f.countTraces = false;
        break;
      case '--no-footprints':
        f.footprints = false;
        break;
      case '--quiet':
      case '-q':
        f.quiet = true;
        break;
      case '--host':
        f.host = val();
        break;
      case '--no-color':
        f.color = false;
        break;
      case '--help':
      case '-h':
        f.help = true;
        break;
      default:
        if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option ${a}`);
        if (f.file) throw new UsageError(`one scenario FILE at a time (got ${f.file} and ${a})`);
        f.file = a;
    }
  }
  return f;
}

function fmtMs(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

function progressLine(p: Progress): string {
  let est = '';
  if (p.fraction !== null && p.fraction > 0.001 && p.fraction < 1) {
    const total = p.executions / p.fraction;
    const left = (total - p.executions) / Math.max(p.rate, 1e-9);
    est = `, ~${Math.round(p.fraction * 100)}% (estimate: ~${Math.round(total)} executions, ${fmtMs(left * 1000)} left)`;
  }
  return `explored ${p.executions} executions (${Math.round(p.rate)}/s) in ${fmtMs(p.elapsedMs)}${est}${p.violations ? `, ${p.violations} violation(s)` : ''}`;
}

function summary(r: ExploreResult, variant: Variant | null, color: boolean): string {
  const c = color ? (code: string, s: string) => `\x1b[${code}m${s}\x1b[0m` : (_c: string, s: string) => s;
  const s = r.stats;
  const L: string[] = [];
  L.push(`scenario:   ${r.scenario}${r.description ? ` - ${r.description}` : ''}`);
  L.push(`design:     ${variant ? `variant ${variant.name}: ${variant.title}` : 'Linux 7.2'}`);
  const modeText: Record<Strategy, string> = {
    dpor: 'dpor (optimal DPOR: one execution per Mazurkiewicz trace)',
    exhaustive: 'exhaustive (every interleaving)',
    bounded: 'bounded (every interleaving within the preemption bound)',
    random: 'random schedules',
    pct: 'PCT (probabilistic concurrency testing)',
  };
  L.push(`mode:       ${modeText[r.mode]}`);
  const parts = [`${s.executions} executions`];
  if (s.distinctTraces !== null) parts.push(`${s.distinctTraces} distinct traces`);
  parts.push(`${s.transitions} transitions`);
  if (r.mode === 'dpor') parts.push(`${s.races} races: ${s.inserted} reversed, ${s.pruned} pruned (already covered)`, `${s.sleepBlocked} sleep-blocked`);
  if (s.infeasible) parts.push(`${s.infeasible} infeasible wakeups`);
  if (s.divergent) parts.push(`${s.divergent} divergent replays`);
  L.push(`explored:   ${parts.join(', ')}`);
  L.push(`time:       ${fmtMs(s.elapsedMs)} (${Math.round((s.executions / Math.max(s.elapsedMs, 1)) * 1000)} executions/s)${r.firstViolationMs !== null ? `, first violation after ${fmtMs(r.firstViolationMs)}` : ''}`);
  if (s.lockEdges) L.push(`lock order: ${s.lockEdges} nested acquisition(s) seen, ${r.lockCycles.length} cycle(s)`);
  for (const n of r.notes) L.push(`note:       ${n}`);
  if (r.incomplete) L.push(`coverage:   ${r.incomplete}`);
  const v =
    r.verdict === 'verified'
      ? c('1;32', 'VERIFIED: every interleaving of the threads (up to equivalence) satisfies the invariants')
      : r.verdict === 'violation'
        ? c('1;31', `VIOLATION: ${r.stats.violations + r.lockCycles.length} distinct violation(s) in ${r.counterexamples.length + r.lockCycles.length} counterexample(s)`)
        : c('1;33', 'NO VIOLATION FOUND (the search was not exhaustive)');
  L.push(`verdict:    ${v}`);
  return L.join('\n');
}

function lockCycleText(r: ExploreResult): string[] {
  return r.lockCycles.map(
    (cy) =>
      `violation (lock-order): lock order cycle between ${cy.locks.join(', ')}\n` +
      cy.edges.map((e) => `  ${e.thread} took ${e.to} while holding ${e.from}`).join('\n'),
  );
}

export function exploreMain(argv: string[], io: ExploreIO = PROCESS_IO): number | Promise<number> {
  let f: XFlags;
  try {
    f = parse(argv, io);
  } catch (e) {
    io.err(`vfiosim explore: ${(e as Error).message}\n(vfiosim explore --help for the options)\n`);
    return 2;
  }
  if (f.help) {
    io.out(EXPLORE_HELP + '\n');
    return 0;
  }
  const run = async (): Promise<number> => {
    if (f.listVariants) {
      const extra = await loadVariantModules(f.variantModules);
      for (const v of [...VARIANTS, ...extra]) {
        io.out(`${v.name}\n  ${v.title}\n  ${v.description}\n  overrides: ${Object.keys(v.overrides).join(', ')}\n${v.scenario ? `  scenario: ${v.scenario}\n` : ''}`);
      }
      return 0;
    }
    if (!f.file) throw new UsageError('explore needs a scenario FILE');
    const loaded = await loadScenarioFile(f.file, {
      ...(f.variant !== undefined ? { variant: f.variant } : {}),
      variantModules: f.variantModules,
      invariantModules: f.invariantModules,
    });
    const { scenario: sc, variant } = loaded;
    const opts: ExploreOptions = {
      mode: f.mode,
      variant,
      variants: loaded.variants,
      invariants: loaded.invariants,
      file: f.file,
      all: f.all,
      countTraces: f.countTraces,
      ...(f.host ? { host: f.host } : {}),
      ...(f.timeouts !== undefined ? { timeouts: f.timeouts } : {}),
      ...(f.maxDepth !== undefined ? { depth: f.maxDepth } : {}),
      ...(f.maxExecutions !== undefined ? { maxExecutions: f.maxExecutions } : {}),
      ...(f.timeLimit !== undefined ? { timeLimitMs: f.timeLimit * 1000 } : {}),
      ...(f.preemptions !== undefined ? { preemptions: f.preemptions } : {}),
      ...(f.runs !== undefined ? { runs: f.runs } : {}),
      ...(f.seed !== undefined ? { seed: f.seed } : {}),
      ...(f.pctDepth !== undefined ? { pctDepth: f.pctDepth } : {}),
    };
    if (f.replay !== undefined) {
      let rr;
      try {
        rr = replayScheduleText(sc, f.replay, opts);
      } catch (e) {
        if (e instanceof ReplayError) throw new UsageError(`--replay: ${e.message}`);
        throw e;
      }
      if (f.exportJson) writeFileSync(f.exportJson, JSON.stringify(rr, null, 1) + '\n');
      if (f.json) io.out(JSON.stringify(rr, null, 1) + '\n');
      else {
        const first = rr.violations[0];
        const cx = {
          scenario: rr.scenario,
          variant: rr.variant,
          violation: first ?? { kind: 'none', message: 'no violation along this schedule', step: rr.steps.length },
          violations: rr.violations,
          threads: rr.threads,
          schedule: rr.schedule,
          foundLength: rr.steps.length,
          steps: rr.steps,
          replay: '(this replay)',
          calls: [],
        };
        const out = formatCounterexample(cx, { color: f.color, footprints: f.footprints });
        io.out((first ? out : out.replace(/^.*\n/, 'replay: no violation along this schedule\n')) + '\n');
        io.out(`\n${rr.steps.length} transition(s)${rr.ended ? ', the execution ended (no thread can go on)' : ''}; ${rr.violations.length} violation(s)\n`);
      }
      return rr.violations.length ? 1 : 0;
    }
    const tty = io.errTTY;
    let shown = false;
    if (!f.quiet && !f.json)
      opts.progress = (p) => {
        if (tty) io.err(`\r\x1b[K${progressLine(p)}`);
        else io.err(progressLine(p) + '\n');
        shown = true;
      };
    opts.progressEveryMs = tty ? 500 : 5000;
    const r = explore(sc, opts);
    if (shown && tty) io.err('\r\x1b[K');
    if (f.exportC && r.counterexamples[0]) {
      const prog = await counterexampleProgram(sc, r.counterexamples[0], {
        ...(f.host ? { host: f.host } : {}),
        ...(f.timeouts !== undefined ? { timeouts: f.timeouts } : {}),
        ...(f.maxDepth !== undefined ? { depth: f.maxDepth } : {}),
      });
      writeFileSync(f.exportC, prog.source);
    } else if (f.exportC) io.err(`vfiosim explore: no counterexample: ${f.exportC} not written\n`);
    const doc = renumber(r);
    if (f.exportJson) writeFileSync(f.exportJson, JSON.stringify(doc, null, 1) + '\n');
    if (f.json) io.out(JSON.stringify(doc, null, 1) + '\n');
    else {
      const out: string[] = [];
      for (const cx of r.counterexamples) out.push(formatCounterexample(cx, { color: f.color, footprints: f.footprints }), '');
      out.push(...lockCycleText(r));
      if (r.lockCycles.length) out.push('');
      out.push(summary(r, variant, f.color));
      io.out(out.join('\n') + '\n');
    }
    return r.verdict === 'violation' ? 1 : 0;
  };
  return run().catch((e: unknown) => {
    if (e instanceof ExploreUsageError || e instanceof ScenarioError || e instanceof HostConfigError) {
      io.err(`vfiosim explore: ${e.message}\n`);
      return 2;
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      io.err(`vfiosim explore: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  });
}
