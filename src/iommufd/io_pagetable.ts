// drivers/iommu/iommufd/io_pagetable.c: the IO page table behind an IOAS — the mapped areas (an
// interval tree), reserved ranges (device reserved regions, domain apertures), allowed ranges,
// the domains every area is mirrored into and the IOVA alignment they impose; IOVA allocation,
// map / copy / unmap, and the VFIO-compat area split.

import { EADDRINUSE, EBADF, EBUSY, EEXIST, EINVAL, ENOENT, ENOSPC, EOVERFLOW, EPERM } from '../kernel/errno.js';
import { currentProcess } from '../kernel/current.js';
import { File, fput } from '../kernel/fs/file.js';
import { Interval, IntervalTree } from '../kernel/interval_tree.js';
import { KGen, current } from '../kernel/sched.js';
import {
  RwSemaphore, downRead, downWrite, mutexLock, mutexUnlock, refcountIncNotZero, upRead, upWrite,
} from '../kernel/sync.js';
import { IommuDevice, IommuDomain, deviceReservedRegions } from '../iommu/iommu.js';
import {
  IOPT_PAGES_ACCOUNT_MM, IOPT_PAGES_ACCOUNT_USER, IoptPages, PAGE, ULONG_MAX, areaLength, ioptAllocFilePages,
  ioptAllocUserPages, ioptAreaFillDomain, ioptAreaFillDomains, ioptAreaUnfillDomain, ioptAreaUnfillDomains,
  ioptAreaUnmapDomain, ioptPagesGet, ioptPutPages,
} from './pages.js';

export { ULONG_MAX };

export interface Span {
  start: bigint;
  /** inclusive */
  last: bigint;
}

export interface Reserved extends Span {
  owner: unknown;
}

/** IOPT_ALLOC_IOVA: place the mapping automatically */
export const IOPT_ALLOC_IOVA = 1;

/** struct iopt_area: [start, last] of IOVA backed by pages [pagesStart, pagesLast]. */
export class IoptArea implements Interval {
  start = 0n;
  last = 0n;
  /** pages_node: page indexes into `pages` */
  pagesStart = 0n;
  pagesLast = 0n;
  /** null while the area is being set up or torn down */
  pages: IoptPages | null = null;
  /** a domain holding the area's pages (null: not filled into any domain) */
  storageDomain: IommuDomain | null = null;
  /** bytes into the first page */
  pageOffset = 0;
  iommuProt = 0;
  preventAccess = false;
  numAccesses = 0;
  numLocks = 0;
  iopt: IoPagetable | null = null;
}

function intersects(a: Span, start: bigint, last: bigint): boolean {
  return a.start <= last && a.last >= start;
}

/** 1 << __ffs(pgsize_bitmap) */
function lowestPgsize(bitmap: bigint): bigint {
  if (bitmap === 0n) return 1n;
  return bitmap & -bitmap;
}

/** struct io_pagetable */
export class IoPagetable {
  readonly iovaRwsem: RwSemaphore;
  readonly domainsRwsem: RwSemaphore;
  /** reserved_itree (sorted by start; ranges of different owners may overlap) */
  reserved: Reserved[] = [];
  /** allowed_itree (sorted, non-overlapping) */
  allowed: Span[] = [];
  readonly areas = new IntervalTree<IoptArea>();
  /** the domains xarray, kept dense (index 0 is the storage domain of last resort) */
  readonly domains: IommuDomain[] = [];
  iovaAlignment = 1n;
  disableLargePages = false;
  /** in-kernel accesses (emulated devices), each with its own alignment */
  readonly accesses: Array<{ iovaAlignment: bigint }> = [];
  constructor(label: string) {
    this.iovaRwsem = new RwSemaphore(`${label}->iopt.iova_rwsem`);
    this.domainsRwsem = new RwSemaphore(`${label}->iopt.domains_rwsem`);
  }

  reservedIterFirst(start: bigint, last: bigint): Reserved | undefined {
    return this.reserved.find((r) => intersects(r, start, last));
  }
  allowedIterFirst(start: bigint, last: bigint): Span | undefined {
    return this.allowed.find((r) => intersects(r, start, last));
  }
}

