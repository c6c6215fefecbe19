// drivers/pci/rom.c: the expansion ROM as the kernel maps it — enable decoding of the ROM BAR,
// walk the images (55 AA header, "PCIR" data structure, length, last-image bit) to find the true
// size of the ROM, which may be smaller than the BAR.

import type { PciDev } from './pci.js';
import { pciReadConfigDword, pciWriteConfigDword } from './config_space.js';
import { PCI_ROM_ADDRESS_ENABLE, pciHwIoRead, romBaseReg } from './hw/hw.js';

const PCI_ROM_ADDRESS_MASK = ~0x7ff;
const PCI_ROM_HEADER_SIZE = 0x1a;
const PCI_ROM_POINTER_TO_DATA_STRUCT = 0x18;
const PCI_ROM_LAST_IMAGE_INDICATOR = 0x15;
const PCI_ROM_IMAGE_LEN = 0x10;
const PCI_ROM_IMAGE_SECTOR_SIZE = 512;
const PCI_ROM_IMAGE_SIGNATURE = 0xaa55;
const PCI_ROM_DATA_STRUCT_SIGNATURE = 0x52494350;
const PCI_ROM_DATA_STRUCT_LEN = 0x0a;
const PCI_ROM_DATA_STRUCT_MIN_LEN = 0x18;

/** pci_enable_rom: the ROM BAR's address with its enable bit */
export function pciEnableRom(pdev: PciDev): number {
  const res = pdev.resources[6];
  if (!res) return -1;
  const reg = romBaseReg(pdev);
  let a = pciReadConfigDword(pdev, reg);
  a &= ~PCI_ROM_ADDRESS_MASK;
  a |= Number(res.start & 0xfffff800n) | PCI_ROM_ADDRESS_ENABLE;
  pciWriteConfigDword(pdev, reg, a >>> 0);
  return 0;
}

/** pci_disable_rom */
export function pciDisableRom(pdev: PciDev): void {
  const reg = romBaseReg(pdev);
  pciWriteConfigDword(pdev, reg, (pciReadConfigDword(pdev, reg) & ~PCI_ROM_ADDRESS_ENABLE) >>> 0);
}

const rd = (pdev: PciDev, off: number, size: 1 | 2 | 4) => Number(pciHwIoRead(pdev, 6, off, size));

/** pci_rom_header_valid */
function headerValid(pdev: PciDev, image: number, size: number): boolean {
  if (image % PCI_ROM_IMAGE_SECTOR_SIZE) return false;
  if (image < 0 || image + PCI_ROM_HEADER_SIZE - 1 > size - 1) return false;
  return rd(pdev, image, 2) === PCI_ROM_IMAGE_SIGNATURE;
}

/** pci_rom_data_struct_valid */
function dataStructValid(pdev: PciDev, pds: number, size: number): boolean {
  if (pds % 4) return false;
  if (pds < 0 || pds + PCI_ROM_DATA_STRUCT_LEN + 1 > size - 1) return false;
  if (rd(pdev, pds, 4) >>> 0 !== PCI_ROM_DATA_STRUCT_SIGNATURE) return false;
  const len = rd(pdev, pds + PCI_ROM_DATA_STRUCT_LEN, 2);
  if (len < PCI_ROM_DATA_STRUCT_MIN_LEN || len === 0xffff) return false;
  return pds + len - 1 <= size - 1;
}

/** pci_get_rom_size: the images' total length, at most the BAR */
export function pciGetRomSize(pdev: PciDev, size: number): number {
  let image = 0;
  let length = 0;
  let last = false;
  do {
    if (!headerValid(pdev, image, size)) break;
    const pds = image + rd(pdev, image + PCI_ROM_POINTER_TO_DATA_STRUCT, 2);
    if (!dataStructValid(pdev, pds, size)) break;
    last = (rd(pdev, pds + PCI_ROM_LAST_IMAGE_INDICATOR, 1) & 0x80) !== 0;
    length = rd(pdev, pds + PCI_ROM_IMAGE_LEN, 2);
    image += length * PCI_ROM_IMAGE_SECTOR_SIZE;
    if (!last && !headerValid(pdev, image, size)) break;
  } while (length && !last);
  return Math.min(image, size);
}

/**
 * pci_map_rom: ROM decoding on and the true ROM size, or null (no ROM BAR, or no valid image —
 * decoding is then switched off again). Reads go through pciHwIoRead(pdev, 6, ...).
 */
export function pciMapRom(pdev: PciDev): number | null {
  const res = pdev.resources[6];
  if (!res || res.size === 0n) return null;
  if (pciEnableRom(pdev)) return null;
  const size = pciGetRomSize(pdev, Number(res.size));
  if (!size) {
    pciDisableRom(pdev);
    return null;
  }
  return size;
}

/** pci_unmap_rom: decoding off again (no ROM is left enabled by firmware here) */
export function pciUnmapRom(pdev: PciDev): void {
  pciDisableRom(pdev);
}
