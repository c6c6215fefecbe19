// Variants: small, named overrides of kernel functions (kfn, src/kernel/override.ts) that
// re-create a design the kernel moved away from, applied per kernel through kernel.overrides so
// that nothing outside the explored host changes. Each built-in variant comes with a scenario
// (examples/explore/) that fails on it and passes on Linux 7.2's design.
//
// Writing your own: export `variants: Variant[]` from a module (JavaScript, or TypeScript compiled
// with tsc) and run `vfiosim explore FILE --variant-module ./my-variants.js --variant NAME`. An
// override receives the same arguments as the kernel function it replaces, must be a generator
// when the original is one (yield* every visible operation: locks, atomics, refcounts), and may
// call the original through kfnOriginal(name). See README "Variants" for a worked example.

import { EBUSY, EINVAL, ENODEV, EPERM } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import type { File, Inode } from '../kernel/fs/file.js';
import type { Kernel } from '../kernel/kernel.js';
import { kfnNames, kfnOriginal } from '../kernel/override.js';
import type { KGen } from '../kernel/sched.js';
import {
  Atomic, atomicLoad, atomicRmw, atomicStore, capable, lockdepAssertHeld, mutexLock, mutexUnlock, readOnce,
  smpLoadAcquire, smpStoreRelease,
} from './variant_kit.js';
import { copyFromUser, uptr } from '../kernel/uaccess.js';
import * as U from '../uapi/vfio.js';
import { iommufdCtxPut } from '../iommufd/iommufd.js';
import type { VfioDevice, VfioDeviceFile, VfioGroup } from '../vfio/vfio.js';
import { VfioGroupType } from '../vfio/vfio.js';
import {
  vfioAllocateDeviceFile, vfioDevicePutRegistration, vfioDeviceTryGetRegistration, vfioDfClose,
  vfioDfDeviceFirstOpen, vfioDfDeviceLastClose, vfioGetRegionInfo, vfioIoctlDeviceFeature, vfioNoteDeviceAccess,
} from '../vfio/vfio_main.js';
import { vfioDfIoctlAttachPt, vfioDfIoctlDetachPt } from '../vfio/device_cdev.js';
import { vfioDeviceUnblockGroup } from '../vfio/group.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => any;

export interface Variant {
  /** the name given to --variant */
  name: string;
  /** one line */
  title: string;
  /** the design it re-creates and what goes wrong with it */
  description: string;
  /** kernel function name (as kfn() defines it) -> replacement */
  overrides: Record<string, AnyFn>;
  /** a scenario that fails on the variant and passes on Linux 7.2's design */
  scenario?: string;
}

/** Install a variant's overrides on a kernel (unknown function names are an error). */
export function applyVariant(k: Kernel, v: Variant): void {
  const known = new Set(kfnNames());
  for (const [name, f] of Object.entries(v.overrides)) {
    if (!known.has(name)) throw new Error(`variant ${v.name}: no kernel function named ${name} (see kfnNames())`);
    k.overrides.set(name, f);
  }
}

// ---- seed 003: driver open/release per device file, before device sets ---------------------------------

/**
 * Before 2fd585f4 ("vfio: Provide better generic support for open/release vfio_device_ops") the
 * driver's open/release ran once per device FD; drivers open-coded first-open/last-close
 * (reflck) or were buggy. Here vfio_df_open/vfio_df_close call the driver on every file: the
 * second file opens the device again, and the first close tears it down under the other file.
 */
const perFileOpen: Variant = {
  name: 'per-file-open',
  title: 'driver open/release called per device file (before device sets, seed 003)',
  description:
    'vfio_df_open/vfio_df_close call open_device/close_device for every device file instead of the ' +
    'first open and last close of the device: a second file re-opens the device, and closing one ' +
    'file tears the device down while another file still uses it.',
  scenario: 'examples/explore/two-device-files.yaml',
  overrides: {
    vfio_df_open: function* (df: VfioDeviceFile): KGen<number> {
      const device = df.device;
      lockdepAssertHeld(device.devSet!.lock);
      if (device.openCount !== 0 && !df.group) return -EINVAL;
      device.openCount++;
      // the driver's open, for every file
      const ret = yield* vfioDfDeviceFirstOpen(df);
      if (ret) device.openCount--;
      return ret;
    },
    vfio_df_close: function* (df: VfioDeviceFile): KGen<void> {
      const device = df.device;
      lockdepAssertHeld(device.devSet!.lock);
      if (device.openCount === 0) return;
      // the driver's release, for every file
      yield* vfioDfDeviceLastClose(df);
      device.openCount--;
    },
  },
};