// ---- IOVA allocation ------------------------------------------------------------------------------

/** roundup_pow_of_two */
function roundupPow2(n: bigint): bigint {
  let p = 1n;
  while (p < n) p <<= 1n;
  return p;
}

/** 1 << __ffs64(x) (x != 0) */
function lowestBit(x: bigint): bigint {
  return x & -x;
}

/** __alloc_iova_check_range: the aligned start (keeping page_offset) if [start, last] fits */
function allocCheckRange(start: bigint, last: bigint, length: bigint, align: bigint, pageOffset: bigint): bigint | null {
  let a = start + align - 1n;
  if (a > ULONG_MAX) return null;
  a &= ~(align - 1n);
  a |= pageOffset;
  if (a >= last || last - a < length - 1n) return null;
  return a;
}

/** The used spans of the allowed tree within [first, last] (adjacent ranges merge into one span). */
function allowedSpans(iopt: IoPagetable, first: bigint, last: bigint): Span[] {
  if (!iopt.allowed.length) return [{ start: first, last }];
  const out: Span[] = [];
  for (const a of iopt.allowed) {
    if (!intersects(a, first, last)) continue;
    const s = a.start > first ? a.start : first;
    const l = a.last < last ? a.last : last;
    const prev = out[out.length - 1];
    if (prev && prev.last + 1n >= s) {
      if (l > prev.last) prev.last = l;
    } else out.push({ start: s, last: l });
  }
  return out;
}

/**
 * The holes of reserved_itree ∪ area_itree within [first, last], in order (what
 * interval_tree_for_each_double_span reports as holes); the callback returns true to stop.
 */
function forEachHole(iopt: IoPagetable, first: bigint, last: bigint, f: (s: bigint, l: bigint) => boolean): void {
  let cur = first;
  while (cur <= last) {
    const a = iopt.areas.first(cur, last);
    const r = iopt.reservedIterFirst(cur, last);
    let used: Span | undefined = a;
    if (r && (!used || r.start < used.start)) used = r;
    if (!used) {
      f(cur, last);
      return;
    }
    if (used.start > cur && f(cur, used.start - 1n)) return;
    // skip the whole contiguous used run
    let end = used.last;
    for (;;) {
      if (end >= last) return;
      const a2 = iopt.areas.first(end + 1n, end + 1n);
      const r2 = iopt.reservedIterFirst(end + 1n, end + 1n);
      const nx = a2 && r2 ? (a2.last > r2.last ? a2 : r2) : (a2 ?? r2);
      if (!nx) break;
      end = nx.last;
    }
    cur = end + 1n;
  }
}

/**
 * iopt_alloc_iova: the first free IOVA (never 0) inside the allowed ranges that keeps user_va's
 * offset in its page; aligned like addr and length, at most to PAGE_SIZE (no
 * CONFIG_TRANSPARENT_HUGEPAGE).
 */
function ioptAllocIova(iopt: IoPagetable, addr: bigint, length: bigint): bigint | number {
  const pageOffset = addr % PAGE;
  // protect roundup_pow_of_two() from overflow
  if (length === 0n || length >= ULONG_MAX / 2n) return -EOVERFLOW;
  let align = roundupPow2(length);
  if (addr !== 0n) {
    const b = lowestBit(addr);
    if (b < align) align = b;
  }
  const maxAlignment = PAGE;
  if (align >= maxAlignment) align = maxAlignment;
  if (align < iopt.iovaAlignment) return -EINVAL;
  for (const span of allowedSpans(iopt, PAGE, ULONG_MAX - PAGE)) {
    const s = allocCheckRange(span.start, span.last, length, align, pageOffset);
    if (s === null) continue;
    let found: bigint | null = null;
    forEachHole(iopt, s, span.last, (hs, hl) => {
      found = allocCheckRange(hs, hl, length, align, pageOffset);
      return found !== null;
    });
    if (found !== null) return found;
  }
  return -ENOSPC;
}

