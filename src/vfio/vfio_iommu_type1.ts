// drivers/vfio/vfio_iommu_type1.c: the type1 / type1v2 container backend — instances, domains,
// attached groups and the valid IOVA list. (The mapping uAPI is modelled in vfio_iommu_type1_dma.ts.)

import { EBUSY, EINVAL, ENOTTY, EPERM } from '../kernel/errno.js';
import { Kernel } from '../kernel/kernel.js';
import { KGen } from '../kernel/sched.js';
import { Mutex, mutexLock, mutexUnlock } from '../kernel/sync.js';
import * as U from '../uapi/vfio.js';
import {
  IommuDomain, IommuGroup, iommuAttachGroup, iommuDetachGroup,
} from '../iommu/iommu.js';
import { VfioGroupType } from './vfio.js';
import type { VfioIommuDriverOps } from './container.js';

/** vfio_iommu_type1 module parameters */
export interface Type1Params {
  allowUnsafeInterrupts: boolean;
  disableHugepages: boolean;
  /** dma_entry_limit: mapping slots per container instance */
  dmaEntryLimit: number;
}

export function type1Params(k: Kernel): Type1Params {
  return k.state<Type1Params>('vfio_iommu_type1', () => ({
    allowUnsafeInterrupts: false,
    disableHugepages: false,
    dmaEntryLimit: 65535,
  }));
}

export interface IovaRange {
  start: bigint;
  /** inclusive */
  end: bigint;
}

/** struct vfio_domain */
export class VfioDomain {
  readonly groups: IommuGroup[] = [];
  enforceCacheCoherency = false;
  constructor(readonly domain: IommuDomain) {}
}

/** struct vfio_iommu: one per container with SET_IOMMU(type1) done. */
export class VfioIommu {
  readonly lock = new Mutex('vfio_iommu->lock');
  readonly domains: VfioDomain[] = [];
  readonly emulatedGroups: IommuGroup[] = [];
  /** the usable IOVA ranges (aperture minus reserved regions), sorted */
  iovaList: IovaRange[] = [];
  dmaAvail: number;
  pgsizeBitmap: bigint;
  vaddrInvalidCount = 0;
  numNonPinnedGroups = 0;
  /** the mapping state, owned by the DMA module */
  dma: unknown = null;
  constructor(
    readonly kernel: Kernel,
    readonly v2: boolean,
  ) {
    this.dmaAvail = type1Params(kernel).dmaEntryLimit;
    // PAGE_MASK: every size from PAGE_SIZE up
    this.pgsizeBitmap = ~0xfffn & 0xffffffffffffffffn;
  }
  findGroup(g: IommuGroup): boolean {
    return this.emulatedGroups.includes(g) || this.domains.some((d) => d.groups.includes(g));
  }
  hasEmulated(): boolean {
    return this.emulatedGroups.length > 0;
  }
}

/** The DMA-mapping part of the backend registers its ioctl handler and conflict checks here. */
export interface Type1DmaHooks {
  ioctl(iommu: VfioIommu, cmd: number, arg: bigint): KGen<number>;
  /** existing mappings outside [start, end] (vfio_iommu_aper_conflict) */
  aperConflict(iommu: VfioIommu, start: bigint, end: bigint): boolean;
  /** existing mappings overlapping a reserved region (vfio_iommu_resv_conflict) */
  resvConflict(iommu: VfioIommu, resv: IovaRange[]): boolean;
  /** pin and map every mapping into a new domain (vfio_iommu_replay) */
  replay(iommu: VfioIommu, domain: VfioDomain): KGen<number>;
  /** release: unmap and unpin everything */
  removeAll(iommu: VfioIommu): void;
}

let dmaHooks: Type1DmaHooks | null = null;
export function setType1DmaHooks(h: Type1DmaHooks): void {
  dmaHooks = h;
}

