// An Intel I/OAT DMA engine (QuickData / Crystal Beach v3.3, the Sky Lake-E "CBDMA" function
// 8086:2021): one DMA channel as the kernel's ioat driver (drivers/dma/ioat: registers.h, hw.h,
// dma.c), the VFIO selftests' driver (tools/testing/selftests/vfio/lib/drivers/ioat) and DPDK's
// dmadev driver (drivers/dma/ioat) program it. QEMU has no such device: the ground truth is
// those three drivers (the register map they share, what each waits for).
//
// BAR0 (16 KiB, registers; the MSI-X table at 0x2000 and its PBA at 0x3000 are the PCI layer's):
//
//   0x00  CHANCNT   (RO 8)  1 channel              0x08 CBVER   (RO 8)  0x33 (v3.3)
//   0x01  XFERCAP   (RO 8)  log2 of the largest    0x0c INTRDELAY (RW 16, bits 13:0)
//                           transfer (default 12)   0x0e CS_STATUS (RO 16) 0
//   0x02  GENCTRL   (RW 8)  bit 0                   0x10 DMACAPABILITY (RO 32): FILL_BLOCK
//   0x03  INTRCTRL  (8)     bit 0 master enable, bit 1 interrupt status (RO), bit 2 INT (RO:
//                           status and master enable), bit 3 one MSI-X vector per channel
//   0x04  ATTNSTATUS (RO 32) channels with an interrupt pending (legacy mode)
//   channel 0 at 0x80 (IOAT_CHANNEL_MMIO_SIZE):
//   0x80  CHANCTRL  (RW 16) INT_REARM 0x1, ERR_COMPLETION_EN 0x4, ANY_ERR_ABORT_EN 0x8,
//                           ERR_INT_EN 0x10, snoop 0x20, IN_USE 0x100, DCA 0x200, priority 0xf000
//   0x84  CHANCMD   (8)     RESET 0x20, RESUME 0x10, SUSPEND 0x04: carried out when written,
//                           so it reads 0 at once (the drivers poll for RESET to clear)
//   0x86  DMACOUNT  (RW 16) the doorbell: the channel runs descriptors until it has fetched
//                           this many since the chain (re)started (the count wraps at 2^16)
//   0x88  CHANSTS   (RO 64) completed descriptor address (bits 63:6) | state (bits 2:0: 0
//                           ACTIVE, 1 DONE, 2 SUSPENDED, 3 HALTED, 4 ARMED)
//   0x90  CHAINADDR (RW 64) the first descriptor; writing it restarts the count
//   0x98  CHANCMP   (RW 64) where completions are written (CHANSTS's value, 8-byte aligned)
//   0xa0  CDAR      (RO 64) the descriptor last fetched
//   0xa8  CHANERR   (RW1C 32)                       0xac CHANERRMSK (RW 32)
//
// Config space: DMAUNCERRSTS (0x148) and CHANERR_INT (0x180) are write-1-to-clear (this model
// never sets them: it has no internal errors), CHANERRMSK_INT (0x184) is read-write.
//
// The channel (one state machine, every register access synchronous, as the selftests need:
// ioat_memcpy_start writes DMACOUNT and at once polls CHANSTS, clients.md 1.8):
//   * reset (power-on, FLR, or CHANCMD RESET): HALTED, nothing completed, CHAINADDR, DMACOUNT and
//     CDAR 0. CHANCMD RESET keeps CHANCTRL, CHANCMP, CHANERR and its mask (the kernel's
//     ioat_reset_hw clears CHANERR itself before resetting, and its restart reuses CHANCTRL and
//     CHANCMP); a function reset clears every register.
//   * a CHAINADDR write restarts the chain there with a count of 0 (the kernel's
//     __ioat_restart_chan zeroes its dmacount when it writes CHAINADDR; the selftests write
//     CHAINADDR then DMACOUNT = n for every batch) and arms a channel that is not halted by an
//     error: ARMED (what DPDK's __ioat_recover waits for after RESET + CHAINADDR).
//   * a DMACOUNT write runs an ARMED or DONE channel: descriptors are fetched from CHAINADDR,
//     following `next`, until the count reaches DMACOUNT; then DONE. A SUSPENDED channel waits for
//     RESUME, a HALTED one for RESET (then CHAINADDR). SUSPEND stops an ARMED or DONE channel.
//   * a descriptor (64 bytes, hw.h struct ioat_dma_descriptor) is read through the function's
//     IOMMU domain (DMA needs bus mastering, like every transfer here): size, ctl (int_en bit 0,
//     compl_write bit 3, null bit 5, op bits 31:24), src, dst, next. Ops: COPY (0x00) reads size
//     bytes at src and writes them at dst; FILL (0x01, DPDK's fill) writes the 8-byte pattern in
//     the src field over size bytes at dst; a null descriptor moves nothing. So the bytes move in
//     the memory the IOVAs map: the owning process's pinned pages.
//   * on completion: CHANSTS's address := the descriptor; with compl_write, CHANSTS's value is
//     written at CHANCMP; with int_en and CHANCTRL.INT_REARM, an interrupt, and the hardware clears
//     INT_REARM (the kernel re-arms with a CHANCTRL write after each interrupt; the selftests
//     write INT_REARM before each batch).
//   * an error halts the channel (HALTED; CHANSTS keeps the last completed descriptor): CHANERR
//     gets the error's bit unless CHANERRMSK masks it; CHANCTRL.ERR_COMPLETION_EN writes the
//     halted status at CHANCMP; only CHANCTRL.ERR_INT_EN makes it interrupt (the selftests leave
//     it clear: no interrupt on an unmapped IOVA). The bits follow DPDK's reading of CHANERR
//     (ioat_dmadev.c, __translate_status_ioat_to_dma), the only driver that reports them:
//     source fault SRC_ADDR_ERR (0x1), destination fault DEST_ADDR_ERR (0x2), descriptor fetch
//     fault READ_DATA_ERR (0x100, DPDK's "descriptor read error"), misaligned descriptor address
//     NEXT_DESC_ALIGN_ERR (0x8), size 0 or above 2^XFERCAP LENGTH_ERR (0x800, the kernel's null
//     descriptor notes that size 0 is an error), an op this channel lacks CONTROL_ERR (0x400), a
//     completion write fault or a misaligned CHANCMP COMPLETION_ADDR_ERR (0x1000). A fault is an
//     unmapped or read-only IOVA, no paging domain, or a master abort (bus mastering off).
//     Faulting transfers move no bytes (dma.ts checks the whole range first).
//   * interrupts: INTRCTRL bit 3 set (what the kernel's MSI-X mode and the selftests write): the
//     channel signals MSI-X vector 0 (raiseMsix: the PCI layer applies enable, masks, PBA and
//     bus mastering). Bit 3 clear: ATTNSTATUS bit 0 and INTRCTRL.INT_STATUS are set and, with
//     INTRCTRL's master enable, the INTx pin is asserted until the channel is re-armed (a CHANCTRL
//     write with INT_REARM acknowledges the attention), as the kernel's legacy handler does.
//
// Not modelled: more than one channel, DCA, the RAID ops (XOR/PQ, not on this part), descriptor
// write-back status (DWBES), interrupt coalescing (INTRDELAY is stored only), CHANCMD ABORT and
// the v1 APPEND/START commands (ignored), the ACTIVE state being observable (a batch finishes
// inside the DMACOUNT store).

