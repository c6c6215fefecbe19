// Runs a scenario on a host: each step is a syscall of a named process (through the in-process
// API), an administrator action, or narration. Every step records what it called, what it got,
// the kernel events it caused, and whether its expectation held.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AdminTask, Host } from '../host/host.js';
import { validateTopology } from '../host/topology.js';
import { PendingCall, Process } from '../api/process.js';
import { errnoName } from '../kernel/errno.js';
import { TraceEvent } from '../kernel/trace.js';
import { Decoded, decode, encode } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import { Scenario, Step, Value, parseScenario } from './scenario.js';
import { OPEN_FLAGS, ValueResolver, ioctlArg, openFlags, parseBytes, readBack, retFailure } from './args.js';

export interface StepResult {
  step: Step;
  /** the process name, 'admin' or 'say' */
  actor: string;
  pid?: number;
  /** the call as text: ioctl(dev, VFIO_DEVICE_GET_INFO, {argsz=24}) */
  call: string;
  /** libc-style return value (-1 on error) */
  ret?: number;
  errno?: string;
  /** fields written back into the argument struct */
  out?: Decoded;
  /** the argument struct as passed in */
  in?: Decoded;
  /** text output (cat, readlink, readdir, stat) */
  text?: string;
  /** kernel events (and admin events) that happened during the step */
  events: TraceEvent[];
  /** why the expectation failed, if it did */
  failure?: string;
}

export interface RunResult {
  scenario: Scenario;
  host: Host;
  results: StepResult[];
  failures: StepResult[];
}

type Var =
  | { kind: 'fd'; proc: string; fd: number }
  | { kind: 'struct'; fields: Decoded }
  | { kind: 'admin'; task: AdminTask }
  | { kind: 'pending'; call: PendingCall }
  | { kind: 'value'; value: number };

/** Boot the scenario's host. */
export function scenarioHost(sc: Scenario, override?: string): Host {
  if (override) return Host.fromFile(override);
  if (sc.host === 'default') return new Host();
  if (typeof sc.host === 'string') {
    const base = sc.source.startsWith('<') ? process.cwd() : dirname(resolve(sc.source));
    return Host.fromFile(resolve(base, sc.host));
  }
  return new Host(validateTopology(sc.host, `${sc.source}: host`));
}

export function loadScenario(path: string): Scenario {
  return parseScenario(readFileSync(path, 'utf8'), path);
}

export class ScenarioRunner {
  readonly procs = new Map<string, Process>();
  readonly vars = new Map<string, Var>();
  readonly results: StepResult[] = [];
  private pendingEvents: TraceEvent[] = [];

  constructor(
    readonly scenario: Scenario,
    readonly host: Host,
  ) {
    for (const p of scenario.processes)
      this.procs.set(
        p.name,
        new Process(host, { name: p.name, uid: p.uid, gid: p.gid, ...(p.caps ? { caps: p.caps } : {}) }),
      );
    host.kernel.trace.subscribe((e) => {
      if (e.kind === 'op') return;
      this.pendingEvents.push(e);
    });
  }

  /**
   * Run every step; stops at an exception (a model bug), not at a failed expectation. An explorer
   * scenario's threads run after the steps, one thread after the other (one of the interleavings
   * `vfiosim explore` explores).
   */
  runAll(onStep?: (r: StepResult) => void): StepResult[] {
    for (const step of [...this.scenario.steps, ...(this.scenario.threads ?? []).flatMap((t) => t.steps)]) {
      const r = this.runStep(step);
      onStep?.(r);
    }
    return this.results;
  }

  runStep(step: Step): StepResult {
    this.pendingEvents = [];
    const r: StepResult = { step, actor: step.actor, call: '', events: [] };
    try {
      if (step.actor === 'say') r.call = String(step.args.text);
      else if (step.actor === 'admin') this.admin(step, r);
      else this.syscall(step, r);
    } catch (e) {
      if (e instanceof StepError) r.failure = e.message;
      else throw e;
    }
    r.events = this.pendingEvents.filter((e) => e.kind !== 'syscall');
    this.pendingEvents = [];
    if (!r.failure) {
      try {
        r.failure = this.checkExpect(step, r);
      } catch (e) {
        // an expectation naming an unbound $variable is a failure of the step, not a crash
        if (e instanceof StepError) r.failure = e.message;
        else throw e;
      }
    }
    this.results.push(r);
    return r;
  }

