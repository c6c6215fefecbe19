// The steps of an explorer thread. Each step (a syscall of a process, or an administrator's
// kernel event) is started as one task the exploring scheduler interleaves with the others; when
// the task returns, its result is checked against the step's `expect` and named with its `as`.
// Arguments are built exactly as `vfiosim run` builds them (ioctl structs in the process's
// memory, $name and $name.field references, constant names).

import type { Host } from '../host/host.js';
import type { Process } from '../api/process.js';
import { errnoName } from '../kernel/errno.js';
import { File } from '../kernel/fs/file.js';
import { KGen, Task } from '../kernel/sched.js';
import { exitFiles, execFiles } from '../kernel/process.js';
import { fput } from '../kernel/fs/file.js';
import {
  sysClose, sysDup, sysDup2, sysIoctl, sysMmapFile, sysOpen, sysPread, sysPwrite, sysRead, sysWrite,
} from '../kernel/syscalls.js';
import { AddressSpace } from '../kernel/uaccess.js';
import { Decoded, StructDef, decode, encode } from '../uapi/layout.js';
import { IOCTLS, IoctlInfo, ioctlByName, FileKind } from '../uapi/ioctls.js';
import * as U from '../uapi/vfio.js';
import * as I from '../uapi/iommufd.js';
import { Step, Value } from '../scenario/scenario.js';
import { fileKind } from '../api/process.js';

export type TVar =
  | { kind: 'fd'; proc: string; fd: number }
  | { kind: 'struct'; fields: Decoded }
  | { kind: 'value'; value: number }
  | { kind: 'other' };

/** What a thread step needs from its execution. */
export interface StepEnv {
  host: Host;
  procs: Map<string, Process>;
  /** names bound by the setup steps (fds, structs, values) */
  setupVar(name: string): TVar | undefined;
}

export interface ThreadVars {
  vars: Map<string, TVar>;
}

/** A started step: its task (null when it completed without one) and how to finish it. */
export interface StartedStep {
  task: Task | null;
  call: string;
  /** the libc-style outcome once the task is done */
  finish(): StepOutcome;
}

export interface StepOutcome {
  /** libc-style return value (-1 on error); undefined when skipped */
  ret?: number;
  errno?: string;
  /** why the step did nothing (a name its call needs was never bound, the process exited) */
  skipped?: string;
  /** failed expectation */
  failure?: string;
}

const CONSTANTS: Record<string, number> = {};
for (const [k, v] of Object.entries({ ...U, ...I })) if (typeof v === 'number') CONSTANTS[k] = v;
const OPEN_FLAGS: Record<string, number> = {
  O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 0o100, O_EXCL: 0o200, O_NONBLOCK: 0o4000, O_DIRECTORY: 0o200000,
  O_NOFOLLOW: 0o400000, O_CLOEXEC: 0o2000000,
};

/** A name the step needs is not bound (its defining call failed in this interleaving). */
class Unbound extends Error {}
/** The scenario asks for something impossible (bad constant, wrong kind of name). */
export class ThreadStepError extends Error {}

class Resolver {
  constructor(
    private readonly env: StepEnv,
    private readonly th: ThreadVars,
  ) {}

  get(name: string): TVar | undefined {
    return this.th.vars.get(name) ?? this.env.setupVar(name);
  }

  resolve(v: Value): Value {
    if (typeof v === 'string') {
      if (v.startsWith('$')) {
        const [name, field] = v.slice(1).split('.', 2) as [string, string | undefined];
        const x = this.get(name);
        if (!x) throw new Unbound(name);
        if (field !== undefined) {
          if (x.kind !== 'struct') throw new ThreadStepError(`"${name}" has no fields`);
          const f = x.fields[field];
          if (f === undefined) throw new ThreadStepError(`"${name}" has no field "${field}"`);
          return f as Value;
        }
        if (x.kind === 'fd') return x.fd;
        if (x.kind === 'value') return x.value;
        throw new ThreadStepError(`"${name}" is not a value`);
      }
      if (v in CONSTANTS) return CONSTANTS[v]!;
      if (/^-?(0x[0-9a-fA-F]+|\d+)$/.test(v)) return v.startsWith('-') ? -Number(v.slice(1)) : Number(v);
    }
    return v;
  }

