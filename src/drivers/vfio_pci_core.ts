// drivers/vfio/pci/vfio_pci_core.c: the vfio-pci core device — registration with its device set
// (self / slot / bus), open_device and close_device (function reset, needs_reset, the device-set
// bus reset on the last close), the request callback, name matching with vf_token, and the ioctls.

import { EBUSY, EFAULT, EINVAL, ENOTTY, EACCES, EAGAIN } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { KGen } from '../kernel/sched.js';
import { Mutex, lockdepAssertHeld, mutexLock, mutexTrylock, mutexUnlock } from '../kernel/sync.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { StructBuf, offsetofend } from '../uapi/layout.js';
import * as U from '../uapi/vfio.js';
import {
  PciDev, pciProbeResetBus, pciProbeResetSlot, pciDevicesAffectedByReset, pciResetBus, pciTryLockAndResetFunction,
  pciTryResetFunction,
} from './pci/pci.js';
import { VfioDevice, VfioDeviceSet } from '../vfio/vfio.js';
import { VfioInfoCap, vfioAssignDeviceSet, vfioDeviceSetOpenCount, vfioRegisterGroupDev, vfioUnregisterGroupDev } from '../vfio/vfio_main.js';
import { EventfdCtx, eventfdSignal } from '../kernel/eventfd.js';

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
  constructor(readonly pdev: PciDev) {
    this.igate = new Mutex(`vfio_pci(${pdev.name})->igate`);
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
  if (pdev.bus.devices.some((d) => d.isVirtfn && d.physfn === pdev)) {
    vdev.vdev.kernel.printk(`${pdev.name}: Cannot bind to PF with SR-IOV enabled`);
    return -EBUSY;
  }
  let ret: number;
  if (pdev.bus.isRoot || pdev.isVirtfn) ret = yield* vfioAssignDeviceSet(vdev.vdev, vdev, pdev.name);
  else if (pciProbeResetSlot(pdev.slot) === 0) ret = yield* vfioAssignDeviceSet(vdev.vdev, pdev.slot, `slot ${pdev.bus.name}:${pdev.slot!.number.toString(16).padStart(2, '0')}`);
  else ret = yield* vfioAssignDeviceSet(vdev.vdev, pdev.bus, `bus ${pdev.bus.name}`);
  if (ret) return ret;
  vfioPciVfInit(vdev);
  return yield* vfioRegisterGroupDev(vdev.vdev);
}

/** vfio_pci_vf_init: a VF whose PF is a vfio-pci device uses the PF's token. */
function vfioPciVfInit(vdev: VfioPciCoreDevice): void {
  const pdev = vdev.pdev;
  if (pdev.isVirtfn) {
    const pf = pdev.physfn;
    const pfCore = pf && pf.drvdata instanceof VfioPciCoreDevice ? pf.drvdata : null;
    vdev.sriovPfCoreDev = pfCore;
    return;
  }
  if (pdev.sriov) vdev.vfToken = { lock: new Mutex(`vf_token(${pdev.name})`), uuid: new Uint8Array(16), users: 0 };
}

/** vfio_pci_core_unregister_device */
export function* vfioPciCoreUnregisterDevice(vdev: VfioPciCoreDevice): KGen<void> {
  yield* vfioUnregisterGroupDev(vdev.vdev);
}

/** vfio_pci_core_enable: clear bus master, try a function reset (EAGAIN if the lock is contended). */
export function* vfioPciCoreEnable(vdev: VfioPciCoreDevice): KGen<number> {
  const pdev = vdev.pdev;
  const k = vdev.vdev.kernel;
  const ret = yield* pciTryResetFunction(k, pdev);
  if (ret === -EAGAIN) return ret;
  vdev.resetWorks = ret === 0;
  vdev.enabled = true;
  vdev.hasVga = pdev.isVga;
  return 0;
}

/** vfio_pci_core_finish_enable: a VF of a vfio-pci PF counts as a token user. */
export function* vfioPciCoreFinishEnable(vdev: VfioPciCoreDevice): KGen<void> {
  vfioPciProbeMmaps(vdev);
  const pf = vdev.sriovPfCoreDev;
  if (pf?.vfToken) {
    yield* mutexLock(pf.vfToken.lock);
    pf.vfToken.users++;
    yield* mutexUnlock(pf.vfToken.lock);
  }
}

/** vfio_pci_core_disable: device disabled, needs_reset, function reset if the locks are free, set reset. */
export function* vfioPciCoreDisable(vdev: VfioPciCoreDevice): KGen<void> {
  const pdev = vdev.pdev;
  const k = vdev.vdev.kernel;
  lockdepAssertHeld(vdev.vdev.devSet!.lock);
  vdev.enabled = false;
  vdev.needsReset = true;
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
        if (index === pdev.msixBar) caps.add(8, U.VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 1);
      }
      info.set('flags', flags);
      return 0;
    }
    case U.VFIO_PCI_ROM_REGION_INDEX: {
      const r = pdev.resources[6];
      info.set('offset', offsetOf(index)).set('flags', 0).set('size', 0);
      if (r && r.start && r.size) info.set('flags', R).set('size', r.size);
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
  if (cmd === U.VFIO_DEVICE_GET_INFO) return yield* vfioPciIoctlGetInfo(vdev, Number(arg));
  const h = extraIoctls.get(cmd);
  if (h) return yield* h(vdev, cmd, arg);
  return -ENOTTY;
}
