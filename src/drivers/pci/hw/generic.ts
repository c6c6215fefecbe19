// A function without a specific model: every BAR is plain memory (what is stored reads back), the
// MSI-X table and PBA behave as the PCI spec resets them (every vector masked, nothing pending),
// and the expansion ROM, if the function has one, holds a valid PCI ROM image shorter than the
// ROM BAR. A function reset (FLR, PM, bus) clears the BARs back to their power-on contents.
// testdev, e1000e, nvme and igb use it: their BARs are RAM-like here, not the real registers.

import type { Kernel } from '../../../kernel/kernel.js';
import type { PciDev } from '../pci.js';
import { PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_ENTRY_VECTOR_CTRL } from '../config_space.js';
import { IoWidth, PciHw, getLe, putLe } from './hw.js';

export class GenericPciHw extends PciHw {
  /** BAR contents, allocated on first use (device memory for memory BARs, so it can be mapped) */
  private readonly bars: Array<Uint8Array | null> = [null, null, null, null, null, null];
  private romImage: Uint8Array | null | undefined = undefined;

  constructor(kernel: Kernel, pdev: PciDev) {
    super(kernel, pdev);
  }

  /** The storage of BAR `bar` (null for an unimplemented BAR). */
  barMemory(bar: number): Uint8Array | null {
    const r = this.pdev.resources[bar];
    if (bar > 5 || !r) return null;
    let m = this.bars[bar];
    if (!m) {
      m = r.type === 'mem' ? this.allocBarMemory(bar, Number(r.size)) : new Uint8Array(Number(r.size));
      this.bars[bar] = m;
      this.powerOn(bar, m);
    }
    return m;
  }

  read(bar: number, off: number, size: IoWidth): bigint {
    const m = this.barMemory(bar);
    if (!m || off + size > Number(this.pdev.resources[bar]!.size)) return (1n << BigInt(8 * size)) - 1n;
    return getLe(m, off, size);
  }

  write(bar: number, off: number, size: IoWidth, value: bigint): void {
    const m = this.barMemory(bar);
    if (!m || off + size > Number(this.pdev.resources[bar]!.size)) return;
    putLe(m, off, size, value);
  }

  override mmapMemory(bar: number): Uint8Array | null {
    const r = this.pdev.resources[bar];
    if (!r || r.type !== 'mem') return null;
    return this.barMemory(bar);
  }

  /** RAM-like BARs: a real process may map the memory itself (nothing to trap). */
  override mmapTrapped(bar: number): boolean {
    void bar;
    return false;
  }

  override reset(): void {
    this.bars.forEach((m, bar) => {
      if (!m) return;
      m.fill(0);
      this.powerOn(bar, m);
    });
  }

  override rom(): Uint8Array | null {
    if (this.romImage === undefined) {
      const r = this.pdev.resources[6];
      this.romImage = r ? pciRomImage(this.pdev, Number(r.size)) : null;
    }
    return this.romImage;
  }

  /** Power-on contents: MSI-X vectors masked (PCI spec: Mask Bit set after reset). */
  private powerOn(bar: number, m: Uint8Array): void {
    const x = this.pdev.msixCap;
    if (!x || x.tableBar !== bar) return;
    for (let v = 0; v < x.vectors; v++) {
      const at = x.tableOffset + v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
      if (at + 4 <= m.length) putLe(m, at, 4, BigInt(PCI_MSIX_ENTRY_CTRL_MASKBIT));
    }
  }
}

/**
 * A valid PCI expansion ROM of one image (PCI Firmware spec 3.x: 55 AA signature, a "PCIR" data
 * structure with the IDs and class, image length, last-image indicator, and a checksum making
 * the image sum to zero), three quarters of the ROM BAR long so that the space past the image
 * reads as erased flash (0xff).
 */
export function pciRomImage(pdev: PciDev, barSize: number): Uint8Array {
  const len = Math.max(512, Math.floor((barSize * 3) / 4 / 512) * 512);
  const img = new Uint8Array(len);
  img[0] = 0x55;
  img[1] = 0xaa;
  img[2] = Math.min(0xff, len / 512); // initialization size (legacy option ROM header)
  const pcir = 0x1c;
  putLe(img, 0x18, 2, BigInt(pcir));
  img.set([0x50, 0x43, 0x49, 0x52], pcir); // "PCIR"
  putLe(img, pcir + 4, 2, BigInt(pdev.vendor));
  putLe(img, pcir + 6, 2, BigInt(pdev.device));
  putLe(img, pcir + 0x0a, 2, 0x18n); // structure length
  img[pcir + 0x0c] = 3; // structure revision
  img.set([pdev.classCode & 0xff, (pdev.classCode >> 8) & 0xff, (pdev.classCode >> 16) & 0xff], pcir + 0x0d);
  putLe(img, pcir + 0x10, 2, BigInt(len / 512)); // image length in 512-byte units
  img[pcir + 0x14] = 0; // code type: x86 PC-AT
  img[pcir + 0x15] = 0x80; // last image
  let sum = 0;
  for (let i = 0; i < len - 1; i++) sum = (sum + img[i]!) & 0xff;
  img[len - 1] = (0x100 - sum) & 0xff;
  return img;
}
