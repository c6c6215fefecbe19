// eventfd (fs/eventfd.c): a counter file. In process, an eventfd is an object whose counter tests
// read; the kernel signals it (eventfd_signal) for VFIO's REQ/ERR/MSI triggers.

import { EAGAIN, EFAULT, EINVAL } from './errno.js';
import { currentMm } from './current.js';
import { File, FileOperations, Inode, O_NONBLOCK, O_RDWR, Pos } from './fs/file.js';
import { Kernel } from './kernel.js';
import { KGen, KObject } from './sched.js';
import { copyFromUser, copyToUser } from './uaccess.js';

export const EFD_SEMAPHORE = 1;
export const EFD_NONBLOCK = O_NONBLOCK;
export const EFD_CLOEXEC = 0o2000000;

const ULLONG_MAX = 0xffffffffffffffffn;

export const EPOLLIN = 0x1;
export const EPOLLHUP = 0x10;
export type EventfdWaiter = (ctx: EventfdCtx, events: number) => void;

function wakeUp(ctx: EventfdCtx, events: number): void {
  for (const w of [...ctx.waiters]) w(ctx, events);
}

/** struct eventfd_ctx */
export class EventfdCtx extends KObject {
  count = 0n;
  /** number of eventfd_signal calls, for traces and tests */
  signals = 0;
  /** the bridge: signal a real eventfd behind this context too */
  notify: (() => void) | null = null;
  /**
   * The wait queue's custom wake functions (init_waitqueue_func_entry + add_wait_queue, as
   * vfio's virqfd installs): called with EPOLLIN when the counter is added to, with EPOLLHUP when
   * the eventfd file is released.
   */
  readonly waiters = new Set<EventfdWaiter>();
  constructor(
    initval: number,
    readonly flags: number,
  ) {
    super('eventfd');
    this.count = BigInt(initval);
  }
}

function* eventfdRead(file: File, buf: number, count: number, _pos: Pos): KGen<number> {
  const ctx = file.privateData as EventfdCtx;
  if (count < 8) return -EINVAL;
  if (ctx.count === 0n) return -EAGAIN; // a blocking read would sleep; this model never blocks here
  let v: bigint;
  if (ctx.flags & EFD_SEMAPHORE) {
    v = 1n;
    ctx.count -= 1n;
  } else {
    v = ctx.count;
    ctx.count = 0n;
  }
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  if (copyToUser(currentMm(), buf, b) < 0) return -EFAULT;
  return 8;
}

function* eventfdWrite(file: File, buf: number, count: number, _pos: Pos): KGen<number> {
  const ctx = file.privateData as EventfdCtx;
  if (count < 8) return -EINVAL;
  const b = copyFromUser(currentMm(), buf, 8);
  if (typeof b === 'number') return -EFAULT;
  const v = new DataView(b.buffer, b.byteOffset).getBigUint64(0, true);
  if (v === ULLONG_MAX) return -EINVAL;
  if (ULLONG_MAX - ctx.count <= v) return -EAGAIN;
  ctx.count += v;
  wakeUp(ctx, EPOLLIN);
  return 8;
}

/** eventfd_release: waiters see EPOLLHUP (the context lives on while the kernel holds it). */
function* eventfdRelease(_inode: Inode, file: File): KGen<void> {
  wakeUp(file.privateData as EventfdCtx, EPOLLHUP);
}

export const eventfdFops: FileOperations = {
  name: 'eventfd_fops',
  read: eventfdRead,
  write: eventfdWrite,
  release: eventfdRelease,
  showFdinfo: (f) => `eventfd-count: ${(f.privateData as EventfdCtx).count.toString(16).padStart(16, '0')}\n`,
};

/** eventfd(2): the new file (anon inode "[eventfd]"). */
export function eventfdFile(k: Kernel, initval: number, flags: number): File | number {
  if (flags & ~(EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC)) return -EINVAL;
  const ctx = new EventfdCtx(initval, flags);
  const f = new File(k.anonInode, eventfdFops, O_RDWR | (flags & EFD_NONBLOCK), 'anon_inode:[eventfd]');
  f.privateData = ctx;
  return f;
}

/** eventfd_ctx_fileget: the ctx of an eventfd file, or -EINVAL. */
export function eventfdCtxFileget(f: File): EventfdCtx | number {
  if (f.fOp !== eventfdFops) return -EINVAL;
  return f.privateData as EventfdCtx;
}

/**
 * eventfd_signal: add 1. It never sleeps, so interrupt handlers (which run synchronously, in
 * "hard irq context") call eventfdSignalNow; process-context code may use either.
 */
export function* eventfdSignal(ctx: EventfdCtx): KGen<void> {
  eventfdSignalNow(ctx);
}

export function eventfdSignalNow(ctx: EventfdCtx): void {
  if (ctx.count < ULLONG_MAX) ctx.count += 1n;
  ctx.signals++;
  ctx.notify?.();
  wakeUp(ctx, EPOLLIN);
}

/** eventfd_ctx_do_read: consume the counter (one unit in semaphore mode); returns what was read. */
export function eventfdCtxDoRead(ctx: EventfdCtx): bigint {
  const v = ctx.flags & EFD_SEMAPHORE && ctx.count ? 1n : ctx.count;
  ctx.count -= v;
  return v;
}
