// iommufd objects and the context (drivers/iommu/iommufd/main.c, iommufd_private.h): one ID space
// per context shared by every object type (lowest free ID >= 1), IDs reserved until finalised,
// `users` and `wait_cnt` refcounts, and destruction that requires users == 1 (else EBUSY).

import { EBUSY, ENOENT } from '../kernel/errno.js';
import { File, fput, getFile } from '../kernel/fs/file.js';
import { Kernel } from '../kernel/kernel.js';
import { KGen, KObject } from '../kernel/sched.js';
import {
  Refcount, SpinLock, refcountDec, refcountDecAndTest, refcountDecIfOne, refcountIncNotZero, spinLock, spinUnlock,
} from '../kernel/sync.js';
import type { IommufdIoas } from './ioas.js';
import type { IommufdGroup } from './device.js';

export type IommufdObjType =
  | 'ANY'
  | 'DEVICE'
  | 'HWPT_PAGING'
  | 'HWPT_NESTED'
  | 'IOAS'
  | 'ACCESS'
  | 'FAULT'
  | 'VIOMMU'
  | 'VDEVICE'
  | 'VEVENTQ'
  | 'HW_QUEUE';

/** IDs are 31-bit (xa_limit_31b) and start at 1 (XA_FLAGS_ALLOC1). */
const ID_MAX = 0x7fffffff;

const RESERVED = Symbol('reserved id');

/** struct iommufd_object */
export abstract class IommufdObject extends KObject {
  id = 0;
  abstract readonly type: Exclude<IommufdObjType, 'ANY'>;
  /** 1 for the xarray, +1 per holder */
  readonly users: Refcount;
  /** short-term holds (ioctls in flight); biased by 1 while in the xarray */
  readonly waitCnt: Refcount;
  constructor(
    readonly ictx: IommufdCtx,
    what: string,
  ) {
    super(`iommufd ${what}`);
    this.users = new Refcount(`${this.label}.users`, 1);
    this.waitCnt = new Refcount(`${this.label}.wait_cnt`, 1);
  }
  /** the type's destroy op */
  abstract destroy(): KGen<void>;
  /** pre_destroy op (revoke long-term wait_cnt holders) */
  *preDestroy(): KGen<void> {}
  /** abort op (undo of an unfinalised object, the caller's lock held); defaults to destroy */
  *abort(): KGen<void> {
    yield* this.destroy();
  }
}

/** struct iommufd_ctx: one per open of /dev/iommu. Its references are references on its file. */
export class IommufdCtx extends KObject {
  readonly objects = new Map<number, IommufdObject | typeof RESERVED>();
  readonly objectsLock: SpinLock;
  readonly groups = new Map<number, IommufdGroup>();
  vfioIoas: IommufdIoas | null = null;
  noIommuMode = false;
  /**
   * account_mode: 0 (IOPT_PAGES_ACCOUNT_NONE, as allocated: mappings keep their pages' mode),
   * 1 (USER) or 2 (MM) once IOMMU_OPTION_RLIMIT_MODE set it
   */
  accountMode = 0;
  private static next = 1;
  readonly num: number;
  constructor(
    readonly kernel: Kernel,
    readonly file: File,
  ) {
    const n = IommufdCtx.next++;
    super(`iommufd_ctx#${n}`);
    this.num = n;
    this.objectsLock = new SpinLock(`${this.label}->objects`);
  }
  /** live (finalised) objects, by ID */
  liveObjects(): IommufdObject[] {
    const out: IommufdObject[] = [];
    for (const [, o] of [...this.objects.entries()].sort((a, b) => a[0] - b[0])) if (o !== RESERVED) out.push(o);
    return out;
  }
  isEmpty(): boolean {
    return this.objects.size === 0;
  }
}

/** iommufd_ctx_get: a context reference is a reference on its file. */
export function* iommufdCtxGet(ictx: IommufdCtx): KGen<void> {
  yield* getFile(ictx.file);
}

/** iommufd_ctx_put */
export function* iommufdCtxPut(ictx: IommufdCtx): KGen<void> {
  yield* fput(ictx.file);
}

/** _iommufd_object_alloc: reserve the lowest free ID (not yet visible to lookups). */
export function iommufdObjectAlloc<T extends IommufdObject>(ictx: IommufdCtx, obj: T): T | number {
  let id = 1;
  while (ictx.objects.has(id)) id++;
  if (id > ID_MAX) return -EBUSY;
  ictx.objects.set(id, RESERVED);
  obj.id = id;
  obj.label = `${obj.label}#${id}`;
  return obj;
}

/** iommufd_object_finalize: publish the object. */
export function* iommufdObjectFinalize(ictx: IommufdCtx, obj: IommufdObject): KGen<void> {
  yield* spinLock(ictx.objectsLock);
  if (ictx.objects.get(obj.id) !== RESERVED) ictx.kernel.warn(`iommufd_object_finalize: id ${obj.id} not reserved`);
  ictx.objects.set(obj.id, obj);
  yield* spinUnlock(ictx.objectsLock);
}

/** iommufd_object_abort: give the ID back (the object was never finalised). */
export function* iommufdObjectAbort(ictx: IommufdCtx, obj: IommufdObject): KGen<void> {
  yield* spinLock(ictx.objectsLock);
  if (ictx.objects.get(obj.id) === RESERVED) ictx.objects.delete(obj.id);
  yield* spinUnlock(ictx.objectsLock);
  if (!(yield* refcountDecAndTest(obj.users))) ictx.kernel.warn(`iommufd_object_abort: ${obj.label} still used`);
}

