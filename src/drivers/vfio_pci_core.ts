// drivers/vfio/pci/vfio_pci_core.c: the vfio-pci core device — registration with its device set
// (self / slot / bus), open_device and close_device (function reset, needs_reset, the device-set
// bus reset on the last close), the request callback, name matching with vf_token, and the ioctls.

import { EBUSY, EFAULT, EINVAL, ENODEV, ENOTTY, EACCES, EAGAIN } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { Mutex, RwSemaphore, downWrite, lockdepAssertHeld, mutexLock, mutexTrylock, mutexUnlock, upWrite } from '../kernel/sync.js';
import type { PciSavedState } from './pci/config_space.js';
import { vfioPciParams } from './vfio_pci.js';
import type { PermBits } from './vfio_pci_config.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import {
  PCI_D0, PCI_D3hot, PciDev, PciPowerState, pciClearMaster, pciDevicesAffectedByReset, pciDisableDevice,
  pciEnableDevice, pciProbeResetBus, pciProbeResetSlot, pciResetBus, pciSetPowerState,
  pciTryLockAndResetFunction, pciTryResetFunction,
} from './pci/pci.js';
import {
  PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_MEMORY, PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_BIRMASK, PCI_MSIX_FLAGS_QSIZE,
  PCI_MSIX_TABLE, PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET, pciFindCapability, pciReadConfigDword, pciReadConfigWord,
  pciRestoreState, pciSaveState, pciWriteConfigWord,
} from './pci/config_space.js';
import { PCI_CAP_ID_MSIX } from './pci/caps.js';
import { pciIntx, pciIntxMaskSupported } from './pci/irq.js';
import { vfioPciIoctlGetIrqInfo, vfioPciIoctlSetIrqs, vfioPciIrqsDisable } from './vfio_pci_intrs.js';
import { vfioPciIoctlGetPciHotResetInfo, vfioPciIoctlPciHotReset, vfioPciIoctlReset } from './vfio_pci_reset.js';
import {
  VFIO_PCI_OFFSET_SHIFT, vfioConfigFree, vfioConfigInit, vfioPciConfigRw, vfioPciMemoryEnabled,
} from './vfio_pci_config.js';
import { vfioPciBarRw, vfioPciVgaRw } from './vfio_pci_rdwr.js';
import { IoWidth, getLe, pciHwIoRead, pciHwIoWrite, putLe } from './pci/hw/hw.js';
import { pciMapRom, pciUnmapRom } from './pci/rom.js';
import { Pos, VmArea } from '../kernel/fs/file.js';
import { PAGE_SIZE } from '../kernel/uaccess.js';
import { VfioDevice, VfioDeviceSet } from '../vfio/vfio.js';
import { VfioInfoCap, vfioCheckFeature, vfioAssignDeviceSet, vfioDeviceSetOpenCount, vfioRegisterGroupDev, vfioUnregisterGroupDev } from '../vfio/vfio_main.js';
import { EventfdCtx, eventfdSignal } from '../kernel/eventfd.js';
import type { Kernel } from '../kernel/kernel.js';
import { PciBusNotifier, pciBusRegisterNotifier, pciBusUnregisterNotifier } from './pci/pci.js';
import { pciDisableSriov, pciEnableSriov, pciNumVf, pciPhysfn } from './pci/iov.js';

export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_NUM_IRQS = 5;

/** The VF token a PF shares with its VFs (struct vfio_pci_vf_token). */
export interface VfToken {
  lock: Mutex;
  uuid: Uint8Array;
  users: number;
}

/** struct vfio_pci_core_device */
export class VfioPciCoreDevice {
  resetWorks = false;
  needsReset = false;
  /** vconfig/state live in the device model; this is the lifecycle part */
  enabled = false;
  /** a PF bound to vfio-pci with SR-IOV: the token; VFs point to their PF's core device */
  vfToken: VfToken | null = null;
  sriovPfCoreDev: VfioPciCoreDevice | null = null;
  /** vdev->sriov_active: VFs enabled through vfio_pci_core_sriov_configure (no low power) */
  sriovActive = false;
  /** vdev->nb: the PCI bus notifier a PF registers to capture its VFs' driver_override */
  nb: PciBusNotifier | null = null;
  readonly igate: Mutex;
  reqTrigger: EventfdCtx | null = null;
  errTrigger: EventfdCtx | null = null;
  /** number of regions beyond the 9 standard ones (device specific) */
  numRegions = 0;
  readonly barMmapSupported = [false, false, false, false, false, false];
  /** VGA decode is offered (CONFIG_VFIO_PCI_VGA and a VGA class device) */
  hasVga = false;
  /** the vfio_device this core device embeds */
  vdev!: VfioDevice;

