// drivers/vfio/group.c: the group file /dev/vfio/N (one opener at a time), SET/UNSET_CONTAINER,
// GET_STATUS, GET_DEVICE_FD, the group-path device open/close, group/cdev mutual exclusion, and
// group creation/teardown as devices register and unregister.

import { EBADF, EBADFD, EBUSY, EFAULT, EINVAL, ENODEV, ENOTTY, EPERM } from '../kernel/errno.js';
import { capable, currentMm, currentProcess } from '../kernel/current.js';
import { DeviceClass, cdevDeviceAdd, cdevDeviceDel } from '../kernel/device.js';
import { File, FileOperations, FMODE_PREAD, FMODE_PWRITE, Inode, O_RDWR, fput } from '../kernel/fs/file.js';
import { fdget } from '../kernel/syscalls.js';
import { Ida } from '../kernel/ida.js';
import { Kernel } from '../kernel/kernel.js';
import { kfn } from '../kernel/override.js';
import { KGen } from '../kernel/sched.js';
import {
  Mutex, krefPut, lockdepAssertHeld, mutexLock, mutexUnlock, refcountDecAndTest, refcountDecNotOne, refcountInc,
  refcountIncNotZero,
  refcountRead, smpStoreRelease, Kref,
} from '../kernel/sync.js';
import { copyFromUser, copyToUser, getUserS32, strndupUser, uptr, PAGE_SIZE } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import {
  IommuGroup, iommuGroupAllocId, iommuGroupCreate, iommuGroupDmaOwnerClaimed, iommuGroupAddDevice,
  iommuGroupRemoveDevice, iommuGroupSetName,
} from '../iommu/iommu.js';
import { iommufdCtxFromFile, iommufdCtxPut, iommufdVfioCompatIoasCreate, iommufdVfioCompatSetNoIommu } from '../iommufd/iommufd.js';
import { vfioIommufdCompatAttachIoas, vfioIommufdDeviceHasCompatIoas } from './iommufd.js';
import {
  vfioContainerAttachGroup, vfioContainerFromFile, vfioContainerInit, vfioDeviceContainerRegister,
  vfioDeviceContainerUnregister, vfioGroupDetachContainer, vfioGroupUnuseContainer, vfioGroupUseContainer,
} from './container.js';
import { VfioDevice, VfioDeviceFile, VfioGroup, VfioGroupType } from './vfio.js';
import {
  MINORMASK, vfioAllocateDeviceFile, vfioDeviceFops, vfioDevicePutRegistration, vfioDeviceTryGetRegistration,
  vfioDfClose, vfioDfOpen, vfioState,
} from './vfio_main.js';

interface GroupState {
  groupList: VfioGroup[];
  /** vfio.group_lock: the global group-list lock */
  groupLock: Mutex;
  groupIda: Ida;
  groupMajor: number;
  vfioClass: DeviceClass;
}

export function vfioGroupState(k: Kernel): GroupState {
  return k.state<GroupState>('vfio_group', () => ({
    groupList: [],
    groupLock: new Mutex('vfio.group_lock'),
    groupIda: new Ida(0, MINORMASK),
    groupMajor: -1,
    vfioClass: { name: 'vfio', devnode: (d) => ({ name: `vfio/${d.name}`, mode: 0o600 }) },
  }));
}

/** vfio_group_init: the container misc device, then the "vfio" char region for groups. */
export function vfioGroupInit(k: Kernel, pinnedMajor?: number): void {
  vfioContainerInit(k);
  const st = vfioGroupState(k);
  st.groupMajor = k.chrdevs.allocRegion('vfio', MINORMASK + 1, pinnedMajor);
}

const groupKrefs = new WeakMap<VfioGroup, Kref>();
function groupKref(g: VfioGroup): Kref {
  let r = groupKrefs.get(g);
  if (!r) groupKrefs.set(g, (r = new Kref(`${g.label}->dev.kobj`, 1)));
  return r;
}

/** vfio_device_get_from_name: newest registration first; a driver's match() may abort the search. */
function* vfioDeviceGetFromName(group: VfioGroup, buf: string): KGen<VfioDevice | number> {
  let result: VfioDevice | number = -ENODEV;
  yield* mutexLock(group.deviceLock);
  for (const it of group.deviceList) {
    let ret: number;
    if (it.ops.match) {
      ret = yield* it.ops.match(it, buf);
      if (ret < 0) {
        result = ret;
        break;
      }
    } else ret = it.dev.name === buf ? 1 : 0;
    if (ret && (yield* vfioDeviceTryGetRegistration(it))) {
      result = it;
      break;
    }
  }
  yield* mutexUnlock(group.deviceLock);
  return result;
}