import type { Kernel } from '../../../kernel/kernel.js';
import type { PciDev } from '../pci.js';
import { PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE, PCI_MSIX_ENTRY_VECTOR_CTRL } from '../config_space.js';
import { IoWidth, PciHw, getLe, putLe } from './hw.js';

export const PCI_VENDOR_ID_INTEL = 0x8086;
export const PCI_DEVICE_ID_INTEL_IOAT_SKX = 0x2021;

// device registers (registers.h)
export const IOAT_CHANCNT_OFFSET = 0x00;
export const IOAT_XFERCAP_OFFSET = 0x01;
export const IOAT_GENCTRL_OFFSET = 0x02;
export const IOAT_INTRCTRL_OFFSET = 0x03;
export const IOAT_ATTNSTATUS_OFFSET = 0x04;
export const IOAT_VER_OFFSET = 0x08;
export const IOAT_INTRDELAY_OFFSET = 0x0c;
export const IOAT_DEVICE_STATUS_OFFSET = 0x0e;
export const IOAT_DMA_CAP_OFFSET = 0x10;
export const IOAT_INTRCTRL_MASTER_INT_EN = 0x01;
export const IOAT_INTRCTRL_INT_STATUS = 0x02;
export const IOAT_INTRCTRL_INT = 0x04;
export const IOAT_INTRCTRL_MSIX_VECTOR_CONTROL = 0x08;
export const IOAT_VER_3_3 = 0x33;
export const IOAT_CAP_FILL_BLOCK = 0x40;
export const IOAT_XFERCAP_4KB = 12;
export const IOAT_CHANNEL_MMIO_SIZE = 0x80;