  // ---- config space, BARs, ROM, mmap (vfio_pci_config.c, vfio_pci_rdwr.c, vfio_pci_core_mmap) ----
  /** vdev->vconfig / vdev->pci_config_map: built at open (vfio_config_init), freed at close */
  vconfig: Uint8Array | null = null;
  pciConfigMap: Uint8Array | null = null;
  /** vdev->msi_perm: the MSI capability's permission bits (its layout depends on the device) */
  msiPerm: PermBits | null = null;
  /** the virtual BARs were written: redo the sizing fixup before the next read */
  bardirty = false;
  /** vdev->rbar: the physical BAR and ROM registers at open, to restore after a backdoor reset */
  readonly rbar = new Uint32Array(7);
  /** the function has a PCIe/PCI-X 2 extended capability list */
  extendedCaps = false;
  /** vdev->memory_lock: BAR access and mmap faults (read) vs decode changes and resets (write) */
  readonly memoryLock: RwSemaphore;
  /** the MSI-X table's BAR (0xff: no MSI-X), offset and size, read from the capability at open */
  msixBar = 0xff;
  msixOffset = 0;
  msixSize = 0;
  /** vdev->barmap: 0 = mapped at open (vfio_pci_core_map_bars), else that BAR's error */
  readonly barmap: number[] = [-ENODEV, -ENODEV, -ENODEV, -ENODEV, -ENODEV, -ENODEV];
  /** vdev->pci_saved_state: the function's state saved at open, restored at close */
  pciSavedState: PciSavedState | null = null;
  /** D3hot->D0 loses state (no No_Soft_Reset): save it around low-power transitions (pm_save) */
  needsPmRestore = false;
  pmSave: PciSavedState | null = null;
  /** INTx: PCI 2.3 masking usable (pci_2_3), masked by quirk (nointx), disabled through COMMAND */
  pci23 = false;
  nointx = false;
  virqDisabled = false;
  /** vdev->irq_type: the index in use (VFIO_PCI_NUM_IRQS: none); set by the interrupt code */
  irqType = VFIO_PCI_NUM_IRQS;
  /** vdev->msi_qmax: log2 of the MSI vectors the user enabled (set by the interrupt code) */
  msiQmax = 0;
  /** vdev->pm_runtime_engaged: the low-power feature is in use (mmap faults SIGBUS) */
  pmRuntimeEngaged = false;
  /** how often the BAR mappings were zapped (unmap_mapping_range on the device's inode) */
  zapCount = 0;

  constructor(readonly pdev: PciDev) {
    this.igate = new Mutex(`vfio_pci(${pdev.name})->igate`);
    this.memoryLock = new RwSemaphore(`vfio_pci(${pdev.name})->memory_lock`);
  }
}

export function toCore(vdev: VfioDevice): VfioPciCoreDevice {
  return vdev.drv as VfioPciCoreDevice;
}

/**
 * vfio_pci_core_register_device: normal headers only, no PF with VFs enabled; the device set is
 * the device itself on a root bus or for a VF, else the slot if it has a slot reset, else the bus.
 */
export function* vfioPciCoreRegisterDevice(vdev: VfioPciCoreDevice): KGen<number> {
  const pdev = vdev.pdev;
  if (pdev.headerType !== 'normal') return -EINVAL;
  // VFs that exist already might be in use by the host or other users: reject the PF
  if (pciNumVf(pdev)) {
    vdev.vdev.kernel.printk(`${pdev.name}: Cannot bind to PF with SR-IOV enabled`);
    return -EBUSY;
  }
  let ret: number;
  if (pdev.bus.isRoot || pdev.isVirtfn) ret = yield* vfioAssignDeviceSet(vdev.vdev, vdev, pdev.name);
  else if (pciProbeResetSlot(pdev.slot) === 0) ret = yield* vfioAssignDeviceSet(vdev.vdev, pdev.slot, `slot ${pdev.bus.name}:${pdev.slot!.number.toString(16).padStart(2, '0')}`);
  else ret = yield* vfioAssignDeviceSet(vdev.vdev, pdev.bus, `bus ${pdev.bus.name}`);
  if (ret) return ret;
  yield* vfioPciVfInit(vdev);
  vfioPciProbePowerState(vdev);
  ret = yield* vfioRegisterGroupDev(vdev.vdev);
  if (ret) vfioPciVfUninit(vdev);
  return ret;
}

/** vfio_pci_sriov_pfs: the PFs vfio_pci_core_sriov_configure() has been called on, and its mutex */
function vfioPciSriovPfs(k: Kernel): { list: VfioPciCoreDevice[]; mutex: Mutex } {
  return k.state('vfio_pci_sriov_pfs', () => ({ list: [] as VfioPciCoreDevice[], mutex: new Mutex('vfio_pci_sriov_pfs_mutex') }));
}

/** uuid_gen: a random (version 4) UUID */
function uuidGen(): Uint8Array {
  const u = new Uint8Array(16);
  globalThis.crypto.getRandomValues(u);
  u[6] = (u[6]! & 0x0f) | 0x40;
  u[8] = (u[8]! & 0x3f) | 0x80;
  return u;
}

/**
 * vfio_pci_vf_init: a VF created by a vfio-pci PF's sriov_configure finds that PF (its token
 * applies); a PF gets a random VF token and a bus notifier that captures its VFs for vfio-pci.
 */
function* vfioPciVfInit(vdev: VfioPciCoreDevice): KGen<number> {
  const pdev = vdev.pdev;
  const k = vdev.vdev.kernel;
  if (pdev.isVirtfn) {
    const physfn = pciPhysfn(pdev);
    const pfs = vfioPciSriovPfs(k);
    yield* mutexLock(pfs.mutex);
    vdev.sriovPfCoreDev = pfs.list.find((cur) => cur.pdev === physfn) ?? null;
    yield* mutexUnlock(pfs.mutex);
    return 0;
  }
  if (!pdev.isPhysfn) return 0;
  vdev.vfToken = { lock: new Mutex(`vf_token(${pdev.name})`), uuid: uuidGen(), users: 0 };
  // vfio_pci_bus_notifier
  vdev.nb = (action, d) => {
    if (!d.isVirtfn || pciPhysfn(d) !== pdev) return;
    if (action === 'add_device') {
      k.printk(`${pdev.name}: Captured SR-IOV VF ${d.name} driver_override`);
      d.driverOverride = vdev.vdev.ops.name;
    } else if (action === 'bound_driver') {
      const drv = d.driver;
      if (drv && drv !== pdev.driver) k.printk(`${pdev.name}: VF ${d.name} bound to driver ${drv.name} while PF bound to driver ${pdev.driver?.name ?? '(none)'}`);
    }
  };
  pciBusRegisterNotifier(k, vdev.nb);
  return 0;
}