/** vfio_iommu_type1_check_extension */
function checkExtension(iommu: VfioIommu | null, arg: bigint): number {
  switch (Number(arg)) {
    case U.VFIO_TYPE1_IOMMU:
    case U.VFIO_TYPE1v2_IOMMU:
    case U.VFIO_UNMAP_ALL:
      return 1;
    case U.VFIO_UPDATE_VADDR:
      // disabled if mdevs are present: they cannot pin while vaddrs change
      return iommu && !iommu.hasEmulated() ? 1 : 0;
    case U.VFIO_DMA_CC_IOMMU:
      if (!iommu) return 0;
      return iommu.domains.length > 0 && iommu.domains.every((d) => d.enforceCacheCoherency) ? 1 : 0;
    default:
      return 0;
  }
}

/** iova list helpers (vfio_iommu_aper_resize, vfio_iommu_resv_exclude) */
export function aperResize(list: IovaRange[], start: bigint, end: bigint): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  const out: IovaRange[] = [];
  for (const r of list) {
    const s = r.start > start ? r.start : start;
    const e = r.end < end ? r.end : end;
    if (s <= e) out.push({ start: s, end: e });
  }
  return out;
}

export function resvExclude(list: IovaRange[], resv: IovaRange[]): IovaRange[] {
  let cur = list;
  for (const rv of resv) {
    const out: IovaRange[] = [];
    for (const r of cur) {
      if (rv.end < r.start || rv.start > r.end) {
        out.push(r);
        continue;
      }
      if (r.start < rv.start) out.push({ start: r.start, end: rv.start - 1n });
      if (r.end > rv.end) out.push({ start: rv.end + 1n, end: r.end });
    }
    cur = out;
  }
  return cur;
}

function groupResvRegions(g: IommuGroup): IovaRange[] {
  const regions = g.devices.length ? g.hw.reservedRegions : [];
  return regions.map((r) => ({ start: r.start, end: r.last }));
}

function updatePgsizeBitmap(iommu: VfioIommu): void {
  let bm = 0xffffffffffffffffn & ~0xfffn;
  for (const d of iommu.domains) bm &= d.domain.pgsizeBitmap;
  // a domain supporting sub-page sizes still maps in PAGE_SIZE units
  if (bm & 0xfffn) bm = (bm & ~0xfffn) | 0x1000n;
  iommu.pgsizeBitmap = bm;
}

