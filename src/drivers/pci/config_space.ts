// The physical configuration space of a simulated PCI function: the bytes a real function
// answers at CF8/CFC or ECAM, built from the topology (header, BARs, ROM, the capability chain and
// the PCIe extended chain), with per-bit write masks (read-only, read-write, write-1-to-clear)
// as the hardware implements them. The kernel side reads and writes it with the
// pci_{read,write}_config_{byte,word,dword} accessors (drivers/pci/access.c) and walks it with
// pci_find_capability / pci_find_ext_capability (drivers/pci/pci.c); vfio-pci's virtualisation
// (vfio_pci_config.c) sits on top of these accessors, never on the bytes.
//
// A function reset (FLR, PM, bus) brings the bytes back to their power-on values; the kernel's
// pci_save_state / pci_restore_state put the software-programmed parts back.

import type { PciDev } from './pci.js';
import {
  PCIE_TYPES, PciCap, PciExtCap, pciCapIdNumber, pciCapLength, pciExtCapIdNumber, pciExtCapLength,
} from './caps.js';

// include/uapi/linux/pci_regs.h
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_COMMAND_IO = 0x1;
export const PCI_COMMAND_MEMORY = 0x2;
export const PCI_COMMAND_MASTER = 0x4;
export const PCI_COMMAND_PARITY = 0x40;
export const PCI_COMMAND_SERR = 0x100;
export const PCI_COMMAND_INTX_DISABLE = 0x400;
export const PCI_STATUS = 0x06;
export const PCI_STATUS_INTERRUPT = 0x08;
export const PCI_STATUS_CAP_LIST = 0x10;
export const PCI_CLASS_REVISION = 0x08;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BASE_ADDRESS_0 = 0x10;
export const PCI_PRIMARY_BUS = 0x18;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_ROM_ADDRESS1 = 0x38;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
export const PCI_BRIDGE_CONTROL = 0x3e;
export const PCI_BRIDGE_CTL_BUS_RESET = 0x40;

export const PCI_PM_PMC = 2;
export const PCI_PM_CTRL = 4;
export const PCI_PM_CTRL_STATE_MASK = 0x3;
export const PCI_PM_CTRL_NO_SOFT_RESET = 0x8;
export const PCI_PM_CTRL_PME_ENABLE = 0x100;
export const PCI_PM_CTRL_PME_STATUS = 0x8000;

export const PCI_MSI_FLAGS = 2;
export const PCI_MSI_FLAGS_ENABLE = 0x1;
export const PCI_MSI_FLAGS_QMASK = 0xe;
export const PCI_MSI_FLAGS_QSIZE = 0x70;
export const PCI_MSI_FLAGS_64BIT = 0x80;
export const PCI_MSI_FLAGS_MASKBIT = 0x100;
export const PCI_MSI_ADDRESS_LO = 4;
export const PCI_MSI_ADDRESS_HI = 8;
export const PCI_MSI_DATA_32 = 8;
export const PCI_MSI_MASK_32 = 12;
export const PCI_MSI_PENDING_32 = 16;
export const PCI_MSI_DATA_64 = 12;
export const PCI_MSI_MASK_64 = 16;
export const PCI_MSI_PENDING_64 = 20;

export const PCI_MSIX_FLAGS = 2;
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff;
export const PCI_MSIX_FLAGS_MASKALL = 0x4000;
export const PCI_MSIX_FLAGS_ENABLE = 0x8000;
export const PCI_MSIX_TABLE = 4;
export const PCI_MSIX_PBA = 8;
export const PCI_MSIX_FLAGS_BIRMASK = 0x7;
export const PCI_MSIX_ENTRY_SIZE = 16;
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 12;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;

export const PCI_EXP_FLAGS = 2;
export const PCI_EXP_DEVCAP = 4;
export const PCI_EXP_DEVCAP_RBER = 0x8000;
export const PCI_EXP_DEVCAP_FLR = 0x10000000;
export const PCI_EXP_DEVCTL = 8;
export const PCI_EXP_DEVCTL_BCR_FLR = 0x8000;
export const PCI_EXP_DEVSTA = 10;
export const PCI_EXP_DEVSTA_TRPND = 0x20;
export const PCI_EXP_LNKCAP = 12;
export const PCI_EXP_LNKCTL = 16;
export const PCI_EXP_LNKSTA = 18;
export const PCI_EXP_SLTCTL = 24;
export const PCI_EXP_RTCTL = 28;
export const PCI_EXP_DEVCAP2 = 36;
export const PCI_EXP_DEVCTL2 = 40;
export const PCI_EXP_DEVCAP2_EFF = 0x00100000;
export const PCI_EXP_DEVCAP2_EETLPP = 0x00200000;
export const PCI_EXP_DEVCTL2_EETLPPB = 0x8000;
export const PCI_EXP_DEVCAP2_ARI = 0x00000020;
export const PCI_EXP_DEVCTL2_ARI = 0x0020;
export const PCI_EXT_CAP_ID_ARI = 0x0e;
export const PCI_EXP_LNKCTL2 = 48;

