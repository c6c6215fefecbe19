// drivers/iommu/iommufd/vfio_compat.c: the compat IOAS a VFIO group uses when its "container" is an
// iommufd, IOMMU_VFIO_IOAS, and the VFIO container ioctls an iommufd answers.

import { EINVAL, ENODEV, ENOIOCTLCMD, EOPNOTSUPP, EPERM } from '../kernel/errno.js';
import { capable } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { spinLock, spinUnlock } from '../kernel/sync.js';
import { StructBuf } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import * as U from '../uapi/vfio.js';
import { ioptDisableLargePages } from './io_pagetable.js';
import { IommufdIoas, iommufdGetIoas, iommufdIoasAlloc } from './ioas.js';
import {
  IommufdCtx, iommufdLockObj, iommufdObjectAbort, iommufdObjectFinalize, iommufdPutObject,
} from './object.js';
import type { Ucmd } from './main.js';

/** get_compat_ioas: the compat IOAS with a hold, or -ENODEV */
export function* getCompatIoas(ictx: IommufdCtx): KGen<IommufdIoas | number> {
  yield* spinLock(ictx.objectsLock);
  let r: IommufdIoas | number = -ENODEV;
  if (ictx.vfioIoas && (yield* iommufdLockObj(ictx.vfioIoas))) r = ictx.vfioIoas;
  yield* spinUnlock(ictx.objectsLock);
  return r;
}

/** iommufd_vfio_compat_ioas_get_id: the compat IOAS id, or -ENODEV */
export function* iommufdVfioCompatIoasGetId(ictx: IommufdCtx): KGen<number> {
  const ioas = yield* getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  const id = ioas.id;
  yield* iommufdPutObject(ictx, ioas);
  return id;
}

/** iommufd_vfio_compat_set_no_iommu */
export function* iommufdVfioCompatSetNoIommu(ictx: IommufdCtx): KGen<number> {
  yield* spinLock(ictx.objectsLock);
  let ret = 0;
  if (!ictx.vfioIoas) ictx.noIommuMode = true;
  else ret = -EINVAL;
  yield* spinUnlock(ictx.objectsLock);
  return ret;
}

/**
 * iommufd_vfio_compat_ioas_create: make sure a compat IOAS exists (a new one consumes the lowest
 * free ID; if one already exists the new allocation is undone and its ID freed).
 */
export function* iommufdVfioCompatIoasCreate(ictx: IommufdCtx): KGen<number> {
  const ioas = iommufdIoasAlloc(ictx);
  if (typeof ioas === 'number') return ioas;
  yield* spinLock(ictx.objectsLock);
  let ret = 0;
  out: {
    // VFIO won't allow attaching a container to both iommu and no-iommu operation
    if (ictx.noIommuMode) {
      ret = -EINVAL;
      break out;
    }
    if (ictx.vfioIoas && (yield* iommufdLockObj(ictx.vfioIoas))) {
      yield* iommufdPutObject(ictx, ictx.vfioIoas);
      break out;
    }
    ictx.vfioIoas = ioas;
    yield* spinUnlock(ictx.objectsLock);
    yield* iommufdObjectFinalize(ictx, ioas);
    ictx.kernel.event('iommufd_compat_ioas', { ctx: ictx.num, id: ioas.id });
    return 0;
  }
  yield* spinUnlock(ictx.objectsLock);
  yield* iommufdObjectAbort(ictx, ioas);
  return ret;
}

/** IOMMU_VFIO_IOAS */
export function* iommufdVfioIoas(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'ioas_id' | 'op' | '__reserved'>;
  const ictx = ucmd.ictx;
  if (cmd.get('__reserved')) return -EOPNOTSUPP;
  switch (cmd.get('op')) {
    case I.IOMMU_VFIO_IOAS_GET: {
      const ioas = yield* getCompatIoas(ictx);
      if (typeof ioas === 'number') return ioas;
      cmd.set('ioas_id', ioas.id);
      yield* iommufdPutObject(ictx, ioas);
      return ucmd.respond(I.iommu_vfio_ioas.size);
    }
    case I.IOMMU_VFIO_IOAS_SET: {
      const ioas = yield* iommufdGetIoas(ictx, cmd.get('ioas_id'));
      if (typeof ioas === 'number') return ioas;
      yield* spinLock(ictx.objectsLock);
      ictx.vfioIoas = ioas;
      yield* spinUnlock(ictx.objectsLock);
      yield* iommufdPutObject(ictx, ioas);
      return 0;
    }
    case I.IOMMU_VFIO_IOAS_CLEAR:
      yield* spinLock(ictx.objectsLock);
      ictx.vfioIoas = null;
      yield* spinUnlock(ictx.objectsLock);
      return 0;
    default:
      return -EOPNOTSUPP;
  }
}

