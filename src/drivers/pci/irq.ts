// The host's interrupt machinery as far as PCI functions reach it:
//
//   * Linux IRQ descriptors and their actions (kernel/irq/manage.c: request_irq, free_irq,
//     disable_irq_nosync, enable_irq; kernel/irq/chip.c: handle_fasteoi_irq for IOAPIC pins,
//     handle_edge_irq for MSI; kernel/irq/spurious.c: note_interrupt's "nobody cared");
//   * the q35 INTx wiring: a function's INTx pin, swizzled through the bridges above it
//     (drivers/pci/irq.c: pci_swizzle_interrupt_pin), reaches an IOAPIC pin (GSI 16-23, the PIRQ
//     links QEMU's q35 DSDT assigns); a pin is level triggered and delivers when its line rises
//     while it is unmasked (the oracle's IOAPIC does not deliver a line that was already high when
//     the pin is unmasked: a function asserting INTx before vfio requests the IRQ is not seen);
//   * MSI/MSI-X messages as the CPU side sees them: a DMA write to 0xfee0_0000, decoded through
//     the interrupt-remapping table (Intel VT-d IRTEs, remappable format, as the oracle's
//     intel_iommu with intremap=on programs them) or, without remapping, by its vector;
//   * a function's INTx output (the device side): PCI_STATUS.INTERRUPT follows the function's
//     INTx state and COMMAND.INTX_DISABLE gates it (PCI 2.3), and the kernel-side helpers that
//     read and write those bits (pci_intx, pci_check_and_mask_intx, pci_check_and_unmask_intx,
//     pci_intx_mask_supported).
//
// Interrupt handlers run synchronously ("hard irq context"): a device model that raises an
// interrupt from inside a register write sees the handler run (and the eventfd signalled) before
// its write returns. Code that holds a lock an interrupt handler takes (spin_lock_irqsave) brackets
// it with localIrqSave/localIrqRestore: deliveries wait until the restore, as on a CPU with
// interrupts disabled.

import { EBUSY, EINVAL } from '../../kernel/errno.js';
import { Kernel } from '../../kernel/kernel.js';
import { iommuState } from '../../iommu/iommu.js';
import {
  PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_INTERRUPT_PIN, PCI_STATUS, PCI_STATUS_INTERRUPT, pciReadConfigByte,
  pciReadConfigWord, pciWriteConfigWord,
} from './config_space.js';
import type { PciBus, PciDev } from './pci.js';

// include/linux/interrupt.h
export const IRQF_SHARED = 0x00000080;
export const IRQF_NO_AUTOEN = 0x00080000;
export const IRQ_NONE = 0;
export const IRQ_HANDLED = 1;
export type IrqReturn = typeof IRQ_NONE | typeof IRQ_HANDLED;
/** An interrupt handler: runs synchronously, must not sleep. */
export type IrqHandler = (irq: number, devId: unknown) => IrqReturn;

/** IRQ_NOTCONNECTED (include/linux/interrupt.h) */
export const IRQ_NOTCONNECTED = 1 << 31;

interface IrqAction {
  handler: IrqHandler;
  devId: unknown;
  flags: number;
  name: string;
}

/** The part of an irq_chip the model needs. */
export interface IrqChip {
  readonly name: string;
  /** level (IOAPIC, fasteoi) or edge (MSI) flow */
  readonly flow: 'fasteoi' | 'edge';
  /** irq_domain_activate_irq: program the route (an MSI message, an IRTE) */
  activate?(desc: IrqDesc): void;
  /** irq_domain_deactivate_irq */
  deactivate?(desc: IrqDesc): void;
  mask(desc: IrqDesc): void;
  unmask(desc: IrqDesc): void;
}

