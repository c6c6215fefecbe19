// drivers/iommu/iommufd/main.c: /dev/iommu — the context's file operations, the ioctl dispatcher
// with its size rules, IOMMU_DESTROY and IOMMU_OPTION, and iommufd_ctx_from_file/fd.

import { EBADF, EBADFD, EBUSY, EFAULT, EINVAL, ENOIOCTLCMD, ENXIO, EOPNOTSUPP, EPERM } from '../kernel/errno.js';
import { capable, currentMm, currentProcess } from '../kernel/current.js';
import { miscRegister } from '../kernel/device.js';
import { File, FileOperations, Inode, VmArea, fput, getFile } from '../kernel/fs/file.js';
import { Kernel } from '../kernel/kernel.js';
import { KGen, current } from '../kernel/sched.js';
import { copyStructFromUser, copyToUser, getUserU32, uptr, PAGE_SIZE } from '../kernel/uaccess.js';
import { StructBuf, StructDef, offsetofend } from '../uapi/layout.js';
import * as I from '../uapi/iommufd.js';
import { iommufdHwptAlloc } from './hw_pagetable.js';
import {
  iommufdIoasAllocIoctl, iommufdIoasAllowIovas, iommufdIoasCopy, iommufdIoasIovaRanges, iommufdIoasMap, iommufdIoasMapFile,
  iommufdIoasOption, iommufdIoasUnmap,
} from './ioas.js';
import { iommufdGetHwInfo } from './device.js';
import { IOPT_PAGES_ACCOUNT_MM, IOPT_PAGES_ACCOUNT_USER } from './pages.js';
import { IommufdCtx, iommufdDestroyAll, iommufdObjectRemove } from './object.js';
import { iommufdVfioIoas, iommufdVfioIoctl } from './vfio_compat.js';

/** struct iommufd_ucmd */
export class Ucmd {
  constructor(
    readonly ictx: IommufdCtx,
    readonly ubuffer: number,
    readonly userSize: number,
    readonly cmd: StructBuf<string>,
  ) {}
  /** iommufd_ucmd_respond: copy back min(user size, len) bytes */
  respond(len: number): number {
    const n = Math.min(this.userSize, len);
    return copyToUser(currentMm(), this.ubuffer, this.cmd.buf.subarray(0, n)) < 0 ? -EFAULT : 0;
  }
}

interface IoctlOp {
  struct: StructDef<string>;
  minSize: number;
  num: number;
  execute: (u: Ucmd) => KGen<number>;
}

/** Ioctls this model does not implement (vIOMMU, fault queues, dirty tracking, ...): EOPNOTSUPP. */
function* notModelled(u: Ucmd): KGen<number> {
  u.ictx.kernel.warn(`iommufd ioctl nr ${u.cmd.def.name} is not modelled; answering EOPNOTSUPP`);
  return -EOPNOTSUPP;
}

function op(num: number, struct: StructDef<string>, last: string, execute?: (u: Ucmd) => KGen<number>): IoctlOp {
  return {
    struct,
    minSize: offsetofend(struct, last),
    num,
    execute: execute ?? notModelled,
  };
}

const iommuTestCmd = { name: 'iommu_test_cmd', size: 72, align: 8, fields: [], byName: {} } as unknown as StructDef<string>;

