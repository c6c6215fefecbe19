// drivers/vfio/container.c: the legacy container /dev/vfio/vfio, the IOMMU backend registry
// (type1 and noiommu), attaching groups, and the group-file reference device opens take.

import { EINVAL, ENODEV, EPERM, ENOTTY } from '../kernel/errno.js';
import { capable } from '../kernel/current.js';
import { miscRegister } from '../kernel/device.js';
import { File, FileOperations, Inode, fput, getFile } from '../kernel/fs/file.js';
import { Kernel } from '../kernel/kernel.js';
import { kfn } from '../kernel/override.js';
import { KGen, KObject } from '../kernel/sched.js';
import {
  Kref, Mutex, RwSemaphore, downRead, downWrite, krefGet, krefPut, lockdepAssertHeld, mutexLock, mutexUnlock, upRead,
  upWrite,
} from '../kernel/sync.js';
import * as U from '../uapi/vfio.js';
import { IommuGroup, iommuGroupClaimDmaOwner, iommuGroupReleaseDmaOwner } from '../iommu/iommu.js';
import { VfioDevice, VfioGroup, VfioGroupType } from './vfio.js';
import { vfioState } from './vfio_main.js';
import { vfioIommuType1Ops } from './vfio_iommu_type1.js';

export const VFIO_MINOR = 196;

/** struct vfio_iommu_driver_ops */
export interface VfioIommuDriverOps {
  readonly name: string;
  /** a new backend instance for `arg` (the SET_IOMMU type), or a negative errno */
  open(k: Kernel, arg: bigint): KGen<{ data: unknown } | { err: number }>;
  release(data: unknown): KGen<void>;
  /** data is null for CHECK_EXTENSION on a container without a backend */
  ioctl(data: unknown, cmd: number, arg: bigint): KGen<number>;
  attachGroup(data: unknown, iommuGroup: IommuGroup, type: VfioGroupType): KGen<number>;
  detachGroup(data: unknown, iommuGroup: IommuGroup): KGen<void>;
  registerDevice?(data: unknown, vdev: VfioDevice): void;
  unregisterDevice?(data: unknown, vdev: VfioDevice): void;
}

/** struct vfio_container */
export class VfioContainer extends KObject {
  readonly kref: Kref;
  readonly groupList: VfioGroup[] = [];
  readonly groupLock: RwSemaphore;
  iommuDriver: VfioIommuDriverOps | null = null;
  iommuData: unknown = null;
  noiommu = false;
  private static next = 1;
  readonly id: number;
  constructor(readonly kernel: Kernel) {
    const id = VfioContainer.next++;
    super(`vfio_container#${id}`);
    this.id = id;
    this.kref = new Kref(`${this.label}->kref`, 1);
    this.groupLock = new RwSemaphore(`${this.label}->group_lock`);
  }
}

interface ContainerState {
  /** most recently registered first */
  iommuDrivers: VfioIommuDriverOps[];
  iommuDriversLock: Mutex;
}

function containerState(k: Kernel): ContainerState {
  return k.state<ContainerState>('vfio_container', () => ({
    iommuDrivers: [],
    iommuDriversLock: new Mutex('vfio.iommu_drivers_lock'),
  }));
}

// ---- the noiommu backend ---------------------------------------------------------------------

export const vfioNoiommuOps: VfioIommuDriverOps = {
  name: 'vfio-noiommu',
  *open(_k: Kernel, arg: bigint) {
    if (arg !== BigInt(U.VFIO_NOIOMMU_IOMMU)) return { err: -EINVAL };
    if (!capable('CAP_SYS_RAWIO')) return { err: -EPERM };
    return { data: null };
  },
  *release() {},
  *ioctl(_data: unknown, cmd: number, arg: bigint) {
    if (cmd === U.VFIO_CHECK_EXTENSION) {
      const k = currentKernelFromOps();
      return k && vfioState(k).noiommu && arg === BigInt(U.VFIO_NOIOMMU_IOMMU) ? 1 : 0;
    }
    return -ENOTTY;
  },
  *attachGroup() {
    return 0;
  },
  *detachGroup() {},
};

import { current } from '../kernel/sched.js';
function currentKernelFromOps(): Kernel | null {
  return (current().kernel as Kernel) ?? null;
}

/** vfio_iommu_driver_allowed: noiommu containers use only vfio-noiommu, and vice versa. */
function vfioIommuDriverAllowed(container: VfioContainer, driver: VfioIommuDriverOps): boolean {
  return container.noiommu === (driver === vfioNoiommuOps);
}

/** vfio_register_iommu_driver */
export function vfioRegisterIommuDriver(k: Kernel, ops: VfioIommuDriverOps): number {
  const st = containerState(k);
  if (st.iommuDrivers.includes(ops)) return -EINVAL;
  st.iommuDrivers.unshift(ops);
  return 0;
}

// ---- container file -------------------------------------------------------------------------------

export function* vfioContainerGet(c: VfioContainer): KGen<void> {
  yield* krefGet(c.kref);
}

export function* vfioContainerPut(c: VfioContainer): KGen<void> {
  yield* krefPut(c.kref, function* () {
    c.kernel.event('vfio_container_free', { container: c.id });
  });
}