/** vfio_group_has_iommu (group lock held) */
function vfioGroupHasIommu(group: VfioGroup): boolean {
  lockdepAssertHeld(group.groupLock);
  if (!group.container !== !group.containerUsers)
    group.kernel.warn(`${group.label}: container ${group.container ? 'set' : 'unset'} with ${group.containerUsers} users`);
  return group.container !== null || group.iommufd !== null;
}

/** VFIO_GROUP_UNSET_CONTAINER */
export const vfioGroupIoctlUnsetContainer = kfn(
  'vfio_group_ioctl_unset_container',
  function* (group: VfioGroup): KGen<number> {
    let ret = 0;
    yield* mutexLock(group.groupLock);
    if (!vfioGroupHasIommu(group)) ret = -EINVAL;
    else {
      if (group.container) {
        if (group.containerUsers !== 1) ret = -EBUSY;
        else yield* vfioGroupDetachContainer(group);
      }
      if (ret === 0 && group.iommufd) {
        yield* iommufdCtxPut(group.iommufd);
        group.iommufd = null;
      }
    }
    yield* mutexUnlock(group.groupLock);
    return ret;
  },
);

/** VFIO_GROUP_SET_CONTAINER: a legacy container fd or an iommufd. */
export const vfioGroupIoctlSetContainer = kfn(
  'vfio_group_ioctl_set_container',
  function* (group: VfioGroup, arg: number): KGen<number> {
    const r = getUserS32(currentMm(), arg);
    if (!r.ok) return -EFAULT;
    const proc = currentProcess();
    const f = r.v >= 0 && proc ? yield* fdget(proc, r.v) : null;
    if (!f) return -EBADF;
    let ret: number;
    yield* mutexLock(group.groupLock);
    out: {
      if (vfioGroupHasIommu(group)) {
        ret = -EINVAL;
        break out;
      }
      if (!group.iommuGroup) {
        ret = -ENODEV;
        break out;
      }
      const container = vfioContainerFromFile(f);
      if (container) {
        ret = yield* vfioContainerAttachGroup(container, group);
        break out;
      }
      const ictx = yield* iommufdCtxFromFile(f);
      if (typeof ictx !== 'number') {
        if (group.type === VfioGroupType.VFIO_NO_IOMMU) ret = yield* iommufdVfioCompatSetNoIommu(ictx);
        else ret = yield* iommufdVfioCompatIoasCreate(ictx);
        if (ret) {
          yield* iommufdCtxPut(ictx);
          break out;
        }
        group.iommufd = ictx;
        ret = 0;
        break out;
      }
      // the fd passed is not recognized
      ret = -EBADFD;
    }
    yield* mutexUnlock(group.groupLock);
    yield* fput(f);
    if (ret === 0) group.kernel.event('group_set_container', { group: group.name, iommufd: group.iommufd !== null });
    return ret;
  },
);

/** vfio_df_group_open: the group-path open, under the group lock then the dev_set lock. */
export const vfioDfGroupOpen = kfn('vfio_df_group_open', function* (df: VfioDeviceFile): KGen<number> {
  const device = df.device;
  const group = device.group!;
  let ret: number;
  yield* mutexLock(group.groupLock);
  if (!vfioGroupHasIommu(group)) {
    yield* mutexUnlock(group.groupLock);
    return -EINVAL;
  }
  yield* mutexLock(device.devSet!.lock);
  // before the first open take the group's KVM reference
  if (device.openCount === 0) device.kvm = group.kvm;
  df.iommufd = group.iommufd;
  fail: {
    if (df.iommufd && vfioDeviceIsNoiommu(device) && device.openCount === 0) {
      // the user cannot have done something implying they expected translation
      if (!capable('CAP_SYS_RAWIO') || (yield* vfioIommufdDeviceHasCompatIoas(device, df.iommufd))) {
        ret = -EPERM;
        break fail;
      }
    }
    ret = yield* vfioDfOpen(df);
    if (ret) break fail;
    if (df.iommufd && device.openCount === 1) {
      ret = yield* vfioIommufdCompatAttachIoas(device, df.iommufd);
      if (ret) {
        yield* vfioDfClose(df);
        break fail;
      }
    }
    // paired with smp_load_acquire() in the device fops
    yield* smpStoreRelease(df.accessGranted, true);
    device.kernel.event('access_granted', { device: device.dev.name, via: 'group', open_count: device.openCount });
    yield* mutexUnlock(device.devSet!.lock);
    yield* mutexUnlock(group.groupLock);
    return 0;
  }
  df.iommufd = null;
  if (device.openCount === 0) device.kvm = null;
  yield* mutexUnlock(device.devSet!.lock);
  yield* mutexUnlock(group.groupLock);
  return ret;
});

