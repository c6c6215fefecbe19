// drivers/iommu/iommufd/pages.c: struct iopt_pages — the pages behind one or more areas (a
// linear chunk of a process's memory or of a memfd), pinned only while some area over them is
// filled into an iommu_domain, with the pin accounting of the pages' mode; and the fill/unfill of
// areas into domains.
//
// Model: the pinned pages are runs of page indexes (`pinned`, the role of the pfns held by the
// storage domains); the set of filled areas is `domainAreas` (domains_itree). A page is pinned
// exactly while some filled area covers it, so areas sharing pages (IOAS_COPY, a compat split)
// pin and account it once. In-kernel accesses (iommufd_access, emulated devices) are not
// modelled.

import { EFAULT, EINVAL, ENOMEM, EOVERFLOW } from '../kernel/errno.js';
import { capable, currentProcess } from '../kernel/current.js';
import { File, fput, getFile } from '../kernel/fs/file.js';
import { Interval, IntervalTree } from '../kernel/interval_tree.js';
import { shmemFile } from '../kernel/memfd.js';
import { Process, procTable } from '../kernel/process.js';
import { KGen, current } from '../kernel/sched.js';
import { Mutex, mutexLock, mutexUnlock } from '../kernel/sync.js';
import { PAGE_SIZE, PinnedPages, TASK_SIZE } from '../kernel/uaccess.js';
import { IOMMU_READ, IOMMU_WRITE, IommuDomain, iommuMap, iommuUnmap } from '../iommu/iommu.js';
import type { IoptArea } from './io_pagetable.js';

export const IOPT_PAGES_ACCOUNT_NONE = 0;
export const IOPT_PAGES_ACCOUNT_USER = 1;
export const IOPT_PAGES_ACCOUNT_MM = 2;

export const PAGE = BigInt(PAGE_SIZE);
export const ULONG_MAX = 0xffffffffffffffffn;
const SIZE_MAX = ULONG_MAX;

/** A run of pinned pages [start, last] (page indexes of the iopt_pages). */
interface PinnedRun extends Interval {
  pages: PinnedPages;
}

/** A window [off, off+length) of other pinned pages (what remains pinned of a split run). */
class PinnedView implements PinnedPages {
  readonly base: PinnedPages;
  readonly off: number;
  constructor(
    base: PinnedPages,
    off: number,
    readonly length: number,
  ) {
    if (base instanceof PinnedView) {
      this.base = base.base;
      this.off = base.off + off;
    } else {
      this.base = base;
      this.off = off;
    }
  }
  read(o: number, n: number): Uint8Array {
    return this.base.read(this.off + o, n);
  }
  write(o: number, d: Uint8Array): void {
    this.base.write(this.off + o, d);
  }
}

let pagesSeq = 1;

/** struct iopt_pages */
export class IoptPages {
  /** kref */
  refs = 1;
  readonly id = pagesSeq++;
  npinned = 0;
  lastNpinned = 0;
  type: 'user' | 'file' = 'user';
  /** IOPT_ADDRESS_USER: the page-aligned start of the user range */
  uptr = 0n;
  /** IOPT_ADDRESS_FILE: the file and the page-aligned byte offset of page index 0 */
  file: File | null = null;
  start = 0n;
  readonly mutex: Mutex;
  /** the pinned page runs */
  readonly pinned = new IntervalTree<PinnedRun>();
  /** domains_itree: the areas over these pages that are filled into domains */
  readonly domainAreas = new Set<IoptArea>();
  constructor(
    readonly npages: bigint,
    readonly writable: boolean,
    public accountMode: number,
    /** source_mm / source_task / source_user: the process current at allocation */
    readonly source: Process | null,
  ) {
    this.mutex = new Mutex(`iopt_pages#${this.id}->mutex`);
  }
}

/** iopt_alloc_pages */
function ioptAllocPages(startByte: bigint, length: bigint, writable: boolean): IoptPages | number {
  // the iommu API uses size_t lengths; protect the DIV_ROUND_UP below
  if (length > SIZE_MAX - PAGE || length === 0n) return -EINVAL;
  const npages = (length + startByte + PAGE - 1n) / PAGE;
  const mode = capable('CAP_IPC_LOCK') ? IOPT_PAGES_ACCOUNT_NONE : IOPT_PAGES_ACCOUNT_USER;
  return new IoptPages(npages, writable, mode, currentProcess());
}

/** iopt_alloc_user_pages */
export function ioptAllocUserPages(uptr: bigint, length: bigint, writable: boolean): IoptPages | number {
  if (uptr + length > ULONG_MAX) return -EOVERFLOW;
  const down = uptr - (uptr % PAGE);
  const pages = ioptAllocPages(uptr - down, length, writable);
  if (typeof pages === 'number') return pages;
  pages.uptr = down;
  pages.type = 'user';
  return pages;
}