/** vfio_pci_vf_uninit */
function vfioPciVfUninit(vdev: VfioPciCoreDevice): void {
  if (!vdev.vfToken) return;
  const k = vdev.vdev.kernel;
  if (vdev.nb) pciBusUnregisterNotifier(k, vdev.nb);
  vdev.nb = null;
  if (vdev.vfToken.users) k.warn(`${vdev.pdev.name}: vf_token still has ${vdev.vfToken.users} users at uninit`);
  vdev.vfToken = null;
}

/** vfio_pci_core_unregister_device: VFs disabled first (waits for their users), then unregister */
export function* vfioPciCoreUnregisterDevice(vdev: VfioPciCoreDevice): KGen<void> {
  yield* vfioPciCoreSriovConfigure(vdev, 0);
  yield* vfioUnregisterGroupDev(vdev.vdev);
  vfioPciVfUninit(vdev);
}

/**
 * vfio_pci_core_sriov_configure (the PF's device lock held): enabling puts the PF on the
 * sriov_pfs list (EINVAL if it is already there), brings it to D0, marks SR-IOV active and
 * enables the VFs, returning their number; 0 disables the VFs (removing them waits for their
 * users) and takes the PF off the list.
 */
export function* vfioPciCoreSriovConfigure(vdev: VfioPciCoreDevice, nrVirtfn: number): KGen<number> {
  const pdev = vdev.pdev;
  const k = vdev.vdev.kernel;
  const pfs = vfioPciSriovPfs(k);
  let ret = 0;
  if (nrVirtfn) {
    yield* mutexLock(pfs.mutex);
    // only the thread that put the device on the list may call pci_enable_sriov, once
    if (pfs.list.includes(vdev)) {
      yield* mutexUnlock(pfs.mutex);
      return -EINVAL;
    }
    pfs.list.push(vdev);
    yield* mutexUnlock(pfs.mutex);
    // (pm_runtime_resume_and_get: runtime PM is not modelled)
    yield* downWrite(vdev.memoryLock);
    yield* vfioPciSetPowerState(vdev, PCI_D0);
    vdev.sriovActive = true;
    yield* upWrite(vdev.memoryLock);
    ret = yield* pciEnableSriov(k, pdev, nrVirtfn);
    if (!ret) return nrVirtfn;
  } else if (pciNumVf(pdev)) {
    yield* pciDisableSriov(k, pdev);
  }
  // out_del
  vdev.sriovActive = false;
  yield* mutexLock(pfs.mutex);
  const i = pfs.list.indexOf(vdev);
  if (i >= 0) pfs.list.splice(i, 1);
  yield* mutexUnlock(pfs.mutex);
  return ret;
}

/** vfio_pci_nointx: functions whose INTx masking is broken (i40e, X550): INTx is hidden */
function vfioPciNointx(pdev: PciDev): boolean {
  if (pdev.vendor !== 0x8086) return false;
  const d = pdev.device;
  return d === 0x1572 || d === 0x1574 || d === 0x1580 || d === 0x1581 || (d >= 0x1583 && d <= 0x158b) || (d >= 0x37d0 && d <= 0x37d2) || d === 0x1563;
}

/** vfio_pci_probe_power_state (at registration): D3hot->D0 loses state unless No_Soft_Reset */
export function vfioPciProbePowerState(vdev: VfioPciCoreDevice): void {
  const pm = vdev.pdev.config.pmAt;
  if (!pm) return;
  vdev.needsPmRestore = !(pciReadConfigWord(vdev.pdev, pm + PCI_PM_CTRL) & PCI_PM_CTRL_NO_SOFT_RESET);
}

/**
 * vfio_pci_core_map_bars: reserve and iomap every implemented BAR at open. Nothing else claims a
 * vfio-pci function's BARs in this model, so every reservation succeeds.
 */
function vfioPciCoreMapBars(vdev: VfioPciCoreDevice): void {
  for (let bar = 0; bar < 6; bar++) {
    vdev.barmap[bar] = -ENODEV;
    const r = vdev.pdev.resources[bar];
    if (!r || !r.size) continue;
    vdev.barmap[bar] = 0;
  }
}

/**
 * vfio_pci_core_enable: bus mastering off, the function enabled, a function reset tried (the open
 * fails with EAGAIN if the device lock is contended; otherwise reset_works records whether it
 * worked), the state saved for close, INTx masking probed, the virtual config space built, the
 * MSI-X table located, VGA decided, the BARs mapped. (Runtime PM is not modelled: an idle
 * function stays in D0, so pm_runtime_resume_and_get has nothing to do.)
 */
