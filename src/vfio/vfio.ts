// VFIO core objects (include/linux/vfio.h, drivers/vfio/vfio.h): vfio_device, vfio_device_set,
// vfio_device_file, vfio_group, and the driver callback table vfio_device_ops.

import { KDevice } from '../kernel/device.js';
import { Cdev } from '../kernel/fs/chrdev.js';
import { File, Pos, VmArea } from '../kernel/fs/file.js';
import { Inode } from '../kernel/fs/file.js';
import { Kernel } from '../kernel/kernel.js';
import { KGen, KObject } from '../kernel/sched.js';
import { Atomic, Completion, Kref, Mutex, Refcount } from '../kernel/sync.js';
import { IommuGroup } from '../iommu/iommu.js';
import type { IommufdCtx, IommufdDevice } from '../iommufd/iommufd.js';
import type { VfioContainer } from './container.js';
import type { VfioInfoCap } from './vfio_main.js';

/** The physical device a vfio_device wraps (a PCI function), as the core needs it. */
export interface VfioParentDevice {
  readonly name: string;
  readonly kdev: KDevice;
  iommuGroup: IommuGroup | null;
  /** the bound driver (its "module" can be going away) */
  driver: { readonly name: string } | null;
}

/** struct vfio_device_ops: the driver callbacks. Missing ones behave as the core's NULL checks. */
export interface VfioDeviceOps {
  readonly name: string;
  init?(vdev: VfioDevice): KGen<number>;
  release?(vdev: VfioDevice): void;
  bindIommufd?(vdev: VfioDevice, ictx: IommufdCtx, outDevid: { v: number }): KGen<number>;
  unbindIommufd?(vdev: VfioDevice): KGen<void>;
  attachIoas?(vdev: VfioDevice, ptId: { v: number }): KGen<number>;
  detachIoas?(vdev: VfioDevice): KGen<void>;
  pasidAttachIoas?(vdev: VfioDevice, pasid: number, ptId: { v: number }): KGen<number>;
  pasidDetachIoas?(vdev: VfioDevice, pasid: number): KGen<void>;
  openDevice?(vdev: VfioDevice): KGen<number>;
  closeDevice?(vdev: VfioDevice): KGen<void>;
  read?(vdev: VfioDevice, buf: number, count: number, pos: Pos): KGen<number>;
  write?(vdev: VfioDevice, buf: number, count: number, pos: Pos): KGen<number>;
  ioctl?(vdev: VfioDevice, cmd: number, arg: bigint): KGen<number>;
  getRegionInfoCaps?(vdev: VfioDevice, info: import('../uapi/layout.js').StructBuf<string>, caps: VfioInfoCap): KGen<number>;
  deviceFeature?(vdev: VfioDevice, flags: number, dataPtr: number, argsz: number): KGen<number>;
  mmap?(vdev: VfioDevice, vma: VmArea): KGen<number>;
  request?(vdev: VfioDevice, count: number): KGen<void>;
  match?(vdev: VfioDevice, buf: string): KGen<number>;
  matchTokenUuid?(vdev: VfioDevice, uuid: Uint8Array | null): KGen<number>;
}

export enum VfioGroupType {
  /** physical device with IOMMU backing */
  VFIO_IOMMU = 0,
  /** virtual device without IOMMU backing (mdev-style) */
  VFIO_EMULATED_IOMMU = 1,
  /** physical device without IOMMU backing (noiommu, taints) */
  VFIO_NO_IOMMU = 2,
}

/** struct vfio_device_set */
export class VfioDeviceSet extends KObject {
  readonly lock: Mutex;
  readonly deviceList: VfioDevice[] = [];
  deviceCount = 0;
  constructor(
    readonly setId: unknown,
    label: string,
  ) {
    super(`dev_set(${label})`);
    this.lock = new Mutex(`dev_set(${label})->lock`);
  }
}

