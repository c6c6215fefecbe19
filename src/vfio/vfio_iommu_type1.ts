// drivers/vfio/vfio_iommu_type1.c: the type1 / type1v2 container backend — instances, domains,
// attached groups, the valid IOVA list, and the DMA-mapping uAPI (GET_INFO, MAP_DMA, UNMAP_DMA,
// DIRTY_PAGES): user memory is pinned and accounted against RLIMIT_MEMLOCK and mirrored into
// every IOMMU domain of the container, so a device attached through it can DMA into the mapping
// process's memory with the mapping's permissions.

import {
  EACCES, EBUSY, EEXIST, EFAULT, EINVAL, ENODEV, ENOENT, ENOMEM, ENOSPC, ENOTTY, EOVERFLOW, EPERM, ESRCH,
} from '../kernel/errno.js';
import { capable, currentProcess } from '../kernel/current.js';
import { IntervalTree, Interval } from '../kernel/interval_tree.js';
import { Kernel } from '../kernel/kernel.js';
import type { Process } from '../kernel/process.js';
import { KGen } from '../kernel/sched.js';
import { Mutex, mutexLock, mutexUnlock } from '../kernel/sync.js';
import { PAGE_SIZE, PinnedPages, TASK_SIZE, copyFromUser, copyToUser, uptr } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import {
  IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE, IommuDomain, IommuGroup, iommuAttachGroup, iommuDetachGroup, iommuMap,
  iommuUnmap,
} from '../iommu/iommu.js';
import { VfioGroupType } from './vfio.js';
import { VfioInfoCap } from './vfio_main.js';
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

const U64_MAX = 0xffffffffffffffffn;
const PAGE = BigInt(PAGE_SIZE);
const PAGE_SHIFT = 12;
/** PAGE_MASK as an unsigned long */
const PAGE_MASK = U64_MAX & ~(PAGE - 1n);
/** DIRTY_BITMAP_PAGES_MAX: INT_MAX pages */
const DIRTY_BITMAP_PAGES_MAX = 0x7fffffffn;
/** DIRTY_BITMAP_BYTES(n): bytes of a bitmap of n bits in whole u64 words */
const dirtyBitmapBytes = (n: bigint): bigint => ((n + 63n) / 64n) * 8n;
const DIRTY_BITMAP_SIZE_MAX = dirtyBitmapBytes(DIRTY_BITMAP_PAGES_MAX);

/** __ffs on x86-64 (tzcnt): the lowest set bit; 64 for 0. */
function ffs(x: bigint): number {
  if (x === 0n) return 64;
  let n = 0;
  while (!((x >> BigInt(n)) & 1n)) n++;
  return n;
}

