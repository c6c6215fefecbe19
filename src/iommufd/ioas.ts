// drivers/iommu/iommufd/ioas.c: the IOAS object and its ioctls (alloc, IOVA ranges, allowed
// ranges, map, map of a file, copy, unmap, and the per-IOAS HUGE_PAGES option).

import { EFAULT, EINVAL, EMSGSIZE, ENOENT, EOPNOTSUPP, EOVERFLOW } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { Mutex, downRead, upRead } from '../kernel/sync.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { StructBuf } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import { IOMMU_CACHE, IOMMU_READ, IOMMU_WRITE } from '../iommu/iommu.js';
import {
  IOPT_ALLOC_IOVA, IoPagetable, PagesElm, Span, ULONG_MAX, ioptDestroyTable, ioptDisableLargePages, ioptEnableLargePages,
  ioptFreePagesList, ioptGetPages, ioptMapFilePages, ioptMapPages, ioptMapUserPages, ioptReservedHoles, ioptSetAllowIova,
  ioptUnmapAll, ioptUnmapIova,
} from './io_pagetable.js';
import {
  IommufdCtx, IommufdObject, iommufdGetObject, iommufdObjectAbortAndDestroy, iommufdObjectAlloc, iommufdObjectFinalize,
  iommufdPutObject,
} from './object.js';
import type { IommufdHwptPaging } from './hw_pagetable.js';
import type { Ucmd } from './main.js';

/** struct iommufd_ioas */
export class IommufdIoas extends IommufdObject {
  readonly type = 'IOAS' as const;
  readonly iopt: IoPagetable;
  readonly mutex: Mutex;
  readonly hwptList: IommufdHwptPaging[] = [];
  constructor(ictx: IommufdCtx) {
    super(ictx, 'ioas');
    this.iopt = new IoPagetable(this.label);
    this.mutex = new Mutex(`${this.label}->mutex`);
  }
  /** iommufd_ioas_destroy: unmap everything (unpin, unaccount), then the table goes */
  *destroy(): KGen<void> {
    const rc = yield* ioptUnmapAll(this.iopt, null);
    if (rc && rc !== -ENOENT) this.ictx.kernel.warn(`iommufd_ioas_destroy: unmap all: ${rc}`);
    ioptDestroyTable(this.iopt);
  }
}

/** iommufd_ioas_alloc: a new IOAS with a reserved (not yet published) ID. */
export function iommufdIoasAlloc(ictx: IommufdCtx): IommufdIoas | number {
  return iommufdObjectAlloc(ictx, new IommufdIoas(ictx));
}

/** iommufd_get_ioas */
export function* iommufdGetIoas(ictx: IommufdCtx, id: number): KGen<IommufdIoas | number> {
  return (yield* iommufdGetObject(ictx, id, 'IOAS')) as IommufdIoas | number;
}

/** IOMMU_IOAS_ALLOC (iommufd_ioas_alloc_ioctl) */
export function* iommufdIoasAllocIoctl(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'flags' | 'out_ioas_id'>;
  if (cmd.get('flags')) return -EOPNOTSUPP;
  const ioas = iommufdIoasAlloc(ucmd.ictx);
  if (typeof ioas === 'number') return ioas;
  cmd.set('out_ioas_id', ioas.id);
  const rc = ucmd.respond(I.iommu_ioas_alloc.size);
  if (rc) {
    yield* iommufdObjectAbortAndDestroy(ucmd.ictx, ioas);
    return rc;
  }
  yield* iommufdObjectFinalize(ucmd.ictx, ioas);
  ucmd.ictx.kernel.event('iommufd_ioas_alloc', { ctx: ucmd.ictx.num, id: ioas.id });
  return 0;
}

