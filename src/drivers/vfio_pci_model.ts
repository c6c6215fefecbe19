// The device model behind vfio-pci's data path (config space, BAR access, mmap, features): the
// pieces of vfio_pci_config.c / vfio_pci_rdwr.c / vfio_pci_intrs.c a device model plugs in.

import { Pos, VmArea } from '../kernel/fs/file.js';
import { KGen } from '../kernel/sched.js';
import type { VfioPciCoreDevice } from './vfio_pci_core.js';

export interface VfioPciDeviceModel {
  /** per-open setup (virtual config space, BAR maps); an error fails the open */
  open(vdev: VfioPciCoreDevice): KGen<number>;
  /** per-close teardown (interrupts off, ...) */
  close(vdev: VfioPciCoreDevice): KGen<void>;
  rw(vdev: VfioPciCoreDevice, buf: number, count: number, pos: Pos, write: boolean): KGen<number>;
  mmap(vdev: VfioPciCoreDevice, vma: VmArea): KGen<number>;
  deviceFeature(vdev: VfioPciCoreDevice, flags: number, data: number, argsz: number): KGen<number>;
}

let model: VfioPciDeviceModel | null = null;

export function setVfioPciDeviceModel(m: VfioPciDeviceModel): void {
  model = m;
}

export function vfioPciDeviceModel(): VfioPciDeviceModel | null {
  return model;
}
