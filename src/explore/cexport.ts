// A C program that reproduces the syscall side of a counterexample on a real kernel: every
// scenario process is a process (fork), every thread a pthread, the setup steps run first in
// their order, then the thread steps of the schedule are issued in the order the counterexample
// started them. What the C side can force, it forces: a call starts only after every call that
// started before it has been issued, and after every call that had returned before it started
// has returned. What it cannot force: the order of operations inside the kernel of calls that
// overlapped in the counterexample (those are issued back to back and the real scheduler decides),
// and anything a variant changes (the program runs against the real 7.2 kernel).

import type { Topology } from '../host/topology.js';
import type { Step, Value } from '../scenario/scenario.js';
import { IOCTLS, IoctlInfo, ioctlByName } from '../uapi/ioctls.js';
import * as U from '../uapi/vfio.js';
import * as I from '../uapi/iommufd.js';
import type { PreparedScenario } from './execution.js';

/** A thread step the counterexample started: its thread, its index, where it started and ended. */
export interface CallSpan {
  thread: string;
  step: number;
  start: number;
  /** the transition that ended it (null: still running when the schedule ends) */
  end: number | null;
}

const CONSTANTS = new Set<string>();
for (const [k, v] of Object.entries({ ...U, ...I })) if (typeof v === 'number') CONSTANTS.add(k);
const OPEN_FLAGS = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_CREAT', 'O_EXCL', 'O_NONBLOCK', 'O_DIRECTORY', 'O_NOFOLLOW', 'O_CLOEXEC'];

function cIdent(s: string): string {
  return s.replace(/[^A-Za-z0-9_]/g, '_');
}

function cString(s: string): string {
  return JSON.stringify(s);
}

interface VarInfo {
  c: string;
  type: 'fd' | 'struct' | 'value';
  struct?: string;
}

class Emitter {
  private readonly decls: string[] = [];
  private tmp = 0;
  /** setup variables (name -> C), per thread variables (thread -> name -> C) */
  readonly setupVars = new Map<string, VarInfo>();
  readonly threadVars = new Map<string, Map<string, VarInfo>>();

  constructor(private readonly topo: Topology) {}

  declare(line: string): void {
    this.decls.push(line);
  }

  declarations(): string[] {
    return this.decls;
  }

  fresh(prefix: string): string {
    return `${prefix}${++this.tmp}`;
  }

  bdf(dev: string): string {
    const f = this.topo.functions.find((x) => x.bdf === dev || x.name === dev);
    return f ? f.bdf : dev;
  }

  lookup(thread: string | null, name: string): VarInfo | undefined {
    return (thread ? this.threadVars.get(thread)?.get(name) : undefined) ?? this.setupVars.get(name);
  }

  define(thread: string | null, name: string, v: VarInfo): void {
    if (thread) {
      let m = this.threadVars.get(thread);
      if (!m) this.threadVars.set(thread, (m = new Map()));
      m.set(name, v);
    } else this.setupVars.set(name, v);
  }

  /** A C expression for a scenario value. */
  expr(thread: string | null, v: Value | undefined): string {
    if (v === undefined || v === null) return '0';
    if (typeof v === 'number') return v > 9 ? `0x${v.toString(16)}` : String(v);
    if (typeof v === 'bigint') return `0x${v.toString(16)}ULL`;
    if (typeof v === 'boolean') return v ? '1' : '0';
    if (typeof v === 'string') {
      if (v.startsWith('$')) {
        const [name, field] = v.slice(1).split('.', 2) as [string, string | undefined];
        const x = this.lookup(thread, name);
        if (!x) return `0 /* ${v}: unknown */`;
        return field ? `${x.c}.${field}` : x.c;
      }
      if (CONSTANTS.has(v)) return v;
      if (/^-?(0x[0-9a-fA-F]+|\d+)$/.test(v)) return v;
      const x = this.lookup(thread, v);
      if (x) return x.c;
      return `0 /* ${v}? */`;
    }
    return `0 /* unsupported value ${JSON.stringify(v)} */`;
  }

