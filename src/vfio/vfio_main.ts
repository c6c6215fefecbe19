// drivers/vfio/vfio_main.c: device sets, registration and unregistration of vfio_devices, the
// registration refcount and completion, first open / last close across a device set, and the
// device file operations shared by group-derived and cdev device files.

import { EFAULT, EINVAL, ENODEV, ENOTTY } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { DeviceClass, KDevice, cdevDeviceAdd, cdevDeviceDel, deviceAdd, deviceDel } from '../kernel/device.js';
import { Cdev } from '../kernel/fs/chrdev.js';
import { File, FileOperations, Inode, Pos, VmArea } from '../kernel/fs/file.js';
import { Ida } from '../kernel/ida.js';
import { Kernel } from '../kernel/kernel.js';
import { kfn } from '../kernel/override.js';
import { KGen } from '../kernel/sched.js';
import {
  SpinLock, krefPut, lockdepAssertHeld, mutexLock, mutexUnlock, readOnce, refcountDecAndTest, refcountIncNotZero,
  smpLoadAcquire, spinLock, spinUnlock, tryWaitForCompletion, waitForCompletionTimeout, complete, writeOnce,
} from '../kernel/sync.js';
import { copyFromUser, copyToUser, uptr } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import { iommuState } from '../iommu/iommu.js';
import {
  VfioDevice, VfioDeviceFile, VfioDeviceOps, VfioDeviceSet, VfioGroupType, VfioParentDevice,
} from './vfio.js';
import {
  vfioDeviceGroupRegister, vfioDeviceGroupUnregister, vfioDeviceGroupUseIommu, vfioDeviceGroupUnuseIommu,
  vfioDeviceIsNoiommu, vfioDeviceRemoveGroup, vfioDeviceSetGroup, vfioDfGroupClose,
} from './group.js';
import { vfioDfIoctlAttachPt, vfioDfIoctlBindIommufd, vfioDfIoctlDetachPt, vfioDfUnbindIommufd } from './device_cdev.js';
import { vfioDfIommufdBind, vfioDfIommufdUnbind } from './iommufd.js';

export const MINORMASK = (1 << 20) - 1;

interface VfioState {
  deviceIda: Ida;
  setXa: Map<unknown, VfioDeviceSet>;
  setXaLock: SpinLock;
  /** major of the vfio-dev region (device cdevs) */
  deviceMajor: number;
  /** module parameter vfio.enable_unsafe_noiommu_mode */
  noiommu: boolean;
  nextInode: number;
  deviceClass: DeviceClass;
}

export function vfioState(k: Kernel): VfioState {
  return k.state<VfioState>('vfio', () => ({
    deviceIda: new Ida(0, MINORMASK),
    setXa: new Map(),
    setXaLock: new SpinLock('vfio_device_set_xa'),
    deviceMajor: -1,
    noiommu: false,
    nextInode: 5000,
    deviceClass: { name: 'vfio-dev', devnode: (d: KDevice) => ({ name: `vfio/devices/${d.name}`, mode: 0o600 }) },
  }));
}

/** vfio_cdev_init: the vfio-dev char region (the host may pin its major). */
export function vfioCdevInit(k: Kernel, pinnedMajor?: number): void {
  const st = vfioState(k);
  st.deviceMajor = k.chrdevs.allocRegion('vfio-dev', MINORMASK + 1, pinnedMajor);
}

// ---- device sets -------------------------------------------------------------------------------

/** vfio_assign_device_set: join (or create) the set keyed by set_id. */
export const vfioAssignDeviceSet = kfn(
  'vfio_assign_device_set',
  function* (device: VfioDevice, setId: unknown, label: string): KGen<number> {
    const st = vfioState(device.kernel);
    if (!setId) return -EINVAL;
    yield* spinLock(st.setXaLock);
    let devSet = st.setXa.get(setId);
    if (!devSet) {
      devSet = new VfioDeviceSet(setId, label);
      st.setXa.set(setId, devSet);
    }
    devSet.deviceCount++;
    yield* spinUnlock(st.setXaLock);
    yield* mutexLock(devSet.lock);
    device.devSet = devSet;
    devSet.deviceList.push(device);
    yield* mutexUnlock(devSet.lock);
    return 0;
  },
);

