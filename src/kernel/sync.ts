// Locks, completions, refcounts and atomics of the simulated kernel. Each operation is a
// visible op (see sched.ts) so that any scheduler may switch tasks there; generator helpers
// named after the kernel's API (mutexLock = mutex_lock, ...) yield them.

import { Access, KGen, KObject, KernelBug, MemOrder, Op, OpKind, Task, current } from './sched.js';

abstract class BaseOp implements Op {
  abstract readonly kind: OpKind;
  abstract readonly obj: KObject;
  abstract readonly access: Access;
  readonly order: MemOrder = 'seq_cst';
  readonly wakes: boolean = false;
  enabled(_t: Task): boolean {
    return true;
  }
  abstract exec(t: Task): unknown;
}

function dropHeld(t: Task, obj: KObject): void {
  const i = t.held.lastIndexOf(obj);
  if (i < 0) throw new KernelBug(`${t.name} releases ${obj.label} which it does not hold`);
  t.held.splice(i, 1);
}

// ---------------------------------------------------------------------------------------------
// Mutex (include/linux/mutex.h). Spinlocks are the same object with other op names: the model
// does not distinguish sleeping from spinning.

class MutexLockOp extends BaseOp {
  readonly access: Access = 'write';
  override readonly order: MemOrder = 'acquire';
  constructor(
    readonly obj: Mutex,
    readonly kind: OpKind,
  ) {
    super();
  }
  override enabled(t: Task): boolean {
    if (this.obj.owner === t) throw new KernelBug(`recursive locking of ${this.obj.label} by ${t.name}`);
    return this.obj.owner === null;
  }
  exec(t: Task): unknown {
    this.obj.owner = t;
    t.held.push(this.obj);
    return undefined;
  }
}

class MutexTrylockOp extends BaseOp {
  readonly kind: OpKind = 'mutex_trylock';
  readonly access: Access = 'write';
  override readonly order: MemOrder = 'acquire';
  constructor(readonly obj: Mutex) {
    super();
  }
  exec(t: Task): unknown {
    if (this.obj.owner !== null) return false;
    this.obj.owner = t;
    t.held.push(this.obj);
    return true;
  }
}

class MutexUnlockOp extends BaseOp {
  readonly access: Access = 'write';
  override readonly order: MemOrder = 'release';
  override readonly wakes = true;
  constructor(
    readonly obj: Mutex,
    readonly kind: OpKind,
  ) {
    super();
  }
  exec(t: Task): unknown {
    const m = this.obj;
    if (m.owner !== t) throw new KernelBug(`${t.name} unlocks ${m.label} owned by ${m.owner?.name ?? 'nobody'}`);
    m.owner = null;
    dropHeld(t, m);
    return undefined;
  }
}

export class Mutex extends KObject {
  owner: Task | null = null;
  readonly lockOp: Op;
  readonly trylockOp: Op;
  readonly unlockOp: Op;
  constructor(label: string, spin = false) {
    super(label);
    this.lockOp = new MutexLockOp(this, spin ? 'spin_lock' : 'mutex_lock');
    this.trylockOp = new MutexTrylockOp(this);
    this.unlockOp = new MutexUnlockOp(this, spin ? 'spin_unlock' : 'mutex_unlock');
  }
  isLocked(): boolean {
    return this.owner !== null;
  }
}

export function* mutexLock(m: Mutex): KGen<void> {
  yield m.lockOp;
}
export function* mutexUnlock(m: Mutex): KGen<void> {
  yield m.unlockOp;
}
export function* mutexTrylock(m: Mutex): KGen<boolean> {
  return (yield m.trylockOp) as boolean;
}
export function lockdepAssertHeld(m: KObject): void {
  const t = current();
  if (!t.held.includes(m)) throw new KernelBug(`lockdep: ${t.name} must hold ${m.label}`);
}

export class SpinLock extends Mutex {
  constructor(label: string) {
    super(label, true);
  }
}
export function* spinLock(m: SpinLock): KGen<void> {
  yield m.lockOp;
}
export function* spinUnlock(m: SpinLock): KGen<void> {
  yield m.unlockOp;
}

// ---------------------------------------------------------------------------------------------
// Read-write semaphore (include/linux/rwsem.h)

type RwWhat = 'down_read' | 'up_read' | 'down_write' | 'up_write' | 'down_write_trylock';