export const PCI_ERR_UNCOR_STATUS = 4;
export const PCI_ERR_UNCOR_MASK = 8;
export const PCI_ERR_UNCOR_SEVER = 12;
export const PCI_ERR_COR_STATUS = 16;
export const PCI_ERR_COR_MASK = 20;
export const PCI_ERR_CAP = 24;

// the SR-IOV extended capability (PCI_EXT_CAP_ID_SRIOV)
export const PCI_SRIOV_CAP = 0x04;
export const PCI_SRIOV_CAP_VFM = 0x01;
export const PCI_SRIOV_CTRL = 0x08;
export const PCI_SRIOV_CTRL_VFE = 0x01;
export const PCI_SRIOV_CTRL_VFM = 0x02;
export const PCI_SRIOV_CTRL_INTR = 0x04;
export const PCI_SRIOV_CTRL_MSE = 0x08;
export const PCI_SRIOV_CTRL_ARI = 0x10;
export const PCI_SRIOV_STATUS = 0x0a;
export const PCI_SRIOV_INITIAL_VF = 0x0c;
export const PCI_SRIOV_TOTAL_VF = 0x0e;
export const PCI_SRIOV_NUM_VF = 0x10;
export const PCI_SRIOV_FUNC_LINK = 0x12;
export const PCI_SRIOV_VF_OFFSET = 0x14;
export const PCI_SRIOV_VF_STRIDE = 0x16;
export const PCI_SRIOV_VF_DID = 0x1a;
export const PCI_SRIOV_SUP_PGSIZE = 0x1c;
export const PCI_SRIOV_SYS_PGSIZE = 0x20;
export const PCI_SRIOV_BAR = 0x24;
export const PCI_SRIOV_NUM_BARS = 6;
/** the page sizes an SR-IOV function must support (4K, 8K, 64K, 256K, 1M, 4M), as QEMU offers */
export const SRIOV_SUP_PGSIZE_MINREQ = 0x553;

export const PCI_CFG_SPACE_SIZE = 256;
export const PCI_CFG_SPACE_EXP_SIZE = 4096;

/** A listener for writes that reach the function (device models react to COMMAND, MSI-X, ...). */
export type PciConfigWriteHook = (where: number, size: number, value: number, old: number) => void;

/** What a config write asks of the hardware beyond storing bits (an FLR, a PM transition). */
export type PciConfigSideEffect = 'flr' | 'pm-d3hot-to-d0' | 'secondary-bus-reset';

export class PciConfigSpace {
  readonly data: Uint8Array;
  /** bits software may change */
  readonly wmask: Uint8Array;
  /** bits a write of 1 clears */
  readonly w1cmask: Uint8Array;
  /** the power-on contents (what a reset restores) */
  readonly init: Uint8Array;
  /**
   * device-specific storage outside the header and every capability: plain read-write bytes a
   * reset leaves alone (QEMU's devices keep them; the oracle reads a user's writes back after a
   * close, a reset and a reopen), and pci_restore_state does not touch
   */
  readonly storage: Uint8Array;
  readonly hooks: PciConfigWriteHook[] = [];
  /** set by the PCI core: run a side effect the function performs on a write */
  sideEffect: ((what: PciConfigSideEffect) => void) | null = null;

  constructor(readonly size: number) {
    this.data = new Uint8Array(size);
    this.wmask = new Uint8Array(size);
    this.w1cmask = new Uint8Array(size);
    this.init = new Uint8Array(size);
    this.storage = new Uint8Array(size);
  }

  /** little-endian read of 1, 2 or 4 bytes (no alignment rule here: the accessors enforce it) */
  read(where: number, size: 1 | 2 | 4): number {
    if (where < 0 || where + size > this.size) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.data[where + i]!;
    return v;
  }