/** iopt_alloc_file_pages: the pages hold a reference on the file (any file: it is checked at pin time). */
export function* ioptAllocFilePages(
  file: File,
  startByte: bigint,
  start: bigint,
  length: bigint,
  writable: boolean,
): KGen<IoptPages | number> {
  const pages = ioptAllocPages(startByte, length, writable);
  if (typeof pages === 'number') return pages;
  pages.file = yield* getFile(file);
  pages.start = start - startByte;
  pages.type = 'file';
  return pages;
}

/** kref_get */
export function ioptPagesGet(pages: IoptPages): void {
  pages.refs++;
}

/** iopt_put_pages / iopt_release_pages */
export function* ioptPutPages(pages: IoptPages): KGen<void> {
  if (--pages.refs > 0) return;
  const k = current().kernel;
  if (pages.domainAreas.size) k.warn(`iopt_release_pages: pages#${pages.id} still in domains`);
  if (pages.npinned) k.warn(`iopt_release_pages: pages#${pages.id} still has ${pages.npinned} pages pinned`);
  if (pages.type === 'file' && pages.file) {
    const f = pages.file;
    pages.file = null;
    yield* fput(f);
  }
}

// ---- pinning ---------------------------------------------------------------------------------------

/**
 * pfn_reader_user_pin: pin the pages [s, l] from the source — pin_user_pages(_remote) with
 * FOLL_LONGTERM (and FOLL_WRITE for writable pages) for user memory, memfd_pin_folios for a
 * file.
 */
function pinFromSource(pages: IoptPages, s: bigint, l: bigint): PinnedPages | number {
  const len = (l - s + 1n) * PAGE;
  if (pages.type === 'file') {
    const sh = pages.file ? shmemFile(pages.file) : null;
    // memfd_pin_folios: only shmem (and hugetlbfs) files
    if (!sh) return -EINVAL;
    const start = pages.start + s * PAGE;
    const end = start + len - 1n;
    if (end > BigInt(Number.MAX_SAFE_INTEGER)) return -EINVAL;
    return sh.pin(Number(start), Number(end));
  }
  const src = pages.source;
  // a remote mm that has exited cannot be pinned from (mmget_not_zero fails)
  if (!src || (src !== currentProcess() && src.state !== 'alive')) return -EFAULT;
  const addr = pages.uptr + s * PAGE;
  if (addr + len > BigInt(TASK_SIZE) || !src.mm.pin) return -EFAULT;
  // FOLL_LONGTERM GUP refuses VM_IO / VM_PFNMAP mappings (a BAR mmap): iommufd never maps MMIO
  if (src.mm.ioMapped?.(Number(addr), Number(len))) return -EFAULT;
  return src.mm.pin(Number(addr), Number(len), pages.writable) ?? -EFAULT;
}

/** Pin every page of [s, l] not pinned yet; returns the runs added (for an undo), or an errno. */
function pinHoles(pages: IoptPages, s: bigint, l: bigint): PinnedRun[] | number {
  const added: PinnedRun[] = [];
  let cur = s;
  while (cur <= l) {
    const r = pages.pinned.first(cur, l);
    const holeLast = r ? r.start - 1n : l;
    if (holeLast >= cur) {
      const p = pinFromSource(pages, cur, holeLast);
      if (typeof p === 'number') {
        releaseRuns(pages, added);
        return p;
      }
      const run: PinnedRun = { start: cur, last: holeLast, pages: p };
      pages.pinned.insert(run);
      added.push(run);
      pages.npinned += Number(holeLast - cur + 1n);
    }
    if (!r) break;
    cur = r.last + 1n;
  }
  return added;
}

/** Unpin runs just added (an error unwind). */
function releaseRuns(pages: IoptPages, runs: PinnedRun[]): void {
  for (const r of runs) {
    pages.pinned.delete(r);
    pages.npinned -= Number(r.last - r.start + 1n);
  }
}

/** unpin_user_pages of the pinned pages in [s, l]; the runs straddling the edges are split. */
function unpinRange(pages: IoptPages, s: bigint, l: bigint): void {
  for (const r of pages.pinned.range(s, l)) {
    pages.pinned.delete(r);
    if (r.start < s) {
      const n = Number(s - r.start) * PAGE_SIZE;
      pages.pinned.insert({ start: r.start, last: s - 1n, pages: new PinnedView(r.pages, 0, n) });
    }
    if (r.last > l) {
      const off = Number(l + 1n - r.start) * PAGE_SIZE;
      pages.pinned.insert({ start: l + 1n, last: r.last, pages: new PinnedView(r.pages, off, Number(r.last - l) * PAGE_SIZE) });
    }
    const a = r.start > s ? r.start : s;
    const b = r.last < l ? r.last : l;
    pages.npinned -= Number(b - a + 1n);
  }
}

