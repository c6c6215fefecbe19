// The steps of an explorer thread. Each step (a syscall of a process, or an administrator's
// kernel event) is started as one task the exploring scheduler interleaves with the others; when
// the task returns, its result is checked against the step's `expect` and named with its `as`.
// Arguments are built by `vfiosim run`'s code (../scenario/args.ts: ioctl structs in the process's
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
import { Decoded } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import { Step, Value } from '../scenario/scenario.js';
import { ValueResolver, ioctlArg, openFlags, parseBytes, readBack, retFailure } from '../scenario/args.js';

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

/** A name the step needs is not bound (its defining call failed in this interleaving). */
class Unbound extends Error {}
/** The scenario asks for something impossible (bad constant, wrong kind of name). */
export class ThreadStepError extends Error {}

/** Values as `vfiosim run` resolves them; the thread's own names first, then the setup's. */
function resolver(env: StepEnv, th: ThreadVars): ValueResolver {
  return new ValueResolver(
    (name) => th.vars.get(name) ?? env.setupVar(name),
    ThreadStepError,
    (name) => new Unbound(name),
    (name) => new Unbound(name),
  );
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

/** Process.mappings (the mappings a process holds file references through). */
interface MappingHolder {
  mappings: Array<{ addr: number; length: number; file: File }>;
}

/**
 * Start a thread step: build its arguments, start its task (which the exploring scheduler only
 * registers), and return how to finish it once the task is done.
 */
export function startThreadStep(env: StepEnv, th: ThreadVars, step: Step, tid: number): StartedStep {
  const r = resolver(env, th);
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

function startAdmin(env: StepEnv, step: Step, r: ValueResolver, call: string): StartedStep {
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

function startSyscall(env: StepEnv, th: ThreadVars, p: Process, step: Step, r: ValueResolver, call: string, tid: number): StartedStep {
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
      const flags = openFlags(a.flags, ThreadStepError);
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
      const data = isRead ? null : parseBytes(a.data ?? '', ThreadStepError);
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
      // the ioctl argument, built in the process's memory as `vfiosim run` builds it
      const fd = r.fd(a.fd);
      const io = ioctlArg(p, fd, main, a.arg, r, ThreadStepError);
      const cmd = io.cmd >>> 0;
      args = { fd, request: io.name, arg: '0x' + io.arg.toString(16) };
      body = sysIoctl(kp, fd, cmd, io.arg);
      after = (ret) => {
        if (cmd === U.VFIO_GROUP_GET_DEVICE_FD) return nameFd(ret);
        if (!step.as) return;
        if (io.readBack && ret >= 0) th.vars.set(step.as, { kind: 'struct', fields: readBack(p, io.readBack) });
        else if (ret >= 0) th.vars.set(step.as, { kind: 'value', value: ret });
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
  return retFailure(e, out.ret, out.errno);
}