class RwOp extends BaseOp {
  readonly access: Access;
  override readonly order: MemOrder;
  override readonly wakes: boolean;
  constructor(
    readonly obj: RwSemaphore,
    readonly kind: RwWhat,
  ) {
    super();
    this.access = kind === 'down_read' || kind === 'up_read' ? 'read' : 'write';
    this.order = kind.startsWith('up') ? 'release' : 'acquire';
    this.wakes = kind.startsWith('up');
  }
  override enabled(t: Task): boolean {
    const s = this.obj;
    if (this.kind === 'down_read') {
      if (s.writer === t) throw new KernelBug(`${t.name} read-locks ${s.label} it write-holds`);
      return s.writer === null;
    }
    if (this.kind === 'down_write') {
      if (s.writer === t || s.readers.includes(t)) throw new KernelBug(`${t.name} write-locks ${s.label} it holds`);
      return s.writer === null && s.readers.length === 0;
    }
    return true;
  }
  exec(t: Task): unknown {
    const s = this.obj;
    switch (this.kind) {
      case 'down_read':
        s.readers.push(t);
        t.held.push(s);
        return undefined;
      case 'up_read': {
        const i = s.readers.indexOf(t);
        if (i < 0) throw new KernelBug(`${t.name} up_read on ${s.label} it does not hold`);
        s.readers.splice(i, 1);
        dropHeld(t, s);
        return undefined;
      }
      case 'down_write':
        s.writer = t;
        t.held.push(s);
        return undefined;
      case 'down_write_trylock':
        if (s.writer !== null || s.readers.length > 0) return false;
        s.writer = t;
        t.held.push(s);
        return true;
      case 'up_write':
        if (s.writer !== t) throw new KernelBug(`${t.name} up_write on ${s.label} it does not hold`);
        s.writer = null;
        dropHeld(t, s);
        return undefined;
    }
  }
}

export class RwSemaphore extends KObject {
  writer: Task | null = null;
  readonly readers: Task[] = [];
  readonly downReadOp: Op;
  readonly upReadOp: Op;
  readonly downWriteOp: Op;
  readonly upWriteOp: Op;
  readonly downWriteTrylockOp: Op;
  constructor(label: string) {
    super(label);
    this.downReadOp = new RwOp(this, 'down_read');
    this.upReadOp = new RwOp(this, 'up_read');
    this.downWriteOp = new RwOp(this, 'down_write');
    this.upWriteOp = new RwOp(this, 'up_write');
    this.downWriteTrylockOp = new RwOp(this, 'down_write_trylock');
  }
}

export function* downRead(s: RwSemaphore): KGen<void> {
  yield s.downReadOp;
}
export function* upRead(s: RwSemaphore): KGen<void> {
  yield s.upReadOp;
}
export function* downWrite(s: RwSemaphore): KGen<void> {
  yield s.downWriteOp;
}
export function* upWrite(s: RwSemaphore): KGen<void> {
  yield s.upWriteOp;
}
export function* downWriteTrylock(s: RwSemaphore): KGen<boolean> {
  return (yield s.downWriteTrylockOp) as boolean;
}

// ---------------------------------------------------------------------------------------------
// Completion (include/linux/completion.h)

const COMPLETE_ALL = Number.MAX_SAFE_INTEGER;

class CompletionOp extends BaseOp {
  readonly access: Access = 'write';
  override readonly order: MemOrder;
  override readonly wakes: boolean;
  readonly kind: OpKind;
  constructor(
    readonly obj: Completion,
    readonly what: 'complete' | 'wait' | 'try_wait',
  ) {
    super();
    this.kind = what === 'complete' ? 'complete' : 'wait';
    this.order = what === 'complete' ? 'release' : 'acquire';
    this.wakes = what === 'complete';
  }
  override enabled(): boolean {
    return this.what !== 'wait' || this.obj.done > 0;
  }
  exec(): unknown {
    const c = this.obj;
    if (this.what === 'complete') {
      if (c.done !== COMPLETE_ALL) c.done++;
      return undefined;
    }
    if (this.what === 'try_wait' && c.done === 0) return false;
    if (c.done !== COMPLETE_ALL) c.done--;
    return this.what === 'try_wait' ? true : undefined;
  }
}

export class Completion extends KObject {
  done = 0;
  readonly completeOp: Op;
  readonly waitOp: Op;
  readonly tryWaitOp: Op;
  constructor(label: string) {
    super(label);
    this.completeOp = new CompletionOp(this, 'complete');
    this.waitOp = new CompletionOp(this, 'wait');
    this.tryWaitOp = new CompletionOp(this, 'try_wait');
  }
}

