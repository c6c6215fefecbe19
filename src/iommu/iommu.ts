// The IOMMU core as VFIO and iommufd use it (drivers/iommu/iommu.c): IOMMU groups, DMA
// ownership (owner_cnt/owner), domains attached to groups, device reserved regions and the
// capabilities VFIO checks. The hardware is described by the host (an Intel VT-d-like IOMMU).

import { ENODEV, EBUSY, EEXIST, EINVAL, EPERM } from '../kernel/errno.js';
import { Interval, IntervalTree } from '../kernel/interval_tree.js';
import { PinnedPages } from '../kernel/uaccess.js';
import { Kernel } from '../kernel/kernel.js';
import { KGen, KObject } from '../kernel/sched.js';
import { Mutex, mutexLock, mutexUnlock } from '../kernel/sync.js';

/** What the simulated IOMMU hardware offers (per host). */
export interface IommuHw {
  /** bitmap of supported page sizes (VT-d: 4K | 2M | 1G) */
  pgsizeBitmap: bigint;
  /** usable input address range [0, apertureEnd] (VT-d with 39-bit AGAW: 2^39 - 1) */
  apertureEnd: bigint;
  /** interrupt remapping: MSIs isolated (iommu_group_has_isolated_msi) */
  isolatedMsi: boolean;
  /** IOMMU_CAP_CACHE_COHERENCY */
  cacheCoherency: boolean;
  /** IOMMU_CAP_ENFORCE_CACHE_COHERENCY (VT-d snoop control) */
  enforceCacheCoherency: boolean;
  /** IOMMU_CAP_DIRTY_TRACKING */
  dirtyTracking: boolean;
  /** the per-device reserved regions (x86: the MSI window) */
  reservedRegions: ReservedRegion[];
  /** name of the default domain type shown in sysfs (DMA, DMA-FQ, identity) */
  defaultDomainType: string;
  /** VT-d cap_reg / ecap_reg as IOMMU_GET_HW_INFO reports them (a recorded machine's); null: the model's */
  vtdRegs?: { cap: bigint; ecap: bigint } | null;
}

export interface ReservedRegion {
  start: bigint;
  /** inclusive */
  last: bigint;
  type: 'msi' | 'direct' | 'direct-relaxable' | 'reserved' | 'msi-sw';
}

