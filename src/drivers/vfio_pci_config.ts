// drivers/vfio/pci/vfio_pci_config.c: the config space vfio-pci shows a user. At open
// (vfio_config_init) the header, every capability it keeps and every extended capability are
// copied into a virtual config space (vconfig) and a map records which capability owns each byte;
// capabilities vfio does not know the length of are hidden from the chain. Each access is cut
// into naturally aligned chunks that stay inside one capability and one dword, and each chunk goes
// through that capability's permission table: per bit, virtualised (read from / written to
// vconfig) or not (the hardware, through the PCI core's user accessors), writable or not. Some
// capabilities have handlers on top: the header (BAR sizing on the virtual BARs, memory/IO enable
// with backdoor-reset recovery, INTx disable), PM (power state changes), PCIe and AF (an FLR
// request becomes a function reset), MSI (queue size and enable fixed up, then written to the
// hardware), VPD. Bytes no capability claims are passed to the hardware raw.

import { EFAULT, EINVAL } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { downWrite, upWrite } from '../kernel/sync.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { Pos } from '../kernel/fs/file.js';
import {
  PCI_BASE_ADDRESS_0, PCI_CACHE_LINE_SIZE, PCI_CAPABILITY_LIST, PCI_CFG_SPACE_SIZE, PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_DEVICE_ID, PCI_EXP_DEVCAP, PCI_EXP_DEVCAP_FLR,
  PCI_EXP_DEVCTL, PCI_EXP_DEVCTL2, PCI_EXP_DEVCTL_BCR_FLR, PCI_INTERRUPT_LINE, PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER, PCI_MSI_ADDRESS_HI, PCI_MSI_ADDRESS_LO, PCI_MSI_DATA_32, PCI_MSI_DATA_64, PCI_MSI_FLAGS,
  PCI_MSI_FLAGS_64BIT, PCI_MSI_FLAGS_ENABLE, PCI_MSI_FLAGS_MASKBIT, PCI_MSI_FLAGS_QMASK, PCI_MSI_FLAGS_QSIZE,
  PCI_MSI_MASK_32, PCI_MSI_MASK_64, PCI_MSI_PENDING_32, PCI_MSI_PENDING_64, PCI_PM_CTRL, PCI_PM_CTRL_PME_ENABLE,
  PCI_PM_CTRL_PME_STATUS, PCI_PM_PMC, PCI_ROM_ADDRESS, PCI_STATUS, PCI_STATUS_CAP_LIST, PCI_VENDOR_ID,
  pciReadConfig, pciUserReadConfig, pciUserWriteConfig, pcibiosErrToErrno,
} from './pci/config_space.js';
import { PCI_D0, PCI_D1, PCI_D2, PCI_D3hot, PciPowerState, pciTryResetFunction } from './pci/pci.js';
import { VFIO_PCI_MSI_IRQ_INDEX } from '../uapi/vfio.js';
import {
  VfioPciCoreDevice, vfioPciIntxMask, vfioPciIntxUnmask, vfioPciSetPowerState, vfioPciZapAndDownWriteMemoryLock,
} from './vfio_pci_core.js';

/** fake capability ID for the standard header */
export const PCI_CAP_ID_BASIC = 0;
export const PCI_CAP_ID_INVALID = 0xff;
export const PCI_CAP_ID_INVALID_VIRT = 0xfe;
const PCI_CAP_ID_MAX = 0x14; // PCI_CAP_ID_EA
const PCI_EXT_CAP_ID_MAX = 0x31; // PCI_EXT_CAP_ID_PL_64GT
const PCI_STD_HEADER_SIZEOF = 64;
const PCI_CAP_SIZEOF = 4;
const PCI_CAP_LIST_ID = 0;
const PCI_CAP_LIST_NEXT = 1;
const PCI_CAP_FLAGS = 2;
const PCI_BIST = 0x0f;
const PCI_BASE_ADDRESS_5 = 0x24;

// capability IDs with special handling
const CAP_PM = 0x01,
  CAP_VPD = 0x03,
  CAP_MSI = 0x05,
  CAP_PCIX = 0x07,
  CAP_HT = 0x08,
  CAP_VNDR = 0x09,
  CAP_EXP = 0x10,
  CAP_SATA = 0x12,
  CAP_AF = 0x13;
const ECAP_ERR = 0x01,
  ECAP_VC = 0x02,
  ECAP_PWR = 0x04,
  ECAP_MFVC = 0x08,
  ECAP_VC9 = 0x09,
  ECAP_VNDR = 0x0b,
  ECAP_ACS = 0x0d,
  ECAP_REBAR = 0x15,
  ECAP_DPA = 0x16,
  ECAP_TPH = 0x17,
  ECAP_DVSEC = 0x23;

/** Lengths of the standard capabilities: 0 = removed from the chain, 0xff = variable. */
const pciCapLength: number[] = (() => {
  const t = new Array<number>(PCI_CAP_ID_MAX + 1).fill(0);
  t[PCI_CAP_ID_BASIC] = PCI_STD_HEADER_SIZEOF;
  t[CAP_PM] = 8; // PCI_PM_SIZEOF
  t[0x02] = 12; // AGP
  t[CAP_VPD] = 8;
  t[CAP_MSI] = 0xff;
  t[CAP_PCIX] = 0xff;
  t[CAP_HT] = 0xff;
  t[CAP_VNDR] = 0xff;
  t[CAP_EXP] = 0xff;
  t[0x11] = 12; // MSI-X: PCI_CAP_MSIX_SIZEOF
  t[CAP_SATA] = 0xff;
  t[CAP_AF] = 6;
  return t;
})();

/** Lengths of the extended capabilities: 0 = removed or masked, 0xff = variable. */
const pciExtCapLength: number[] = (() => {
  const t = new Array<number>(PCI_EXT_CAP_ID_MAX + 1).fill(0);
  t[ECAP_ERR] = 0x2c; // PCI_ERR_ROOT_COMMAND
  t[ECAP_VC] = 0xff;
  t[0x03] = 12; // DSN
  t[ECAP_PWR] = 0x10;
  t[ECAP_MFVC] = 0xff;
  t[ECAP_VC9] = 0xff;
  t[ECAP_VNDR] = 0xff;
  t[ECAP_ACS] = 0xff;
  t[0x0e] = 8; // ARI
  t[0x0f] = 8; // ATS
  t[0x10] = 0x40; // SR-IOV
  t[0x12] = 40; // multicast, endpoint
  t[0x13] = 16; // PRI
  t[ECAP_REBAR] = 0xff;
  t[ECAP_DPA] = 0xff;
  t[ECAP_TPH] = 0xff;
  t[0x18] = 8; // LTR
  t[ECAP_DVSEC] = 0xff;
  return t;
})();

/** a value holder for read functions (the kernel's __le32 *val) */
export interface ConfigVal {
  v: number;
}
export type ConfigReadFn = (vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: ConfigVal) => KGen<number>;
export type ConfigWriteFn = (vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number) => KGen<number>;

/**
 * struct perm_bits: per bit of a capability, virtualised or not (`virt`) and writable or not
 * (`write`); null arrays mean "all readable, nothing writable or virtualised".
 */
export interface PermBits {
  virt: Uint8Array | null;
  write: Uint8Array | null;
  readfn: ConfigReadFn | null;
  writefn: ConfigWriteFn | null;
}