/** vfio_df_group_close */
export const vfioDfGroupClose = kfn('vfio_df_group_close', function* (df: VfioDeviceFile): KGen<void> {
  const device = df.device;
  const group = device.group!;
  yield* mutexLock(group.groupLock);
  yield* mutexLock(device.devSet!.lock);
  yield* vfioDfClose(df);
  df.iommufd = null;
  if (device.openCount === 0) device.kvm = null;
  yield* mutexUnlock(device.devSet!.lock);
  yield* mutexUnlock(group.groupLock);
});

/** vfio_device_open_file: open, then an anonymous file "[vfio-device]" (O_RDWR, pread/pwrite). */
function* vfioDeviceOpenFile(device: VfioDevice): KGen<File | number> {
  const df = vfioAllocateDeviceFile(device);
  df.group = device.group;
  const ret = yield* vfioDfGroupOpen(df);
  if (ret) return ret;
  const k = device.kernel;
  const file = new File(k.anonInode, vfioDeviceFops, O_RDWR, 'anon_inode:[vfio-device]');
  file.fMode |= FMODE_PREAD | FMODE_PWRITE;
  file.fMode &= ~0x4; // no llseek: FMODE_LSEEK cleared
  file.privateData = df;
  df.file = file;
  if (device.group!.type === VfioGroupType.VFIO_NO_IOMMU)
    k.printk(`vfio-noiommu device opened by user (${currentProcess()?.comm ?? '?'}:${currentProcess()?.pid ?? 0})`);
  return file;
}

/** VFIO_GROUP_GET_DEVICE_FD */
export const vfioGroupIoctlGetDeviceFd = kfn(
  'vfio_group_ioctl_get_device_fd',
  function* (group: VfioGroup, arg: number): KGen<number> {
    const buf = strndupUser(currentMm(), arg, PAGE_SIZE);
    if (typeof buf === 'number') return buf;
    const device = yield* vfioDeviceGetFromName(group, buf);
    if (typeof device === 'number') return device;
    const proc = currentProcess()!;
    // FD_ADD(O_CLOEXEC, vfio_device_open_file(device))
    const fd = proc.fdt.alloc(0, true);
    let ret = fd;
    if (fd >= 0) {
      const f = yield* vfioDeviceOpenFile(device);
      if (typeof f === 'number') {
        proc.fdt.unreserve(fd);
        ret = f;
      } else proc.fdt.install(fd, f);
    }
    if (ret < 0) yield* vfioDevicePutRegistration(device);
    return ret;
  },
);

/** VFIO_GROUP_GET_STATUS */
export const vfioGroupIoctlGetStatus = kfn(
  'vfio_group_ioctl_get_status',
  function* (group: VfioGroup, arg: number): KGen<number> {
    const S = U.vfio_group_status;
    const minsz = offsetofend(S, 'flags');
    const mm = currentMm();
    const b = copyFromUser(mm, arg, minsz);
    if (typeof b === 'number') return -EFAULT;
    const st = new StructBuf(S, b);
    if (st.get('argsz') < minsz) return -EINVAL;
    let flags = 0;
    yield* mutexLock(group.groupLock);
    if (!group.iommuGroup) {
      yield* mutexUnlock(group.groupLock);
      return -ENODEV;
    }
    // with an iommufd, ownership is claimed at GET_DEVICE_FD, so VIABLE may be optimistic
    if (vfioGroupHasIommu(group)) flags |= U.VFIO_GROUP_FLAGS_CONTAINER_SET | U.VFIO_GROUP_FLAGS_VIABLE;
    else if (!(yield* iommuGroupDmaOwnerClaimed(group.iommuGroup))) flags |= U.VFIO_GROUP_FLAGS_VIABLE;
    yield* mutexUnlock(group.groupLock);
    st.set('flags', flags);
    if (copyToUser(mm, arg, st.head(minsz)) < 0) return -EFAULT;
    return 0;
  },
);