/** The ioctl table, indexed by nr - IOMMUFD_CMD_BASE (ends at IOMMU_TEST_CMD with CONFIG_IOMMUFD_TEST). */
function ioctlTable(): Map<number, IoctlOp> {
  const t = new Map<number, IoctlOp>();
  const add = (o: IoctlOp) => t.set(o.num & 0xff, o);
  add(op(I.IOMMU_DESTROY, I.iommu_destroy, 'id', iommufdDestroy));
  add(op(I.IOMMU_FAULT_QUEUE_ALLOC, I.iommu_fault_alloc, 'out_fault_fd'));
  add(op(I.IOMMU_GET_HW_INFO, I.iommu_hw_info, '__reserved', iommufdGetHwInfo));
  add(op(I.IOMMU_HW_QUEUE_ALLOC, I.iommu_hw_queue_alloc, 'length'));
  add(op(I.IOMMU_HWPT_ALLOC, I.iommu_hwpt_alloc, '__reserved', iommufdHwptAlloc));
  add(op(I.IOMMU_HWPT_GET_DIRTY_BITMAP, I.iommu_hwpt_get_dirty_bitmap, 'data'));
  add(op(I.IOMMU_HWPT_INVALIDATE, I.iommu_hwpt_invalidate, '__reserved'));
  add(op(I.IOMMU_HWPT_SET_DIRTY_TRACKING, I.iommu_hwpt_set_dirty_tracking, '__reserved'));
  add(op(I.IOMMU_IOAS_ALLOC, I.iommu_ioas_alloc, 'out_ioas_id', iommufdIoasAllocIoctl));
  add(op(I.IOMMU_IOAS_ALLOW_IOVAS, I.iommu_ioas_allow_iovas, 'allowed_iovas', iommufdIoasAllowIovas));
  add(op(I.IOMMU_IOAS_CHANGE_PROCESS, I.iommu_ioas_change_process, '__reserved'));
  add(op(I.IOMMU_IOAS_COPY, I.iommu_ioas_copy, 'src_iova', iommufdIoasCopy));
  add(op(I.IOMMU_IOAS_IOVA_RANGES, I.iommu_ioas_iova_ranges, 'out_iova_alignment', iommufdIoasIovaRanges));
  add(op(I.IOMMU_IOAS_MAP, I.iommu_ioas_map, 'iova', iommufdIoasMap));
  add(op(I.IOMMU_IOAS_MAP_FILE, I.iommu_ioas_map_file, 'iova', iommufdIoasMapFile));
  add(op(I.IOMMU_IOAS_UNMAP, I.iommu_ioas_unmap, 'length', iommufdIoasUnmap));
  add(op(I.IOMMU_OPTION, I.iommu_option, 'val64', iommufdOption));
  add(op(I.IOMMU_VDEVICE_ALLOC, I.iommu_vdevice_alloc, 'virt_id'));
  add(op(I.IOMMU_VEVENTQ_ALLOC, I.iommu_veventq_alloc, 'out_veventq_fd'));
  add(op(I.IOMMU_VFIO_IOAS, I.iommu_vfio_ioas, '__reserved', iommufdVfioIoas));
  add(op(I.IOMMU_VIOMMU_ALLOC, I.iommu_viommu_alloc, 'out_viommu_id'));
  t.set(I.IOMMU_TEST_CMD & 0xff, {
    struct: iommuTestCmd,
    minSize: 68,
    num: I.IOMMU_TEST_CMD,
    execute: notModelled,
  });
  return t;
}

let table: Map<number, IoctlOp> | null = null;
/** The last nr of the table: 0x94, or 0xa0 with CONFIG_IOMMUFD_TEST (the oracle's config). */
const TABLE_END = I.IOMMU_TEST_CMD & 0xff;

/** iommufd_fops_ioctl */
function* iommufdFopsIoctl(file: File, cmd: number, arg: bigint): KGen<number> {
  const ictx = file.privateData as IommufdCtx;
  table ??= ioctlTable();
  const nr = cmd & 0xff;
  if (nr < I.IOMMUFD_CMD_BASE || nr > TABLE_END) return yield* iommufdVfioIoctl(ictx, cmd, arg);
  const p = uptr(arg);
  const mm = currentMm();
  const us = getUserU32(mm, p);
  if (!us.ok) return us.err;
  const o = table.get(nr);
  if (!o || o.num !== cmd) return -ENOIOCTLCMD;
  if (us.v < o.minSize) return -EINVAL;
  const b = copyStructFromUser(mm, o.struct.size, p, us.v);
  if (typeof b === 'number') return b;
  const u = new Ucmd(ictx, p, us.v, new StructBuf(o.struct, b));
  return yield* o.execute(u);
}

/** IOMMU_DESTROY: remove without a caller reference; EBUSY for objects in use. */
function* iommufdDestroy(u: Ucmd): KGen<number> {
  const cmd = u.cmd as StructBuf<'size' | 'id'>;
  return yield* iommufdObjectRemove(u.ictx, null, cmd.get('id'), 0);
}