  num(v: Value | undefined, what: string): number {
    const r = this.resolve(v ?? 0);
    if (typeof r === 'bigint') return Number(r);
    if (typeof r !== 'number') throw new ThreadStepError(`${what}: expected a number, got ${JSON.stringify(r)}`);
    return r;
  }

  fd(v: Value | undefined): number {
    if (typeof v === 'string' && !v.startsWith('$')) {
      const x = this.get(v);
      if (x?.kind === 'fd') return x.fd;
      if (!/^(0x)?[0-9a-fA-F]+$/.test(v)) throw new Unbound(v);
    }
    return this.num(v, 'fd');
  }
}

function fmtArg(v: unknown): string {
  if (typeof v === 'string') return v.startsWith('$') ? v.slice(1) : v;
  if (typeof v === 'number') return v > 9 ? '0x' + v.toString(16) : String(v);
  if (v && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** The call as the trace shows it: ioctl(dev, VFIO_DEVICE_GET_INFO, {argsz=24}). */
export function describeStep(step: Step): string {
  const a = step.args;
  const main = a.main;
  if (step.actor === 'admin') {
    if (step.op === 'advance') return `advance ${fmtArg(a.ms ?? main)} ms`;
    return `${step.op === 'hot_unplug' ? 'hot-unplug' : step.op} ${fmtArg(a.device ?? main)}`;
  }
  switch (step.op) {
    case 'open':
      return `open("${fmtArg(a.path ?? main)}")`;
    case 'ioctl': {
      const argv = a.arg;
      let shown = '';
      if (argv !== undefined) {
        if (argv && typeof argv === 'object' && !Array.isArray(argv))
          shown = '{' + Object.entries(argv).map(([k, v]) => `${k}=${fmtArg(v)}`).join(', ') + '}';
        else shown = fmtArg(argv);
      }
      return `ioctl(${fmtArg(a.fd)}, ${fmtArg(main)}${shown ? ', ' + shown : ''})`;
    }
    case 'exit':
    case 'exec':
      return step.op === 'exit' ? `exit(${fmtArg(a.code ?? main ?? 0)})` : 'execve()';
    case 'dup2': {
      const [o, n] = Array.isArray(main) ? main : [a.old, a.new];
      return `dup2(${fmtArg(o)}, ${fmtArg(n)})`;
    }
    default:
      return `${step.op}(${fmtArg(a.fd ?? main)})`;
  }
}

function parseBytes(v: Value): Uint8Array {
  if (typeof v === 'string') {
    const hex = v.replace(/[\s:]/g, '');
    if (/^([0-9a-fA-F]{2})*$/.test(hex) && hex.length) return Uint8Array.from(hex.match(/../g)!.map((x) => parseInt(x, 16)));
    return new TextEncoder().encode(v);
  }
  if (Array.isArray(v)) return Uint8Array.from(v.map((x) => Number(x)));
  throw new ThreadStepError('bytes: expected a hex string or a list of numbers');
}

function uuidBytes(s: string): Uint8Array | null {
  const h = s.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(h)) return null;
  return Uint8Array.from(h.match(/../g)!.map((x) => parseInt(x, 16)));
}

function flagsOf(v: Value | undefined): number {
  if (v === undefined) return 2;
  if (typeof v === 'number') return v;
  return String(v)
    .split('|')
    .map((s) => s.trim())
    .reduce((acc, s) => {
      if (!(s in OPEN_FLAGS)) throw new ThreadStepError(`unknown open flag ${s}`);
      return acc | OPEN_FLAGS[s]!;
    }, 0);
}

/** Process.mappings (the mappings a process holds file references through). */
interface MappingHolder {
  mappings: Array<{ addr: number; length: number; file: File }>;
}

/**
 * Start a thread step: build its arguments, start its task (which the exploring scheduler only
 * registers), and return how to finish it once the task is done.
 */
export function startThreadStep(env: StepEnv, th: ThreadVars, step: Step, tid: number): StartedStep {
  const r = new Resolver(env, th);
  const call = describeStep(step);
  const skipped = (why: string): StartedStep => ({ task: null, call, finish: () => ({ skipped: why }) });
  try {
    if (step.actor === 'admin') return startAdmin(env, step, r, call);
    const p = env.procs.get(step.actor);
    if (!p) throw new ThreadStepError(`process "${step.actor}" does not exist`);
    if (!p.alive) return skipped(`process ${step.actor} has exited`);
    return startSyscall(env, th, p, step, r, call, tid);
  } catch (e) {
    if (e instanceof Unbound) return skipped(`"${e.message}" is not bound (the call that names it failed or did not run)`);
    throw e;
  }
}

function startAdmin(env: StepEnv, step: Step, r: Resolver, call: string): StartedStep {
  const h = env.host;
  const a = step.args;
  switch (step.op) {
    case 'unbind':
    case 'hot_unplug': {
      const dev = String(a.device ?? a.main ?? '');
      const t = step.op === 'unbind' ? h.unbind(dev) : h.hotUnplug(dev);
      return {
        task: t.task,
        call,
        finish: () => {
          if (t.task.error !== undefined) throw t.task.error;
          const res = (t.task.result as number | undefined) ?? 0;
          return res < 0 ? { ret: -1, errno: errnoName(res) } : { ret: 0 };
        },
      };
    }
    case 'advance': {
      // virtual time is not part of the explored state: timed waits time out as a choice
      const ms = r.num(a.ms ?? a.main, 'ms');
      h.kernel.clock.now += ms;
      return { task: null, call, finish: () => ({ ret: 0 }) };
    }
  }
  throw new ThreadStepError(`"${step.op}" is not an admin action a thread can do`);
}

function startSyscall(env: StepEnv, th: ThreadVars, p: Process, step: Step, r: Resolver, call: string, tid: number): StartedStep {
  const k = p.kernel;
  const kp = p.kproc;
  const a = step.args;
  const main = a.main;
  let name: string = step.op;
  let args: Record<string, unknown> = {};
  let body: KGen<number>;
  let after: (ret: number) => void = () => {};
  const nameFd = (ret: number) => {
    if (ret >= 0 && step.as) th.vars.set(step.as, { kind: 'fd', proc: step.actor, fd: ret });
  };
  switch (step.op) {
    case 'open': {
      const path = String(a.path ?? main);
      const flags = flagsOf(a.flags);
      args = { path, flags };
      body = sysOpen(kp, path, flags);
      after = nameFd;
      break;
    }
    case 'close': {
      const fd = r.fd(a.fd ?? main);
      args = { fd };
      body = sysClose(kp, fd);
      break;
    }
    case 'dup': {
      const fd = r.fd(a.fd ?? main);
      args = { fd };
      body = sysDup(kp, fd);
      after = nameFd;
      break;
    }
    case 'dup2': {
      const [o, n] = Array.isArray(main) ? main : [a.old, a.new];
      const oldfd = r.fd(o as Value);
      const newfd = r.num(n as Value, 'newfd');
      args = { oldfd, newfd };
      body = sysDup2(kp, oldfd, newfd);
      after = nameFd;
      break;
    }
    case 'read':
    case 'pread':
    case 'write':
    case 'pwrite': {
      const fd = r.fd(a.fd ?? main);
      const isRead = step.op === 'read' || step.op === 'pread';
      const data = isRead ? null : parseBytes(a.data ?? '');
      const count = isRead ? r.num(a.count ?? 4, 'count') : data!.length;
      const buf = p.mem.alloc(Math.max(1, count));
      if (data) p.mem.write(buf, data);
      const off = BigInt(r.num(a.offset ?? 0, 'offset'));
      args = { fd, count };
      name = step.op === 'pread' ? 'pread64' : step.op === 'pwrite' ? 'pwrite64' : step.op;
      body =
        step.op === 'read'
          ? sysRead(kp, fd, buf, count)
          : step.op === 'write'
            ? sysWrite(kp, fd, buf, count)
            : step.op === 'pread'
              ? sysPread(kp, fd, buf, count, off)
              : sysPwrite(kp, fd, buf, count, off);
      break;
    }
    case 'mmap': {
      const fd = r.fd(a.fd ?? main);
      const length = r.num(a.length ?? 4096, 'length');
      const offset = r.num(a.offset ?? 0, 'offset');
      let res: unknown = null;
      args = { fd, length, offset: String(offset) };
      body = (function* (): KGen<number> {
        const m = yield* sysMmapFile(kp, length, 3, 1, fd, BigInt(offset));
        res = m;
        return typeof m === 'number' ? m : 0;
      })();
      after = (ret) => {
        if (ret < 0 || !res || typeof res === 'number') return;
        // the mapping holds a file reference until exit, whether or not it has memory of its own
        const m = res as { vma: { backing?: Uint8Array }; file: File };
        const addr = m.vma.backing ? (kp.mm as AddressSpace).mapBacked(m.vma.backing, 3) : 0;
        (p as unknown as MappingHolder).mappings.push({ addr, length: m.vma.backing?.length ?? 0, file: m.file });
        if (step.as) th.vars.set(step.as, { kind: 'value', value: addr });
      };
      break;
    }
    case 'exit': {
      const code = r.num(a.code ?? main ?? 0, 'code');
      const maps = (p as unknown as MappingHolder).mappings.splice(0);
      args = { code };
      body = (function* (): KGen<number> {
        yield* exitFiles(kp);
        for (const m of maps) yield* fput(m.file);
        return 0;
      })();
      after = () => {
        kp.state = 'exited';
        kp.exitCode = code;
      };
      break;
    }
    case 'exec':
      name = 'execve';
      body = (function* (): KGen<number> {
        yield* execFiles(kp);
        return 0;
      })();
      break;
    case 'ioctl': {
      const prepared = prepareIoctl(p, step, r);
      args = { fd: prepared.fd, request: prepared.name, arg: '0x' + prepared.arg.toString(16) };
      body = sysIoctl(kp, prepared.fd, prepared.cmd, prepared.arg);
      after = (ret) => {
        if (prepared.cmd === U.VFIO_GROUP_GET_DEVICE_FD) return nameFd(ret);
        if (!step.as) return;
        if (prepared.readBack && ret >= 0) {
          const out = decode(prepared.readBack.def, p.mem.read(prepared.readBack.ptr, prepared.readBack.size));
          th.vars.set(step.as, { kind: 'struct', fields: out });
        } else if (ret >= 0) th.vars.set(step.as, { kind: 'value', value: ret });
      };
      break;
    }
    default:
      throw new ThreadStepError(`"${step.op}" cannot be a thread step`);
  }
  const task = k.startSyscall(kp, tid, name, args, body);
  return {
    task,
    call,
    finish: () => {
      if (task.error !== undefined) throw task.error;
      const ret = task.result as number;
      after(ret);
      const out: StepOutcome = ret < 0 ? { ret: -1, errno: errnoName(ret) } : { ret };
      const f = checkExpect(step, out);
      if (f) out.failure = f;
      return out;
    },
  };
}

export function checkExpect(step: Step, out: StepOutcome): string | undefined {
  const e = step.expect;
  if (out.ret === undefined) return undefined;
  if (e.kind === 'ret' && out.ret !== e.value) return `expected ${e.value}, got ${out.ret}${out.errno ? ' ' + out.errno : ''}`;
  if (e.kind === 'ok' && out.ret < 0) return `expected success, got -1 ${out.errno}`;
  if (e.kind === 'errno' && (out.ret !== -1 || out.errno !== e.name)) return `expected -1 ${e.name}, got ${out.ret}${out.errno ? ' ' + out.errno : ''}`;
  return undefined;
}

interface PreparedIoctl {
  fd: number;
  cmd: number;
  name: string;
  arg: bigint;
  readBack: { def: StructDef<string>; ptr: number; size: number } | null;
}

/** The ioctl argument, built in the process's memory as `vfiosim run` builds it. */
function prepareIoctl(p: Process, step: Step, r: Resolver): PreparedIoctl {
  const a = step.args;
  const fd = r.fd(a.fd);
  const kind: FileKind | undefined = fileKind(p.file(fd));
  const req = a.main;
  let info: IoctlInfo | undefined;
  let cmd: number;
  if (typeof req === 'string' && !/^(0x)?[0-9a-fA-F]+$/.test(req)) {
    info = ioctlByName(req);
    if (!info) throw new ThreadStepError(`unknown ioctl ${req}`);
    cmd = info.value;
  } else {
    cmd = r.num(req, 'ioctl');
    info = IOCTLS.find((i) => i.value === cmd && (!kind || i.files.includes(kind)));
  }
  const name = info?.name ?? '0x' + cmd.toString(16);
  const argv = a.arg;
  let arg = 0n;
  let readBack: PreparedIoctl['readBack'] = null;
  if (argv === 'fault' || argv === 'NULL') arg = argv === 'NULL' ? 0n : 1n;
  else if (info?.arg === 'value' || (info === undefined && typeof argv !== 'object')) arg = BigInt(r.num(argv ?? 0, 'arg'));
  else if (info?.arg === 'none') arg = 0n;
  else if (info?.arg === 'string') arg = BigInt(p.mem.cstring(String(r.resolve(argv ?? ''))));
  else if (info?.struct && typeof argv === 'object' && argv !== null && !Array.isArray(argv)) {
    const def = info.struct;
    const fields: Decoded = {};
    let size = def.size;
    for (const [k, v] of Object.entries(argv)) {
      if (k === 'bytes') {
        size = r.num(v, 'bytes');
        continue;
      }
      fields[k] = structValue(p, r, v, `${name}.${k}`);
    }
    const sf = info.sizeField;
    if (sf && fields[sf] === undefined) fields[sf] = def.size;
    size = Math.max(size, sf ? Number(fields[sf]) : def.size, def.size);
    const ptr = p.mem.alloc(size);
    p.mem.write(ptr, encode(def, fields, size));
    arg = BigInt(ptr);
    readBack = { def, ptr, size: def.size };
  } else {
    // a pointer to an s32 (VFIO_GROUP_SET_CONTAINER)
    arg = BigInt(p.mem.s32At(r.num(argv ?? 0, 'arg')));
  }
  return { fd, cmd: cmd >>> 0, name, arg, readBack };
}

function structValue(p: Process, r: Resolver, v: Value, what: string): number | bigint {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const o = v as Record<string, Value>;
    if (typeof o.uuid === 'string') {
      const b = uuidBytes(o.uuid);
      if (!b) throw new ThreadStepError(`${what}: "${o.uuid}" is not a UUID`);
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
    if (o.buffer !== undefined) return BigInt(p.mem.alloc(r.num(o.buffer, what)));
    throw new ThreadStepError(`${what}: a nested value must be { uuid: ... }, { bytes: ... } or { buffer: SIZE }`);
  }
  if (v === 'fault') return 1n;
  const x = r.resolve(v);
  if (typeof x === 'number' || typeof x === 'bigint') return x;
  throw new ThreadStepError(`${what}: expected a number, got ${JSON.stringify(x)}`);
}