/** vfio_release_device_set: leave the set; the last member frees it. */
function* vfioReleaseDeviceSet(device: VfioDevice): KGen<void> {
  const devSet = device.devSet;
  if (!devSet) return;
  const st = vfioState(device.kernel);
  yield* mutexLock(devSet.lock);
  const i = devSet.deviceList.indexOf(device);
  if (i >= 0) devSet.deviceList.splice(i, 1);
  yield* mutexUnlock(devSet.lock);
  yield* spinLock(st.setXaLock);
  if (--devSet.deviceCount === 0) st.setXa.delete(devSet.setId);
  yield* spinUnlock(st.setXaLock);
}

/** vfio_device_set_open_count: sum over the set (dev_set lock held). */
export function vfioDeviceSetOpenCount(devSet: VfioDeviceSet): number {
  lockdepAssertHeld(devSet.lock);
  let n = 0;
  for (const d of devSet.deviceList) n += d.openCount;
  return n;
}

/** vfio_find_device_in_devset */
export function vfioFindDeviceInDevset(devSet: VfioDeviceSet, dev: VfioParentDevice): VfioDevice | null {
  lockdepAssertHeld(devSet.lock);
  return devSet.deviceList.find((d) => d.dev === dev) ?? null;
}

// ---- registration refcount ------------------------------------------------------------------------

/** vfio_device_put_registration: the last put completes device->comp. */
export const vfioDevicePutRegistration = kfn(
  'vfio_device_put_registration',
  function* (device: VfioDevice): KGen<void> {
    const last = yield* refcountDecAndTest(device.refcount);
    device.kernel.event('registration_put', { device: device.dev.name, refcount: device.refcount.value });
    if (last) yield* complete(device.comp);
  },
);

/** vfio_device_try_get_registration: increment unless zero. */
export const vfioDeviceTryGetRegistration = kfn(
  'vfio_device_try_get_registration',
  function* (device: VfioDevice): KGen<boolean> {
    const ok = yield* refcountIncNotZero(device.refcount);
    if (ok) device.kernel.event('registration_get', { device: device.dev.name, refcount: device.refcount.value });
    return ok;
  },
);

// ---- allocation, registration ----------------------------------------------------------------------

/** vfio_device_release: the memory goes (last kobject reference). */
function* vfioDeviceRelease(device: VfioDevice): KGen<void> {
  yield* vfioReleaseDeviceSet(device);
  vfioState(device.kernel).deviceIda.free(device.index);
  device.ops.release?.(device);
  device.released = true;
  device.kernel.event('vfio_device_release', { device: device.dev.name, index: device.index });
}

/** _vfio_alloc_device + vfio_init_device: index, inode, driver init, class device (not added). */
export function* vfioAllocDevice(
  k: Kernel,
  dev: VfioParentDevice,
  ops: VfioDeviceOps,
): KGen<VfioDevice | number> {
  const st = vfioState(k);
  const index = st.deviceIda.alloc();
  if (index < 0) return index;
  const device = new VfioDevice(k, dev, ops, st.nextInode++);
  device.index = index;
  if (ops.init) {
    const r = yield* ops.init(device);
    if (r) {
      st.deviceIda.free(index);
      return r;
    }
  }
  device.device = new KDevice(`vfio${index}`, { parent: dev.kdev, cls: st.deviceClass });
  return device;
}

/** vfio_put_device */
export function* vfioPutDevice(device: VfioDevice): KGen<void> {
  yield* krefPut(device.kref, () => vfioDeviceRelease(device));
}

