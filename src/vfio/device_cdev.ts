// drivers/vfio/device_cdev.c: /dev/vfio/devices/vfioX. A new file is blocked; BIND_IOMMUFD opens
// the device and grants access (store-release); the file is unbound only by its release.

import { EFAULT, EINVAL, EOPNOTSUPP } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { kfn } from '../kernel/override.js';
import { KGen } from '../kernel/sched.js';
import { atomicLoad, mutexLock, mutexUnlock, smpStoreRelease } from '../kernel/sync.js';
import { copyFromUser, copyStructFromUser, copyToUser, getUserU32 } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import { iommufdCtxFromFd, iommufdCtxPut } from '../iommufd/iommufd.js';
import { vfioDeviceBlockGroup, vfioDeviceUnblockGroup } from './group.js';
import { VfioDevice, VfioDeviceFile } from './vfio.js';
import { vfioDfClose, vfioDfOpen } from './vfio_main.js';

/** vfio_df_check_token */
function* vfioDfCheckToken(device: VfioDevice, flags: number, tokenPtr: bigint): KGen<number> {
  if (!device.ops.matchTokenUuid) {
    if (flags & U.VFIO_DEVICE_BIND_FLAG_TOKEN) return -EINVAL;
    return 0;
  }
  if (!(flags & U.VFIO_DEVICE_BIND_FLAG_TOKEN)) return yield* device.ops.matchTokenUuid(device, null);
  const p = tokenPtr >= 0n && tokenPtr < 1n << 47n ? Number(tokenPtr) : -1;
  const uuid = copyFromUser(currentMm(), p, 16);
  if (typeof uuid === 'number') return -EFAULT;
  return yield* device.ops.matchTokenUuid(device, uuid);
}

/** VFIO_DEVICE_BIND_IOMMUFD (vfio_df_ioctl_bind_iommufd), checks in the kernel's order. */
export const vfioDfIoctlBindIommufd = kfn(
  'vfio_df_ioctl_bind_iommufd',
  function* (df: VfioDeviceFile, arg: number): KGen<number> {
    const device = df.device;
    const S = U.vfio_device_bind_iommufd;
    const minsz = offsetofend(S, 'out_devid');
    const mm = currentMm();
    const us = getUserU32(mm, arg);
    if (!us.ok) return us.err;
    const userSize = us.v;
    if (userSize < minsz) return -EINVAL;
    const b = copyStructFromUser(mm, S.size, arg, userSize);
    if (typeof b === 'number') return b;
    const bind = new StructBuf(S, b);
    const iommufdFd = bind.get('iommufd') | 0;
    const flags = bind.get('flags');
    if (iommufdFd < 0 || flags & ~U.VFIO_DEVICE_BIND_FLAG_TOKEN) return -EINVAL;
    // BIND_IOMMUFD only allowed for cdev fds
    if (df.group) return -EINVAL;
    let ret = yield* vfioDeviceBlockGroup(device);
    if (ret) return ret;
    yield* mutexLock(device.devSet!.lock);
    fail: {
      // one device file cannot be bound twice
      if (yield* atomicLoad(df.accessGranted, 'plain')) {
        ret = -EINVAL;
        break fail;
      }
      ret = yield* vfioDfCheckToken(device, flags, bind.big('token_uuid_ptr'));
      if (ret) break fail;
      const ictx = yield* iommufdCtxFromFd(iommufdFd);
      if (typeof ictx === 'number') {
        ret = ictx;
        break fail;
      }
      df.iommufd = ictx;
      // vfio_df_get_kvm_safe: the KVM pointer of the device file, sampled before the open
      if (df.kvm) device.kvm = df.kvm;
      ret = yield* vfioDfOpen(df);
      if (ret) {
        device.kvm = null;
        yield* iommufdCtxPut(df.iommufd);
        df.iommufd = null;
        break fail;
      }
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, df.devid, true);
      if (copyToUser(mm, arg + S.byName.out_devid.offset, out) < 0) {
        ret = -EFAULT;
        yield* vfioDfClose(df);
        device.kvm = null;
        yield* iommufdCtxPut(df.iommufd);
        df.iommufd = null;
        break fail;
      }
      device.cdevOpened = true;
      // paired with smp_load_acquire() in the device fops ioctl/read/write/mmap
      yield* smpStoreRelease(df.accessGranted, true);
      device.kernel.event('access_granted', { device: device.dev.name, via: 'bind', devid: df.devid, file: df.file?.id });
      yield* mutexUnlock(device.devSet!.lock);
      return 0;
    }
    yield* mutexUnlock(device.devSet!.lock);
    yield* vfioDeviceUnblockGroup(device);
    return ret;
  },
);