class TimedWaitOp extends BaseOp {
  kind: OpKind = 'wait';
  access: Access = 'write';
  override order: MemOrder = 'acquire';
  constructor(
    readonly obj: Completion,
    readonly deadline: number,
    private readonly now: () => number,
  ) {
    super();
  }
  override enabled(): boolean {
    return this.obj.done > 0 || this.now() >= this.deadline;
  }
  exec(): unknown {
    const c = this.obj;
    if (c.done > 0) {
      if (c.done !== COMPLETE_ALL) c.done--;
      return Math.max(1, this.deadline - this.now());
    }
    return 0;
  }
}

export function initCompletion(label: string): Completion {
  return new Completion(label);
}
export function* complete(c: Completion): KGen<void> {
  yield c.completeOp;
}
export function* waitForCompletion(c: Completion): KGen<void> {
  yield c.waitOp;
}
/** try_wait_for_completion: true if it consumed a completion, never blocks. */
export function* tryWaitForCompletion(c: Completion): KGen<boolean> {
  return (yield c.tryWaitOp) as boolean;
}
/** wait_for_completion_timeout: remaining time (> 0) if completed, 0 on timeout (virtual ms). */
export function* waitForCompletionTimeout(c: Completion, ms: number): KGen<number> {
  const clock = current().kernel.clock;
  return (yield new TimedWaitOp(c, clock.now + ms, () => clock.now)) as number;
}

// ---------------------------------------------------------------------------------------------
// refcount_t and kref (include/linux/refcount.h, kref.h). Misuse is reported as the kernel's
// refcount_t does (a WARN, and the counter saturates), and counted as a use after the last put.

export class Refcount extends KObject {
  value: number;
  private ops: Partial<Record<RefWhat, Op>> = {};
  constructor(label: string, initial = 1) {
    super(label);
    this.value = initial;
  }
  /** refcount_set: initialisation, not a visible op (the object is not yet shared). */
  set(v: number): void {
    this.value = v;
  }
  read(): number {
    return this.value;
  }
  op(kind: RefWhat): Op {
    return (this.ops[kind] ??= new RefOp(this, kind));
  }
}

type RefWhat = 'inc' | 'inc_not_zero' | 'dec_and_test' | 'dec' | 'dec_if_one' | 'dec_not_one' | 'read';

class RefOp extends BaseOp {
  readonly kind: OpKind;
  readonly access: Access;
  override readonly order: MemOrder;
  override readonly wakes: boolean;
  constructor(
    readonly obj: Refcount,
    readonly what: RefWhat,
  ) {
    super();
    this.kind = what === 'read' ? 'atomic_load' : what.startsWith('inc') ? 'ref_get' : 'ref_put';
    this.access = what === 'read' ? 'read' : 'write';
    this.order = what === 'read' ? 'relaxed' : what.startsWith('dec') ? 'release' : 'relaxed';
    this.wakes = what !== 'read' && what !== 'inc';
  }
  exec(t: Task): unknown {
    const r = this.obj;
    switch (this.what) {
      case 'read':
        return r.value;
      case 'inc':
        if (r.value <= 0) {
          t.kernel.warn(`refcount_t: addition on 0; use-after-free of ${r.label}`);
          return undefined;
        }
        r.value++;
        return undefined;
      case 'inc_not_zero':
        if (r.value <= 0) return false;
        r.value++;
        return true;
      case 'dec_and_test':
      case 'dec':
        if (r.value <= 0) {
          t.kernel.warn(`refcount_t: underflow; use-after-free of ${r.label}`);
          return false;
        }
        r.value--;
        if (this.what === 'dec' && r.value === 0) t.kernel.warn(`refcount_t: decrement hit 0; leaking memory of ${r.label}`);
        return r.value === 0;
      case 'dec_if_one':
        if (r.value !== 1) return false;
        r.value = 0;
        return true;
      case 'dec_not_one':
        if (r.value === 1) return false;
        if (r.value <= 0) {
          t.kernel.warn(`refcount_t: underflow; use-after-free of ${r.label}`);
          return true;
        }
        r.value--;
        return true;
    }
  }
}