/** The cdev of a vfio_device pins its memory while a file has it open (chrdev_open's cdev_get). */
function deviceCdev(device: VfioDevice): Cdev {
  const st = vfioState(device.kernel);
  return {
    devt: { major: st.deviceMajor, minor: device.index },
    count: 1,
    fops: vfioDeviceFops,
    owner: device,
    *get(): KGen<boolean> {
      // kobject_get_unless_zero: an open racing with the release finds nothing to pin
      return yield* refcountIncNotZero(device.kref);
    },
    *put(): KGen<void> {
      yield* vfioPutDevice(device);
    },
  };
}

/** vfio_device_add: noiommu devices get no cdev (sysfs entry without a dev attribute). */
function vfioDeviceAdd(device: VfioDevice): void {
  const k = device.kernel;
  if (vfioDeviceIsNoiommu(device)) {
    deviceAdd(k, device.device);
    return;
  }
  device.cdev = deviceCdev(device);
  device.device.devt = device.cdev.devt;
  cdevDeviceAdd(k, device.cdev, device.device);
}

/** vfio_device_del: the cdev node and the vfio-dev sysfs entry go. */
function vfioDeviceDel(device: VfioDevice): void {
  const k = device.kernel;
  if (device.cdev) cdevDeviceDel(k, device.cdev, device.device);
  else deviceDel(k, device.device);
  k.event('vfio_device_del', { device: device.dev.name, index: device.index, cdev: device.cdev !== null });
}

/** __vfio_register_dev */
export const vfioRegisterDev = kfn(
  '__vfio_register_dev',
  function* (device: VfioDevice, type: VfioGroupType): KGen<number> {
    const k = device.kernel;
    const o = device.ops;
    if (!o.bindIommufd || !o.unbindIommufd || !o.attachIoas || !o.detachIoas) {
      k.warn(`__vfio_register_dev: ${o.name} lacks iommufd ops`);
      return -EINVAL;
    }
    if (!device.devSet) {
      const r = yield* vfioAssignDeviceSet(device, device, device.dev.name);
      if (r) return r;
    }
    let ret = yield* vfioDeviceSetGroup(device, type);
    if (ret) return ret;
    if (
      type === VfioGroupType.VFIO_IOMMU &&
      !vfioDeviceIsNoiommu(device) &&
      !iommuState(k).hw.cacheCoherency
    ) {
      yield* vfioDeviceRemoveGroup(device);
      return -EINVAL;
    }
    vfioDeviceAdd(device);
    // refcounting can't start until the driver calls register
    device.refcount.set(1);
    device.registered = true;
    yield* vfioDeviceGroupRegister(device);
    k.event('vfio_register', {
      device: device.dev.name,
      index: device.index,
      group: device.group?.name,
      dev_set: device.devSet?.label,
    });
    ret = 0;
    return ret;
  },
);

/** vfio_register_group_dev */
export function* vfioRegisterGroupDev(device: VfioDevice): KGen<number> {
  return yield* vfioRegisterDev(device, VfioGroupType.VFIO_IOMMU);
}

/** vfio_register_emulated_iommu_dev */
export function* vfioRegisterEmulatedIommuDev(device: VfioDevice): KGen<number> {
  return yield* vfioRegisterDev(device, VfioGroupType.VFIO_EMULATED_IOMMU);
}

/** Virtual time unregister waits between request callbacks (HZ * 10). */
export const UNREGISTER_WAIT_MS = 10_000;

/**
 * vfio_unregister_group_dev: no new opens, put the registration's reference, then call the
 * driver's request callback with 0, 1, 2, ... while waiting (10 s each) for every file to go.
 */
export const vfioUnregisterGroupDev = kfn(
  'vfio_unregister_group_dev',
  function* (device: VfioDevice): KGen<void> {
    const k = device.kernel;
    k.event('vfio_unregister_start', { device: device.dev.name, index: device.index });
    // prevent new device opened by userspace via VFIO_GROUP_GET_DEVICE_FD
    yield* vfioDeviceGroupUnregister(device);
    // balances vfio_device_add; also prevents new opens in the cdev path
    vfioDeviceDel(device);
    yield* vfioDevicePutRegistration(device);
    let done = yield* tryWaitForCompletion(device.comp);
    let i = 0;
    while (!done) {
      if (device.ops.request) {
        k.event('request', { device: device.dev.name, count: i });
        yield* device.ops.request(device, i);
      }
      i++;
      done = (yield* waitForCompletionTimeout(device.comp, UNREGISTER_WAIT_MS)) > 0;
    }
    device.registered = false;
    // balances vfio_device_set_group in the register path
    yield* vfioDeviceRemoveGroup(device);
    k.event('vfio_unregister_done', { device: device.dev.name, index: device.index, requests: i });
  },
);