// channel registers, relative to the channel (channel 0 at IOAT_CHANNEL_MMIO_SIZE)
export const IOAT_CHANCTRL_OFFSET = 0x00;
export const IOAT_CHANCMD_OFFSET = 0x04;
export const IOAT_CHAN_DMACOUNT_OFFSET = 0x06;
export const IOAT_CHANSTS_OFFSET = 0x08;
export const IOAT_CHAINADDR_OFFSET = 0x10;
export const IOAT_CHANCMP_OFFSET = 0x18;
export const IOAT_CDAR_OFFSET = 0x20;
export const IOAT_CHANERR_OFFSET = 0x28;
export const IOAT_CHANERR_MASK_OFFSET = 0x2c;

export const IOAT_CHANCTRL_INT_REARM = 0x0001;
export const IOAT_CHANCTRL_ERR_COMPLETION_EN = 0x0004;
export const IOAT_CHANCTRL_ANY_ERR_ABORT_EN = 0x0008;
export const IOAT_CHANCTRL_ERR_INT_EN = 0x0010;
const IOAT_CHANCTRL_WMASK = 0xf33d;

export const IOAT_CHANCMD_RESET = 0x20;
export const IOAT_CHANCMD_RESUME = 0x10;
export const IOAT_CHANCMD_ABORT = 0x08;
export const IOAT_CHANCMD_SUSPEND = 0x04;

export const IOAT_CHANSTS_ACTIVE = 0;
export const IOAT_CHANSTS_DONE = 1;
export const IOAT_CHANSTS_SUSPENDED = 2;
export const IOAT_CHANSTS_HALTED = 3;
export const IOAT_CHANSTS_ARMED = 4;
export const IOAT_CHANSTS_STATUS = 0x7n;
export const IOAT_CHANSTS_COMPLETED_DESCRIPTOR_ADDR = ~0x3fn & 0xffffffffffffffffn;

export const IOAT_CHANERR_SRC_ADDR_ERR = 0x0001;
export const IOAT_CHANERR_DEST_ADDR_ERR = 0x0002;
export const IOAT_CHANERR_NEXT_DESC_ALIGN_ERR = 0x0008;
export const IOAT_CHANERR_READ_DATA_ERR = 0x0100;
export const IOAT_CHANERR_CONTROL_ERR = 0x0400;
export const IOAT_CHANERR_LENGTH_ERR = 0x0800;
export const IOAT_CHANERR_COMPLETION_ADDR_ERR = 0x1000;
const IOAT_CHANERR_ALL = 0x7ffff;