/** struct irq_desc */
export class IrqDesc {
  readonly actions: IrqAction[] = [];
  /** disable depth: 1 until started by the first request_irq */
  depth = 1;
  activated = false;
  /** IRQS_PENDING: an edge arrived while disabled (resent by enable_irq) */
  pending = false;
  /** IRQ_DISABLE_UNLAZY */
  disableUnlazy = false;
  /** kstat_irqs: interrupts handled by this descriptor */
  count = 0;
  /** note_interrupt */
  irqCount = 0;
  irqsUnhandled = 0;
  /** the chip's per-irq data (an MSI descriptor, an IOAPIC pin) */
  chipData: unknown = null;
  constructor(
    readonly irq: number,
    public chip: IrqChip,
  ) {}
  get disabled(): boolean {
    return this.depth > 0;
  }
}

/** An IOAPIC input (GSI): level triggered, active while any function routed to it asserts. */
export class IoapicPin {
  readonly inputs = new Set<PciDev>();
  masked = true;
  remoteIrr = false;
  constructor(
    readonly gsi: number,
    readonly desc: IrqDesc,
  ) {}
  /** the line is high while a function still present drives it (a removed one drives nothing) */
  get level(): boolean {
    for (const d of this.inputs) if (!d.removed) return true;
    return false;
  }
}

/** One interrupt-remapping table entry (struct irte, as far as the model needs it). */
interface Irte {
  irq: number;
  present: boolean;
}

interface IrqState {
  descs: Map<number, IrqDesc>;
  pins: Map<number, IoapicPin>;
  irte: Map<number, Irte>;
  irteUsed: Set<number>;
  /** without remapping: vector -> irq of the (single) CPU's vector table */
  vectors: Map<number, number>;
  /** local_irq_save depth; deliveries wait in `deferred` while it is non-zero */
  irqsOff: number;
  deferred: Array<() => void>;
  /** irq bypass producers by token (virt/lib/irqbypass.c) */
  bypassTokens: Set<unknown>;
}

/** Linux IRQ numbers in use at boot on the oracle's q35 guest: 0-15 legacy, 16-23 IOAPIC, 24
 * dmar0, 25-27 the root ports' PME, 28 ahci — new MSI vectors get 29 and up. */
const FIRST_DYNAMIC_IRQ = 29;
/** IRTEs the oracle's guest has in use at boot (IOAPIC pins and the boot-time MSIs): the first
 * vfio MSI gets index 23 (message address 0xfee002f8) there. */
const IRTE_BOOT_ENTRIES = 23;
const IRTE_ENTRIES = 65536;
/** first free vector on the CPU without remapping (FIRST_EXTERNAL_VECTOR 0x20 + the boot's) */
const FIRST_FREE_VECTOR = 0x22;
const LAST_VECTOR = 0xeb;

export function irqState(k: Kernel): IrqState {
  return k.state<IrqState>('irq', () => ({
    descs: new Map(),
    pins: new Map(),
    irte: new Map(),
    irteUsed: new Set(Array.from({ length: IRTE_BOOT_ENTRIES }, (_, i) => i)),
    vectors: new Map(),
    irqsOff: 0,
    deferred: [],
    bypassTokens: new Set(),
  }));
}

/** The IOMMU remaps interrupts (the topology's iommu.interrupt_remapping: isolated MSI). */
export function irqRemapping(k: Kernel): boolean {
  return iommuState(k).hw.isolatedMsi;
}

export function irqToDesc(k: Kernel, irq: number): IrqDesc | null {
  return irqState(k).descs.get(irq) ?? null;
}

/** irq_alloc_descs: the lowest free dynamic IRQ number. */
export function irqAllocDesc(k: Kernel, chip: IrqChip): IrqDesc {
  const st = irqState(k);
  let irq = FIRST_DYNAMIC_IRQ;
  while (st.descs.has(irq)) irq++;
  const d = new IrqDesc(irq, chip);
  st.descs.set(irq, d);
  return d;
}

/** irq_free_descs */
export function irqFreeDesc(k: Kernel, desc: IrqDesc): void {
  irqState(k).descs.delete(desc.irq);
}

// ---- interrupt-disabled regions --------------------------------------------------------------

