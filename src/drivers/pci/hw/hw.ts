// The hardware behind a simulated PCI function: what its BARs answer when the host reads or
// writes them (registers with side effects, or plain memory), its expansion ROM, what it does when
// it is reset, the memory of it a process may map, and its wires to the rest of the machine (DMA
// through the IOMMU, interrupts). The kernel side reaches it only as the kernel reaches a device:
//
//   * MMIO / port I/O to a BAR: pciHwIoRead / pciHwIoWrite, the model of ioread*/iowrite* on a
//     pci_iomap'ed BAR. The function answers only while it decodes the BAR (COMMAND.MEMORY or
//     COMMAND.IO set, in D0); otherwise the access ends in a master abort (all ones, writes lost).
//   * configuration space: the PCI core's accessors (config_space.ts); a model that cares about a
//     config write (MSI enable, bus mastering) reads its own config space or adds a
//     PciConfigSpace hook.
//   * resets (FLR, PM, bus): pdev.resetHooks, registered by the model's constructor.
//
// A model gets synchronous calls for every register access (read/write below), so a doorbell
// write takes effect before the write returns; it does DMA through its IOMMU domain with
// dmaRead/dmaWrite (src/iommu/dma.ts, gated by COMMAND.MASTER as a real function is); it raises
// interrupts with raiseMsix / raiseMsi / setIntx (through `irq`, which the MSI/INTx layer connects
// when the function is added to its bus). The MSI-X table and PBA are not the model's: the PCI
// layer keeps them (in the model's mmapMemory of that BAR when it has one, so a mapping shows
// them) and answers every access to them; a model must leave those bytes of its shadow alone.

import type { Kernel } from '../../../kernel/kernel.js';
import { allocDeviceMemory } from '../../../kernel/devmem.js';
import { PAGE_SIZE } from '../../../kernel/uaccess.js';
import { DmaFault, dmaRead, dmaWrite } from '../../../iommu/dma.js';
import type { PciDev, ResetMethod } from '../pci.js';
import {
  PCI_COMMAND, PCI_COMMAND_IO, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE,
  PCI_ROM_ADDRESS, PCI_ROM_ADDRESS1,
} from '../config_space.js';
import { pciMsixMmioRead, pciMsixMmioWrite, pciMsixWindow } from '../msi.js';

export const PCI_ROM_ADDRESS_ENABLE = 0x1;

export type IoWidth = 1 | 2 | 4 | 8;

/**
 * The function's interrupt outputs, as the MSI / MSI-X / INTx layer (src/drivers/pci/msi.ts,
 * irq.ts) connects them when the function is added to its bus. A model calls these (or the
 * PciHw helpers raiseMsix / raiseMsi / setIntx) when its logic asserts an interrupt; the layer
 * applies the function's own rules (capability enable, mask bits, PBA, bus mastering) and
 * delivers the message to the host's IRQ, whose handler (vfio-pci's) signals the user's eventfd.
 * Like a real function, the model is not told what became of the message; the `msix_raise` /
 * `msi_raise` trace events record it (a PciIrqResult), and tests may call pciRaiseMsix directly.
 */
export interface PciHwIrq {
  /** an MSI message for `vector` (below the Multiple Message Enable count) */
  msi(vector: number): void;
  /** an MSI-X message for table entry `vector` */
  msix(vector: number): void;
  /** the INTx pin's level (level triggered: keep it asserted until the cause is acknowledged) */
  intx(level: boolean): void;
}

export type HwDmaResult<T> = T | DmaFault | { ok: false; fault: 'master-abort'; iova: bigint };

const ones = (size: IoWidth): bigint => (1n << BigInt(8 * size)) - 1n;

export abstract class PciHw {
  /** wired by the interrupt layer; null: the interrupt goes nowhere (nothing is delivered) */
  irq: PciHwIrq | null = null;