// ---- device files: first open / last close ------------------------------------------------------

/** vfio_allocate_device_file */
export function vfioAllocateDeviceFile(device: VfioDevice): VfioDeviceFile {
  return new VfioDeviceFile(device);
}

/** vfio_df_device_first_open (dev_set lock held) */
export const vfioDfDeviceFirstOpen = kfn(
  'vfio_df_device_first_open',
  function* (df: VfioDeviceFile): KGen<number> {
    const device = df.device;
    const iommufd = df.iommufd;
    lockdepAssertHeld(device.devSet!.lock);
    // try_module_get(device->dev->driver->owner)
    if (!device.dev.driver) return -ENODEV;
    let ret = iommufd ? yield* vfioDfIommufdBind(df) : yield* vfioDeviceGroupUseIommu(device);
    if (ret) return ret;
    if (device.ops.openDevice) {
      ret = yield* device.ops.openDevice(device);
      if (ret) {
        device.kernel.event('open_device_failed', { device: device.dev.name, ret });
        if (iommufd) yield* vfioDfIommufdUnbind(df);
        else yield* vfioDeviceGroupUnuseIommu(device);
        return ret;
      }
      device.kernel.event('open_device', { device: device.dev.name, dev_set: device.devSet?.label });
    }
    yield* writeOnce(device.openState, true);
    return 0;
  },
);

/** vfio_df_device_last_close (dev_set lock held) */
export const vfioDfDeviceLastClose = kfn(
  'vfio_df_device_last_close',
  function* (df: VfioDeviceFile): KGen<void> {
    const device = df.device;
    lockdepAssertHeld(device.devSet!.lock);
    yield* writeOnce(device.openState, false);
    if (device.ops.closeDevice) {
      device.kernel.event('close_device', { device: device.dev.name, dev_set: device.devSet?.label });
      yield* device.ops.closeDevice(device);
    }
    if (df.iommufd) yield* vfioDfIommufdUnbind(df);
    else yield* vfioDeviceGroupUnuseIommu(device);
    device.precopyInfoV2 = 0;
  },
);

/**
 * vfio_df_open: only the group path may open a device more than once; the cdev path has no
 * secure way to share an open device.
 */
export const vfioDfOpen = kfn('vfio_df_open', function* (df: VfioDeviceFile): KGen<number> {
  const device = df.device;
  lockdepAssertHeld(device.devSet!.lock);
  if (device.openCount !== 0 && !df.group) return -EINVAL;
  device.openCount++;
  if (device.openCount === 1) {
    const ret = yield* vfioDfDeviceFirstOpen(df);
    if (ret) device.openCount--;
    return ret;
  }
  return 0;
});

/** vfio_df_close */
export const vfioDfClose = kfn('vfio_df_close', function* (df: VfioDeviceFile): KGen<void> {
  const device = df.device;
  lockdepAssertHeld(device.devSet!.lock);
  if (device.openCount === 0) {
    device.kernel.warn(`vfio_df_close: ${device.dev.name} is not open`);
    return;
  }
  if (device.openCount === 1) yield* vfioDfDeviceLastClose(df);
  device.openCount--;
});

// ---- device file operations --------------------------------------------------------------------

/** vfio_device_fops_release */
export const vfioDeviceFopsRelease = kfn(
  'vfio_device_fops_release',
  function* (_inode: Inode, file: File): KGen<void> {
    const df = file.privateData as VfioDeviceFile;
    const device = df.device;
    if (df.group) yield* vfioDfGroupClose(df);
    else yield* vfioDfUnbindIommufd(df);
    yield* vfioDevicePutRegistration(device);
  },
);