/** IOMMU_IOAS_IOVA_RANGES */
export function* iommufdIoasIovaRanges(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<I_IovaRanges>;
  if (cmd.get('__reserved')) return -EOPNOTSUPP;
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const mm = currentMm();
  const maxIovas = cmd.get('num_iovas');
  const ranges = cmd.big('allowed_iovas');
  const base = ranges >= 0n && ranges < 1n << 47n ? Number(ranges) : -1;
  let rc = 0;
  yield* downRead(ioas.iopt.iovaRwsem);
  const holes = ioptReservedHoles(ioas.iopt);
  let i = 0;
  for (const h of holes) {
    if (i < maxIovas) {
      const b = new StructBuf(I.iommu_iova_range);
      b.set('start', h.start).set('last', h.last);
      if (copyToUser(mm, base + i * I.iommu_iova_range.size, b.buf) < 0) {
        rc = -EFAULT;
        break;
      }
    }
    i++;
  }
  if (!rc) {
    cmd.set('num_iovas', i);
    cmd.set('out_iova_alignment', ioas.iopt.iovaAlignment);
    rc = ucmd.respond(I.iommu_ioas_iova_ranges.size);
    if (!rc && i > maxIovas) rc = -EMSGSIZE;
  }
  yield* upRead(ioas.iopt.iovaRwsem);
  yield* iommufdPutObject(ucmd.ictx, ioas);
  return rc;
}
type I_IovaRanges = 'size' | 'ioas_id' | 'num_iovas' | '__reserved' | 'allowed_iovas' | 'out_iova_alignment';

/** IOMMU_IOAS_ALLOW_IOVAS */
export function* iommufdIoasAllowIovas(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'ioas_id' | 'num_iovas' | '__reserved' | 'allowed_iovas'>;
  if (cmd.get('__reserved')) return -EOPNOTSUPP;
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const mm = currentMm();
  const n = cmd.get('num_iovas');
  const ptr = cmd.big('allowed_iovas');
  const base = ptr >= 0n && ptr < 1n << 47n ? Number(ptr) : -1;
  const spans: Span[] = [];
  let rc = 0;
  for (let i = 0; i < n; i++) {
    const b = copyFromUser(mm, base + i * I.iommu_iova_range.size, I.iommu_iova_range.size);
    if (typeof b === 'number') {
      rc = -EFAULT;
      break;
    }
    const r = new StructBuf(I.iommu_iova_range, b);
    const s: Span = { start: r.big('start'), last: r.big('last') };
    if (s.start >= s.last) {
      rc = -EINVAL;
      break;
    }
    if (spans.some((o) => o.start <= s.last && o.last >= s.start)) {
      rc = -EINVAL;
      break;
    }
    spans.push(s);
  }
  if (!rc) rc = yield* ioptSetAllowIova(ioas.iopt, spans);
  yield* iommufdPutObject(ucmd.ictx, ioas);
  return rc;
}

/** conv_iommu_prot: IOMMU_CACHE always (cache coherency is required at bind) */
function convIommuProt(flags: number): number {
  let prot = IOMMU_CACHE;
  if (flags & I.IOMMU_IOAS_MAP_WRITEABLE) prot |= IOMMU_WRITE;
  if (flags & I.IOMMU_IOAS_MAP_READABLE) prot |= IOMMU_READ;
  return prot;
}

/** trace event of a new mapping */
function mapEvent(ucmd: Ucmd, ioas: IommufdIoas, iova: bigint, length: bigint): void {
  const k = ucmd.ictx.kernel;
  if (k.trace.active) k.event('iommufd_ioas_map', { ctx: ucmd.ictx.num, ioas: ioas.id, iova: '0x' + iova.toString(16), length: '0x' + length.toString(16) });
}

const MAP_FLAGS = I.IOMMU_IOAS_MAP_FIXED_IOVA | I.IOMMU_IOAS_MAP_WRITEABLE | I.IOMMU_IOAS_MAP_READABLE;
const RW = I.IOMMU_IOAS_MAP_WRITEABLE | I.IOMMU_IOAS_MAP_READABLE;

