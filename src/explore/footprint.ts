// Footprints as the explorer sees them. A transition of a thread is one visible operation plus
// the task-local code that follows it (up to the next visible operation), so its footprint is:
//
//  * the op's own access: its object and a mode decided from the op and the object's state just
//    before it (a failed trylock only reads the lock, a successful one writes it; refcount
//    increments that cannot hit zero commute with each other: mode ADD);
//  * the shared kernel structures the task-local code touched that are not guarded by a visible
//    lock: path walks and node changes in the VFS tree, char-device registry lookups and
//    changes, fd-table reads and writes. These are recorded by instrumenting those structures
//    while a transition runs (pseudo accesses keyed by path, dev_t and process).
//
// Objects are named canonically across executions (each execution boots a fresh host): an
// object created at boot or during the setup steps is named by its allocation offset, one created
// by a transition by that transition's event (thread and index) and its allocation order in it.

import { KObject, Op } from '../kernel/sched.js';
import { Completion, Mutex, Refcount, RwSemaphore } from '../kernel/sync.js';
import { DirNode } from '../kernel/fs/vfs.js';
import { FdTable } from '../kernel/process.js';
import { Chrdevs } from '../kernel/fs/chrdev.js';
import type { DevT } from '../kernel/fs/file.js';

/** Access modes: R commutes with R, ADD with ADD; everything else conflicts. */
export const R = 0;
export const W = 1;
export const ADD = 2;
export type Mode = 0 | 1 | 2;

export const MODE_NAMES = ['r', 'w', 'add'] as const;

export function conflicts(a: Mode, b: Mode): boolean {
  return !(a === b && a !== W);
}

// ---- interned keys (stable across executions) ----------------------------------------------------

const keyIds = new Map<string, number>();
const keyNames: string[] = [];

export function keyId(name: string): number {
  let id = keyIds.get(name);
  if (id === undefined) {
    id = keyNames.length;
    keyNames.push(name);
    keyIds.set(name, id);
  }
  return id;
}

export function keyName(id: number): string {
  return keyNames[id] ?? `?${id}`;
}

// ---- pseudo accesses of task-local code -------------------------------------------------------------

/** The recorder of the running transition (off outside explorer transitions). */
export const recorder = {
  on: false,
  acc: [] as Array<[string, Mode]>,
};

function note(key: string, mode: Mode): void {
  recorder.acc.push([key, mode]);
}

/** fd table -> "fdt:<pid>" (registered by the explorer for every process it knows). */
export const fdtKeys = new WeakMap<FdTable, string>();

let instrumented = false;

/** Instrument the VFS, the chrdev registry and fd tables (once per process; inert unless recording). */
export function instrument(): void {
  if (instrumented) return;
  instrumented = true;
  const dir = DirNode.prototype;
  const lookup = dir.lookup;
  dir.lookup = function (this: DirNode, name: string) {
    if (recorder.on) note(`vfs:${childPath(this, name)}`, R);
    return lookup.call(this, name);
  };
  const add = dir.add;
  dir.add = function <T extends import('../kernel/fs/vfs.js').VNode>(this: DirNode, n: T): T {
    if (recorder.on) note(`vfs:${childPath(this, n.name)}`, W);
    return add.call(this, n) as T;
  };
  const remove = dir.remove;
  dir.remove = function (this: DirNode, name: string) {
    if (recorder.on) note(`vfs:${childPath(this, name)}`, W);
    return remove.call(this, name);
  };

  // fd tables: one key per slot ("fdt:<pid>:<fd>") and one for the table as a whole. Reading a
  // slot reads its key; changing a slot writes its key and ADDs to the table's (changes of
  // different slots commute); scanning the table (alloc's search for the lowest free fd, fds())
  // reads the table's key, so it is ordered against every change.
  const fdt = FdTable.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const fdtKey = (t: FdTable) => fdtKeys.get(t) ?? 'fdt:?';
  for (const m of ['unreserve', 'install', 'take', 'setCloexec']) {
    const orig = fdt[m]!;
    fdt[m] = function (this: FdTable, ...a: unknown[]) {
      if (recorder.on) {
        const t = fdtKey(this);
        note(`${t}:${a[0]}`, W);
        note(t, ADD);
      }
      return orig.apply(this, a);
    };
  }
  for (const m of ['get', 'isCloexec']) {
    const orig = fdt[m]!;
    fdt[m] = function (this: FdTable, ...a: unknown[]) {
      if (recorder.on) note(`${fdtKey(this)}:${a[0]}`, R);
      return orig.apply(this, a);
    };
  }
  const alloc = fdt.alloc!;
  fdt.alloc = function (this: FdTable, ...a: unknown[]) {
    const r = alloc.apply(this, a) as number;
    if (recorder.on) {
      const t = fdtKey(this);
      note(t, R);
      if (r >= 0) {
        note(`${t}:${r}`, W);
        note(t, ADD);
      }
    }
    return r;
  };
  const fds = fdt.fds!;
  fdt.fds = function (this: FdTable, ...a: unknown[]) {
    if (recorder.on) note(fdtKey(this), R);
    return fds.apply(this, a);
  };

  const chr = Chrdevs.prototype;
  const clookup = chr.lookup;
  chr.lookup = function (this: Chrdevs, d: DevT) {
    if (recorder.on) note(`chr:${d.major}:${d.minor}`, R);
    return clookup.call(this, d);
  };
  const cadd = chr.add;
  chr.add = function (this: Chrdevs, c) {
    if (recorder.on) note(`chr:${c.devt.major}:${c.devt.minor}`, W);
    return cadd.call(this, c);
  };
  const cdel = chr.del;
  chr.del = function (this: Chrdevs, c) {
    if (recorder.on) note(`chr:${c.devt.major}:${c.devt.minor}`, W);
    return cdel.call(this, c);
  };
}