/** Unpin what in [s, l] no filled area of the pages covers any more (pfn_reader_unpin's rule). */
function unpinUnused(pages: IoptPages, s: bigint, l: bigint): void {
  const covers: Array<[bigint, bigint]> = [];
  for (const a of pages.domainAreas) if (a.pagesStart <= l && a.pagesLast >= s) covers.push([a.pagesStart, a.pagesLast]);
  covers.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  let cur = s;
  for (const [a, b] of covers) {
    if (a > cur) unpinRange(pages, cur, a - 1n < l ? a - 1n : l);
    if (b + 1n > cur) cur = b + 1n;
    if (cur > l) return;
  }
  if (cur <= l) unpinRange(pages, cur, l);
}

// ---- accounting --------------------------------------------------------------------------------------

/**
 * iopt_pages_update_pinned: charge (or uncharge) npages in the pages' mode — USER: the source
 * user's locked_vm (incr_user_locked_vm), MM: the source mm's locked_vm (__account_locked_vm),
 * each against the source task's RLIMIT_MEMLOCK; every mode counts mm->pinned_vm.
 */
export function ioptPagesUpdatePinned(pages: IoptPages, npages: number, inc: boolean): number {
  const src = pages.source;
  const k = current().kernel;
  if (src) {
    const limit = Math.floor(src.rlimitMemlock / PAGE_SIZE);
    switch (pages.accountMode) {
      case IOPT_PAGES_ACCOUNT_NONE:
        break;
      case IOPT_PAGES_ACCOUNT_USER: {
        const users = procTable(src.kernel).userLockedVm;
        const cur = users.get(src.cred.uid) ?? 0;
        if (inc) {
          if (cur + npages > limit) return -ENOMEM;
          users.set(src.cred.uid, cur + npages);
        } else if (cur < npages) k.warn(`decr_user_locked_vm: uid ${src.cred.uid} locked_vm ${cur} < ${npages}`);
        else users.set(src.cred.uid, cur - npages);
        break;
      }
      case IOPT_PAGES_ACCOUNT_MM:
        if (inc) {
          if (src.lockedVm + npages > limit) return -ENOMEM;
          src.lockedVm += npages;
        } else {
          if (npages > src.lockedVm) k.warn(`__account_locked_vm: pid ${src.pid} locked_vm ${src.lockedVm} < ${npages}`);
          src.lockedVm -= npages;
        }
        break;
    }
    src.pinnedVm += inc ? npages : -npages;
  }
  pages.lastNpinned = pages.npinned;
  return 0;
}

/** pfn_reader_user_update_pinned: settle the difference between npinned and last_npinned. */
function updatePinnedDelta(pages: IoptPages): number {
  if (pages.npinned === pages.lastNpinned) return 0;
  if (pages.npinned < pages.lastNpinned) return ioptPagesUpdatePinned(pages, pages.lastNpinned - pages.npinned, false);
  return ioptPagesUpdatePinned(pages, pages.npinned - pages.lastNpinned, true);
}

/** update_unpinned */
function updateUnpinned(pages: IoptPages): void {
  if (pages.npinned > pages.lastNpinned) {
    current().kernel.warn(`update_unpinned: pages#${pages.id} npinned > last_npinned`);
    return;
  }
  if (pages.npinned === pages.lastNpinned) return;
  ioptPagesUpdatePinned(pages, pages.lastNpinned - pages.npinned, false);
}

// ---- areas in domains -------------------------------------------------------------------------------

/** iopt_area_index_to_iova */
function indexToIova(area: IoptArea, index: bigint): bigint {
  const d = index - area.pagesStart;
  if (d === 0n) return area.start;
  return area.start - BigInt(area.pageOffset) + d * PAGE;
}

/** iopt_area_index_to_iova_last */
function indexToIovaLast(area: IoptArea, index: bigint): bigint {
  if (index === area.pagesLast) return area.last;
  return area.start - BigInt(area.pageOffset) + (index - area.pagesStart + 1n) * PAGE - 1n;
}

/** iopt_area_length */
export function areaLength(area: IoptArea): bigint {
  return area.last - area.start + 1n;
}

/**
 * batch_to_domain for a whole (pinned) area: map its pinned runs into the domain. On failure
 * what was mapped is unmapped again. A mapping without READ or WRITE is refused by the VT-d page
 * table format with a WARN (generic_pt map_range).
 */