export function vfioDeviceContainerRegister(device: VfioDevice): void {
  const c = device.group!.container!;
  if (c.iommuDriver?.registerDevice) c.iommuDriver.registerDevice(c.iommuData, device);
}

export function vfioDeviceContainerUnregister(device: VfioDevice): void {
  const c = device.group!.container!;
  if (c.iommuDriver?.unregisterDevice) c.iommuDriver.unregisterDevice(c.iommuData, device);
}

/** VFIO_CHECK_EXTENSION on the container (never fails). */
function* vfioContainerIoctlCheckExtension(container: VfioContainer, arg: bigint): KGen<number> {
  const k = container.kernel;
  let ret = 0;
  yield* downRead(container.groupLock);
  const driver = container.iommuDriver;
  if (!driver) {
    const st = containerState(k);
    yield* mutexLock(st.iommuDriversLock);
    for (const d of st.iommuDrivers) {
      if (container.groupList.length > 0 && !vfioIommuDriverAllowed(container, d)) continue;
      ret = yield* d.ioctl(null, U.VFIO_CHECK_EXTENSION, arg);
      if (ret > 0) break;
    }
    yield* mutexUnlock(st.iommuDriversLock);
  } else ret = yield* driver.ioctl(container.iommuData, U.VFIO_CHECK_EXTENSION, arg);
  yield* upRead(container.groupLock);
  return ret;
}

/** __vfio_container_attach_groups (write lock held); unwinds on failure. */
function* vfioContainerAttachGroups(container: VfioContainer, driver: VfioIommuDriverOps, data: unknown): KGen<number> {
  let ret = -ENODEV;
  const done: VfioGroup[] = [];
  for (const group of container.groupList) {
    ret = yield* driver.attachGroup(data, group.iommuGroup!, group.type);
    if (ret) {
      for (const g of done.reverse()) yield* driver.detachGroup(data, g.iommuGroup!);
      return ret;
    }
    done.push(group);
  }
  return ret;
}

/** VFIO_SET_IOMMU */
export const vfioIoctlSetIommu = kfn(
  'vfio_ioctl_set_iommu',
  function* (container: VfioContainer, arg: bigint): KGen<number> {
    const k = container.kernel;
    let ret = -ENODEV;
    yield* downWrite(container.groupLock);
    // only a container with groups may enable an IOMMU (there is no unset)
    if (container.groupList.length === 0 || container.iommuDriver) {
      yield* upWrite(container.groupLock);
      return -EINVAL;
    }
    const st = containerState(k);
    yield* mutexLock(st.iommuDriversLock);
    for (const driver of st.iommuDrivers) {
      if (!vfioIommuDriverAllowed(container, driver)) continue;
      if ((yield* driver.ioctl(null, U.VFIO_CHECK_EXTENSION, arg)) <= 0) continue;
      const o = yield* driver.open(k, arg);
      if ('err' in o) {
        ret = o.err;
        continue;
      }
      ret = yield* vfioContainerAttachGroups(container, driver, o.data);
      if (ret) {
        yield* driver.release(o.data);
        continue;
      }
      container.iommuDriver = driver;
      container.iommuData = o.data;
      break;
    }
    yield* mutexUnlock(st.iommuDriversLock);
    yield* upWrite(container.groupLock);
    if (ret === 0) k.event('container_set_iommu', { container: container.id, backend: container.iommuDriver?.name, type: Number(arg) });
    return ret;
  },
);

/** vfio_fops_unl_ioctl */
function* vfioFopsUnlIoctl(file: File, cmd: number, arg: bigint): KGen<number> {
  const container = file.privateData as VfioContainer | null;
  if (!container) return -EINVAL;
  switch (cmd) {
    case U.VFIO_GET_API_VERSION:
      return U.VFIO_API_VERSION;
    case U.VFIO_CHECK_EXTENSION:
      return yield* vfioContainerIoctlCheckExtension(container, arg);
    case U.VFIO_SET_IOMMU:
      return yield* vfioIoctlSetIommu(container, arg);
    default: {
      const driver = container.iommuDriver;
      // passthrough all unrecognized ioctls; without a backend the answer is EINVAL
      if (driver) return yield* driver.ioctl(container.iommuData, cmd, arg);
      return -EINVAL;
    }
  }
}

/** vfio_fops_open: every open is a new, empty container. */
function* vfioFopsOpen(_inode: Inode, file: File): KGen<number> {
  const k = current().kernel as Kernel;
  const c = new VfioContainer(k);
  file.privateData = c;
  k.event('vfio_container_open', { container: c.id });
  return 0;
}

/** vfio_fops_release: attached groups keep the container (and its mappings) alive. */
function* vfioFopsRelease(_inode: Inode, file: File): KGen<void> {
  const c = file.privateData as VfioContainer;
  file.privateData = null;
  yield* vfioContainerPut(c);
}

export const vfioFops: FileOperations = {
  name: 'vfio_fops',
  open: vfioFopsOpen,
  release: vfioFopsRelease,
  unlockedIoctl: vfioFopsUnlIoctl,
};

