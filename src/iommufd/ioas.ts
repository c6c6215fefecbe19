// drivers/iommu/iommufd/ioas.c: the IOAS object and its ioctls.

import { EFAULT, EINVAL, EMSGSIZE, EOPNOTSUPP } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { Mutex, downRead, upRead } from '../kernel/sync.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { StructBuf } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import { IoPagetable, Span, ioptReservedHoles, ioptSetAllowIova } from './io_pagetable.js';
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
  /** iommufd_ioas_destroy: unmap everything */
  *destroy(): KGen<void> {
    ioasDestroyHooks.forEach((h) => h(this));
  }
}

/** The DMA-mapping model unmaps an IOAS's areas when it is destroyed. */
const ioasDestroyHooks: Array<(ioas: IommufdIoas) => void> = [];
export function onIoasDestroy(h: (ioas: IommufdIoas) => void): void {
  ioasDestroyHooks.push(h);
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