/** IOMMU_IOAS_MAP (iommufd_ioas_map) */
export function* iommufdIoasMap(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'flags' | 'ioas_id' | '__reserved' | 'user_va' | 'length' | 'iova'>;
  const flags = cmd.get('flags');
  if (flags & ~MAP_FLAGS || cmd.get('__reserved')) return -EOPNOTSUPP;
  if (cmd.big('iova') >= ULONG_MAX || cmd.big('length') >= ULONG_MAX) return -EOVERFLOW;
  if (!(flags & RW)) return -EINVAL;
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const iova = { v: cmd.big('iova') };
  const aflags = flags & I.IOMMU_IOAS_MAP_FIXED_IOVA ? 0 : IOPT_ALLOC_IOVA;
  let rc = yield* ioptMapUserPages(ucmd.ictx.accountMode, ioas.iopt, iova, cmd.big('user_va'), cmd.big('length'), convIommuProt(flags), aflags);
  if (!rc) {
    cmd.set('iova', iova.v);
    rc = ucmd.respond(I.iommu_ioas_map.size);
    mapEvent(ucmd, ioas, iova.v, cmd.big('length'));
  }
  yield* iommufdPutObject(ucmd.ictx, ioas);
  return rc;
}

/** IOMMU_IOAS_MAP_FILE (iommufd_ioas_map_file) */
export function* iommufdIoasMapFile(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'flags' | 'ioas_id' | 'fd' | 'start' | 'length' | 'iova'>;
  const flags = cmd.get('flags');
  if (flags & ~MAP_FLAGS) return -EOPNOTSUPP;
  if (cmd.big('iova') >= ULONG_MAX || cmd.big('length') >= ULONG_MAX) return -EOVERFLOW;
  if (!(flags & RW)) return -EINVAL;
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const iova = { v: cmd.big('iova') };
  const aflags = flags & I.IOMMU_IOAS_MAP_FIXED_IOVA ? 0 : IOPT_ALLOC_IOVA;
  let rc = yield* ioptMapFilePages(
    ucmd.ictx.accountMode, ioas.iopt, iova, cmd.get('fd'), cmd.big('start'), cmd.big('length'), convIommuProt(flags), aflags,
  );
  if (!rc) {
    cmd.set('iova', iova.v);
    rc = ucmd.respond(I.iommu_ioas_map_file.size);
    mapEvent(ucmd, ioas, iova.v, cmd.big('length'));
  }
  yield* iommufdPutObject(ucmd.ictx, ioas);
  return rc;
}

/** MOCK_FLAGS_ACCESS_SYZ (drivers/iommu/iommufd/iommufd_test.h) */
const MOCK_FLAGS_ACCESS_SYZ = 1 << 16;

/**
 * iommufd_test_syz_conv_iova_id (CONFIG_IOMMUFD_TEST): with the syzkaller flag, src_iova is
 * {u32 nth area, u32 offset} and becomes that area's IOVA + offset (0 without such an area).
 */
function* syzConvIovaId(ucmd: Ucmd, cmd: StructBuf<string>): KGen<void> {
  const flags = cmd.get('flags');
  if (!(flags & MOCK_FLAGS_ACCESS_SYZ)) return;
  cmd.set('flags', flags & ~MOCK_FLAGS_ACCESS_SYZ);
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('src_ioas_id'));
  if (typeof ioas === 'number') return;
  const v = cmd.big('src_iova');
  let nth = Number(v & 0xffffffffn);
  const offset = v >> 32n;
  let out = 0n;
  yield* downRead(ioas.iopt.iovaRwsem);
  for (const area of ioas.iopt.areas.all()) {
    if (nth === 0) {
      out = area.start + offset;
      break;
    }
    nth--;
  }
  yield* upRead(ioas.iopt.iovaRwsem);
  cmd.set('src_iova', out);
  yield* iommufdPutObject(ucmd.ictx, ioas);
}