/** local_irq_save (spin_lock_irqsave's half): hold deliveries back. */
export function localIrqSave(k: Kernel): void {
  irqState(k).irqsOff++;
}

/** local_irq_restore: deliver what arrived meanwhile. */
export function localIrqRestore(k: Kernel): void {
  const st = irqState(k);
  if (--st.irqsOff > 0) return;
  while (st.deferred.length && st.irqsOff === 0) st.deferred.shift()!();
}

function deliverOrDefer(k: Kernel, f: () => void): void {
  const st = irqState(k);
  if (st.irqsOff > 0) st.deferred.push(f);
  else f();
}

// ---- the flow handlers -------------------------------------------------------------------------

function runActions(k: Kernel, desc: IrqDesc): IrqReturn {
  let ret: IrqReturn = IRQ_NONE;
  // hard irq context: an interrupt raised meanwhile is delivered after the handlers return
  localIrqSave(k);
  try {
    desc.count++;
    for (const a of [...desc.actions]) if (a.handler(desc.irq, a.devId) === IRQ_HANDLED) ret = IRQ_HANDLED;
    noteInterrupt(k, desc, ret);
  } finally {
    localIrqRestore(k);
  }
  return ret;
}

/** note_interrupt: 99,900 unhandled of 100,000 and the IRQ is disabled ("nobody cared"). */
function noteInterrupt(k: Kernel, desc: IrqDesc, ret: IrqReturn): void {
  desc.irqCount++;
  if (ret === IRQ_NONE) desc.irqsUnhandled++;
  if (desc.irqCount < 100_000) return;
  desc.irqCount = 0;
  if (desc.irqsUnhandled > 99_900) {
    k.printk(`irq ${desc.irq}: nobody cared (try booting with the "irqpoll" option)`);
    k.printk('Disabling IRQ #' + desc.irq);
    desc.depth++;
    desc.chip.mask(desc);
  }
  desc.irqsUnhandled = 0;
}

/** handle_edge_irq (MSI) */
function handleEdgeIrq(k: Kernel, desc: IrqDesc): void {
  if (desc.disabled || !desc.actions.length) {
    desc.pending = true;
    desc.chip.mask(desc);
    return;
  }
  runActions(k, desc);
}

/** The IOAPIC delivers a pin: handle_fasteoi_irq, then the EOI clears Remote IRR; a line still
 * high (nobody lowered it) is delivered again. */
function ioapicDeliver(k: Kernel, pin: IoapicPin): void {
  for (let i = 0; i < 200_000 && pin.level && !pin.masked && !pin.remoteIrr; i++) {
    const desc = pin.desc;
    pin.remoteIrr = true;
    if (desc.disabled || !desc.actions.length) {
      desc.pending = true;
      desc.chip.mask(desc);
    } else runActions(k, desc);
    pin.remoteIrr = false; // EOI
  }
}

// ---- request_irq / free_irq / disable / enable --------------------------------------------------

/** request_irq / request_threaded_irq with no thread: 0, -EINVAL (no such IRQ), -EBUSY (not sharable). */
export function requestIrq(k: Kernel, irq: number, handler: IrqHandler, flags: number, name: string, devId: unknown): number {
  const desc = irqToDesc(k, irq);
  if (!desc || irq === IRQ_NOTCONNECTED) return -EINVAL;
  if ((flags & IRQF_SHARED) && !devId) return -EINVAL;
  if (desc.actions.length) {
    const old = desc.actions[0]!;
    if (!(old.flags & IRQF_SHARED) || !(flags & IRQF_SHARED)) {
      k.printk(`genirq: Flags mismatch irq ${irq}. ${hex8(flags)} (${name}) vs. ${hex8(old.flags)} (${old.name})`);
      return -EBUSY;
    }
  }
  const first = desc.actions.length === 0;
  desc.actions.push({ handler, devId, flags, name });
  if (first) {
    desc.pending = false;
    // __setup_irq: irq_activate, then irq_startup unless IRQF_NO_AUTOEN
    if (!desc.activated) {
      desc.activated = true;
      desc.chip.activate?.(desc);
    }
    if (flags & IRQF_NO_AUTOEN) desc.depth = 1;
    else {
      desc.depth = 0;
      desc.chip.unmask(desc);
    }
  }
  k.event('request_irq', { irq, name });
  return 0;
}