  fdExpr(thread: string | null, v: Value | undefined): string {
    if (typeof v === 'string' && !v.startsWith('$')) {
      const x = this.lookup(thread, v);
      if (x) return x.c;
    }
    return this.expr(thread, v);
  }
}

/** Whether the C program issues a step and prints its result (the others are left out or commented). */
export function reportedStep(st: Step): boolean {
  if (st.actor === 'say') return false;
  if (st.actor === 'admin') return ['unbind', 'hot_unplug', 'bind'].includes(st.op);
  return ['open', 'close', 'dup', 'dup2', 'read', 'pread', 'write', 'pwrite', 'mmap', 'ioctl'].includes(st.op);
}

/** C code (statements) for one step; sets `ret` and prints it under `id` (s1.. setup, c1.. calls). */
function stepCode(e: Emitter, proc: string, thread: string | null, st: Step, who: string, id: string): string[] {
  const a = st.args;
  const main = a.main;
  const out: string[] = [];
  const report = `report(${cString(id)}, ${cString(who)}, `;
  const call = (text: string, cexpr: string) => out.push(`ret = ${cexpr};`, `${report}${cString(text)}, ret);`);
  const bind = (kind: VarInfo['type'], struct?: string): string | null => {
    if (!st.as) return null;
    const c = `v_${thread ? cIdent(thread) + '_' : ''}${cIdent(st.as)}`;
    e.define(thread, st.as, { c, type: kind, ...(struct ? { struct } : {}) });
    e.declare(kind === 'struct' ? `static struct ${struct} ${c};` : kind === 'fd' ? `static int ${c} = -1;` : `static long ${c};`);
    return c;
  };
  if (st.actor === 'admin') {
    const dev = e.bdf(String(a.device ?? main ?? ''));
    switch (st.op) {
      case 'unbind':
        call(`unbind ${dev}`, `write_file("/sys/bus/pci/devices/${dev}/driver/unbind", "${dev}")`);
        break;
      case 'hot_unplug':
        call(`hot-unplug ${dev}`, `write_file("/sys/bus/pci/devices/${dev}/remove", "1")`);
        break;
      case 'bind': {
        const drv = String(a.driver ?? 'vfio-pci');
        out.push(`write_file("/sys/bus/pci/devices/${dev}/driver_override", ${cString(drv)});`);
        call(`bind ${dev} to ${drv}`, `write_file("/sys/bus/pci/drivers_probe", "${dev}")`);
        break;
      }
      case 'advance': {
        const ms = Number(a.ms ?? main ?? 0);
        out.push(`usleep(${ms * 1000}); /* advance ${ms} ms of virtual time */`);
        break;
      }
      default:
        out.push(`/* admin ${st.op}: not reproduced */`);
    }
    return out;
  }
  switch (st.op) {
    case 'open': {
      const path = String(a.path ?? main);
      const flags = typeof a.flags === 'string' ? a.flags.split('|').map((s) => s.trim()).filter((f) => OPEN_FLAGS.includes(f)).join(' | ') || 'O_RDWR' : a.flags !== undefined ? String(a.flags) : 'O_RDWR';
      call(`open("${path}")`, `open(${cString(path)}, ${flags})`);
      const v = bind('fd');
      if (v) out.push(`${v} = ret;`);
      break;
    }
    case 'close':
      call(`close(${String(a.fd ?? main)})`, `close(${e.fdExpr(thread, a.fd ?? main)})`);
      break;
    case 'dup': {
      call(`dup(${String(a.fd ?? main)})`, `dup(${e.fdExpr(thread, a.fd ?? main)})`);
      const v = bind('fd');
      if (v) out.push(`${v} = ret;`);
      break;
    }
    case 'dup2': {
      const [o, n] = Array.isArray(main) ? main : [a.old, a.new];
      call(`dup2(${String(o)}, ${String(n)})`, `dup2(${e.fdExpr(thread, o as Value)}, ${e.expr(thread, n as Value)})`);
      const v = bind('fd');
      if (v) out.push(`${v} = ret;`);
      break;
    }
    case 'read':
    case 'pread':
    case 'write':
    case 'pwrite': {
      const fd = e.fdExpr(thread, a.fd ?? main);
      const buf = e.fresh('buf');
      const isRead = st.op.endsWith('read');
      if (isRead) {
        const n = Number(a.count ?? 4);
        out.push(`char ${buf}[${Math.max(1, n)}];`);
        call(`${st.op}(${String(a.fd ?? main)}, ${n})`, st.op === 'read' ? `read(${fd}, ${buf}, ${n})` : `pread(${fd}, ${buf}, ${n}, ${e.expr(thread, a.offset ?? 0)})`);
      } else {
        const data = typeof a.data === 'string' ? a.data : '';
        const hex = data.replace(/[\s:]/g, '');
        const bytes = /^([0-9a-fA-F]{2})+$/.test(hex) ? hex.match(/../g)!.map((x) => `0x${x}`) : [...new TextEncoder().encode(data)].map(String);
        out.push(`unsigned char ${buf}[] = { ${bytes.join(', ') || '0'} };`);
        call(`${st.op}(${String(a.fd ?? main)})`, st.op === 'write' ? `write(${fd}, ${buf}, ${bytes.length})` : `pwrite(${fd}, ${buf}, ${bytes.length}, ${e.expr(thread, a.offset ?? 0)})`);
      }
      break;
    }
    case 'mmap': {
      const fd = e.fdExpr(thread, a.fd ?? main);
      const len = Number(a.length ?? 4096);
      const p = e.fresh('map');
      out.push(`void *${p} = mmap(NULL, ${len}, PROT_READ | PROT_WRITE, MAP_SHARED, ${fd}, ${e.expr(thread, a.offset ?? 0)});`);
      out.push(`ret = ${p} == MAP_FAILED ? -1 : 0;`, `${report}${cString(`mmap(${String(a.fd ?? main)})`)}, ret);`);
      break;
    }
    case 'ioctl':
      out.push(...ioctlCode(e, thread, st, report, bind));
      break;
    default:
      out.push(`/* ${proc}: ${st.op} is not reproduced by the C export */`);
  }
  return out;
}