const mask = (count: number): number => (count === 4 ? 0xffffffff : (1 << (8 * count)) - 1);

function getLe(b: Uint8Array, off: number, count: number): number {
  let v = 0;
  for (let i = count - 1; i >= 0; i--) v = v * 256 + (b[off + i] ?? 0);
  return v >>> 0;
}

function setLe(b: Uint8Array, off: number, count: number, v: number): void {
  for (let i = 0; i < count; i++) b[off + i] = (v >>> (8 * i)) & 0xff;
}

function vconf(vdev: VfioPciCoreDevice): Uint8Array {
  return vdev.vconfig!;
}

// ---- the hardware, through the PCI core's user accessors ---------------------------------------

/** vfio_user_config_read */
function vfioUserConfigRead(vdev: VfioPciCoreDevice, offset: number, count: number, val: ConfigVal): number {
  if (count !== 1 && count !== 2 && count !== 4) return -EINVAL;
  const [ret, v] = pciUserReadConfig(vdev.pdev, offset, count);
  val.v = v >>> 0;
  return ret;
}

/** vfio_user_config_write */
function vfioUserConfigWrite(vdev: VfioPciCoreDevice, offset: number, val: number, count: number): number {
  if (count !== 1 && count !== 2 && count !== 4) return -EINVAL;
  return pciUserWriteConfig(vdev.pdev, offset, count, val & mask(count));
}

// ---- generic read/write functions ---------------------------------------------------------------

/** vfio_default_config_read: virtualised bits from vconfig, the others from the hardware */
function* vfioDefaultConfigRead(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: ConfigVal): KGen<number> {
  val.v = getLe(vconf(vdev), pos, count);
  const virt = perm.virt ? getLe(perm.virt, offset, count) : 0;
  if (virt !== mask(count)) {
    const phys = { v: 0 };
    const ret = vfioUserConfigRead(vdev, pos, count, phys);
    if (ret) return ret;
    val.v = ((phys.v & ~virt) | (val.v & virt)) >>> 0;
  }
  return count;
}

/** vfio_default_config_write: writable virtualised bits to vconfig, writable others to the hardware */
function* vfioDefaultConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  const write = perm.write ? getLe(perm.write, offset, count) : 0;
  if (!write) return count; // drop, no writable bits
  const virt = perm.virt ? getLe(perm.virt, offset, count) : 0;
  if (write & virt) {
    let vv = getLe(vconf(vdev), pos, count);
    vv = (vv & ~(write & virt)) | (val & write & virt);
    setLe(vconf(vdev), pos, count, vv >>> 0);
  }
  if (write & ~virt) {
    const phys = { v: 0 };
    let ret = vfioUserConfigRead(vdev, pos, count, phys);
    if (ret) return ret;
    let pv = phys.v;
    pv = (pv & ~(write & ~virt)) | (val & write & ~virt);
    ret = vfioUserConfigWrite(vdev, pos, pv >>> 0, count);
    if (ret) return ret;
  }
  return count;
}

/** vfio_direct_config_read: the hardware, except the capability ID / next pointer bytes */
function* vfioDirectConfigRead(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: ConfigVal): KGen<number> {
  const ret = vfioUserConfigRead(vdev, pos, count, val);
  if (ret) return ret;
  const vc = vconf(vdev);
  const splice = (n: number) => {
    // memcpy(val, vconfig + pos, n): the low n bytes from vconfig
    const m = mask(n);
    val.v = ((val.v & ~m) | (getLe(vc, pos, n) & m)) >>> 0;
  };
  if (pos >= PCI_CFG_SPACE_SIZE) {
    // extended capability header mangling
    if (offset < 4) splice(count);
  } else if (pos >= PCI_STD_HEADER_SIZEOF) {
    if (offset === PCI_CAP_LIST_ID && count > 1) splice(Math.min(PCI_CAP_FLAGS, count));
    else if (offset === PCI_CAP_LIST_NEXT) splice(1);
  }
  return count;
}

/** vfio_raw_config_write: straight to the hardware */
function* vfioRawConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, _perm: PermBits, _offset: number, val: number): KGen<number> {
  const ret = vfioUserConfigWrite(vdev, pos, val, count);
  return ret ? ret : count;
}

/** vfio_raw_config_read */
function* vfioRawConfigRead(vdev: VfioPciCoreDevice, pos: number, count: number, _perm: PermBits, _offset: number, val: ConfigVal): KGen<number> {
  const ret = vfioUserConfigRead(vdev, pos, count, val);
  return ret ? ret : count;
}

/** vfio_virt_config_write: vconfig only */
function* vfioVirtConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, _perm: PermBits, _offset: number, val: number): KGen<number> {
  setLe(vconf(vdev), pos, count, val);
  return count;
}

/** vfio_virt_config_read */
function* vfioVirtConfigRead(vdev: VfioPciCoreDevice, pos: number, count: number, _perm: PermBits, _offset: number, val: ConfigVal): KGen<number> {
  val.v = getLe(vconf(vdev), pos, count);
  return count;
}

const directRoPerms: PermBits = { virt: null, write: null, readfn: vfioDirectConfigRead, writefn: null };
/** unassigned bytes: raw access (some devices hide registers between capabilities) */
const unassignedPerms: PermBits = { virt: null, write: null, readfn: vfioRawConfigRead, writefn: vfioRawConfigWrite };
const virtPerms: PermBits = { virt: null, write: null, readfn: vfioVirtConfigRead, writefn: vfioVirtConfigWrite };

/** alloc_perm_bits: rounded up to a dword, all readable, nothing writable or virtualised */
function allocPermBits(size: number): PermBits {
  size = Math.ceil(size / 4) * 4;
  return { virt: new Uint8Array(size), write: new Uint8Array(size), readfn: vfioDefaultConfigRead, writefn: vfioDefaultConfigWrite };
}

function pSet(p: PermBits, off: number, n: number, virt: number, write: number): void {
  setLe(p.virt!, off, n, virt >>> 0);
  setLe(p.write!, off, n, write >>> 0);
}
const pSetb = (p: PermBits, off: number, virt: number, write: number) => pSet(p, off, 1, virt, write);
const pSetw = (p: PermBits, off: number, virt: number, write: number) => pSet(p, off, 2, virt, write);
const pSetd = (p: PermBits, off: number, virt: number, write: number) => pSet(p, off, 4, virt, write);
const NO_VIRT = 0,
  ALL_VIRT = 0xffffffff,
  NO_WRITE = 0,
  ALL_WRITE = 0xffffffff;

// ---- memory enable, BAR sizing and restore (the header) --------------------------------------

/**
 * __vfio_pci_memory_enabled (caller holds memory_lock): D0..D2 and the *virtual* memory enable
 * (VFs and functions without a memory enable bit count as enabled).
 */
export function vfioPciMemoryEnabled(vdev: VfioPciCoreDevice): boolean {
  const pdev = vdev.pdev;
  const cmd = vdev.vconfig ? getLe(vdev.vconfig, PCI_COMMAND, 2) : 0;
  return pdev.currentState < PCI_D3hot && (pdev.isVirtfn || (cmd & PCI_COMMAND_MEMORY) !== 0);
}