/** vfio_group_fops_unl_ioctl */
function* vfioGroupFopsUnlIoctl(file: File, cmd: number, arg: bigint): KGen<number> {
  const group = file.privateData as VfioGroup;
  const p = uptr(arg);
  switch (cmd) {
    case U.VFIO_GROUP_GET_DEVICE_FD:
      return yield* vfioGroupIoctlGetDeviceFd(group, p);
    case U.VFIO_GROUP_GET_STATUS:
      return yield* vfioGroupIoctlGetStatus(group, p);
    case U.VFIO_GROUP_SET_CONTAINER:
      return yield* vfioGroupIoctlSetContainer(group, p);
    case U.VFIO_GROUP_UNSET_CONTAINER:
      return yield* vfioGroupIoctlUnsetContainer(group);
    default:
      return -ENOTTY;
  }
}

/** vfio_device_block_group: a cdev BIND excludes the group file (and vice versa). */
export const vfioDeviceBlockGroup = kfn('vfio_device_block_group', function* (device: VfioDevice): KGen<number> {
  const group = device.group!;
  let ret = 0;
  yield* mutexLock(group.groupLock);
  if (group.openedFile) ret = -EBUSY;
  else group.cdevDeviceOpenCnt++;
  yield* mutexUnlock(group.groupLock);
  if (!ret) device.kernel.event('group_blocked', { group: group.name, cdev_device_open_cnt: group.cdevDeviceOpenCnt });
  return ret;
});

/** vfio_device_unblock_group */
export const vfioDeviceUnblockGroup = kfn('vfio_device_unblock_group', function* (device: VfioDevice): KGen<void> {
  const group = device.group!;
  yield* mutexLock(group.groupLock);
  group.cdevDeviceOpenCnt--;
  yield* mutexUnlock(group.groupLock);
  device.kernel.event('group_unblocked', { group: group.name, cdev_device_open_cnt: group.cdevDeviceOpenCnt });
});

/** vfio_group_fops_open: one opener at a time, and not while a cdev of the group is bound. */
export const vfioGroupFopsOpen = kfn('vfio_group_fops_open', function* (inode: Inode, file: File): KGen<number> {
  const group = inode.cdev!.owner as VfioGroup;
  let ret: number;
  yield* mutexLock(group.groupLock);
  const drivers = yield* refcountRead(group.drivers);
  if (drivers === 0) ret = -ENODEV;
  else if (group.type === VfioGroupType.VFIO_NO_IOMMU && !capable('CAP_SYS_RAWIO')) ret = -EPERM;
  else if (group.cdevDeviceOpenCnt) ret = -EBUSY;
  else if (group.openedFile) ret = -EBUSY;
  else {
    group.openedFile = file;
    file.privateData = group;
    ret = 0;
  }
  yield* mutexUnlock(group.groupLock);
  if (!ret) group.kernel.event('group_open', { group: group.name, file: file.id });
  return ret;
});

/** vfio_group_fops_release: detach the container / drop the iommufd, forget the opened file. */
export const vfioGroupFopsRelease = kfn('vfio_group_fops_release', function* (_inode: Inode, file: File): KGen<void> {
  const group = file.privateData as VfioGroup;
  file.privateData = null;
  yield* mutexLock(group.groupLock);
  // device FDs hold a group file reference (container mode), so no device is open here
  if (group.container) yield* vfioGroupDetachContainer(group);
  if (group.iommufd) {
    yield* iommufdCtxPut(group.iommufd);
    group.iommufd = null;
  }
  group.openedFile = null;
  yield* mutexUnlock(group.groupLock);
  group.kernel.event('group_release', { group: group.name, file: file.id });
});

export const vfioGroupFops: FileOperations = {
  name: 'vfio_group_fops',
  open: (inode, file) => vfioGroupFopsOpen(inode, file),
  release: (inode, file) => vfioGroupFopsRelease(inode, file),
  unlockedIoctl: vfioGroupFopsUnlIoctl,
};

// ---- group objects: create, release, find ---------------------------------------------------------

function vfioGroupFindFromIommu(k: Kernel, iommuGroup: IommuGroup): VfioGroup | undefined {
  const st = vfioGroupState(k);
  lockdepAssertHeld(st.groupLock);
  return st.groupList.find((g) => g.iommuGroup === iommuGroup);
}

/** vfio_group_release: the group's memory goes; its minor is free again. */
function vfioGroupRelease(k: Kernel, group: VfioGroup): void {
  if (group.iommuGroup) k.warn(`vfio_group_release: ${group.name} still has an iommu group`);
  if (group.cdevDeviceOpenCnt) k.warn(`vfio_group_release: ${group.name} cdev_device_open_cnt ${group.cdevDeviceOpenCnt}`);
  vfioGroupState(k).groupIda.free(group.minor);
  k.event('vfio_group_free', { group: group.name, minor: group.minor });
}

