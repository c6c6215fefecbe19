// drivers/iommu/iommufd/vfio_compat.c: the compat IOAS a VFIO group uses when its "container" is an
// iommufd, IOMMU_VFIO_IOAS, and the VFIO container ioctls an iommufd answers (API version,
// extensions, SET_IOMMU, and type1's GET_INFO / MAP_DMA / UNMAP_DMA on the compat IOAS).

import { EFAULT, EINVAL, ENODEV, ENOIOCTLCMD, EOPNOTSUPP, EPERM } from '../kernel/errno.js';
import { capable, currentMm } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { downRead, spinLock, spinUnlock, upRead } from '../kernel/sync.js';
import { PAGE_SIZE, copyFromUser, copyToUser, uptr } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import * as U from '../uapi/vfio.js';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '../iommu/iommu.js';
import {
  ULONG_MAX, ioptCutIova, ioptDisableLargePages, ioptMapUserPages, ioptReservedHoles, ioptUnmapAll, ioptUnmapIova,
} from './io_pagetable.js';
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

/** iommufd_vfio_map_dma: IOAS_MAP at a fixed IOVA (no check that READ or WRITE is given) */
function* iommufdVfioMapDma(ictx: IommufdCtx, arg: bigint): KGen<number> {
  const minsz = offsetofend(U.vfio_iommu_type1_dma_map, 'size');
  const b = copyFromUser(currentMm(), uptr(arg), minsz);
  if (typeof b === 'number') return -EFAULT;
  const map = new StructBuf(U.vfio_iommu_type1_dma_map, b);
  if (map.get('argsz') < minsz || map.get('flags') & ~(U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE)) return -EINVAL;
  let prot = IOMMU_CACHE;
  if (map.get('flags') & U.VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if (map.get('flags') & U.VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  const ioas = yield* getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  // maps made through the legacy interface follow the context's accounting mode
  const iova = { v: map.big('iova') };
  const rc = yield* ioptMapUserPages(ictx.accountMode, ioas.iopt, iova, map.big('vaddr'), map.big('size'), prot, 0);
  yield* iommufdPutObject(ictx, ioas);
  return rc;
}

/**
 * iommufd_vfio_unmap_dma: UNMAP_ALL, or a range (cut at its edges first when TYPE1 disabled
 * large pages); nothing unmapped is success; `size` is written back even when the unmap failed.
 */
function* iommufdVfioUnmapDma(ictx: IommufdCtx, arg: bigint): KGen<number> {
  const minsz = offsetofend(U.vfio_iommu_type1_dma_unmap, 'size');
  const mm = currentMm();
  const p = uptr(arg);
  const b = copyFromUser(mm, p, minsz);
  if (typeof b === 'number') return -EFAULT;
  const unmap = new StructBuf(U.vfio_iommu_type1_dma_unmap, b);
  // GET_DIRTY_BITMAP and VADDR are not supported
  if (unmap.get('argsz') < minsz || unmap.get('flags') & ~U.VFIO_DMA_UNMAP_FLAG_ALL) return -EINVAL;
  const ioas = yield* getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  const unmapped = { v: 0n };
  let rc: number;
  out: {
    const iova = unmap.big('iova');
    const size = unmap.big('size');
    if (unmap.get('flags') & U.VFIO_DMA_UNMAP_FLAG_ALL) {
      if (iova !== 0n || size !== 0n) {
        rc = -EINVAL;
        break out;
      }
      rc = yield* ioptUnmapAll(ioas.iopt, unmapped);
    } else {
      if (ioas.iopt.disableLargePages) {
        // cut at the last byte and before the first one (an IOVA of 0 needs no cut)
        const iovas = [BigInt.asUintN(64, iova + size - 1n), BigInt.asUintN(64, iova - 1n)];
        rc = yield* ioptCutIova(ioas.iopt, iova ? iovas : iovas.slice(0, 1));
        if (rc) break out;
      }
      rc = yield* ioptUnmapIova(ioas.iopt, iova, size, unmapped);
    }
    unmap.set('size', unmapped.v);
    if (copyToUser(mm, p, unmap.buf.subarray(0, minsz)) < 0) rc = -EFAULT;
  }
  yield* iommufdPutObject(ictx, ioas);
  return rc;
}

/** iommufd_get_pagesizes: what every domain supports (sub-page sizes folded to PAGE_SIZE), at least the IOAS alignment */
function* iommufdGetPagesizes(ioas: IommufdIoas): KGen<bigint> {
  const iopt = ioas.iopt;
  yield* downRead(iopt.domainsRwsem);
  let bitmap = ULONG_MAX;
  for (const d of iopt.domains) bitmap &= d.pgsizeBitmap;
  // see vfio_update_pgsize_bitmap()
  const pageMask = ULONG_MAX & ~(BigInt(PAGE_SIZE) - 1n);
  if (bitmap & ~pageMask) {
    bitmap &= pageMask;
    bitmap |= BigInt(PAGE_SIZE);
  }
  if (iopt.iovaAlignment > bitmap) bitmap = iopt.iovaAlignment;
  yield* upRead(iopt.domainsRwsem);
  return bitmap;
}

/** iommufd_fill_cap_dma_avail: the size the capability needs; written only if it fits */
function fillCapDmaAvail(cur: number, avail: number): number {
  const cap = new StructBuf(U.vfio_iommu_type1_info_dma_avail);
  cap.buf.set(new StructBuf(U.vfio_info_cap_header).set('id', U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL).set('version', 1).buf, 0);
  // iommufd's limit is the cgroup's memory limit: U32_MAX rather than vfio's U16_MAX
  cap.set('avail', 0xffffffff);
  if (avail >= cap.buf.length && copyToUser(currentMm(), cur, cap.buf) < 0) return -EFAULT;
  return cap.buf.length;
}

/** iommufd_fill_cap_iova: each range written if it fits, the header only if all of them fit */
function fillCapIova(ioas: IommufdIoas, cur: number, avail: number): number {
  const mm = currentMm();
  const S = U.vfio_iommu_type1_info_cap_iova_range;
  const structSize = (n: number) => S.size + n * U.vfio_iova_range.size;
  let nr = 0;
  for (const h of ioptReservedHoles(ioas.iopt)) {
    const r = new StructBuf(U.vfio_iova_range).set('start', h.start).set('end', h.last);
    if (avail >= structSize(nr + 1) && copyToUser(mm, cur + structSize(nr), r.buf) < 0) return -EFAULT;
    nr++;
  }
  const cap = new StructBuf(S);
  cap.buf.set(new StructBuf(U.vfio_info_cap_header).set('id', U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE).set('version', 1).buf, 0);
  cap.set('nr_iovas', nr);
  if (avail >= structSize(nr) && copyToUser(mm, cur, cap.buf) < 0) return -EFAULT;
  return structSize(nr);
}

/**
 * iommufd_vfio_iommu_get_info: DMA_AVAIL then IOVA_RANGE capabilities; argsz always becomes the
 * full size, cap_offset is set only when everything fitted.
 */
function* iommufdVfioIommuGetInfo(ictx: IommufdCtx, arg: bigint): KGen<number> {
  const S = U.vfio_iommu_type1_info;
  let minsz = offsetofend(S, 'iova_pgsizes');
  const mm = currentMm();
  const p = uptr(arg);
  const b = copyFromUser(mm, p, minsz);
  if (typeof b === 'number') return -EFAULT;
  const info = new StructBuf(S);
  info.buf.set(b);
  const argsz = info.get('argsz');
  if (argsz < minsz) return -EINVAL;
  minsz = Math.min(argsz, S.size);
  const ioas = yield* getCompatIoas(ictx);
  if (typeof ioas === 'number') return ioas;
  info.set('flags', U.VFIO_IOMMU_INFO_PGSIZES);
  info.set('iova_pgsizes', yield* iommufdGetPagesizes(ioas));
  info.set('cap_offset', 0);
  yield* downRead(ioas.iopt.iovaRwsem);
  let rc = 0;
  out: {
    let total = S.size;
    let lastCap = -1;
    for (let i = 0; i < 2; i++) {
      const cur = argsz > total ? p + total : -1;
      const avail = argsz > total ? argsz - total : 0;
      let capSize = i === 0 ? fillCapDmaAvail(cur, avail) : fillCapIova(ioas, cur, avail);
      if (capSize < 0) {
        rc = capSize;
        break out;
      }
      capSize = Math.ceil(capSize / 8) * 8;
      if (lastCap >= 0 && argsz >= total) {
        const nb = new Uint8Array(4);
        new DataView(nb.buffer).setUint32(0, total, true);
        if (copyToUser(mm, lastCap + U.vfio_info_cap_header.byName.next.offset, nb) < 0) {
          rc = -EFAULT;
          break out;
        }
      }
      lastCap = p + total;
      total += capSize;
    }
    // without room for every capability only some are returned; argsz tells the size needed
    if (argsz >= total) info.set('cap_offset', S.size);
    info.set('argsz', total);
    info.set('flags', info.get('flags') | U.VFIO_IOMMU_INFO_CAPS);
    if (copyToUser(mm, p, info.buf.subarray(0, minsz)) < 0) rc = -EFAULT;
  }
  yield* upRead(ioas.iopt.iovaRwsem);
  yield* iommufdPutObject(ictx, ioas);
  return rc;
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
      return yield* iommufdVfioIommuGetInfo(ictx, arg);
    case U.VFIO_IOMMU_MAP_DMA:
      return yield* iommufdVfioMapDma(ictx, arg);
    case U.VFIO_IOMMU_UNMAP_DMA:
      return yield* iommufdVfioUnmapDma(ictx, arg);
    case U.VFIO_IOMMU_DIRTY_PAGES:
    default:
      return -ENOIOCTLCMD;
  }
}
