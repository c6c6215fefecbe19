// drivers/vfio/pci/vfio_pci_core.c: the reset ioctls — VFIO_DEVICE_RESET (a function reset with
// the device's BAR mappings zapped under the memory lock), VFIO_DEVICE_GET_PCI_HOT_RESET_INFO (the
// functions a slot or bus reset would hit: IOMMU group ids for group users, devids and the OWNED
// rules for iommufd/cdev users) and VFIO_DEVICE_PCI_HOT_RESET (with group fds, or a zero-length
// array for cdev users) over the function's device set (vfio_pci_dev_set_hot_reset).

import { EAGAIN, EBADF, EBUSY, EFAULT, EINVAL, ENODEV, ENOENT, ENOSPC, EPERM, ERANGE } from '../kernel/errno.js';
import { currentMm, currentProcess } from '../kernel/current.js';
import { File, fput } from '../kernel/fs/file.js';
import { KGen } from '../kernel/sched.js';
import { downWriteTrylock, mutexLock, mutexUnlock, upWrite } from '../kernel/sync.js';
import { fdget } from '../kernel/syscalls.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import { vfioFileHasDev, vfioFileIsGroup } from '../vfio/group.js';
import { IommufdCtx } from '../iommufd/iommufd.js';
import { vfioIommufdDeviceIctx, vfioIommufdGetDevId } from '../vfio/iommufd.js';
import { VfioDevice, VfioDeviceSet } from '../vfio/vfio.js';
import { vfioFindDeviceInDevset } from '../vfio/vfio_main.js';
import { PCI_D0, PciDev, pciDevicesAffectedByReset, pciProbeResetBus, pciProbeResetSlot, pciResetBus, pciTryResetFunction } from './pci/pci.js';
import {
  VfioPciCoreDevice, toCore, vfioPciDevSetResettable, vfioPciSetPowerState, vfioPciZapAndDownWriteMemoryLock,
  vfioPciZapBars,
} from './vfio_pci_core.js';

/** VFIO_DEVICE_RESET (vfio_pci_ioctl_reset): the argument is not read. */
export function* vfioPciIoctlReset(vdev: VfioPciCoreDevice): KGen<number> {
  if (!vdev.resetWorks) return -EINVAL;
  yield* vfioPciZapAndDownWriteMemoryLock(vdev);
  // the reset may run while the function is not in D0
  yield* vfioPciSetPowerState(vdev, PCI_D0);
  const ret = yield* pciTryResetFunction(vdev.vdev.kernel, vdev.pdev);
  yield* upWrite(vdev.memoryLock);
  vdev.vdev.kernel.event('vfio_device_reset', { device: vdev.pdev.name, ret });
  return ret;
}

/** Slot reset possible: true; else bus reset possible: false; else -ENODEV. */
function resetScope(pdev: PciDev): boolean | number {
  if (pciProbeResetSlot(pdev.slot) === 0) return true;
  if (pciProbeResetBus(pdev.bus) !== 0) return -ENODEV;
  return false;
}

/** vfio_pci_for_each_slot_or_bus: the functions below the slot, or on (and below) the bus. */
function slotOrBusDevices(pdev: PciDev, slot: boolean): PciDev[] {
  return pciDevicesAffectedByReset(pdev, slot);
}

/** VFIO_DEVICE_GET_PCI_HOT_RESET_INFO (vfio_pci_ioctl_get_pci_hot_reset_info) */
export function* vfioPciIoctlGetPciHotResetInfo(vdev: VfioPciCoreDevice, arg: number): KGen<number> {
  const S = U.vfio_pci_hot_reset_info;
  const D = U.vfio_pci_dependent_device;
  const minsz = offsetofend(S, 'count');
  const mm = currentMm();
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const hdr = new StructBuf(S, b);
  const argsz = hdr.get('argsz');
  if (argsz < minsz) return -EINVAL;
  hdr.set('flags', 0);
  const pdev = vdev.pdev;
  const slot = resetScope(pdev);
  if (typeof slot === 'number') return slot;
  const count = slotOrBusDevices(pdev, slot).length;
  if (!count) {
    vdev.vdev.kernel.warn(`${pdev.name}: no device in its own reset scope`);
    return -ERANGE;
  }
  let ret = 0;
  if (count > Math.floor((argsz - S.size) / D.size)) {
    hdr.set('count', count);
    ret = -ENOSPC;
  } else {
    const devices = new Uint8Array(count * D.size);
    let flags = 0;
    const device = vdev.vdev;
    if (device.cdevOpened) flags |= U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID | U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
    const devSet = device.devSet!;
    let filled = 0;
    yield* mutexLock(devSet.lock);
    for (const d of slotOrBusDevices(pdev, slot)) {
      // vfio_pci_fill_devs
      if (filled >= count) {
        ret = -EAGAIN; // the topology changed since we counted
        break;
      }
      const e = new StructBuf(D, devices.subarray(filled * D.size, (filled + 1) * D.size));
      filled++;
      e.set('segment', d.bus.domain).set('bus', d.bus.number).set('devfn', d.devfn);
      if (flags & U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID) {
        const ictx = vfioIommufdDeviceIctx(device);
        const other = vfioFindDeviceInDevset(devSet, d);
        let devid: number;
        if (!other || !ictx) devid = U.VFIO_PCI_DEVID_NOT_OWNED;
        else {
          const id = vfioIommufdGetDevId(other, ictx);
          devid = id > 0 ? id : id === -ENOENT ? U.VFIO_PCI_DEVID_OWNED : U.VFIO_PCI_DEVID_NOT_OWNED;
        }
        e.set('devid', devid);
        if (devid === U.VFIO_PCI_DEVID_NOT_OWNED) flags &= ~U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED;
      } else {
        const g = d.iommuGroup;
        if (!g) {
          ret = -EPERM; // cannot reset non-isolated devices
          break;
        }
        e.set('group_id', g.id);
      }
    }
    yield* mutexUnlock(devSet.lock);
    if (ret) return ret;
    if (copyToUser(mm, arg + S.size, devices.subarray(0, filled * D.size)) < 0) return -EFAULT;
    hdr.set('count', filled);
    hdr.set('flags', flags);
  }
  if (copyToUser(mm, arg, hdr.head(minsz)) < 0) ret = -EFAULT;
  return ret;
}