export function* vfioPciCoreEnable(vdev: VfioPciCoreDevice): KGen<number> {
  const pdev = vdev.pdev;
  const k = vdev.vdev.kernel;
  // don't allow our initial saved state to include busmaster
  pciClearMaster(pdev);
  let ret = pciEnableDevice(pdev);
  if (ret) return ret;
  // if the reset fails because of the device lock, fail this path entirely
  ret = yield* pciTryResetFunction(k, pdev);
  if (ret === -EAGAIN) {
    pciDisableDevice(pdev);
    return ret;
  }
  vdev.resetWorks = ret === 0;
  vdev.pciSavedState = pciSaveState(pdev);
  if (!vfioPciParams(k).nointxmask) {
    if (vfioPciNointx(pdev)) {
      k.printk(`${pdev.name}: Masking broken INTx support`);
      vdev.nointx = true;
      pciIntx(pdev, false);
    } else vdev.pci23 = pciIntxMaskSupported(pdev);
  }
  const cmd = pciReadConfigWord(pdev, PCI_COMMAND);
  if (vdev.pci23 && cmd & PCI_COMMAND_INTX_DISABLE) pciWriteConfigWord(pdev, PCI_COMMAND, cmd & ~PCI_COMMAND_INTX_DISABLE);
  ret = vfioConfigInit(vdev);
  if (ret) {
    vdev.pciSavedState = null;
    pciDisableDevice(pdev);
    return ret;
  }
  const msix = pdev.config && pciFindCapability(pdev, PCI_CAP_ID_MSIX);
  if (msix) {
    const flags = pciReadConfigWord(pdev, msix + PCI_MSIX_FLAGS);
    const table = pciReadConfigDword(pdev, msix + PCI_MSIX_TABLE);
    vdev.msixBar = table & PCI_MSIX_FLAGS_BIRMASK;
    vdev.msixOffset = (table & ~PCI_MSIX_FLAGS_BIRMASK) >>> 0;
    vdev.msixSize = ((flags & PCI_MSIX_FLAGS_QSIZE) + 1) * 16;
  } else {
    vdev.msixBar = 0xff;
  }
  if (!vfioPciParams(k).disableVga && pdev.isVga) vdev.hasVga = true;
  vfioPciCoreMapBars(vdev);
  vdev.enabled = true;
  return 0;
}

/** vfio_pci_core_finish_enable: which BARs may be mmapped; a VF of a vfio-pci PF is a token user. */
export function* vfioPciCoreFinishEnable(vdev: VfioPciCoreDevice): KGen<void> {
  vfioPciProbeMmaps(vdev);
  const pf = vdev.sriovPfCoreDev;
  if (pf?.vfToken) {
    yield* mutexLock(pf.vfToken.lock);
    pf.vfToken.users++;
    yield* mutexUnlock(pf.vfToken.lock);
  }
}

/**
 * vfio_pci_core_disable (under the dev_set lock): back to D0, bus mastering off, interrupts and
 * ioeventfds torn down, virtual config freed, BARs unmapped; then the state saved at open restored
 * around a function reset done only if the device (and upstream bridge) locks can be taken
 * without waiting; the function disabled; and the device-set bus/slot reset tried.
 */
