// QEMU's educational device "edu" (1234:11e8; QEMU hw/misc/edu.c), BAR0 = 1 MiB of registers:
//
//   0x00 (RO)  identification 0x010000ed         0x20 (RW) status: 0x01 computing, 0x80 raise an
//   0x04 (RW)  liveness: reads the inverse of               interrupt when a factorial is done
//              the last value written            0x24 (RO) interrupt status
//   0x08 (RW)  factorial: a write starts the     0x60 (WO) raise interrupt (status |= value)
//              computation, a read gives n!      0x64 (WO) lower interrupt (status &= ~value)
//   0x80/0x88/0x90/0x98 (RW, 4 or 8 bytes): DMA source, destination, count, command
//              (command bit 0 runs the transfer, bit 1 direction 1 = to host, bit 2 interrupt)
//
// Accesses below 0x80 must be 4 bytes wide, those from 0x80 4 or 8 bytes; QEMU rejects 1- and
// 2-byte accesses (valid.min_access_size 4: they read 0 and are dropped), answers other widths
// and unknown registers with all ones (oracle: pread of 1/2/8 bytes at 0 gives 00/0000/ff..ff).
//
// Differences from QEMU, on purpose: the factorial is computed at once (QEMU's thread finishes
// "later", so the computing bit is never seen set here), and a DMA command runs when it is written
// instead of from a 100 ms timer. QEMU's edu has no reset handler: its registers survive FLR and
// bus resets (oracle: values written before a close are read back after the reopen's bus reset),
// so reset() keeps them too.
//
// Interrupts: the raise/lower registers and a finished factorial or DMA update the interrupt
// status through raiseIrq/lowerIrq, which signal the function's `irq` outputs (MSI vector 0 when
// MSI is enabled in config space, else the INTx pin) once the interrupt layer has connected them.

import type { Kernel } from '../../../kernel/kernel.js';
import type { PciDev } from '../pci.js';
import { PCI_MSI_FLAGS, PCI_MSI_FLAGS_ENABLE } from '../config_space.js';
import { IoWidth, PciHw, putLe } from './hw.js';

export const EDU_FACT_IRQ = 0x00000001;
export const EDU_DMA_IRQ = 0x00000100;
export const EDU_STATUS_COMPUTING = 0x01;
export const EDU_STATUS_IRQFACT = 0x80;
export const EDU_DMA_RUN = 0x1;
export const EDU_DMA_TO_PCI = 0x2;
export const EDU_DMA_IRQ_EN = 0x4;
export const EDU_DMA_START = 0x40000;
export const EDU_DMA_SIZE = 4096;

const M32 = 0xffffffffn;
const M64 = 0xffffffffffffffffn;

export class EduPciHw extends PciHw {
  addr4 = 0;
  fact = 0;
  status = 0;
  irqStatus = 0;
  dma = { src: 0n, dst: 0n, cnt: 0n, cmd: 0n };
  readonly dmaBuf = new Uint8Array(EDU_DMA_SIZE);
  /** QEMU's dma_mask property: 28 bits */
  dmaMask = (1n << 28n) - 1n;
  /** DMA transfers that faulted (the IOMMU refused them); QEMU ignores the error too */
  dmaFaults = 0;
  private shadow: Uint8Array | null = null;

  constructor(kernel: Kernel, pdev: PciDev) {
    super(kernel, pdev);
  }

  read(bar: number, off: number, size: IoWidth): bigint {
    if (bar !== 0) return 0n;
    // QEMU's memory core rejects accesses narrower than min_access_size (4): they read 0
    if (size < 4) return 0n;
    if (off < 0x80 && size !== 4) return M64;
    let v = M64;
    switch (off) {
      case 0x00:
        v = 0x010000edn;
        break;
      case 0x04:
        v = BigInt(this.addr4);
        break;
      case 0x08:
        v = BigInt(this.fact);
        break;
      case 0x20:
        v = BigInt(this.status);
        break;
      case 0x24:
        v = BigInt(this.irqStatus);
        break;
      case 0x80:
        v = this.dma.src;
        break;
      case 0x88:
        v = this.dma.dst;
        break;
      case 0x90:
        v = this.dma.cnt;
        break;
      case 0x98:
        v = this.dma.cmd;
        break;
    }
    return size === 4 ? v & M32 : v;
  }