/** vfio_bar_restore: write the BARs saved at open back to the hardware (after a backdoor reset) */
function vfioBarRestore(vdev: VfioPciCoreDevice): void {
  const pdev = vdev.pdev;
  if (pdev.isVirtfn) return;
  vdev.vdev.kernel.printk(`${pdev.name}: vfio_bar_restore: reset recovery - restoring BARs`);
  for (let i = 0; i < 6; i++) pciUserWriteConfig(pdev, PCI_BASE_ADDRESS_0 + 4 * i, 4, vdev.rbar[i]!);
  pciUserWriteConfig(pdev, PCI_ROM_ADDRESS, 4, vdev.rbar[6]!);
  if (vdev.nointx) {
    const [, cmd] = pciUserReadConfig(pdev, PCI_COMMAND, 2);
    pciUserWriteConfig(pdev, PCI_COMMAND, 2, cmd | PCI_COMMAND_INTX_DISABLE);
  }
}

/** vfio_generate_bar_flags: the low type bits a BAR of this resource reads with */
function vfioGenerateBarFlags(vdev: VfioPciCoreDevice, bar: number): number {
  const r = vdev.pdev.resources[bar]!;
  if (r.type === 'io') return 0x1; // PCI_BASE_ADDRESS_SPACE_IO
  return (r.prefetch ? 0x8 : 0) | (r.mem64 ? 0x4 : 0);
}

/** vfio_bar_fixup: BAR sizing on the virtual BARs (keep only the address bits the size allows) */
function vfioBarFixup(vdev: VfioPciCoreDevice): void {
  const pdev = vdev.pdev;
  if (!vdev.bardirty) return;
  const vc = vconf(vdev);
  for (let i = 0; i < 6; i++) {
    const at = PCI_BASE_ADDRESS_0 + 4 * i;
    const r = pdev.resources[i];
    if (!r || !r.start) {
      setLe(vc, at, 4, 0); // unmapped by host = unimplemented to user
      continue;
    }
    const m = ~(r.size - 1n) & 0xffffffffffffffffn;
    let vbar = getLe(vc, at, 4);
    vbar = (vbar & Number(m & 0xffffffffn)) >>> 0;
    vbar = (vbar | vfioGenerateBarFlags(vdev, i)) >>> 0;
    setLe(vc, at, 4, vbar);
    if (vbar & 0x4 && i < 5) {
      const hi = (getLe(vc, at + 4, 4) & Number((m >> 32n) & 0xffffffffn)) >>> 0;
      setLe(vc, at + 4, 4, hi);
      i++;
    }
  }
  const rom = pdev.resources[6];
  if (rom && rom.start) {
    const m = (Number(~(rom.size - 1n) & 0xffffffffn) | 1) >>> 0; // | PCI_ROM_ADDRESS_ENABLE
    setLe(vc, PCI_ROM_ADDRESS, 4, (getLe(vc, PCI_ROM_ADDRESS, 4) & m) >>> 0);
  } else {
    setLe(vc, PCI_ROM_ADDRESS, 4, 0);
  }
  vdev.bardirty = false;
}

const isBar = (offset: number) => (offset >= PCI_BASE_ADDRESS_0 && offset < PCI_BASE_ADDRESS_5 + 4) || (offset >= PCI_ROM_ADDRESS && offset < PCI_ROM_ADDRESS + 4);

/** vfio_basic_config_read */
function* vfioBasicConfigRead(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: ConfigVal): KGen<number> {
  if (isBar(offset)) vfioBarFixup(vdev);
  count = yield* vfioDefaultConfigRead(vdev, pos, count, perm, offset, val);
  // (no_command_memory devices: the virtual memory enable is masked in; none are modelled)
  return count;
}

/** vfio_need_bar_restore: the hardware BARs differ from those saved at open */
function vfioNeedBarRestore(vdev: VfioPciCoreDevice): boolean {
  for (let i = 0; i < 6; i++) {
    if (!vdev.rbar[i]) continue;
    const [ret, bar] = pciUserReadConfig(vdev.pdev, PCI_BASE_ADDRESS_0 + 4 * i, 4);
    if (ret || vdev.rbar[i] !== bar >>> 0) return true;
  }
  return false;
}

/** vfio_basic_config_write */
function* vfioBasicConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  const pdev = vdev.pdev;
  const vc = vconf(vdev);
  let newCmd = 0;
  if (offset === PCI_COMMAND) {
    const [ret, physCmd] = pciUserReadConfig(pdev, PCI_COMMAND, 2);
    if (ret) return ret;
    newCmd = val & 0xffff;
    const virtCmd = getLe(vc, PCI_COMMAND, 2);
    const physIo = !!(physCmd & PCI_COMMAND_IO);
    const virtIo = !!(virtCmd & PCI_COMMAND_IO);
    const newIo = !!(newCmd & PCI_COMMAND_IO);
    const physMem = !!(physCmd & PCI_COMMAND_MEMORY);
    const virtMem = !!(virtCmd & PCI_COMMAND_MEMORY);
    const newMem = !!(newCmd & PCI_COMMAND_MEMORY);
    if (!newMem) yield* vfioPciZapAndDownWriteMemoryLock(vdev);
    else yield* downWrite(vdev.memoryLock);
    // a backdoor reset (the hardware lost its decode, or its BARs): restore before enabling
    if ((newMem && virtMem && !physMem) || (newIo && virtIo && !physIo) || vfioNeedBarRestore(vdev)) vfioBarRestore(vdev);
  }
  count = yield* vfioDefaultConfigWrite(vdev, pos, count, perm, offset, val);
  if (count < 0) {
    if (offset === PCI_COMMAND) yield* upWrite(vdev.memoryLock);
    return count;
  }
  // remember the memory/io enable the user asked for, for the test above next time
  if (offset === PCI_COMMAND) {
    const m = PCI_COMMAND_MEMORY | PCI_COMMAND_IO;
    setLe(vc, PCI_COMMAND, 2, (getLe(vc, PCI_COMMAND, 2) & ~m) | (newCmd & m));
    yield* upWrite(vdev.memoryLock);
  }
  // emulate INTx disable
  if (offset >= PCI_COMMAND && offset <= PCI_COMMAND + 1) {
    const virtIntxDisable = !!(getLe(vc, PCI_COMMAND, 2) & PCI_COMMAND_INTX_DISABLE);
    if (virtIntxDisable && !vdev.virqDisabled) {
      vdev.virqDisabled = true;
      yield* vfioPciIntxMask(vdev);
    } else if (!virtIntxDisable && vdev.virqDisabled) {
      vdev.virqDisabled = false;
      yield* vfioPciIntxUnmask(vdev);
    }
  }
  if (isBar(offset)) vdev.bardirty = true;
  return count;
}

