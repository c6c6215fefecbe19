// PCI MSI and MSI-X (drivers/pci/msi/{api,msi,irqdomain}.c) on both sides of the wire:
//
//   * the kernel side: pci_alloc_irq_vectors / pci_free_irq_vectors, pci_irq_vector,
//     pci_msix_can_alloc_dyn / pci_msix_alloc_irq_at (dynamic MSI-X, which x86 supports), the
//     msi_desc of each vector with its cached message and vector control, activation writing the
//     message (early, at allocation; again at request_irq after a free_irq deactivated it with a
//     zeroed message), startup/shutdown unmasking and masking the vector at the function, and
//     pci_restore_msi_state after a reset;
//   * the function side: the MSI capability registers (enable, Multiple Message Enable, address,
//     data, per-vector mask and pending bits) and the MSI-X table and PBA the function keeps in a
//     BAR. A device model calls pciRaiseMsi / pciRaiseMsix: a masked vector sets its pending bit
//     and is sent when unmasked; an unmasked one is written as a DMA write of its message, which
//     needs COMMAND.MASTER (without it the write, and the interrupt, are lost).
//
// The kernel reaches the MSI-X table through the function's BAR (MMIO), so its table accesses
// need memory decoding (COMMAND.MEMORY, D0): otherwise a write is lost and a read returns all ones
// - which is why vfio-pci brackets them with vfio_pci_memory_lock_and_enable.

import { EINVAL, ENOMEM, ENOSPC, ERANGE } from '../../kernel/errno.js';

/** ENOTSUPP (include/linux/errno.h, kernel internal) */
const ENOTSUPP = 524;
import { Kernel } from '../../kernel/kernel.js';
import {
  PCI_COMMAND, PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_MSIX_ENTRY_CTRL_MASKBIT, PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE, PCI_MSIX_FLAGS_MASKALL, PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_TABLE, PCI_MSI_ADDRESS_HI, PCI_MSI_ADDRESS_LO, PCI_MSI_DATA_32, PCI_MSI_DATA_64,
  PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT, PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_MASKBIT, PCI_MSI_FLAGS_QMASK,
  PCI_MSI_FLAGS_QSIZE, PCI_MSI_MASK_32, PCI_MSI_MASK_64, PCI_MSI_PENDING_32, PCI_MSI_PENDING_64, pciReadConfigDword,
  pciReadConfigWord, pciRestoreStateHooks, pciWriteConfigDword, pciWriteConfigWord,
} from './config_space.js';
import {
  IrqChip, IrqDesc, MsiMsg, irqAllocDesc, irqFreeDesc, irqRemapping, irqToDesc, irteAlloc, irteFree, irteSet,
  msiComposeMsg, msiWrite, pciIntx, pciIrqDev, pciIrqInit, pciSetIntx, vectorAlloc, vectorFree,
} from './irq.js';
import type { PciDev } from './pci.js';

// include/linux/pci.h
export const PCI_IRQ_INTX = 1 << 0;
export const PCI_IRQ_MSI = 1 << 1;
export const PCI_IRQ_MSIX = 1 << 2;

/** struct msi_desc */
export interface MsiDesc {
  /** msi_index: the MSI-X table entry (0 for MSI) */
  readonly index: number;
  readonly isMsix: boolean;
  /** the IRQs of this descriptor: one for MSI-X, nvec_used for MSI */
  readonly irqs: IrqDesc[];
  /** the remapping-table base (or, without remapping, the CPU vectors) */
  readonly routes: number[];
  readonly irteBase: number;
  /** entry->msg: the message last written */
  msg: MsiMsg;
  /** MSI-X: the cached vector control word */
  msixCtrl: number;
  /** MSI: multiple (log2 of the enabled vectors), can_mask, is_64, the cached mask */
  readonly multiple: number;
  readonly canMask: boolean;
  readonly is64: boolean;
  msiMask: number;
}

interface MsiIrqData {
  s: PciMsiDev;
  desc: MsiDesc;
  sub: number;
}

/** The MSI side of a function: pdev->msi_enabled, ->msix_enabled, ->msix_base, the descriptors,
 * and (device side) the MSI-X table and PBA. */
export interface PciMsiDev {
  readonly k: Kernel;
  readonly pdev: PciDev;
  msiEnabled: boolean;
  msixEnabled: boolean;
  /** pdev->msix_base: the table is mapped (msix_map_region) */
  msixMapped: boolean;
  readonly descs: Map<number, MsiDesc>;
  /** the function's MSI-X table and PBA (in its BAR); replaceable by the BAR model's memory */
  table: Uint8Array;
  pba: Uint8Array;
  /** the table and PBA live in the BAR model's memory (or it has none) */
  attached: boolean;
}

const devs = new WeakMap<PciDev, PciMsiDev>();
const ZERO_MSG: MsiMsg = { addressLo: 0, addressHi: 0, data: 0 };

function msixTableSize(pdev: PciDev): number {
  const cap = pdev.msixCap;
  return cap ? cap.vectors : 0;
}