  private checkExpect(step: Step, r: StepResult): string | undefined {
    const e = step.expect;
    if (r.ret !== undefined) {
      const f = retFailure(e, r.ret, r.errno);
      if (f) return f;
    }
    if (step.expectOut) {
      if (!r.out) return 'expected output fields, but the call wrote none';
      for (const [k, v] of Object.entries(step.expectOut)) {
        const got = r.out[k];
        const want = this.resolve(v as Value);
        if (got === undefined || BigInt(got as number | bigint) !== BigInt(want as number | bigint))
          return `expected ${k}=${fmtVal(want)}, got ${got === undefined ? 'nothing' : fmtVal(got as number)}`;
      }
    }
    if (step.expectText !== null && r.text !== step.expectText)
      return `expected text ${JSON.stringify(step.expectText)}, got ${JSON.stringify(r.text)}`;
    return undefined;
  }

  // ---- values ------------------------------------------------------------------------------------

  private readonly values = new ValueResolver(
    (name) => this.vars.get(name),
    StepError,
    (name) => new StepError(`no variable "${name}" (define it with "as: ${name}")`),
    (name, what) => new StepError(`${what}: no fd named "${name}"`),
  );

  /** $name, $name.field, constant names, numbers */
  resolve(v: Value): Value {
    return this.values.resolve(v);
  }

  private num(v: Value | undefined, what: string): number {
    return this.values.num(v, what);
  }

  private fd(v: Value | undefined, what = 'fd'): number {
    return this.values.fd(v, what);
  }

  /** per process: fd number -> the name it was given (kept current across close/dup/exit) */
  private readonly fdNames = new Map<string, Map<number, string>>();

  private fdName(p: string, fd: number): string {
    return this.fdNames.get(p)?.get(fd) ?? String(fd);
  }

  private nameFd(p: string, fd: number, name: string | null): void {
    let m = this.fdNames.get(p);
    if (!m) this.fdNames.set(p, (m = new Map()));
    if (name) {
      m.set(fd, name);
      this.vars.set(name, { kind: 'fd', proc: p, fd });
    } else m.delete(fd);
  }

  // ---- process steps -------------------------------------------------------------------------------

  private proc(step: Step): Process {
    const p = this.procs.get(step.actor);
    if (!p) throw new StepError(`process "${step.actor}" does not exist (yet)`);
    return p;
  }

