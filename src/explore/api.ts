// The explorer's top-level API: what `vfiosim explore` does, for programs.
//
//   import { explorer } from 'vfiosim';
//   const r = await explorer.exploreFile('examples/explore/unbind-vs-ioctl.yaml', { variant: 'bound-unbound' });
//   r.verdict;                          // 'violation'
//   r.counterexamples[0].schedule;      // 'user*3,unbinder*6,user'
//   const rr = await explorer.replayFile('examples/explore/unbind-vs-ioctl.yaml', r.counterexamples[0].schedule,
//                                        { variant: 'bound-unbound' });
//   const { source, expected } = await explorer.counterexampleProgram('examples/explore/unbind-vs-ioctl.yaml',
//                                        r.counterexamples[0]);   // C, and what Linux 7.2 prints
//
// A scenario file is read and validated, the invariant modules it names are loaded (relative to
// it), variant and invariant modules given in the options are loaded (relative to the working
// directory), and the variant is resolved by name among the built-in and the loaded ones.
// explore() and replayScheduleText() (explore.ts) do the same for a Scenario already parsed, with
// variants and invariants given as objects.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Scenario, parseScenario } from '../scenario/scenario.js';
import { ExploreOptions, ExploreResult, ReplayResult, explore, replayScheduleText, resolveVariant } from './explore.js';
import { Counterexample, counterexampleC } from './counterexample.js';
import { prepareScenario } from './execution.js';
import { UserInvariant } from './invariants.js';
import { Prediction, predictLinux } from './predict.js';
import { Variant } from './variants.js';

/** A problem with the caller's input (a file, a module, a name): the CLI's exit status 2. */
export class ExploreUsageError extends Error {}

export interface ExploreFileOptions extends Omit<ExploreOptions, 'file'> {
  /** modules exporting `variants` (paths relative to the working directory) */
  variantModules?: readonly string[];
  /** modules exporting `invariants` (relative to the working directory), besides the scenario's */
  invariantModules?: readonly string[];
}

/** A scenario file with everything it needs to be explored. */
export interface LoadedScenario {
  file: string;
  scenario: Scenario;
  /** the variant to explore (null: Linux 7.2) */
  variant: Variant | null;
  /** the variants loaded from modules */
  variants: Variant[];
  /** the invariants loaded from modules (the scenario's and the options') and given in the options */
  invariants: UserInvariant[];
}

/** Import a module and take its list export (or default export). */
export async function importList<T>(path: string, exportName: string, base: string): Promise<T[]> {
  const abs = resolve(base, path);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ExploreUsageError(`cannot load ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
  const v = mod[exportName] ?? mod.default;
  const list = Array.isArray(v) ? v : v ? [v] : [];
  if (!list.length) throw new ExploreUsageError(`${path} exports no "${exportName}" (a list)`);
  return list as T[];
}

/** Load the variant modules (relative to `base`) and check their shape. */
export async function loadVariantModules(paths: readonly string[], base = process.cwd()): Promise<Variant[]> {
  const out: Variant[] = [];
  for (const m of paths) out.push(...(await importList<Variant>(m, 'variants', base)));
  for (const v of out)
    if (!v || typeof v.name !== 'string' || typeof v.overrides !== 'object') throw new ExploreUsageError('a variant needs a name and an overrides object');
  return out;
}

/** Read a scenario file, load its modules and the options' modules, resolve the variant. */
export async function loadScenarioFile(file: string, opts: ExploreFileOptions = {}): Promise<LoadedScenario> {
  const variants = [...(opts.variants ?? []), ...(await loadVariantModules(opts.variantModules ?? []))];
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ExploreUsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const scenario = parseScenario(text, file);
  if (scenario.threads.length === 0) throw new ExploreUsageError(`${file} has no threads: nothing to interleave (add a "threads:" mapping; see the README)`);
  let variant: Variant | null;
  try {
    variant = resolveVariant(opts.variant, variants);
  } catch (e) {
    throw new ExploreUsageError((e as Error).message);
  }
  const invariants: UserInvariant[] = [];
  const base = dirname(resolve(file));
  for (const c of scenario.invariants.check) if (c.module) invariants.push(...(await importList<UserInvariant>(c.module, 'invariants', base)));
  for (const m of opts.invariantModules ?? []) invariants.push(...(await importList<UserInvariant>(m, 'invariants', process.cwd())));
  invariants.push(...(opts.invariants ?? []));
  for (const inv of invariants)
    if (!inv || typeof inv.name !== 'string' || typeof inv.check !== 'function') throw new ExploreUsageError('an invariant needs a name and a check(ctx) function');
  return { file, scenario, variant, variants, invariants };
}

function options(l: LoadedScenario, opts: ExploreFileOptions): ExploreOptions {
  const { variantModules: _vm, invariantModules: _im, ...rest } = opts;
  return { ...rest, variant: l.variant, variants: l.variants, invariants: l.invariants, file: l.file };
}

/** Explore a scenario file (the API of `vfiosim explore FILE`). */
export async function exploreFile(file: string, opts: ExploreFileOptions = {}): Promise<ExploreResult> {
  const l = await loadScenarioFile(file, opts);
  return explore(l.scenario, options(l, opts));
}

/** Replay one schedule of a scenario file (`vfiosim explore FILE --replay SCHEDULE`). */
export async function replayFile(file: string, schedule: string, opts: ExploreFileOptions = {}): Promise<ReplayResult> {
  const l = await loadScenarioFile(file, opts);
  return replayScheduleText(l.scenario, schedule, options(l, opts));
}

/**
 * A counterexample as a C program, with what Linux 7.2 prints when it runs (every outcome the
 * model allows for the orderings the program forces; see predict.ts).
 */
export async function counterexampleProgram(
  file: string | Scenario,
  cx: Counterexample,
  opts: { host?: string; timeouts?: number; depth?: number } = {},
): Promise<{ source: string; expected: Prediction }> {
  const sc = typeof file === 'string' ? (await loadScenarioFile(file, {})).scenario : file;
  const prep = prepareScenario(sc, opts.host ? { host: opts.host } : {});
  const expected = predictLinux(prep, cx, { timeouts: opts.timeouts ?? sc.explore.timeouts ?? 1, depth: opts.depth ?? sc.explore.depth ?? 20000 });
  return { source: counterexampleC(prep, cx, expected), expected };
}