/** vfio_device_fops_cdev_open: the file starts blocked (device_cdev.c) */
export const vfioDeviceFopsCdevOpen = kfn(
  'vfio_device_fops_cdev_open',
  function* (inode: Inode, file: File): KGen<number> {
    const device = inode.cdev!.owner as VfioDevice;
    // paired with the put in vfio_device_fops_release()
    if (!(yield* vfioDeviceTryGetRegistration(device))) return -ENODEV;
    const df = vfioAllocateDeviceFile(device);
    df.file = file;
    file.privateData = df;
    device.kernel.event('cdev_open', { device: device.dev.name, file: file.id, blocked: true });
    return 0;
  },
);

/**
 * Every access that reaches the driver through a device file goes through here: the explorer's
 * "no device access before access is granted" invariant is checked at this point.
 */
export function vfioNoteDeviceAccess(df: VfioDeviceFile, what: string): void {
  const k = df.device.kernel;
  if (!df.accessGranted.value) k.warn(`device access (${what}) through ${df.label} before access was granted`);
  if (!df.device.registered && df.device.refcount.value === 0)
    k.warn(`device access (${what}) to ${df.device.dev.name} after its last registration put`);
  if (k.trace.active) k.event('device_access', { device: df.device.dev.name, file: df.file?.id, op: what });
}

/** vfio_device_fops_unl_ioctl */
export const vfioDeviceFopsUnlIoctl = kfn(
  'vfio_device_fops_unl_ioctl',
  function* (file: File, cmd: number, arg: bigint): KGen<number> {
    const df = file.privateData as VfioDeviceFile;
    const device = df.device;
    const p = uptr(arg);
    if (cmd === U.VFIO_DEVICE_BIND_IOMMUFD) return yield* vfioDfIoctlBindIommufd(df, p);
    // paired with smp_store_release() following vfio_df_open()
    if (!(yield* smpLoadAcquire(df.accessGranted))) return -EINVAL;
    // vfio_device_pm_runtime_get: resume of the physical device cannot fail in this model
    if (!df.group) {
      if (cmd === U.VFIO_DEVICE_ATTACH_IOMMUFD_PT) return yield* vfioDfIoctlAttachPt(df, p);
      if (cmd === U.VFIO_DEVICE_DETACH_IOMMUFD_PT) return yield* vfioDfIoctlDetachPt(df, p);
    }
    yield* readOnce(device.openState);
    vfioNoteDeviceAccess(df, 'ioctl');
    switch (cmd) {
      case U.VFIO_DEVICE_FEATURE:
        return yield* vfioIoctlDeviceFeature(device, p);
      case U.VFIO_DEVICE_GET_REGION_INFO:
        return yield* vfioGetRegionInfo(device, p);
      default:
        if (!device.ops.ioctl) return -EINVAL;
        return yield* device.ops.ioctl(device, cmd, arg);
    }
  },
);

function* vfioDeviceFopsRead(file: File, buf: number, count: number, pos: Pos): KGen<number> {
  const df = file.privateData as VfioDeviceFile;
  if (!(yield* smpLoadAcquire(df.accessGranted))) return -EINVAL;
  if (!df.device.ops.read) return -EINVAL;
  yield* readOnce(df.device.openState);
  vfioNoteDeviceAccess(df, 'read');
  return yield* df.device.ops.read(df.device, buf, count, pos);
}

function* vfioDeviceFopsWrite(file: File, buf: number, count: number, pos: Pos): KGen<number> {
  const df = file.privateData as VfioDeviceFile;
  if (!(yield* smpLoadAcquire(df.accessGranted))) return -EINVAL;
  if (!df.device.ops.write) return -EINVAL;
  yield* readOnce(df.device.openState);
  vfioNoteDeviceAccess(df, 'write');
  return yield* df.device.ops.write(df.device, buf, count, pos);
}