/** struct vfio_device */
export class VfioDevice extends KObject {
  readonly kernel: Kernel;
  readonly dev: VfioParentDevice;
  readonly ops: VfioDeviceOps;
  index = -1;
  /** the class device vfio<index> (class vfio-dev) */
  device!: KDevice;
  cdev: Cdev | null = null;
  /** registration refcount: 0 until registered, 1 for the registration, +1 per device file */
  readonly refcount: Refcount;
  /** completed when the registration refcount drops to 0 (unregister waits on it) */
  readonly comp: Completion;
  /** memory lifetime (the embedded struct device's kobject) */
  readonly kref: Kref;
  /** opens of the device across its files; under dev_set->lock */
  openCount = 0;
  devSet: VfioDeviceSet | null = null;
  group: VfioGroup | null = null;
  cdevOpened = false;
  iommufdDevice: IommufdDevice | null = null;
  iommufdAttached = false;
  readonly pasids = new Set<number>();
  kvm: unknown = null;
  precopyInfoV2 = 0;
  /** per-device inode: every device file's mappings share it (unmap_mapping_range) */
  readonly inodeId: number;
  /** driver private (e.g. the vfio-pci core device) */
  drv: unknown = null;
  registered = false;
  released = false;
  /**
   * The driver's state of an open device: set when open_device has run (first open), cleared
   * before close_device tears it down (last close). Device accesses read it with READ_ONCE, a
   * visible operation, so that the explorer sees an access racing with a teardown.
   */
  readonly openState: Atomic<boolean>;

  constructor(kernel: Kernel, dev: VfioParentDevice, ops: VfioDeviceOps, inodeId: number) {
    super(`vfio_device(${dev.name})`);
    this.kernel = kernel;
    this.dev = dev;
    this.ops = ops;
    this.inodeId = inodeId;
    this.refcount = new Refcount(`vfio_device(${dev.name})->refcount`, 0);
    this.comp = new Completion(`vfio_device(${dev.name})->comp`);
    this.kref = new Kref(`vfio_device(${dev.name})->device.kobj`, 1);
    this.openState = new Atomic<boolean>(`vfio_device(${dev.name}) driver state`, false);
  }
}

/** struct vfio_device_file: the private data of every device file. */
export class VfioDeviceFile extends KObject {
  readonly device: VfioDevice;
  /** non-null iff the file came from VFIO_GROUP_GET_DEVICE_FD */
  group: VfioGroup | null = null;
  /** 0 = blocked, 1 = usable; published with release, read with acquire; never goes back */
  readonly accessGranted: Atomic<boolean>;
  devid = 0;
  kvm: unknown = null;
  /** under dev_set->lock */
  iommufd: IommufdCtx | null = null;
  /** the struct file this df belongs to (set once the file exists) */
  file: File | null = null;
  constructor(device: VfioDevice) {
    super(`vfio_device_file(${device.dev.name})`);
    this.device = device;
    this.accessGranted = new Atomic<boolean>(`${this.label}->access_granted`, false);
  }
}

/** struct vfio_group */
export class VfioGroup extends KObject {
  readonly dev: KDevice;
  cdev!: Cdev;
  /** number of registered vfio_devices of this IOMMU group */
  readonly drivers: Refcount;
  containerUsers = 0;
  iommuGroup: IommuGroup | null;
  container: VfioContainer | null = null;
  readonly deviceList: VfioDevice[] = [];
  readonly deviceLock: Mutex;
  readonly type: VfioGroupType;
  readonly groupLock: Mutex;
  kvm: unknown = null;
  openedFile: File | null = null;
  iommufd: IommufdCtx | null = null;
  cdevDeviceOpenCnt = 0;
  /** group minor from the group IDA */
  minor = -1;
  readonly name: string;
  constructor(
    readonly kernel: Kernel,
    iommuGroup: IommuGroup,
    type: VfioGroupType,
  ) {
    const name = `${type === VfioGroupType.VFIO_NO_IOMMU ? 'noiommu-' : ''}${iommuGroup.id}`;
    super(`vfio_group ${name}`);
    this.name = name;
    this.iommuGroup = iommuGroup;
    this.type = type;
    this.dev = new KDevice(name);
    this.drivers = new Refcount(`vfio_group ${name}->drivers`, 1);
    this.groupLock = new Mutex(`vfio_group ${name}->group_lock`);
    this.deviceLock = new Mutex(`vfio_group ${name}->device_lock`);
  }
}

export type { Inode };
