// What a variant's overrides usually need, in one import: the visible operations of
// src/kernel/sync.ts (every lock, atomic, refcount and completion a variant touches must go
// through them so that the explorer sees it) and a few helpers about `current`.

export {
  Atomic, Completion, Mutex, Refcount, RwSemaphore, atomicLoad, atomicRmw, atomicStore, complete, downRead, downWrite,
  lockdepAssertHeld, mutexLock, mutexTrylock, mutexUnlock, readOnce, refcountDecAndTest, refcountInc,
  refcountIncNotZero, smpLoadAcquire, smpStoreRelease, upRead, upWrite, waitForCompletion, writeOnce,
} from '../kernel/sync.js';
export { capable, currentMm, currentProcess } from '../kernel/current.js';
export { kfnOriginal, kfnNames } from '../kernel/override.js';
export type { KGen } from '../kernel/sched.js';
export { EBUSY, EFAULT, EINVAL, ENODEV, ENOENT, EPERM } from '../kernel/errno.js';