  write(bar: number, off: number, size: IoWidth, value: bigint): void {
    if (bar !== 0 || size < 4) return;
    if (off < 0x80 && size !== 4) return;
    const v32 = Number(value & M32);
    switch (off) {
      case 0x04:
        this.addr4 = ~v32 >>> 0;
        break;
      case 0x08:
        if (this.status & EDU_STATUS_COMPUTING) break;
        this.fact = v32;
        this.status |= EDU_STATUS_COMPUTING;
        this.computeFactorial();
        break;
      case 0x20:
        if (v32 & EDU_STATUS_IRQFACT) this.status |= EDU_STATUS_IRQFACT;
        else this.status &= ~EDU_STATUS_IRQFACT;
        break;
      case 0x60:
        this.raiseIrq(v32);
        break;
      case 0x64:
        this.lowerIrq(v32);
        break;
      case 0x80:
      case 0x88:
      case 0x90:
        if (this.dma.cmd & BigInt(EDU_DMA_RUN)) break;
        this.dma[off === 0x80 ? 'src' : off === 0x88 ? 'dst' : 'cnt'] = value;
        break;
      case 0x98:
        if (!(value & BigInt(EDU_DMA_RUN))) break;
        if (this.dma.cmd & BigInt(EDU_DMA_RUN)) break;
        this.dma.cmd = value;
        this.runDma();
        break;
    }
    this.syncShadow();
  }

  /** edu_fact_thread, done at once: n! in 32 bits (0 from 34! on), then the optional interrupt */
  private computeFactorial(): void {
    let ret = 1;
    for (let n = this.fact; n > 0 && ret !== 0; n--) ret = Math.imul(ret, n) >>> 0;
    this.fact = ret;
    this.status &= ~EDU_STATUS_COMPUTING;
    if (this.status & EDU_STATUS_IRQFACT) this.raiseIrq(EDU_FACT_IRQ);
  }

  /** edu_dma_timer: one transfer between host memory (through the IOMMU) and the 4 KiB buffer */
  private runDma(): void {
    const cmd = Number(this.dma.cmd & 0xffn);
    const cnt = Number(this.dma.cnt & 0xffffffffn);
    if (cmd & EDU_DMA_TO_PCI) {
      const off = Number((this.dma.src - BigInt(EDU_DMA_START)) & M64);
      if (off >= 0 && off + cnt <= EDU_DMA_SIZE) {
        const r = this.dmaWrite(this.dma.dst & this.dmaMask, this.dmaBuf.slice(off, off + cnt));
        if (!r.ok) this.dmaFaults++;
      }
    } else {
      const off = Number((this.dma.dst - BigInt(EDU_DMA_START)) & M64);
      if (off >= 0 && off + cnt <= EDU_DMA_SIZE) {
        const r = this.dmaRead(this.dma.src & this.dmaMask, cnt);
        if (r.ok) this.dmaBuf.set(r.data, off);
        else this.dmaFaults++;
      }
    }
    this.dma.cmd &= ~BigInt(EDU_DMA_RUN);
    if (cmd & EDU_DMA_IRQ_EN) this.raiseIrq(EDU_DMA_IRQ);
  }

  /** MSI enabled in the function's own config space (msi_enabled in QEMU) */
  msiEnabled(): boolean {
    const msi = this.pdev.msiCap;
    return !!msi && (this.pdev.config.read(msi.at + PCI_MSI_FLAGS, 2) & PCI_MSI_FLAGS_ENABLE) !== 0;
  }

  /** edu_raise_irq: the status bits, then MSI vector 0 or the INTx pin (through `irq`) */
  raiseIrq(val: number): void {
    this.irqStatus = (this.irqStatus | val) >>> 0;
    if (this.irqStatus) {
      if (this.msiEnabled()) this.irq?.msi(0);
      else this.irq?.intx(true);
    }
    this.syncShadow();
  }

  /** edu_lower_irq */
  lowerIrq(val: number): void {
    this.irqStatus = (this.irqStatus & ~val) >>> 0;
    if (!this.irqStatus && !this.msiEnabled()) this.irq?.intx(false);
    this.syncShadow();
  }

  /** QEMU's edu keeps its registers across resets (no reset handler). */
  override reset(): void {}

  override mmapMemory(bar: number): Uint8Array | null {
    if (bar !== 0) return null;
    if (!this.shadow) {
      this.shadow = this.allocBarMemory(0, Number(this.pdev.resources[0]!.size));
      this.shadow.fill(0xff);
      this.syncShadow();
    }
    return this.shadow;
  }

  /** the 4-byte registers as 4-byte loads through a mapping would read them */
  private syncShadow(): void {
    const s = this.shadow;
    if (!s) return;
    for (const off of [0x00, 0x04, 0x08, 0x20, 0x24, 0x80, 0x88, 0x90, 0x98]) putLe(s, off, 4, this.read(0, off, 4));
  }
}