/** init_pci_cap_basic_perm */
function initPciCapBasicPerm(): PermBits {
  const p = allocPermBits(PCI_STD_HEADER_SIZEOF);
  p.readfn = vfioBasicConfigRead;
  p.writefn = vfioBasicConfigWrite;
  pSetw(p, PCI_VENDOR_ID, 0xffff, NO_WRITE); // virtualised for SR-IOV functions (0xffff)
  pSetw(p, PCI_DEVICE_ID, 0xffff, NO_WRITE);
  pSetw(p, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, 0xffff);
  pSetw(p, PCI_STATUS, PCI_STATUS_CAP_LIST, NO_WRITE);
  pSetb(p, PCI_CACHE_LINE_SIZE, NO_VIRT, 0xff);
  pSetb(p, PCI_LATENCY_TIMER, NO_VIRT, 0xff);
  pSetb(p, PCI_BIST, NO_VIRT, 0xff);
  for (let i = 0; i < 6; i++) pSetd(p, PCI_BASE_ADDRESS_0 + 4 * i, ALL_VIRT, ALL_WRITE);
  pSetd(p, PCI_ROM_ADDRESS, ALL_VIRT, ALL_WRITE);
  pSetb(p, PCI_CAPABILITY_LIST, 0xff, NO_WRITE);
  pSetb(p, PCI_INTERRUPT_LINE, 0xff, 0xff);
  pSetb(p, PCI_INTERRUPT_PIN, 0xff, NO_WRITE);
  return p;
}

// ---- power management -----------------------------------------------------------------------

/** vfio_lock_and_set_power_state */
function* vfioLockAndSetPowerState(vdev: VfioPciCoreDevice, state: PciPowerState): KGen<void> {
  if (state >= PCI_D3hot) yield* vfioPciZapAndDownWriteMemoryLock(vdev);
  else yield* downWrite(vdev.memoryLock);
  yield* vfioPciSetPowerState(vdev, state);
  yield* upWrite(vdev.memoryLock);
}

/** vfio_pm_config_write: the state bits are read-only; a write of them is a power state change */
function* vfioPmConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  count = yield* vfioDefaultConfigWrite(vdev, pos, count, perm, offset, val);
  if (count < 0) return count;
  if (offset === PCI_PM_CTRL) {
    const states: PciPowerState[] = [PCI_D0, PCI_D1, PCI_D2, PCI_D3hot];
    yield* vfioLockAndSetPowerState(vdev, states[val & 3]!);
  }
  return count;
}

/** init_pci_cap_pm_perm */
function initPciCapPmPerm(): PermBits {
  const p = allocPermBits(pciCapLength[CAP_PM]!);
  p.writefn = vfioPmConfigWrite;
  pSetb(p, PCI_CAP_LIST_NEXT, 0xff, NO_WRITE);
  pSetw(p, PCI_PM_PMC, PCI_PM_CAP_PME_MASK, NO_WRITE);
  pSetd(p, PCI_PM_CTRL, PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS, ~(PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS | 3));
  return p;
}
const PCI_PM_CAP_PME_MASK = 0xf800;

// ---- VPD, PCI-X ---------------------------------------------------------------------------------

const PCI_VPD_ADDR = 2,
  PCI_VPD_DATA = 4;

/**
 * vfio_vpd_config_write: address and data are virtualised; a write of the address's upper byte
 * asks for a VPD read or write (pci_read_vpd / pci_write_vpd). No modelled function has VPD
 * contents, so both fail and the flag is not toggled: the user times out, as with a function
 * whose VPD access fails.
 */
function* vfioVpdConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  count = yield* vfioDefaultConfigWrite(vdev, pos, count, perm, offset, val);
  return count;
}

function initPciCapVpdPerm(): PermBits {
  const p = allocPermBits(pciCapLength[CAP_VPD]!);
  p.writefn = vfioVpdConfigWrite;
  pSetb(p, PCI_CAP_LIST_NEXT, 0xff, NO_WRITE);
  pSetw(p, PCI_VPD_ADDR, 0xffff, 0xffff);
  pSetd(p, PCI_VPD_DATA, ALL_VIRT, ALL_WRITE);
  return p;
}

function initPciCapPcixPerm(): PermBits {
  const p = allocPermBits(24); // PCI_CAP_PCIX_SIZEOF_V2
  pSetb(p, PCI_CAP_LIST_NEXT, 0xff, NO_WRITE);
  pSetw(p, 2 /* PCI_X_CMD */, NO_VIRT, 0xffff);
  pSetd(p, 8 /* PCI_X_ECC_CSR */, NO_VIRT, ALL_WRITE);
  return p;
}

// ---- PCI Express --------------------------------------------------------------------------------

const PCI_EXP_DEVCTL_PAYLOAD = 0x00e0;
const PCI_EXP_DEVCTL_READRQ = 0x7000;
const PCI_EXP_DEVCTL_PHANTOM = 0x0200;
const PCI_EXP_DEVCTL2_ARI = 0x0020;

/** pcie_get_mps */
function pcieGetMps(vdev: VfioPciCoreDevice, exp: number): number {
  const ctl = pciReadConfig(vdev.pdev, exp + PCI_EXP_DEVCTL, 2)[1];
  return 128 << ((ctl & PCI_EXP_DEVCTL_PAYLOAD) >> 5);
}

/** pcie_set_readrq (the default bus config: no clamping to MPS) */
function pcieSetReadrq(vdev: VfioPciCoreDevice, exp: number, rq: number): void {
  if (rq < 128 || rq > 4096 || rq & (rq - 1)) return;
  const v = (Math.log2(rq) - 7) << 12;
  const ctl = pciReadConfig(vdev.pdev, exp + PCI_EXP_DEVCTL, 2)[1];
  pciUserWriteConfig(vdev.pdev, exp + PCI_EXP_DEVCTL, 2, (ctl & ~PCI_EXP_DEVCTL_READRQ) | v);
}

/**
 * vfio_exp_config_write: the FLR bit is virtualised — set on a function that advertises FLR it
 * becomes pci_try_reset_function (with the BAR mappings zapped around it) — and always reads 0;
 * MPS is virtual; a changed MRRS is written to the hardware, at least the hardware's MPS.
 */
function* vfioExpConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  const vc = vconf(vdev);
  const ctrlAt = pos - offset + PCI_EXP_DEVCTL;
  const readrq = getLe(vc, ctrlAt, 2) & PCI_EXP_DEVCTL_READRQ;
  count = yield* vfioDefaultConfigWrite(vdev, pos, count, perm, offset, val);
  if (count < 0) return count;
  let ctrl = getLe(vc, ctrlAt, 2);
  if (ctrl & PCI_EXP_DEVCTL_BCR_FLR) {
    ctrl &= ~PCI_EXP_DEVCTL_BCR_FLR;
    setLe(vc, ctrlAt, 2, ctrl);
    const [ret, cap] = pciUserReadConfig(vdev.pdev, pos - offset + PCI_EXP_DEVCAP, 4);
    if (!ret && cap & PCI_EXP_DEVCAP_FLR) {
      yield* vfioPciZapAndDownWriteMemoryLock(vdev);
      yield* pciTryResetFunction(vdev.vdev.kernel, vdev.pdev);
      yield* upWrite(vdev.memoryLock);
    }
  }
  if (readrq !== (ctrl & PCI_EXP_DEVCTL_READRQ)) {
    let rq = 128 << ((ctrl & PCI_EXP_DEVCTL_READRQ) >> 12);
    rq = Math.max(rq, pcieGetMps(vdev, pos - offset));
    pcieSetReadrq(vdev, pos - offset, rq);
  }
  return count;
}

