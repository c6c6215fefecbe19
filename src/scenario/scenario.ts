// Scenario files (YAML): a host, named processes, and a list of steps — syscalls of those
// processes, administrator actions, narration — each with an optional expectation. `vfiosim run`
// executes them; the explorer extends the format with threads and invariants.

import { parse as parseYaml } from 'yaml';
import { errnoByName } from '../kernel/errno.js';

export class ScenarioError extends Error {
  constructor(
    readonly problems: string[],
    readonly source: string,
  ) {
    super(`${source}: invalid scenario:\n  ${problems.join('\n  ')}`);
    this.name = 'ScenarioError';
  }
}

/** A value in a step: a literal, a $reference to a variable (an fd or an output field), or a struct. */
export type Value = number | bigint | string | boolean | null | { [k: string]: Value } | Value[];

export interface ProcessDef {
  name: string;
  uid: number;
  gid: number;
  caps: string[] | null;
}

export type Expect =
  | { kind: 'ret'; value: number }
  | { kind: 'errno'; name: string; value: number }
  | { kind: 'ok' }
  | { kind: 'any' };

export interface Step {
  /** 1-based position in the file, for messages */
  index: number;
  /** process name, 'admin', or 'say' */
  actor: string;
  op: string;
  args: Record<string, Value>;
  /** variable receiving the result (an fd, a pending call, a child process) */
  as: string | null;
  expect: Expect;
  /** expected fields of the output struct, e.g. { flags: 3 } */
  expectOut: Record<string, Value> | null;
  /** expected text (cat/readlink) */
  expectText: string | null;
  note: string | null;
}

export interface Scenario {
  source: string;
  description: string;
  /** 'default', a path (relative to the scenario), or an inline topology */
  host: string | Record<string, unknown>;
  processes: ProcessDef[];
  /** run in order before the threads (the whole scenario for `vfiosim run`) */
  steps: Step[];
  /** explorer extension: threads whose steps the explorer interleaves (empty for run-only files) */
  threads: ThreadDef[];
  /** explorer extension: invariants to check besides the built-in ones */
  invariants: InvariantsDef;
  /** explorer extension: the variants (older designs) this scenario is a counterexample for */
  variants: string[];
  /** explorer extension: defaults for `vfiosim explore` */
  explore: ExploreDefaults;
}

/** A thread of an explorer scenario: a sequence of steps (syscalls of processes, admin events). */
export interface ThreadDef {
  name: string;
  steps: Step[];
}

/** A user invariant: an expression over the model's state, or a module exporting invariants. */
export interface InvariantDef {
  name: string;
  /** 'step': after every transition; 'end': at the end of every execution */
  at: 'step' | 'end';
  expr?: string;
  /** path of a JavaScript module (compiled TypeScript) exporting `invariants`, relative to the scenario */
  module?: string;
}

export interface InvariantsDef {
  /** built-in invariants not to check */
  disable: string[];
  check: InvariantDef[];
}

export interface ExploreDefaults {
  /** times each task's timed wait may time out (default 1) */
  timeouts?: number;
  /** transitions per execution before it is cut (default 20000) */
  depth?: number;
}

/** Operations a process step may use, with their main argument's name. */
export const PROCESS_OPS = [
  'open', 'close', 'ioctl', 'read', 'write', 'pread', 'pwrite', 'dup', 'dup2', 'fork', 'exit', 'exec', 'eventfd',
  'mmap', 'munmap', 'fstat', 'stat', 'readlink', 'readdir', 'cat', 'echo', 'spawn',
] as const;
export const ADMIN_OPS = ['bind', 'unbind', 'hot_unplug', 'advance', 'wait'] as const;
/** What a thread step may do (the explorer starts each as one task it can interleave). */
export const THREAD_PROCESS_OPS = ['open', 'close', 'ioctl', 'read', 'write', 'pread', 'pwrite', 'mmap', 'dup', 'dup2', 'exit', 'exec'] as const;
export const THREAD_ADMIN_OPS = ['unbind', 'hot_unplug', 'advance'] as const;
/** The built-in invariants of the explorer (names usable in `invariants.disable`). */
export const BUILTIN_INVARIANTS = [
  'open-once', 'close-once', 'access-granted', 'access-while-closed', 'use-after-put', 'kernel-warn', 'one-opener',
  'group-cdev-exclusion', 'unregister-completes', 'deadlock', 'lock-order', 'task-error', 'expect',
] as const;