// config space (registers.h)
export const IOAT_PCI_DMAUNCERRSTS_OFFSET = 0x148;
export const IOAT_PCI_CHANERR_INT_OFFSET = 0x180;
export const IOAT_PCI_CHANERRMASK_INT_OFFSET = 0x184;

// descriptors (hw.h)
export const IOAT_DESC_SZ = 64;
export const IOAT_DESC_INT_EN = 1 << 0;
export const IOAT_DESC_COMPL_WRITE = 1 << 3;
export const IOAT_DESC_FENCE = 1 << 4;
export const IOAT_DESC_NULL = 1 << 5;
export const IOAT_OP_COPY = 0x00;
export const IOAT_OP_FILL = 0x01;
export const IOAT_CMD_OP_SHIFT = 24;

const CH = IOAT_CHANNEL_MMIO_SIZE;
const REG_SPACE = 0x100; // device + channel 0 registers; the rest of BAR0 reads 0 (reserved)
const M64 = 0xffffffffffffffffn;

/** Plain read-write bits of the register bytes (the rest: read-only, or handled by the channel). */
const WMASK = new Uint8Array(REG_SPACE);
WMASK[IOAT_GENCTRL_OFFSET] = 0x01;
WMASK[IOAT_INTRCTRL_OFFSET] = IOAT_INTRCTRL_MASTER_INT_EN | IOAT_INTRCTRL_MSIX_VECTOR_CONTROL;
WMASK[IOAT_INTRDELAY_OFFSET] = 0xff;
WMASK[IOAT_INTRDELAY_OFFSET + 1] = 0x3f;
WMASK[CH + IOAT_CHANCTRL_OFFSET] = IOAT_CHANCTRL_WMASK & 0xff;
WMASK[CH + IOAT_CHANCTRL_OFFSET + 1] = IOAT_CHANCTRL_WMASK >> 8;
WMASK.fill(0xff, CH + IOAT_CHAN_DMACOUNT_OFFSET, CH + IOAT_CHAN_DMACOUNT_OFFSET + 2);
WMASK.fill(0xff, CH + IOAT_CHAINADDR_OFFSET, CH + IOAT_CHAINADDR_OFFSET + 8);
WMASK.fill(0xff, CH + IOAT_CHANCMP_OFFSET, CH + IOAT_CHANCMP_OFFSET + 8);
for (let i = 0; i < 4; i++) WMASK[CH + IOAT_CHANERR_MASK_OFFSET + i] = (IOAT_CHANERR_ALL >> (8 * i)) & 0xff;

/** A decoded descriptor (hw.h struct ioat_dma_descriptor). */
export interface IoatDescriptor {
  size: number;
  ctl: number;
  src: bigint;
  dst: bigint;
  next: bigint;
}

export function ioatEncodeDescriptor(d: IoatDescriptor): Uint8Array {
  const b = new Uint8Array(IOAT_DESC_SZ);
  const v = new DataView(b.buffer);
  v.setUint32(0, d.size >>> 0, true);
  v.setUint32(4, d.ctl >>> 0, true);
  v.setBigUint64(8, BigInt.asUintN(64, d.src), true);
  v.setBigUint64(16, BigInt.asUintN(64, d.dst), true);
  v.setBigUint64(24, BigInt.asUintN(64, d.next), true);
  return b;
}

export class IoatPciHw extends PciHw {
  /** BAR0: the register bytes (and the MSI-X table and PBA the PCI layer keeps there) */
  private bar0: Uint8Array | null = null;
  private xfercapValue = IOAT_XFERCAP_4KB;
  /** the channel's state (CHANSTS bits 2:0) */
  state = IOAT_CHANSTS_HALTED;
  /** halted by an error (only RESET leaves that) rather than by a reset */
  errorHalted = false;
  /** the next descriptor to fetch */
  cur = 0n;
  /** descriptors fetched since the chain (re)started, mod 2^16 (compared with DMACOUNT) */
  fetched = 0;
  /** the last completed descriptor (CHANSTS bits 63:6) */
  completed = 0n;
  /** counters for tests and benches */
  stats = { descriptors: 0, bytes: 0, errors: 0, interrupts: 0 };
  private intxLevel = false;