function childPath(d: DirNode, name: string): string {
  const p = d.path();
  return p === '/' ? `/${name}` : `${p}/${name}`;
}

// ---- visible operations --------------------------------------------------------------------------

/** How a blocking op waits (for the reversibility of races: could it have run earlier?). */
export type BlockKind = 'mutex' | 'rw_read' | 'rw_write' | 'completion' | 'timed';

/** The state of a lock-like object, as far as enabledness goes. */
export interface LockState {
  /** mutex: held; rwsem: write-held */
  held: boolean;
  readers: number;
  /** completion: done count */
  done: number;
}

export function lockState(o: KObject): LockState | null {
  if (o instanceof Mutex) return { held: o.owner !== null, readers: 0, done: 0 };
  if (o instanceof RwSemaphore) return { held: o.writer !== null, readers: o.readers.length, done: 0 };
  if (o instanceof Completion) return { held: false, readers: 0, done: o.done };
  return null;
}

/** Whether a blocking op of `kind` could run in `s` (timed waits may always time out if budget remains). */
export function enabledIn(kind: BlockKind, s: LockState, budget: boolean): boolean {
  switch (kind) {
    case 'mutex':
      return !s.held;
    case 'rw_write':
      return !s.held && s.readers === 0;
    case 'rw_read':
      return !s.held;
    case 'completion':
      return s.done > 0;
    case 'timed':
      return s.done > 0 || budget;
  }
}

/** The mode of an op's access to its object and, for blocking ops, how it blocks. */
export function classify(op: Op): { mode: Mode; block: BlockKind | null } {
  const o = op.obj;
  switch (op.kind) {
    case 'mutex_lock':
    case 'spin_lock':
      return { mode: W, block: 'mutex' };
    case 'mutex_unlock':
    case 'spin_unlock':
    case 'up_write':
      return { mode: W, block: null };
    case 'mutex_trylock':
      return { mode: (o as Mutex).owner === null ? W : R, block: null };
    case 'down_write_trylock': {
      const s = o as RwSemaphore;
      return { mode: s.writer === null && s.readers.length === 0 ? W : R, block: null };
    }
    case 'down_read':
      return { mode: R, block: 'rw_read' };
    case 'up_read':
      return { mode: R, block: null };
    case 'down_write':
      return { mode: W, block: 'rw_write' };
    case 'atomic_load':
    case 'load':
      return { mode: R, block: null };
    case 'atomic_store':
    case 'atomic_rmw':
    case 'store':
      return { mode: W, block: null };
    case 'ref_get': {
      const r = o as Refcount;
      const what = (op as unknown as { what?: string }).what;
      // increments of a live count commute; inc_not_zero on zero only reads
      if (r.value > 0) return { mode: ADD, block: null };
      return { mode: what === 'inc_not_zero' ? R : W, block: null };
    }
    case 'ref_put':
      return { mode: W, block: null };
    case 'complete':
      return { mode: W, block: null };
    case 'wait': {
      const c = o as Completion;
      const what = (op as unknown as { what?: string }).what;
      if (op.deadline !== undefined) return { mode: c.done > 0 ? W : R, block: 'timed' };
      if (what === 'try_wait') return { mode: c.done > 0 ? W : R, block: null };
      return { mode: W, block: 'completion' };
    }
    case 'sleep':
      return { mode: R, block: null };
  }
  return { mode: W, block: null };
}

/** A readable one-line description of an op: "mutex_lock dev_set(0000:01:00.0)->lock". */
export function describeOp(op: Op): string {
  const what = (op as unknown as { what?: string }).what;
  const label = op.obj.label;
  switch (op.kind) {
    case 'atomic_load':
      if (op.obj instanceof Refcount) return `refcount_read(${label})`;
      return op.order === 'acquire'
        ? `smp_load_acquire(${label})`
        : op.order === 'once'
          ? `READ_ONCE(${label})`
          : `atomic_read(${label}) [${op.order}]`;
    case 'atomic_store':
      return op.order === 'release'
        ? `smp_store_release(${label})`
        : op.order === 'once'
          ? `WRITE_ONCE(${label})`
          : `atomic_set(${label}) [${op.order}]`;
    case 'atomic_rmw':
      return `atomic_rmw(${label}) [${op.order}]`;
    case 'ref_get':
    case 'ref_put':
      return `refcount_${what ?? op.kind}(${label})`;
    case 'wait':
      if (op.deadline !== undefined) return `wait_for_completion_timeout(${label})`;
      return what === 'try_wait' ? `try_wait_for_completion(${label})` : `wait_for_completion(${label})`;
    case 'complete':
      return `complete(${label})`;
    case 'sleep':
      return `msleep (until ${op.deadline} ms)`;
    default:
      return `${op.kind}(${label})`;
  }
}

/** The effect of an executed op on its lock-like object (for replaying lock states of races). */
export function applyEffect(kind: Op['kind'], mode: Mode, s: LockState): LockState {
  const n = { ...s };
  switch (kind) {
    case 'mutex_lock':
    case 'spin_lock':
      n.held = true;
      break;
    case 'mutex_trylock':
    case 'down_write_trylock':
      if (mode === W) n.held = true;
      break;
    case 'mutex_unlock':
    case 'spin_unlock':
    case 'up_write':
      n.held = false;
      break;
    case 'down_write':
      n.held = true;
      break;
    case 'down_read':
      n.readers++;
      break;
    case 'up_read':
      n.readers--;
      break;
    case 'complete':
      n.done++;
      break;
    case 'wait':
      // a wait, try_wait or timed wait that consumed a completion (a timed-out one only read it)
      if (mode === W) n.done = Math.max(0, n.done - 1);
      break;
  }
  return n;
}