const STEP_KEYS = ['as', 'expect', 'out', 'text', 'note'];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "open /dev/iommu as iommufd" -> { op: open, args: { path }, as } */
function parseShorthand(actor: string, s: string, at: string, problems: string[]): { op: string; args: Record<string, Value>; as: string | null } | null {
  const words = s.trim().split(/\s+/);
  let as: string | null = null;
  const asAt = words.indexOf('as');
  if (asAt >= 0) {
    as = words[asAt + 1] ?? null;
    words.splice(asAt, 2);
  }
  const op = words.shift();
  if (!op) {
    problems.push(`${at}: empty step`);
    return null;
  }
  const rest = words;
  const args: Record<string, Value> = {};
  switch (op) {
    case 'open':
      args.path = rest[0] ?? '';
      if (rest[1]) args.flags = rest[1];
      break;
    case 'close':
    case 'dup':
    case 'fstat':
      args.fd = rest[0] ?? '';
      break;
    case 'stat':
    case 'readlink':
    case 'readdir':
    case 'cat':
      args.path = rest[0] ?? '';
      break;
    case 'exit':
      args.code = Number(rest[0] ?? 0);
      break;
    case 'fork':
    case 'exec':
    case 'eventfd':
      break;
    case 'bind':
    case 'unbind':
    case 'hot_unplug':
      args.device = rest[0] ?? '';
      if (op === 'bind' && rest[1]) args.driver = rest[1];
      break;
    case 'advance':
      args.ms = Number(rest[0] ?? 0);
      break;
    case 'wait':
      args.task = rest[0] ?? '';
      break;
    default:
      problems.push(`${at}: "${op}" has no one-line form; write it as a mapping (e.g. { ${op}: ... })`);
      return null;
  }
  if (actor === 'admin' && !ADMIN_OPS.includes(op as (typeof ADMIN_OPS)[number]))
    problems.push(`${at}: "${op}" is not an admin action (${ADMIN_OPS.join(', ')})`);
  return { op, args, as };
}

function parseExpect(v: unknown, at: string, problems: string[]): Expect {
  if (v === undefined) return { kind: 'any' };
  if (typeof v === 'number') return { kind: 'ret', value: v };
  if (v === 'ok') return { kind: 'ok' };
  if (typeof v === 'string') {
    const e = errnoByName(v);
    if (e === undefined) {
      problems.push(`${at}.expect: "${v}" is neither a number, "ok", nor an errno name (EINVAL, EBUSY, ...)`);
      return { kind: 'any' };
    }
    return { kind: 'errno', name: v, value: e };
  }
  problems.push(`${at}.expect: must be a return value, "ok", or an errno name`);
  return { kind: 'any' };
}