function* vfioDeviceFopsMmap(file: File, vma: VmArea): KGen<number> {
  const df = file.privateData as VfioDeviceFile;
  if (!(yield* smpLoadAcquire(df.accessGranted))) return -EINVAL;
  if (!df.device.ops.mmap) return -EINVAL;
  yield* readOnce(df.device.openState);
  vfioNoteDeviceAccess(df, 'mmap');
  return yield* df.device.ops.mmap(df.device, vma);
}

/** vfio_device_show_fdinfo */
function vfioDeviceShowFdinfo(file: File): string {
  const df = file.privateData as VfioDeviceFile;
  return `vfio-device-syspath: ${df.device.dev.kdev.sysfsPath}\n`;
}

export const vfioDeviceFops: FileOperations = {
  name: 'vfio_device_fops',
  open: (inode, file) => vfioDeviceFopsCdevOpen(inode, file),
  release: (inode, file) => vfioDeviceFopsRelease(inode, file),
  read: vfioDeviceFopsRead,
  write: vfioDeviceFopsWrite,
  unlockedIoctl: (file, cmd, arg) => vfioDeviceFopsUnlIoctl(file, cmd, arg),
  mmap: vfioDeviceFopsMmap,
  showFdinfo: vfioDeviceShowFdinfo,
};

/** vfio_device_from_file */
export function vfioDeviceFromFile(file: File): VfioDevice | null {
  if (file.fOp !== vfioDeviceFops) return null;
  return (file.privateData as VfioDeviceFile).device;
}

// ---- VFIO_DEVICE_FEATURE -----------------------------------------------------------------------

/** vfio_check_feature (include/linux/vfio.h): 1 = go on, 0 = PROBE done, <0 error */
export function vfioCheckFeature(flags: number, argsz: number, supportedOps: number, minsz: number): number {
  if (flags & (U.VFIO_DEVICE_FEATURE_GET | U.VFIO_DEVICE_FEATURE_SET) & ~supportedOps) return -EINVAL;
  if (flags & U.VFIO_DEVICE_FEATURE_PROBE) return 0;
  if (!(flags & (U.VFIO_DEVICE_FEATURE_GET | U.VFIO_DEVICE_FEATURE_SET))) return -EINVAL;
  if (argsz < minsz) return -EINVAL;
  return 1;
}