/** IOMMU_IOAS_COPY (iommufd_ioas_copy): the source's pages, shared, mapped into the destination. */
export function* iommufdIoasCopy(ucmd: Ucmd): KGen<number> {
  type F = 'size' | 'flags' | 'dst_ioas_id' | 'src_ioas_id' | 'length' | 'dst_iova' | 'src_iova';
  const cmd = ucmd.cmd as StructBuf<F>;
  yield* syzConvIovaId(ucmd, cmd as StructBuf<string>);
  const flags = cmd.get('flags');
  if (flags & ~MAP_FLAGS) return -EOPNOTSUPP;
  if (cmd.big('length') >= ULONG_MAX || cmd.big('src_iova') >= ULONG_MAX || cmd.big('dst_iova') >= ULONG_MAX) return -EOVERFLOW;
  if (!(flags & RW)) return -EINVAL;
  const src = yield* iommufdGetIoas(ucmd.ictx, cmd.get('src_ioas_id'));
  if (typeof src === 'number') return src;
  const list: PagesElm[] = [];
  let rc = yield* ioptGetPages(src.iopt, cmd.big('src_iova'), cmd.big('length'), list);
  yield* iommufdPutObject(ucmd.ictx, src);
  if (rc) return rc;
  const dst = yield* iommufdGetIoas(ucmd.ictx, cmd.get('dst_ioas_id'));
  if (typeof dst === 'number') {
    yield* ioptFreePagesList(list);
    return dst;
  }
  const iova = { v: cmd.big('dst_iova') };
  const aflags = flags & I.IOMMU_IOAS_MAP_FIXED_IOVA ? 0 : IOPT_ALLOC_IOVA;
  rc = yield* ioptMapPages(dst.iopt, list, cmd.big('length'), iova, convIommuProt(flags), aflags);
  if (!rc) {
    cmd.set('dst_iova', iova.v);
    rc = ucmd.respond(I.iommu_ioas_copy.size);
  }
  yield* iommufdPutObject(ucmd.ictx, dst);
  yield* ioptFreePagesList(list);
  return rc;
}

/** IOMMU_IOAS_UNMAP (iommufd_ioas_unmap): iova 0 + length U64_MAX is "everything". */
export function* iommufdIoasUnmap(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'ioas_id' | 'iova' | 'length'>;
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('ioas_id'));
  if (typeof ioas === 'number') return ioas;
  const unmapped = { v: 0n };
  let rc: number;
  out: {
    const iova = cmd.big('iova');
    const length = cmd.big('length');
    if (iova === 0n && length === ULONG_MAX) {
      rc = yield* ioptUnmapAll(ioas.iopt, unmapped);
      if (rc) break out;
    } else {
      if (iova >= ULONG_MAX || length >= ULONG_MAX) {
        rc = -EOVERFLOW;
        break out;
      }
      rc = yield* ioptUnmapIova(ioas.iopt, iova, length, unmapped);
      if (rc) break out;
      if (!unmapped.v) {
        rc = -ENOENT;
        break out;
      }
    }
    cmd.set('length', unmapped.v);
    rc = ucmd.respond(I.iommu_ioas_unmap.size);
  }
  yield* iommufdPutObject(ucmd.ictx, ioas);
  return rc;
}

/** iommufd_ioas_option_huge_pages */
function* ioasOptionHugePages(cmd: StructBuf<string>, ioas: IommufdIoas): KGen<number> {
  if (cmd.get('op') === I.IOMMU_OPTION_OP_GET) {
    cmd.set('val64', ioas.iopt.disableLargePages ? 0 : 1);
    return 0;
  }
  if (cmd.get('op') === I.IOMMU_OPTION_OP_SET) {
    const v = cmd.big('val64');
    if (v === 0n) return yield* ioptDisableLargePages(ioas.iopt);
    if (v === 1n) {
      yield* ioptEnableLargePages(ioas.iopt);
      return 0;
    }
    return -EINVAL;
  }
  return -EOPNOTSUPP;
}

/** iommufd_ioas_option: options whose object is an IOAS (HUGE_PAGES) */
export function* iommufdIoasOption(ucmd: Ucmd): KGen<number> {
  const cmd = ucmd.cmd as StructBuf<'size' | 'option_id' | 'op' | '__reserved' | 'object_id' | 'val64'>;
  if (cmd.get('__reserved')) return -EOPNOTSUPP;
  const ioas = yield* iommufdGetIoas(ucmd.ictx, cmd.get('object_id'));
  if (typeof ioas === 'number') return ioas;
  let rc: number;
  switch (cmd.get('option_id')) {
    case I.IOMMU_OPTION_HUGE_PAGES:
      rc = yield* ioasOptionHugePages(cmd as StructBuf<string>, ioas);
      break;
    default:
      rc = -EOPNOTSUPP;
  }
  yield* iommufdPutObject(ucmd.ictx, ioas);
  return rc;
}