/** free_irq: the last action shuts the IRQ down (mask) and deactivates it. */
export function freeIrq(k: Kernel, irq: number, devId: unknown): void {
  const desc = irqToDesc(k, irq);
  const i = desc ? desc.actions.findIndex((a) => a.devId === devId) : -1;
  if (!desc || i < 0) {
    k.warn(`Trying to free already-free IRQ ${irq}`);
    return;
  }
  desc.actions.splice(i, 1);
  if (!desc.actions.length) {
    desc.depth = 1;
    desc.chip.mask(desc);
    if (desc.activated) {
      desc.activated = false;
      desc.chip.deactivate?.(desc);
    }
  }
  k.event('free_irq', { irq });
}

/** disable_irq_nosync */
export function disableIrqNosync(k: Kernel, irq: number): void {
  const desc = irqToDesc(k, irq);
  if (!desc) return;
  if (desc.depth++ === 0) desc.chip.mask(desc);
}

/** enable_irq: an edge that arrived while disabled is resent (check_irq_resend; not for level). */
export function enableIrq(k: Kernel, irq: number): void {
  const desc = irqToDesc(k, irq);
  if (!desc) return;
  if (desc.depth === 0) {
    k.warn(`Unbalanced enable for IRQ ${irq}`);
    return;
  }
  if (--desc.depth === 0) {
    desc.chip.unmask(desc);
    if (desc.pending && desc.chip.flow === 'edge') {
      desc.pending = false;
      deliverOrDefer(k, () => handleEdgeIrq(k, desc));
    } else desc.pending = false;
  }
}

/** irq_set_status_flags(irq, IRQ_DISABLE_UNLAZY) / irq_clear_status_flags */
export function irqSetDisableUnlazy(k: Kernel, irq: number, on: boolean): void {
  const desc = irqToDesc(k, irq);
  if (desc) desc.disableUnlazy = on;
}

/** synchronize_irq: handlers run synchronously here, so none is in flight. */
export function synchronizeIrq(_k: Kernel, _irq: number): void {}

/** irq_bypass_register_producer: one producer per token (the eventfd); -EBUSY for a second. */
export function irqBypassRegisterProducer(k: Kernel, token: unknown): number {
  const st = irqState(k);
  if (st.bypassTokens.has(token)) return -EBUSY;
  st.bypassTokens.add(token);
  return 0;
}

export function irqBypassUnregisterProducer(k: Kernel, token: unknown): void {
  irqState(k).bypassTokens.delete(token);
}

function hex8(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}

// ---- MSI messages ------------------------------------------------------------------------------

export interface MsiMsg {
  addressLo: number;
  addressHi: number;
  data: number;
}

const MSI_ADDR_BASE = 0xfee00000;
const MSI_ADDR_IR_FORMAT = 1 << 4;
const MSI_ADDR_IR_SHV = 1 << 3;

/** alloc_irte: `count` entries (rounded up to a power of two, aligned), the lowest free block. */
export function irteAlloc(k: Kernel, count: number): number {
  const st = irqState(k);
  let n = 1;
  while (n < count) n <<= 1;
  for (let base = 0; base + n <= IRTE_ENTRIES; base += n) {
    let free = true;
    for (let i = 0; i < n && free; i++) if (st.irteUsed.has(base + i)) free = false;
    if (free) {
      for (let i = 0; i < n; i++) st.irteUsed.add(base + i);
      return base;
    }
  }
  return -1;
}

export function irteFree(k: Kernel, base: number, count: number): void {
  const st = irqState(k);
  let n = 1;
  while (n < count) n <<= 1;
  for (let i = 0; i < n; i++) {
    st.irteUsed.delete(base + i);
    st.irte.delete(base + i);
  }
}