/** vfio_ioctl_device_feature */
export function* vfioIoctlDeviceFeature(device: VfioDevice, arg: number): KGen<number> {
  const S = U.vfio_device_feature;
  const minsz = offsetofend(S, 'flags');
  const b = copyFromUser(currentMm(), arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const f = new StructBuf(S, b);
  const argsz = f.get('argsz');
  const flags = f.get('flags');
  if (argsz < minsz) return -EINVAL;
  if (flags & ~(U.VFIO_DEVICE_FEATURE_MASK | U.VFIO_DEVICE_FEATURE_SET | U.VFIO_DEVICE_FEATURE_GET | U.VFIO_DEVICE_FEATURE_PROBE))
    return -EINVAL;
  if (!(flags & U.VFIO_DEVICE_FEATURE_PROBE) && flags & U.VFIO_DEVICE_FEATURE_SET && flags & U.VFIO_DEVICE_FEATURE_GET)
    return -EINVAL;
  const payload = argsz - minsz;
  const data = arg + minsz;
  // The core handles migration and dirty logging; no driver in this model has migration or
  // logging ops (vfio-pci does not), so those features answer as the kernel does without them.
  switch (flags & U.VFIO_DEVICE_FEATURE_MASK) {
    case U.VFIO_DEVICE_FEATURE_MIGRATION:
    case U.VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE:
    case U.VFIO_DEVICE_FEATURE_DMA_LOGGING_START:
    case U.VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP:
    case U.VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT:
    case U.VFIO_DEVICE_FEATURE_MIG_DATA_SIZE:
      return -ENOTTY;
    case U.VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2:
      // the device does not advertise VFIO_MIGRATION_PRE_COPY
      return -EINVAL;
    default:
      if (!device.ops.deviceFeature) return -ENOTTY;
      return yield* device.ops.deviceFeature(device, flags, data, payload);
  }
}

// ---- capability chains (vfio_info_cap_add / vfio_info_cap_shift) ----------------------------------

export class VfioInfoCap {
  buf = new Uint8Array(0);
  get size(): number {
    return this.buf.length;
  }
  /** Append a capability of `size` bytes (8-aligned); returns its offset in the buffer. */
  add(size: number, id: number, version: number): number {
    size = Math.ceil(size / 8) * 8;
    const off = this.buf.length;
    const nb = new Uint8Array(off + size);
    nb.set(this.buf);
    const dv = new DataView(nb.buffer);
    dv.setUint16(off, id, true);
    dv.setUint16(off + 2, version, true);
    dv.setUint32(off + 4, 0, true);
    // link the previous tail to the new entry
    if (off > 0) {
      let t = 0;
      for (;;) {
        const next = dv.getUint32(t + 4, true);
        if (!next) break;
        t = next;
      }
      dv.setUint32(t + 4, off, true);
    }
    this.buf = nb;
    return off;
  }
  /** Make the `next` offsets relative to the start of the user buffer. */
  shift(offset: number): void {
    const dv = new DataView(this.buf.buffer);
    let t = 0;
    for (;;) {
      const next = dv.getUint32(t + 4, true);
      if (!next) break;
      dv.setUint32(t + 4, next + offset, true);
      t = next;
    }
  }
}

/** vfio_get_region_info */
export function* vfioGetRegionInfo(device: VfioDevice, arg: number): KGen<number> {
  const S = U.vfio_region_info;
  const minsz = offsetofend(S, 'offset');
  if (!device.ops.getRegionInfoCaps) return -EINVAL;
  const mm = currentMm();
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const info = new StructBuf(S, b);
  if (info.get('argsz') < minsz) return -EINVAL;
  const caps = new VfioInfoCap();
  const ret = yield* device.ops.getRegionInfoCaps(device, info, caps);
  if (ret) return ret;
  if (caps.size) {
    info.set('flags', info.get('flags') | U.VFIO_REGION_INFO_FLAG_CAPS);
    if (info.get('argsz') < S.size + caps.size) {
      info.set('argsz', S.size + caps.size);
      info.set('cap_offset', 0);
    } else {
      caps.shift(S.size);
      if (copyToUser(mm, arg + S.size, caps.buf) < 0) return -EFAULT;
      info.set('cap_offset', S.size);
    }
  }
  if (copyToUser(mm, arg, info.head(minsz)) < 0) return -EFAULT;
  return 0;
}

/** vfio_set_irqs_validate_and_prepare: returns the data size or a negative errno. */
export function vfioSetIrqsValidateAndPrepare(
  hdr: StructBuf<'argsz' | 'flags' | 'index' | 'start' | 'count'>,
  numIrqs: number,
  maxIrqType: number,
): number {
  const minsz = 20;
  const argsz = hdr.get('argsz');
  const index = hdr.get('index');
  const start = hdr.get('start');
  const count = hdr.get('count');
  const flags = hdr.get('flags');
  if (
    argsz < minsz ||
    index >= maxIrqType ||
    count >= 0xffffffff - start ||
    flags & ~(U.VFIO_IRQ_SET_DATA_TYPE_MASK | U.VFIO_IRQ_SET_ACTION_TYPE_MASK)
  )
    return -EINVAL;
  if (start >= numIrqs || start + count > numIrqs) return -EINVAL;
  let size: number;
  switch (flags & U.VFIO_IRQ_SET_DATA_TYPE_MASK) {
    case U.VFIO_IRQ_SET_DATA_NONE:
      size = 0;
      break;
    case U.VFIO_IRQ_SET_DATA_BOOL:
      size = 1;
      break;
    case U.VFIO_IRQ_SET_DATA_EVENTFD:
      size = 4;
      break;
    default:
      return -EINVAL;
  }
  if (size) {
    if (argsz - minsz < count * size) return -EINVAL;
    return count * size;
  }
  return 0;
}

