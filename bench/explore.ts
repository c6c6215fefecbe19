// The explorer's benchmark: executions per second of optimal DPOR on the seed scenarios (Linux
// 7.2, full exploration), the redundancy ratio of DPOR (executions explored / distinct
// Mazurkiewicz traces, the traces counted by brute-force enumeration of every interleaving) on
// scenarios small enough for brute force (the goal is 1.00), and the time to the first
// counterexample of each variant on its scenario.
//
// Standalone: node dist/bench/explore.js [--json] [--full]
// --full also counts the traces of two seed scenarios by brute force (bind-vs-ioctl: 9,558
// interleavings, group-close-vs-device: 2,832; about 30 s more).

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadScenario } from '../src/scenario/runner.js';
import { parseScenario, Scenario } from '../src/scenario/scenario.js';
import { Engine, EngineOptions, engineOptionsWith, traceKey } from '../src/explore/engine.js';
import { Execution, prepareScenario } from '../src/explore/execution.js';
import { explore } from '../src/explore/explore.js';
import { VARIANTS } from '../src/explore/variants.js';

const here = dirname(fileURLToPath(import.meta.url));
const EXAMPLES = join(here, '..', '..', 'examples', 'explore');

const SEEDS = ['two-device-files.yaml', 'group-close-vs-device.yaml', 'bind-vs-ioctl.yaml', 'unbind-vs-ioctl.yaml'];

const options = engineOptionsWith;

/** Distinct traces among the executions of a strategy, and the executions. */
function count(sc: Scenario, over: Partial<EngineOptions>): { executions: number; traces: number; ms: number } {
  const e = new Engine(prepareScenario(sc), options(over));
  const keys = new Set<string>();
  const x = e as unknown as { finished(ex: Execution, cut?: boolean): void };
  const orig = x.finished.bind(e);
  x.finished = (ex: Execution, cut?: boolean) => {
    keys.add(traceKey(ex.events));
    orig(ex, cut);
  };
  const st = e.run();
  return { executions: st.executions, traces: keys.size, ms: st.elapsedMs };
}

const SMALL_HOST = join(EXAMPLES, 'small-host.yaml');
const SMALL: Array<[string, () => Scenario, number]> = [
  ['unbind-vs-ioctl', () => loadScenario(join(EXAMPLES, 'unbind-vs-ioctl.yaml')), 1],
  ['unbind-while-open', () => loadScenario(join(EXAMPLES, 'unbind-while-open.yaml')), 0],
  [
    'close-vs-ioctl',
    () =>
      parseScenario(`host: ${JSON.stringify(SMALL_HOST)}
processes: { p: {} }
steps: [ { p: open /dev/vfio/devices/vfio0 as dev } ]
threads:
  a: [ { p: close dev } ]
  b: [ { p: { ioctl: VFIO_DEVICE_GET_INFO, fd: dev, arg: {} } } ]`, '<close-vs-ioctl>'),
    1,
  ],
  [
    'two-group-openers',
    () =>
      parseScenario(`host: ${JSON.stringify(SMALL_HOST)}
processes: { p: {}, q: {} }
threads:
  a: [ { p: open /dev/vfio/13 } ]
  b: [ { q: open /dev/vfio/13 } ]`, '<two-group-openers>'),
    1,
  ],
];

/** Seed scenarios small enough for brute force, measured with --full. */
const SEEDS_SMALL: Array<[string, () => Scenario, number]> = [
  ['bind-vs-ioctl (seed 002)', () => loadScenario(join(EXAMPLES, 'bind-vs-ioctl.yaml')), 1],
  ['group-close-vs-device (seed 004)', () => loadScenario(join(EXAMPLES, 'group-close-vs-device.yaml')), 1],
];

export function benchExplore(opts: { full?: boolean } = {}): Array<{ name: string; value: number; unit: string }> {
  const out: Array<{ name: string; value: number; unit: string }> = [];
  // warm up (JIT) on every seed scenario first
  for (const f of SEEDS) explore(loadScenario(join(EXAMPLES, f)), {});
  // executions per second, full DPOR exploration of each seed scenario on Linux 7.2
  let totalExec = 0;
  let totalMs = 0;
  for (const f of SEEDS) {
    const sc = loadScenario(join(EXAMPLES, f));
    const r = explore(sc, {});
    if (r.verdict !== 'verified') throw new Error(`${f}: Linux 7.2 not verified (${r.verdict})`);
    totalExec += r.stats.executions;
    totalMs += r.stats.elapsedMs;
    out.push({ name: `explore: DPOR executions/s, ${f.replace('.yaml', '')} (7.2, ${r.stats.executions} executions)`, value: (r.stats.executions / r.stats.elapsedMs) * 1000, unit: 'executions/s' });
  }
  out.push({ name: 'explore: DPOR executions/s, all seed scenarios', value: (totalExec / totalMs) * 1000, unit: 'executions/s' });
  // redundancy: DPOR executions / distinct traces (brute force)
  for (const [name, make, timeouts] of [...SMALL, ...(opts.full ? SEEDS_SMALL : [])]) {
    const sc = make();
    const d = count(sc, { strategy: 'dpor', timeouts });
    const x = count(sc, { strategy: 'exhaustive', timeouts });
    out.push({ name: `explore: redundancy ratio, ${name} (${d.executions} DPOR executions, ${x.traces} traces in ${x.executions} interleavings, brute force ${(x.ms / 1000).toFixed(1)} s)`, value: d.executions / x.traces, unit: 'ratio' });
  }
  // time to the first counterexample of each variant
  for (const v of VARIANTS) {
    const sc = loadScenario(join(EXAMPLES, v.scenario!.replace('examples/explore/', '')));
    const r = explore(sc, { variant: v.name });
    const ms = r.firstViolationMs ?? NaN;
    out.push({ name: `explore: time to the first counterexample, ${v.name} (${r.counterexamples[0]?.steps.length ?? '?'} transitions)`, value: ms, unit: 'ms' });
  }
  return out;
}

const invoked = process.argv[1] ?? '';
if (invoked.endsWith('explore.js') && invoked.includes('bench')) {
  const rows = benchExplore({ full: process.argv.includes('--full') });
  if (process.argv.includes('--json')) process.stdout.write(JSON.stringify(rows, null, 1) + '\n');
  else {
    process.stdout.write('| measurement | value | unit |\n|---|---:|---|\n');
    for (const r of rows) process.stdout.write(`| ${r.name} | ${r.unit === 'ratio' ? r.value.toFixed(2) : Math.round(r.value).toLocaleString('en-US')} | ${r.unit} |\n`);
  }
}