  constructor(kernel: Kernel, pdev: PciDev) {
    super(kernel, pdev);
    // DMAUNCERRSTS and CHANERR_INT: write-1-to-clear, 0 (no internal errors here);
    // CHANERRMSK_INT: read-write. None is plain device storage.
    const cs = pdev.config;
    if (cs.size > IOAT_PCI_CHANERRMASK_INT_OFFSET + 4)
      for (const [at, w1c] of [
        [IOAT_PCI_DMAUNCERRSTS_OFFSET, true],
        [IOAT_PCI_CHANERR_INT_OFFSET, true],
        [IOAT_PCI_CHANERRMASK_INT_OFFSET, false],
      ] as const)
        for (let i = at; i < at + 4; i++) {
          cs.storage[i] = 0;
          cs.data[i] = 0;
          cs.init[i] = 0;
          cs.wmask[i] = w1c ? 0 : 0xff;
          cs.w1cmask[i] = w1c ? 0xff : 0;
        }
  }

  /** log2 of the largest transfer (XFERCAP); 12 = 4 KiB, small on purpose (clients.md 1.7) */
  get xfercap(): number {
    return this.xfercapValue;
  }
  set xfercap(v: number) {
    this.xfercapValue = v & 0xff;
    if (this.bar0) this.bar0[IOAT_XFERCAP_OFFSET] = this.xfercapValue;
  }

  /** the register file, allocated on first use (device memory: the bridge shares it) */
  private regs(): Uint8Array {
    if (!this.bar0) {
      const r = this.allocBarMemory(0, Number(this.pdev.resources[0]?.size ?? 0x4000n));
      this.bar0 = r;
      this.powerOn();
      // the MSI-X table the PCI layer adopts from this memory powers on with every vector masked
      const x = this.pdev.msixCap;
      if (x && x.tableBar === 0)
        for (let v = 0; v < x.vectors; v++) {
          const at = x.tableOffset + v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL;
          if (at + 4 <= r.length) putLe(r, at, 4, BigInt(PCI_MSIX_ENTRY_CTRL_MASKBIT));
        }
    }
    return this.bar0;
  }

  private powerOn(): void {
    const r = this.bar0!;
    r.fill(0, 0, REG_SPACE);
    r[IOAT_CHANCNT_OFFSET] = 1;
    r[IOAT_XFERCAP_OFFSET] = this.xfercapValue;
    r[IOAT_VER_OFFSET] = IOAT_VER_3_3;
    putLe(r, IOAT_DMA_CAP_OFFSET, 4, BigInt(IOAT_CAP_FILL_BLOCK));
    this.state = IOAT_CHANSTS_HALTED;
    this.errorHalted = false;
    this.cur = 0n;
    this.fetched = 0;
    this.completed = 0n;
    this.setStatus();
    this.updateIntx();
  }

  // ---- register access -------------------------------------------------------------------------------

  read(bar: number, off: number, size: IoWidth): bigint {
    if (bar !== 0) return 0n;
    const r = this.regs();
    if (off < 0 || off + size > r.length) return (1n << BigInt(8 * size)) - 1n;
    return getLe(r, off, size);
  }