/** init_pci_cap_exp_perm */
function initPciCapExpPerm(): PermBits {
  const p = allocPermBits(0x34); // PCI_CAP_EXP_ENDPOINT_SIZEOF_V2
  p.writefn = vfioExpConfigWrite;
  pSetb(p, PCI_CAP_LIST_NEXT, 0xff, NO_WRITE);
  pSetw(p, PCI_EXP_DEVCTL, PCI_EXP_DEVCTL_BCR_FLR | PCI_EXP_DEVCTL_PAYLOAD | PCI_EXP_DEVCTL_READRQ, ~PCI_EXP_DEVCTL_PHANTOM & 0xffff);
  pSetw(p, PCI_EXP_DEVCTL2, NO_VIRT, ~PCI_EXP_DEVCTL2_ARI & 0xffff);
  return p;
}

// ---- Advanced Features --------------------------------------------------------------------------

const PCI_AF_CAP = 3,
  PCI_AF_CAP_TP = 0x01,
  PCI_AF_CAP_FLR = 0x02,
  PCI_AF_CTRL = 4,
  PCI_AF_CTRL_FLR = 0x01;

/** vfio_af_config_write */
function* vfioAfConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  const vc = vconf(vdev);
  const ctrlAt = pos - offset + PCI_AF_CTRL;
  count = yield* vfioDefaultConfigWrite(vdev, pos, count, perm, offset, val);
  if (count < 0) return count;
  if (vc[ctrlAt]! & PCI_AF_CTRL_FLR) {
    vc[ctrlAt] = vc[ctrlAt]! & ~PCI_AF_CTRL_FLR;
    const [ret, cap] = pciUserReadConfig(vdev.pdev, pos - offset + PCI_AF_CAP, 1);
    if (!ret && cap & PCI_AF_CAP_FLR && cap & PCI_AF_CAP_TP) {
      yield* vfioPciZapAndDownWriteMemoryLock(vdev);
      yield* pciTryResetFunction(vdev.vdev.kernel, vdev.pdev);
      yield* upWrite(vdev.memoryLock);
    }
  }
  return count;
}

function initPciCapAfPerm(): PermBits {
  const p = allocPermBits(pciCapLength[CAP_AF]!);
  p.writefn = vfioAfConfigWrite;
  pSetb(p, PCI_CAP_LIST_NEXT, 0xff, NO_WRITE);
  pSetb(p, PCI_AF_CTRL, PCI_AF_CTRL_FLR, PCI_AF_CTRL_FLR);
  return p;
}

// ---- extended capabilities ------------------------------------------------------------------

/** init_pci_ext_cap_err_perm: AER status/mask/severity/capability bits writable, header virtual */
function initPciExtCapErrPerm(): PermBits {
  const p = allocPermBits(pciExtCapLength[ECAP_ERR]!);
  pSetd(p, 0, ALL_VIRT, NO_WRITE);
  // undefined, DLP, surprise down, poisoned TLP, FCP, completion timeout/abort, unexpected
  // completion, receiver overflow, malformed TLP, ECRC, unsupported request, ACS violation,
  // internal, MC blocked TLP, atomic egress blocked, TLP prefix blocked
  const unc = 0x00000001 | 0x10 | 0x20 | 0x1000 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 | 0x80000 | 0x100000 | 0x200000 | 0x400000 | 0x800000 | 0x1000000 | 0x2000000;
  pSetd(p, 4 /* PCI_ERR_UNCOR_STATUS */, NO_VIRT, unc);
  pSetd(p, 8 /* PCI_ERR_UNCOR_MASK */, NO_VIRT, unc);
  pSetd(p, 12 /* PCI_ERR_UNCOR_SEVER */, NO_VIRT, unc);
  // receiver error, bad TLP, bad DLLP, replay rollover, replay timer, advisory non-fatal,
  // corrected internal, header log overflow
  const cor = 0x1 | 0x40 | 0x80 | 0x100 | 0x1000 | 0x2000 | 0x4000 | 0x8000;
  pSetd(p, 16 /* PCI_ERR_COR_STATUS */, NO_VIRT, cor);
  pSetd(p, 20 /* PCI_ERR_COR_MASK */, NO_VIRT, cor);
  pSetd(p, 24 /* PCI_ERR_CAP */, NO_VIRT, 0x40 | 0x100); // ECRC generation / check enable
  return p;
}

function initPciExtCapPwrPerm(): PermBits {
  const p = allocPermBits(pciExtCapLength[ECAP_PWR]!);
  pSetd(p, 0, ALL_VIRT, NO_WRITE);
  pSetb(p, 0x08 /* PCI_PWR_DATA */, NO_VIRT, 0xff);
  return p;
}

/** the shared tables (vfio_pci_init_perm_bits) */
const capPerms: PermBits[] = [];
const ecapPerms: PermBits[] = [];
(function vfioPciInitPermBits() {
  for (let i = 0; i <= PCI_CAP_ID_MAX; i++) capPerms.push({ virt: null, write: null, readfn: vfioDirectConfigRead, writefn: null });
  for (let i = 0; i <= PCI_EXT_CAP_ID_MAX; i++) ecapPerms.push({ virt: null, write: null, readfn: vfioDirectConfigRead, writefn: null });
  capPerms[PCI_CAP_ID_BASIC] = initPciCapBasicPerm();
  capPerms[CAP_PM] = initPciCapPmPerm();
  capPerms[CAP_VPD] = initPciCapVpdPerm();
  capPerms[CAP_PCIX] = initPciCapPcixPerm();
  capPerms[CAP_VNDR]!.writefn = vfioRawConfigWrite;
  capPerms[CAP_EXP] = initPciCapExpPerm();
  capPerms[CAP_AF] = initPciCapAfPerm();
  ecapPerms[ECAP_ERR] = initPciExtCapErrPerm();
  ecapPerms[ECAP_PWR] = initPciExtCapPwrPerm();
  ecapPerms[ECAP_VNDR]!.writefn = vfioRawConfigWrite;
  ecapPerms[ECAP_DVSEC]!.writefn = vfioRawConfigWrite;
})();

// ---- MSI ----------------------------------------------------------------------------------------

/** vfio_find_cap_start: the first byte of the capability owning `pos` */
function vfioFindCapStart(vdev: VfioPciCoreDevice, pos: number): number {
  const map = vdev.pciConfigMap!;
  const base = pos >= PCI_CFG_SPACE_SIZE ? PCI_CFG_SPACE_SIZE : PCI_STD_HEADER_SIZEOF;
  const cap = map[pos]!;
  if (cap === PCI_CAP_ID_BASIC) return 0;
  while (pos - 1 >= base && map[pos - 1] === cap) pos--;
  return pos;
}

/**
 * vfio_msi_config_read: the Multiple Message Capable field shows msi_qmax. (As in the kernel, the
 * fixup lands on the first word of the capability, whose ID byte reads from the hardware anyway.)
 */
function* vfioMsiConfigRead(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: ConfigVal): KGen<number> {
  if (offset <= PCI_MSI_FLAGS && offset + count >= PCI_MSI_FLAGS) {
    const start = vfioFindCapStart(vdev, pos);
    const vc = vconf(vdev);
    let flags = getLe(vc, start, 2);
    flags = (flags & ~PCI_MSI_FLAGS_QMASK) | (vdev.msiQmax << 1);
    setLe(vc, start, 2, flags);
  }
  return yield* vfioDefaultConfigRead(vdev, pos, count, perm, offset, val);
}