  /** a write as the hardware takes it: writable bits change, W1C bits clear, the rest stay */
  write(where: number, size: 1 | 2 | 4, value: number): void {
    if (where < 0 || where + size > this.size) return;
    const old = this.read(where, size);
    for (let i = 0; i < size; i++) {
      const a = where + i;
      const b = (value >>> (8 * i)) & 0xff;
      const wm = this.wmask[a]!,
        w1c = this.w1cmask[a]!;
      this.data[a] = ((this.data[a]! & ~wm) | (b & wm)) & ~(b & w1c);
    }
    this.effects(where, size, value, old);
    for (const h of this.hooks) h(where, size, value, old);
  }

  /** hardware-side update (a device setting a status bit); no masks, no hooks */
  set(where: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.data[where + i] = (value >>> (8 * i)) & 0xff;
  }

  /** bring every register back to its power-on value */
  powerOnReset(): void {
    // whole runs of non-storage bytes at a time: a reset happens at every open and close
    if (!this.resetRuns) {
      this.resetRuns = [];
      for (let i = 0; i < this.size; ) {
        if (this.storage[i]) {
          i++;
          continue;
        }
        let j = i;
        while (j < this.size && !this.storage[j]) j++;
        this.resetRuns.push(i, j);
        i = j;
      }
    }
    const r = this.resetRuns;
    for (let k = 0; k < r.length; k += 2) this.data.set(this.init.subarray(r[k]!, r[k + 1]!), r[k]!);
  }
  /** [start, end) pairs of the bytes a reset restores (storage is fixed once the space is built) */
  private resetRuns: number[] | null = null;

  private effects(where: number, size: number, value: number, old: number): void {
    const hits = (reg: number, len: number) => where < reg + len && reg < where + size;
    const field = (reg: number, len: number, v: number) => {
      // the part of a write (or old value) that covers [reg, reg+len)
      const shift = 8 * (reg - where);
      return shift >= 0 ? (v >>> shift) & (len === 2 ? 0xffff : 0xff) : 0;
    };
    const exp = this.expAt;
    if (exp && hits(exp + PCI_EXP_DEVCTL, 2) && where <= exp + PCI_EXP_DEVCTL + 1) {
      // PCI_EXP_DEVCTL_BCR_FLR is self-clearing and starts a function level reset
      const hi = exp + PCI_EXP_DEVCTL + 1;
      if (where <= hi && hi < where + size && ((value >>> (8 * (hi - where))) & 0x80) && this.flrCapable) {
        this.data[hi] = this.data[hi]! & 0x7f;
        this.sideEffect?.('flr');
      }
    }
    const pm = this.pmAt;
    if (pm && hits(pm + PCI_PM_CTRL, 1) && where <= pm + PCI_PM_CTRL) {
      const before = field(pm + PCI_PM_CTRL, 1, old) & PCI_PM_CTRL_STATE_MASK;
      const after = this.data[pm + PCI_PM_CTRL]! & PCI_PM_CTRL_STATE_MASK;
      if (before === 3 && after === 0 && !(this.data[pm + PCI_PM_CTRL]! & PCI_PM_CTRL_NO_SOFT_RESET)) this.sideEffect?.('pm-d3hot-to-d0');
    }
    if (this.bridge && hits(PCI_BRIDGE_CONTROL, 1) && where <= PCI_BRIDGE_CONTROL) {
      const was = field(PCI_BRIDGE_CONTROL, 1, old) & PCI_BRIDGE_CTL_BUS_RESET;
      const now = this.data[PCI_BRIDGE_CONTROL]! & PCI_BRIDGE_CTL_BUS_RESET;
      if (was && !now) this.sideEffect?.('secondary-bus-reset');
    }
  }

  /** offsets of the capabilities the write side effects need (0: absent) */
  expAt = 0;
  /** the SR-IOV capability (a PF) */
  sriovAt = 0;
  pmAt = 0;
  flrCapable = false;
  bridge = false;
}

/**
 * The writable bits of a VF's COMMAND register: I/O and memory space enable are read-only zero in
 * a VF (SR-IOV 3.4.1.3); bus master, SERR and INTx disable are writable as in QEMU's VFs.
 */
export const VF_COMMAND_WMASK = 0x0504;

/** Bytes a capability's registers occupy in the hardware (QEMU's sizes: PCIe v2 is 0x3c). */
function pciCapFootprint(c: PciCap): number {
  if (c.id === 'pcie') return c.version === 1 ? 0x14 : 0x3c;
  return pciCapLength(c);
}