export function* refcountInc(r: Refcount): KGen<void> {
  yield r.op('inc');
}
export function* refcountIncNotZero(r: Refcount): KGen<boolean> {
  return (yield r.op('inc_not_zero')) as boolean;
}
export function* refcountDecAndTest(r: Refcount): KGen<boolean> {
  return (yield r.op('dec_and_test')) as boolean;
}
export function* refcountDec(r: Refcount): KGen<void> {
  yield r.op('dec');
}
export function* refcountDecIfOne(r: Refcount): KGen<boolean> {
  return (yield r.op('dec_if_one')) as boolean;
}
/** refcount_dec_not_one: decrement unless the count is 1 (true if it decremented). */
export function* refcountDecNotOne(r: Refcount): KGen<boolean> {
  return (yield r.op('dec_not_one')) as boolean;
}
export function* refcountRead(r: Refcount): KGen<number> {
  return (yield r.op('read')) as number;
}

/** kref: a refcount whose last put runs a release function. */
export class Kref extends Refcount {}
export function* krefGet(k: Kref): KGen<void> {
  yield k.op('inc');
}
/** kref_put: returns true if this put released the object. */
export function* krefPut(k: Kref, release: () => KGen<void>): KGen<boolean> {
  if ((yield k.op('dec_and_test')) as boolean) {
    yield* release();
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Atomics and exposed shared fields. `Atomic` covers atomic_t and the smp_load_acquire /
// smp_store_release pattern on a plain field; `Shared` is a field accessed with READ_ONCE /
// WRITE_ONCE (or plainly) that a variant wants the explorer to see.

export class Atomic<T> extends KObject {
  value: T;
  constructor(label: string, initial: T) {
    super(label);
    this.value = initial;
  }
}

class AtomicLoadOp<T> extends BaseOp {
  kind: OpKind = 'atomic_load';
  access: Access = 'read';
  constructor(
    readonly obj: Atomic<T>,
    override readonly order: MemOrder,
  ) {
    super();
  }
  exec(): unknown {
    return this.obj.value;
  }
}
class AtomicStoreOp<T> extends BaseOp {
  kind: OpKind = 'atomic_store';
  access: Access = 'write';
  override wakes = true;
  constructor(
    readonly obj: Atomic<T>,
    private readonly v: T,
    override readonly order: MemOrder,
  ) {
    super();
  }
  exec(): unknown {
    this.obj.value = this.v;
    return undefined;
  }
}
class AtomicRmwOp<T> extends BaseOp {
  kind: OpKind = 'atomic_rmw';
  access: Access = 'write';
  override wakes = true;
  constructor(
    readonly obj: Atomic<T>,
    private readonly f: (old: T) => T,
    override readonly order: MemOrder,
  ) {
    super();
  }
  exec(): unknown {
    const old = this.obj.value;
    this.obj.value = this.f(old);
    return old;
  }
}

export function* atomicLoad<T>(a: Atomic<T>, order: MemOrder = 'relaxed'): KGen<T> {
  return (yield new AtomicLoadOp(a, order)) as T;
}
export function* atomicStore<T>(a: Atomic<T>, v: T, order: MemOrder = 'relaxed'): KGen<void> {
  yield new AtomicStoreOp(a, v, order);
}
/** Read-modify-write; returns the old value (atomic_fetch_*, xchg, cmpxchg via f). */
export function* atomicRmw<T>(a: Atomic<T>, f: (old: T) => T, order: MemOrder = 'seq_cst'): KGen<T> {
  return (yield new AtomicRmwOp(a, f, order)) as T;
}
export function* smpLoadAcquire<T>(a: Atomic<T>): KGen<T> {
  return yield* atomicLoad(a, 'acquire');
}
export function* smpStoreRelease<T>(a: Atomic<T>, v: T): KGen<void> {
  yield* atomicStore(a, v, 'release');
}
export function* readOnce<T>(a: Atomic<T>): KGen<T> {
  return yield* atomicLoad(a, 'once');
}
export function* writeOnce<T>(a: Atomic<T>, v: T): KGen<void> {
  yield* atomicStore(a, v, 'once');
}

/** msleep in virtual time. */
class SleepOp extends BaseOp {
  kind: OpKind = 'sleep';
  access: Access = 'read';
  constructor(
    readonly obj: KObject,
    readonly deadline: number,
    private readonly now: () => number,
  ) {
    super();
  }
  override enabled(): boolean {
    return this.now() >= this.deadline;
  }
  exec(): unknown {
    return undefined;
  }
}
const sleepObj = new KObject('clock');
export function* msleep(ms: number): KGen<void> {
  const clock = current().kernel.clock;
  yield new SleepOp(sleepObj, clock.now + ms, () => clock.now);
}