export const DEFAULT_IOMMU_HW: IommuHw = {
  pgsizeBitmap: 0x40201000n, // 4K | 2M | 1G
  apertureEnd: (1n << 39n) - 1n,
  isolatedMsi: true,
  cacheCoherency: true,
  enforceCacheCoherency: false,
  dirtyTracking: false,
  reservedRegions: [{ start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' }],
  defaultDomainType: 'DMA',
};

export type DomainType = 'identity' | 'dma' | 'blocked' | 'paging';

/** IOMMU_READ / IOMMU_WRITE / IOMMU_CACHE (include/linux/iommu.h) */
export const IOMMU_READ = 1;
export const IOMMU_WRITE = 2;
export const IOMMU_CACHE = 4;

/** One translation of a paging domain: [start, last] -> pinned pages from byte `off`. */
export interface DomainMapping extends Interval {
  pages: PinnedPages;
  off: number;
  prot: number;
}

let nextDomainId = 1;

/** struct iommu_domain, with the page table a paging domain holds */
export class IommuDomain {
  readonly id = nextDomainId++;
  /** what created it: 'default', 'blocking', an iommufd HWPT, a type1 domain */
  owner: unknown = null;
  /** IOVA -> pinned pages (paging domains) */
  readonly pt = new IntervalTree<DomainMapping>();
  /** bytes mapped */
  mapped = 0n;
  constructor(
    readonly type: DomainType,
    readonly hw: IommuHw,
  ) {}
  get pgsizeBitmap(): bigint {
    return this.hw.pgsizeBitmap;
  }
  get apertureEnd(): bigint {
    return this.hw.apertureEnd;
  }
}

/**
 * iommu_map: map [iova, iova+len) to `pages` from byte `off`. -EINVAL outside the aperture or for
 * a paging-less domain, -EEXIST over an existing translation.
 */
export function iommuMap(d: IommuDomain, iova: bigint, pages: PinnedPages, off: number, len: bigint, prot: number): number {
  if (d.type !== 'paging' || len <= 0n) return -EINVAL;
  const last = iova + len - 1n;
  if (last > d.apertureEnd) return -EINVAL;
  if (d.pt.first(iova, last)) return -EEXIST;
  d.pt.insert({ start: iova, last, pages, off, prot });
  d.mapped += len;
  return 0;
}

/** iommu_unmap: remove every translation in [iova, iova+len), splitting partial ones; bytes unmapped. */
export function iommuUnmap(d: IommuDomain, iova: bigint, len: bigint): bigint {
  if (len <= 0n) return 0n;
  const last = iova + len - 1n;
  let done = 0n;
  for (const m of d.pt.range(iova, last)) {
    d.pt.delete(m);
    if (m.start < iova) d.pt.insert({ ...m, last: iova - 1n });
    if (m.last > last) d.pt.insert({ ...m, start: last + 1n, off: m.off + Number(last + 1n - m.start) });
    const s = m.start > iova ? m.start : iova;
    const e = m.last < last ? m.last : last;
    done += e - s + 1n;
  }
  d.mapped -= done;
  return done;
}

/** iommu_iova_to_phys: the translation of one IOVA. */
export function iommuTranslate(d: IommuDomain, iova: bigint): { pages: PinnedPages; off: number; prot: number; last: bigint } | null {
  const m = d.pt.find(iova);
  if (!m) return null;
  return { pages: m.pages, off: m.off + Number(iova - m.start), prot: m.prot, last: m.last };
}

/** The device side the IOMMU core needs (a PCI function). */
export interface IommuDevice {
  readonly name: string;
  iommuGroup: IommuGroup | null;
}

/** struct iommu_group */
export class IommuGroup extends KObject {
  readonly devices: IommuDevice[] = [];
  readonly mutex: Mutex;
  ownerCnt = 0;
  owner: unknown = null;
  readonly defaultDomain: IommuDomain;
  blockingDomain: IommuDomain | null = null;
  domain: IommuDomain;
  /** PASID attachments (iommu_attach_device_pasid) */
  readonly pasidArray = new Map<number, IommuDomain>();
  /** "vfio-noiommu" for VFIO's fake groups */
  name: string | null = null;
  /** the group object is gone (last device removed) */
  dead = false;
  constructor(
    readonly id: number,
    readonly hw: IommuHw,
  ) {
    super(`iommu_group ${id}`);
    this.mutex = new Mutex(`iommu_group ${id}->mutex`);
    this.defaultDomain = new IommuDomain('dma', hw);
    this.defaultDomain.owner = 'default';
    this.domain = this.defaultDomain;
  }
}

interface IommuState {
  groups: Map<number, IommuGroup>;
  hw: IommuHw;
}

export function iommuState(k: Kernel): IommuState {
  return k.state<IommuState>('iommu', () => ({ groups: new Map(), hw: DEFAULT_IOMMU_HW }));
}

/** The sysfs directory of a group. */
export function iommuGroupSysfs(g: IommuGroup): string {
  return `/sys/kernel/iommu_groups/${g.id}`;
}

function fmtRegion(r: ReservedRegion): string {
  const h = (v: bigint) => '0x' + v.toString(16).padStart(16, '0');
  return `${h(r.start)} ${h(r.last)} ${r.type}`;
}

/** iommu_group_alloc with a given id (the host decides the numbering), sysfs included. */
export function iommuGroupCreate(k: Kernel, id: number, hw = iommuState(k).hw): IommuGroup {
  const st = iommuState(k);
  if (st.groups.has(id)) throw new Error(`iommu group ${id} exists`);
  const g = new IommuGroup(id, hw);
  st.groups.set(id, g);
  const dir = iommuGroupSysfs(g);
  k.vfs.mkdirp(`${dir}/devices`, k.sysFs);
  k.vfs.addAttr(`${dir}/reserved_regions`, {
    show: () => {
      const regions = g.devices.length > 0 ? hw.reservedRegions : [];
      return regions.map((r) => fmtRegion(r) + '\n').join('');
    },
  });
  k.vfs.addAttr(
    `${dir}/type`,
    {
      show: () => `${g.hw.defaultDomainType}\n`,
    },
    0o644,
  );
  return g;
}

/** The lowest group id not in use (for VFIO's fake noiommu/emulated groups). */
export function iommuGroupAllocId(k: Kernel): number {
  const st = iommuState(k);
  let id = 0;
  while (st.groups.has(id)) id++;
  return id;
}

/** iommu_group_add_device: membership, sysfs links both ways. */
export function iommuGroupAddDevice(k: Kernel, g: IommuGroup, dev: IommuDevice, devSysfs: string): void {
  g.devices.push(dev);
  dev.iommuGroup = g;
  const dir = iommuGroupSysfs(g);
  k.vfs.addRelLink(`${dir}/devices/${dev.name}`, devSysfs);
  k.vfs.addRelLink(`${devSysfs}/iommu_group`, dir);
}

/** iommu_group_remove_device; the group goes away with its last device (for fake groups). */
export function iommuGroupRemoveDevice(k: Kernel, dev: IommuDevice, devSysfs: string): void {
  const g = dev.iommuGroup;
  if (!g) return;
  const i = g.devices.indexOf(dev);
  if (i >= 0) g.devices.splice(i, 1);
  dev.iommuGroup = null;
  k.vfs.remove(`${iommuGroupSysfs(g)}/devices/${dev.name}`);
  k.vfs.remove(`${devSysfs}/iommu_group`);
  if (g.devices.length === 0) {
    // the group is released with its last device
    g.dead = true;
    iommuState(k).groups.delete(g.id);
    k.vfs.remove(iommuGroupSysfs(g));
  }
}

/** iommu_group_set_name */
export function iommuGroupSetName(k: Kernel, g: IommuGroup, name: string): void {
  g.name = name;
  k.vfs.addAttr(`${iommuGroupSysfs(g)}/name`, { show: () => `${name}\n` });
}

// ---- DMA ownership (drivers/iommu/iommu.c) --------------------------------------------------------

/** iommu_device_use_default_domain: a kernel driver using the DMA API binds. */
export function* iommuDeviceUseDefaultDomain(dev: IommuDevice): KGen<number> {
  const g = dev.iommuGroup;
  if (!g) return 0;
  yield* mutexLock(g.mutex);
  let ret = 0;
  if (g.ownerCnt && (g.domain !== g.defaultDomain || g.owner !== null || g.pasidArray.size > 0)) ret = -EBUSY;
  else g.ownerCnt++;
  yield* mutexUnlock(g.mutex);
  return ret;
}

/** iommu_device_unuse_default_domain */
export function* iommuDeviceUnuseDefaultDomain(dev: IommuDevice, warn: (m: string) => void): KGen<void> {
  const g = dev.iommuGroup;
  if (!g) return;
  yield* mutexLock(g.mutex);
  if (!g.ownerCnt || g.pasidArray.size > 0) warn(`iommu_device_unuse_default_domain: ${dev.name} not a user`);
  else g.ownerCnt--;
  yield* mutexUnlock(g.mutex);
}

function takeDmaOwnership(g: IommuGroup, owner: unknown): number {
  if (g.domain !== g.defaultDomain || g.pasidArray.size > 0) return -EBUSY;
  if (!g.blockingDomain) {
    g.blockingDomain = new IommuDomain('blocked', g.hw);
    g.blockingDomain.owner = 'blocking';
  }
  g.domain = g.blockingDomain;
  g.owner = owner;
  g.ownerCnt++;
  return 0;
}

function releaseDmaOwnership(g: IommuGroup, warn: (m: string) => void): void {
  if (!g.ownerCnt || !g.owner || g.pasidArray.size > 0) {
    warn(`__iommu_release_dma_ownership: ${g.label} not owned`);
    return;
  }
  g.ownerCnt = 0;
  g.owner = null;
  g.domain = g.defaultDomain;
}

/** iommu_group_claim_dma_owner: exclusive ownership of the whole group (legacy VFIO container). */
export function* iommuGroupClaimDmaOwner(g: IommuGroup, owner: unknown): KGen<number> {
  if (!owner) return -EINVAL;
  yield* mutexLock(g.mutex);
  const ret = g.ownerCnt ? -EPERM : takeDmaOwnership(g, owner);
  yield* mutexUnlock(g.mutex);
  return ret;
}

/** iommu_group_release_dma_owner */
export function* iommuGroupReleaseDmaOwner(g: IommuGroup, warn: (m: string) => void): KGen<void> {
  yield* mutexLock(g.mutex);
  releaseDmaOwnership(g, warn);
  yield* mutexUnlock(g.mutex);
}

/** iommu_device_claim_dma_owner: per device; devices of one group may share the same owner. */
export function* iommuDeviceClaimDmaOwner(dev: IommuDevice, owner: unknown): KGen<number> {
  if (!owner) return -EINVAL;
  const g = dev.iommuGroup;
  if (!g) return -ENODEV;
  yield* mutexLock(g.mutex);
  let ret = 0;
  if (g.ownerCnt) {
    if (g.owner !== owner) ret = -EPERM;
    else g.ownerCnt++;
  } else ret = takeDmaOwnership(g, owner);
  yield* mutexUnlock(g.mutex);
  return ret;
}

/** iommu_device_release_dma_owner */
export function* iommuDeviceReleaseDmaOwner(dev: IommuDevice, warn: (m: string) => void): KGen<void> {
  const g = dev.iommuGroup!;
  yield* mutexLock(g.mutex);
  if (g.ownerCnt > 1) g.ownerCnt--;
  else releaseDmaOwnership(g, warn);
  yield* mutexUnlock(g.mutex);
}

/** iommu_group_dma_owner_claimed (the "viable" test of VFIO_GROUP_GET_STATUS) */
export function* iommuGroupDmaOwnerClaimed(g: IommuGroup): KGen<boolean> {
  yield* mutexLock(g.mutex);
  const v = g.ownerCnt !== 0;
  yield* mutexUnlock(g.mutex);
  return v;
}

// ---- domains ----------------------------------------------------------------------------------

/** iommu_paging_domain_alloc */
export function iommuPagingDomainAlloc(dev: IommuDevice): IommuDomain | number {
  const g = dev.iommuGroup;
  if (!g) return -ENODEV;
  return new IommuDomain('paging', g.hw);
}

/**
 * __iommu_attach_group (iommu_attach_group / iommu_attach_group_handle): a group can be moved
 * to a new domain only from its default or blocking domain.
 */
export function* iommuAttachGroup(domain: IommuDomain, g: IommuGroup): KGen<number> {
  yield* mutexLock(g.mutex);
  let ret = 0;
  if (g.domain !== g.defaultDomain && g.domain !== g.blockingDomain) ret = -EBUSY;
  else g.domain = domain;
  yield* mutexUnlock(g.mutex);
  return ret;
}

/** iommu_replace_group_handle: switch an owned group to another domain. */
export function* iommuReplaceGroup(domain: IommuDomain, g: IommuGroup): KGen<number> {
  yield* mutexLock(g.mutex);
  let ret = 0;
  if (!g.owner) ret = -EINVAL;
  else g.domain = domain;
  yield* mutexUnlock(g.mutex);
  return ret;
}

/** iommu_detach_group(_handle): back to the blocking domain if owned, else the default one. */
export function* iommuDetachGroup(_domain: IommuDomain, g: IommuGroup): KGen<void> {
  yield* mutexLock(g.mutex);
  g.domain = g.owner && g.blockingDomain ? g.blockingDomain : g.defaultDomain;
  yield* mutexUnlock(g.mutex);
}

/** iommu_get_group_resv_regions: the reserved regions of a device. */
export function deviceReservedRegions(dev: IommuDevice): ReservedRegion[] {
  return dev.iommuGroup ? dev.iommuGroup.hw.reservedRegions : [];
}