/** Program (or clear) the IRTE that routes to `irq`. */
export function irteSet(k: Kernel, index: number, irq: number | null): void {
  const st = irqState(k);
  if (irq === null) st.irte.set(index, { irq: -1, present: false });
  else st.irte.set(index, { irq, present: true });
}

/** A CPU vector for `irq` (no remapping). */
export function vectorAlloc(k: Kernel, irq: number): number {
  const st = irqState(k);
  for (let v = FIRST_FREE_VECTOR; v <= LAST_VECTOR; v++)
    if (!st.vectors.has(v)) {
      st.vectors.set(v, irq);
      return v;
    }
  return -1;
}

export function vectorFree(k: Kernel, v: number): void {
  irqState(k).vectors.delete(v);
}

/**
 * The message that routes to an IRTE (intel/irq_remapping.c: fill_msi_msg: remappable format,
 * subhandle valid) or to a CPU vector (x86 compatibility format, destination APIC 0, fixed, edge).
 */
export function msiComposeMsg(k: Kernel, route: number, subhandle = 0): MsiMsg {
  if (irqRemapping(k)) {
    const lo = MSI_ADDR_BASE | ((route & 0x7fff) << 5) | MSI_ADDR_IR_FORMAT | MSI_ADDR_IR_SHV | (((route >> 15) & 1) << 2);
    return { addressLo: lo >>> 0, addressHi: 0, data: subhandle };
  }
  return { addressLo: MSI_ADDR_BASE >>> 0, addressHi: 0, data: route & 0xff };
}

export type MsiWriteResult = 'delivered' | 'not-an-interrupt' | 'remap-fault';

/**
 * A memory write a function makes to deliver an MSI (bus mastering is the caller's check): a
 * write outside the interrupt window is an ordinary DMA write (a zeroed message, after the kernel
 * deactivated the vector, lands at address 0), not an interrupt.
 */
export function msiWrite(k: Kernel, msg: MsiMsg, source: string): MsiWriteResult {
  const st = irqState(k);
  if (msg.addressHi !== 0 || (msg.addressLo & 0xfff00000) >>> 0 !== MSI_ADDR_BASE) {
    k.event('msi_not_interrupt', { device: source, address: hexAddr(msg) });
    return 'not-an-interrupt';
  }
  let irq: number | undefined;
  if (irqRemapping(k)) {
    if (!(msg.addressLo & MSI_ADDR_IR_FORMAT)) {
      // compatibility-format interrupts are blocked once remapping is on
      k.printk(`DMAR: [INTR-REMAP] Request device [${source}] fault index 0x0 [fault reason 0x25] Blocked a compatibility format interrupt request`);
      return 'remap-fault';
    }
    let index = ((msg.addressLo >>> 5) & 0x7fff) | (((msg.addressLo >>> 2) & 1) << 15);
    if (msg.addressLo & MSI_ADDR_IR_SHV) index += msg.data & 0xffff;
    const e = st.irte.get(index);
    if (!e || !e.present) {
      k.printk(`DMAR: [INTR-REMAP] Request device [${source}] fault index 0x${index.toString(16)} [fault reason 0x22] Present field in the IRTE entry is clear`);
      return 'remap-fault';
    }
    irq = e.irq;
  } else irq = st.vectors.get(msg.data & 0xff);
  const desc = irq === undefined ? null : irqToDesc(k, irq);
  if (!desc) return 'remap-fault';
  deliverOrDefer(k, () => handleEdgeIrq(k, desc));
  return 'delivered';
}

function hexAddr(m: MsiMsg): string {
  return '0x' + m.addressHi.toString(16) + (m.addressLo >>> 0).toString(16).padStart(8, '0');
}

// ---- IOAPIC pins and INTx routing ------------------------------------------------------------------