  write(bar: number, off: number, size: IoWidth, value: bigint): void {
    if (bar !== 0 || off < 0 || off >= REG_SPACE) return;
    const r = this.regs();
    const end = Math.min(off + size, REG_SPACE);
    let cmd = -1;
    for (let a = off; a < end; a++) {
      const b = Number((value >> BigInt(8 * (a - off))) & 0xffn);
      if (a >= CH + IOAT_CHANERR_OFFSET && a < CH + IOAT_CHANERR_OFFSET + 4) r[a] = r[a]! & ~b;
      else if (a === CH + IOAT_CHANCMD_OFFSET) cmd = b;
      else r[a] = (r[a]! & ~WMASK[a]!) | (b & WMASK[a]!);
    }
    const hit = (reg: number, len: number) => off < reg + len && reg < end;
    // side effects in register order (a wide store touching several runs them in address order)
    if (hit(IOAT_INTRCTRL_OFFSET, 1)) this.updateIntx();
    if (hit(CH + IOAT_CHANCTRL_OFFSET, 2) && this.chanctrl() & IOAT_CHANCTRL_INT_REARM) this.acknowledge();
    if (cmd >= 0) this.command(cmd);
    if (hit(CH + IOAT_CHAN_DMACOUNT_OFFSET, 2)) this.doorbell();
    if (hit(CH + IOAT_CHAINADDR_OFFSET, 8)) this.chainWritten();
  }

  override mmapMemory(bar: number): Uint8Array | null {
    return bar === 0 ? this.regs() : null;
  }

  /** FLR, PM or bus reset: every register to its power-on value (the PCI layer resets MSI-X). */
  override reset(): void {
    if (this.bar0) this.powerOn();
  }

  // ---- the channel --------------------------------------------------------------------------------------

  private reg(off: number, size: IoWidth): bigint {
    return getLe(this.regs(), off, size);
  }
  private chanctrl(): number {
    return Number(this.reg(CH + IOAT_CHANCTRL_OFFSET, 2));
  }
  /** DMACOUNT as the driver last wrote it */
  get dmacount(): number {
    return Number(this.reg(CH + IOAT_CHAN_DMACOUNT_OFFSET, 2));
  }
  /** CHANERR */
  get chanerr(): number {
    return Number(this.reg(CH + IOAT_CHANERR_OFFSET, 4));
  }

  private setStatus(): void {
    putLe(this.bar0!, CH + IOAT_CHANSTS_OFFSET, 8, this.chansts());
  }

  /** CHANSTS: the completed descriptor's address and the state */
  chansts(): bigint {
    return (this.completed & IOAT_CHANSTS_COMPLETED_DESCRIPTOR_ADDR) | BigInt(this.state);
  }

  private setState(s: number): void {
    this.state = s;
    this.setStatus();
  }

  /** CHANCMD: carried out at once, so the register reads 0 afterwards */
  private command(cmd: number): void {
    if (cmd & IOAT_CHANCMD_RESET) return this.channelReset();
    if (cmd & IOAT_CHANCMD_SUSPEND) {
      if (this.state === IOAT_CHANSTS_ARMED || this.state === IOAT_CHANSTS_DONE || this.state === IOAT_CHANSTS_ACTIVE)
        this.setState(IOAT_CHANSTS_SUSPENDED);
      return;
    }
    if (cmd & IOAT_CHANCMD_RESUME && this.state === IOAT_CHANSTS_SUSPENDED) this.run();
  }

  /** CHANCMD RESET: the channel's state, not its configuration (CHANCTRL, CHANCMP, CHANERR) */
  private channelReset(): void {
    const r = this.regs();
    r.fill(0, CH + IOAT_CHAN_DMACOUNT_OFFSET, CH + IOAT_CHAN_DMACOUNT_OFFSET + 2);
    r.fill(0, CH + IOAT_CHAINADDR_OFFSET, CH + IOAT_CHAINADDR_OFFSET + 8);
    r.fill(0, CH + IOAT_CDAR_OFFSET, CH + IOAT_CDAR_OFFSET + 8);
    this.cur = 0n;
    this.fetched = 0;
    this.completed = 0n;
    this.errorHalted = false;
    this.setState(IOAT_CHANSTS_HALTED);
    r[IOAT_ATTNSTATUS_OFFSET] = 0;
    this.updateIntx();
    if (this.kernel.trace.active) this.kernel.event('ioat_reset', { device: this.pdev.name });
  }