/** x >> s for a u64 shifted by a variable count on x86-64 (the count is taken mod 64). */
function shr(x: bigint, s: number): bigint {
  return x >> BigInt(s & 63);
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

/** struct vfio_dma: one user mapping [start, last] = [iova, iova + size - 1]. */
export class VfioDma implements Interval {
  start: bigint;
  last: bigint;
  /** the process virtual address the mapping was made from */
  vaddr: bigint;
  /** IOMMU_READ / IOMMU_WRITE */
  readonly prot: number;
  iommuMapped = false;
  /** capable(CAP_IPC_LOCK) of the accounting task */
  lockCap: boolean;
  vaddrInvalid = false;
  /** dma->task / dma->mm: whose locked_vm the pinned pages are charged to */
  task: Process | null;
  /** the pinned pages while the mapping is in the IOMMU (the pfns the domains translate to) */
  pages: PinnedPages | null = null;
  /** pages charged to task's locked_vm */
  lockedVm = 0;
  /** the dirty bitmap while dirty tracking is on (plus one spare word, as the kernel allocates) */
  bitmap: BigUint64Array | null = null;
  constructor(iova: bigint, size: bigint, vaddr: bigint, prot: number, task: Process | null, lockCap: boolean) {
    this.start = iova;
    this.last = iova + size - 1n;
    this.vaddr = vaddr;
    this.prot = prot;
    this.task = task;
    this.lockCap = lockCap;
  }
  get iova(): bigint {
    return this.start;
  }
  get size(): bigint {
    return this.last - this.start + 1n;
  }
}

/** struct vfio_iommu: one per container with SET_IOMMU(type1) done. */
export class VfioIommu {
  readonly lock = new Mutex('vfio_iommu->lock');
  /** domain_list: the newest domain first, as list_add puts it */
  readonly domains: VfioDomain[] = [];
  readonly emulatedGroups: IommuGroup[] = [];
  /** the usable IOVA ranges (aperture minus reserved regions), sorted */
  iovaList: IovaRange[] = [];
  /** dma_list: the user mappings by IOVA */
  readonly dmaList = new IntervalTree<VfioDma>();
  dmaAvail: number;
  pgsizeBitmap: bigint;
  vaddrInvalidCount = 0;
  numNonPinnedGroups = 0;
  dirtyPageTracking = false;
  constructor(
    readonly kernel: Kernel,
    readonly v2: boolean,
  ) {
    this.dmaAvail = type1Params(kernel).dmaEntryLimit;
    // PAGE_MASK: every size from PAGE_SIZE up
    this.pgsizeBitmap = PAGE_MASK;
  }
  findGroup(g: IommuGroup): boolean {
    return this.emulatedGroups.includes(g) || this.domains.some((d) => d.groups.includes(g));
  }
  hasEmulated(): boolean {
    return this.emulatedGroups.length > 0;
  }
  /** The mappings in IOVA order (for inspection). */
  mappings(): VfioDma[] {
    return this.dmaList.all();
  }
}

// ---- mapping lookups ---------------------------------------------------------------------------

/** vfio_find_dma: a mapping overlapping [start, start + size - 1] (size > 0). */
function findDma(iommu: VfioIommu, start: bigint, size: bigint): VfioDma | undefined {
  return iommu.dmaList.first(start, start + size - 1n);
}

/** vfio_find_dma_first_node: the lowest mapping overlapping [start, end]. */
function findDmaFirst(iommu: VfioIommu, start: bigint, end: bigint): VfioDma | undefined {
  return iommu.dmaList.first(start, end);
}

/** rb_next over dma_list */
function nextDma(iommu: VfioIommu, dma: VfioDma): VfioDma | undefined {
  return iommu.dmaList.after(dma.start);
}

// ---- locked memory accounting (vfio_lock_acct, mm_lock_acct, __account_locked_vm) ---------------

function rlimitMemlockPages(p: Process): number {
  return Math.floor(p.rlimitMemlock / PAGE_SIZE);
}

/** mm_lock_acct / __account_locked_vm: charge (npage > 0) or uncharge a process's locked_vm. */
function mmLockAcct(task: Process, lockCap: boolean, npage: number): number {
  if (npage > 0) {
    if (!lockCap && task.lockedVm + npage > rlimitMemlockPages(task)) return -ENOMEM;
    task.lockedVm += npage;
  } else {
    if (-npage > task.lockedVm) task.kernel.warn(`__account_locked_vm: unlocking ${-npage} of ${task.lockedVm} pages`);
    task.lockedVm += npage;
  }
  return 0;
}

/** vfio_lock_acct: async callers find the mm gone once its process has exited (-ESRCH). */
function vfioLockAcct(dma: VfioDma, npage: number, async: boolean): number {
  if (!npage) return 0;
  const task = dma.task;
  if (!task || (async && task.state !== 'alive')) return -ESRCH;
  const ret = mmLockAcct(task, dma.lockCap, npage);
  if (!ret) dma.lockedVm += npage;
  return ret;
}

// ---- dirty bitmaps (vfio_dma_bitmap_*, update_user_bitmap) ---------------------------------------

/** vfio_dma_bitmap_alloc */
function dmaBitmapAlloc(dma: VfioDma, pgsize: bigint): number {
  const npages = dma.size / pgsize;
  if (npages > DIRTY_BITMAP_PAGES_MAX) return -EINVAL;
  // one extra u64 for the shifts that merge unaligned neighbours
  const words = Number(dirtyBitmapBytes(npages) / 8n) + 1;
  if (words > 1 << 26) return -ENOMEM; // kvzalloc of more than 512 MiB: not in this model
  dma.bitmap = new BigUint64Array(words);
  return 0;
}

function dmaBitmapFree(dma: VfioDma): void {
  dma.bitmap = null;
}

/** bitmap_set / bitmap_clear of bits [start, start + n) */
function bitmapUpdate(bm: BigUint64Array, start: number, n: number, set: boolean): void {
  let i = start;
  const end = start + n;
  while (i < end) {
    const w = Math.floor(i / 64);
    const b = i % 64;
    const cnt = Math.min(64 - b, end - i);
    if (w >= bm.length) break;
    const mask = (cnt === 64 ? U64_MAX : (1n << BigInt(cnt)) - 1n) << BigInt(b);
    bm[w] = set ? bm[w]! | mask : bm[w]! & ~mask;
    i += cnt;
  }
}

/**
 * __bitmap_shift_left(bm, bm, shift, nbits) with shift < 64: whole words up to BITS_TO_LONGS(nbits)
 * move left; bits above nbits in the last word are not cleared (the kernel's behaviour).
 */
function bitmapShiftLeft(bm: BigUint64Array, shift: number, nbits: number): void {
  const lim = Math.min(Math.ceil(nbits / 64), bm.length);
  const rem = BigInt(shift);
  for (let k = lim - 1; k >= 0; k--) {
    const lower = shift && k > 0 ? bm[k - 1]! >> (64n - rem) : 0n;
    bm[k] = ((bm[k]! << rem) & U64_MAX) | lower;
  }
}

function bitmapBytes(bm: BigUint64Array, nbytes: number): Uint8Array {
  const out = new Uint8Array(nbytes);
  const dv = new DataView(out.buffer);
  for (let i = 0; i * 8 < nbytes; i++) dv.setBigUint64(i * 8, bm[i] ?? 0n, true);
  return out;
}

/** vfio_iommu_populate_bitmap_full */
function populateBitmapFull(iommu: VfioIommu): void {
  const pgshift = ffs(iommu.pgsizeBitmap);
  for (const dma of iommu.dmaList.all()) if (dma.bitmap) bitmapUpdate(dma.bitmap, 0, Number(shr(dma.size, pgshift)), true);
}

/** vfio_dma_bitmap_alloc_all (no pages are pinned by emulated devices here: nothing to populate) */
function dmaBitmapAllocAll(iommu: VfioIommu, pgsize: bigint): number {
  const done: VfioDma[] = [];
  for (const dma of iommu.dmaList.all()) {
    const ret = dmaBitmapAlloc(dma, pgsize);
    if (ret) {
      for (const d of done) dmaBitmapFree(d);
      return ret;
    }
    done.push(dma);
  }
  return 0;
}

function dmaBitmapFreeAll(iommu: VfioIommu): void {
  for (const dma of iommu.dmaList.all()) dmaBitmapFree(dma);
}

/** A user address from a u64, or -1 (every access then faults). */
function userAddr(a: bigint): number {
  return a < 0n || a > U64_MAX ? -1 : uptr(a);
}

/** access_ok(addr, size) on x86-64 */
function accessOk(addr: bigint, size: bigint): boolean {
  const sum = (addr + size) & U64_MAX;
  return sum <= BigInt(TASK_SIZE) && sum >= addr;
}

/** update_user_bitmap: copy one mapping's dirty bits into the user bitmap based at base_iova. */
function updateUserBitmap(bitmap: bigint, iommu: VfioIommu, dma: VfioDma, baseIova: bigint, pgsize: bigint): number {
  const mm = currentProcess()?.mm;
  if (!mm || !dma.bitmap) return -EFAULT;
  const pgshift = ffs(pgsize);
  const nbits = Number(shr(dma.size, pgshift));
  const bitOffset = Number(shr(dma.iova - baseIova, pgshift));
  const copyOffset = Math.floor(bitOffset / 64);
  const shift = bitOffset % 64;
  // no device reports dirty pages: every pinned and mapped page counts as dirty
  if (iommu.numNonPinnedGroups && dma.iommuMapped) bitmapUpdate(dma.bitmap, 0, nbits, true);
  const at = bitmap + BigInt(copyOffset) * 8n;
  if (shift) {
    bitmapShiftLeft(dma.bitmap, shift, nbits + shift);
    const lo = copyFromUser(mm, userAddr(at), 8);
    if (typeof lo === 'number') return -EFAULT;
    // bitmap_or over BITS_TO_LONGS(shift) = one word
    dma.bitmap[0] = dma.bitmap[0]! | new DataView(lo.buffer, lo.byteOffset, 8).getBigUint64(0, true);
  }
  const n = Number(dirtyBitmapBytes(BigInt(nbits + shift)));
  if (copyToUser(mm, userAddr(at), bitmapBytes(dma.bitmap, n)) < 0) return -EFAULT;
  return 0;
}

/** vfio_iova_dirty_bitmap */
function iovaDirtyBitmap(bitmap: bigint, iommu: VfioIommu, iova: bigint, iovaEnd: bigint, pgsize: bigint): number {
  const pgshift = ffs(pgsize);
  // the range must not bisect a mapping at either end
  let dma = findDma(iommu, iova, 1n);
  if (dma && dma.iova !== iova) return -EINVAL;
  dma = findDma(iommu, iovaEnd, 1n);
  if (dma && dma.last !== iovaEnd) return -EINVAL;
  for (let d = iommu.dmaList.ceil(iova); d && d.iova <= iovaEnd; d = nextDma(iommu, d)) {
    const ret = updateUserBitmap(bitmap, iommu, d, iova, pgsize);
    if (ret) return ret;
    // re-populate: only pages pinned by emulated devices would stay dirty (none here)
    bitmapUpdate(d.bitmap!, 0, Number(shr(d.size, pgshift)), false);
  }
  return 0;
}

/** verify_bitmap_size */
function verifyBitmapSize(npages: bigint, bitmapSize: bigint): number {
  if (!npages || !bitmapSize || bitmapSize > DIRTY_BITMAP_SIZE_MAX || bitmapSize < dirtyBitmapBytes(npages)) return -EINVAL;
  return 0;
}

// ---- pinning and the IOMMU domains ---------------------------------------------------------------

/** The page count of a byte size (sizes here are page aligned). */
const npagesOf = (size: bigint): number => Number(size >> BigInt(PAGE_SHIFT));

/**
 * vfio_pin_pages_remote over a whole range, from the current process's memory: the pinned pages,
 * charged to dma's locked_vm, or -EFAULT (a page not mapped, or not writable for a writable
 * mapping) / -ENOMEM (RLIMIT_MEMLOCK), whichever the kernel's in-order walk meets first.
 */
function pinPagesRemote(dma: VfioDma, vaddr: bigint, size: bigint): PinnedPages | number {
  const cur = currentProcess();
  if (!cur) return -ENODEV;
  const mm = cur.mm;
  const write = (dma.prot & IOMMU_WRITE) !== 0;
  const addr = vaddr <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(vaddr) : -1;
  const len = size <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(size) : Number.MAX_SAFE_INTEGER;
  const pin = (n: number): PinnedPages | null => (mm.pin && addr >= 0 ? mm.pin(addr, n, write) : null);
  const pages = pin(len);
  const npage = npagesOf(size);
  if (!dma.lockCap) {
    // the limit is checked against the current mm as pages are pinned, in address order
    const limit = rlimitMemlockPages(cur);
    const room = limit - cur.lockedVm;
    if (npage > room) {
      const crossing = Math.max(room, 0) + 1;
      if (pages || pin(crossing * PAGE_SIZE)) {
        cur.kernel.printk(`vfio_pin_pages_remote: RLIMIT_MEMLOCK (${limit * PAGE_SIZE}) exceeded`);
        return -ENOMEM;
      }
    }
  }
  if (!pages) return -EFAULT;
  const ret = vfioLockAcct(dma, npage, false);
  if (ret < 0) return ret;
  return pages;
}

/** vfio_unpin_pages_remote of a whole mapping: the pages it unpinned. */
function unpinPagesRemote(dma: VfioDma, doAccounting: boolean): number {
  if (!dma.pages) return 0;
  const unlocked = npagesOf(dma.size);
  dma.pages = null;
  if (doAccounting) vfioLockAcct(dma, -unlocked, true);
  return unlocked;
}

/** vfio_iommu_map: map into every domain, unwinding on failure. */
function vfioIommuMap(iommu: VfioIommu, iova: bigint, pages: PinnedPages, size: bigint, prot: number): number {
  const done: VfioDomain[] = [];
  for (const d of iommu.domains) {
    const ret = iommuMap(d.domain, iova, pages, 0, size, prot | IOMMU_CACHE);
    if (ret) {
      for (const u of done.reverse()) iommuUnmap(u.domain, iova, size);
      return ret;
    }
    done.push(d);
  }
  return 0;
}

/** vfio_unmap_unpin: out of every domain, unpinned; returns the pages unlocked (not accounted). */
function vfioUnmapUnpin(iommu: VfioIommu, dma: VfioDma, doAccounting: boolean): number {
  if (!dma.size) return 0;
  if (iommu.domains.length === 0) return 0;
  for (const d of iommu.domains) iommuUnmap(d.domain, dma.iova, dma.size);
  const unlocked = unpinPagesRemote(dma, false);
  dma.iommuMapped = false;
  if (doAccounting) {
    vfioLockAcct(dma, -unlocked, true);
    return 0;
  }
  return unlocked;
}

/** vfio_remove_dma */
function vfioRemoveDma(iommu: VfioIommu, dma: VfioDma): void {
  vfioUnmapUnpin(iommu, dma, true);
  iommu.dmaList.delete(dma);
  dma.task = null;
  dmaBitmapFree(dma);
  if (dma.vaddrInvalid) iommu.vaddrInvalidCount--;
  iommu.dmaAvail++;
  const k = iommu.kernel;
  if (k.trace.active) k.event('vfio_dma_unmap', { iova: hex(dma.iova), size: hex(dma.size) });
}

/** vfio_pin_map_dma: pin the user range and map it into every domain; on failure nothing stays. */
function vfioPinMapDma(iommu: VfioIommu, dma: VfioDma, size: bigint): number {
  const pages = pinPagesRemote(dma, dma.vaddr, size);
  if (typeof pages === 'number') return pages;
  dma.pages = pages;
  const ret = vfioIommuMap(iommu, dma.iova, pages, size, dma.prot);
  if (ret) {
    unpinPagesRemote(dma, true);
    return ret;
  }
  dma.iommuMapped = true;
  return 0;
}

/** vfio_update_pgsize_bitmap */
function updatePgsizeBitmap(iommu: VfioIommu): void {
  let bm = U64_MAX;
  for (const d of iommu.domains) bm &= d.domain.pgsizeBitmap;
  // a domain supporting sub-page sizes still maps in PAGE_SIZE units
  if (bm & ~PAGE_MASK & U64_MAX) bm = (bm & PAGE_MASK) | PAGE;
  iommu.pgsizeBitmap = bm;
}

function hex(v: bigint): string {
  return '0x' + v.toString(16);
}

// ---- the valid IOVA list ------------------------------------------------------------------------

/** vfio_iommu_iova_dma_valid: inside one valid range (anything goes with an empty list). */
function iovaDmaValid(iommu: VfioIommu, start: bigint, end: bigint): boolean {
  for (const r of iommu.iovaList) if (start >= r.start && end <= r.end) return true;
  return iommu.iovaList.length === 0;
}

/** vfio_iommu_aper_conflict: the new aperture is disjoint from the list or leaves mappings out. */
function aperConflict(iommu: VfioIommu, start: bigint, end: bigint): boolean {
  const list = iommu.iovaList;
  if (list.length === 0) return false;
  const first = list[0]!;
  const last = list[list.length - 1]!;
  if (start > last.end || end < first.start) return true;
  if (start > first.start && findDma(iommu, first.start, start - first.start)) return true;
  if (end < last.end && findDma(iommu, end + 1n, last.end - end)) return true;
  return false;
}

/** vfio_iommu_aper_resize (on a copy): clip the list to [start, end], node by node as the kernel does. */
export function aperResize(list: IovaRange[], start: bigint, end: bigint): IovaRange[] {
  if (list.length === 0) return [{ start, end }];
  let out = list.map((r) => ({ ...r }));
  // adjust the start: drop nodes before it (a node ending exactly at start goes too)
  while (out.length) {
    const n = out[0]!;
    if (start < n.start) break;
    if (start >= n.start && start < n.end) {
      n.start = start;
      break;
    }
    out.shift();
  }
  // adjust the end: drop nodes after it (a node starting exactly at end goes too)
  out = out.filter((n) => {
    if (end > n.end) return true;
    if (end > n.start && end <= n.end) {
      n.end = end;
      return true;
    }
    return false;
  });
  return out;
}

/** iommu_get_group_resv_regions (the group's devices' reserved regions) */
function groupResvRegions(g: IommuGroup): Array<IovaRange & { relaxable: boolean }> {
  const regions = g.devices.length ? g.hw.reservedRegions : [];
  return regions.map((r) => ({ start: r.start, end: r.last, relaxable: r.type === 'direct-relaxable' }));
}

/** vfio_iommu_resv_conflict: a (non-relaxable) reserved region overlaps a mapping. */
function resvConflict(iommu: VfioIommu, resv: Array<IovaRange & { relaxable?: boolean }>): boolean {
  for (const r of resv) {
    if (r.relaxable) continue;
    if (findDma(iommu, r.start, r.end - r.start + 1n)) return true;
  }
  return false;
}

/** vfio_iommu_resv_exclude: cut the reserved regions out of the list; -EINVAL if nothing is left. */
export function resvExclude(list: IovaRange[], resv: Array<IovaRange & { relaxable?: boolean }>): IovaRange[] | number {
  let cur = list;
  for (const rv of resv) {
    if (rv.relaxable) continue;
    const out: IovaRange[] = [];
    for (const r of cur) {
      if (rv.start > r.end || rv.end < r.start) {
        out.push(r);
        continue;
      }
      if (rv.start > r.start) out.push({ start: r.start, end: rv.start - 1n });
      if (rv.end < r.end) out.push({ start: rv.end + 1n, end: r.end });
    }
    cur = out;
  }
  return cur.length ? cur : -EINVAL;
}

/** vfio_iommu_aper_expand: the aperture of the remaining domains (never narrower) */
function aperExpand(iommu: VfioIommu, copy: IovaRange[]): void {
  if (copy.length === 0) return;
  // the model's apertures all start at 0
  const start = 0n;
  let end = U64_MAX;
  for (const d of iommu.domains) if (d.domain.apertureEnd < end) end = d.domain.apertureEnd;
  copy[0]!.start = start;
  copy[copy.length - 1]!.end = end;
}

/** vfio_iommu_resv_refresh: rebuild from the aperture ends and the remaining groups' reserved regions. */
function resvRefresh(iommu: VfioIommu, copy: IovaRange[]): IovaRange[] | number {
  if (copy.length === 0) return -EINVAL;
  const resv: Array<IovaRange & { relaxable: boolean }> = [];
  for (const d of iommu.domains) for (const g of d.groups) resv.push(...groupResvRegions(g));
  const start = copy[0]!.start;
  const end = copy[copy.length - 1]!.end;
  return resvExclude(aperResize([], start, end), resv);
}

// ---- GET_INFO -------------------------------------------------------------------------------------

/** vfio_iommu_type1_get_info */
function* getInfo(iommu: VfioIommu, arg: number): KGen<number> {
  const S = U.vfio_iommu_type1_info;
  const mm = currentProcess()?.mm;
  if (!mm) return -EFAULT;
  let minsz = offsetofend(S, 'iova_pgsizes');
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const info = new StructBuf(S);
  info.buf.set(b);
  const argsz = info.get('argsz');
  if (argsz < minsz) return -EINVAL;
  minsz = Math.min(argsz, S.size);

  yield* mutexLock(iommu.lock);
  info.set('flags', U.VFIO_IOMMU_INFO_PGSIZES);
  info.set('iova_pgsizes', iommu.pgsizeBitmap);
  const caps = new VfioInfoCap();
  // vfio_iommu_migration_build_caps
  {
    const M = U.vfio_iommu_type1_info_cap_migration;
    const off = caps.add(M.size, U.VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION, 1);
    const dv = new DataView(caps.buf.buffer);
    dv.setUint32(off + M.byName.flags.offset, 0, true);
    dv.setBigUint64(off + M.byName.pgsize_bitmap.offset, 1n << BigInt(ffs(iommu.pgsizeBitmap)), true);
    dv.setBigUint64(off + M.byName.max_dirty_bitmap_size.offset, DIRTY_BITMAP_SIZE_MAX, true);
  }
  // vfio_iommu_dma_avail_build_caps
  {
    const A = U.vfio_iommu_type1_info_dma_avail;
    const off = caps.add(A.size, U.VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1);
    new DataView(caps.buf.buffer).setUint32(off + A.byName.avail.offset, iommu.dmaAvail, true);
  }
  // vfio_iommu_iova_build_caps: none with an empty list (only emulated groups)
  if (iommu.iovaList.length) {
    const I = U.vfio_iommu_type1_info_cap_iova_range;
    const n = iommu.iovaList.length;
    const off = caps.add(I.size + n * U.vfio_iova_range.size, U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1);
    const dv = new DataView(caps.buf.buffer);
    dv.setUint32(off + I.byName.nr_iovas.offset, n, true);
    iommu.iovaList.forEach((r, i) => {
      dv.setBigUint64(off + I.size + i * 16, r.start, true);
      dv.setBigUint64(off + I.size + i * 16 + 8, r.end, true);
    });
  }
  yield* mutexUnlock(iommu.lock);

  if (caps.size) {
    info.set('flags', info.get('flags') | U.VFIO_IOMMU_INFO_CAPS);
    if (argsz < S.size + caps.size) {
      info.set('argsz', S.size + caps.size);
    } else {
      caps.shift(S.size);
      if (copyToUser(mm, arg + S.size, caps.buf) < 0) return -EFAULT;
      info.set('cap_offset', S.size);
    }
  }
  return copyToUser(mm, arg, info.head(minsz)) < 0 ? -EFAULT : 0;
}

// ---- MAP_DMA ---------------------------------------------------------------------------------------

/** vfio_change_dma_owner: a VADDR update from another mm moves the locked_vm charge to it. */
function changeDmaOwner(dma: VfioDma): number {
  const cur = currentProcess();
  if (!cur) return -ENODEV;
  if (cur === dma.task) return 0;
  const npage = dma.lockedVm;
  const lockCap = capable('CAP_IPC_LOCK');
  const ret = mmLockAcct(cur, lockCap, npage);
  if (ret) return ret;
  if (dma.task && dma.task.state === 'alive') mmLockAcct(dma.task, dma.lockCap, -npage);
  dma.task = cur;
  dma.lockCap = lockCap;
  return 0;
}

export interface DmaMapArgs {
  flags: number;
  vaddr: bigint;
  iova: bigint;
  size: bigint;
}

/** vfio_dma_do_map */
export function* vfioDmaDoMap(iommu: VfioIommu, map: DmaMapArgs): KGen<number> {
  const setVaddr = (map.flags & U.VFIO_DMA_MAP_FLAG_VADDR) !== 0;
  const { iova, vaddr, size } = map;
  if (!size) return -EINVAL;
  const iovaEnd = iova + size - 1n;
  if (iovaEnd > U64_MAX || vaddr + size - 1n > U64_MAX) return -EOVERFLOW;
  // READ/WRITE from the device's point of view
  let prot = 0;
  if (map.flags & U.VFIO_DMA_MAP_FLAG_WRITE) prot |= IOMMU_WRITE;
  if (map.flags & U.VFIO_DMA_MAP_FLAG_READ) prot |= IOMMU_READ;
  if ((prot && setVaddr) || (!prot && !setVaddr)) return -EINVAL;

  yield* mutexLock(iommu.lock);
  let ret = 0;
  out: {
    const pgsize = 1n << BigInt(ffs(iommu.pgsizeBitmap));
    if ((size | iova | vaddr) & (pgsize - 1n)) {
      ret = -EINVAL;
      break out;
    }
    let dma = findDma(iommu, iova, size);
    if (setVaddr) {
      if (!dma) ret = -ENOENT;
      else if (!dma.vaddrInvalid || dma.iova !== iova || dma.size !== size) ret = -EINVAL;
      else {
        ret = changeDmaOwner(dma);
        if (ret) break out;
        dma.vaddr = vaddr;
        dma.vaddrInvalid = false;
        iommu.vaddrInvalidCount--;
      }
      break out;
    } else if (dma) {
      ret = -EEXIST;
      break out;
    }
    if (!iommu.dmaAvail) {
      ret = -ENOSPC;
      break out;
    }
    if (!iovaDmaValid(iommu, iova, iovaEnd)) {
      ret = -EINVAL;
      break out;
    }
    iommu.dmaAvail--;
    dma = new VfioDma(iova, size, vaddr, prot, currentProcess(), capable('CAP_IPC_LOCK'));
    // pin and map only with an IOMMU-backed domain; emulated groups pin on demand
    if (iommu.domains.length) ret = vfioPinMapDma(iommu, dma, size);
    if (ret) {
      // vfio_remove_dma of the partly built mapping: nothing was linked or stays pinned
      dma.task = null;
      iommu.dmaAvail++;
      break out;
    }
    iommu.dmaList.insert(dma);
    const k = iommu.kernel;
    if (k.trace.active) k.event('vfio_dma_map', { iova: hex(iova), size: hex(size), prot });
    if (iommu.dirtyPageTracking) {
      ret = dmaBitmapAlloc(dma, pgsize);
      if (ret) vfioRemoveDma(iommu, dma);
    }
  }
  yield* mutexUnlock(iommu.lock);
  return ret;
}

/** vfio_iommu_type1_map_dma */
function* mapDma(iommu: VfioIommu, arg: number): KGen<number> {
  const S = U.vfio_iommu_type1_dma_map;
  const mm = currentProcess()?.mm;
  if (!mm) return -EFAULT;
  const minsz = offsetofend(S, 'size');
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const m = new StructBuf(S, b);
  const mask = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE | U.VFIO_DMA_MAP_FLAG_VADDR;
  if (m.get('argsz') < minsz || m.get('flags') & ~mask) return -EINVAL;
  return yield* vfioDmaDoMap(iommu, { flags: m.get('flags'), vaddr: m.big('vaddr'), iova: m.big('iova'), size: m.big('size') });
}

// ---- UNMAP_DMA -------------------------------------------------------------------------------------

export interface DmaUnmapArgs {
  flags: number;
  iova: bigint;
  size: bigint;
}

export interface VfioBitmap {
  pgsize: bigint;
  size: bigint;
  data: bigint;
}

/** vfio_dma_do_unmap: the result and the bytes unmapped (what unmap->size is set to). */
export function* vfioDmaDoUnmap(iommu: VfioIommu, unmap: DmaUnmapArgs, bitmap: VfioBitmap): KGen<{ ret: number; size: bigint }> {
  const { iova, size } = unmap;
  const unmapAll = (unmap.flags & U.VFIO_DMA_UNMAP_FLAG_ALL) !== 0;
  const invalidateVaddr = (unmap.flags & U.VFIO_DMA_UNMAP_FLAG_VADDR) !== 0;
  const getDirty = (unmap.flags & U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) !== 0;
  let ret = -EINVAL;
  let unmapped = 0n;

  yield* mutexLock(iommu.lock);
  out: {
    // no vaddr updates while emulated devices may pin
    if (invalidateVaddr && iommu.emulatedGroups.length) {
      ret = -EBUSY;
      break out;
    }
    const pgshift = ffs(iommu.pgsizeBitmap);
    const pgsize = 1n << BigInt(pgshift);
    if (iova & (pgsize - 1n)) break out;
    let iovaEnd: bigint;
    if (unmapAll) {
      if (iova || size) break out;
      iovaEnd = U64_MAX;
    } else {
      if (!size || size & (pgsize - 1n)) break out;
      iovaEnd = iova + size - 1n;
      if (iovaEnd > U64_MAX) {
        ret = -EOVERFLOW;
        break out;
      }
    }
    // with dirty tracking, only the smallest page size
    if (getDirty && (!iommu.dirtyPageTracking || bitmap.pgsize !== pgsize)) break out;
    // v2: the range must not bisect a mapping
    if (iommu.v2 && !unmapAll) {
      let dma = findDma(iommu, iova, 1n);
      if (dma && dma.iova !== iova) break out;
      dma = findDma(iommu, iovaEnd, 1n);
      if (dma && dma.last !== iovaEnd) break out;
    }
    ret = 0;
    const first = findDmaFirst(iommu, iova, iovaEnd);
    let dma = first;
    while (dma) {
      if (dma.iova > iovaEnd) break;
      // v1: a mapping starting below iova ends the walk (success with what was unmapped)
      if (!iommu.v2 && iova > dma.iova) break;
      if (invalidateVaddr) {
        if (dma.vaddrInvalid) {
          // roll back the marks this call made
          for (let d = first; d && d !== dma; d = nextDma(iommu, d)) {
            d.vaddrInvalid = false;
            iommu.vaddrInvalidCount--;
          }
          ret = -EINVAL;
          unmapped = 0n;
          break;
        }
        dma.vaddrInvalid = true;
        iommu.vaddrInvalidCount++;
        unmapped += dma.size;
        dma = nextDma(iommu, dma);
        continue;
      }
      // (pages pinned by emulated devices would be released through their dma_unmap here)
      if (getDirty) {
        ret = updateUserBitmap(bitmap.data, iommu, dma, iova, pgsize);
        if (ret) break;
      }
      unmapped += dma.size;
      const next = nextDma(iommu, dma);
      vfioRemoveDma(iommu, dma);
      dma = next;
    }
  }
  yield* mutexUnlock(iommu.lock);
  return { ret, size: unmapped };
}

/** vfio_iommu_type1_unmap_dma */
function* unmapDma(iommu: VfioIommu, arg: number): KGen<number> {
  const S = U.vfio_iommu_type1_dma_unmap;
  const mm = currentProcess()?.mm;
  if (!mm) return -EFAULT;
  const minsz = offsetofend(S, 'size');
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const u = new StructBuf(S, b);
  const flags = u.get('flags');
  const GET_DIRTY = U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
  const mask = GET_DIRTY | U.VFIO_DMA_UNMAP_FLAG_VADDR | U.VFIO_DMA_UNMAP_FLAG_ALL;
  if (u.get('argsz') < minsz || flags & ~mask) return -EINVAL;
  if (flags & GET_DIRTY && flags & (U.VFIO_DMA_UNMAP_FLAG_ALL | U.VFIO_DMA_UNMAP_FLAG_VADDR)) return -EINVAL;
  const bitmap: VfioBitmap = { pgsize: 0n, size: 0n, data: 0n };
  if (flags & GET_DIRTY) {
    const B = U.vfio_bitmap;
    if (u.get('argsz') < minsz + B.size) return -EINVAL;
    const bb = copyFromUser(mm, arg + minsz, B.size);
    if (typeof bb === 'number') return -EFAULT;
    const bs = new StructBuf(B, bb);
    bitmap.pgsize = bs.big('pgsize');
    bitmap.size = bs.big('size');
    bitmap.data = bs.big('data');
    if (!accessOk(bitmap.data, bitmap.size)) return -EINVAL;
    const ret = verifyBitmapSize(shr(u.big('size'), ffs(bitmap.pgsize)), bitmap.size);
    if (ret) return ret;
  }
  const r = yield* vfioDmaDoUnmap(iommu, { flags, iova: u.big('iova'), size: u.big('size') }, bitmap);
  if (r.ret) return r.ret;
  u.set('size', r.size);
  return copyToUser(mm, arg, u.head(minsz)) < 0 ? -EFAULT : 0;
}

// ---- DIRTY_PAGES -----------------------------------------------------------------------------------

/** vfio_iommu_type1_dirty_pages */
function* dirtyPages(iommu: VfioIommu, arg: number): KGen<number> {
  if (!iommu.v2) return -EACCES;
  const S = U.vfio_iommu_type1_dirty_bitmap;
  const mm = currentProcess()?.mm;
  if (!mm) return -EFAULT;
  const minsz = offsetofend(S, 'flags');
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const d = new StructBuf(S, b);
  const argsz = d.get('argsz');
  const flags = d.get('flags');
  const START = U.VFIO_IOMMU_DIRTY_PAGES_FLAG_START;
  const STOP = U.VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
  const GET = U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP;
  if (argsz < minsz || flags & ~(START | STOP | GET)) return -EINVAL;
  // exactly one flag (__ffs == __fls; with no flag both are undefined and the kernel rejects it)
  if (flags === 0 || flags & (flags - 1)) return -EINVAL;

  if (flags & START) {
    yield* mutexLock(iommu.lock);
    let ret = 0;
    const pgsize = 1n << BigInt(ffs(iommu.pgsizeBitmap));
    if (!iommu.dirtyPageTracking) {
      ret = dmaBitmapAllocAll(iommu, pgsize);
      if (!ret) iommu.dirtyPageTracking = true;
    }
    yield* mutexUnlock(iommu.lock);
    return ret;
  }
  if (flags & STOP) {
    yield* mutexLock(iommu.lock);
    if (iommu.dirtyPageTracking) {
      iommu.dirtyPageTracking = false;
      dmaBitmapFreeAll(iommu);
    }
    yield* mutexUnlock(iommu.lock);
    return 0;
  }
  // GET_BITMAP
  const R = U.vfio_iommu_type1_dirty_bitmap_get;
  const dataSize = argsz - minsz;
  if (!dataSize || dataSize < R.size) return -EINVAL;
  const rb = copyFromUser(mm, arg + minsz, R.size);
  if (typeof rb === 'number') return -EFAULT;
  const dv = new DataView(rb.buffer, rb.byteOffset, rb.byteLength);
  const iova = dv.getBigUint64(R.byName.iova.offset, true);
  const size = dv.getBigUint64(R.byName.size.offset, true);
  const bo = R.byName.bitmap.offset;
  const bmPgsize = dv.getBigUint64(bo + U.vfio_bitmap.byName.pgsize.offset, true);
  const bmSize = dv.getBigUint64(bo + U.vfio_bitmap.byName.size.offset, true);
  const bmData = dv.getBigUint64(bo + U.vfio_bitmap.byName.data.offset, true);
  if (!size) return -EINVAL;
  const iovaEnd = iova + size - 1n;
  if (iovaEnd > U64_MAX) return -EOVERFLOW;
  if (!accessOk(bmData, bmSize)) return -EINVAL;
  let ret = verifyBitmapSize(shr(size, ffs(bmPgsize)), bmSize);
  if (ret) return ret;
  yield* mutexLock(iommu.lock);
  out: {
    const iommuPgsize = 1n << BigInt(ffs(iommu.pgsizeBitmap));
    // only the smallest supported page size
    if (bmPgsize !== iommuPgsize || iova & (iommuPgsize - 1n) || size & (iommuPgsize - 1n)) {
      ret = -EINVAL;
      break out;
    }
    ret = iommu.dirtyPageTracking ? iovaDirtyBitmap(bmData, iommu, iova, iovaEnd, bmPgsize) : -EINVAL;
  }
  yield* mutexUnlock(iommu.lock);
  return ret;
}

// ---- CHECK_EXTENSION ---------------------------------------------------------------------------------

/** vfio_iommu_type1_check_extension */
function* checkExtension(iommu: VfioIommu | null, arg: bigint): KGen<number> {
  switch (arg) {
    case BigInt(U.VFIO_TYPE1_IOMMU):
    case BigInt(U.VFIO_TYPE1v2_IOMMU):
    case BigInt(U.VFIO_UNMAP_ALL):
      return 1;
    case BigInt(U.VFIO_UPDATE_VADDR): {
      // disabled if mdevs are present: they cannot pin while vaddrs change
      if (!iommu) return 0;
      yield* mutexLock(iommu.lock);
      const r = iommu.hasEmulated() ? 0 : 1;
      yield* mutexUnlock(iommu.lock);
      return r;
    }
    case BigInt(U.VFIO_DMA_CC_IOMMU): {
      if (!iommu) return 0;
      // vfio_domains_have_enforce_cache_coherency (1 with no domain at all)
      yield* mutexLock(iommu.lock);
      const r = iommu.domains.every((d) => d.enforceCacheCoherency) ? 1 : 0;
      yield* mutexUnlock(iommu.lock);
      return r;
    }
    default:
      return 0;
  }
}

// ---- attach / detach / release -----------------------------------------------------------------------

/** vfio_iommu_replay: map every mapping into a new domain (pinning those no domain holds yet). */
function vfioIommuReplay(iommu: VfioIommu, domain: VfioDomain): number {
  const all = iommu.dmaList.all();
  // mappings pinned by this replay (not yet iommu_mapped), for the unwind
  const pinnedHere = new Set<VfioDma>();
  let i = 0;
  let ret = 0;
  for (; i < all.length; i++) {
    const dma = all[i]!;
    let pages: PinnedPages;
    if (dma.iommuMapped) {
      if (!dma.pages) {
        iommu.kernel.warn('vfio_iommu_replay: mapped without pages');
        ret = -EINVAL;
        break;
      }
      pages = dma.pages;
    } else {
      const p = pinPagesRemote(dma, dma.vaddr, dma.size);
      if (typeof p === 'number') {
        ret = p;
        break;
      }
      pages = p;
      dma.pages = p;
      pinnedHere.add(dma);
    }
    ret = iommuMap(domain.domain, dma.iova, pages, 0, dma.size, dma.prot | IOMMU_CACHE);
    if (ret) {
      if (!dma.iommuMapped) {
        unpinPagesRemote(dma, true);
        pinnedHere.delete(dma);
      }
      break;
    }
  }
  if (!ret) {
    for (const dma of all) dma.iommuMapped = true;
    return 0;
  }
  // unwind what this replay mapped and pinned
  for (let j = i - 1; j >= 0; j--) {
    const dma = all[j]!;
    iommuUnmap(domain.domain, dma.iova, dma.size);
    if (pinnedHere.has(dma)) unpinPagesRemote(dma, true);
  }
  return ret;
}

/** vfio_iommu_unmap_unpin_all */
function unmapUnpinAll(iommu: VfioIommu): void {
  for (let dma = iommu.dmaList.ceil(0n); dma; dma = iommu.dmaList.ceil(0n)) vfioRemoveDma(iommu, dma);
}

/** vfio_iommu_unmap_unpin_reaccount: the last IOMMU domain goes while emulated groups stay. */
function unmapUnpinReaccount(iommu: VfioIommu): void {
  for (const dma of iommu.dmaList.all()) {
    const unlocked = vfioUnmapUnpin(iommu, dma, false);
    // no pages are pinned by emulated devices in this model: nothing stays locked
    vfioLockAcct(dma, -unlocked, true);
  }
}

export const vfioIommuType1Ops: VfioIommuDriverOps = {
  name: 'vfio-iommu-type1',

  /** vfio_iommu_type1_open */
  *open(k: Kernel, arg: bigint) {
    switch (arg) {
      case BigInt(U.VFIO_TYPE1_IOMMU):
        return { data: new VfioIommu(k, false) };
      case BigInt(U.__VFIO_RESERVED_TYPE1_NESTING_IOMMU):
      case BigInt(U.VFIO_TYPE1v2_IOMMU):
        return { data: new VfioIommu(k, true) };
      default:
        return { err: -EINVAL };
    }
  },

  /** vfio_iommu_type1_release: every mapping goes, then the domains. */
  *release(data: unknown) {
    const iommu = data as VfioIommu;
    iommu.emulatedGroups.length = 0;
    unmapUnpinAll(iommu);
    for (const d of iommu.domains) for (const g of d.groups) yield* iommuDetachGroup(d.domain, g);
    iommu.domains.length = 0;
    iommu.iovaList = [];
  },

  /** vfio_iommu_type1_ioctl */
  *ioctl(data: unknown, cmd: number, arg: bigint) {
    const iommu = data as VfioIommu | null;
    if (cmd === U.VFIO_CHECK_EXTENSION) return yield* checkExtension(iommu, arg);
    if (!iommu) return -ENOTTY;
    switch (cmd) {
      case U.VFIO_IOMMU_GET_INFO:
        return yield* getInfo(iommu, uptr(arg));
      case U.VFIO_IOMMU_MAP_DMA:
        return yield* mapDma(iommu, uptr(arg));
      case U.VFIO_IOMMU_UNMAP_DMA:
        return yield* unmapDma(iommu, uptr(arg));
      case U.VFIO_IOMMU_DIRTY_PAGES:
        return yield* dirtyPages(iommu, uptr(arg));
      default:
        return -ENOTTY;
    }
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
        iommu.emulatedGroups.unshift(iommuGroup);
        break out;
      }
      const domain = new VfioDomain(new IommuDomain('paging', iommuGroup.hw));
      domain.domain.owner = iommu;
      ret = yield* iommuAttachGroup(domain.domain, iommuGroup);
      if (ret) break out;
      const fail = function* (err: number) {
        yield* iommuDetachGroup(domain.domain, iommuGroup);
        ret = err;
      };
      // the new aperture must not leave existing mappings out
      if (aperConflict(iommu, 0n, domain.domain.apertureEnd)) {
        yield* fail(-EINVAL);
        break out;
      }
      const resv = groupResvRegions(iommuGroup);
      if (resvConflict(iommu, resv)) {
        yield* fail(-EINVAL);
        break out;
      }
      // work on a copy of the IOVA list, installed only on success
      const iovaCopy = resvExclude(aperResize(iommu.iovaList, 0n, domain.domain.apertureEnd), resv);
      if (typeof iovaCopy === 'number') {
        yield* fail(iovaCopy);
        break out;
      }
      domain.groups.push(iommuGroup);
      if (!type1Params(k).allowUnsafeInterrupts && !iommuGroup.hw.isolatedMsi) {
        k.printk(
          'vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform',
        );
        yield* fail(-EPERM);
        break out;
      }
      domain.enforceCacheCoherency = iommuGroup.hw.enforceCacheCoherency;
      // try to reuse a compatible domain (same IOMMU, same coherency): it already holds the mappings
      let merged = false;
      for (const d of iommu.domains) {
        if (d.domain.hw === domain.domain.hw && d.enforceCacheCoherency === domain.enforceCacheCoherency) {
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
        // replay mappings on the new domain
        ret = vfioIommuReplay(iommu, domain);
        if (ret) {
          yield* iommuDetachGroup(domain.domain, iommuGroup);
          break out;
        }
        iommu.domains.unshift(domain);
        updatePgsizeBitmap(iommu);
      }
      iommu.iovaList = iovaCopy;
      // an IOMMU-backed group can dirty memory directly
      iommu.numNonPinnedGroups++;
    }
    yield* mutexUnlock(iommu.lock);
    return ret;
  },

  /** vfio_iommu_type1_detach_group */
  *detachGroup(data: unknown, iommuGroup: IommuGroup) {
    const iommu = data as VfioIommu;
    let updateDirtyScope = false;
    yield* mutexLock(iommu.lock);
    const e = iommu.emulatedGroups.indexOf(iommuGroup);
    if (e >= 0) {
      // emulated groups start in the pinned-page dirty scope: no scope update
      iommu.emulatedGroups.splice(e, 1);
      if (iommu.emulatedGroups.length === 0 && iommu.domains.length === 0) unmapUnpinAll(iommu);
    } else {
      const iovaCopy = iommu.iovaList.map((r) => ({ ...r }));
      for (const d of iommu.domains) {
        const i = d.groups.indexOf(iommuGroup);
        if (i < 0) continue;
        yield* iommuDetachGroup(d.domain, iommuGroup);
        updateDirtyScope = true;
        d.groups.splice(i, 1);
        // group ownership gives the privilege: an empty domain goes, and with the last one the
        // mappings (or, with emulated groups left, just their pins)
        if (d.groups.length === 0) {
          if (iommu.domains.length === 1) {
            if (iommu.emulatedGroups.length === 0) unmapUnpinAll(iommu);
            else unmapUnpinReaccount(iommu);
          }
          iommu.domains.splice(iommu.domains.indexOf(d), 1);
          aperExpand(iommu, iovaCopy);
          updatePgsizeBitmap(iommu);
        }
        break;
      }
      const list = resvRefresh(iommu, iovaCopy);
      if (typeof list !== 'number') iommu.iovaList = list;
    }
    if (updateDirtyScope) {
      iommu.numNonPinnedGroups--;
      if (iommu.dirtyPageTracking) populateBitmapFull(iommu);
    }
    yield* mutexUnlock(iommu.lock);
  },
};