function pciExtCapFootprint(c: PciExtCap): number {
  return c.id === 'aer' ? 0x48 : pciExtCapLength(c);
}

function put(cs: PciConfigSpace, where: number, size: 1 | 2 | 4, value: number, wmask = 0, w1c = 0): void {
  for (let i = 0; i < size; i++) {
    cs.data[where + i] = (value >>> (8 * i)) & 0xff;
    cs.wmask[where + i] = (wmask >>> (8 * i)) & 0xff;
    cs.w1cmask[where + i] = (w1c >>> (8 * i)) & 0xff;
  }
}

/** Build the power-on configuration space of a function from its topology-derived fields. */
export function pciBuildConfigSpace(d: PciDev): PciConfigSpace {
  const cs = new PciConfigSpace(d.cfgSize);
  const bridge = d.headerType === 'bridge';
  cs.bridge = bridge;
  // an SR-IOV VF answers 0xffff for both IDs (the PF's SR-IOV capability names it; QEMU's
  // register_vf sets them so); the PCI core takes them from the PF (pci_iov_scan_device)
  put(cs, PCI_VENDOR_ID, 2, d.isVirtfn ? 0xffff : d.vendor);
  put(cs, PCI_DEVICE_ID, 2, d.isVirtfn ? 0xffff : d.device);
  // a VF's BARs are the PF's VF BARs: its own BAR registers are read-only zero (SR-IOV 3.4.1.11)
  const res = d.isVirtfn ? [null, null, null, null, null, null, null] : d.resources;
  // firmware (SeaBIOS on the oracle's q35) enabled I/O and memory decoding and SERR reporting;
  // bus mastering is the driver's business. Writable: IO, MEMORY, MASTER, SERR, INTX_DISABLE (as
  // QEMU's pci_init_wmask makes them; the oracle reads 0x0507 back after writing 0xffff)
  // A VF is created by its PF at run time, after firmware: nothing is enabled, and its memory
  // enable is read-only zero (a VF decodes when the PF's SR-IOV MSE is set: no_command_memory)
  if (d.isVirtfn) put(cs, PCI_COMMAND, 2, 0, VF_COMMAND_WMASK);
  else put(cs, PCI_COMMAND, 2, PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_SERR, 0x0507);
  put(cs, PCI_STATUS, 2, d.caps.length ? PCI_STATUS_CAP_LIST : 0, 0, 0xf900);
  put(cs, PCI_CLASS_REVISION, 4, ((d.classCode << 8) | d.revision) >>> 0);
  put(cs, PCI_CACHE_LINE_SIZE, 1, 0, 0xff);
  // the latency timer is read-only zero (PCIe, and QEMU's conventional devices alike: oracle)
  put(cs, PCI_LATENCY_TIMER, 1, 0);
  // VFs are never multi-function devices (pci_iov_add_virtfn: virtfn->multifunction = 0)
  const multi = !d.isVirtfn && d.bus.devices.some((o) => o !== d && !o.isVirtfn && o.devfn >> 3 === d.devfn >> 3);
  put(cs, PCI_HEADER_TYPE, 1, (bridge ? 1 : 0) | (multi ? 0x80 : 0));
  const nbars = bridge ? 2 : 6;
  for (let i = 0; i < nbars; i++) {
    const r = res[i];
    const at = PCI_BASE_ADDRESS_0 + 4 * i;
    if (!r) continue;
    const size = r.size;
    if (r.type === 'io') {
      put(cs, at, 4, Number(r.start & 0xfffffffcn) | 1, Number(~(size - 1n) & 0xfffffffcn) >>> 0);
    } else {
      const low = Number(r.start & 0xfffffff0n) | (r.mem64 ? 4 : 0) | (r.prefetch ? 8 : 0);
      put(cs, at, 4, low >>> 0, Number(~(size - 1n) & 0xfffffff0n) >>> 0);
      if (r.mem64 && i < 5) put(cs, at + 4, 4, Number((r.start >> 32n) & 0xffffffffn), Number((~(size - 1n) >> 32n) & 0xffffffffn) >>> 0);
    }
  }
  const rom = res[6];
  const romAt = bridge ? PCI_ROM_ADDRESS1 : PCI_ROM_ADDRESS;
  if (rom) put(cs, romAt, 4, Number(rom.start & 0xfffff800n), (Number(~(rom.size - 1n) & 0xfffff800n) | 1) >>> 0);
  if (bridge) {
    put(cs, PCI_PRIMARY_BUS, 1, d.bus.number, 0xff);
    put(cs, PCI_PRIMARY_BUS + 1, 1, d.subordinate?.number ?? 0, 0xff);
    put(cs, PCI_PRIMARY_BUS + 2, 1, d.subordinate?.number ?? 0, 0xff);
    put(cs, PCI_BRIDGE_CONTROL, 2, 0, 0x0fff);
  } else {
    put(cs, PCI_SUBSYSTEM_VENDOR_ID, 2, d.subsystemVendor);
    put(cs, PCI_SUBSYSTEM_VENDOR_ID + 2, 2, d.subsystemDevice);
  }
  put(cs, PCI_INTERRUPT_LINE, 1, d.interruptLine, 0xff);
  put(cs, PCI_INTERRUPT_PIN, 1, d.interruptPin);
  put(cs, PCI_CAPABILITY_LIST, 1, d.caps[0]?.at ?? 0);
  // Device-specific space outside every capability is plain read-write storage, as QEMU's devices
  // implement it (pci_init_wmask makes 0x40..end writable; each capability then takes its bytes
  // back); the oracle reads back what was written there through vfio's raw access. A PCIe
  // function's first extended header stays read-only (QEMU_PCIE_EXTCAP_INIT).
  cs.storage.fill(1, 0x40);
  for (const c of d.caps) cs.storage.fill(0, c.at, c.at + pciCapFootprint(c));
  if (d.cfgSize > PCI_CFG_SPACE_SIZE) {
    cs.storage.fill(0, PCI_CFG_SPACE_SIZE, PCI_CFG_SPACE_SIZE + 4);
    for (const c of d.extCaps) cs.storage.fill(0, c.at, c.at + pciExtCapFootprint(c));
  }
  for (let i = 0x40; i < cs.size; i++) if (cs.storage[i]) cs.wmask[i] = 0xff;
  d.caps.forEach((c, i) => buildCap(cs, d, c, d.caps[i + 1]?.at ?? 0));
  d.extCaps.forEach((c, i) => buildExtCap(cs, d, c, d.extCaps[i + 1]?.at ?? 0));
  cs.init.set(cs.data);
  return cs;
}