/** vfio_dev_in_groups */
function vfioDevInGroups(vdev: VfioDevice, groups: File[] | null): boolean {
  return !!groups && groups.some((f) => vfioFileHasDev(f, vdev));
}

/**
 * vfio_pci_dev_set_hot_reset: every member of the set must be owned by the caller (one of its
 * group files, or bound to — or in an IOMMU group owned by — its iommufd context) and have its
 * memory lock free; then the bus/slot is reset with every member's BAR mappings zapped.
 */
function* vfioPciDevSetHotReset(devSet: VfioDeviceSet, groups: File[] | null, ictx: IommufdCtx | null): KGen<number> {
  yield* mutexLock(devSet.lock);
  let ret = 0;
  const pdev = vfioPciDevSetResettable(devSet);
  if (!pdev) ret = -EINVAL;
  else {
    const locked: VfioPciCoreDevice[] = [];
    for (const device of devSet.deviceList) {
      const vdev = toCore(device);
      let owned: boolean;
      if (ictx) {
        const devid = vfioIommufdGetDevId(device, ictx);
        owned = devid > 0 || devid === -ENOENT;
      } else owned = vfioDevInGroups(device, groups);
      if (!owned) {
        ret = -EINVAL;
        break;
      }
      // lock every member's memory, zap its mappings; contention unwinds (no deadlock)
      if (!(yield* downWriteTrylock(vdev.memoryLock))) {
        ret = -EBUSY;
        break;
      }
      locked.push(vdev);
      vfioPciZapBars(vdev);
    }
    if (!ret) {
      for (const vdev of locked) yield* vfioPciSetPowerState(vdev, PCI_D0);
      ret = yield* pciResetBus(devSet.deviceList[0]!.kernel, pdev);
    }
    for (const vdev of locked.reverse()) yield* upWrite(vdev.memoryLock);
  }
  yield* mutexUnlock(devSet.lock);
  return ret;
}

/** vfio_pci_ioctl_pci_hot_reset_groups */
function* vfioPciIoctlPciHotResetGroups(vdev: VfioPciCoreDevice, arrayCount: number, slot: boolean, arg: number): KGen<number> {
  const count = slotOrBusDevices(vdev.pdev, slot).length;
  // one group per affected device at most
  if (arrayCount > count) return -EINVAL;
  const b = copyFromUser(currentMm(), arg + U.vfio_pci_hot_reset.size, arrayCount * 4);
  if (typeof b === 'number') return -EFAULT;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const proc = currentProcess();
  const files: File[] = [];
  let ret = 0;
  // hold every group file across the reset
  for (let i = 0; i < arrayCount; i++) {
    const fd = dv.getInt32(4 * i, true);
    const file = fd >= 0 && proc ? yield* fdget(proc, fd) : null;
    if (!file) {
      ret = -EBADF;
      break;
    }
    if (!vfioFileIsGroup(file)) {
      yield* fput(file);
      ret = -EINVAL;
      break;
    }
    files.push(file);
  }
  if (!ret) ret = yield* vfioPciDevSetHotReset(vdev.vdev.devSet!, files, null);
  for (const f of files.reverse()) yield* fput(f);
  return ret;
}

/** VFIO_DEVICE_PCI_HOT_RESET (vfio_pci_ioctl_pci_hot_reset) */
export function* vfioPciIoctlPciHotReset(vdev: VfioPciCoreDevice, arg: number): KGen<number> {
  const S = U.vfio_pci_hot_reset;
  const minsz = offsetofend(S, 'count');
  const b = copyFromUser(currentMm(), arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const hdr = new StructBuf(S, b);
  if (hdr.get('argsz') < minsz || hdr.get('flags')) return -EINVAL;
  const count = hdr.get('count');
  // a zero-length array is only for cdev-opened devices
  if ((count !== 0) === vdev.vdev.cdevOpened) return -EINVAL;
  const slot = resetScope(vdev.pdev);
  if (typeof slot === 'number') return slot;
  if (count) return yield* vfioPciIoctlPciHotResetGroups(vdev, count, slot, arg);
  const ret = yield* vfioPciDevSetHotReset(vdev.vdev.devSet!, null, vfioIommufdDeviceIctx(vdev.vdev));
  return ret;
}