/** iopt_check_iova */
function ioptCheckIova(iopt: IoPagetable, iova: bigint, length: bigint): number {
  if (iova & (iopt.iovaAlignment - 1n)) return -EINVAL;
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return -EOVERFLOW;
  // no reserved IOVA intersects the range
  if (iopt.reservedIterFirst(iova, last)) return -EINVAL;
  // nor an existing mapping
  if (iopt.areas.first(iova, last)) return -EEXIST;
  return 0;
}

/** iopt_area_start_byte: bytes from the start of the pages to `iova` */
export function areaStartByte(area: IoptArea, iova: bigint): bigint {
  return iova - area.start + BigInt(area.pageOffset) + area.pagesStart * PAGE;
}

/** iopt_insert_area: the area takes the slice [startByte, startByte+length) of the pages. */
function ioptInsertArea(
  iopt: IoPagetable,
  area: IoptArea,
  pages: IoptPages,
  iova: bigint,
  startByte: bigint,
  length: bigint,
  prot: number,
): number {
  if (prot & 2 /* IOMMU_WRITE */ && !pages.writable) return -EPERM;
  area.iommuProt = prot;
  area.pageOffset = Number(startByte % PAGE);
  if (BigInt(area.pageOffset) & (iopt.iovaAlignment - 1n)) return -EINVAL;
  area.start = iova;
  area.last = iova + length - 1n;
  if (area.last > ULONG_MAX) return -EOVERFLOW;
  area.pagesStart = startByte / PAGE;
  const lastByte = startByte + length - 1n;
  if (lastByte > ULONG_MAX) return -EOVERFLOW;
  area.pagesLast = lastByte / PAGE;
  if (area.pagesLast >= pages.npages) {
    current().kernel.warn('iopt_insert_area: area beyond its pages');
    return -EOVERFLOW;
  }
  // inserted with pages == NULL: the IOVA is reserved while the area is set up
  area.iopt = iopt;
  iopt.areas.insert(area);
  return 0;
}

/** struct iopt_pages_list */
export interface PagesElm {
  pages: IoptPages | null;
  area: IoptArea | null;
  startByte: bigint;
  length: bigint;
}

/** iopt_alloc_area_pages: place the areas (automatic or fixed IOVA) with NULL pages. */
function* ioptAllocAreaPages(
  iopt: IoPagetable,
  list: PagesElm[],
  length: bigint,
  dstIova: { v: bigint },
  prot: number,
  flags: number,
): KGen<number> {
  for (const elm of list) elm.area = new IoptArea();
  yield* downWrite(iopt.iovaRwsem);
  let rc = 0;
  out: {
    if (length & (iopt.iovaAlignment - 1n) || !length) {
      rc = -EINVAL;
      break out;
    }
    if (flags & IOPT_ALLOC_IOVA) {
      // the first entry guesses the ideal alignment
      const elm = list[0]!;
      const p = elm.pages!;
      const start = elm.startByte + (p.type === 'user' ? p.uptr : p.start);
      const r = ioptAllocIova(iopt, start, length);
      if (typeof r === 'number') {
        rc = r;
        break out;
      }
      dstIova.v = r;
    } else {
      rc = ioptCheckIova(iopt, dstIova.v, length);
      if (rc) break out;
    }
    let iova = dstIova.v;
    for (const elm of list) {
      rc = ioptInsertArea(iopt, elm.area!, elm.pages!, iova, elm.startByte, elm.length, prot);
      if (rc) break out;
      iova += elm.length;
    }
  }
  yield* upWrite(iopt.iovaRwsem);
  return rc;
}

/** iopt_abort_area */
function* ioptAbortArea(area: IoptArea): KGen<void> {
  if (area.iopt) {
    yield* downWrite(area.iopt.iovaRwsem);
    area.iopt.areas.delete(area);
    yield* upWrite(area.iopt.iovaRwsem);
  }
}

/** iopt_free_pages_list */
export function* ioptFreePagesList(list: PagesElm[]): KGen<void> {
  while (list.length) {
    const elm = list.shift()!;
    if (elm.area) yield* ioptAbortArea(elm.area);
    if (elm.pages) yield* ioptPutPages(elm.pages);
  }
}