/** vfio_container_from_file */
export function vfioContainerFromFile(file: File): VfioContainer | null {
  if (file.fOp !== vfioFops) return null;
  return file.privateData as VfioContainer;
}

/** vfio_container_init: the misc device /dev/vfio/vfio (10:196, 0666) and the noiommu backend. */
export function vfioContainerInit(k: Kernel): void {
  miscRegister(k, { name: 'vfio', minor: VFIO_MINOR, fops: vfioFops, nodename: 'vfio/vfio', mode: 0o666 });
  vfioRegisterIommuDriver(k, vfioNoiommuOps);
}

/** vfio_iommu_type1 module init */
export function vfioIommuType1Init(k: Kernel): void {
  vfioRegisterIommuDriver(k, vfioIommuType1Ops);
}

/** vfio_container_attach_group (group lock held) */
export const vfioContainerAttachGroup = kfn(
  'vfio_container_attach_group',
  function* (container: VfioContainer, group: VfioGroup): KGen<number> {
    lockdepAssertHeld(group.groupLock);
    if (group.type === VfioGroupType.VFIO_NO_IOMMU && !capable('CAP_SYS_RAWIO')) return -EPERM;
    let ret = 0;
    yield* downWrite(container.groupLock);
    out: {
      // real groups and fake groups cannot mix
      if (container.groupList.length > 0 && container.noiommu !== (group.type === VfioGroupType.VFIO_NO_IOMMU)) {
        ret = -EPERM;
        break out;
      }
      if (group.type === VfioGroupType.VFIO_IOMMU) {
        ret = yield* iommuGroupClaimDmaOwner(group.iommuGroup!, group);
        if (ret) break out;
      }
      const driver = container.iommuDriver;
      if (driver) {
        ret = yield* driver.attachGroup(container.iommuData, group.iommuGroup!, group.type);
        if (ret) {
          if (group.type === VfioGroupType.VFIO_IOMMU)
            yield* iommuGroupReleaseDmaOwner(group.iommuGroup!, (m) => container.kernel.warn(m));
          break out;
        }
      }
      group.container = container;
      group.containerUsers = 1;
      container.noiommu = group.type === VfioGroupType.VFIO_NO_IOMMU;
      container.groupList.push(group);
      yield* vfioContainerGet(container);
    }
    yield* upWrite(container.groupLock);
    if (!ret) container.kernel.event('container_attach_group', { container: container.id, group: group.name });
    return ret;
  },
);

/** vfio_group_detach_container (group lock held; container_users must be 1) */
export const vfioGroupDetachContainer = kfn(
  'vfio_group_detach_container',
  function* (group: VfioGroup): KGen<void> {
    const container = group.container!;
    const k = container.kernel;
    lockdepAssertHeld(group.groupLock);
    if (group.containerUsers !== 1) k.warn(`vfio_group_detach_container: ${group.name} has ${group.containerUsers} users`);
    yield* downWrite(container.groupLock);
    const driver = container.iommuDriver;
    if (driver) yield* driver.detachGroup(container.iommuData, group.iommuGroup!);
    if (group.type === VfioGroupType.VFIO_IOMMU) yield* iommuGroupReleaseDmaOwner(group.iommuGroup!, (m) => k.warn(m));
    group.container = null;
    group.containerUsers = 0;
    const i = container.groupList.indexOf(group);
    if (i >= 0) container.groupList.splice(i, 1);
    // detaching the last group deprivileges the container: the backend (and all mappings) go
    if (driver && container.groupList.length === 0) {
      yield* driver.release(container.iommuData);
      container.iommuDriver = null;
      container.iommuData = null;
      k.event('container_backend_released', { container: container.id });
    }
    yield* upWrite(container.groupLock);
    k.event('container_detach_group', { container: container.id, group: group.name });
    yield* vfioContainerPut(container);
  },
);

/** vfio_group_use_container: a first device open pins the group file (container mode). */
export const vfioGroupUseContainer = kfn('vfio_group_use_container', function* (group: VfioGroup): KGen<number> {
  lockdepAssertHeld(group.groupLock);
  // SET_CONTAINER done but VFIO_SET_IOMMU not yet
  if (!group.container!.iommuDriver) return -EINVAL;
  if (group.type === VfioGroupType.VFIO_NO_IOMMU && !capable('CAP_SYS_RAWIO')) return -EPERM;
  yield* getFile(group.openedFile!);
  group.containerUsers++;
  group.kernel.event('group_file_get', { group: group.name, container_users: group.containerUsers });
  return 0;
});

/** vfio_group_unuse_container: the group file reference goes (its release may follow). */
export const vfioGroupUnuseContainer = kfn('vfio_group_unuse_container', function* (group: VfioGroup): KGen<void> {
  lockdepAssertHeld(group.groupLock);
  if (group.containerUsers <= 1) group.kernel.warn(`vfio_group_unuse_container: ${group.name} users ${group.containerUsers}`);
  group.containerUsers--;
  group.kernel.event('group_file_put', { group: group.name, container_users: group.containerUsers });
  yield* fput(group.openedFile!);
});