const ioapicChip: IrqChip = {
  name: 'IR-IO-APIC',
  flow: 'fasteoi',
  mask(desc) {
    (desc.chipData as IoapicPin).masked = true;
  },
  unmask(desc) {
    // the line is sampled on its next rising edge only (see the header)
    (desc.chipData as IoapicPin).masked = false;
  },
};

/** The IOAPIC pin (and its IRQ, numbered as the GSI) of `gsi`, created on first use. */
export function ioapicPin(k: Kernel, gsi: number): IoapicPin {
  const st = irqState(k);
  let pin = st.pins.get(gsi);
  if (!pin) {
    const desc = new IrqDesc(gsi, ioapicChip);
    pin = new IoapicPin(gsi, desc);
    desc.chipData = pin;
    st.pins.set(gsi, pin);
    st.descs.set(gsi, desc);
  }
  return pin;
}

/** pci_swizzle_interrupt_pin up to the root bus, then q35's _PRT: GSI 16 + ('E' + (slot + pin - 1) & 3). */
export function pciIntxGsi(pdev: PciDev, pin: number): number {
  let d: PciDev = pdev;
  let p = pin;
  let bus: PciBus = d.bus;
  while (bus.self) {
    p = (((p - 1 + (d.devfn >> 3)) % 4) + 4) % 4 + 1;
    d = bus.self;
    bus = d.bus;
  }
  const slot = d.devfn >> 3;
  return 16 + 4 + ((slot + p - 1) & 3);
}

// ---- a function's INTx (device side) and the kernel's helpers -----------------------------------------

/** Per-function interrupt state: dev->irq and the function's INTx output. */
export interface PciIrqDev {
  readonly k: Kernel;
  readonly pdev: PciDev;
  /** dev->irq: the INTx GSI (0 without a pin), an MSI's first IRQ while MSI is enabled */
  irq: number;
  /** the INTx IRQ (msi_attrib.default_irq) */
  readonly intxIrq: number;
  /** the function's logic asserts INTx */
  intxAsserted: boolean;
}

const devs = new WeakMap<PciDev, PciIrqDev>();

/**
 * Connect a function to the interrupt machinery (done when the function is added to its bus):
 * its INTx route (pcibios_enable_irq), the COMMAND hook that gates INTx, and the reset hook.
 */
export function pciIrqInit(k: Kernel, pdev: PciDev): PciIrqDev {
  let s = devs.get(pdev);
  if (s) return s;
  const pin = pdev.config ? pciReadConfigByte(pdev, PCI_INTERRUPT_PIN) : pdev.interruptPin;
  const gsi = pin >= 1 && pin <= 4 ? pciIntxGsi(pdev, pin) : 0;
  s = { k, pdev, irq: gsi, intxIrq: gsi, intxAsserted: false };
  devs.set(pdev, s);
  if (gsi) ioapicPin(k, gsi);
  const st = s;
  pdev.config?.hooks.push((where, size) => {
    if (where <= PCI_COMMAND + 1 && PCI_COMMAND < where + size) pciIntxUpdate(st);
  });
  pdev.resetHooks.push(() => {
    // the function's logic is reset: it no longer asserts INTx
    st.intxAsserted = false;
    pciIntxUpdate(st);
  });
  return s;
}

/** The interrupt state of a function (connected on first use if the PCI core has not yet). */
export function pciIrqDev(k: Kernel, pdev: PciDev): PciIrqDev {
  return devs.get(pdev) ?? pciIrqInit(k, pdev);
}

export function pciIrqDevIfAny(pdev: PciDev): PciIrqDev | null {
  return devs.get(pdev) ?? null;
}

/** dev->irq */
export function pciDevIrq(k: Kernel, pdev: PciDev): number {
  return pciIrqDev(k, pdev).irq;
}