/** iopt_fill_domains_pages */
function* ioptFillDomainsPages(list: PagesElm[]): KGen<number> {
  for (let i = 0; i < list.length; i++) {
    const rc = yield* ioptAreaFillDomains(list[i]!.area!, list[i]!.pages!);
    if (rc) {
      for (let j = 0; j < i; j++) yield* ioptAreaUnfillDomains(list[j]!.area!, list[j]!.pages!);
      return rc;
    }
  }
  return 0;
}

/** iopt_map_pages: place, then pin/map into every domain, then publish area->pages. */
export function* ioptMapPages(
  iopt: IoPagetable,
  list: PagesElm[],
  length: bigint,
  dstIova: { v: bigint },
  prot: number,
  flags: number,
): KGen<number> {
  let rc = yield* ioptAllocAreaPages(iopt, list, length, dstIova, prot, flags);
  if (rc) return rc;
  yield* downRead(iopt.domainsRwsem);
  rc = yield* ioptFillDomainsPages(list);
  if (!rc) {
    yield* downWrite(iopt.iovaRwsem);
    // area->pages is set inside the domains_rwsem so that a new domain gets filled
    for (const elm of list) {
      elm.area!.pages = elm.pages;
      elm.pages = null;
      elm.area = null;
    }
    yield* upWrite(iopt.iovaRwsem);
  }
  yield* upRead(iopt.domainsRwsem);
  return rc;
}

/** iopt_map_common: a context in MM accounting mode turns per-user accounting into per-mm. */
function* ioptMapCommon(
  accountMode: number,
  iopt: IoPagetable,
  pages: IoptPages,
  iova: { v: bigint },
  length: bigint,
  startByte: bigint,
  prot: number,
  flags: number,
): KGen<number> {
  if (accountMode === IOPT_PAGES_ACCOUNT_MM && pages.accountMode === IOPT_PAGES_ACCOUNT_USER)
    pages.accountMode = IOPT_PAGES_ACCOUNT_MM;
  const list: PagesElm[] = [{ pages, area: null, startByte, length }];
  const rc = yield* ioptMapPages(iopt, list, length, iova, prot, flags);
  if (rc) yield* ioptFreePagesList(list);
  return rc;
}

/** iopt_map_user_pages */
export function* ioptMapUserPages(
  accountMode: number,
  iopt: IoPagetable,
  iova: { v: bigint },
  uptr: bigint,
  length: bigint,
  prot: number,
  flags: number,
): KGen<number> {
  const pages = ioptAllocUserPages(uptr, length, (prot & 2) !== 0);
  if (typeof pages === 'number') return pages;
  return yield* ioptMapCommon(accountMode, iopt, pages, iova, length, uptr - pages.uptr, prot, flags);
}

/** iopt_map_file_pages: any file is accepted here; the pin decides (memfd_pin_folios). */
export function* ioptMapFilePages(
  accountMode: number,
  iopt: IoPagetable,
  iova: { v: bigint },
  fd: number,
  start: bigint,
  length: bigint,
  prot: number,
  flags: number,
): KGen<number> {
  if (!length) return -EINVAL;
  if (start + length - 1n > ULONG_MAX) return -EOVERFLOW;
  const startByte = start % PAGE;
  // dma_buf_get(fd) fails (no dma-buf exporter is modelled): the fget path, which takes no file
  // whose last reference is already gone
  const fdt = currentProcess()?.fdt;
  let f: File | undefined;
  for (;;) {
    f = fd >= 0 ? fdt?.get(fd) : undefined;
    if (!f) return -EBADF;
    if (yield* refcountIncNotZero(f.fCount)) break;
  }
  const pages = yield* ioptAllocFilePages(f, startByte, start, length, (prot & 2) !== 0);
  yield* fput(f);
  if (typeof pages === 'number') return pages;
  return yield* ioptMapCommon(accountMode, iopt, pages, iova, length, startByte, prot, flags);
}

/**
 * iopt_area_contig_init/next: the areas covering [iova, last] back to back (with pages); `done`
 * is false when they stop short.
 */