function* putGroupDevice(k: Kernel, group: VfioGroup): KGen<void> {
  yield* krefPut(groupKref(group), function* () {
    vfioGroupRelease(k, group);
  });
}

/** vfio_group_alloc + vfio_create_group: the node /dev/vfio/<name> appears now. */
function vfioCreateGroup(k: Kernel, iommuGroup: IommuGroup, type: VfioGroupType): VfioGroup | number {
  const st = vfioGroupState(k);
  lockdepAssertHeld(st.groupLock);
  const minor = st.groupIda.alloc();
  if (minor < 0) return minor;
  const group = new VfioGroup(k, iommuGroup, type);
  group.minor = minor;
  group.dev.cls = st.vfioClass;
  group.dev.devt = { major: st.groupMajor, minor };
  groupKref(group);
  group.cdev = {
    devt: group.dev.devt,
    count: 1,
    fops: vfioGroupFops,
    owner: group,
    *get(): KGen<boolean> {
      // kobject_get_unless_zero: an open racing with the release finds nothing to pin
      return yield* refcountIncNotZero(groupKref(group));
    },
    *put(): KGen<void> {
      yield* putGroupDevice(k, group);
    },
  };
  cdevDeviceAdd(k, group.cdev, group.dev);
  st.groupList.unshift(group);
  k.event('vfio_group_create', { group: group.name, minor, devt: `${group.dev.devt.major}:${minor}` });
  return group;
}

/** vfio_noiommu_group_alloc: a fake IOMMU group named vfio-noiommu. */
function* vfioNoiommuGroupAlloc(device: VfioDevice, type: VfioGroupType): KGen<VfioGroup | number> {
  const k = device.kernel;
  const iommuGroup = iommuGroupCreate(k, iommuGroupAllocId(k));
  iommuGroupSetName(k, iommuGroup, 'vfio-noiommu');
  iommuGroupAddDevice(k, iommuGroup, device.dev, device.dev.kdev.sysfsPath!);
  const st = vfioGroupState(k);
  yield* mutexLock(st.groupLock);
  const group = vfioCreateGroup(k, iommuGroup, type);
  yield* mutexUnlock(st.groupLock);
  if (typeof group === 'number') {
    iommuGroupRemoveDevice(k, device.dev, device.dev.kdev.sysfsPath!);
    return group;
  }
  return group;
}

function* vfioGroupHasDevice(group: VfioGroup, device: VfioDevice): KGen<boolean> {
  yield* mutexLock(group.deviceLock);
  const v = group.deviceList.some((d) => d.dev === device.dev);
  yield* mutexUnlock(group.deviceLock);
  return v;
}

/** vfio_group_find_or_alloc */
function* vfioGroupFindOrAlloc(device: VfioDevice): KGen<VfioGroup | number> {
  const k = device.kernel;
  const iommuGroup = device.dev.iommuGroup;
  if (!iommuGroup && vfioState(k).noiommu) {
    // no IOMMU hardware for this device: a fake group; taints the kernel
    const group = yield* vfioNoiommuGroupAlloc(device, VfioGroupType.VFIO_NO_IOMMU);
    if (typeof group !== 'number') k.printk(`${device.dev.name}: Adding kernel taint for vfio-noiommu group on device`);
    return group;
  }
  if (!iommuGroup) return -EINVAL;
  const st = vfioGroupState(k);
  yield* mutexLock(st.groupLock);
  let group: VfioGroup | number | undefined = vfioGroupFindFromIommu(k, iommuGroup);
  if (group) {
    if (yield* vfioGroupHasDevice(group, device)) {
      k.warn(`vfio_group_find_or_alloc: ${device.dev.name} registered twice`);
      group = -EINVAL;
    } else yield* refcountInc(group.drivers);
  } else group = vfioCreateGroup(k, iommuGroup, VfioGroupType.VFIO_IOMMU);
  yield* mutexUnlock(st.groupLock);
  return group;
}

/** vfio_device_set_group */
export function* vfioDeviceSetGroup(device: VfioDevice, type: VfioGroupType): KGen<number> {
  const group =
    type === VfioGroupType.VFIO_IOMMU ? yield* vfioGroupFindOrAlloc(device) : yield* vfioNoiommuGroupAlloc(device, type);
  if (typeof group === 'number') return group;
  device.group = group;
  return 0;
}