/** vfio_msi_config_write: enable only through SET_IRQS, queue size at most msi_qmax, to hardware */
function* vfioMsiConfigWrite(vdev: VfioPciCoreDevice, pos: number, count: number, perm: PermBits, offset: number, val: number): KGen<number> {
  count = yield* vfioDefaultConfigWrite(vdev, pos, count, perm, offset, val);
  if (count < 0) return count;
  if (offset <= PCI_MSI_FLAGS && offset + count >= PCI_MSI_FLAGS) {
    const start = vfioFindCapStart(vdev, pos);
    const vc = vconf(vdev);
    let flags = getLe(vc, start + PCI_MSI_FLAGS, 2);
    if (vdev.irqType !== VFIO_PCI_MSI_IRQ_INDEX) flags &= ~PCI_MSI_FLAGS_ENABLE;
    if ((flags & PCI_MSI_FLAGS_QSIZE) >> 4 > vdev.msiQmax) {
      flags &= ~PCI_MSI_FLAGS_QSIZE;
      flags |= vdev.msiQmax << 4;
    }
    setLe(vc, start + PCI_MSI_FLAGS, 2, flags);
    const ret = pciUserWriteConfig(vdev.pdev, start + PCI_MSI_FLAGS, 2, flags);
    if (ret) return ret;
  }
  return count;
}

/** init_pci_cap_msi_perm: the layout follows the 64-bit and per-vector-mask flags */
function initPciCapMsiPerm(len: number, flags: number): PermBits {
  const p = allocPermBits(len);
  p.readfn = vfioMsiConfigRead;
  p.writefn = vfioMsiConfigWrite;
  pSetb(p, PCI_CAP_LIST_NEXT, 0xff, NO_WRITE);
  pSetb(p, PCI_MSI_FLAGS, 0xff, 0xff); // the upper byte is reserved
  pSetd(p, PCI_MSI_ADDRESS_LO, ALL_VIRT, ALL_WRITE);
  if (flags & PCI_MSI_FLAGS_64BIT) {
    pSetd(p, PCI_MSI_ADDRESS_HI, ALL_VIRT, ALL_WRITE);
    pSetw(p, PCI_MSI_DATA_64, 0xffff, 0xffff);
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
      pSetd(p, PCI_MSI_MASK_64, NO_VIRT, ALL_WRITE);
      pSetd(p, PCI_MSI_PENDING_64, NO_VIRT, ALL_WRITE);
    }
  } else {
    pSetw(p, PCI_MSI_DATA_32, 0xffff, 0xffff);
    if (flags & PCI_MSI_FLAGS_MASKBIT) {
      pSetd(p, PCI_MSI_MASK_32, NO_VIRT, ALL_WRITE);
      pSetd(p, PCI_MSI_PENDING_32, NO_VIRT, ALL_WRITE);
    }
  }
  return p;
}

/** vfio_msi_cap_len: 10, 14, 20 or 24 bytes; sets up msi_perm on the first call */
function vfioMsiCapLen(vdev: VfioPciCoreDevice, pos: number): number {
  const [ret, flags] = pciReadConfig(vdev.pdev, pos + PCI_MSI_FLAGS, 2);
  if (ret) return pcibiosErrToErrno(ret);
  let len = 10;
  if (flags & PCI_MSI_FLAGS_64BIT) len += 4;
  if (flags & PCI_MSI_FLAGS_MASKBIT) len += 10;
  if (vdev.msiPerm) return len;
  vdev.msiPerm = initPciCapMsiPerm(len, flags);
  return len;
}

// ---- capability lengths ---------------------------------------------------------------------

const rdb = (vdev: VfioPciCoreDevice, at: number) => pciReadConfig(vdev.pdev, at, 1);
const rdw = (vdev: VfioPciCoreDevice, at: number) => pciReadConfig(vdev.pdev, at, 2);
const rdd = (vdev: VfioPciCoreDevice, at: number) => pciReadConfig(vdev.pdev, at, 4);

/** vfio_vc_cap_len */
function vfioVcCapLen(vdev: VfioPciCoreDevice, pos: number): number {
  let [ret, tmp] = rdd(vdev, pos + 4 /* PCI_VC_PORT_CAP1 */);
  if (ret) return pcibiosErrToErrno(ret);
  const evcc = tmp & 0x7;
  [ret, tmp] = rdd(vdev, pos + 8 /* PCI_VC_PORT_CAP2 */);
  if (ret) return pcibiosErrToErrno(ret);
  const phases = tmp & 0x80 ? 128 : tmp & 0x40 ? 64 : tmp & 0x20 ? 32 : 0; // PCI_VC_CAP2_*_PHASE
  const vcArb = phases * 4;
  let len = 0x10 + (1 + evcc) * 0x0c; // PCI_CAP_VC_BASE_SIZEOF, PCI_CAP_VC_PER_VC_SIZEOF
  if (vcArb) {
    len = Math.ceil(len / 16) * 16;
    len += vcArb / 8;
  }
  return len;
}

/** vfio_cap_len: variable-length standard capabilities */
function vfioCapLen(vdev: VfioPciCoreDevice, cap: number, pos: number): number {
  const pdev = vdev.pdev;
  switch (cap) {
    case CAP_MSI:
      return vfioMsiCapLen(vdev, pos);
    case CAP_PCIX: {
      const [ret, word] = rdw(vdev, pos + 2);
      if (ret) return pcibiosErrToErrno(ret);
      if ((word >> 12) & 3) {
        if (pdev.cfgSize > PCI_CFG_SPACE_SIZE) vdev.extendedCaps = rdd(vdev, PCI_CFG_SPACE_SIZE)[1] !== 0;
        return 24;
      }
      return 8;
    }
    case CAP_VNDR: {
      const [ret, byte] = rdb(vdev, pos + PCI_CAP_FLAGS);
      return ret ? pcibiosErrToErrno(ret) : byte;
    }
    case CAP_EXP: {
      if (pdev.cfgSize > PCI_CFG_SPACE_SIZE) vdev.extendedCaps = rdd(vdev, PCI_CFG_SPACE_SIZE)[1] !== 0;
      const flags = rdw(vdev, pos + 2)[1];
      const rcEnd = ((flags >> 4) & 0xf) === 0x9; // PCI_EXP_TYPE_RC_END
      if ((flags & 0xf) === 1) return rcEnd ? 0xc : 20;
      return rcEnd ? 0x2c : 0x34;
    }
    case CAP_HT: {
      const [ret, byte] = rdb(vdev, pos + 3);
      if (ret) return pcibiosErrToErrno(ret);
      return byte & 0xe0 ? 24 : 28; // HT_3BIT_CAP_MASK: short (24) or long (28)
    }
    case CAP_SATA: {
      const [ret, byte] = rdb(vdev, pos + 2 /* PCI_SATA_REGS */);
      if (ret) return pcibiosErrToErrno(ret);
      return (byte & 0xf) === 0xf ? 16 : 8; // PCI_SATA_REGS_INLINE: long, else short
    }
  }
  vdev.vdev.kernel.printk(`${pdev.name}: vfio_cap_len: unknown length for PCI cap 0x${cap.toString(16)}@0x${pos.toString(16)}`);
  return 0;
}