/** The function's INTx output after COMMAND.INTX_DISABLE: what reaches its IOAPIC pin. */
function pciIntxUpdate(s: PciIrqDev): void {
  const { k, pdev } = s;
  if (!pdev.config) return;
  const status = pdev.config.read(PCI_STATUS, 2);
  const want = s.intxAsserted ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT;
  if (want !== status) pdev.config.set(PCI_STATUS, 2, want);
  if (!s.intxIrq) return;
  const out = s.intxAsserted && !pdev.removed && !(pdev.config.read(PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);
  const pin = ioapicPin(k, s.intxIrq);
  const was = pin.level;
  if (out) pin.inputs.add(pdev);
  else pin.inputs.delete(pdev);
  if (!was && pin.level) deliverOrDefer(k, () => ioapicDeliver(k, pin));
}

/**
 * Device-model API: the function asserts (true) or deasserts (false) its INTx pin. PCI_STATUS
 * .INTERRUPT follows at once; the line reaches the IOAPIC unless COMMAND.INTX_DISABLE is set.
 * A function without an interrupt pin ignores it.
 */
export function pciSetIntx(k: Kernel, pdev: PciDev, asserted: boolean): void {
  const s = pciIrqDev(k, pdev);
  if (!pdev.config || !pciReadConfigByte(pdev, PCI_INTERRUPT_PIN)) return;
  if (s.intxAsserted === asserted) return;
  s.intxAsserted = asserted;
  if (k.trace.active) k.event('intx', { device: pdev.name, asserted });
  pciIntxUpdate(s);
}

/** pci_intx: set or clear COMMAND.INTX_DISABLE (enable = 1 clears it). */
export function pciIntx(pdev: PciDev, enable: boolean): void {
  const cmd = pciReadConfigWord(pdev, PCI_COMMAND);
  const n = enable ? cmd & ~PCI_COMMAND_INTX_DISABLE : cmd | PCI_COMMAND_INTX_DISABLE;
  if (n !== cmd) pciWriteConfigWord(pdev, PCI_COMMAND, n);
}

/**
 * pci_check_and_set_intx_mask (drivers/pci/irq.c): one dword read of COMMAND+STATUS; masking
 * happens only if the function has an interrupt pending, unmasking only if it has none.
 */
function pciCheckAndSetIntxMask(k: Kernel, pdev: PciDev, mask: boolean): boolean {
  localIrqSave(k); // raw_spin_lock_irqsave(&pci_lock)
  try {
    const dw = pdev.removed ? 0xffffffff : pdev.config.read(PCI_COMMAND, 4);
    const pending = !!((dw >>> 16) & PCI_STATUS_INTERRUPT);
    if (mask !== pending) return false;
    const orig = dw & 0xffff;
    let n = orig & ~PCI_COMMAND_INTX_DISABLE;
    if (mask) n |= PCI_COMMAND_INTX_DISABLE;
    if (n !== orig) pciWriteConfigWord(pdev, PCI_COMMAND, n);
    return true;
  } finally {
    localIrqRestore(k);
  }
}

/** pci_check_and_mask_intx: mask INTx if the function has it asserted; true if it did. */
export function pciCheckAndMaskIntx(k: Kernel, pdev: PciDev): boolean {
  return pciCheckAndSetIntxMask(k, pdev, true);
}

/** pci_check_and_unmask_intx: unmask INTx unless one is pending; false if it stays masked. */
export function pciCheckAndUnmaskIntx(k: Kernel, pdev: PciDev): boolean {
  return pciCheckAndSetIntxMask(k, pdev, false);
}

/**
 * pci_intx_mask_supported (!dev->broken_intx_masking, probed at enumeration by toggling
 * COMMAND.INTX_DISABLE and reading it back; pci_intx_mask_broken).
 */
export function pciIntxMaskSupported(pdev: PciDev): boolean {
  const orig = pciReadConfigWord(pdev, PCI_COMMAND);
  const toggle = orig ^ PCI_COMMAND_INTX_DISABLE;
  pciWriteConfigWord(pdev, PCI_COMMAND, toggle);
  const n = pciReadConfigWord(pdev, PCI_COMMAND);
  pciWriteConfigWord(pdev, PCI_COMMAND, orig);
  return n === toggle;
}