/** vfio_device_remove_group: the last device of the group tears the group down. */
export const vfioDeviceRemoveGroup = kfn('vfio_device_remove_group', function* (device: VfioDevice): KGen<void> {
  const k = device.kernel;
  const group = device.group!;
  if (group.type === VfioGroupType.VFIO_NO_IOMMU || group.type === VfioGroupType.VFIO_EMULATED_IOMMU)
    iommuGroupRemoveDevice(k, device.dev, device.dev.kdev.sysfsPath!);
  // refcount_dec_and_mutex_lock(&group->drivers, &vfio.group_lock)
  const st = vfioGroupState(k);
  if (yield* refcountDecNotOne(group.drivers)) return;
  yield* mutexLock(st.groupLock);
  if (!(yield* refcountDecAndTest(group.drivers))) {
    yield* mutexUnlock(st.groupLock);
    return;
  }
  const i = st.groupList.indexOf(group);
  if (i >= 0) st.groupList.splice(i, 1);
  // sysfs is cleaned up under the lock so a concurrent probe cannot collide on the name
  cdevDeviceDel(k, group.cdev, group.dev);
  yield* mutexLock(group.groupLock);
  if (group.deviceList.length) k.warn(`vfio_device_remove_group: ${group.name} device list not empty`);
  // revoke all users of group->iommu_group
  if (group.container) yield* vfioGroupDetachContainer(group);
  group.iommuGroup = null;
  yield* mutexUnlock(group.groupLock);
  yield* mutexUnlock(st.groupLock);
  k.event('vfio_group_remove', { group: group.name, open: group.openedFile !== null });
  yield* putGroupDevice(k, group);
});

/** vfio_device_group_register: findable by GET_DEVICE_FD from now on (head insertion). */
export function* vfioDeviceGroupRegister(device: VfioDevice): KGen<void> {
  const group = device.group!;
  yield* mutexLock(group.deviceLock);
  group.deviceList.unshift(device);
  yield* mutexUnlock(group.deviceLock);
}

/** vfio_device_group_unregister: GET_DEVICE_FD cannot find the device from now on. */
export function* vfioDeviceGroupUnregister(device: VfioDevice): KGen<void> {
  const group = device.group!;
  yield* mutexLock(group.deviceLock);
  const i = group.deviceList.indexOf(device);
  if (i >= 0) group.deviceList.splice(i, 1);
  yield* mutexUnlock(group.deviceLock);
  device.kernel.event('group_device_unregister', { group: group.name, device: device.dev.name });
}

/** vfio_device_group_use_iommu (group lock held): the container path's first open. */
export const vfioDeviceGroupUseIommu = kfn('vfio_device_group_use_iommu', function* (device: VfioDevice): KGen<number> {
  const group = device.group!;
  lockdepAssertHeld(group.groupLock);
  if (!group.container) {
    device.kernel.warn('vfio_device_group_use_iommu: no container');
    return -EINVAL;
  }
  const ret = yield* vfioGroupUseContainer(group);
  if (ret) return ret;
  vfioDeviceContainerRegister(device);
  return 0;
});

/** vfio_device_group_unuse_iommu */
export const vfioDeviceGroupUnuseIommu = kfn('vfio_device_group_unuse_iommu', function* (device: VfioDevice): KGen<void> {
  const group = device.group!;
  lockdepAssertHeld(group.groupLock);
  if (!group.container) {
    device.kernel.warn('vfio_device_group_unuse_iommu: no container');
    return;
  }
  vfioDeviceContainerUnregister(device);
  yield* vfioGroupUnuseContainer(group);
});

export function vfioDeviceHasContainer(device: VfioDevice): boolean {
  return device.group?.container != null;
}

/** vfio_group_from_file */
export function vfioGroupFromFile(file: File): VfioGroup | null {
  if (file.fOp !== vfioGroupFops) return null;
  return file.privateData as VfioGroup | null;
}

/** vfio_file_is_group */
export function vfioFileIsGroup(file: File): boolean {
  return vfioGroupFromFile(file) !== null;
}

/** vfio_file_has_dev: only group files prove ownership (hot reset). */
export function vfioFileHasDev(file: File, device: VfioDevice): boolean {
  const group = vfioGroupFromFile(file);
  return group !== null && group === device.group;
}

/** vfio_device_is_noiommu */
export function vfioDeviceIsNoiommu(device: VfioDevice): boolean {
  return device.group?.type === VfioGroupType.VFIO_NO_IOMMU;
}

