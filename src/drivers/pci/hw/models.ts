// Which hardware model a simulated function gets: a specific model by vendor:device, otherwise
// the generic one (RAM-like BARs): QEMU's edu (1234:11e8) and an Intel IOAT DMA channel
// (8086:2021, ioat.ts). Other models register here with pciHwRegister.

import type { Kernel } from '../../../kernel/kernel.js';
import type { PciDev } from '../pci.js';
import { EduPciHw } from './edu.js';
import { GenericPciHw } from './generic.js';
import { IoatPciHw } from './ioat.js';
import type { PciHw } from './hw.js';

type Factory = (k: Kernel, pdev: PciDev) => PciHw;

const factories = new Map<string, Factory>([
  ['1234:11e8', (k, d) => new EduPciHw(k, d)],
  ['8086:2021', (k, d) => new IoatPciHw(k, d)],
]);

const key = (vendor: number, device: number) => `${vendor.toString(16).padStart(4, '0')}:${device.toString(16).padStart(4, '0')}`;

/** Register a model for vendor:device (functions added afterwards get it). */
export function pciHwRegister(vendor: number, device: number, f: Factory): void {
  factories.set(key(vendor, device), f);
}

/** The model for a function being added to its bus. */
export function pciHwCreate(k: Kernel, pdev: PciDev): PciHw {
  const f = factories.get(key(pdev.vendor, pdev.device));
  return f ? f(k, pdev) : new GenericPciHw(k, pdev);
}