// ---- seed 004: the group file lifecycle before device files held the group file ------------------------

/**
 * Before b76c0eed ("vfio: Simplify the life cycle of the group FD") a device FD did not hold the
 * group FD: the group FD could be closed (and its release dissolve the container) while device
 * FDs were open. Here vfio_group_use_container/unuse_container only count container users and
 * take no group-file reference, so the group file's release runs while a device is open and
 * detaches the container from under it.
 */
const groupFdUnpinned: Variant = {
  name: 'group-fd-unpinned',
  title: 'device files do not hold the group file; its release dissolves the container (seed 004)',
  description:
    'vfio_group_use_container takes no reference on the group file, so closing the group FD runs ' +
    'vfio_group_fops_release while device FDs are open: the container is detached (DMA ownership ' +
    'and the IOMMU backend released) from under an open device.',
  scenario: 'examples/explore/group-close-vs-device.yaml',
  overrides: {
    vfio_group_use_container: function* (group: VfioGroup): KGen<number> {
      lockdepAssertHeld(group.groupLock);
      if (!group.container!.iommuDriver) return -EINVAL;
      if (group.type === VfioGroupType.VFIO_NO_IOMMU && !capable('CAP_SYS_RAWIO')) return -EPERM;
      // no get_file(group->opened_file): the device FD does not pin the group FD
      group.containerUsers++;
      group.kernel.event('group_file_get', { group: group.name, container_users: group.containerUsers, pinned: false });
      return 0;
    },
    vfio_group_unuse_container: function* (group: VfioGroup): KGen<void> {
      lockdepAssertHeld(group.groupLock);
      if (group.containerUsers <= 1) group.kernel.warn(`vfio_group_unuse_container: ${group.name} users ${group.containerUsers}`);
      group.containerUsers--;
      group.kernel.event('group_file_put', { group: group.name, container_users: group.containerUsers, pinned: false });
    },
  },
};

// ---- seed 002: the 2021 atomic "opened" flag instead of a file blocked until bind -----------------------

const openedFlags = new WeakMap<VfioDevice, Atomic<number>>();
function openedFlag(d: VfioDevice): Atomic<number> {
  let a = openedFlags.get(d);
  if (!a) openedFlags.set(d, (a = new Atomic<number>(`vfio_device(${d.dev.name})->opened`, 0)));
  return a;
}

/**
 * The 2021 iommufd proposal (seed 002): a device cdev open claims the device with an atomic
 * "opened" flag (cmpxchg 0 -> 1) and the device's ioctls test that flag, instead of the file
 * starting blocked and only BIND_IOMMUFD granting access (smp_store_release / smp_load_acquire
 * of access_granted, Linux 6.5+). An ioctl racing with the bind reaches the device before it is
 * bound to an IOMMU context.
 */