function contigAreas(iopt: IoPagetable, iova: bigint, last: bigint): { areas: Array<{ area: IoptArea; cur: bigint }>; done: boolean } {
  const out: Array<{ area: IoptArea; cur: bigint }> = [];
  let cur = iova;
  let area = iopt.areas.find(iova);
  while (area && area.pages) {
    out.push({ area, cur });
    if (last <= area.last) return { areas: out, done: true };
    cur = area.last + 1n;
    const next = iopt.areas.first(cur, last);
    if (!next || next.start !== cur) break;
    area = next;
  }
  return { areas: out, done: false };
}

/** iopt_get_pages: references on the pages exactly covering [iova, iova+length) (IOAS_COPY). */
export function* ioptGetPages(iopt: IoPagetable, iova: bigint, length: bigint, list: PagesElm[]): KGen<number> {
  if (!length) return -EINVAL;
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return -EOVERFLOW;
  yield* downRead(iopt.iovaRwsem);
  const c = contigAreas(iopt, iova, last);
  for (const { area, cur } of c.areas) {
    const l = last < area.last ? last : area.last;
    ioptPagesGet(area.pages!);
    list.push({ pages: area.pages, area: null, startByte: areaStartByte(area, cur), length: l - cur + 1n });
  }
  yield* upRead(iopt.iovaRwsem);
  if (!c.done) {
    yield* ioptFreePagesList(list);
    return -ENOENT;
  }
  return 0;
}

/**
 * iopt_unmap_iova_range: remove the areas inside [start, last] (no splitting: an area reaching
 * outside gives ENOENT; areas removed before an error stay removed).
 */
