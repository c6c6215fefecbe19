// Runs a scenario on a host: each step is a syscall of a named process (through the in-process
// API), an administrator action, or narration. Every step records what it called, what it got,
// the kernel events it caused, and whether its expectation held.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AdminTask, Host } from '../host/host.js';
import { validateTopology } from '../host/topology.js';
import { PendingCall, Process, fileKind } from '../api/process.js';
import { errnoName } from '../kernel/errno.js';
import { TraceEvent } from '../kernel/trace.js';
import { Decoded, StructDef, decode, encode } from '../uapi/layout.js';
import { IOCTLS, IoctlInfo, ioctlByName } from '../uapi/ioctls.js';
import * as U from '../uapi/vfio.js';
import * as I from '../uapi/iommufd.js';
import { Scenario, Step, Value, parseScenario } from './scenario.js';

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

const CONSTANTS: Record<string, number> = {};
for (const [k, v] of Object.entries({ ...U, ...I })) if (typeof v === 'number') CONSTANTS[k] = v;
const OPEN_FLAGS: Record<string, number> = {
  O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_EXCL: 0o200, O_NONBLOCK: 0o4000, O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000, O_CLOEXEC: 0o2000000,
};

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
    if (!r.failure) r.failure = this.checkExpect(step, r);
    this.results.push(r);
    return r;
  }

  private checkExpect(step: Step, r: StepResult): string | undefined {
    const e = step.expect;
    if (r.ret !== undefined) {
      if (e.kind === 'ret' && r.ret !== e.value) return `expected ${e.value}, got ${r.ret}${r.errno ? ' ' + r.errno : ''}`;
      if (e.kind === 'ok' && r.ret < 0) return `expected success, got -1 ${r.errno}`;
      if (e.kind === 'errno' && (r.ret !== -1 || r.errno !== e.name)) return `expected -1 ${e.name}, got ${r.ret}${r.errno ? ' ' + r.errno : ''}`;
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

  /** $name, $name.field, constant names, numbers */
  resolve(v: Value): Value {
    if (typeof v === 'string') {
      if (v.startsWith('$')) {
        const [name, field] = v.slice(1).split('.', 2) as [string, string | undefined];
        const x = this.vars.get(name);
        if (!x) throw new StepError(`no variable "${name}" (define it with "as: ${name}")`);
        if (field !== undefined) {
          if (x.kind !== 'struct') throw new StepError(`"${name}" has no fields`);
          const f = x.fields[field];
          if (f === undefined) throw new StepError(`"${name}" has no field "${field}"`);
          return f as Value;
        }
        if (x.kind === 'fd') return x.fd;
        if (x.kind === 'value') return x.value;
        throw new StepError(`"${name}" is not a value`);
      }
      if (v in CONSTANTS) return CONSTANTS[v]!;
      if (/^-?(0x[0-9a-fA-F]+|\d+)$/.test(v)) return v.startsWith('-') ? -Number(v.slice(1)) : Number(v);
    }
    return v;
  }

  private num(v: Value | undefined, what: string): number {
    const r = this.resolve(v ?? 0);
    if (typeof r === 'bigint') return Number(r);
    if (typeof r !== 'number') throw new StepError(`${what}: expected a number, got ${JSON.stringify(r)}`);
    return r;
  }

  private fd(v: Value | undefined, what = 'fd'): number {
    if (typeof v === 'string' && !v.startsWith('$')) {
      const x = this.vars.get(v);
      if (x?.kind === 'fd') return x.fd;
      if (!/^(0x)?[0-9a-fA-F]+$/.test(v)) throw new StepError(`${what}: no fd named "${v}"`);
    }
    return this.num(v, what);
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

  private flags(v: Value | undefined): number {
    if (v === undefined) return 2;
    if (typeof v === 'number') return v;
    return String(v)
      .split('|')
      .map((s) => s.trim())
      .reduce((acc, s) => {
        if (!(s in OPEN_FLAGS)) throw new StepError(`unknown open flag ${s}`);
        return acc | OPEN_FLAGS[s]!;
      }, 0);
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
        const flags = this.flags(a.flags);
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
        const data = parseBytes(a.data ?? '');
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
    const kind = fileKind(p.file(fd));
    const req = a.main;
    let info: IoctlInfo | undefined;
    let cmd: number;
    if (typeof req === 'string' && !/^(0x)?[0-9a-fA-F]+$/.test(req)) {
      info = ioctlByName(req);
      if (!info) throw new StepError(`unknown ioctl ${req}`);
      cmd = info.value;
    } else {
      cmd = this.num(req, 'ioctl');
      info = IOCTLS.find((i) => i.value === cmd && (!kind || i.files.includes(kind)));
    }
    const name = info?.name ?? '0x' + cmd.toString(16);
    const argv = a.arg;
    let arg: bigint = 0n;
    let shown = '';
    let readBack: { def: StructDef<string>; ptr: number; size: number } | null = null;
    if (argv === 'fault' || argv === 'NULL') {
      arg = argv === 'NULL' ? 0n : 1n;
      shown = argv;
    } else if (info?.arg === 'value' || (info === undefined && typeof argv !== 'object')) {
      arg = BigInt(this.num(argv ?? 0, 'arg'));
      shown = typeof argv === 'string' ? argv : String(arg);
    } else if (info?.arg === 'none') {
      shown = '';
    } else if (info?.arg === 'string') {
      const s = String(this.resolve(argv ?? ''));
      arg = BigInt(p.mem.cstring(s));
      shown = JSON.stringify(s);
    } else if (info?.struct && typeof argv === 'object' && argv !== null && !Array.isArray(argv)) {
      const def = info.struct;
      const fields: Decoded = {};
      let size = def.size;
      for (const [k, v] of Object.entries(argv)) {
        if (k === 'bytes') {
          size = this.num(v, 'bytes');
          continue;
        }
        fields[k] = this.structValue(p, v, `${name}.${k}`) as number | bigint;
      }
      const sf = info.sizeField;
      if (sf && fields[sf] === undefined) fields[sf] = def.size;
      size = Math.max(size, sf ? Number(fields[sf]) : def.size, def.size);
      const ptr = p.mem.alloc(size);
      p.mem.write(ptr, encode(def, fields, size));
      arg = BigInt(ptr);
      readBack = { def, ptr, size: def.size };
      r.in = decode(def, encode(def, fields, def.size));
      shown = '{' + Object.entries(argv).map(([k, v]) => `${k}=${fmtVal(v)}`).join(', ') + '}';
    } else {
      // a pointer to an s32 (VFIO_GROUP_SET_CONTAINER)
      const v = this.num(argv ?? 0, 'arg');
      arg = BigInt(p.mem.s32At(v));
      shown = `&${fmtVal(argv ?? 0)}`;
    }
    r.call = `ioctl(${this.fdName(step.actor, fd)}, ${name}${shown ? ', ' + shown : ''})`;
    const ret = p.ioctl(fd, cmd, arg);
    setRet(ret);
    if (readBack && ret >= 0) {
      r.out = decode(readBack.def, p.mem.read(readBack.ptr, readBack.size));
    } else if (readBack && ret < 0 && step.expectOut) {
      // some ioctls write back on error (EMSGSIZE, ENOSPC)
      r.out = decode(readBack.def, p.mem.read(readBack.ptr, readBack.size));
    }
    if (cmd === U.VFIO_GROUP_GET_DEVICE_FD && ret >= 0) this.nameFd(step.actor, ret, step.as);
    else if (step.as) {
      if (r.out) this.vars.set(step.as, { kind: 'struct', fields: r.out });
      else if (ret >= 0) this.vars.set(step.as, { kind: 'value', value: ret });
    }
  }

  /** A struct field value: numbers, $refs, constants, or { uuid } / { bytes } put in memory (a pointer). */
  private structValue(p: Process, v: Value, what: string): number | bigint {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, Value>;
      if (typeof o.uuid === 'string') {
        const b = uuidBytes(o.uuid);
        if (!b) throw new StepError(`${what}: "${o.uuid}" is not a UUID`);
        const ptr = p.mem.alloc(16);
        p.mem.write(ptr, b);
        return BigInt(ptr);
      }
      if (o.bytes !== undefined) {
        const b = parseBytes(o.bytes);
        const ptr = p.mem.alloc(Math.max(1, b.length));
        p.mem.write(ptr, b);
        return BigInt(ptr);
      }
      if (o.buffer !== undefined) return BigInt(p.mem.alloc(this.num(o.buffer, what)));
      throw new StepError(`${what}: a nested value must be { uuid: ... }, { bytes: ... } or { buffer: SIZE }`);
    }
    if (v === 'fault') return 1n;
    const r = this.resolve(v);
    if (typeof r === 'number' || typeof r === 'bigint') return r;
    throw new StepError(`${what}: expected a number, got ${JSON.stringify(r)}`);
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

function parseBytes(v: Value): Uint8Array {
  if (typeof v === 'string') {
    const hex = v.replace(/[\s:]/g, '');
    if (/^([0-9a-fA-F]{2})*$/.test(hex) && hex.length) return Uint8Array.from(hex.match(/../g)!.map((x) => parseInt(x, 16)));
    return new TextEncoder().encode(v);
  }
  if (Array.isArray(v)) return Uint8Array.from(v.map((x) => Number(x)));
  throw new StepError(`bytes: expected a hex string or a list of numbers`);
}

function uuidBytes(s: string): Uint8Array | null {
  const h = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) return null;
  return Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
}
