// drivers/vfio/pci/vfio_pci.c: the vfio-pci PCI driver — probe/remove and its vfio_device_ops.
// It matches only devices whose driver_override is "vfio-pci" (its one ID entry is override-only).

import { EINVAL, ENOENT } from '../kernel/errno.js';
import { Kernel } from '../kernel/kernel.js';
import { KGen } from '../kernel/sched.js';
import { PciDev, PciDriver } from './pci/pci.js';
import { VfioDevice, VfioDeviceOps } from '../vfio/vfio.js';
import { vfioAllocDevice, vfioPutDevice } from '../vfio/vfio_main.js';
import {
  vfioIommufdPhysicalAttachIoas, vfioIommufdPhysicalBind, vfioIommufdPhysicalDetachIoas,
  vfioIommufdPhysicalPasidAttachIoas, vfioIommufdPhysicalPasidDetachIoas, vfioIommufdPhysicalUnbind,
} from '../vfio/iommufd.js';
import {
  VfioPciCoreDevice, toCore, vfioPciCoreCloseDevice, vfioPciCoreEnable, vfioPciCoreFinishEnable, vfioPciCoreIoctl,
  vfioPciCoreIoctlFeature, vfioPciCoreMatch, vfioPciCoreMatchTokenUuid, vfioPciCoreMmap, vfioPciCoreRead,
  vfioPciCoreRegisterDevice, vfioPciCoreRequest, vfioPciCoreSriovConfigure, vfioPciCoreUnregisterDevice, vfioPciCoreWrite,
  vfioPciIoctlGetRegionInfo,
  setVfioPciIntxOps,
} from './vfio_pci_core.js';
import { vfioIntxMask, vfioIntxUnmask } from './vfio_pci_intrs.js';

/** vfio-pci module parameters */
export interface VfioPciParams {
  nointxmask: boolean;
  disableVga: boolean;
  disableIdleD3: boolean;
  enableSriov: boolean;
  disableDenylist: boolean;
}

export function vfioPciParams(k: Kernel): VfioPciParams {
  return k.state<VfioPciParams>('vfio_pci', () => ({
    nointxmask: false,
    disableVga: false,
    disableIdleD3: false,
    enableSriov: false,
    disableDenylist: false,
  }));
}

const INTEL = 0x8086;
/** QAT C3XXX/C62X/DH895XCC (PF and VF), DSA SPR0, IAX SPR0 */
const DENYLIST = new Set([0x19e2, 0x19e3, 0x37c8, 0x37c9, 0x0435, 0x0443, 0x0b25, 0x0cfe]);

/** vfio_pci_is_denylisted */
function vfioPciIsDenylisted(k: Kernel, pdev: PciDev): boolean {
  if (pdev.vendor !== INTEL || !DENYLIST.has(pdev.device)) return false;
  if (vfioPciParams(k).disableDenylist) {
    k.printk(`${pdev.name}: device denylist disabled - allowing device`);
    return false;
  }
  k.printk(`${pdev.name}: exists in vfio-pci device denylist, driver probing disallowed`);
  return true;
}

/** vfio_pci_open_device (no Intel graphics: no IGD regions to add) */
function* vfioPciOpenDevice(vdev: VfioDevice): KGen<number> {
  const core = toCore(vdev);
  const ret = yield* vfioPciCoreEnable(core);
  if (ret) return ret;
  yield* vfioPciCoreFinishEnable(core);
  return 0;
}

export const vfioPciOps: VfioDeviceOps = {
  name: 'vfio-pci',
  *init(vdev: VfioDevice) {
    return 0;
  },
  openDevice: vfioPciOpenDevice,
  closeDevice: (vdev) => vfioPciCoreCloseDevice(toCore(vdev)),
  ioctl: (vdev, cmd, arg) => vfioPciCoreIoctl(toCore(vdev), cmd, arg),
  getRegionInfoCaps: (vdev, info, caps) => vfioPciIoctlGetRegionInfo(toCore(vdev), info, caps),
  deviceFeature: (vdev, flags, data, argsz) => vfioPciCoreIoctlFeature(toCore(vdev), flags, data, argsz),
  read: (vdev, buf, count, pos) => vfioPciCoreRead(toCore(vdev), buf, count, pos),
  write: (vdev, buf, count, pos) => vfioPciCoreWrite(toCore(vdev), buf, count, pos),
  mmap: (vdev, vma) => vfioPciCoreMmap(toCore(vdev), vma),
  request: (vdev, count) => vfioPciCoreRequest(toCore(vdev), count),
  match: (vdev, buf) => vfioPciCoreMatch(toCore(vdev), buf),
  matchTokenUuid: (vdev, uuid) => vfioPciCoreMatchTokenUuid(toCore(vdev), uuid),
  bindIommufd: vfioIommufdPhysicalBind,
  unbindIommufd: vfioIommufdPhysicalUnbind,
  attachIoas: vfioIommufdPhysicalAttachIoas,
  detachIoas: vfioIommufdPhysicalDetachIoas,
  pasidAttachIoas: vfioIommufdPhysicalPasidAttachIoas,
  pasidDetachIoas: vfioIommufdPhysicalPasidDetachIoas,
};

/** The vfio-pci struct pci_driver. */
export function vfioPciDriver(k: Kernel): PciDriver {
  // the INTx half of vfio_pci_intrs.c that config-space INTx-disable writes reach
  setVfioPciIntxOps({ mask: vfioIntxMask, unmask: vfioIntxUnmask });
  return {
    name: 'vfio-pci',
    driverManagedDma: true,
    // PCI_DRIVER_OVERRIDE_DEVICE_VFIO: matches only through driver_override
    match: () => false,
    /** vfio_pci_probe */
    *probe(pdev: PciDev) {
      if (vfioPciIsDenylisted(k, pdev)) return -EINVAL;
      const vdev = yield* vfioAllocDevice(k, pdev, vfioPciOps);
      if (typeof vdev === 'number') return vdev;
      const core = new VfioPciCoreDevice(pdev);
      core.vdev = vdev;
      vdev.drv = core;
      pdev.drvdata = core;
      const ret = yield* vfioPciCoreRegisterDevice(core);
      if (ret) {
        pdev.drvdata = null;
        yield* vfioPutDevice(vdev);
        return ret;
      }
      return 0;
    },
    /** vfio_pci_remove */
    *remove(pdev: PciDev) {
      const core = pdev.drvdata as VfioPciCoreDevice;
      yield* vfioPciCoreUnregisterDevice(core);
      yield* vfioPutDevice(core.vdev);
    },
    /** vfio_pci_sriov_configure: only with the enable_sriov module parameter */
    *sriovConfigure(pdev: PciDev, nrVirtfn: number) {
      if (!vfioPciParams(k).enableSriov) return -ENOENT;
      return yield* vfioPciCoreSriovConfigure(pdev.drvdata as VfioPciCoreDevice, nrVirtfn);
    },
  };
}
