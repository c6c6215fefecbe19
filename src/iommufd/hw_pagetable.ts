// drivers/iommu/iommufd/hw_pagetable.c: HWPT_PAGING objects (an iommu_domain mirroring an IOAS),
// automatic domains created by attach, and IOMMU_HWPT_ALLOC.

import { EINVAL, EOPNOTSUPP } from '../kernel/errno.js';
import { KGen } from '../kernel/sched.js';
import { lockdepAssertHeld, mutexLock, mutexUnlock, refcountDec, refcountInc } from '../kernel/sync.js';
import { StructBuf } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import { IommuDomain, iommuPagingDomainAlloc } from '../iommu/iommu.js';
import { ioptTableAddDomain, ioptTableRemoveDomain } from './io_pagetable.js';
import { IommufdIoas } from './ioas.js';
import {
  IommufdCtx, IommufdObject, iommufdGetObject, iommufdObjectAbortAndDestroy, iommufdObjectAlloc,
  iommufdObjectFinalize, iommufdObjectPutAndTryDestroy, iommufdPutObject,
} from './object.js';
import type { IommufdDevice } from './device.js';
import { iommufdHwPagetableAttach, iommufdHwPagetableDetach } from './device.js';
import type { Ucmd } from './main.js';

const IOMMU_NO_PASID_ = 0;

/** struct iommufd_hwpt_paging */
export class IommufdHwptPaging extends IommufdObject {
  readonly type = 'HWPT_PAGING' as const;
  domain: IommuDomain | null = null;
  autoDomain = false;
  nestParent = false;
  enforceCacheCoherency = false;
  pasidCompat = false;
  /** on the IOAS's hwpt_list */
  listed = false;
  constructor(
    ictx: IommufdCtx,
    readonly ioas: IommufdIoas,
  ) {
    super(ictx, 'hwpt_paging');
  }
  /** iommufd_hwpt_paging_destroy */
  *destroy(): KGen<void> {
    if (this.listed) {
      yield* mutexLock(this.ioas.mutex);
      this.unlist();
      yield* mutexUnlock(this.ioas.mutex);
      yield* ioptTableRemoveDomain(this.ioas.iopt, this.domain!, (m) => this.ictx.kernel.warn(m));
    }
    this.domain = null;
    yield* refcountDec(this.ioas.users);
  }
  /** iommufd_hwpt_paging_abort (ioas->mutex held until finalize) */
  override *abort(): KGen<void> {
    lockdepAssertHeld(this.ioas.mutex);
    if (this.listed) {
      this.unlist();
      yield* ioptTableRemoveDomain(this.ioas.iopt, this.domain!, (m) => this.ictx.kernel.warn(m));
    }
    this.domain = null;
    yield* refcountDec(this.ioas.users);
  }
  private unlist(): void {
    const i = this.ioas.hwptList.indexOf(this);
    if (i >= 0) this.ioas.hwptList.splice(i, 1);
    this.listed = false;
  }
}

export type IommufdHwPagetable = IommufdHwptPaging;

const VALID_FLAGS =
  I.IOMMU_HWPT_ALLOC_NEST_PARENT | I.IOMMU_HWPT_ALLOC_DIRTY_TRACKING | I.IOMMU_HWPT_FAULT_ID_VALID | I.IOMMU_HWPT_ALLOC_PASID;

/**
 * iommufd_hwpt_paging_alloc: a PAGING domain for `idev` on `ioas` (ioas->mutex held); with
 * immediate_attach the device is attached before the domain is added to the IOAS.
 */
export function* iommufdHwptPagingAlloc(
  ictx: IommufdCtx,
  ioas: IommufdIoas,
  idev: IommufdDevice,
  pasid: number,
  flags: number,
  immediateAttach: boolean,
  hasUserData: boolean,
): KGen<IommufdHwptPaging | number> {
  lockdepAssertHeld(ioas.mutex);
  const hw = idev.dev.iommuGroup!.hw;
  if (flags & ~VALID_FLAGS) return -EOPNOTSUPP;
  if (flags & I.IOMMU_HWPT_ALLOC_DIRTY_TRACKING && !hw.dirtyTracking) return -EOPNOTSUPP;
  if (flags & I.IOMMU_HWPT_FAULT_ID_VALID && flags & I.IOMMU_HWPT_ALLOC_NEST_PARENT) return -EOPNOTSUPP;
  const hwpt = iommufdObjectAlloc(ictx, new IommufdHwptPaging(ictx, ioas));
  if (typeof hwpt === 'number') return hwpt;
  hwpt.pasidCompat = (flags & I.IOMMU_HWPT_ALLOC_PASID) !== 0;
  yield* refcountInc(ioas.users);
  hwpt.nestParent = (flags & I.IOMMU_HWPT_ALLOC_NEST_PARENT) !== 0;
  // domain_alloc_paging_flags of a VT-d without nesting support
  if (hwpt.nestParent || hasUserData) {
    yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
    return -EOPNOTSUPP;
  }
  const d = iommuPagingDomainAlloc(idev.dev);
  if (typeof d === 'number') {
    yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
    return d;
  }
  hwpt.domain = d;
  d.owner = hwpt;
  if (idev.enforceCacheCoherency) hwpt.enforceCacheCoherency = true;
  if (immediateAttach) {
    const rc = yield* iommufdHwPagetableAttach(hwpt, idev, pasid);
    if (rc) {
      yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
      return rc;
    }
  }
  const rc = yield* ioptTableAddDomain(ioas.iopt, d);
  if (rc) {
    if (immediateAttach) yield* iommufdHwPagetableDetach(idev, pasid);
    yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
    return rc;
  }
  ioas.hwptList.push(hwpt);
  hwpt.listed = true;
  return hwpt;
}