function mapArea(area: IoptArea, pages: IoptPages, domain: IommuDomain): number {
  if (!(area.iommuProt & (IOMMU_READ | IOMMU_WRITE))) {
    current().kernel.warn('vtdss_map_range: iommu_map without IOMMU_READ or IOMMU_WRITE (iommu_pt.h map_range)');
    return -EINVAL;
  }
  for (const run of pages.pinned.range(area.pagesStart, area.pagesLast)) {
    const i0 = run.start > area.pagesStart ? run.start : area.pagesStart;
    const i1 = run.last < area.pagesLast ? run.last : area.pagesLast;
    const iova = indexToIova(area, i0);
    const last = indexToIovaLast(area, i1);
    const off = Number(i0 - run.start) * PAGE_SIZE + (i0 === area.pagesStart ? area.pageOffset : 0);
    const rc = iommuMap(domain, iova, run.pages, off, last - iova + 1n, area.iommuProt);
    if (rc) {
      if (iova > area.start) iommuUnmap(domain, area.start, iova - area.start);
      return rc;
    }
  }
  return 0;
}

/**
 * The first page's pin decides between EFAULT and the map error when a mapping can never be
 * installed (the kernel pins a batch before it maps it).
 */
function checkUnmappable(area: IoptArea, pages: IoptPages): number {
  if (area.iommuProt & (IOMMU_READ | IOMMU_WRITE)) return 0;
  if (!pages.pinned.find(area.pagesStart)) {
    const p = pinFromSource(pages, area.pagesStart, area.pagesStart);
    if (typeof p === 'number') return p;
  }
  return 0;
}

/**
 * iopt_area_fill_domains: a new area (not yet in domains_itree) is pinned and mapped into every
 * domain of its io_pagetable, then accounted. On failure every domain is left unchanged. Nothing
 * happens without domains: the pages stay unpinned until a domain is added.
 */
export function* ioptAreaFillDomains(area: IoptArea, pages: IoptPages): KGen<number> {
  const domains = area.iopt!.domains;
  if (!domains.length) return 0;
  yield* mutexLock(pages.mutex);
  let rc = checkUnmappable(area, pages);
  if (!rc) {
    const added = pinHoles(pages, area.pagesStart, area.pagesLast);
    if (typeof added === 'number') rc = added;
    else {
      let i = 0;
      for (; i < domains.length; i++) {
        rc = mapArea(area, pages, domains[i]!);
        if (rc) break;
      }
      if (!rc) rc = updatePinnedDelta(pages);
      if (rc) {
        for (let j = 0; j < i; j++) iommuUnmap(domains[j]!, area.start, areaLength(area));
        releaseRuns(pages, added);
      } else {
        area.storageDomain = domains[0]!;
        pages.domainAreas.add(area);
      }
    }
  }
  yield* mutexUnlock(pages.mutex);
  return rc;
}

/**
 * iopt_area_fill_domain (pages->mutex held): map an existing area into one more domain. An area
 * that no domain held yet is pinned (and accounted) first.
 */
export function ioptAreaFillDomain(area: IoptArea, domain: IommuDomain): number {
  const pages = area.pages!;
  let rc = checkUnmappable(area, pages);
  if (rc) return rc;
  const added = area.storageDomain ? [] : pinHoles(pages, area.pagesStart, area.pagesLast);
  if (typeof added === 'number') return added;
  rc = mapArea(area, pages, domain);
  if (!rc) {
    rc = updatePinnedDelta(pages);
    if (rc) iommuUnmap(domain, area.start, areaLength(area));
  }
  if (rc) releaseRuns(pages, added);
  return rc;
}

/**
 * iopt_area_unfill_domain (pages->mutex held, the area already out of domains_itree when it was
 * the last domain): unmap the area from the domain and unpin what nothing else holds.
 */
export function ioptAreaUnfillDomain(area: IoptArea, pages: IoptPages, domain: IommuDomain): void {
  iommuUnmap(domain, area.start, areaLength(area));
  unpinUnused(pages, area.pagesStart, area.pagesLast);
  updateUnpinned(pages);
}

/** iopt_area_unmap_domain: unmap without unpinning (other domains still hold the pages). */
export function ioptAreaUnmapDomain(area: IoptArea, domain: IommuDomain): void {
  iommuUnmap(domain, area.start, areaLength(area));
}

/** iopt_area_unfill_domains: the area is being destroyed — unmap it everywhere and unpin. */
export function* ioptAreaUnfillDomains(area: IoptArea, pages: IoptPages): KGen<void> {
  yield* mutexLock(pages.mutex);
  if (area.storageDomain) {
    for (const d of area.iopt!.domains) if (d !== area.storageDomain) iommuUnmap(d, area.start, areaLength(area));
    pages.domainAreas.delete(area);
    ioptAreaUnfillDomain(area, pages, area.storageDomain);
    area.storageDomain = null;
  }
  yield* mutexUnlock(pages.mutex);
}