/** vfio_df_unbind_iommufd: the release of a cdev file. Never bound: nothing to undo. */
export const vfioDfUnbindIommufd = kfn('vfio_df_unbind_iommufd', function* (df: VfioDeviceFile): KGen<void> {
  const device = df.device;
  // no concurrent writer at release: a plain read is enough
  if (!df.accessGranted.value) return;
  yield* mutexLock(device.devSet!.lock);
  yield* vfioDfClose(df);
  device.kvm = null;
  yield* iommufdCtxPut(df.iommufd!);
  device.cdevOpened = false;
  yield* mutexUnlock(device.devSet!.lock);
  yield* vfioDeviceUnblockGroup(device);
});

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT */
export const vfioDfIoctlAttachPt = kfn(
  'vfio_df_ioctl_attach_pt',
  function* (df: VfioDeviceFile, arg: number): KGen<number> {
    const device = df.device;
    const S = U.vfio_device_attach_iommufd_pt;
    const minsz = offsetofend(S, 'pt_id');
    const mm = currentMm();
    const b = copyFromUser(mm, arg, minsz);
    if (typeof b === 'number') return -EFAULT;
    const full = new Uint8Array(S.size);
    full.set(b);
    const attach = new StructBuf(S, full);
    if (attach.get('argsz') < minsz) return -EINVAL;
    const flags = attach.get('flags');
    if (flags & ~U.VFIO_DEVICE_ATTACH_PASID) return -EINVAL;
    let xend = 0;
    if (flags & U.VFIO_DEVICE_ATTACH_PASID) {
      if (!device.ops.pasidAttachIoas) return -EOPNOTSUPP;
      xend = offsetofend(S, 'pasid');
    }
    if (xend) {
      if (attach.get('argsz') < xend) return -EINVAL;
      const x = copyFromUser(mm, arg + minsz, xend - minsz);
      if (typeof x === 'number') return -EFAULT;
      full.set(x, minsz);
    }
    yield* mutexLock(device.devSet!.lock);
    const ptId = { v: attach.get('pt_id') };
    let ret =
      flags & U.VFIO_DEVICE_ATTACH_PASID
        ? yield* device.ops.pasidAttachIoas!(device, attach.get('pasid'), ptId)
        : yield* device.ops.attachIoas!(device, ptId);
    if (!ret) {
      const out = new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, ptId.v, true);
      if (copyToUser(mm, arg + S.byName.pt_id.offset, out) < 0) {
        ret = -EFAULT;
        yield* device.ops.detachIoas!(device);
      } else device.kernel.event('iommufd_attach', { device: device.dev.name, pt_id: ptId.v });
    }
    yield* mutexUnlock(device.devSet!.lock);
    return ret;
  },
);

/** VFIO_DEVICE_DETACH_IOMMUFD_PT */
export const vfioDfIoctlDetachPt = kfn(
  'vfio_df_ioctl_detach_pt',
  function* (df: VfioDeviceFile, arg: number): KGen<number> {
    const device = df.device;
    const S = U.vfio_device_detach_iommufd_pt;
    const minsz = offsetofend(S, 'flags');
    const mm = currentMm();
    const b = copyFromUser(mm, arg, minsz);
    if (typeof b === 'number') return -EFAULT;
    const full = new Uint8Array(S.size);
    full.set(b);
    const detach = new StructBuf(S, full);
    if (detach.get('argsz') < minsz) return -EINVAL;
    const flags = detach.get('flags');
    if (flags & ~U.VFIO_DEVICE_DETACH_PASID) return -EINVAL;
    let xend = 0;
    if (flags & U.VFIO_DEVICE_DETACH_PASID) {
      if (!device.ops.pasidDetachIoas) return -EOPNOTSUPP;
      xend = offsetofend(S, 'pasid');
    }
    if (xend) {
      if (detach.get('argsz') < xend) return -EINVAL;
      const x = copyFromUser(mm, arg + minsz, xend - minsz);
      if (typeof x === 'number') return -EFAULT;
      full.set(x, minsz);
    }
    yield* mutexLock(device.devSet!.lock);
    if (flags & U.VFIO_DEVICE_DETACH_PASID) yield* device.ops.pasidDetachIoas!(device, detach.get('pasid'));
    else yield* device.ops.detachIoas!(device);
    yield* mutexUnlock(device.devSet!.lock);
    device.kernel.event('iommufd_detach', { device: device.dev.name });
    return 0;
  },
);