  private syscall(step: Step, r: StepResult): void {
    const p = this.proc(step);
    r.pid = p.pid;
    const a = step.args;
    const main = a.main;
    const setRet = (ret: number) => {
      r.ret = ret;
      if (ret < 0) r.errno = errnoName(p.errno);
    };
    switch (step.op) {
      case 'open': {
        const path = String(a.path ?? main);
        const flags = openFlags(a.flags, StepError);
        r.call = `open("${path}", ${fmtFlags(flags)})`;
        setRet(p.open(path, flags));
        if (r.ret! >= 0) this.nameFd(step.actor, r.ret!, step.as);
        return;
      }
      case 'close': {
        const fd = this.fd(a.fd ?? main);
        r.call = `close(${this.fdName(step.actor, fd)})`;
        setRet(p.close(fd));
        if (r.ret === 0) this.nameFd(step.actor, fd, null);
        return;
      }
      case 'dup': {
        const fd = this.fd(a.fd ?? main);
        r.call = `dup(${this.fdName(step.actor, fd)})`;
        setRet(p.dup(fd));
        if (r.ret! >= 0) this.nameFd(step.actor, r.ret!, step.as);
        return;
      }
      case 'dup2': {
        const [o, n] = Array.isArray(main) ? main : [a.old, a.new];
        const oldfd = this.fd(o as Value);
        const newfd = this.num(n as Value, 'newfd');
        r.call = `dup2(${this.fdName(step.actor, oldfd)}, ${newfd})`;
        setRet(p.dup2(oldfd, newfd));
        if (r.ret! >= 0) this.nameFd(step.actor, r.ret!, step.as);
        return;
      }
      case 'fork': {
        const name = step.as ?? `${step.actor}-child`;
        r.call = 'fork()';
        const child = p.fork(name);
        this.procs.set(name, child);
        // the child inherits the parent's fds under the same names
        for (const [fd, n] of this.fdNames.get(step.actor) ?? []) {
          let m = this.fdNames.get(name);
          if (!m) this.fdNames.set(name, (m = new Map()));
          m.set(fd, n);
        }
        setRet(child.pid);
        return;
      }
      case 'exit': {
        const code = this.num(a.code ?? main ?? 0, 'code');
        r.call = `exit(${code})`;
        p.exit(code);
        this.fdNames.delete(step.actor);
        r.ret = 0;
        return;
      }
      case 'exec':
        r.call = 'execve()';
        setRet(p.exec());
        return;
      case 'eventfd':
        r.call = 'eventfd(0, 0)';
        setRet(p.eventfd(this.num(a.initval ?? 0, 'initval'), this.num(a.flags ?? 0, 'flags')));
        if (r.ret! >= 0) this.nameFd(step.actor, r.ret!, step.as);
        return;
      case 'ioctl':
        this.ioctl(step, p, r, setRet);
        return;
      case 'read':
      case 'pread': {
        const fd = this.fd(a.fd ?? main);
        const count = this.num(a.count ?? 4, 'count');
        const off = step.op === 'pread' ? BigInt(this.num(a.offset ?? 0, 'offset')) : undefined;
        r.call = `${step.op}(${this.fdName(step.actor, fd)}, ${count}${off !== undefined ? ', 0x' + off.toString(16) : ''})`;
        const b = p.readBytes(fd, count, off);
        if (b === null) setRet(-1);
        else {
          setRet(b.length);
          r.text = hexBytes(b);
        }
        return;
      }
      case 'write':
      case 'pwrite': {
        const fd = this.fd(a.fd ?? main);
        const data = parseBytes(a.data ?? '', StepError);
        const off = step.op === 'pwrite' ? BigInt(this.num(a.offset ?? 0, 'offset')) : undefined;
        r.call = `${step.op}(${this.fdName(step.actor, fd)}, ${hexBytes(data)}${off !== undefined ? ', 0x' + off.toString(16) : ''})`;
        setRet(p.writeBytes(fd, data, off));
        return;
      }
      case 'mmap': {
        const fd = this.fd(a.fd ?? main);
        const length = this.num(a.length ?? 4096, 'length');
        const offset = this.num(a.offset ?? 0, 'offset');
        r.call = `mmap(NULL, ${length}, PROT_READ|PROT_WRITE, MAP_SHARED, ${this.fdName(step.actor, fd)}, 0x${offset.toString(16)})`;
        setRet(p.mmap(length, 3, 1, fd, offset));
        return;
      }
      case 'fstat': {
        const fd = this.fd(a.fd ?? main);
        r.call = `fstat(${this.fdName(step.actor, fd)})`;
        const st = p.fstat(fd);
        setRet(st ? 0 : -1);
        if (st) r.text = fmtStat(st);
        return;
      }
      case 'stat': {
        const path = String(a.path ?? main);
        r.call = `stat("${path}")`;
        const st = p.stat(path);
        setRet(st ? 0 : -1);
        if (st) r.text = fmtStat(st);
        return;
      }
      case 'readlink': {
        const path = String(a.path ?? main);
        r.call = `readlink("${path}")`;
        const t = p.readlink(path);
        setRet(t === null ? -1 : t.length);
        if (t !== null) r.text = t;
        return;
      }
      case 'readdir': {
        const path = String(a.path ?? main);
        r.call = `readdir("${path}")`;
        const t = p.readdir(path);
        setRet(t === null ? -1 : t.length);
        if (t !== null) r.text = t.filter((n) => n !== '.' && n !== '..').sort().join(' ');
        return;
      }
      case 'cat': {
        const path = String(a.path ?? main);
        r.call = `cat ${path}`;
        const t = p.readFile(path);
        setRet(t === null ? -1 : t.length);
        if (t !== null) r.text = t;
        return;
      }
      case 'echo': {
        const path = String(a.to ?? a.path);
        const text = String(main);
        r.call = `echo ${JSON.stringify(text)} > ${path}`;
        setRet(p.writeFile(path, text));
        return;
      }
      default:
        throw new StepError(`"${step.op}" is not supported for processes`);
    }
  }