  /** CHAINADDR written: the chain restarts there, and a channel not halted by an error is armed */
  private chainWritten(): void {
    this.cur = this.reg(CH + IOAT_CHAINADDR_OFFSET, 8);
    this.fetched = 0;
    if (this.state === IOAT_CHANSTS_ACTIVE || this.errorHalted) return;
    this.setState(IOAT_CHANSTS_ARMED);
  }

  /** DMACOUNT written: an armed or idle channel runs up to the new count */
  private doorbell(): void {
    if (this.state === IOAT_CHANSTS_ARMED || this.state === IOAT_CHANSTS_DONE) this.run();
  }

  private run(): void {
    this.setState(IOAT_CHANSTS_ACTIVE);
    while (this.fetched !== this.dmacount) if (!this.step()) return;
    this.setState(IOAT_CHANSTS_DONE);
  }

  /** One descriptor: fetch, check, execute, complete. False when the channel halted. */
  private step(): boolean {
    const at = this.cur;
    if (at & BigInt(IOAT_DESC_SZ - 1)) return this.error(IOAT_CHANERR_NEXT_DESC_ALIGN_ERR, at);
    putLe(this.bar0!, CH + IOAT_CDAR_OFFSET, 8, at);
    const f = this.dmaRead(at, IOAT_DESC_SZ);
    if (!f.ok) return this.error(IOAT_CHANERR_READ_DATA_ERR, f.iova);
    const v = new DataView(f.data.buffer, f.data.byteOffset, IOAT_DESC_SZ);
    const size = v.getUint32(0, true);
    const ctl = v.getUint32(4, true);
    const src = v.getBigUint64(8, true);
    const dst = v.getBigUint64(16, true);
    const next = v.getBigUint64(24, true);
    this.fetched = (this.fetched + 1) & 0xffff;
    if (size === 0 || (this.xfercapValue !== 0 && size > 2 ** this.xfercapValue)) return this.error(IOAT_CHANERR_LENGTH_ERR, at);
    if (!(ctl & IOAT_DESC_NULL)) {
      const op = ctl >>> IOAT_CMD_OP_SHIFT;
      let data: Uint8Array;
      if (op === IOAT_OP_COPY) {
        const r = this.dmaRead(src, size);
        if (!r.ok) return this.error(IOAT_CHANERR_SRC_ADDR_ERR, r.iova);
        data = r.data;
      } else if (op === IOAT_OP_FILL) {
        data = new Uint8Array(size);
        for (let i = 0; i < size; i++) data[i] = Number((src >> BigInt(8 * (i & 7))) & 0xffn);
      } else return this.error(IOAT_CHANERR_CONTROL_ERR, at);
      const w = this.dmaWrite(dst, data);
      if (!w.ok) return this.error(IOAT_CHANERR_DEST_ADDR_ERR, w.iova);
      this.stats.bytes += size;
    }
    this.stats.descriptors++;
    this.completed = at;
    this.setStatus();
    if (ctl & IOAT_DESC_COMPL_WRITE) {
      const st = (at & IOAT_CHANSTS_COMPLETED_DESCRIPTOR_ADDR) | BigInt(this.fetched === this.dmacount ? IOAT_CHANSTS_DONE : IOAT_CHANSTS_ACTIVE);
      if (!this.writeCompletion(st)) return this.error(IOAT_CHANERR_COMPLETION_ADDR_ERR, this.reg(CH + IOAT_CHANCMP_OFFSET, 8));
    }
    if (ctl & IOAT_DESC_INT_EN) this.interrupt(false);
    this.cur = next;
    return true;
  }

  /** The channel status written at CHANCMP (8-byte aligned). */
  private writeCompletion(value: bigint): boolean {
    const at = this.reg(CH + IOAT_CHANCMP_OFFSET, 8);
    if (at & 7n) return false;
    const b = new Uint8Array(8);
    putLe(b, 0, 8, value & M64);
    return this.dmaWrite(at, b).ok;
  }