function* ioptUnmapIovaRange(iopt: IoPagetable, start: bigint, last: bigint, unmapped: { v: bigint } | null): KGen<number> {
  let bytes = 0n;
  let rc = 0;
  // domains_rwsem is held for read whenever an area->pages is NULL
  yield* downRead(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  for (;;) {
    const area = iopt.areas.first(start, last);
    if (!area) break;
    const areaFirst = area.start;
    const areaLast = area.last;
    // userspace should not race map/unmap of the same area; or an object locks the area
    if (!area.pages || area.numLocks) {
      rc = -EBUSY;
      break;
    }
    if (areaFirst < start || areaLast > last) {
      rc = -ENOENT;
      break;
    }
    const pages = area.pages;
    area.pages = null;
    yield* upWrite(iopt.iovaRwsem);
    yield* ioptAreaUnfillDomains(area, pages);
    yield* ioptAbortArea(area);
    yield* ioptPutPages(pages);
    bytes = BigInt.asUintN(64, bytes + (areaLast - areaFirst + 1n));
    yield* downWrite(iopt.iovaRwsem);
    if (areaLast >= last) break;
    start = areaLast + 1n;
  }
  yield* upWrite(iopt.iovaRwsem);
  yield* upRead(iopt.domainsRwsem);
  if (unmapped) unmapped.v = bytes;
  return rc;
}

/** iopt_unmap_iova */
export function* ioptUnmapIova(iopt: IoPagetable, iova: bigint, length: bigint, unmapped: { v: bigint } | null): KGen<number> {
  if (!length) return -EINVAL;
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return -EOVERFLOW;
  return yield* ioptUnmapIovaRange(iopt, iova, last, unmapped);
}

/** iopt_unmap_all: success also when nothing is mapped */
export function* ioptUnmapAll(iopt: IoPagetable, unmapped: { v: bigint } | null): KGen<number> {
  return yield* ioptUnmapIovaRange(iopt, 0n, ULONG_MAX, unmapped);
}

/** iopt_destroy_table: everything must be gone by now */
export function ioptDestroyTable(iopt: IoPagetable): void {
  iopt.allowed = [];
  const k = current().kernel;
  if (iopt.domains.length) k.warn('iopt_destroy_table: domains left');
  if (iopt.areas.size) k.warn('iopt_destroy_table: areas left');
}

// ---- reserved and allowed ranges --------------------------------------------------------------------

/** iopt_set_allow_iova: replace the allowed set unless it overlaps a reserved range. */
export function* ioptSetAllowIova(iopt: IoPagetable, allowed: Span[]): KGen<number> {
  yield* downWrite(iopt.iovaRwsem);
  const old = iopt.allowed;
  iopt.allowed = [...allowed].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (const a of iopt.allowed) {
    if (iopt.reservedIterFirst(a.start, a.last)) {
      iopt.allowed = old;
      yield* upWrite(iopt.iovaRwsem);
      return -EADDRINUSE;
    }
  }
  yield* upWrite(iopt.iovaRwsem);
  return 0;
}

/** iopt_reserve_iova (iova_rwsem held for write) */
export function iopt_reserve_iova(iopt: IoPagetable, start: bigint, last: bigint, owner: unknown): number {
  if (iopt.areas.first(start, last) || iopt.allowedIterFirst(start, last)) return -EADDRINUSE;
  iopt.reserved.push({ start, last, owner });
  iopt.reserved.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  return 0;
}

function removeReservedLocked(iopt: IoPagetable, owner: unknown): void {
  iopt.reserved = iopt.reserved.filter((r) => r.owner !== owner);
}

/** iopt_remove_reserved_iova */
export function* ioptRemoveReservedIova(iopt: IoPagetable, owner: unknown): KGen<void> {
  yield* downWrite(iopt.iovaRwsem);
  removeReservedLocked(iopt, owner);
  yield* upWrite(iopt.iovaRwsem);
}

/** The holes of the reserved set over [0, 2^64-1] (what IOAS_IOVA_RANGES reports). */
export function ioptReservedHoles(iopt: IoPagetable): Span[] {
  const out: Span[] = [];
  let next = 0n;
  for (const r of iopt.reserved) {
    if (r.start > next) out.push({ start: next, last: r.start - 1n });
    if (r.last >= next) {
      if (r.last === ULONG_MAX) return out;
      next = r.last + 1n;
    }
  }
  out.push({ start: next, last: ULONG_MAX });
  return out;
}

/** iopt_table_enforce_dev_resv_regions: the device's reserved regions become reserved IOVA. */
export function* ioptTableEnforceDevResvRegions(iopt: IoPagetable, dev: IommuDevice): KGen<number> {
  yield* downWrite(iopt.iovaRwsem);
  let rc = 0;
  for (const r of deviceReservedRegions(dev)) {
    if (r.type === 'direct-relaxable') continue;
    rc = iopt_reserve_iova(iopt, r.start, r.last, dev);
    if (rc) {
      removeReservedLocked(iopt, dev);
      break;
    }
  }
  yield* upWrite(iopt.iovaRwsem);
  return rc;
}

// ---- domains -------------------------------------------------------------------------------------------

/**
 * iopt_unfill_domain (the domain already out of the domains array): unmap every area from it;
 * if it was the last domain the pages are unpinned too.
 */
function* ioptUnfillDomain(iopt: IoPagetable, domain: IommuDomain): KGen<void> {
  if (iopt.domains.length) {
    // some other domain still holds the pages: just unmap this one
    const storage = iopt.domains[0]!;
    for (const area of iopt.areas.all()) {
      const pages = area.pages;
      if (!pages) continue;
      yield* mutexLock(pages.mutex);
      if (area.storageDomain === domain) area.storageDomain = storage;
      yield* mutexUnlock(pages.mutex);
      ioptAreaUnmapDomain(area, domain);
    }
    return;
  }
  for (const area of iopt.areas.all()) {
    const pages = area.pages;
    if (!pages) continue;
    yield* mutexLock(pages.mutex);
    pages.domainAreas.delete(area);
    if (area.storageDomain !== domain) current().kernel.warn('iopt_unfill_domain: unexpected storage domain');
    area.storageDomain = null;
    ioptAreaUnfillDomain(area, pages, domain);
    yield* mutexUnlock(pages.mutex);
  }
}

/** iopt_fill_domain: map every area into a new domain; on failure the domain is left unchanged. */
function* ioptFillDomain(iopt: IoPagetable, domain: IommuDomain): KGen<number> {
  const all = iopt.areas.all();
  let i = 0;
  let rc = 0;
  for (; i < all.length; i++) {
    const area = all[i]!;
    const pages = area.pages;
    if (!pages) continue;
    yield* mutexLock(pages.mutex);
    rc = ioptAreaFillDomain(area, domain);
    if (!rc && !area.storageDomain) {
      area.storageDomain = domain;
      pages.domainAreas.add(area);
    }
    yield* mutexUnlock(pages.mutex);
    if (rc) break;
  }
  if (!rc) return 0;
  for (let j = 0; j < i; j++) {
    const area = all[j]!;
    const pages = area.pages;
    if (!pages) continue;
    yield* mutexLock(pages.mutex);
    if (iopt.domains.length === 0) {
      pages.domainAreas.delete(area);
      area.storageDomain = null;
    }
    ioptAreaUnfillDomain(area, pages, domain);
    yield* mutexUnlock(pages.mutex);
  }
  return rc;
}

/** iopt_check_iova_alignment: every area conforms to a larger alignment */
function ioptCheckIovaAlignment(iopt: IoPagetable, newAlign: bigint): number {
  const mask = newAlign - 1n;
  for (const a of iopt.areas.all()) {
    if (a.start & mask || areaLength(a) & mask || BigInt(a.pageOffset) & mask) return -EADDRINUSE;
  }
  return 0;
}

/** iopt_table_add_domain: alignment, aperture reservations, then fill (pin) every area. */
export function* ioptTableAddDomain(iopt: IoPagetable, domain: IommuDomain): KGen<number> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  let rc = 0;
  out: {
    if (iopt.domains.includes(domain)) {
      current().kernel.warn('iopt_table_add_domain: domain already added');
      rc = -EEXIST;
      break out;
    }
    // a domain must accept PAGE_SIZE: iopt_pages work in PAGE_SIZE units
    const pg = lowestPgsize(domain.pgsizeBitmap);
    const newAlign = pg > iopt.iovaAlignment ? pg : iopt.iovaAlignment;
    if (newAlign > PAGE) {
      rc = -EINVAL;
      break out;
    }
    if (newAlign !== iopt.iovaAlignment) {
      rc = ioptCheckIovaAlignment(iopt, newAlign);
      if (rc) break out;
    }
    // no area may lie outside the domain's aperture
    const apertureStart = 0n;
    if (apertureStart !== 0n) {
      rc = iopt_reserve_iova(iopt, 0n, apertureStart - 1n, domain);
      if (rc) {
        removeReservedLocked(iopt, domain);
        break out;
      }
    }
    if (domain.apertureEnd !== ULONG_MAX) {
      rc = iopt_reserve_iova(iopt, domain.apertureEnd + 1n, ULONG_MAX, domain);
      if (rc) {
        removeReservedLocked(iopt, domain);
        break out;
      }
    }
    rc = yield* ioptFillDomain(iopt, domain);
    if (rc) {
      removeReservedLocked(iopt, domain);
      break out;
    }
    iopt.iovaAlignment = newAlign;
    iopt.domains.push(domain);
  }
  yield* upWrite(iopt.iovaRwsem);
  yield* upWrite(iopt.domainsRwsem);
  return rc;
}