/** vfio_ext_cap_len: variable-length extended capabilities */
function vfioExtCapLen(vdev: VfioPciCoreDevice, ecap: number, epos: number): number {
  switch (ecap) {
    case ECAP_VNDR: {
      const [ret, d] = rdd(vdev, epos + 4);
      return ret ? pcibiosErrToErrno(ret) : (d >>> 20) & 0xfff;
    }
    case ECAP_VC:
    case ECAP_VC9:
    case ECAP_MFVC:
      return vfioVcCapLen(vdev, epos);
    case ECAP_ACS: {
      const [ret, byte] = rdb(vdev, epos + 4 /* PCI_ACS_CAP */);
      if (ret) return pcibiosErrToErrno(ret);
      if (byte & 0x20 /* PCI_ACS_EC */) {
        const [r2, bits0] = rdb(vdev, epos + 5 /* PCI_ACS_EGRESS_BITS */);
        if (r2) return pcibiosErrToErrno(r2);
        const bits = bits0 ? Math.ceil(bits0 / 32) * 32 : 256;
        return 8 + bits / 8;
      }
      return 8;
    }
    case ECAP_REBAR: {
      const [ret, byte] = rdb(vdev, epos + 8 /* PCI_REBAR_CTRL */);
      return ret ? pcibiosErrToErrno(ret) : 4 + ((byte & 0xe0) >> 5) * 8;
    }
    case ECAP_DPA: {
      const [ret, byte] = rdb(vdev, epos + 4 /* PCI_DPA_CAP */);
      return ret ? pcibiosErrToErrno(ret) : 16 + (byte & 0x1f) + 1;
    }
    case ECAP_TPH: {
      const [ret, d] = rdd(vdev, epos + 4 /* PCI_TPH_CAP */);
      if (ret) return pcibiosErrToErrno(ret);
      if ((d & 0x600) === 0x200) return 0xc + ((d >>> 16) & 0x7ff) * 2 + 2; // ST table in the capability
      return 0xc;
    }
    case ECAP_DVSEC: {
      const [ret, d] = rdd(vdev, epos + 4 /* PCI_DVSEC_HEADER1 */);
      return ret ? pcibiosErrToErrno(ret) : (d >>> 20) & 0xfff;
    }
  }
  vdev.vdev.kernel.printk(`${vdev.pdev.name}: vfio_ext_cap_len: unknown length for PCI ecap 0x${ecap.toString(16)}@0x${epos.toString(16)}`);
  return 0;
}

// ---- building the virtual config space at open ---------------------------------------------

/** vfio_update_pm_vconfig_bytes: no PME support, PME status/enable clear */
function vfioUpdatePmVconfigBytes(vdev: VfioPciCoreDevice, offset: number): void {
  const vc = vconf(vdev);
  setLe(vc, offset + PCI_PM_PMC, 2, getLe(vc, offset + PCI_PM_PMC, 2) & ~PCI_PM_CAP_PME_MASK);
  setLe(vc, offset + PCI_PM_CTRL, 2, getLe(vc, offset + PCI_PM_CTRL, 2) & ~(PCI_PM_CTRL_PME_ENABLE | PCI_PM_CTRL_PME_STATUS));
}

/** vfio_fill_vconfig_bytes: copy the hardware in the largest aligned chunks */
function vfioFillVconfigBytes(vdev: VfioPciCoreDevice, offset: number, size: number): number {
  const vc = vconf(vdev);
  while (size) {
    const n = size >= 4 && !(offset % 4) ? 4 : size >= 2 && !(offset % 2) ? 2 : 1;
    const [ret, v] = pciReadConfig(vdev.pdev, offset, n);
    if (ret) return ret;
    setLe(vc, offset, n, v);
    offset += n;
    size -= n;
  }
  return 0;
}

/** vfio_cap_init: walk the standard list, copy the capabilities kept, unlink the hidden ones */
function vfioCapInit(vdev: VfioPciCoreDevice): number {
  const map = vdev.pciConfigMap!;
  const vc = vconf(vdev);
  let [ret, v] = rdw(vdev, PCI_STATUS);
  if (ret) return ret;
  if (!(v & PCI_STATUS_CAP_LIST)) return 0;
  [ret, v] = rdb(vdev, PCI_CAPABILITY_LIST);
  if (ret) return ret;
  let pos = v;
  let prev = PCI_CAPABILITY_LIST; // the vconfig byte that points at pos
  let loops = (PCI_CFG_SPACE_SIZE - PCI_STD_HEADER_SIZEOF) / PCI_CAP_SIZEOF;
  let caps = 0;
  while (pos && loops--) {
    let cap: number, next: number;
    [ret, cap] = rdb(vdev, pos);
    if (ret) return ret;
    [ret, next] = rdb(vdev, pos + PCI_CAP_LIST_NEXT);
    if (ret) return ret;
    let len = 0;
    // ID 0 is a NULL capability (conflicts with PCI_CAP_ID_BASIC): hidden
    if (cap && cap <= PCI_CAP_ID_MAX) {
      len = pciCapLength[cap]!;
      if (len === 0xff) {
        len = vfioCapLen(vdev, cap, pos);
        if (len < 0) return len;
      }
    }
    if (!len) {
      vc[prev] = next; // hide it
      pos = next;
      continue;
    }
    for (let i = 0; i < len; i++)
      if (map[pos + i] !== PCI_CAP_ID_INVALID)
        vdev.vdev.kernel.printk(`${vdev.pdev.name}: vfio_cap_init: PCI config conflict @0x${(pos + i).toString(16)}, was cap 0x${map[pos + i]!.toString(16)} now cap 0x${cap.toString(16)}`);
    map.fill(cap, pos, pos + len);
    ret = vfioFillVconfigBytes(vdev, pos, len);
    if (ret) return ret;
    if (cap === CAP_PM) vfioUpdatePmVconfigBytes(vdev, pos);
    prev = pos + PCI_CAP_LIST_NEXT;
    pos = next;
    caps++;
  }
  // no capability kept: clear the status flag
  if (!caps) setLe(vc, PCI_STATUS, 2, getLe(vc, PCI_STATUS, 2) & ~PCI_STATUS_CAP_LIST);
  return 0;
}

/** vfio_ecap_init: the same for the extended list (a hidden first capability stays as an anchor) */
function vfioEcapInit(vdev: VfioPciCoreDevice): number {
  const pdev = vdev.pdev;
  const map = vdev.pciConfigMap!;
  const vc = vconf(vdev);
  if (!vdev.extendedCaps) return 0;
  let epos = PCI_CFG_SPACE_SIZE;
  let prev = -1;
  let loops = (pdev.cfgSize - PCI_CFG_SPACE_SIZE) / PCI_CAP_SIZEOF;
  let ecaps = 0;
  while (loops-- && epos >= PCI_CFG_SPACE_SIZE) {
    const [ret, header] = rdd(vdev, epos);
    if (ret) return ret;
    const ecap = header & 0xffff;
    let len = 0;
    let hidden = false;
    if (ecap <= PCI_EXT_CAP_ID_MAX) {
      len = pciExtCapLength[ecap]!;
      if (len === 0xff) {
        len = vfioExtCapLen(vdev, ecap, epos);
        if (len < 0) return len;
      }
    }
    if (!len) {
      // not the first in the chain: skip over it
      if (prev >= 0) {
        epos = header >>> 20;
        const p = getLe(vc, prev, 4);
        setLe(vc, prev, 4, ((p & ~(0xffc << 20)) | (epos << 20)) >>> 0);
        continue;
      }
      // otherwise a placeholder the direct read virtualises
      len = PCI_CAP_SIZEOF;
      hidden = true;
    }
    for (let i = 0; i < len; i++)
      if (map[epos + i] !== PCI_CAP_ID_INVALID)
        vdev.vdev.kernel.printk(`${pdev.name}: vfio_ecap_init: PCI config conflict @0x${(epos + i).toString(16)}, was ecap 0x${map[epos + i]!.toString(16)} now ecap 0x${ecap.toString(16)}`);
    map.fill(ecap & 0xff, epos, epos + len);
    const r = vfioFillVconfigBytes(vdev, epos, len);
    if (r) return r;
    if (hidden) setLe(vc, epos, 4, (getLe(vc, epos, 4) & (0xffc << 20)) >>> 0);
    else ecaps++;
    prev = epos;
    epos = header >>> 20;
  }
  if (!ecaps) setLe(vc, PCI_CFG_SPACE_SIZE, 4, 0);
  return 0;
}