  private ioctl(step: Step, p: Process, r: StepResult, setRet: (n: number) => void): void {
    const a = step.args;
    const fd = this.fd(a.fd);
    const argv = a.arg;
    const io = ioctlArg(p, fd, a.main, argv, this.values, StepError);
    let shown = '';
    if (io.form === 'pointer') shown = argv as string;
    else if (io.form === 'value') shown = typeof argv === 'string' ? argv : String(io.arg);
    else if (io.form === 'string') shown = JSON.stringify(io.str);
    else if (io.form === 'struct') {
      const def = io.readBack!.def;
      r.in = decode(def, encode(def, io.fields!, def.size));
      shown = '{' + Object.entries(argv as Record<string, Value>).map(([k, v]) => `${k}=${fmtVal(v)}`).join(', ') + '}';
    } else if (io.form === 's32') shown = `&${fmtVal(argv ?? 0)}`;
    r.call = `ioctl(${this.fdName(step.actor, fd)}, ${io.name}${shown ? ', ' + shown : ''})`;
    const ret = p.ioctl(fd, io.cmd, io.arg);
    setRet(ret);
    // some ioctls write back on error too (EMSGSIZE, ENOSPC)
    if (io.readBack && (ret >= 0 || step.expectOut)) r.out = readBack(p, io.readBack);
    if (io.cmd === U.VFIO_GROUP_GET_DEVICE_FD && ret >= 0) this.nameFd(step.actor, ret, step.as);
    else if (step.as) {
      if (r.out) this.vars.set(step.as, { kind: 'struct', fields: r.out });
      else if (ret >= 0) this.vars.set(step.as, { kind: 'value', value: ret });
    }
  }

  // ---- admin steps ---------------------------------------------------------------------------------

  private admin(step: Step, r: StepResult): void {
    const a = step.args;
    const h = this.host;
    const dev = String(a.device ?? a.main ?? '');
    switch (step.op) {
      case 'bind': {
        const driver = String(a.driver ?? 'vfio-pci');
        r.call = `bind ${dev} to ${driver}`;
        const ret = h.bind(dev, driver);
        r.ret = ret < 0 ? -1 : ret;
        if (ret < 0) r.errno = errnoName(ret);
        return;
      }
      case 'unbind':
      case 'hot_unplug': {
        r.call = `${step.op === 'unbind' ? 'unbind' : 'hot-unplug'} ${dev}`;
        const t = step.op === 'unbind' ? h.unbind(dev) : h.hotUnplug(dev);
        if (step.as) this.vars.set(step.as, { kind: 'admin', task: t });
        r.text = t.done ? 'done' : 'waiting';
        r.ret = t.done ? (t.result! < 0 ? -1 : 0) : 0;
        return;
      }
      case 'advance': {
        const ms = this.num(a.ms ?? a.main, 'ms');
        r.call = `advance ${ms} ms`;
        h.advanceTime(ms);
        r.ret = 0;
        return;
      }
      case 'wait': {
        const name = String(a.task ?? a.main);
        const v = this.vars.get(name);
        r.call = `wait ${name}`;
        if (!v || v.kind !== 'admin') throw new StepError(`"${name}" is not an admin task`);
        r.text = v.task.done ? 'done' : 'waiting';
        if (!v.task.done) r.failure = `${name} (${v.task.name}) is still waiting`;
        r.ret = 0;
        return;
      }
    }
    throw new StepError(`unknown admin action ${step.op}`);
  }
}

class StepError extends Error {}

/** Parse, boot and run a scenario file. */
export function runScenarioFile(path: string, opts: { host?: string; onStep?: (r: StepResult) => void } = {}): RunResult {
  const sc = loadScenario(path);
  return runScenario(sc, opts);
}

export function runScenario(sc: Scenario, opts: { host?: string; onStep?: (r: StepResult) => void; hostObj?: Host } = {}): RunResult {
  const host = opts.hostObj ?? scenarioHost(sc, opts.host);
  const runner = new ScenarioRunner(sc, host);
  const results = runner.runAll(opts.onStep);
  return { scenario: sc, host, results, failures: results.filter((r) => r.failure) };
}

// ---- formatting helpers ---------------------------------------------------------------------------

export function fmtVal(v: unknown): string {
  if (typeof v === 'bigint') return v > 9n ? '0x' + v.toString(16) : v.toString();
  if (typeof v === 'number') return v > 9 || v < -9 ? (v < 0 ? String(v) : '0x' + v.toString(16)) : String(v);
  if (typeof v === 'string') return v.startsWith('$') ? v.slice(1) : v;
  if (v && typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v);
}

function fmtFlags(f: number): string {
  const acc = ['O_RDONLY', 'O_WRONLY', 'O_RDWR'][f & 3] ?? String(f & 3);
  const rest = Object.entries(OPEN_FLAGS)
    .filter(([n, v]) => v > 2 && f & v && !n.startsWith('O_RD'))
    .map(([n]) => n);
  return [acc, ...rest].join('|');
}

function fmtStat(st: { mode: number; rdevMajor: number; rdevMinor: number; ino: number }): string {
  return `mode=0${st.mode.toString(8)} rdev=${st.rdevMajor}:${st.rdevMinor}`;
}

function hexBytes(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}