/** iopt_calculate_iova_alignment */
function ioptCalculateIovaAlignment(iopt: IoPagetable): number {
  // see batch_iommu_map_small()
  let a = iopt.disableLargePages ? PAGE : 1n;
  for (const d of iopt.domains) {
    const pg = lowestPgsize(d.pgsizeBitmap);
    if (pg > a) a = pg;
  }
  for (const acc of iopt.accesses) if (acc.iovaAlignment > a) a = acc.iovaAlignment;
  if (a > iopt.iovaAlignment) {
    const rc = ioptCheckIovaAlignment(iopt, a);
    if (rc) return rc;
  }
  iopt.iovaAlignment = a;
  return 0;
}

/** iopt_table_remove_domain: the array stays dense (the tail entry takes the freed slot). */
export function* ioptTableRemoveDomain(iopt: IoPagetable, domain: IommuDomain, warn: (m: string) => void): KGen<void> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  const i = iopt.domains.indexOf(domain);
  if (i < 0) warn('iopt_table_remove_domain: unknown domain');
  else {
    const tail = iopt.domains.pop()!;
    if (i !== iopt.domains.length) iopt.domains[i] = tail;
    yield* ioptUnfillDomain(iopt, domain);
    removeReservedLocked(iopt, domain);
    if (ioptCalculateIovaAlignment(iopt)) warn('iopt_calculate_iova_alignment failed');
  }
  yield* upWrite(iopt.iovaRwsem);
  yield* upWrite(iopt.domainsRwsem);
}