function ioctlCode(e: Emitter, thread: string | null, st: Step, report0: string, bind: (k: VarInfo['type'], s?: string) => string | null): string[] {
  const a = st.args;
  const out: string[] = [];
  const fd = e.fdExpr(thread, a.fd);
  const req = a.main;
  let info: IoctlInfo | undefined;
  let name: string;
  if (typeof req === 'string' && !/^(0x)?[0-9a-fA-F]+$/.test(req)) {
    info = ioctlByName(req);
    name = req;
  } else {
    const n = Number(req);
    info = IOCTLS.find((i) => i.value === n);
    name = info?.name ?? `0x${n.toString(16)}`;
  }
  const argv = a.arg;
  const text = `ioctl(${String(a.fd)}, ${name})`;
  const report = (argExpr: string | null) =>
    out.push(`ret = ioctl(${fd}, ${name}${argExpr !== null ? ', ' + argExpr : ''});`, `${report0}${cString(text)}, ret);`);
  if (argv === 'fault') report('(void *)1');
  else if (argv === 'NULL') report('NULL');
  else if (info?.arg === 'none') report(null);
  else if (info?.arg === 'value') report(e.expr(thread, argv ?? 0));
  else if (info?.arg === 'string') report(cString(String(argv ?? '')));
  else if (info?.struct && argv && typeof argv === 'object' && !Array.isArray(argv)) {
    const def = info.struct;
    const v = bind('struct', def.name) ?? `a_${e.fresh('arg')}`;
    if (!st.as) out.push(`struct ${def.name} ${v};`);
    out.push(`memset(&${v}, 0, sizeof(${v}));`);
    const sf = info.sizeField;
    const fields = argv as Record<string, Value>;
    if (sf && fields[sf] === undefined) out.push(`${v}.${sf} = sizeof(${v});`);
    for (const [k, x] of Object.entries(fields)) {
      if (k === 'bytes') continue;
      if (x && typeof x === 'object' && !Array.isArray(x)) {
        const o = x as Record<string, Value>;
        const b = e.fresh('data');
        if (typeof o.uuid === 'string') {
          const h = o.uuid.replace(/-/g, '');
          out.push(`static unsigned char ${b}[16] = { ${(h.match(/../g) ?? []).map((y) => `0x${y}`).join(', ')} };`);
        } else if (o.buffer !== undefined) out.push(`static unsigned char ${b}[${Number(o.buffer)}];`);
        else out.push(`static unsigned char ${b}[] = { 0 /* bytes */ };`);
        out.push(`${v}.${k} = (uintptr_t)${b};`);
      } else out.push(`${v}.${k} = ${x === 'fault' ? '1' : e.expr(thread, x)};`);
    }
    report(`&${v}`);
  } else {
    // a pointer to an int (VFIO_GROUP_SET_CONTAINER)
    const v = e.fresh('arg');
    out.push(`int ${v} = ${e.fdExpr(thread, argv as Value)};`);
    report(`&${v}`);
  }
  if (name === 'VFIO_GROUP_GET_DEVICE_FD') {
    const v = bind('fd');
    if (v) out.push(`${v} = ret;`);
  } else if (st.as && !(info?.struct && argv && typeof argv === 'object')) {
    const v = bind('value');
    if (v) out.push(`${v} = ret;`);
  }
  return out;
}