export function* vfioPciCoreDisable(vdev: VfioPciCoreDevice): KGen<void> {
  const pdev = vdev.pdev;
  const k = vdev.vdev.kernel;
  lockdepAssertHeld(vdev.vdev.devSet!.lock);
  // (vfio_pci_runtime_pm_exit / pm_runtime_resume: runtime PM and the low-power feature are not
  // modelled)
  yield* vfioPciSetPowerState(vdev, PCI_D0);
  // stop the device from further DMA
  pciClearMaster(pdev);
  // interrupts off: vfio_pci_set_irqs_ioctl(DATA_NONE | ACTION_TRIGGER, irq_type, 0, 0)
  // (ioeventfds are not modelled)
  yield* vfioPciIrqsDisable(vdev);
  vdev.virqDisabled = false;
  vdev.numRegions = 0;
  vfioConfigFree(vdev);
  for (let bar = 0; bar < 6; bar++) if (vdev.barmap[bar] === 0) vdev.barmap[bar] = -ENODEV;
  vdev.needsReset = true;
  vdev.enabled = false;
  // if we have saved state, restore it; if we can reset the device, even better
  let saved = vdev.pciSavedState;
  vdev.pciSavedState = null;
  let restore = true;
  if (!saved) {
    k.printk(`${pdev.name}: vfio_pci_core_disable: Couldn't reload saved state`);
    if (!vdev.resetWorks) restore = false;
    else saved = pciSaveState(pdev);
  }
  if (restore) {
    // disable INTx and MSI, presumably to avoid spurious interrupts during reset
    pciWriteConfigWord(pdev, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    // try the locks ourselves: the "try" reset would overwrite the restored state
    if (vdev.resetWorks) {
      const bridge = pdev.bus.self;
      let bridgeLocked = false;
      let skip = false;
      if (bridge) {
        if (!(yield* mutexTrylock(bridge.deviceLock))) skip = true;
        else bridgeLocked = true;
      }
      if (!skip) {
        const r = yield* pciTryLockAndResetFunction(k, pdev);
        if (r === 0) vdev.needsReset = false;
      }
      if (bridgeLocked && bridge) yield* mutexUnlock(bridge.deviceLock);
    }
    pciRestoreState(pdev, saved!);
  }
  pciDisableDevice(pdev);
  yield* vfioPciDevSetTryReset(vdev.vdev.devSet!);
}

/** vfio_pci_core_close_device */
export function* vfioPciCoreCloseDevice(vdev: VfioPciCoreDevice): KGen<void> {
  const pf = vdev.sriovPfCoreDev;
  if (pf?.vfToken) {
    yield* mutexLock(pf.vfToken.lock);
    if (!pf.vfToken.users) vdev.vdev.kernel.warn(`vf_token users underflow on ${pf.pdev.name}`);
    pf.vfToken.users--;
    yield* mutexUnlock(pf.vfToken.lock);
  }
  yield* vfioPciCoreDisable(vdev);
  yield* mutexLock(vdev.igate);
  vdev.errTrigger = null;
  vdev.reqTrigger = null;
  yield* mutexUnlock(vdev.igate);
}

// ---- device-set resets -------------------------------------------------------------------------

function devSetCores(devSet: VfioDeviceSet): VfioPciCoreDevice[] {
  return devSet.deviceList.map((d) => toCore(d));
}

/** vfio_pci_dev_set_resettable: the pci_dev to reset, if the whole reset scope is in the set. */
export function vfioPciDevSetResettable(devSet: VfioDeviceSet): PciDev | null {
  lockdepAssertHeld(devSet.lock);
  const first = devSetCores(devSet)[0];
  if (!first) return null;
  const pdev = first.pdev;
  const slotOk = pciProbeResetSlot(pdev.slot) === 0;
  if (!slotOk && pciProbeResetBus(pdev.bus) !== 0) return null;
  const affected = pciDevicesAffectedByReset(pdev, slotOk);
  const members = new Set(devSetCores(devSet).map((c) => c.pdev));
  if (affected.some((d) => !members.has(d))) return null;
  return pdev;
}

/** vfio_pci_dev_set_needs_reset: no other device open, and someone is dirty. */
function vfioPciDevSetNeedsReset(devSet: VfioDeviceSet): boolean {
  if (vfioDeviceSetOpenCount(devSet) > 1) return false;
  return devSetCores(devSet).some((c) => c.needsReset);
}

/** vfio_pci_dev_set_try_reset: a bus/slot reset on the last close of the set, when possible. */
export function* vfioPciDevSetTryReset(devSet: VfioDeviceSet): KGen<void> {
  if (!vfioPciDevSetNeedsReset(devSet)) return;
  const pdev = vfioPciDevSetResettable(devSet);
  if (!pdev) return;
  const k = devSet.deviceList[0]!.kernel;
  if ((yield* pciResetBus(k, pdev)) === 0) {
    for (const c of devSetCores(devSet)) c.needsReset = false;
    k.event('dev_set_reset', { dev_set: devSet.label });
  }
}

// ---- request, match, token ---------------------------------------------------------------------

/** vfio_pci_core_request: signal the REQ eventfd if the user registered one. */
export function* vfioPciCoreRequest(vdev: VfioPciCoreDevice, count: number): KGen<void> {
  const k = vdev.vdev.kernel;
  const ev = vdev.reqTrigger;
  if (ev) {
    if (count % 10 === 0) k.printk(`${vdev.pdev.name}: Relaying device request to user (#${count})`);
    yield* eventfdSignal(ev);
  } else if (count === 0) {
    k.printk(`${vdev.pdev.name}: No device request channel registered, blocked until released by user`);
  }
}

/** vfio_pci_core_match_token_uuid */
export function* vfioPciCoreMatchTokenUuid(vdev: VfioPciCoreDevice, uuid: Uint8Array | null): KGen<number> {
  const pdev = vdev.pdev;
  if (pdev.isVirtfn) {
    const pf = vdev.sriovPfCoreDev;
    if (!pf) return uuid ? -EINVAL : 0;
    if (!uuid) return -EACCES;
    yield* mutexLock(pf.vfToken!.lock);
    const match = equalBytes(uuid, pf.vfToken!.uuid);
    yield* mutexUnlock(pf.vfToken!.lock);
    return match ? 0 : -EACCES;
  } else if (vdev.vfToken) {
    const t = vdev.vfToken;
    yield* mutexLock(t.lock);
    let ret = 0;
    if (t.users) {
      if (!uuid || !equalBytes(uuid, t.uuid)) ret = -EACCES;
    } else if (uuid) t.uuid = uuid.slice();
    yield* mutexUnlock(t.lock);
    return ret;
  } else if (uuid) return -EINVAL;
  return 0;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

const UUID_STRING_LEN = 36;

/** uuid_parse (lib/uuid.c): 8-4-4-4-12 hex digits. */
export function uuidParse(s: string): Uint8Array | null {
  if (s.length < UUID_STRING_LEN) return null;
  const t = s.slice(0, UUID_STRING_LEN);
  if (t[8] !== '-' || t[13] !== '-' || t[18] !== '-' || t[23] !== '-') return null;
  const hex = t.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) return null;
  const out = new Uint8Array(16);
  // uuid_t byte order: the string's bytes in order
  const idx = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
  for (let i = 0; i < 16; i++) out[i] = parseInt(t.slice(idx[i]!, idx[i]! + 2), 16);
  return out;
}

/** vfio_pci_core_match: "<pci name>[ vf_token=<uuid>]" */
export function* vfioPciCoreMatch(vdev: VfioPciCoreDevice, buf: string): KGen<number> {
  const name = vdev.pdev.name;
  if (!buf.startsWith(name)) return 0;
  let uuid: Uint8Array | null = null;
  if (buf.length > name.length) {
    let rest = buf.slice(name.length);
    if (rest[0] !== ' ') return 0;
    let vfToken = false;
    while (rest.length) {
      if (rest[0] === ' ') {
        rest = rest.slice(1);
        continue;
      }
      if (!vfToken && rest.startsWith('vf_token=')) {
        rest = rest.slice('vf_token='.length);
        if (rest.length < UUID_STRING_LEN) return -EINVAL;
        const u = uuidParse(rest);
        if (!u) return -EINVAL;
        uuid = u;
        vfToken = true;
        rest = rest.slice(UUID_STRING_LEN);
      } else return -EINVAL;
    }
  }
  const ret = yield* vfioPciCoreMatchTokenUuid(vdev, uuid);
  if (ret) return ret;
  return 1;
}

// ---- memory: power state, decode, zapping user mappings, read/write, mmap ----------------------

/**
 * vfio_pci_set_power_state: pci_set_power_state, saving the function's state before D3hot and
 * restoring it after D0 when D3hot->D0 resets it (needs_pm_restore). Caller holds memory_lock
 * for write when going to a low-power state.
 */
export function* vfioPciSetPowerState(vdev: VfioPciCoreDevice, state: PciPowerState): KGen<number> {
  const pdev = vdev.pdev;
  let needsSave = false;
  let needsRestore = false;
  // no low power for a PF with VFs enabled
  if (state > PCI_D0 && vdev.sriovActive) return -EBUSY;
  if (vdev.needsPmRestore) {
    if (pdev.currentState < PCI_D3hot && state >= PCI_D3hot) needsSave = true;
    if (pdev.currentState >= PCI_D3hot && state <= PCI_D0) needsRestore = true;
  }
  const saved = needsSave ? pciSaveState(pdev) : null;
  const ret = pciSetPowerState(pdev, state);
  if (!ret) {
    if (needsSave && pdev.currentState >= PCI_D3hot) vdev.pmSave = saved;
    else if (needsRestore) {
      const s = vdev.pmSave;
      vdev.pmSave = null;
      if (s) pciRestoreState(pdev, s);
    }
  }
  return ret;
}

/**
 * vfio_pci_zap_bars: unmap_mapping_range over the BAR regions of the device's inode. The pages of
 * every user mapping of a BAR are revoked and the next access faults (vfio_pci_mmap_page_fault),
 * which maps them again only while memory is enabled. In process a BAR mapping is trapped
 * (VmArea.mmio) and checks this at each access, which is what zap-then-fault amounts to; through
 * the bridge the client's pages stay mapped (revoking them would need the shim's help).
 */
export function vfioPciZapBars(vdev: VfioPciCoreDevice): void {
  vdev.zapCount++;
}

/** vfio_pci_zap_and_down_write_memory_lock */
export function* vfioPciZapAndDownWriteMemoryLock(vdev: VfioPciCoreDevice): KGen<void> {
  yield* downWrite(vdev.memoryLock);
  vfioPciZapBars(vdev);
}

/** vfio_pci_memory_lock_and_enable: memory decode on (physically) for a kernel-side access */
export function* vfioPciMemoryLockAndEnable(vdev: VfioPciCoreDevice): KGen<number> {
  yield* downWrite(vdev.memoryLock);
  const cmd = pciReadConfigWord(vdev.pdev, PCI_COMMAND);
  if (!(cmd & PCI_COMMAND_MEMORY)) pciWriteConfigWord(vdev.pdev, PCI_COMMAND, cmd | PCI_COMMAND_MEMORY);
  return cmd;
}

/** vfio_pci_memory_unlock_and_restore */
export function* vfioPciMemoryUnlockAndRestore(vdev: VfioPciCoreDevice, cmd: number): KGen<void> {
  pciWriteConfigWord(vdev.pdev, PCI_COMMAND, cmd);
  yield* upWrite(vdev.memoryLock);
}

/**
 * vfio_pci_intx_mask / vfio_pci_intx_unmask (vfio_pci_intrs.c), as the config space's INTx
 * disable emulation calls them: the interrupt code registers its implementation with
 * setVfioPciIntxOps. Until it has, only the case without INTx in use exists: the physical
 * disable bit follows the virtual one (PCI 2.3 masking).
 */
export interface VfioPciIntxOps {
  mask(vdev: VfioPciCoreDevice): KGen<boolean>;
  unmask(vdev: VfioPciCoreDevice): KGen<void>;
}
let intxOps: VfioPciIntxOps | null = null;
export function setVfioPciIntxOps(ops: VfioPciIntxOps): void {
  intxOps = ops;
}

/** vfio_pci_intx_mask (as the config space's INTx disable emulation calls it) */
export function* vfioPciIntxMask(vdev: VfioPciCoreDevice): KGen<boolean> {
  if (intxOps) return yield* intxOps.mask(vdev);
  if (vdev.pci23) pciIntx(vdev.pdev, false);
  return true;
}

/** vfio_pci_intx_unmask */
export function* vfioPciIntxUnmask(vdev: VfioPciCoreDevice): KGen<void> {
  if (intxOps) return yield* intxOps.unmask(vdev);
  if (vdev.pci23) pciIntx(vdev.pdev, true);
}

/** vfio_pci_rw: the region's read/write (count 0 was answered by the callers) */
function* vfioPciRw(vdev: VfioPciCoreDevice, buf: number, count: number, ppos: Pos, iswrite: boolean): KGen<number> {
  const index = Number(ppos.pos >> VFIO_PCI_OFFSET_SHIFT);
  if (index >= VFIO_PCI_NUM_REGIONS + vdev.numRegions) return -EINVAL;
  // (pm_runtime_resume_and_get: runtime PM is not modelled, the function is awake)
  switch (index) {
    case U.VFIO_PCI_CONFIG_REGION_INDEX:
      return yield* vfioPciConfigRw(vdev, buf, count, ppos, iswrite);
    case U.VFIO_PCI_ROM_REGION_INDEX:
      if (iswrite) return -EINVAL;
      return yield* vfioPciBarRw(vdev, buf, count, ppos, false);
    case U.VFIO_PCI_VGA_REGION_INDEX:
      return yield* vfioPciVgaRw(vdev, buf, count, ppos, iswrite);
    default:
      if (index < 6) return yield* vfioPciBarRw(vdev, buf, count, ppos, iswrite);
      return -EINVAL; // no device-specific regions exist in this model
  }
}

/** vfio_pci_core_read */
export function* vfioPciCoreRead(vdev: VfioPciCoreDevice, buf: number, count: number, ppos: Pos): KGen<number> {
  if (!count) return 0;
  return yield* vfioPciRw(vdev, buf, count, ppos, false);
}

/** vfio_pci_core_write */
export function* vfioPciCoreWrite(vdev: VfioPciCoreDevice, buf: number, count: number, ppos: Pos): KGen<number> {
  if (!count) return 0;
  return yield* vfioPciRw(vdev, buf, count, ppos, true);
}

const PAGE_SHIFT = 12;

/**
 * vfio_pci_core_mmap: BARs only, MAP_SHARED, within the BAR rounded up to a page, mapped at open.
 * The mapping shows the function's BAR memory (allocDeviceMemory, shared with real processes
 * through the bridge); in process every access is trapped: it faults (SIGBUS) while memory is
 * disabled, the function is in D3 or the low-power feature is engaged (vfio_pci_mmap_page_fault /
 * vfio_pci_vmf_insert_pfn), and otherwise reaches the function as a load or store would.
 */
export function* vfioPciCoreMmap(vdev: VfioPciCoreDevice, vma: VmArea): KGen<number> {
  const pdev = vdev.pdev;
  const index = Math.floor(vma.pgoff / 2 ** (Number(VFIO_PCI_OFFSET_SHIFT) - PAGE_SHIFT));
  if (index >= VFIO_PCI_NUM_REGIONS + vdev.numRegions) return -EINVAL;
  if (vma.length < 0) return -EINVAL;
  if (!vma.shared) return -EINVAL;
  if (index >= VFIO_PCI_NUM_REGIONS) return -EINVAL; // no device-specific region has an mmap
  if (index >= U.VFIO_PCI_ROM_REGION_INDEX) return -EINVAL;
  if (!vdev.barMmapSupported[index]) return -EINVAL;
  const r = pdev.resources[index]!;
  const physLen = Math.ceil(Number(r.size) / PAGE_SIZE) * PAGE_SIZE;
  const pgoff = vma.pgoff % 2 ** (Number(VFIO_PCI_OFFSET_SHIFT) - PAGE_SHIFT);
  const reqStart = pgoff * PAGE_SIZE;
  if (reqStart + vma.length > physLen) return -EINVAL;
  // the BAR resource must be reserved for use
  const io = vdev.barmap[index]!;
  if (io < 0) return io;
  const mem = pdev.hw?.mmapMemory(index) ?? null;
  if (mem) vma.backing = mem.subarray(reqStart, reqStart + vma.length);
  vma.mmio = {
    access: (off: number, data: Uint8Array, write: boolean) => vfioPciMmapAccess(vdev, index, reqStart + off, data, write),
  };
  if (pdev.hw?.mmapTrapped(index) !== false) vma.trapped = true;
  return 0;
}

/**
 * A user load or store through a BAR mapping: a fault while memory is not enabled (SIGBUS), else
 * naturally aligned accesses of up to 8 bytes to the function (a CPU access is one instruction).
 */
function vfioPciMmapAccess(vdev: VfioPciCoreDevice, bar: number, off: number, data: Uint8Array, write: boolean): boolean {
  if (vdev.pmRuntimeEngaged || !vfioPciMemoryEnabled(vdev)) return false;
  let at = 0;
  while (at < data.length) {
    const o = off + at;
    const left = data.length - at;
    const size: IoWidth = left >= 8 && !(o % 8) ? 8 : left >= 4 && !(o % 4) ? 4 : left >= 2 && !(o % 2) ? 2 : 1;
    if (write) pciHwIoWrite(vdev.pdev, bar, o, size, getLe(data, at, size));
    else putLe(data, at, size, pciHwIoRead(vdev.pdev, bar, o, size));
    at += size;
  }
  return true;
}

/** vfio_pci_core_ioctl_feature: the features vfio-pci implements */
export function* vfioPciCoreIoctlFeature(vdev: VfioPciCoreDevice, flags: number, arg: number, argsz: number): KGen<number> {
  switch (flags & U.VFIO_DEVICE_FEATURE_MASK) {
    case U.VFIO_DEVICE_FEATURE_PCI_VF_TOKEN:
      return yield* vfioPciCoreFeatureToken(vdev, flags, arg, argsz);
    // LOW_POWER_ENTRY / _WITH_WAKEUP / EXIT (runtime PM) and DMA_BUF are not modelled
    default:
      return -ENOTTY;
  }
}

/** vfio_pci_core_feature_token: SET only (a GET could leak the previous user's token) */
function* vfioPciCoreFeatureToken(vdev: VfioPciCoreDevice, flags: number, arg: number, argsz: number): KGen<number> {
  if (!vdev.vfToken) return -ENOTTY;
  const ret = vfioCheckFeature(flags, argsz, U.VFIO_DEVICE_FEATURE_SET, 16);
  if (ret !== 1) return ret;
  const b = copyFromUser(currentMm(), arg, 16);
  if (typeof b === 'number') return -EFAULT;
  yield* mutexLock(vdev.vfToken.lock);
  vdev.vfToken.uuid = b.slice();
  yield* mutexUnlock(vdev.vfToken.lock);
  return 0;
}

// ---- ioctls ------------------------------------------------------------------------------------

/** VFIO_DEVICE_GET_INFO (vfio_pci_ioctl_get_info) */
export function* vfioPciIoctlGetInfo(vdev: VfioPciCoreDevice, arg: number): KGen<number> {
  const S = U.vfio_device_info;
  let minsz = offsetofend(S, 'num_irqs');
  const mm = currentMm();
  const b = copyFromUser(mm, arg, minsz);
  if (typeof b === 'number') return -EFAULT;
  const info = new StructBuf(S, new Uint8Array(S.size));
  info.buf.set(b);
  const argsz = info.get('argsz');
  if (argsz < minsz) return -EINVAL;
  minsz = Math.min(argsz, S.size);
  let flags = U.VFIO_DEVICE_FLAGS_PCI;
  if (vdev.resetWorks) flags |= U.VFIO_DEVICE_FLAGS_RESET;
  info.set('flags', flags);
  info.set('num_regions', VFIO_PCI_NUM_REGIONS + vdev.numRegions);
  info.set('num_irqs', VFIO_PCI_NUM_IRQS);
  info.set('cap_offset', 0);
  const caps = new VfioInfoCap();
  vfioPciInfoAtomicCap(vdev, caps);
  if (caps.size) {
    info.set('flags', flags | U.VFIO_DEVICE_FLAGS_CAPS);
    if (argsz < S.size + caps.size) info.set('argsz', S.size + caps.size);
    else {
      caps.shift(S.size);
      if (copyToUser(mm, arg + S.size, caps.buf) < 0) return -EFAULT;
      info.set('cap_offset', S.size);
    }
  }
  return copyToUser(mm, arg, info.head(minsz)) < 0 ? -EFAULT : 0;
}

/** vfio_pci_info_atomic_cap: only when the function advertises AtomicOp completion. */
function vfioPciInfoAtomicCap(vdev: VfioPciCoreDevice, caps: VfioInfoCap): void {
  const comp = vdev.pdev.atomicComp;
  if (!comp) return;
  const off = caps.add(16, U.VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP, 1);
  new DataView(caps.buf.buffer).setUint32(off + 8, comp, true);
}

/** vfio_pci_probe_mmaps: which BARs may be mmapped (done at open). */
export function vfioPciProbeMmaps(vdev: VfioPciCoreDevice): void {
  for (let i = 0; i < 6; i++) {
    const r = vdev.pdev.resources[i];
    vdev.barMmapSupported[i] = !!r && r.type === 'mem' && r.size > 0n && (r.size >= 4096n || (r.start & 0xfffn) === 0n);
  }
}

/** The get_region_info_caps op (vfio_pci_ioctl_get_region_info). */
export function* vfioPciIoctlGetRegionInfo(
  vdev: VfioPciCoreDevice,
  info: StructBuf<string>,
  caps: VfioInfoCap,
): KGen<number> {
  const pdev = vdev.pdev;
  const index = info.get('index');
  const offsetOf = (i: number) => BigInt(i) << 40n;
  const R = U.VFIO_REGION_INFO_FLAG_READ;
  const W = U.VFIO_REGION_INFO_FLAG_WRITE;
  switch (index) {
    case U.VFIO_PCI_CONFIG_REGION_INDEX:
      info.set('offset', offsetOf(index)).set('size', pdev.cfgSize).set('flags', R | W);
      return 0;
    case U.VFIO_PCI_BAR0_REGION_INDEX:
    case U.VFIO_PCI_BAR1_REGION_INDEX:
    case U.VFIO_PCI_BAR2_REGION_INDEX:
    case U.VFIO_PCI_BAR3_REGION_INDEX:
    case U.VFIO_PCI_BAR4_REGION_INDEX:
    case U.VFIO_PCI_BAR5_REGION_INDEX: {
      const r = pdev.resources[index];
      const size = r ? r.size : 0n;
      info.set('offset', offsetOf(index)).set('size', size);
      if (!size) {
        info.set('flags', 0);
        return 0;
      }
      let flags = R | W;
      if (vdev.barMmapSupported[index]) {
        flags |= U.VFIO_REGION_INFO_FLAG_MMAP;
        if (index === vdev.msixBar) caps.add(8, U.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
      }
      info.set('flags', flags);
      return 0;
    }
    case U.VFIO_PCI_ROM_REGION_INDEX: {
      const r = pdev.resources[6];
      info.set('offset', offsetOf(index)).set('flags', 0).set('size', 0);
      if (r && r.start) {
        // check the ROM content is valid; pci_map_rom needs memory decode
        const cmd = yield* vfioPciMemoryLockAndEnable(vdev);
        if (pciMapRom(pdev) !== null) {
          // report the BAR size, not the ROM size
          info.set('flags', R).set('size', r.size);
          pciUnmapRom(pdev);
        }
        yield* vfioPciMemoryUnlockAndRestore(vdev, cmd);
      }
      return 0;
    }
    case U.VFIO_PCI_VGA_REGION_INDEX:
      if (!vdev.hasVga) return -EINVAL;
      info.set('offset', offsetOf(index)).set('size', 0xc0000).set('flags', R | W);
      return 0;
    default:
      if (index >= VFIO_PCI_NUM_REGIONS + vdev.numRegions) return -EINVAL;
      // no device-specific regions exist in this model (numRegions is 0)
      return -EINVAL;
  }
}

/** Other vfio-pci ioctls are added by the device model (regions, IRQs, resets). */
export type CoreIoctl = (vdev: VfioPciCoreDevice, cmd: number, arg: bigint) => KGen<number>;
const extraIoctls = new Map<number, CoreIoctl>();
export function setVfioPciIoctl(cmd: number, h: CoreIoctl): void {
  extraIoctls.set(cmd, h);
}

/** vfio_pci_core_ioctl */
export function* vfioPciCoreIoctl(vdev: VfioPciCoreDevice, cmd: number, arg: bigint): KGen<number> {
  switch (cmd) {
    case U.VFIO_DEVICE_GET_INFO:
      return yield* vfioPciIoctlGetInfo(vdev, Number(arg));
    case U.VFIO_DEVICE_GET_IRQ_INFO:
      return yield* vfioPciIoctlGetIrqInfo(vdev, Number(arg));
    case U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO:
      return yield* vfioPciIoctlGetPciHotResetInfo(vdev, Number(arg));
    case U.VFIO_DEVICE_PCI_HOT_RESET:
      return yield* vfioPciIoctlPciHotReset(vdev, Number(arg));
    case U.VFIO_DEVICE_RESET:
      return yield* vfioPciIoctlReset(vdev);
    case U.VFIO_DEVICE_SET_IRQS:
      return yield* vfioPciIoctlSetIrqs(vdev, Number(arg));
  }
  const h = extraIoctls.get(cmd);
  if (h) return yield* h(vdev, cmd, arg);
  return -ENOTTY;
}