  constructor(
    readonly kernel: Kernel,
    readonly pdev: PciDev,
  ) {
    pdev.resetHooks.push((how) => this.reset(how));
  }

  /** a load of `size` bytes at `off` in BAR `bar` (little-endian value) */
  abstract read(bar: number, off: number, size: IoWidth): bigint;
  /** a store of `size` bytes at `off` in BAR `bar`; side effects happen before it returns */
  abstract write(bar: number, off: number, size: IoWidth, value: bigint): void;

  /** the expansion ROM's contents (what a ROM BAR read returns), or null without a ROM */
  rom(): Uint8Array | null {
    return null;
  }

  /** a load from the ROM BAR: the image, erased flash (0xff) past it */
  romRead(off: number, size: IoWidth): bigint {
    const img = this.rom();
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(img && off + i < img.length ? img[off + i]! : 0xff);
    return v;
  }

  /**
   * The memory a process mapping of BAR `bar` shows (the whole BAR, rounded up to a page), from
   * allocDeviceMemory so the bridge can share it with real processes; null if the BAR cannot be
   * mapped. For a RAM-like BAR it is the BAR itself. For a register BAR it is a shadow the model
   * keeps equal to what side-effect-free loads return; loads and stores through a mapping reach
   * `read`/`write` where the mapping traps them (in process: always, VmArea.mmio; through the
   * bridge: when mmapTrapped says so).
   */
  mmapMemory(bar: number): Uint8Array | null {
    void bar;
    return null;
  }

  /**
   * Whether loads and stores through a mapping of BAR `bar` must reach the model one by one
   * (registers with side effects) rather than the shared memory alone: a real process's mapping
   * is then trapped by the bridge (every access faults and is forwarded synchronously, as the
   * in-process mapping calls VmArea.mmio). True unless the BAR is plain memory (GenericPciHw).
   */
  mmapTrapped(bar: number): boolean {
    void bar;
    return true;
  }

  /** legacy VGA memory (0xa0000-0xbffff) and ports (0x3b0-0x3df) of a VGA function: none here */
  vgaRead(space: 'mem' | 'io', addr: number, size: IoWidth): bigint {
    void space;
    void addr;
    return ones(size);
  }
  vgaWrite(space: 'mem' | 'io', addr: number, size: IoWidth, value: bigint): void {
    void space;
    void addr;
    void size;
    void value;
  }

  /** the function's logic is reset (FLR, PM soft reset, bus reset); registers to power-on values */
  reset(how: ResetMethod): void {
    void how;
  }

  /**
   * The function signals MSI-X table entry `vector`, as a real function does: nothing unless
   * MSI-X is enabled in its capability ('disabled'); masked by the entry's mask bit or the
   * function mask, the PBA bit is set ('pending') and the message goes out when it is unmasked;
   * otherwise the entry's message is written ('sent'), which needs COMMAND.MASTER
   * ('no-bus-master': lost). A message that arrives reaches vfio-pci's handler for the vector,
   * which signals the eventfd the user set with VFIO_DEVICE_SET_IRQS. (PciIrqResult names the
   * outcomes; the `msix_raise` trace event records which one happened.)
   */
  raiseMsix(vector: number): void {
    this.irq?.msix(vector);
  }

  /** The function signals MSI vector `vector` (same rules as raiseMsix; MSI's per-vector mask). */
  raiseMsi(vector: number): void {
    this.irq?.msi(vector);
  }

  /** The function drives its INTx pin (PCI_STATUS.INTERRUPT follows; COMMAND.INTX_DISABLE gates it). */
  setIntx(level: boolean): void {
    this.irq?.intx(level);
  }