function parseStep(raw: unknown, i: number, procs: Set<string>, problems: string[]): Step | null {
  const at = `steps[${i}]`;
  if (typeof raw === 'string') {
    problems.push(`${at}: a step is a mapping "<process|admin|say>: <action>", got a string`);
    return null;
  }
  if (!isObj(raw)) {
    problems.push(`${at}: a step must be a mapping`);
    return null;
  }
  const actors = Object.keys(raw).filter((k) => !STEP_KEYS.includes(k));
  if (actors.length !== 1) {
    problems.push(`${at}: needs exactly one of ${['say', 'admin', ...procs].join(', ')} (found ${actors.join(', ') || 'none'})`);
    return null;
  }
  const actor = actors[0]!;
  const body = raw[actor];
  const step: Step = {
    index: i + 1,
    actor,
    op: '',
    args: {},
    as: typeof raw.as === 'string' ? raw.as : null,
    expect: parseExpect(raw.expect, at, problems),
    expectOut: isObj(raw.out) ? (raw.out as Record<string, Value>) : null,
    expectText: typeof raw.text === 'string' ? raw.text : null,
    note: typeof raw.note === 'string' ? raw.note : null,
  };
  if (raw.out !== undefined && !isObj(raw.out)) problems.push(`${at}.out: must be a mapping of expected output fields`);
  if (actor === 'say') {
    if (typeof body !== 'string') problems.push(`${at}.say: must be a string`);
    step.op = 'say';
    step.args = { text: String(body ?? '') };
    return step;
  }
  if (actor !== 'admin' && !procs.has(actor)) {
    problems.push(`${at}: unknown process "${actor}" (declared: ${[...procs].join(', ') || 'none'}; forked children become known from their "as")`);
    return null;
  }
  if (typeof body === 'string') {
    const sh = parseShorthand(actor, body, at, problems);
    if (!sh) return null;
    step.op = sh.op;
    step.args = sh.args;
    if (sh.as) step.as = sh.as;
  } else if (isObj(body)) {
    const ops = Object.keys(body).filter((k) =>
      (actor === 'admin' ? (ADMIN_OPS as readonly string[]) : (PROCESS_OPS as readonly string[])).includes(k),
    );
    if (ops.length !== 1) {
      problems.push(
        `${at}.${actor}: needs exactly one action of ${(actor === 'admin' ? ADMIN_OPS : PROCESS_OPS).join(', ')}`,
      );
      return null;
    }
    step.op = ops[0]!;
    const { [step.op]: main, ...rest } = body;
    step.args = { ...(rest as Record<string, Value>), main: main as Value };
  } else {
    problems.push(`${at}.${actor}: must be an action (a string like "open /dev/iommu as iommufd", or a mapping)`);
    return null;
  }
  if (step.op === 'fork' && step.as) procs.add(step.as);
  return step;
}

export function parseScenario(text: string, source = '<scenario>'): Scenario {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new ScenarioError([`not valid YAML: ${(e as Error).message.split('\n')[0]}`], source);
  }
  const problems: string[] = [];
  if (!isObj(raw)) throw new ScenarioError(['the scenario must be a mapping with "steps"'], source);
  const TOP = ['description', 'host', 'processes', 'steps', 'threads', 'invariants', 'variant', 'variants', 'explore'];
  for (const k of Object.keys(raw))
    if (!TOP.includes(k)) problems.push(`${k}: unknown field (known: ${TOP.join(', ')})`);
  const host = raw.host === undefined ? 'default' : raw.host;
  if (typeof host !== 'string' && !isObj(host)) problems.push('host: must be "default", a topology file path, or an inline topology');
  const processes: ProcessDef[] = [];
  if (raw.processes !== undefined) {
    if (!isObj(raw.processes)) problems.push('processes: must be a mapping of name -> { uid, gid, caps }');
    else
      for (const [name, p] of Object.entries(raw.processes)) {
        const o = p === null ? {} : p;
        if (!isObj(o)) {
          problems.push(`processes.${name}: must be a mapping (or empty)`);
          continue;
        }
        for (const k of Object.keys(o)) if (!['uid', 'gid', 'caps'].includes(k)) problems.push(`processes.${name}.${k}: unknown field (uid, gid, caps)`);
        const uid = o.uid === undefined ? 0 : o.uid;
        if (typeof uid !== 'number' || !Number.isInteger(uid) || uid < 0) problems.push(`processes.${name}.uid: must be a non-negative integer`);
        const caps = o.caps === undefined ? null : o.caps;
        if (caps !== null && (!Array.isArray(caps) || caps.some((c) => typeof c !== 'string' || !/^CAP_[A-Z_]+$/.test(c))))
          problems.push(`processes.${name}.caps: must be a list of capability names like CAP_SYS_RAWIO`);
        processes.push({
          name,
          uid: typeof uid === 'number' ? uid : 0,
          gid: typeof o.gid === 'number' ? o.gid : typeof uid === 'number' ? uid : 0,
          caps: caps as string[] | null,
        });
      }
  }
  const procNames = new Set(processes.map((p) => p.name));
  const steps: Step[] = [];
  const hasThreads = raw.threads !== undefined;
  if (raw.steps === undefined && hasThreads) {
    // an explorer scenario may have no setup steps
  } else if (!Array.isArray(raw.steps) || (raw.steps.length === 0 && !hasThreads)) problems.push('steps: must be a non-empty list');
  else
    raw.steps.forEach((s: unknown, i: number) => {
      const st = parseStep(s, i, procNames, problems);
      if (st) steps.push(st);
    });
  const threads = hasThreads ? parseThreads(raw.threads, procNames, steps, problems) : [];
  const invariants = parseInvariants(raw.invariants, problems);
  const variants: string[] = [];
  for (const key of ['variant', 'variants'] as const) {
    const v = raw[key];
    if (v === undefined) continue;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) problems.push(`${key}: must be a variant name or a list of them`);
    else variants.push(...(list as string[]));
  }
  const explore = parseExploreDefaults(raw.explore, problems);
  if (problems.length) throw new ScenarioError(problems, source);
  return {
    source,
    description: typeof raw.description === 'string' ? raw.description : '',
    host: host as Scenario['host'],
    processes,
    steps,
    threads,
    invariants,
    variants,
    explore,
  };
}