/** IOMMU_OPTION */
function* iommufdOption(u: Ucmd): KGen<number> {
  const cmd = u.cmd as StructBuf<'size' | 'option_id' | 'op' | '__reserved' | 'object_id' | 'val64'>;
  if (cmd.get('__reserved')) return -EOPNOTSUPP;
  let rc: number;
  switch (cmd.get('option_id')) {
    case I.IOMMU_OPTION_RLIMIT_MODE:
      rc = iommufdOptionRlimitMode(cmd, u.ictx);
      break;
    case I.IOMMU_OPTION_HUGE_PAGES:
      rc = yield* iommufdIoasOption(u);
      break;
    default:
      return -EOPNOTSUPP;
  }
  if (rc) return rc;
  const off = I.iommu_option.byName.val64.offset;
  if (copyToUser(currentMm(), u.ubuffer + off, cmd.bytes('val64')) < 0) return -EFAULT;
  return 0;
}

/**
 * iommufd_option_rlimit_mode: the context's account_mode is 0 until set (each mapping then keeps
 * its pages' own mode: USER, or NONE with CAP_IPC_LOCK); SET 0 makes it USER, SET 1 MM.
 */
function iommufdOptionRlimitMode(cmd: StructBuf<'size' | 'option_id' | 'op' | '__reserved' | 'object_id' | 'val64'>, ictx: IommufdCtx): number {
  if (cmd.get('object_id')) return -EOPNOTSUPP;
  if (cmd.get('op') === I.IOMMU_OPTION_OP_GET) {
    cmd.set('val64', ictx.accountMode === IOPT_PAGES_ACCOUNT_MM ? 1 : 0);
    return 0;
  }
  if (cmd.get('op') === I.IOMMU_OPTION_OP_SET) {
    if (!capable('CAP_SYS_RESOURCE')) return -EPERM;
    if (!ictx.isEmpty()) return -EBUSY;
    const v = cmd.big('val64');
    if (v === 0n) ictx.accountMode = IOPT_PAGES_ACCOUNT_USER;
    else if (v === 1n) ictx.accountMode = IOPT_PAGES_ACCOUNT_MM;
    else return -EINVAL;
    return 0;
  }
  return -EOPNOTSUPP;
}

/** iommufd_fops_open: a new context. */
function* iommufdFopsOpen(_inode: Inode, file: File): KGen<number> {
  const k = current().kernel as Kernel;
  const ictx = new IommufdCtx(k, file);
  file.privateData = ictx;
  k.event('iommufd_open', { ctx: ictx.num });
  return 0;
}

/** iommufd_fops_release: runs when the last reference to the file goes; destroys everything. */
function* iommufdFopsRelease(_inode: Inode, file: File): KGen<void> {
  const ictx = file.privateData as IommufdCtx;
  yield* iommufdDestroyAll(ictx);
  if (ictx.groups.size) ictx.kernel.warn(`iommufd_fops_release: ${ictx.label} groups left`);
  ictx.kernel.event('iommufd_release', { ctx: ictx.num });
}

/** iommufd_fops_mmap: only HW-queue windows, which this model never hands out. */
function* iommufdFopsMmap(_file: File, vma: VmArea): KGen<number> {
  if (vma.length % PAGE_SIZE) return -EINVAL;
  if (!vma.shared) return -EINVAL;
  if (vma.prot & 4) return -EPERM;
  return -ENXIO;
}

export const iommufdFops: FileOperations = {
  name: 'iommufd_fops',
  open: iommufdFopsOpen,
  release: iommufdFopsRelease,
  unlockedIoctl: iommufdFopsIoctl,
  mmap: iommufdFopsMmap,
};

/** iommufd_ctx_from_file: a context reference (a file reference), or -EBADFD. */
export function* iommufdCtxFromFile(file: File): KGen<IommufdCtx | number> {
  if (file.fOp !== iommufdFops) return -EBADFD;
  yield* getFile(file);
  return file.privateData as IommufdCtx;
}

/** iommufd_ctx_from_fd: EBADF for a closed fd, EBADFD for a non-iommufd file. */
export function* iommufdCtxFromFd(fd: number): KGen<IommufdCtx | number> {
  const f = currentProcess()?.fdt.get(fd);
  if (!f) return -EBADF;
  yield* getFile(f);
  if (f.fOp !== iommufdFops) {
    yield* fput(f);
    return -EBADFD;
  }
  return f.privateData as IommufdCtx;
}

/** iommufd_init: /dev/iommu, a misc device with a dynamic minor (0660). */
export function iommufdInit(k: Kernel, minor: number): void {
  miscRegister(k, { name: 'iommu', minor, fops: iommufdFops, nodename: 'iommu', mode: 0o660 });
}
