// Host kernel drivers that are not VFIO: a function bound to one of them is in use by the kernel.
// Drivers that do DMA through the DMA API (e1000e, nvme, ahci, ...) make their IOMMU group
// non-viable; pcieport and pci-stub declare driver_managed_dma and do not.

import { KGen } from '../kernel/sched.js';
import { PciDev, PciDriver } from './pci/pci.js';

/** Drivers known to set driver_managed_dma (drivers/pci/pcie/portdrv.c, drivers/pci/pci-stub.c). */
export const DRIVER_MANAGED_DMA = new Set(['pcieport', 'pci-stub', 'vfio-pci']);

/**
 * A host driver named `name` that claims the functions listed for it (by BDF) in the topology:
 * this model does not ship ID tables, so a function's topology entry says which driver owns it.
 */
export function kernelPciDriver(name: string, claims: Set<string>): PciDriver {
  return {
    name,
    driverManagedDma: DRIVER_MANAGED_DMA.has(name),
    match: (pdev: PciDev) => claims.has(pdev.name),
    *probe(): KGen<number> {
      return 0;
    },
    *remove(): KGen<void> {},
  };
}