export const vfioIommuType1Ops: VfioIommuDriverOps = {
  name: 'vfio-iommu-type1',

  *open(k: Kernel, arg: bigint) {
    switch (Number(arg)) {
      case U.VFIO_TYPE1_IOMMU:
        return { data: new VfioIommu(k, false) };
      case U.__VFIO_RESERVED_TYPE1_NESTING_IOMMU:
      case U.VFIO_TYPE1v2_IOMMU:
        return { data: new VfioIommu(k, true) };
      default:
        return { err: -EINVAL };
    }
  },

  *release(data: unknown) {
    const iommu = data as VfioIommu;
    dmaHooks?.removeAll(iommu);
    for (const d of iommu.domains) for (const g of d.groups) yield* iommuDetachGroup(d.domain, g);
    iommu.domains.length = 0;
    iommu.emulatedGroups.length = 0;
  },

  *ioctl(data: unknown, cmd: number, arg: bigint) {
    const iommu = data as VfioIommu | null;
    if (cmd === U.VFIO_CHECK_EXTENSION) return checkExtension(iommu, arg);
    if (!iommu || !dmaHooks) return -ENOTTY;
    return yield* dmaHooks.ioctl(iommu, cmd, arg);
  },

  /** vfio_iommu_type1_attach_group */
  *attachGroup(data: unknown, iommuGroup: IommuGroup, type: VfioGroupType) {
    const iommu = data as VfioIommu;
    const k = iommu.kernel;
    let ret = 0;
    yield* mutexLock(iommu.lock);
    out: {
      // attach could require pinning: not while a vaddr is invalid
      if (iommu.vaddrInvalidCount) {
        ret = -EBUSY;
        break out;
      }
      if (iommu.findGroup(iommuGroup)) {
        ret = -EINVAL;
        break out;
      }
      if (type === VfioGroupType.VFIO_EMULATED_IOMMU) {
        iommu.emulatedGroups.push(iommuGroup);
        break out;
      }
      const domain = new VfioDomain(new IommuDomain('paging', iommuGroup.hw));
      domain.domain.owner = iommu;
      ret = yield* iommuAttachGroup(domain.domain, iommuGroup);
      if (ret) break out;
      const detach = function* () {
        yield* iommuDetachGroup(domain.domain, iommuGroup);
      };
      if (dmaHooks?.aperConflict(iommu, 0n, domain.domain.apertureEnd)) {
        yield* detach();
        ret = -EINVAL;
        break out;
      }
      const resv = groupResvRegions(iommuGroup);
      if (dmaHooks?.resvConflict(iommu, resv)) {
        yield* detach();
        ret = -EINVAL;
        break out;
      }
      const iovaCopy = resvExclude(aperResize(iommu.iovaList, 0n, domain.domain.apertureEnd), resv);
      domain.groups.push(iommuGroup);
      if (!type1Params(k).allowUnsafeInterrupts && !iommuGroup.hw.isolatedMsi) {
        k.printk('vfio_iommu_type1_attach_group: No interrupt remapping support');
        yield* detach();
        ret = -EPERM;
        break out;
      }
      domain.enforceCacheCoherency = iommuGroup.hw.enforceCacheCoherency;
      // try to reuse a compatible domain
      let merged = false;
      for (const d of iommu.domains) {
        if (d.enforceCacheCoherency === domain.enforceCacheCoherency) {
          yield* iommuDetachGroup(domain.domain, iommuGroup);
          if ((yield* iommuAttachGroup(d.domain, iommuGroup)) === 0) {
            d.groups.push(iommuGroup);
            merged = true;
            break;
          }
          ret = yield* iommuAttachGroup(domain.domain, iommuGroup);
          if (ret) break out;
        }
      }
      if (!merged) {
        if (dmaHooks) {
          ret = yield* dmaHooks.replay(iommu, domain);
          if (ret) {
            yield* detach();
            break out;
          }
        }
        iommu.domains.push(domain);
        updatePgsizeBitmap(iommu);
      }
      iommu.iovaList = iovaCopy;
      iommu.numNonPinnedGroups++;
    }
    yield* mutexUnlock(iommu.lock);
    return ret;
  },

  /** vfio_iommu_type1_detach_group */
  *detachGroup(data: unknown, iommuGroup: IommuGroup) {
    const iommu = data as VfioIommu;
    yield* mutexLock(iommu.lock);
    const e = iommu.emulatedGroups.indexOf(iommuGroup);
    if (e >= 0) {
      iommu.emulatedGroups.splice(e, 1);
    } else {
      for (const d of iommu.domains) {
        const i = d.groups.indexOf(iommuGroup);
        if (i < 0) continue;
        yield* iommuDetachGroup(d.domain, iommuGroup);
        d.groups.splice(i, 1);
        if (d.groups.length === 0) {
          // the last domain going away with emulated groups left keeps mappings but unpins them
          iommu.domains.splice(iommu.domains.indexOf(d), 1);
          updatePgsizeBitmap(iommu);
        }
        iommu.numNonPinnedGroups--;
        break;
      }
      // recompute the IOVA list from the remaining domains' apertures and reserved regions
      let list: IovaRange[] = [];
      for (const d of iommu.domains) {
        list = aperResize(list, 0n, d.domain.apertureEnd);
        for (const g of d.groups) list = resvExclude(list, groupResvRegions(g));
      }
      iommu.iovaList = list;
    }
    yield* mutexUnlock(iommu.lock);
  },
};