// ---- explorer extensions ------------------------------------------------------------------------

/** `$name` and `$name.field` references, and fd names, a step uses. */
function namesUsed(step: Step): string[] {
  const out: string[] = [];
  const visit = (v: unknown, fdField: boolean): void => {
    if (typeof v === 'string') {
      if (v.startsWith('$')) out.push(v.slice(1).split('.')[0]!);
      else if (fdField && /^[A-Za-z_][\w-]*$/.test(v)) out.push(v);
    } else if (Array.isArray(v)) v.forEach((x) => visit(x, fdField));
    else if (isObj(v)) for (const [k, x] of Object.entries(v)) visit(x, k === 'fd' || k === 'old');
  };
  const a = step.args;
  const fdOps = ['close', 'dup', 'dup2', 'read', 'write', 'pread', 'pwrite', 'mmap', 'fstat'];
  for (const [k, v] of Object.entries(a)) visit(v, k === 'fd' || k === 'old' || (k === 'main' && fdOps.includes(step.op)));
  return out;
}

function parseThreads(raw: unknown, procs: Set<string>, setup: Step[], problems: string[]): ThreadDef[] {
  if (!isObj(raw) || Object.keys(raw).length === 0) {
    problems.push('threads: must be a mapping of thread name -> list of steps');
    return [];
  }
  const setupNames = new Set(setup.map((s) => s.as).filter((x): x is string => x !== null));
  const defined = new Map<string, string>();
  const threads: ThreadDef[] = [];
  for (const [name, list] of Object.entries(raw)) {
    const at = `threads.${name}`;
    if (!/^[A-Za-z_][\w-]*$/.test(name)) problems.push(`${at}: a thread name is a word (letters, digits, - and _)`);
    if (!Array.isArray(list) || list.length === 0) {
      problems.push(`${at}: must be a non-empty list of steps`);
      continue;
    }
    const steps: Step[] = [];
    list.forEach((s: unknown, i: number) => {
      const sub: string[] = [];
      const st = parseStep(s, i, procs, sub);
      for (const p of sub) problems.push(`${at}${p.replace(/^steps/, '')}`);
      if (!st) return;
      const where = `${at}[${i}]`;
      if (st.actor === 'say') return;
      const allowed: readonly string[] = st.actor === 'admin' ? THREAD_ADMIN_OPS : THREAD_PROCESS_OPS;
      if (!allowed.includes(st.op)) {
        problems.push(`${where}: "${st.op}" cannot be a thread step (threads may use ${allowed.join(', ')}; do it in steps:)`);
        return;
      }
      if (st.expectOut || st.expectText !== null) problems.push(`${where}: "out" and "text" are not checked in threads (use expect)`);
      steps.push(st);
    });
    // a thread may use names from steps: and from its own earlier steps, never another thread's
    const mine = new Set<string>();
    for (const st of steps) {
      for (const n of namesUsed(st)) {
        if (mine.has(n) || setupNames.has(n)) continue;
        const owner = defined.get(n);
        problems.push(
          owner
            ? `${at}[${st.index - 1}]: uses "${n}", defined by thread ${owner}; a thread may use names from steps: and from its own earlier steps`
            : `${at}[${st.index - 1}]: uses "${n}", which no earlier step defines (with "as: ${n}")`,
        );
      }
      if (st.as) {
        mine.add(st.as);
        if (!defined.has(st.as)) defined.set(st.as, name);
      }
    }
    threads.push({ name, steps });
  }
  return threads;
}