/** iommufd_object_abort_and_destroy */
export function* iommufdObjectAbortAndDestroy(ictx: IommufdCtx, obj: IommufdObject): KGen<void> {
  yield* obj.abort();
  yield* iommufdObjectAbort(ictx, obj);
}

/** iommufd_lock_obj */
export function* iommufdLockObj(obj: IommufdObject): KGen<boolean> {
  if (!(yield* refcountIncNotZero(obj.users))) return false;
  if (!(yield* refcountIncNotZero(obj.waitCnt))) {
    yield* refcountDec(obj.users);
    return false;
  }
  return true;
}

/** iommufd_get_object: ENOENT for a missing, reserved, other-typed or dying object. */
export function* iommufdGetObject(ictx: IommufdCtx, id: number, type: IommufdObjType): KGen<IommufdObject | number> {
  yield* spinLock(ictx.objectsLock);
  const o = ictx.objects.get(id);
  let ret: IommufdObject | number = -ENOENT;
  if (o && o !== RESERVED && (type === 'ANY' || o.type === type) && (yield* iommufdLockObj(o))) ret = o;
  yield* spinUnlock(ictx.objectsLock);
  return ret;
}

/** iommufd_put_object: users first, then wait_cnt. */
export function* iommufdPutObject(_ictx: IommufdCtx, obj: IommufdObject): KGen<void> {
  yield* refcountDec(obj.users);
  yield* refcountDecAndTest(obj.waitCnt);
}

export const REMOVE_WAIT = 1;
export const REMOVE_OBJ_TOMBSTONE = 2;

/**
 * iommufd_object_remove: remove `id` if the xarray holds the only `users` reference (EBUSY
 * otherwise); wait for transient holders; destroy.
 */
export function* iommufdObjectRemove(
  ictx: IommufdCtx,
  toDestroy: IommufdObject | null,
  id: number,
  flags: number,
): KGen<number> {
  let zerodWaitCnt = false;
  if (flags & REMOVE_WAIT && toDestroy) {
    // iommufd_object_dec_wait: nothing can be waiting in this model once the users are gone
    if (!(yield* refcountDecAndTest(toDestroy.waitCnt))) {
      yield* toDestroy.preDestroy();
      if (toDestroy.waitCnt.value !== 0) {
        ictx.kernel.warn(`iommufd: time out waiting for ${toDestroy.label} to become free`);
        yield* refcountDec(toDestroy.users);
        return -EBUSY;
      }
    }
    zerodWaitCnt = true;
  }
  yield* spinLock(ictx.objectsLock);
  const o = ictx.objects.get(id);
  let ret = 0;
  out: {
    if (toDestroy) {
      // the caller's reference is put here, under the lock
      if (o && o !== RESERVED) yield* refcountDec(o.users);
      if (o !== toDestroy) {
        ictx.kernel.warn(`iommufd_object_remove: id ${id} is not ${toDestroy.label}`);
        ret = -ENOENT;
        break out;
      }
    } else if (!o || o === RESERVED) {
      ret = -ENOENT;
      break out;
    }
    const obj = o as IommufdObject;
    if (!(yield* refcountDecIfOne(obj.users))) {
      ret = -EBUSY;
      break out;
    }
    if (flags & REMOVE_OBJ_TOMBSTONE) ictx.objects.set(id, RESERVED);
    else ictx.objects.delete(id);
    if (ictx.vfioIoas === (obj as unknown)) ictx.vfioIoas = null;
    yield* spinUnlock(ictx.objectsLock);
    if (!zerodWaitCnt) yield* refcountDecAndTest(obj.waitCnt);
    yield* obj.destroy();
    ictx.kernel.event('iommufd_destroy', { ctx: ictx.num, id, type: obj.type });
    return 0;
  }
  if (zerodWaitCnt && toDestroy) toDestroy.waitCnt.set(1);
  yield* spinUnlock(ictx.objectsLock);
  return ret;
}

/** iommufd_object_destroy_user: the caller holds a users reference. */
export function* iommufdObjectDestroyUser(ictx: IommufdCtx, obj: IommufdObject): KGen<void> {
  const ret = yield* iommufdObjectRemove(ictx, obj, obj.id, REMOVE_WAIT);
  if (ret) ictx.kernel.warn(`iommufd_object_destroy_user: ${obj.label}: ${ret}`);
}

/** iommufd_object_put_and_try_destroy (auto domains: destroyed when the last user goes) */
export function* iommufdObjectPutAndTryDestroy(ictx: IommufdCtx, obj: IommufdObject): KGen<void> {
  yield* iommufdObjectRemove(ictx, obj, obj.id, 0);
}

/** Destroy everything at context release, leaves first (iommufd_fops_release). */
export function* iommufdDestroyAll(ictx: IommufdCtx): KGen<void> {
  for (;;) {
    let destroyed = 0;
    let empty = true;
    for (const [id, o] of [...ictx.objects.entries()].sort((a, b) => a[0] - b[0])) {
      if (o === RESERVED) continue;
      empty = false;
      if (!(yield* refcountDecIfOne(o.users))) continue;
      destroyed++;
      ictx.objects.delete(id);
      if (ictx.vfioIoas === (o as unknown)) ictx.vfioIoas = null;
      yield* o.destroy();
    }
    if (empty) break;
    if (!destroyed) {
      ictx.kernel.warn(`iommufd_fops_release: ${ictx.label} objects still referenced`);
      break;
    }
  }
  ictx.objects.clear();
}

export { RESERVED };