function buildCap(cs: PciConfigSpace, d: PciDev, c: PciCap, next: number): void {
  const at = c.at;
  put(cs, at, 1, pciCapIdNumber(c));
  put(cs, at + 1, 1, next);
  switch (c.id) {
    case 'pm':
      cs.pmAt = at;
      put(cs, at + PCI_PM_PMC, 2, c.pmc ?? 0x0003); // default: version 3, no D1/D2, no PME support
      put(cs, at + PCI_PM_CTRL, 2, c.noSoftReset ? PCI_PM_CTRL_NO_SOFT_RESET : 0, PCI_PM_CTRL_STATE_MASK | PCI_PM_CTRL_PME_ENABLE, PCI_PM_CTRL_PME_STATUS);
      break;
    case 'msi': {
      const mmc = Math.log2(c.vectors);
      const flags = (mmc << 1) | (c.addr64 ? PCI_MSI_FLAGS_64BIT : 0) | (c.maskable ? PCI_MSI_FLAGS_MASKBIT : 0);
      put(cs, at + PCI_MSI_FLAGS, 2, flags, PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE);
      put(cs, at + PCI_MSI_ADDRESS_LO, 4, 0, 0xfffffffc);
      if (c.addr64) put(cs, at + PCI_MSI_ADDRESS_HI, 4, 0, 0xffffffff);
      const data = c.addr64 ? PCI_MSI_DATA_64 : PCI_MSI_DATA_32;
      put(cs, at + data, 2, 0, 0xffff);
      if (c.maskable) {
        const bits = c.vectors === 32 ? 0xffffffff : (1 << c.vectors) - 1;
        put(cs, at + (c.addr64 ? PCI_MSI_MASK_64 : PCI_MSI_MASK_32), 4, 0, bits >>> 0);
        put(cs, at + (c.addr64 ? PCI_MSI_PENDING_64 : PCI_MSI_PENDING_32), 4, 0);
      }
      break;
    }
    case 'msix':
      put(cs, at + PCI_MSIX_FLAGS, 2, c.vectors - 1, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
      put(cs, at + PCI_MSIX_TABLE, 4, (c.tableOffset | c.tableBar) >>> 0);
      put(cs, at + PCI_MSIX_PBA, 4, (c.pbaOffset | c.pbaBar) >>> 0);
      break;
    case 'pcie': {
      cs.expAt = at;
      cs.flrCapable = c.flr;
      put(cs, at + PCI_EXP_FLAGS, 2, c.version | (PCIE_TYPES[c.type] << 4));
      put(cs, at + PCI_EXP_DEVCAP, 4, (PCI_EXP_DEVCAP_RBER | (c.flr ? PCI_EXP_DEVCAP_FLR : 0)) >>> 0);
      // DEVCTL: QEMU's endpoints keep it read-only (the oracle reads nothing back through vfio's
      // pass-through bits); the self-clearing initiate-FLR bit is a side effect (effects())
      put(cs, at + PCI_EXP_DEVCTL, 2, 0, 0);
      put(cs, at + PCI_EXP_DEVSTA, 2, 0, 0, 0x000f);
      const hasLink = c.type !== 'rc-endpoint';
      if (hasLink) {
        put(cs, at + PCI_EXP_LNKCAP, 4, 0x00000411); // 2.5 GT/s, x1, L0s
        put(cs, at + PCI_EXP_LNKCTL, 2, 0, 0x0fff);
        put(cs, at + PCI_EXP_LNKSTA, 2, 0x0011);
      }
      if (c.type === 'root-port' || c.type === 'downstream-port') put(cs, at + PCI_EXP_SLTCTL, 2, 0, 0x1fff);
      if (c.type === 'root-port') put(cs, at + PCI_EXP_RTCTL, 2, 0, 0x001f);
      if (c.version >= 2) {
        // v2: extended fmt field and end-end TLP prefix supported, prefix blocking writable (QEMU)
        // ports forward ARI (QEMU's pcie_cap_arifwd_init on root and downstream ports)
        const port = c.type === 'root-port' || c.type === 'downstream-port';
        put(cs, at + PCI_EXP_DEVCAP2, 4, PCI_EXP_DEVCAP2_EFF | PCI_EXP_DEVCAP2_EETLPP | (port ? PCI_EXP_DEVCAP2_ARI : 0));
        put(cs, at + PCI_EXP_DEVCTL2, 2, 0, PCI_EXP_DEVCTL2_EETLPPB | (port ? PCI_EXP_DEVCTL2_ARI : 0));
        if (hasLink) put(cs, at + PCI_EXP_LNKCTL2, 2, 0, 0xffff);
      }
      break;
    }
    case 'vendor':
      put(cs, at + 2, 1, c.length);
      break;
  }
  void d;
  void pciCapLength;
}

function buildExtCap(cs: PciConfigSpace, d: PciDev, c: PciExtCap, next: number): void {
  const at = c.at;
  const version = c.id === 'aer' ? 2 : 1; // raw, sriov: version 1
  put(cs, at, 4, (pciExtCapIdNumber(c) | (version << 16) | (next << 20)) >>> 0);
  switch (c.id) {
    case 'aer':
      put(cs, at + PCI_ERR_UNCOR_STATUS, 4, 0, 0, 0x03fff030);
      // the mask is read-only on the oracle's QEMU devices (x-pcie-err-unc-mask off)
      put(cs, at + PCI_ERR_UNCOR_MASK, 4, 0, 0);
      put(cs, at + PCI_ERR_UNCOR_SEVER, 4, 0x00462030, 0x03fff030);
      put(cs, at + PCI_ERR_COR_STATUS, 4, 0, 0, 0x0000f1c1);
      put(cs, at + PCI_ERR_COR_MASK, 4, 0x0000e000, 0x0000f1c1);
      put(cs, at + PCI_ERR_CAP, 4, 0x000000a0, 0x00000140);
      break;
    case 'dsn':
      put(cs, at + 4, 4, Number(c.serial & 0xffffffffn));
      put(cs, at + 8, 4, Number((c.serial >> 32n) & 0xffffffffn));
      break;
    case 'sriov': {
      // as QEMU's pcie_sriov_pf_init / pcie_sriov_pf_init_vf_bar lay it out: no VF Migration,
      // VFE/MSE/ARI and NumVFs writable, 4K system page size of the minimum supported set
      cs.sriovAt = at;
      put(cs, at + PCI_SRIOV_CAP, 4, 0);
      put(cs, at + PCI_SRIOV_CTRL, 2, 0, PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE | PCI_SRIOV_CTRL_ARI);
      put(cs, at + PCI_SRIOV_STATUS, 2, 0);
      put(cs, at + PCI_SRIOV_INITIAL_VF, 2, c.initialVfs);
      put(cs, at + PCI_SRIOV_TOTAL_VF, 2, c.totalVfs);
      put(cs, at + PCI_SRIOV_NUM_VF, 2, 0, 0xffff);
      put(cs, at + PCI_SRIOV_FUNC_LINK, 1, d.devfn & 7);
      put(cs, at + PCI_SRIOV_VF_OFFSET, 2, c.offset);
      put(cs, at + PCI_SRIOV_VF_STRIDE, 2, c.stride);
      put(cs, at + PCI_SRIOV_VF_DID, 2, c.vfDevice);
      put(cs, at + PCI_SRIOV_SUP_PGSIZE, 4, SRIOV_SUP_PGSIZE_MINREQ);
      put(cs, at + PCI_SRIOV_SYS_PGSIZE, 4, 1, SRIOV_SUP_PGSIZE_MINREQ);
      for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
        const b = c.vfBars[i];
        if (!b) continue;
        const reg = at + PCI_SRIOV_BAR + 4 * i;
        const addr = b.addr ?? 0n;
        const mask = ~(b.size - 1n) & 0xffffffffffffffffn;
        put(cs, reg, 4, (Number(addr & 0xfffffff0n) | (b.mem64 ? 4 : 0) | (b.prefetch ? 8 : 0)) >>> 0, Number(mask & 0xfffffff0n) >>> 0);
        if (b.mem64 && i < 5) put(cs, reg + 4, 4, Number((addr >> 32n) & 0xffffffffn), Number(mask >> 32n) >>> 0);
      }
      break;
    }
  }
  void pciExtCapLength;
}