function parseInvariants(raw: unknown, problems: string[]): InvariantsDef {
  const out: InvariantsDef = { disable: [], check: [] };
  if (raw === undefined) return out;
  if (!isObj(raw)) {
    problems.push('invariants: must be a mapping with "disable" (built-in names) and/or "check" (a list)');
    return out;
  }
  for (const k of Object.keys(raw)) if (k !== 'disable' && k !== 'check') problems.push(`invariants.${k}: unknown field (disable, check)`);
  if (raw.disable !== undefined) {
    if (!Array.isArray(raw.disable)) problems.push('invariants.disable: must be a list of built-in invariant names');
    else
      for (const n of raw.disable) {
        if (!(BUILTIN_INVARIANTS as readonly string[]).includes(String(n)))
          problems.push(`invariants.disable: "${n}" is not a built-in invariant (${BUILTIN_INVARIANTS.join(', ')})`);
        else out.disable.push(String(n));
      }
  }
  if (raw.check !== undefined) {
    if (!Array.isArray(raw.check)) problems.push('invariants.check: must be a list of { name, expr, at } or { module }');
    else
      raw.check.forEach((c: unknown, i: number) => {
        const at = `invariants.check[${i}]`;
        if (!isObj(c)) {
          problems.push(`${at}: must be a mapping { name, expr, at } or { module }`);
          return;
        }
        for (const k of Object.keys(c)) if (!['name', 'expr', 'module', 'at'].includes(k)) problems.push(`${at}.${k}: unknown field (name, expr, module, at)`);
        const when = c.at === undefined ? 'step' : c.at;
        if (when !== 'step' && when !== 'end') problems.push(`${at}.at: must be "step" or "end"`);
        if ((c.expr === undefined) === (c.module === undefined)) problems.push(`${at}: needs exactly one of expr, module`);
        if (c.expr !== undefined && typeof c.expr !== 'string') problems.push(`${at}.expr: must be a string (a JavaScript expression)`);
        if (c.module !== undefined && typeof c.module !== 'string') problems.push(`${at}.module: must be a path`);
        if (typeof c.expr === 'string') {
          try {
            new Function(`return (${c.expr});`);
          } catch (e) {
            problems.push(`${at}.expr: not a valid expression: ${(e as Error).message}`);
          }
        }
        const name = typeof c.name === 'string' ? c.name : typeof c.expr === 'string' ? c.expr : String(c.module);
        out.check.push({
          name,
          at: when === 'end' ? 'end' : 'step',
          ...(typeof c.expr === 'string' ? { expr: c.expr } : {}),
          ...(typeof c.module === 'string' ? { module: c.module } : {}),
        });
      });
  }
  return out;
}

function parseExploreDefaults(raw: unknown, problems: string[]): ExploreDefaults {
  const out: ExploreDefaults = {};
  if (raw === undefined) return out;
  if (!isObj(raw)) {
    problems.push('explore: must be a mapping { timeouts, depth }');
    return out;
  }
  for (const [k, v] of Object.entries(raw)) {
    if (k !== 'timeouts' && k !== 'depth') {
      problems.push(`explore.${k}: unknown field (timeouts, depth)`);
      continue;
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) problems.push(`explore.${k}: must be a non-negative integer`);
    else out[k] = v;
  }
  return out;
}