/**
 * The C program for a counterexample: `calls` are the thread steps the schedule started, in the
 * order it started them.
 */
export function exportC(
  prep: PreparedScenario,
  calls: readonly CallSpan[],
  meta: {
    title: string;
    violation: string;
    schedule: string;
    variant: string | null;
    /** what Linux 7.2 prints (predict.ts): one block of lines per possible outcome */
    expected?: Array<{ text: string; issueOrder: boolean }>;
  },
): string {
  const sc = prep.scenario;
  const e = new Emitter(prep.topology);
  const procs = sc.processes.map((p) => p.name);
  const setup = sc.steps.filter((s) => s.actor !== 'say');
  const body = new Map<string, string[]>(); // lane -> statements
  const lanes: Array<{ name: string; proc: string | null }> = [];
  const procSetup = new Map<string, string[]>();
  const unsupported: string[] = [];
  // setup steps, each after the previous one (across processes)
  let reported = 0;
  setup.forEach((st, k) => {
    const proc = st.actor === 'admin' ? null : st.actor;
    if (proc && !procs.includes(proc)) {
      unsupported.push(`setup step ${st.index}: process ${proc} (created by fork) is not reproduced`);
      return;
    }
    const key = proc ?? '(admin)';
    let l = procSetup.get(key);
    if (!l) procSetup.set(key, (l = []));
    const code = stepCode(e, key, null, st, proc ?? 'admin', reportedStep(st) ? `s${++reported}` : '');
    l.push(`wait_setup(${k});`, ...code, `setup_next();`);
  });
  // thread steps of the schedule, in start order
  const ids = new Map<string, number>();
  calls.forEach((c, i) => ids.set(`${c.thread}#${c.step}`, i));
  for (const td of sc.threads) {
    const actors = new Set(td.steps.map((s) => s.actor));
    const actor = [...actors][0] ?? 'admin';
    if (actors.size > 1) unsupported.push(`thread ${td.name}: steps of several processes (${[...actors].join(', ')}); the C export runs it in ${actor}`);
    const proc = actor === 'admin' ? null : actor;
    const lane = cIdent(td.name);
    lanes.push({ name: lane, proc });
    const stmts: string[] = ['wait_setup(' + setup.length + ');'];
    td.steps.forEach((st, si) => {
      const id = ids.get(`${td.name}#${si}`);
      if (id === undefined) {
        stmts.push(`/* ${td.name} step ${si + 1} (${st.op}) was not reached in the counterexample */`);
        return;
      }
      const me = calls[id]!;
      const deps: string[] = [];
      if (id > 0) deps.push(`wait_flag(S->issued, ${id - 1});`);
      // every call of another thread that had returned before this one started
      const latest = new Map<string, number>();
      calls.forEach((c, j) => {
        if (c.thread !== td.name && c.end !== null && c.end < me.start) latest.set(c.thread, Math.max(latest.get(c.thread) ?? -1, j));
      });
      for (const j of [...latest.values()].sort((x, y) => x - y)) deps.push(`wait_flag(S->done, ${j});`);
      stmts.push(`/* ${td.name} step ${si + 1}: call c${id + 1} of the counterexample${me.end === null ? ' (still running when the violation was seen)' : ''} */`);
      stmts.push(...deps, `set_flag(S->issued, ${id});`);
      stmts.push(`{`, ...stepCode(e, proc ?? 'admin', td.name, st, td.name, `c${id + 1}`).map((x) => '\t' + x), `}`);
      stmts.push(`set_flag(S->done, ${id});`);
    });
    body.set(lane, stmts);
  }
  const n = Math.max(1, calls.length);
  const L: string[] = [];
  L.push(`// SPDX-License-Identifier: MIT`);
  L.push(`/*`);
  L.push(` * Generated by vfiosim explore from ${meta.title}${meta.variant ? ` (variant ${meta.variant})` : ''}.`);
  L.push(` * Counterexample: ${meta.violation}`);
  L.push(` * Schedule: ${meta.schedule}`);
  L.push(` *`);
  L.push(` * Reproduces the syscall side of the counterexample: each scenario process is a process,`);
  L.push(` * each thread a pthread; setup steps run first, in order; then each thread call starts only`);
  L.push(` * after every call the counterexample started before it has been issued and every call that`);
  L.push(` * had returned before it started has returned. Calls that overlapped in the counterexample`);
  L.push(` * are issued back to back: their interleaving inside the kernel is the real scheduler's.`);
  L.push(` * A variant's behaviour is not reproduced: on Linux 7.2 the program shows 7.2's answers.`);
  for (const u of unsupported) L.push(` * Not reproduced: ${u}.`);
  L.push(` * Output: one line per call, "ID WHO CALL = RESULT" (s1.. setup steps, c1.. thread calls).`);
  if (meta.expected) {
    L.push(` *`);
    if (meta.expected.length === 0) L.push(` * Linux 7.2 (vfiosim's model): no interleaving this program allows ends (it would hang).`);
    else {
      L.push(` * Linux 7.2 (vfiosim's model, every interleaving this program allows) prints ${meta.expected.length === 1 ? 'this' : `one of these ${meta.expected.length} outcomes`}:`);
      meta.expected.forEach((o, i) => {
        if (meta.expected!.length > 1)
          L.push(` *   outcome ${i + 1}${o.issueOrder ? ' (possible with the calls entering the kernel in the order they are issued)' : ''}:`);
        for (const line of o.text.split('\n')) L.push(` *     ${line.replace(/\*\//g, '* /')}`);
      });
    }
  }
  L.push(` *`);
  L.push(` * Build: cc -O2 -Wall -pthread -I <uapi headers> -o repro repro.c   (or oracle-cc)`);
  L.push(` */`);
  L.push(`#define _GNU_SOURCE`);
  for (const h of ['errno.h', 'fcntl.h', 'pthread.h', 'stdint.h', 'stdio.h', 'stdlib.h', 'string.h', 'sys/ioctl.h', 'sys/mman.h', 'sys/wait.h', 'unistd.h', 'linux/iommufd.h', 'linux/vfio.h'])
    L.push(`#include <${h}>`);
  L.push('');
  L.push(`#define NCALLS ${n}`);
  L.push(`struct shared {`);
  L.push(`\tpthread_mutex_t mu;`);
  L.push(`\tpthread_cond_t cv;`);
  L.push(`\tint setup;\t\t\t/* setup steps done */`);
  L.push(`\tint issued[NCALLS];\t\t/* thread calls issued */`);
  L.push(`\tint done[NCALLS];\t\t/* thread calls returned */`);
  L.push(`};`);
  L.push(`static struct shared *S;`);
  L.push('');
  L.push(`#define VFIOSIM_UNUSED __attribute__((unused))`);
  L.push(`static VFIOSIM_UNUSED void wait_until(int *p, int min)\n{\n\tpthread_mutex_lock(&S->mu);\n\twhile (*p < min)\n\t\tpthread_cond_wait(&S->cv, &S->mu);\n\tpthread_mutex_unlock(&S->mu);\n}`);
  L.push(`static VFIOSIM_UNUSED void wait_flag(int *flags, int i) { wait_until(&flags[i], 1); }`);
  L.push(`static VFIOSIM_UNUSED void wait_setup(int k) { wait_until(&S->setup, k); }`);
  L.push(`static VFIOSIM_UNUSED void set_flag(int *flags, int i)\n{\n\tpthread_mutex_lock(&S->mu);\n\tflags[i] = 1;\n\tpthread_cond_broadcast(&S->cv);\n\tpthread_mutex_unlock(&S->mu);\n}`);
  L.push(`static VFIOSIM_UNUSED void setup_next(void)\n{\n\tpthread_mutex_lock(&S->mu);\n\tS->setup++;\n\tpthread_cond_broadcast(&S->cv);\n\tpthread_mutex_unlock(&S->mu);\n}`);
  L.push(`static VFIOSIM_UNUSED void report(const char *id, const char *who, const char *what, long ret)\n{\n\tint e = errno;\n\n\tif (ret < 0)\n\t\tprintf("%-4s %-10s %-52s = %ld %s\\n", id, who, what, ret, strerrorname_np(e) ?: "?");\n\telse\n\t\tprintf("%-4s %-10s %-52s = %ld\\n", id, who, what, ret);\n\tfflush(stdout);\n\terrno = e;\n}`);
  L.push(`static VFIOSIM_UNUSED long write_file(const char *path, const char *text)\n{\n\tint fd = open(path, O_WRONLY);\n\tlong r;\n\n\tif (fd < 0)\n\t\treturn -1;\n\tr = write(fd, text, strlen(text));\n\tclose(fd);\n\treturn r < 0 ? -1 : 0;\n}`);
  L.push('');
  const declsAt = L.length;
  // lanes
  for (const l of lanes) {
    L.push(`static void *lane_${l.name}(void *unused)\n{\n\tlong ret;\n\n\t(void)unused;\n\t(void)ret;`);
    for (const s of body.get(l.name) ?? []) L.push('\t' + s);
    L.push(`\treturn NULL;\n}`);
  }
  // per process: setup, then its thread lanes
  const runners = [...procs, '(admin)'];
  for (const p of runners) {
    const fn = p === '(admin)' ? 'run_admin' : `run_${cIdent(p)}`;
    L.push(`static void ${fn}(void)\n{\n\tlong ret;\n\n\t(void)ret;`);
    for (const s of procSetup.get(p) ?? []) L.push('\t' + s);
    const mine = lanes.filter((l) => (l.proc ?? '(admin)') === p);
    if (mine.length) {
      L.push(`\tpthread_t t[${mine.length}];`);
      mine.forEach((l, i) => L.push(`\tpthread_create(&t[${i}], NULL, lane_${l.name}, NULL);`));
      mine.forEach((_l, i) => L.push(`\tpthread_join(t[${i}], NULL);`));
    }
    L.push(`}`);
  }
  L.push(`int main(void)\n{\n\tpthread_mutexattr_t ma;\n\tpthread_condattr_t ca;\n\tpid_t pid[${procs.length || 1}];\n\tint i = 0;\n`);
  L.push(`\tS = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);\n\tif (S == MAP_FAILED)\n\t\treturn 1;\n\tmemset(S, 0, sizeof(*S));`);
  L.push(`\tpthread_mutexattr_init(&ma);\n\tpthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);\n\tpthread_mutex_init(&S->mu, &ma);`);
  L.push(`\tpthread_condattr_init(&ca);\n\tpthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);\n\tpthread_cond_init(&S->cv, &ca);`);
  for (const p of procs) L.push(`\tif ((pid[i++] = fork()) == 0) {\n\t\trun_${cIdent(p)}();\n\t\t_exit(0);\n\t}`);
  L.push(`\trun_admin();\n\twhile (i > 0)\n\t\twaitpid(pid[--i], NULL, 0);\n\treturn 0;\n}`);
  L.splice(declsAt, 0, ...e.declarations(), '');
  return L.join('\n') + '\n';
}