/** The MSI state of a function, created (with a power-on MSI-X table) on first use. */
export function pciMsiDev(k: Kernel, pdev: PciDev): PciMsiDev {
  let s = devs.get(pdev);
  if (s) return s;
  const n = msixTableSize(pdev);
  s = {
    k,
    pdev,
    msiEnabled: false,
    msixEnabled: false,
    msixMapped: false,
    descs: new Map(),
    table: new Uint8Array(n * PCI_MSIX_ENTRY_SIZE),
    pba: new Uint8Array(Math.ceil(n / 64) * 8),
    attached: n === 0,
  };
  msixTablePowerOn(s);
  devs.set(pdev, s);
  const st = s;
  pciIrqDev(k, pdev);
  pdev.config?.hooks.push((where, size, _value, old) => msiConfigWritten(st, where, size, old));
  // a reset brings the table back to power-on (every vector masked) and clears pending bits;
  // pci_restore_state (pciRestoreMsiState) then reprograms what the kernel had set up
  pdev.resetHooks.push(() => {
    msixStorage(st);
    msixTablePowerOn(st);
  });
  return s;
}

export function pciMsiDevIfAny(pdev: PciDev): PciMsiDev | null {
  return devs.get(pdev) ?? null;
}

/**
 * The table and PBA are bytes of the function's BAR: once the BAR model has memory for that BAR
 * (what a process mapping of it shows), they live there. Done on first use, not at boot: the
 * bridge installs its shareable device-memory allocator after the host is built.
 */
function msixStorage(s: PciMsiDev): void {
  if (s.attached) return;
  s.attached = true;
  const x = s.pdev.msixCap;
  const hw = s.pdev.hw;
  if (!x || !hw) return;
  const tm = hw.mmapMemory(x.tableBar);
  const pm = x.pbaBar === x.tableBar ? tm : hw.mmapMemory(x.pbaBar);
  if (!tm || !pm || x.tableOffset + s.table.length > tm.length || x.pbaOffset + s.pba.length > pm.length) return;
  // the model powered its BAR on (vectors masked): adopt its bytes
  s.table = tm.subarray(x.tableOffset, x.tableOffset + s.table.length);
  s.pba = pm.subarray(x.pbaOffset, x.pbaOffset + s.pba.length);
}

function msixTablePowerOn(s: PciMsiDev): void {
  s.table.fill(0);
  s.pba.fill(0);
  const dv = view(s.table);
  for (let i = 0; i < s.table.length / PCI_MSIX_ENTRY_SIZE; i++)
    dv.setUint32(i * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT, true);
}

/**
 * Let the function's MSI-X table and PBA live in memory the BAR model owns (views into its BAR
 * memory, e.g. what it hands out for mmap). The current contents are copied over.
 */