// ---- VFIO type1 compatibility: splitting areas ----------------------------------------------------------

/**
 * iopt_area_split: `iova` becomes the last byte of a new left area; both halves share the pages.
 * Refused (EINVAL) once a domain may hold the area in large pages.
 */
function* ioptAreaSplit(area: IoptArea, iova: bigint): KGen<number> {
  const iopt = area.iopt!;
  const alignment = iopt.iovaAlignment;
  const lastIova = area.last;
  const startIova = area.start;
  const newStart = iova + 1n;
  const pages = area.pages;
  if (iova === startIova || iova === lastIova) return 0;
  if (!pages || area.preventAccess) return -EBUSY;
  if (newStart & (alignment - 1n) || areaStartByte(area, newStart) & (alignment - 1n)) return -EINVAL;
  const lhs = new IoptArea();
  const rhs = new IoptArea();
  yield* mutexLock(pages.mutex);
  let rc = 0;
  out: {
    // existing accesses cannot be split
    if (area.numAccesses) {
      rc = -EINVAL;
      break out;
    }
    // nor an area a domain may have mapped with huge pages
    if (area.storageDomain && !iopt.disableLargePages) {
      rc = -EINVAL;
      break out;
    }
    iopt.areas.delete(area);
    rc = ioptInsertArea(iopt, lhs, pages, startIova, areaStartByte(area, startIova), newStart - startIova, area.iommuProt);
    if (rc) {
      current().kernel.warn('iopt_area_split: lhs insert failed');
      iopt.areas.insert(area);
      break out;
    }
    rc = ioptInsertArea(iopt, rhs, pages, newStart, areaStartByte(area, newStart), lastIova - newStart + 1n, area.iommuProt);
    if (rc) {
      current().kernel.warn('iopt_area_split: rhs insert failed');
      iopt.areas.delete(lhs);
      iopt.areas.insert(area);
      break out;
    }
    if (area.storageDomain) {
      pages.domainAreas.delete(area);
      pages.domainAreas.add(lhs);
      pages.domainAreas.add(rhs);
    }
    lhs.storageDomain = area.storageDomain;
    rhs.storageDomain = area.storageDomain;
    lhs.pages = pages;
    rhs.pages = pages;
    ioptPagesGet(pages);
  }
  yield* mutexUnlock(pages.mutex);
  return rc;
}

/** iopt_cut_iova: split the areas holding each of `iovas` there. */
export function* ioptCutIova(iopt: IoPagetable, iovas: bigint[]): KGen<number> {
  let rc = 0;
  yield* downWrite(iopt.iovaRwsem);
  for (const iova of iovas) {
    const area = iopt.areas.find(iova);
    if (!area) continue;
    rc = yield* ioptAreaSplit(area, iova);
    if (rc) break;
  }
  yield* upWrite(iopt.iovaRwsem);
  return rc;
}

// ---- large pages -----------------------------------------------------------------------------------------

/** iopt_disable_large_pages: not once domains already have areas mapped in them. */
export function* ioptDisableLargePages(iopt: IoPagetable): KGen<number> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  let rc = 0;
  if (!iopt.disableLargePages) {
    if (iopt.domains.length > 0 && iopt.areas.size > 0) rc = -EINVAL;
    else {
      iopt.disableLargePages = true;
      rc = ioptCalculateIovaAlignment(iopt);
      if (rc) iopt.disableLargePages = false;
    }
  }
  yield* upWrite(iopt.iovaRwsem);
  yield* upWrite(iopt.domainsRwsem);
  return rc;
}

/** iopt_enable_large_pages */
export function* ioptEnableLargePages(iopt: IoPagetable): KGen<void> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  iopt.disableLargePages = false;
  if (ioptCalculateIovaAlignment(iopt)) current().kernel.warn('iopt_enable_large_pages: alignment');
  yield* upWrite(iopt.iovaRwsem);
  yield* upWrite(iopt.domainsRwsem);
}