// ---- the kernel's accessors (drivers/pci/access.c) -----------------------------------------

export const PCIBIOS_SUCCESSFUL = 0;
export const PCIBIOS_BAD_REGISTER_NUMBER = 0x87;
export const PCIBIOS_DEVICE_NOT_FOUND = 0x86;

function access(d: PciDev, where: number, size: 1 | 2 | 4): number {
  if (where & (size - 1) || where < 0) return PCIBIOS_BAD_REGISTER_NUMBER;
  if (d.removed) return PCIBIOS_DEVICE_NOT_FOUND;
  if (where + size > d.config.size) return PCIBIOS_BAD_REGISTER_NUMBER;
  return PCIBIOS_SUCCESSFUL;
}

/** pci_read_config_{byte,word,dword}: [PCIBIOS status, value]; a failed read gives all ones */
export function pciReadConfig(d: PciDev, where: number, size: 1 | 2 | 4): [number, number] {
  const st = access(d, where, size);
  if (st) return [st, size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff];
  return [0, d.config.read(where, size)];
}
export const pciReadConfigByte = (d: PciDev, where: number): number => pciReadConfig(d, where, 1)[1];
export const pciReadConfigWord = (d: PciDev, where: number): number => pciReadConfig(d, where, 2)[1];
export const pciReadConfigDword = (d: PciDev, where: number): number => pciReadConfig(d, where, 4)[1];

