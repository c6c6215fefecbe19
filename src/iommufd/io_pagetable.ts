// drivers/iommu/iommufd/io_pagetable.c: the IO page table behind an IOAS — reserved ranges
// (device reserved regions, domain apertures), allowed ranges, the domains it is mirrored into
// and the IOVA alignment they impose. Mapped areas live in `areas` (the DMA-mapping model).

import { EADDRINUSE, EEXIST, EINVAL } from '../kernel/errno.js';
import { KGen } from '../kernel/sched.js';
import { RwSemaphore, downWrite, upWrite } from '../kernel/sync.js';
import { PAGE_SIZE } from '../kernel/uaccess.js';
import { IommuDevice, IommuDomain, deviceReservedRegions } from '../iommu/iommu.js';

export const ULONG_MAX = 0xffffffffffffffffn;

export interface Span {
  start: bigint;
  /** inclusive */
  last: bigint;
}

export interface Reserved extends Span {
  owner: unknown;
}

/** A mapped area (struct iopt_area); the DMA-mapping model extends it. */
export interface Area extends Span {
  [k: string]: unknown;
}

/** The mapped areas; the DMA-mapping model provides an O(log n) implementation. */
export interface AreaIndex {
  /** the first area intersecting [start, last], in IOVA order */
  first(start: bigint, last: bigint): Area | undefined;
  /** all areas intersecting [start, last] */
  range(start: bigint, last: bigint): Area[];
  size(): number;
}

class EmptyAreas implements AreaIndex {
  first(): Area | undefined {
    return undefined;
  }
  range(): Area[] {
    return [];
  }
  size(): number {
    return 0;
  }
}

function intersects(a: Span, start: bigint, last: bigint): boolean {
  return a.start <= last && a.last >= start;
}

/** ffs of a page-size bitmap as a size */
function lowestPgsize(bitmap: bigint): bigint {
  if (bitmap === 0n) return 1n;
  return bitmap & -bitmap;
}

/** struct io_pagetable */
export class IoPagetable {
  readonly iovaRwsem: RwSemaphore;
  readonly domainsRwsem: RwSemaphore;
  reserved: Reserved[] = [];
  allowed: Span[] = [];
  areas: AreaIndex = new EmptyAreas();
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

/** iopt_set_allow_iova: replace the allowed set unless it overlaps a reserved range. */
export function* ioptSetAllowIova(iopt: IoPagetable, allowed: Span[]): KGen<number> {
  yield* downWrite(iopt.iovaRwsem);
  const old = iopt.allowed;
  iopt.allowed = allowed;
  for (const a of allowed) {
    if (iopt.reservedIterFirst(a.start, a.last)) {
      iopt.allowed = old;
      yield* upWrite(iopt.iovaRwsem);
      return -EADDRINUSE;
    }
  }
  yield* upWrite(iopt.iovaRwsem);
  return 0;
}

/** iopt_check_iova_alignment: every area conforms to a larger alignment */
function ioptCheckIovaAlignment(iopt: IoPagetable, newAlign: bigint): number {
  const mask = newAlign - 1n;
  for (const a of iopt.areas.range(0n, ULONG_MAX)) {
    const len = a.last - a.start + 1n;
    const pageOffset = (a.pageOffset as bigint | undefined) ?? 0n;
    if (a.start & mask || len & mask || pageOffset & mask) return -EADDRINUSE;
  }
  return 0;
}

/** Hooks of the DMA-mapping model: mirror every area into a new domain, or remove them. */
export interface DomainFillHooks {
  fill(iopt: IoPagetable, domain: IommuDomain): KGen<number>;
  unfill(iopt: IoPagetable, domain: IommuDomain): void;
}
let fillHooks: DomainFillHooks | null = null;
export function setDomainFillHooks(h: DomainFillHooks): void {
  fillHooks = h;
}

/** iopt_table_add_domain */
export function* ioptTableAddDomain(iopt: IoPagetable, domain: IommuDomain): KGen<number> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  let rc = 0;
  out: {
    if (iopt.domains.includes(domain)) {
      rc = -EEXIST;
      break out;
    }
    const pg = lowestPgsize(domain.pgsizeBitmap);
    const newAlign = pg > iopt.iovaAlignment ? pg : iopt.iovaAlignment;
    if (newAlign > BigInt(PAGE_SIZE)) {
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
    if (fillHooks) {
      rc = yield* fillHooks.fill(iopt, domain);
      if (rc) {
        removeReservedLocked(iopt, domain);
        break out;
      }
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
  let a = iopt.disableLargePages ? BigInt(PAGE_SIZE) : 1n;
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

/** iopt_table_remove_domain */
export function* ioptTableRemoveDomain(iopt: IoPagetable, domain: IommuDomain, warn: (m: string) => void): KGen<void> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  const i = iopt.domains.indexOf(domain);
  if (i < 0) warn('iopt_table_remove_domain: unknown domain');
  else {
    iopt.domains.splice(i, 1);
    fillHooks?.unfill(iopt, domain);
    removeReservedLocked(iopt, domain);
    if (ioptCalculateIovaAlignment(iopt)) warn('iopt_calculate_iova_alignment failed');
  }
  yield* upWrite(iopt.iovaRwsem);
  yield* upWrite(iopt.domainsRwsem);
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

/** The holes of the reserved set over [0, 2^64-1] (what IOAS_IOVA_RANGES reports). */
export function ioptReservedHoles(iopt: IoPagetable): Span[] {
  const out: Span[] = [];
  let next = 0n;
  const sorted = [...iopt.reserved].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (const r of sorted) {
    if (r.start > next) out.push({ start: next, last: r.start - 1n });
    if (r.last >= next) {
      if (r.last === ULONG_MAX) return out;
      next = r.last + 1n;
    }
  }
  out.push({ start: next, last: ULONG_MAX });
  return out;
}

/** iopt_disable_large_pages: not once domains already have areas mapped in them. */
export function* ioptDisableLargePages(iopt: IoPagetable): KGen<number> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  let rc = 0;
  if (!iopt.disableLargePages) {
    if (iopt.domains.length > 0 && iopt.areas.size() > 0) rc = -EINVAL;
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
export function* ioptEnableLargePages(iopt: IoPagetable): KGen<number> {
  yield* downWrite(iopt.domainsRwsem);
  yield* downWrite(iopt.iovaRwsem);
  iopt.disableLargePages = false;
  const rc = ioptCalculateIovaAlignment(iopt);
  yield* upWrite(iopt.iovaRwsem);
  yield* upWrite(iopt.domainsRwsem);
  return rc;
}