/** iommufd_vfio_cc_iommu */
function* iommufdVfioCcIommu(ictx: IommufdCtx): KGen<number> {
  const ioas = yield* getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  let rc = 1;
  for (const h of ioas.hwptList) if (!h.enforceCacheCoherency) rc = 0;
  yield* iommufdPutObject(ictx, ioas);
  return rc;
}

/** iommufd_vfio_check_extension */
function* iommufdVfioCheckExtension(ictx: IommufdCtx, type: bigint): KGen<number> {
  switch (Number(type)) {
    case U.VFIO_TYPE1_IOMMU:
    case U.VFIO_TYPE1v2_IOMMU:
    case U.VFIO_UNMAP_ALL:
      return ictx.noIommuMode ? 0 : 1;
    case U.VFIO_NOIOMMU_IOMMU:
      return 1; // CONFIG_VFIO_NOIOMMU
    case U.VFIO_DMA_CC_IOMMU:
      return yield* iommufdVfioCcIommu(ictx);
    default:
      return 0;
  }
}

/** iommufd_vfio_set_iommu */
function* iommufdVfioSetIommu(ictx: IommufdCtx, type: bigint): KGen<number> {
  const noIommu = ictx.noIommuMode;
  if (type === BigInt(U.VFIO_NOIOMMU_IOMMU) && noIommu) {
    if (!capable('CAP_SYS_RAWIO')) return -EPERM;
    return 0;
  }
  if ((type !== BigInt(U.VFIO_TYPE1_IOMMU) && type !== BigInt(U.VFIO_TYPE1v2_IOMMU)) || noIommu) return -EINVAL;
  // VFIO fails SET_IOMMU if there is no group
  const ioas = yield* getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  let rc = 0;
  if (type === BigInt(U.VFIO_TYPE1_IOMMU)) rc = yield* ioptDisableLargePages(ioas.iopt);
  yield* iommufdPutObject(ictx, ioas);
  return rc;
}

/** The type1-compatible mapping ioctls on the compat IOAS (the DMA-mapping model registers them). */
export interface CompatDmaHooks {
  getInfo(ictx: IommufdCtx, arg: bigint): KGen<number>;
  mapDma(ictx: IommufdCtx, arg: bigint): KGen<number>;
  unmapDma(ictx: IommufdCtx, arg: bigint): KGen<number>;
}
let compatDma: CompatDmaHooks | null = null;
export function setCompatDmaHooks(h: CompatDmaHooks): void {
  compatDma = h;
}

/** iommufd_vfio_ioctl: every command whose nr is outside the iommufd table lands here. */
export function* iommufdVfioIoctl(ictx: IommufdCtx, cmd: number, arg: bigint): KGen<number> {
  switch (cmd) {
    case U.VFIO_GET_API_VERSION:
      return U.VFIO_API_VERSION;
    case U.VFIO_SET_IOMMU:
      return yield* iommufdVfioSetIommu(ictx, arg);
    case U.VFIO_CHECK_EXTENSION:
      return yield* iommufdVfioCheckExtension(ictx, arg);
    case U.VFIO_IOMMU_GET_INFO:
      if (compatDma) return yield* compatDma.getInfo(ictx, arg);
      return -ENOIOCTLCMD;
    case U.VFIO_IOMMU_MAP_DMA:
      if (compatDma) return yield* compatDma.mapDma(ictx, arg);
      return -ENOIOCTLCMD;
    case U.VFIO_IOMMU_UNMAP_DMA:
      if (compatDma) return yield* compatDma.unmapDma(ictx, arg);
      return -ENOIOCTLCMD;
    default:
      return -ENOIOCTLCMD;
  }
}