  /** MSI-X Enable in the function's own capability (what decides whether raiseMsix can send). */
  msixEnabled(): boolean {
    const x = this.pdev.msixCap;
    return !!x && !this.pdev.removed && (this.pdev.config.read(x.at + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  /** DMA: the function reads host memory through its IOMMU domain (needs bus mastering). */
  dmaRead(iova: bigint, len: number, pasid?: number): HwDmaResult<{ ok: true; data: Uint8Array }> {
    if (!this.busMaster()) return { ok: false, fault: 'master-abort', iova };
    return dmaRead(this.pdev, iova, len, pasid);
  }

  /** DMA: the function writes host memory through its IOMMU domain (needs bus mastering). */
  dmaWrite(iova: bigint, data: Uint8Array, pasid?: number): HwDmaResult<{ ok: true }> {
    if (!this.busMaster()) return { ok: false, fault: 'master-abort', iova };
    return dmaWrite(this.pdev, iova, data, pasid);
  }

  /** COMMAND.MASTER in the function's own config space */
  busMaster(): boolean {
    return (this.pdev.config.read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER) !== 0;
  }

  /** Device memory for a BAR (or a shadow of it), a whole number of pages. */
  protected allocBarMemory(bar: number, size: number): Uint8Array {
    const len = Math.max(PAGE_SIZE, Math.ceil(size / PAGE_SIZE) * PAGE_SIZE);
    return allocDeviceMemory(this.kernel, len, `${this.pdev.name}-bar${bar}`);
  }
}

/**
 * Whether the function decodes BAR `bar` (6: the ROM) now: D0, its COMMAND enable bit, and for
 * the ROM the enable bit of the ROM BAR.
 */
export function pciHwDecodes(pdev: PciDev, bar: number): boolean {
  const r = pdev.resources[bar];
  if (!r || pdev.currentState !== 0) return false;
  const cmd = pdev.config.read(PCI_COMMAND, 2);
  if (bar === 6) return (cmd & PCI_COMMAND_MEMORY) !== 0 && (pdev.config.read(romBaseReg(pdev), 4) & PCI_ROM_ADDRESS_ENABLE) !== 0;
  return (cmd & (r.type === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) !== 0;
}

/** pdev->rom_base_reg */
export function romBaseReg(pdev: PciDev): number {
  return pdev.headerType === 'bridge' ? PCI_ROM_ADDRESS1 : PCI_ROM_ADDRESS;
}

/**
 * ioread8/16/32/64 of a BAR the host mapped: the function's answer, or all ones (master abort).
 * The MSI-X table and PBA are the PCI layer's (msi.ts), whichever model implements the BAR.
 */
export function pciHwIoRead(pdev: PciDev, bar: number, off: number, size: IoWidth): bigint {
  if (!pdev.hw || !pciHwDecodes(pdev, bar)) return ones(size);
  if (bar === 6) return pdev.hw.romRead(off, size);
  const x = pciMsixWindow(pdev, bar, off, size);
  if (x) return pciMsixMmioRead(pdev.hw.kernel, pdev, x.off, size, x.pba);
  return pdev.hw.read(bar, off, size) & ones(size);
}

/** iowrite8/16/32/64: lost when the function does not decode the BAR (and a ROM is read-only). */
export function pciHwIoWrite(pdev: PciDev, bar: number, off: number, size: IoWidth, value: bigint): void {
  if (!pdev.hw || bar === 6 || !pciHwDecodes(pdev, bar)) return;
  const x = pciMsixWindow(pdev, bar, off, size);
  if (x) return pciMsixMmioWrite(pdev.hw.kernel, pdev, x.off, size, value & ones(size), x.pba);
  pdev.hw.write(bar, off, size, value & ones(size));
}

/** Little-endian helpers for models that keep registers in byte arrays. */
export function getLe(b: Uint8Array, off: number, size: IoWidth): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i] ?? 0xff);
  return v;
}

export function putLe(b: Uint8Array, off: number, size: IoWidth, value: bigint): void {
  for (let i = 0; i < size && off + i < b.length; i++) b[off + i] = Number((value >> BigInt(8 * i)) & 0xffn);
}