export function pciMsixAttachStorage(k: Kernel, pdev: PciDev, table: Uint8Array, pba: Uint8Array): void {
  const s = pciMsiDev(k, pdev);
  table.set(s.table.subarray(0, Math.min(table.length, s.table.length)));
  pba.set(s.pba.subarray(0, Math.min(pba.length, s.pba.length)));
  s.table = table;
  s.pba = pba;
  s.attached = true;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

// ---- the function side: registers, raising, pending bits ----------------------------------------

/** The function decodes its BARs: COMMAND.MEMORY, in D0, still present. */
function decodesMemory(pdev: PciDev): boolean {
  if (pdev.removed) return false;
  if ((pdev as { currentState?: number }).currentState) return false;
  return !!(pdev.config.read(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY);
}

/**
 * A host MMIO read of the MSI-X table or PBA (for the BAR model: `off` is relative to the
 * table's start, or to the PBA's with `pba`). Returns all ones when the function does not decode.
 */
export function pciMsixMmioRead(k: Kernel, pdev: PciDev, off: number, size: 1 | 2 | 4 | 8, pba = false): bigint {
  const s = pciMsiDev(k, pdev);
  msixStorage(s);
  const mem = pba ? s.pba : s.table;
  const ones = (1n << BigInt(8 * size)) - 1n;
  if (!decodesMemory(pdev) || off < 0 || off + size > mem.length) return ones;
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(mem[off + i]!);
  return v;
}

/** A host MMIO write to the MSI-X table (the PBA is read-only); unmasking sends what is pending. */
export function pciMsixMmioWrite(k: Kernel, pdev: PciDev, off: number, size: 1 | 2 | 4 | 8, value: bigint, pba = false): void {
  const s = pciMsiDev(k, pdev);
  msixStorage(s);
  if (pba || !decodesMemory(pdev) || off < 0 || off + size > s.table.length) return;
  for (let i = 0; i < size; i++) s.table[off + i] = Number((value >> BigInt(8 * i)) & 0xffn);
  msixSendPending(s);
}

function tableRead32(s: PciMsiDev, off: number): number {
  return Number(pciMsixMmioRead(s.k, s.pdev, off, 4));
}

function tableWrite32(s: PciMsiDev, off: number, v: number): void {
  pciMsixMmioWrite(s.k, s.pdev, off, 4, BigInt(v >>> 0));
}

function entryMasked(s: PciMsiDev, v: number): boolean {
  return !!(view(s.table).getUint32(v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, true) & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

function pbaSet(s: PciMsiDev, v: number, on: boolean): void {
  const byte = v >> 3;
  if (byte >= s.pba.length) return;
  if (on) s.pba[byte] = s.pba[byte]! | (1 << (v & 7));
  else s.pba[byte] = s.pba[byte]! & ~(1 << (v & 7));
}

function pbaGet(s: PciMsiDev, v: number): boolean {
  const byte = v >> 3;
  return byte < s.pba.length && !!(s.pba[byte]! & (1 << (v & 7)));
}

function msixFlags(pdev: PciDev): number {
  const cap = pdev.msixCap;
  return cap && !pdev.removed ? pdev.config.read(cap.at + PCI_MSIX_FLAGS, 2) : 0;
}

/**
 * What became of an interrupt a function raised:
 *   'sent'             the message went out (an MSI-X/MSI write reached the CPU side);
 *   'pending'          the vector is masked (its mask bit, or the MSI-X function mask): its PBA
 *                      (MSI: pending) bit is set and the message goes out when it is unmasked;
 *   'disabled'         MSI-X (MSI) is not enabled in the function's capability: nothing happens;
 *   'no-bus-master'    COMMAND.MASTER is clear: the message write, and the interrupt, are lost;
 *   'invalid'          no such vector (or no such capability);
 *   'not-an-interrupt' the message address is outside the interrupt window (a zeroed, deactivated
 *                      entry): an ordinary DMA write, no interrupt;
 *   'remap-fault'      the interrupt-remapping table has no present entry for the message.
 * The msix_raise / msi_raise trace events carry it.
 */
export type PciIrqResult =
  | 'sent' | 'pending' | 'disabled' | 'no-bus-master' | 'invalid' | 'not-an-interrupt' | 'remap-fault';

function busMaster(pdev: PciDev): boolean {
  return !pdev.removed && !!(pdev.config.read(PCI_COMMAND, 2) & PCI_COMMAND_MASTER);
}

function sendMessage(k: Kernel, pdev: PciDev, msg: MsiMsg, what: string): PciIrqResult {
  if (!busMaster(pdev)) {
    if (k.trace.active) k.event('msi_lost', { device: pdev.name, vector: what, reason: 'bus master disabled' });
    return 'no-bus-master';
  }
  const r = msiWrite(k, msg, pdev.name);
  return r === 'delivered' ? 'sent' : r;
}

function msixSend(s: PciMsiDev, v: number): PciIrqResult {
  const dv = view(s.table);
  const o = v * PCI_MSIX_ENTRY_SIZE;
  const msg = { addressLo: dv.getUint32(o, true), addressHi: dv.getUint32(o + 4, true), data: dv.getUint32(o + 8, true) };
  return sendMessage(s.k, s.pdev, msg, `msix ${v}`);
}

/** Pending MSI-X vectors whose mask (and the function mask) are now clear are sent. */
function msixSendPending(s: PciMsiDev): void {
  msixStorage(s);
  const flags = msixFlags(s.pdev);
  if (!(flags & PCI_MSIX_FLAGS_ENABLE) || flags & PCI_MSIX_FLAGS_MASKALL) return;
  const n = s.table.length / PCI_MSIX_ENTRY_SIZE;
  for (let v = 0; v < n; v++)
    if (pbaGet(s, v) && !entryMasked(s, v)) {
      pbaSet(s, v, false);
      msixSend(s, v);
    }
}

/**
 * Device-model API: the function signals MSI-X table entry `vector`. Masked (by its vector
 * control or the function mask): the PBA bit is set and the message goes out when unmasked.
 */
export function pciRaiseMsix(k: Kernel, pdev: PciDev, vector: number): PciIrqResult {
  const s = pciMsiDev(k, pdev);
  msixStorage(s);
  const n = msixTableSize(pdev);
  let r: PciIrqResult;
  if (!Number.isInteger(vector) || vector < 0 || vector >= n) r = 'invalid';
  else {
    const flags = msixFlags(pdev);
    if (!(flags & PCI_MSIX_FLAGS_ENABLE)) r = 'disabled';
    else if (flags & PCI_MSIX_FLAGS_MASKALL || entryMasked(s, vector)) {
      pbaSet(s, vector, true);
      r = 'pending';
    } else r = msixSend(s, vector);
  }
  if (k.trace.active) k.event('msix_raise', { device: pdev.name, vector, result: r });
  return r;
}

interface MsiRegs {
  at: number;
  flags: number;
  is64: boolean;
  maskPos: number;
  pendPos: number;
  dataPos: number;
}

function msiRegs(pdev: PciDev): MsiRegs | null {
  const cap = pdev.msiCap;
  if (!cap || pdev.removed) return null;
  const flags = pdev.config.read(cap.at + PCI_MSI_FLAGS, 2);
  const is64 = !!(flags & PCI_MSI_FLAGS_64BIT);
  return {
    at: cap.at,
    flags,
    is64,
    maskPos: flags & PCI_MSI_FLAGS_MASKBIT ? cap.at + (is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32) : 0,
    pendPos: flags & PCI_MSI_FLAGS_MASKBIT ? cap.at + (is64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32) : 0,
    dataPos: cap.at + (is64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32),
  };
}

function msiSend(k: Kernel, pdev: PciDev, r: MsiRegs, vector: number): PciIrqResult {
  const cs = pdev.config;
  const nvec = 1 << ((r.flags & PCI_MSI_FLAGS_QSIZE) >> 4);
  const data = cs.read(r.dataPos, 2);
  const msg = {
    addressLo: cs.read(r.at + PCI_MSI_ADDRESS_LO, 4),
    addressHi: r.is64 ? cs.read(r.at + PCI_MSI_ADDRESS_HI, 4) : 0,
    data: (data & ~(nvec - 1)) | vector,
  };
  return sendMessage(k, pdev, msg, `msi ${vector}`);
}

/**
 * Device-model API: the function signals MSI vector `vector` (below the Multiple Message Enable
 * count). A vector masked by the per-vector mask sets its pending bit and goes out when unmasked.
 */
export function pciRaiseMsi(k: Kernel, pdev: PciDev, vector: number): PciIrqResult {
  pciMsiDev(k, pdev);
  const regs = msiRegs(pdev);
  let r: PciIrqResult;
  if (!regs) r = 'invalid';
  else if (!(regs.flags & PCI_MSI_FLAGS_ENABLE)) r = 'disabled';
  else if (!Number.isInteger(vector) || vector < 0 || vector >= 1 << ((regs.flags & PCI_MSI_FLAGS_QSIZE) >> 4)) r = 'invalid';
  else if (regs.maskPos && (pdev.config.read(regs.maskPos, 4) >>> vector) & 1) {
    pdev.config.set(regs.pendPos, 4, (pdev.config.read(regs.pendPos, 4) | (1 << vector)) >>> 0);
    r = 'pending';
  } else r = msiSend(k, pdev, regs, vector);
  if (k.trace.active) k.event('msi_raise', { device: pdev.name, vector, result: r });
  return r;
}

/** Whether the function's MSI (or MSI-X) is enabled in its own config space. */
export function pciMsiHwEnabled(pdev: PciDev): boolean {
  const r = msiRegs(pdev);
  return !!r && !!(r.flags & PCI_MSI_FLAGS_ENABLE);
}

export function pciMsixHwEnabled(pdev: PciDev): boolean {
  return !!(msixFlags(pdev) & PCI_MSIX_FLAGS_ENABLE);
}

/** A config write reached the function: MSI mask bits or the MSI-X function mask may unmask. */
function msiConfigWritten(s: PciMsiDev, where: number, size: number, _old: number): void {
  const pdev = s.pdev;
  const hits = (reg: number, len: number) => where < reg + len && reg < where + size;
  const xcap = pdev.msixCap;
  if (xcap && hits(xcap.at + PCI_MSIX_FLAGS, 2)) msixSendPending(s);
  const r = msiRegs(pdev);
  if (r && r.maskPos && (hits(r.maskPos, 4) || hits(r.at + PCI_MSI_FLAGS, 2))) {
    if (!(r.flags & PCI_MSI_FLAGS_ENABLE)) return;
    const mask = pdev.config.read(r.maskPos, 4);
    const pend = pdev.config.read(r.pendPos, 4);
    const go = pend & ~mask;
    if (!go) return;
    pdev.config.set(r.pendPos, 4, (pend & ~go) >>> 0);
    for (let v = 0; v < 32; v++) if ((go >>> v) & 1) msiSend(s.k, pdev, r, v);
  }
}

// ---- the kernel side ---------------------------------------------------------------------------

/** pci_msix_vec_count */
export function pciMsixVecCount(pdev: PciDev): number {
  const cap = pdev.msixCap;
  if (!cap) return -EINVAL;
  return (pciReadConfigWord(pdev, cap.at + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1;
}

/** pci_msi_vec_count */
export function pciMsiVecCount(pdev: PciDev): number {
  const cap = pdev.msiCap;
  if (!cap) return -EINVAL;
  return 1 << ((pciReadConfigWord(pdev, cap.at + PCI_MSI_FLAGS) & PCI_MSI_FLAGS_QMASK) >> 1);
}

/** pci_msix_can_alloc_dyn: the x86 MSI domains (with or without remapping) support it. */
export function pciMsixCanAllocDyn(pdev: PciDev): boolean {
  return pdev.msixCap !== null;
}

/** MULTI_PCI_MSI: only the remapping domain supports more than one MSI vector on x86. */
function multiMsiSupported(k: Kernel): boolean {
  return irqRemapping(k);
}

function inD0(pdev: PciDev): boolean {
  return !(pdev as { currentState?: number }).currentState;
}

/** pci_msix_clear_and_set_ctrl */
function msixClearAndSetCtrl(pdev: PciDev, clear: number, set: number): void {
  const at = pdev.msixCap!.at + PCI_MSIX_FLAGS;
  pciWriteConfigWord(pdev, at, (pciReadConfigWord(pdev, at) & ~clear) | set);
}

/** pci_msi_set_enable */
function msiSetEnable(pdev: PciDev, enable: boolean): void {
  const at = pdev.msiCap!.at + PCI_MSI_FLAGS;
  const c = pciReadConfigWord(pdev, at) & ~PCI_MSI_FLAGS_ENABLE;
  pciWriteConfigWord(pdev, at, enable ? c | PCI_MSI_FLAGS_ENABLE : c);
}

/** __pci_write_msi_msg: not while the function is out of D0 or gone; entry->msg is kept. */
function writeMsiMsg(s: PciMsiDev, desc: MsiDesc, msg: MsiMsg): void {
  const pdev = s.pdev;
  if (inD0(pdev) && !pdev.removed) {
    if (desc.isMsix) {
      // pci_write_msg_msix: an unmasked entry is masked while its message changes
      const o = desc.index * PCI_MSIX_ENTRY_SIZE;
      const unmasked = !(desc.msixCtrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
      if (unmasked) tableWrite32(s, o + PCI_MSIX_ENTRY_VECTOR_CTRL, desc.msixCtrl | PCI_MSIX_ENTRY_CTRL_MASKBIT);
      tableWrite32(s, o, msg.addressLo);
      tableWrite32(s, o + 4, msg.addressHi);
      tableWrite32(s, o + 8, msg.data);
      if (unmasked) tableWrite32(s, o + PCI_MSIX_ENTRY_VECTOR_CTRL, desc.msixCtrl);
    } else {
      // pci_write_msg_msi
      const at = pdev.msiCap!.at;
      const ctl = pciReadConfigWord(pdev, at + PCI_MSI_FLAGS);
      pciWriteConfigWord(pdev, at + PCI_MSI_FLAGS, (ctl & ~PCI_MSI_FLAGS_QSIZE) | (desc.multiple << 4));
      pciWriteConfigDword(pdev, at + PCI_MSI_ADDRESS_LO, msg.addressLo);
      if (desc.is64) {
        pciWriteConfigDword(pdev, at + PCI_MSI_ADDRESS_HI, msg.addressHi);
        pciWriteConfigWord(pdev, at + PCI_MSI_DATA_64, msg.data);
      } else pciWriteConfigWord(pdev, at + PCI_MSI_DATA_32, msg.data);
    }
  }
  desc.msg = { ...msg };
}

/** pci_msix_write_vector_ctrl */
function msixWriteVectorCtrl(s: PciMsiDev, desc: MsiDesc, ctrl: number): void {
  desc.msixCtrl = ctrl;
  tableWrite32(s, desc.index * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, ctrl);
}

/** pci_msi_update_mask */
function msiUpdateMask(s: PciMsiDev, desc: MsiDesc, clear: number, set: number): void {
  if (!desc.canMask) return;
  desc.msiMask = ((desc.msiMask & ~clear) | set) >>> 0;
  const at = s.pdev.msiCap!.at + (desc.is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
  pciWriteConfigDword(s.pdev, at, desc.msiMask);
}

function msiChip(s: PciMsiDev, msix: boolean): IrqChip {
  const data = (d: IrqDesc) => d.chipData as MsiIrqData;
  return {
    name: msix ? `IR-PCI-MSIX-${s.pdev.name}` : `IR-PCI-MSI-${s.pdev.name}`,
    flow: 'edge',
    // msi_domain_activate: compose and write; for multi-MSI only the first IRQ writes the device
    activate(d) {
      const { desc, sub } = data(d);
      if (irqRemapping(s.k)) irteSet(s.k, desc.routes[sub]!, d.irq);
      if (sub === 0) writeMsiMsg(s, desc, msiComposeMsg(s.k, desc.routes[0]!, 0));
    },
    deactivate(d) {
      const { desc, sub } = data(d);
      if (irqRemapping(s.k)) irteSet(s.k, desc.routes[sub]!, null);
      if (sub === 0) writeMsiMsg(s, desc, ZERO_MSG);
    },
    mask(d) {
      const { desc, sub } = data(d);
      if (desc.isMsix) {
        if (!(desc.msixCtrl & PCI_MSIX_ENTRY_CTRL_MASKBIT)) msixWriteVectorCtrl(s, desc, desc.msixCtrl | PCI_MSIX_ENTRY_CTRL_MASKBIT);
      } else msiUpdateMask(s, desc, 0, 1 << sub);
    },
    unmask(d) {
      const { desc, sub } = data(d);
      if (desc.isMsix) {
        if (desc.msixCtrl & PCI_MSIX_ENTRY_CTRL_MASKBIT) msixWriteVectorCtrl(s, desc, desc.msixCtrl & ~PCI_MSIX_ENTRY_CTRL_MASKBIT);
      } else msiUpdateMask(s, desc, 1 << sub, 0);
    },
  };
}

/** Allocate the IRQs (and IRTEs or vectors) of a descriptor and activate them early. */
function msiAllocDescIrqs(s: PciMsiDev, msix: boolean, index: number, nvec: number, init: Omit<MsiDesc, 'irqs' | 'routes' | 'irteBase' | 'index' | 'isMsix' | 'msg'>): MsiDesc | number {
  const k = s.k;
  const remap = irqRemapping(k);
  const irteBase = remap ? irteAlloc(k, nvec) : -1;
  if (remap && irteBase < 0) return -ENOSPC;
  const chip = msiChip(s, msix);
  const desc: MsiDesc = { ...init, index, isMsix: msix, irqs: [], routes: [], irteBase, msg: { ...ZERO_MSG } };
  for (let i = 0; i < nvec; i++) {
    const d = irqAllocDesc(k, chip);
    d.chipData = { s, desc, sub: i } satisfies MsiIrqData;
    desc.irqs.push(d);
    desc.routes.push(remap ? irteBase + i : vectorAlloc(k, d.irq));
  }
  s.descs.set(index, desc);
  // MSI_FLAG_ACTIVATE_EARLY: the message is written at allocation
  for (const d of desc.irqs) {
    d.activated = true;
    chip.activate!(d);
  }
  return desc;
}

/** Free a descriptor's IRQs: deactivate (zeroed message), release IRTEs/vectors and the IRQs. */
function msiFreeDesc(s: PciMsiDev, desc: MsiDesc): void {
  const k = s.k;
  for (const d of desc.irqs) {
    if (d.actions.length) k.warn(`${s.pdev.name}: freeing MSI IRQ ${d.irq} with an action installed`);
    if (d.activated) {
      d.activated = false;
      d.chip.deactivate?.(d);
    }
    irqFreeDesc(k, d);
  }
  if (desc.irteBase >= 0) irteFree(k, desc.irteBase, desc.irqs.length);
  else for (const v of desc.routes) vectorFree(k, v);
  s.descs.delete(desc.index);
}

/** __pci_enable_msix_range (entries == NULL: vectors 0..nvec-1) */
function pciEnableMsixRange(s: PciMsiDev, minvec: number, maxvec: number): number {
  const pdev = s.pdev;
  let nvec = maxvec;
  if (maxvec < minvec) return -ERANGE;
  if (s.msiEnabled) {
    s.k.printk(`${pdev.name}: can't enable MSI-X (MSI already enabled)`);
    return -EINVAL;
  }
  if (s.msixEnabled) {
    s.k.warn(`${pdev.name}: MSI-X already enabled`);
    return -EINVAL;
  }
  if (nvec < 1 || !inD0(pdev)) return -EINVAL;
  const hwsize = pciMsixVecCount(pdev);
  if (hwsize < 0) return hwsize;
  if (hwsize < nvec) nvec = hwsize;
  if (nvec < minvec) return -ENOSPC;
  // msix_capability_init
  msixClearAndSetCtrl(pdev, 0, PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE);
  s.msixEnabled = true;
  const cap = pdev.msixCap!;
  const bir = pciReadConfigDword(pdev, cap.at + PCI_MSIX_TABLE) & 7;
  const res = pdev.resources[bir];
  if (!res || !res.size) {
    s.msixEnabled = false;
    msixClearAndSetCtrl(pdev, PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE, 0);
    return -ENOMEM;
  }
  s.msixMapped = true;
  for (let i = 0; i < nvec; i++) {
    const ctrl = tableRead32(s, i * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL);
    const r = msiAllocDescIrqs(s, true, i, 1, { msixCtrl: ctrl >>> 0, multiple: 0, canMask: true, is64: true, msiMask: 0 });
    if (typeof r === 'number') {
      for (const d of [...s.descs.values()]) msiFreeDesc(s, d);
      s.msixMapped = false;
      s.msixEnabled = false;
      msixClearAndSetCtrl(pdev, PCI_MSIX_FLAGS_MASKALL | PCI_MSIX_FLAGS_ENABLE, 0);
      return r;
    }
  }
  pciIntx(pdev, false);
  // msix_mask_all: every table entry masked, the cached controls too
  for (let i = 0; i < hwsize; i++) tableWrite32(s, i * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT);
  msixClearAndSetCtrl(pdev, PCI_MSIX_FLAGS_MASKALL, 0);
  return nvec;
}

/** __pci_enable_msi_range */
function pciEnableMsiRange(s: PciMsiDev, minvec: number, maxvec: number): number {
  const pdev = s.pdev;
  if (minvec < 1 || !inD0(pdev)) return -EINVAL;
  if (s.msixEnabled) {
    s.k.printk(`${pdev.name}: can't enable MSI (MSI-X already enabled)`);
    return -EINVAL;
  }
  if (maxvec < minvec) return -ERANGE;
  if (s.msiEnabled) {
    s.k.warn(`${pdev.name}: MSI already enabled`);
    return -EINVAL;
  }
  let nvec = pciMsiVecCount(pdev);
  if (nvec < 0) return nvec;
  if (nvec < minvec) return -ENOSPC;
  if (nvec > maxvec) nvec = maxvec;
  for (;;) {
    const rc = msiCapabilityInit(s, nvec);
    if (rc === 0) return nvec;
    if (rc < 0) return rc;
    if (rc < minvec) return -ENOSPC;
    nvec = rc;
  }
}

/** msi_capability_init */
function msiCapabilityInit(s: PciMsiDev, nvec: number): number {
  const pdev = s.pdev;
  if (nvec > 1 && !multiMsiSupported(s.k)) return 1;
  msiSetEnable(pdev, false);
  const at = pdev.msiCap!.at;
  const control = pciReadConfigWord(pdev, at + PCI_MSI_FLAGS);
  const is64 = !!(control & PCI_MSI_FLAGS_64BIT);
  const canMask = !!(control & PCI_MSI_FLAGS_MASKBIT);
  let multiple = 0;
  while (1 << multiple < nvec) multiple++;
  const maskPos = at + (is64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32);
  const msiMask = canMask ? pciReadConfigDword(pdev, maskPos) >>> 0 : 0;
  // all MSIs are unmasked by default; mask them all (msi_multi_mask)
  const multiMask = nvec >= 32 ? 0xffffffff : (1 << nvec) - 1;
  const r = msiAllocDescIrqs(s, false, 0, nvec, { msixCtrl: 0, multiple, canMask, is64, msiMask });
  if (typeof r === 'number') return r;
  msiUpdateMask(s, r, 0, multiMask);
  s.msiEnabled = true;
  pciIntx(pdev, false);
  msiSetEnable(pdev, true);
  pciIrqDev(s.k, pdev).irq = r.irqs[0]!.irq;
  return 0;
}

/** pci_alloc_irq_vectors (no affinity): the number of vectors, or a negative errno. */
export function pciAllocIrqVectors(k: Kernel, pdev: PciDev, minVecs: number, maxVecs: number, flags: number): number {
  const s = pciMsiDev(k, pdev);
  let nvecs = -ENOSPC;
  if (flags & PCI_IRQ_MSIX) {
    nvecs = pciEnableMsixRange(s, minVecs, maxVecs);
    if (nvecs > 0) return nvecs;
  }
  if (flags & PCI_IRQ_MSI) {
    nvecs = pciEnableMsiRange(s, minVecs, maxVecs);
    if (nvecs > 0) return nvecs;
  }
  if (flags & PCI_IRQ_INTX && minVecs === 1 && pciIrqDev(k, pdev).irq) {
    pciIntx(pdev, true);
    return 1;
  }
  return nvecs;
}

/** pci_free_irq_vectors: pci_disable_msix, then pci_disable_msi. */
export function pciFreeIrqVectors(k: Kernel, pdev: PciDev): void {
  const s = pciMsiDev(k, pdev);
  if (s.msixEnabled) {
    // pci_msix_shutdown: the function is left with every vector masked
    if (!pdev.removed) {
      for (const d of s.descs.values()) if (!(d.msixCtrl & PCI_MSIX_ENTRY_CTRL_MASKBIT)) msixWriteVectorCtrl(s, d, d.msixCtrl | PCI_MSIX_ENTRY_CTRL_MASKBIT);
      msixClearAndSetCtrl(pdev, PCI_MSIX_FLAGS_ENABLE, 0);
      pciIntx(pdev, true);
    }
    s.msixEnabled = false;
    for (const d of [...s.descs.values()]) msiFreeDesc(s, d);
    s.msixMapped = false;
  }
  if (s.msiEnabled) {
    // pci_msi_shutdown: MSI off, INTx back, the vectors left unmasked, dev->irq the INTx IRQ
    msiSetEnable(pdev, false);
    pciIntx(pdev, true);
    s.msiEnabled = false;
    const desc = s.descs.get(0);
    if (desc) msiUpdateMask(s, desc, desc.canMask ? (desc.irqs.length >= 32 ? 0xffffffff : (1 << desc.irqs.length) - 1) : 0, 0);
    const dev = pciIrqDev(k, pdev);
    dev.irq = dev.intxIrq;
    for (const d of [...s.descs.values()]) msiFreeDesc(s, d);
  }
}

/** pci_irq_vector: the IRQ of vector `nr`, or -EINVAL. */
export function pciIrqVector(k: Kernel, pdev: PciDev, nr: number): number {
  const s = pciMsiDev(k, pdev);
  if (!s.msiEnabled && !s.msixEnabled) return nr === 0 ? pciIrqDev(k, pdev).irq : -EINVAL;
  if (s.msixEnabled) {
    const d = s.descs.get(nr);
    return d ? d.irqs[0]!.irq : -EINVAL;
  }
  const d = s.descs.get(0);
  return d && nr < d.irqs.length ? d.irqs[nr]!.irq : -EINVAL;
}

/** pci_msix_alloc_irq_at(dev, index, NULL): a dynamically allocated MSI-X vector; its IRQ. */
export function pciMsixAllocIrqAt(k: Kernel, pdev: PciDev, index: number): number {
  const s = pciMsiDev(k, pdev);
  if (!s.msixEnabled || !pciMsixCanAllocDyn(pdev)) return -ENOTSUPP;
  if (s.descs.has(index)) return -ENOSPC;
  if (index >= msixTableSize(pdev)) return -EINVAL;
  const ctrl = tableRead32(s, index * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL);
  const r = msiAllocDescIrqs(s, true, index, 1, { msixCtrl: ctrl >>> 0, multiple: 0, canMask: true, is64: true, msiMask: 0 });
  return typeof r === 'number' ? r : r.irqs[0]!.irq;
}

function descOfIrq(k: Kernel, irq: number): MsiIrqData | null {
  const d = irqToDesc(k, irq);
  const data = d?.chipData as MsiIrqData | undefined;
  return data && 'desc' in data ? data : null;
}

/** get_cached_msi_msg */
export function getCachedMsiMsg(k: Kernel, irq: number): MsiMsg {
  const r = descOfIrq(k, irq);
  return r ? { ...r.desc.msg } : { ...ZERO_MSG };
}

/** pci_write_msi_msg */
export function pciWriteMsiMsg(k: Kernel, irq: number, msg: MsiMsg): void {
  const r = descOfIrq(k, irq);
  if (r) writeMsiMsg(r.s, r.desc, msg);
}

/**
 * pci_restore_msi_state (called by pci_restore_state after a reset): MSI gets its message, mask
 * and enable back; MSI-X its table entries and vector controls (with memory decoding on meanwhile).
 */
export function pciRestoreMsiState(k: Kernel, pdev: PciDev): void {
  const s = devs.get(pdev);
  if (!s) return;
  if (s.msiEnabled) {
    const desc = s.descs.get(0)!;
    pciIntx(pdev, false);
    msiSetEnable(pdev, false);
    writeMsiMsg(s, desc, desc.msg);
    const at = pdev.msiCap!.at + PCI_MSI_FLAGS;
    const control = pciReadConfigWord(pdev, at);
    msiUpdateMask(s, desc, 0, 0);
    pciWriteConfigWord(pdev, at, (control & ~PCI_MSI_FLAGS_QSIZE) | (desc.multiple << 4) | PCI_MSI_FLAGS_ENABLE);
  }
  if (s.msixEnabled) {
    pciIntx(pdev, false);
    msixClearAndSetCtrl(pdev, 0, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    const cmd = pciReadConfigWord(pdev, PCI_COMMAND);
    pciWriteConfigWord(pdev, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY);
    for (const desc of s.descs.values()) {
      writeMsiMsg(s, desc, desc.msg);
      msixWriteVectorCtrl(s, desc, desc.msixCtrl);
    }
    pciWriteConfigWord(pdev, PCI_COMMAND, cmd);
    msixClearAndSetCtrl(pdev, PCI_MSIX_FLAGS_MASKALL, 0);
  }
}

// pci_restore_state -> pci_restore_msi_state
pciRestoreStateHooks.push((pdev) => {
  const s = devs.get(pdev);
  if (s) pciRestoreMsiState(s.k, pdev);
});

/**
 * Wire a function into the interrupt machinery when it is added to its bus: its INTx route, its
 * MSI/MSI-X registers and table, and its hardware model's interrupt outputs (PciHw.irq).
 */
export function pciIrqConnect(k: Kernel, pdev: PciDev): void {
  pciIrqInit(k, pdev);
  pciMsiDev(k, pdev);
  if (pdev.hw)
    pdev.hw.irq = {
      msi: (v) => void pciRaiseMsi(k, pdev, v),
      msix: (v) => void pciRaiseMsix(k, pdev, v),
      intx: (level) => pciSetIntx(k, pdev, level),
    };
}

/**
 * Where an access of `size` bytes at `off` in BAR `bar` falls in the function's MSI-X table or
 * PBA (which the PCI layer keeps, whatever model implements the rest of the BAR): the offset in
 * the table (or the PBA), or null when the access is elsewhere.
 */
export function pciMsixWindow(pdev: PciDev, bar: number, off: number, size: number): { pba: boolean; off: number } | null {
  const x = pdev.msixCap;
  if (!x) return null;
  const tableLen = x.vectors * PCI_MSIX_ENTRY_SIZE;
  const pbaLen = Math.ceil(x.vectors / 64) * 8;
  if (bar === x.tableBar && off >= x.tableOffset && off + size <= x.tableOffset + tableLen) return { pba: false, off: off - x.tableOffset };
  if (bar === x.pbaBar && off >= x.pbaOffset && off + size <= x.pbaOffset + pbaLen) return { pba: true, off: off - x.pbaOffset };
  return null;
}

/** msi_desc / IRQ views for tests and traces */
export function pciMsiDescs(k: Kernel, pdev: PciDev): MsiDesc[] {
  return [...pciMsiDev(k, pdev).descs.values()];
}