/** iommufd_hw_pagetable_put: an auto domain is destroyed with its last user. */
export function* iommufdHwPagetablePut(ictx: IommufdCtx, hwpt: IommufdHwPagetable): KGen<void> {
  if (hwpt.autoDomain) {
    yield* iommufdObjectPutAndTryDestroy(ictx, hwpt);
    return;
  }
  yield* refcountDec(hwpt.users);
}

/** IOMMU_HWPT_ALLOC */
export function* iommufdHwptAlloc(ucmd: Ucmd): KGen<number> {
  type F = 'size' | 'flags' | 'dev_id' | 'pt_id' | 'out_hwpt_id' | '__reserved' | 'data_type' | 'data_len' | 'data_uptr' | 'fault_id';
  const cmd = ucmd.cmd as StructBuf<F>;
  const ictx = ucmd.ictx;
  if (cmd.get('__reserved')) return -EOPNOTSUPP;
  const dataType = cmd.get('data_type');
  const dataLen = cmd.get('data_len');
  if ((dataType === I.IOMMU_HWPT_DATA_NONE && dataLen) || (dataType !== I.IOMMU_HWPT_DATA_NONE && !dataLen)) return -EINVAL;
  const idev = (yield* iommufdGetObject(ictx, cmd.get('dev_id'), 'DEVICE')) as IommufdDevice | number;
  if (typeof idev === 'number') return idev;
  const pt = yield* iommufdGetObject(ictx, cmd.get('pt_id'), 'ANY');
  let rc: number;
  if (typeof pt === 'number') {
    rc = -EINVAL;
    yield* iommufdPutObject(ictx, idev);
    return rc;
  }
  const flags = cmd.get('flags');
  let ioas: IommufdIoas | null = null;
  out: {
    let hwpt: IommufdHwptPaging;
    if (pt.type === 'IOAS') {
      ioas = pt as IommufdIoas;
      yield* mutexLock(ioas.mutex);
      const h = yield* iommufdHwptPagingAlloc(ictx, ioas, idev, IOMMU_NO_PASID_, flags, false, dataLen > 0);
      if (typeof h === 'number') {
        rc = h;
        break out;
      }
      hwpt = h;
    } else if (pt.type === 'HWPT_PAGING') {
      // iommufd_hwpt_nested_alloc: this IOMMU has no nesting support
      const parent = pt as IommufdHwptPaging;
      if (flags & ~(I.IOMMU_HWPT_FAULT_ID_VALID | I.IOMMU_HWPT_ALLOC_PASID) || !dataLen) rc = -EOPNOTSUPP;
      else if (parent.autoDomain || !parent.nestParent) rc = -EINVAL;
      else rc = -EOPNOTSUPP;
      break out;
    } else {
      rc = -EINVAL;
      break out;
    }
    if (flags & I.IOMMU_HWPT_FAULT_ID_VALID) {
      // no FAULT object can exist in this model (IOMMU_FAULT_QUEUE_ALLOC is not modelled)
      const fault = yield* iommufdGetObject(ictx, cmd.get('fault_id'), 'FAULT');
      if (typeof fault === 'number') {
        rc = fault;
        yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
        break out;
      }
      yield* iommufdPutObject(ictx, fault);
    }
    cmd.set('out_hwpt_id', hwpt.id);
    rc = ucmd.respond(I.iommu_hwpt_alloc.size);
    if (rc) {
      yield* iommufdObjectAbortAndDestroy(ictx, hwpt);
      break out;
    }
    yield* iommufdObjectFinalize(ictx, hwpt);
    ictx.kernel.event('iommufd_hwpt_alloc', { ctx: ictx.num, id: hwpt.id, ioas: ioas!.id });
  }
  if (ioas) yield* mutexUnlock(ioas.mutex);
  yield* iommufdPutObject(ictx, pt);
  yield* iommufdPutObject(ictx, idev);
  return rc;
}