const atomicOpened: Variant = {
  name: 'atomic-opened',
  title: 'an atomic "opened" flag set at open time instead of a file blocked until bind (seed 002)',
  description:
    'vfio_device_fops_cdev_open sets device->opened with a cmpxchg and the device ioctls test it: ' +
    'once the cdev is open, an ioctl reaches the device before BIND_IOMMUFD has opened it and ' +
    'granted access on the file.',
  scenario: 'examples/explore/bind-vs-ioctl.yaml',
  overrides: {
    vfio_device_fops_cdev_open: function* (inode: Inode, file: File): KGen<number> {
      const device = inode.cdev!.owner as VfioDevice;
      if (!(yield* vfioDeviceTryGetRegistration(device))) return -ENODEV;
      // atomic_cmpxchg(&device->opened, 0, 1)
      if ((yield* atomicRmw(openedFlag(device), (v) => (v === 0 ? 1 : v), 'seq_cst')) !== 0) {
        yield* vfioDevicePutRegistration(device);
        return -EBUSY;
      }
      const df = vfioAllocateDeviceFile(device);
      df.file = file;
      file.privateData = df;
      device.kernel.event('cdev_open', { device: device.dev.name, file: file.id, blocked: false });
      return 0;
    },
    vfio_device_fops_release: function* (inode: Inode, file: File): KGen<void> {
      const df = file.privateData as VfioDeviceFile;
      const orig = kfnOriginal<(i: Inode, f: File) => KGen<void>>('vfio_device_fops_release');
      const cdev = !df.group;
      yield* orig(inode, file);
      if (cdev) yield* atomicStore(openedFlag(df.device), 0, 'release');
    },
    vfio_device_fops_unl_ioctl: function* (file: File, cmd: number, arg: bigint): KGen<number> {
      const df = file.privateData as VfioDeviceFile;
      const device = df.device;
      const p = uptr(arg);
      const bind = kfnOriginal<(df: VfioDeviceFile, p: number) => KGen<number>>('vfio_df_ioctl_bind_iommufd');
      if (cmd === U.VFIO_DEVICE_BIND_IOMMUFD) return yield* bind(df, p);
      // the device is usable once it is opened (the flag), not once this file is bound
      const usable = df.group ? yield* smpLoadAcquire(df.accessGranted) : (yield* atomicLoad(openedFlag(device), 'acquire')) !== 0;
      if (!usable) return -EINVAL;
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
  },
};

// ---- seed 000: a cdev that goes from bound back to unbound ------------------------------------------

/**
 * Linux 7.2 (device_cdev.c, seed 000): "it can safely handle the device FD unbound->bound but it
 * cannot handle bound->unbound. To allow this we'd need to add a lock on all the vfio ioctls".
 * Here BIND_IOMMUFD with iommufd = -1 unbinds a bound cdev file: it closes the device and clears
 * access_granted under the dev_set lock, while the ioctl path still only does the lockless
 * smp_load_acquire of access_granted: an ioctl that passed the check uses the device after
 * close_device tore it down.
 */
const boundUnbound: Variant = {
  name: 'bound-unbound',
  title: 'a cdev may go from bound back to unbound without a lock around every ioctl (seed 000)',
  description:
    'VFIO_DEVICE_BIND_IOMMUFD with iommufd = -1 unbinds a bound cdev file (close_device, ' +
    'access_granted cleared) while ioctls keep the lockless access_granted check: an ioctl past ' +
    'the check reaches the device after close_device.',
  scenario: 'examples/explore/unbind-vs-ioctl.yaml',
  overrides: {
    vfio_df_ioctl_bind_iommufd: function* (df: VfioDeviceFile, arg: number): KGen<number> {
      const orig = kfnOriginal<(df: VfioDeviceFile, arg: number) => KGen<number>>('vfio_df_ioctl_bind_iommufd');
      const b = copyFromUser(currentMm(), arg, 12);
      const iommufd = typeof b === 'number' ? 0 : new DataView(b.buffer, b.byteOffset).getInt32(8, true);
      if (iommufd !== -1 || df.group) return yield* orig(df, arg);
      // unbind: bound -> unbound
      const device = df.device;
      yield* mutexLock(device.devSet!.lock);
      if (!(yield* atomicLoad(df.accessGranted, 'plain'))) {
        yield* mutexUnlock(device.devSet!.lock);
        return -EINVAL;
      }
      yield* smpStoreRelease(df.accessGranted, false);
      yield* vfioDfClose(df);
      device.kvm = null;
      yield* iommufdCtxPut(df.iommufd!);
      df.iommufd = null;
      device.cdevOpened = false;
      device.kernel.event('access_revoked', { device: device.dev.name, file: df.file?.id });
      yield* mutexUnlock(device.devSet!.lock);
      yield* vfioDeviceUnblockGroup(device);
      return 0;
    },
  },
};

export const VARIANTS: readonly Variant[] = [perFileOpen, groupFdUnpinned, atomicOpened, boundUnbound];

export function variantByName(name: string, extra: readonly Variant[] = []): Variant | undefined {
  return [...extra, ...VARIANTS].find((v) => v.name === name);
}