/** pci_write_config_{byte,word,dword}: the PCIBIOS status */
export function pciWriteConfig(d: PciDev, where: number, size: 1 | 2 | 4, value: number): number {
  const st = access(d, where, size);
  if (st) return st;
  d.config.write(where, size, value >>> 0);
  return 0;
}
export const pciWriteConfigByte = (d: PciDev, where: number, v: number): number => pciWriteConfig(d, where, 1, v);
export const pciWriteConfigWord = (d: PciDev, where: number, v: number): number => pciWriteConfig(d, where, 2, v);
export const pciWriteConfigDword = (d: PciDev, where: number, v: number): number => pciWriteConfig(d, where, 4, v);

/** pci_find_capability: walk the list from PCI_CAPABILITY_LIST (at most 48 hops), 0 if absent */
export function pciFindCapability(d: PciDev, cap: number): number {
  if (!(pciReadConfigWord(d, PCI_STATUS) & PCI_STATUS_CAP_LIST)) return 0;
  let pos = pciReadConfigByte(d, PCI_CAPABILITY_LIST);
  for (let ttl = 48; ttl > 0 && pos >= 0x40; ttl--) {
    pos &= ~3;
    const ent = pciReadConfigWord(d, pos);
    const id = ent & 0xff;
    if (id === 0xff) break;
    if (id === cap) return pos;
    pos = ent >> 8;
  }
  return 0;
}