/**
 * vfio_config_init: the virtual config space and the capability map, from the hardware; the
 * BARs saved for recovery, the interrupt pin hidden when INTx cannot be used.
 */
export function vfioConfigInit(vdev: VfioPciCoreDevice): number {
  const pdev = vdev.pdev;
  const map = new Uint8Array(pdev.cfgSize);
  const vc = new Uint8Array(pdev.cfgSize);
  vdev.pciConfigMap = map;
  vdev.vconfig = vc;
  map.fill(PCI_CAP_ID_BASIC, 0, PCI_STD_HEADER_SIZEOF);
  map.fill(PCI_CAP_ID_INVALID, PCI_STD_HEADER_SIZEOF);
  const fail = (ret: number) => {
    vdev.pciConfigMap = null;
    vdev.vconfig = null;
    return ret > 0 ? pcibiosErrToErrno(ret) : ret;
  };
  let ret = vfioFillVconfigBytes(vdev, 0, PCI_STD_HEADER_SIZEOF);
  if (ret) return fail(ret);
  vdev.bardirty = true;
  for (let i = 0; i < 6; i++) vdev.rbar[i] = getLe(vc, PCI_BASE_ADDRESS_0 + 4 * i, 4);
  vdev.rbar[6] = getLe(vc, PCI_ROM_ADDRESS, 4);
  if (pdev.isVirtfn) {
    setLe(vc, PCI_VENDOR_ID, 2, pdev.vendor);
    setLe(vc, PCI_DEVICE_ID, 2, pdev.device);
    if (vc[PCI_INTERRUPT_PIN]) vdev.vdev.kernel.printk(`${pdev.name}: Hardware bug: VF reports bogus INTx pin ${vc[PCI_INTERRUPT_PIN]}`);
    vc[PCI_INTERRUPT_PIN] = 0;
  }
  // CONFIG_VFIO_PCI_INTX=y; no IRQ routed (no pin) or INTx masked by quirk: the pin reads 0
  if (vdev.nointx || !pdev.interruptPin) vc[PCI_INTERRUPT_PIN] = 0;
  ret = vfioCapInit(vdev);
  if (ret) return fail(ret);
  ret = vfioEcapInit(vdev);
  if (ret) return fail(ret);
  return 0;
}

/** vfio_config_free */
export function vfioConfigFree(vdev: VfioPciCoreDevice): void {
  vdev.vconfig = null;
  vdev.pciConfigMap = null;
  vdev.msiPerm = null;
}

// ---- the config region's read/write -----------------------------------------------------------

/** vfio_pci_cap_remaining_dword: bytes left in this dword that belong to the same capability */
function vfioPciCapRemainingDword(vdev: VfioPciCoreDevice, pos: number): number {
  const map = vdev.pciConfigMap!;
  const cap = map[pos];
  let i = 1;
  for (; (pos + i) % 4 && map[pos + i] === cap; i++);
  return i;
}

/**
 * vfio_pci_config_rw_single: one aligned chunk (4, 2 or 1 bytes, within one capability and one
 * dword) through its permission table. `pos` is the position inside the config region.
 */
export function* vfioPciConfigRwSingle(vdev: VfioPciCoreDevice, buf: number, count: number, pos: number, iswrite: boolean): KGen<number> {
  const pdev = vdev.pdev;
  if (pos < 0 || pos >= pdev.cfgSize || pos + count > pdev.cfgSize) return -EFAULT;
  count = Math.min(count, vfioPciCapRemainingDword(vdev, pos));
  if (count >= 4 && !(pos % 4)) count = 4;
  else if (count >= 2 && !(pos % 2)) count = 2;
  else count = 1;
  let ret = count;
  const capId = vdev.pciConfigMap![pos]!;
  let perm: PermBits;
  let capStart = 0;
  if (capId === PCI_CAP_ID_INVALID) {
    perm = unassignedPerms;
    capStart = pos;
  } else if (capId === PCI_CAP_ID_INVALID_VIRT) {
    perm = virtPerms;
    capStart = pos;
  } else if (pos >= PCI_CFG_SPACE_SIZE) {
    // an unknown ID can be the hidden anchor at 0x100: read-only, ID and next virtualised
    perm = capId > PCI_EXT_CAP_ID_MAX ? directRoPerms : ecapPerms[capId]!;
    capStart = vfioFindCapStart(vdev, pos);
  } else {
    perm = capPerms[capId]!;
    if (capId === CAP_MSI) perm = vdev.msiPerm!;
    if (capId > PCI_CAP_ID_BASIC) capStart = vfioFindCapStart(vdev, pos);
  }
  const offset = pos - capStart;
  const mm = currentMm();
  if (iswrite) {
    if (!perm.writefn) return ret;
    const b = copyFromUser(mm, buf, count);
    if (typeof b === 'number') return -EFAULT;
    ret = yield* perm.writefn(vdev, pos, count, perm, offset, getLe(b, 0, count));
  } else {
    const val = { v: 0 };
    if (perm.readfn) {
      ret = yield* perm.readfn(vdev, pos, count, perm, offset, val);
      if (ret < 0) return ret;
    }
    const out = new Uint8Array(count);
    setLe(out, 0, count, val.v);
    if (copyToUser(mm, buf, out) < 0) return -EFAULT;
  }
  return ret;
}

/** vfio_pci_config_rw: the whole transfer, chunk by chunk; no short transfers */
export function* vfioPciConfigRw(vdev: VfioPciCoreDevice, buf: number, count: number, ppos: Pos, iswrite: boolean): KGen<number> {
  let done = 0;
  let pos = Number(ppos.pos & VFIO_PCI_OFFSET_MASK);
  while (count) {
    const ret = yield* vfioPciConfigRwSingle(vdev, buf, count, pos, iswrite);
    if (ret < 0) return ret;
    count -= ret;
    done += ret;
    buf += ret;
    pos += ret;
  }
  ppos.pos += BigInt(done);
  return done;
}

export const VFIO_PCI_OFFSET_SHIFT = 40n;
export const VFIO_PCI_OFFSET_MASK = (1n << VFIO_PCI_OFFSET_SHIFT) - 1n;