  /** An error: CHANERR (unless masked), HALTED, the optional error completion and interrupt. */
  private error(bit: number, iova: bigint): false {
    const r = this.bar0!;
    const mask = Number(this.reg(CH + IOAT_CHANERR_MASK_OFFSET, 4));
    putLe(r, CH + IOAT_CHANERR_OFFSET, 4, BigInt((this.chanerr | (bit & ~mask)) >>> 0));
    this.errorHalted = true;
    this.stats.errors++;
    this.setState(IOAT_CHANSTS_HALTED);
    if (this.kernel.trace.active) this.kernel.event('ioat_error', { device: this.pdev.name, chanerr: bit, iova: `0x${iova.toString(16)}` });
    const ctrl = this.chanctrl();
    if (ctrl & IOAT_CHANCTRL_ERR_COMPLETION_EN && !this.writeCompletion(this.chansts()) && !(mask & IOAT_CHANERR_COMPLETION_ADDR_ERR))
      putLe(r, CH + IOAT_CHANERR_OFFSET, 4, BigInt((this.chanerr | IOAT_CHANERR_COMPLETION_ADDR_ERR) >>> 0));
    if (ctrl & IOAT_CHANCTRL_ERR_INT_EN) this.interrupt(true);
    return false;
  }

  /**
   * The channel interrupts: a completion needs CHANCTRL.INT_REARM (which the hardware then
   * clears), an error ERR_INT_EN (checked by the caller). MSI-X vector 0 in MSI-X mode, else the
   * legacy attention (ATTNSTATUS, INTRCTRL status, INTx under the master enable).
   */
  private interrupt(isError: boolean): void {
    const r = this.bar0!;
    const ctrl = this.chanctrl();
    if (!isError) {
      if (!(ctrl & IOAT_CHANCTRL_INT_REARM)) return;
      putLe(r, CH + IOAT_CHANCTRL_OFFSET, 2, BigInt(ctrl & ~IOAT_CHANCTRL_INT_REARM));
    }
    this.stats.interrupts++;
    if (r[IOAT_INTRCTRL_OFFSET]! & IOAT_INTRCTRL_MSIX_VECTOR_CONTROL) {
      this.raiseMsix(0);
      return;
    }
    r[IOAT_ATTNSTATUS_OFFSET] = r[IOAT_ATTNSTATUS_OFFSET]! | 1;
    this.updateIntx();
  }

  /** the channel re-armed: its legacy attention is acknowledged */
  private acknowledge(): void {
    const r = this.regs();
    if (!(r[IOAT_ATTNSTATUS_OFFSET]! & 1)) return;
    r[IOAT_ATTNSTATUS_OFFSET] = r[IOAT_ATTNSTATUS_OFFSET]! & ~1;
    this.updateIntx();
  }

  /** INTRCTRL's status bits and the INTx pin follow ATTNSTATUS and the master enable */
  private updateIntx(): void {
    const r = this.bar0;
    if (!r) return;
    const attn = r[IOAT_ATTNSTATUS_OFFSET] !== 0;
    let ic = r[IOAT_INTRCTRL_OFFSET]! & ~(IOAT_INTRCTRL_INT_STATUS | IOAT_INTRCTRL_INT);
    if (attn) ic |= IOAT_INTRCTRL_INT_STATUS;
    const level = attn && !!(ic & IOAT_INTRCTRL_MASTER_INT_EN) && !(ic & IOAT_INTRCTRL_MSIX_VECTOR_CONTROL);
    if (level) ic |= IOAT_INTRCTRL_INT;
    r[IOAT_INTRCTRL_OFFSET] = ic;
    if (level !== this.intxLevel) {
      this.intxLevel = level;
      this.setIntx(level);
    }
  }
}
