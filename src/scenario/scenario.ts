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
  steps: Step[];
}

/** Operations a process step may use, with their main argument's name. */
export const PROCESS_OPS = [
  'open', 'close', 'ioctl', 'read', 'write', 'pread', 'pwrite', 'dup', 'dup2', 'fork', 'exit', 'exec', 'eventfd',
  'mmap', 'munmap', 'fstat', 'stat', 'readlink', 'readdir', 'cat', 'echo', 'spawn',
] as const;
export const ADMIN_OPS = ['bind', 'unbind', 'hot_unplug', 'advance', 'wait'] as const;

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
  for (const k of Object.keys(raw))
    if (!['description', 'host', 'processes', 'steps', 'threads', 'invariants', 'variant'].includes(k))
      problems.push(`${k}: unknown field (known: description, host, processes, steps)`);
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
  if (!Array.isArray(raw.steps) || raw.steps.length === 0) problems.push('steps: must be a non-empty list');
  else
    raw.steps.forEach((s: unknown, i: number) => {
      const st = parseStep(s, i, procNames, problems);
      if (st) steps.push(st);
    });
  if (problems.length) throw new ScenarioError(problems, source);
  return {
    source,
    description: typeof raw.description === 'string' ? raw.description : '',
    host: host as Scenario['host'],
    processes,
    steps,
  };
}