/** pci_find_next_ext_capability from 0x100, 0 if absent or not PCIe */
export function pciFindExtCapability(d: PciDev, cap: number): number {
  if (d.config.size <= PCI_CFG_SPACE_SIZE) return 0;
  let pos = PCI_CFG_SPACE_SIZE;
  for (let ttl = (PCI_CFG_SPACE_EXP_SIZE - PCI_CFG_SPACE_SIZE) / 8; ttl > 0; ttl--) {
    const header = pciReadConfigDword(d, pos);
    if (header === 0 || header === 0xffffffff) return 0;
    if ((header & 0xffff) === cap && pos !== 0) return pos;
    pos = header >>> 20;
    if (pos < PCI_CFG_SPACE_SIZE) return 0;
  }
  return 0;
}

// ---- pci_save_state / pci_restore_state (drivers/pci/pci.c) ---------------------------------

/** struct pci_saved_state: the software-programmed registers of a function */
export interface PciSavedState {
  bytes: Uint8Array;
}

export function pciSaveState(d: PciDev): PciSavedState {
  return { bytes: d.config.data.slice() };
}

/**
 * pci_restore_state: write back what pci_save_state keeps — the header (pci_restore_config_space:
 * decoding, BAR addresses, cache line, interrupt line, bridge windows) and the PCI Express
 * control registers (pci_restore_pcie_state) — then MSI/MSI-X through the hooks
 * (pci_restore_msi_state). Write-1-to-clear status bits are not "restored"; device-specific
 * storage and AER registers are not part of the saved state (the oracle's AER is not native).
 */
export function pciRestoreState(d: PciDev, s: PciSavedState): void {
  const cs = d.config;
  const restore = (from: number, len: number) => {
    for (let i = from; i < from + len; i++) {
      const wm = cs.wmask[i]!;
      if (wm) cs.data[i] = (cs.data[i]! & ~wm) | (s.bytes[i]! & wm);
    }
  };
  restore(0, 0x40);
  const exp = d.pcieCap;
  if (exp) {
    // pcie_capability_write_word writes only the registers the port type and version implement
    const t = exp.type;
    const regs = [PCI_EXP_DEVCTL];
    if (t !== 'rc-endpoint') regs.push(PCI_EXP_LNKCTL);
    if (t === 'root-port' || t === 'downstream-port') regs.push(PCI_EXP_SLTCTL);
    if (t === 'root-port') regs.push(PCI_EXP_RTCTL);
    if (exp.version > 1) regs.push(PCI_EXP_DEVCTL2, PCI_EXP_LNKCTL2, PCI_EXP_SLTCTL2);
    for (const reg of regs) restore(exp.at + reg, 2);
  }
  for (const h of pciRestoreStateHooks) h(d);
}

export const PCI_EXP_SLTCTL2 = 56;

/**
 * What pci_restore_state restores beyond config space: pci_restore_msi_state (the MSI-X table
 * lives in a BAR), registered by the MSI layer (msi.ts).
 */
export const pciRestoreStateHooks: Array<(d: PciDev) => void> = [];

// ---- pci_user_{read,write}_config_* (drivers/pci/access.c): errnos instead of PCIBIOS codes ----

/** pcibios_err_to_errno */
export function pcibiosErrToErrno(err: number): number {
  if (err <= PCIBIOS_SUCCESSFUL) return err;
  switch (err) {
    case PCIBIOS_DEVICE_NOT_FOUND:
      return -19; // -ENODEV
    case PCIBIOS_BAD_REGISTER_NUMBER:
      return -14; // -EFAULT
  }
  return -34; // -ERANGE
}

/** pci_user_read_config_{byte,word,dword}: [0 or -errno, value]; misaligned is -EINVAL */
export function pciUserReadConfig(d: PciDev, where: number, size: 1 | 2 | 4): [number, number] {
  if (where & (size - 1)) return [-22, size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff];
  const [st, v] = pciReadConfig(d, where, size);
  return [pcibiosErrToErrno(st), v];
}

/** pci_user_write_config_{byte,word,dword}: 0 or -errno */
export function pciUserWriteConfig(d: PciDev, where: number, size: 1 | 2 | 4, value: number): number {
  if (where & (size - 1)) return -22;
  return pcibiosErrToErrno(pciWriteConfig(d, where, size, value));
}
