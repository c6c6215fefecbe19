// drivers/pci/iov.c: SR-IOV. A PF's capability is read once when the function is added
// (sriov_init: TotalVFs, the VF BAR sizes, offset/stride, VF Device ID); the PF then carries the
// sriov_* sysfs attributes, and writing sriov_numvfs asks the PF's driver (->sriov_configure) to
// enable or disable its VFs. Enabling programs NumVFs and VF Enable/MSE and adds every VF as a PCI
// function of its own (vendor from the PF, device from VF Device ID, BARs carved from the PF's VF
// BARs, each VF in an IOMMU group of its own), links virtfnN -> VF and physfn -> PF, and probes
// it; disabling removes the VFs one by one (which waits for their users), then clears VF Enable.
// The kernel's settle delays (msleep(100) after VF Enable, ssleep(1) after clearing it) are not
// modelled: VFs appear and disappear within the sysfs write. ARI forwarding decides only the ARI
// Capable Hierarchy bit (routing IDs do not depend on it here); VFs always sit on their PF's bus
// (the topology checks it).

import { EINVAL, EIO, ENODEV, ENOENT, ENOMEM, ENOSYS, EOPNOTSUPP, ERANGE, EBUSY } from '../../kernel/errno.js';
import type { Kernel } from '../../kernel/kernel.js';
import { kstrtobool, kstrtoint, kstrtou16 } from '../../kernel/kstrtox.js';
import type { KGen } from '../../kernel/sched.js';
import { mutexLock, mutexUnlock } from '../../kernel/sync.js';
import { iommuGroupAllocId, iommuGroupCreate } from '../../iommu/iommu.js';
import type { PciCap, PciExtCap, PciSriovCap } from './caps.js';
import {
  PCI_SRIOV_CAP, PCI_SRIOV_CAP_VFM, PCI_SRIOV_CTRL, PCI_SRIOV_CTRL_ARI, PCI_SRIOV_CTRL_MSE, PCI_SRIOV_CTRL_VFE,
  PCI_SRIOV_FUNC_LINK, PCI_SRIOV_INITIAL_VF, PCI_SRIOV_NUM_BARS, PCI_SRIOV_NUM_VF, PCI_SRIOV_SUP_PGSIZE,
  PCI_SRIOV_SYS_PGSIZE, PCI_SRIOV_TOTAL_VF, PCI_SRIOV_VF_DID, PCI_SRIOV_VF_OFFSET, PCI_SRIOV_VF_STRIDE, PCI_SRIOV_BAR,
  PCI_EXP_DEVCAP2, PCI_EXP_DEVCAP2_ARI, PCI_EXP_DEVCTL2, PCI_EXP_DEVCTL2_ARI, PCI_EXT_CAP_ID_ARI,
  pciFindExtCapability, pciReadConfigByte, pciReadConfigDword, pciReadConfigWord, pciRestoreStateHooks,
  pciWriteConfigDword, pciWriteConfigWord,
} from './config_space.js';
import { PCI_EXT_CAP_ID_SRIOV } from './caps.js';
import {
  PciDev, PciResource, ResetMethod, deviceAttach, hex, pciDeviceAdd, pciGetDevice, pciSetIommuGroup,
  pciStopAndRemoveBusDevice,
} from './pci.js';

const PAGE_SIZE = 0x1000n;

/** struct pci_sriov */
export interface PciSriov {
  /** the capability's offset */
  pos: number;
  /** number of VF BARs */
  nres: number;
  cap: number;
  /** the SR-IOV Control value the kernel programs (VFE/MSE while enabled) */
  ctrl: number;
  totalVfs: number;
  initialVfs: number;
  numVfs: number;
  offset: number;
  stride: number;
  vfDevice: number;
  pgsz: number;
  /** Function Dependency Link (a devfn) */
  link: number;
  driverMaxVfs: number;
  driversAutoprobe: boolean;
  maxVfBuses: number;
  /** one VF's size of each VF BAR (0: unimplemented) */
  barsz: bigint[];
  /** the PF's IOV resources (PCI_IOV_RESOURCES: the VF BARs for all TotalVFs; null: none) */
  res: Array<PciResource | null>;
  /** the topology's description of the capability and of what the VFs present */
  spec: PciSriovCap;
}

// ---- helpers (pci_iov_virtfn_bus / _devfn, pci_iov_vf_id, pci_num_vf, pci_sriov_get_totalvfs) ----

export function pciIovVirtfnBus(dev: PciDev, vfId: number): number {
  if (!dev.isPhysfn) return -EINVAL;
  const s = dev.sriov!;
  return dev.bus.number + ((dev.devfn + s.offset + s.stride * vfId) >> 8);
}

export function pciIovVirtfnDevfn(dev: PciDev, vfId: number): number {
  if (!dev.isPhysfn) return -EINVAL;
  const s = dev.sriov!;
  return (dev.devfn + s.offset + s.stride * vfId) & 0xff;
}

/** pci_iov_vf_id: the VF's number under its PF */
export function pciIovVfId(vf: PciDev): number {
  if (!vf.isVirtfn || !vf.physfn) return -EINVAL;
  const pf = vf.physfn;
  const id = (d: PciDev) => (d.bus.number << 8) | d.devfn;
  return Math.trunc((id(vf) - (id(pf) + pf.sriov!.offset)) / pf.sriov!.stride);
}

/** pci_num_vf: the VFs enabled on a PF (0 otherwise) */
export function pciNumVf(dev: PciDev): number {
  return dev.isPhysfn ? dev.sriov!.numVfs : 0;
}

/** pci_sriov_get_totalvfs */
export function pciSriovGetTotalvfs(dev: PciDev): number {
  return dev.isPhysfn ? dev.sriov!.driverMaxVfs : 0;
}

/** pci_physfn */
export function pciPhysfn(dev: PciDev): PciDev {
  return dev.isVirtfn && dev.physfn ? dev.physfn : dev;
}

/** pci_iov_set_numvfs: NumVFs, then First VF Offset and VF Stride read back (they may depend on it) */
function pciIovSetNumvfs(dev: PciDev, nr: number): void {
  const s = dev.sriov!;
  pciWriteConfigWord(dev, s.pos + PCI_SRIOV_NUM_VF, nr);
  s.offset = pciReadConfigWord(dev, s.pos + PCI_SRIOV_VF_OFFSET);
  s.stride = pciReadConfigWord(dev, s.pos + PCI_SRIOV_VF_STRIDE);
}

/** compute_max_vf_buses: -EIO for a zero offset, or a zero stride with more than one VF */
function computeMaxVfBuses(dev: PciDev): number {
  const s = dev.sriov!;
  let rc = 0;
  for (let nr = s.totalVfs; nr; nr--) {
    pciIovSetNumvfs(dev, nr);
    if (!s.offset || (nr > 1 && !s.stride)) {
      rc = -EIO;
      break;
    }
    const busnr = pciIovVirtfnBus(dev, nr - 1);
    if (busnr > s.maxVfBuses) s.maxVfBuses = busnr;
  }
  pciIovSetNumvfs(dev, 0);
  return rc;
}

// ---- ARI (drivers/pci/pci.c) -------------------------------------------------------------------

/** pci_ari_enabled(dev->bus): the bridge above forwards ARI */
function pciAriEnabled(dev: PciDev): boolean {
  return dev.bus.self?.ariEnabled ?? false;
}

/**
 * pci_configure_ari (pci_init_capabilities, before pci_iov_init): function 0 of a PCIe device
 * below a bridge that can forward ARI turns ARI forwarding on (or off) as it has (or lacks) an
 * ARI capability.
 */
export function pciConfigureAri(dev: PciDev): void {
  if (!dev.isPcie || dev.devfn) return;
  const bridge = dev.bus.self;
  if (!bridge || !bridge.config?.expAt) return;
  const exp = bridge.config.expAt;
  if (!(pciReadConfigDword(bridge, exp + PCI_EXP_DEVCAP2) & PCI_EXP_DEVCAP2_ARI)) return;
  const ctl = pciReadConfigWord(bridge, exp + PCI_EXP_DEVCTL2);
  if (pciFindExtCapability(dev, PCI_EXT_CAP_ID_ARI)) {
    pciWriteConfigWord(bridge, exp + PCI_EXP_DEVCTL2, ctl | PCI_EXP_DEVCTL2_ARI);
    bridge.ariEnabled = true;
  } else {
    pciWriteConfigWord(bridge, exp + PCI_EXP_DEVCTL2, ctl & ~PCI_EXP_DEVCTL2_ARI);
    bridge.ariEnabled = false;
  }
}

// ---- sriov_init (pci_iov_init), at enumeration -------------------------------------------------

/**
 * pci_iov_init for a PCIe function: a PF gets its struct pci_sriov and the sriov_* attributes;
 * a VF gets sriov_vf_msix_count. Called by pci_device_add before the device is in sysfs.
 */
export function pciIovInit(k: Kernel, dev: PciDev): number {
  if (dev.isVirtfn) {
    sriovVfAttrs(k, dev);
    return 0;
  }
  if (!dev.isPcie) return -ENODEV;
  const pos = pciFindExtCapability(dev, PCI_EXT_CAP_ID_SRIOV);
  const spec = dev.extCaps.find((c): c is PciSriovCap => c.id === 'sriov' && c.at === pos);
  if (!pos || !spec) return -ENODEV;
  const rc = sriovInit(dev, pos, spec);
  if (rc === 0 && dev.isPhysfn) sriovPfAttrs(k, dev);
  return rc;
}

/** sriov_init */
function sriovInit(dev: PciDev, pos: number, spec: PciSriovCap): number {
  let ctrl = pciReadConfigWord(dev, pos + PCI_SRIOV_CTRL);
  if (ctrl & PCI_SRIOV_CTRL_VFE) pciWriteConfigWord(dev, pos + PCI_SRIOV_CTRL, 0);
  ctrl = 0;
  // ARI Capable Hierarchy: set in the bus's first PF only, when the bus forwards ARI
  if (!dev.bus.devices.some((o) => o !== dev && o.isPhysfn) && pciAriEnabled(dev)) ctrl |= PCI_SRIOV_CTRL_ARI;
  pciWriteConfigWord(dev, pos + PCI_SRIOV_CTRL, ctrl);
  const total = pciReadConfigWord(dev, pos + PCI_SRIOV_TOTAL_VF);
  if (!total) return 0;
  // PAGE_SHIFT 12: every supported page size is usable; the smallest one is chosen
  let pgsz = pciReadConfigDword(dev, pos + PCI_SRIOV_SUP_PGSIZE);
  if (!pgsz) return -EIO;
  pgsz = (pgsz & -pgsz) >>> 0;
  pciWriteConfigDword(dev, pos + PCI_SRIOV_SYS_PGSIZE, pgsz);
  // the VF BARs (__pci_size_stdbars / __pci_read_base on the capability's BAR registers)
  const barsz: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n];
  const res: Array<PciResource | null> = [null, null, null, null, null, null];
  let nres = 0;
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const b = spec.vfBars[i];
    if (!b) continue;
    if (b.size & (PAGE_SIZE - 1n)) return -EIO;
    barsz[i] = b.size;
    // start -1: IORESOURCE_UNSET (the host never assigned the VF BAR an address)
    res[i] = { start: b.addr ?? -1n, size: b.size * BigInt(total), type: 'mem', mem64: b.mem64, prefetch: b.prefetch };
    nres++;
    if (b.mem64) i++;
  }
  let link = pciReadConfigByte(dev, pos + PCI_SRIOV_FUNC_LINK);
  if (dev.pcieCap?.type === 'rc-endpoint') link = ((dev.devfn >> 3) << 3) | (link & 7);
  dev.sriov = {
    pos,
    nres,
    cap: pciReadConfigDword(dev, pos + PCI_SRIOV_CAP),
    ctrl,
    totalVfs: total,
    initialVfs: 0,
    numVfs: 0,
    offset: 0,
    stride: 0,
    vfDevice: pciReadConfigWord(dev, pos + PCI_SRIOV_VF_DID),
    pgsz,
    link,
    driverMaxVfs: total,
    driversAutoprobe: true,
    maxVfBuses: 0,
    barsz,
    res,
    spec,
  };
  dev.isPhysfn = true;
  const rc = computeMaxVfBuses(dev);
  if (rc) {
    dev.sriov = null;
    dev.isPhysfn = false;
  }
  return rc;
}

// ---- sysfs (sriov_pf_dev_attrs, sriov_vf_dev_attrs) ----------------------------------------------

function sriovPfAttrs(k: Kernel, dev: PciDev): void {
  const a = dev.kdev.attrs;
  const s = () => dev.sriov!;
  a.set('sriov_totalvfs', { ops: { show: () => `${pciSriovGetTotalvfs(dev)}\n` }, mode: 0o444 });
  a.set('sriov_numvfs', {
    ops: {
      // sriov_numvfs_show takes the device lock: not modelled for a read (it would only wait)
      show: () => `${s().numVfs}\n`,
      store: (buf: string) => sriovNumvfsStore(k, dev, buf),
    },
    mode: 0o644,
  });
  a.set('sriov_offset', { ops: { show: () => `${s().offset}\n` }, mode: 0o444 });
  a.set('sriov_stride', { ops: { show: () => `${s().stride}\n` }, mode: 0o444 });
  a.set('sriov_vf_device', { ops: { show: () => `${s().vfDevice.toString(16)}\n` }, mode: 0o444 });
  a.set('sriov_drivers_autoprobe', {
    ops: {
      show: () => `${s().driversAutoprobe ? 1 : 0}\n`,
      *store(buf: string): KGen<number> {
        const [r, v] = kstrtobool(buf);
        if (r < 0) return -EINVAL;
        s().driversAutoprobe = v;
        return buf.length;
      },
    },
    mode: 0o644,
  });
  // no driver here implements ->sriov_get_vf_total_msix
  a.set('sriov_vf_total_msix', { ops: { show: () => '0\n' }, mode: 0o444 });
}

function sriovVfAttrs(k: Kernel, vf: PciDev): void {
  vf.kdev.attrs.set('sriov_vf_msix_count', {
    ops: {
      /** sriov_vf_msix_count_store: no driver here implements ->sriov_set_msix_vec_count */
      *store(buf: string): KGen<number> {
        const [r, val] = kstrtoint(buf, 0);
        if (r < 0 || val < 0) return -EINVAL;
        const pf = pciPhysfn(vf);
        yield* mutexLock(pf.deviceLock);
        const ret = -EOPNOTSUPP;
        yield* mutexUnlock(pf.deviceLock);
        void k;
        return ret;
      },
    },
    mode: 0o200,
  });
}

/**
 * sriov_numvfs_store: parse (EINVAL), at most sriov_totalvfs (ERANGE), then under the device
 * lock: nothing to do for the current count, ENOENT without a driver or without
 * ->sriov_configure, 0 disables, and a non-zero count while VFs are enabled is EBUSY.
 */
export function* sriovNumvfsStore(k: Kernel, dev: PciDev, buf: string): KGen<number> {
  const [r, numVfs] = kstrtou16(buf, 0);
  if (r < 0) return -EINVAL;
  if (numVfs > pciSriovGetTotalvfs(dev)) return -ERANGE;
  yield* mutexLock(dev.deviceLock);
  let ret = 0;
  out: {
    const s = dev.sriov!;
    if (numVfs === s.numVfs) break out;
    const drv = dev.driver;
    if (!drv) {
      k.printk(`${dev.name}: no driver bound to device; cannot configure SR-IOV`);
      ret = -ENOENT;
      break out;
    }
    if (!drv.sriovConfigure) {
      k.printk(`${dev.name}: driver does not support SR-IOV configuration via sysfs`);
      ret = -ENOENT;
      break out;
    }
    if (numVfs === 0) {
      ret = yield* drv.sriovConfigure(dev, 0);
      break out;
    }
    if (s.numVfs) {
      k.printk(`${dev.name}: ${s.numVfs} VFs already enabled. Disable before enabling ${numVfs} VFs`);
      ret = -EBUSY;
      break out;
    }
    ret = yield* drv.sriovConfigure(dev, numVfs);
    if (ret < 0) break out;
    if (ret !== numVfs) k.printk(`${dev.name}: ${numVfs} VFs requested; only ${ret} enabled`);
  }
  yield* mutexUnlock(dev.deviceLock);
  return ret < 0 ? ret : buf.length;
}

// ---- enable / disable ------------------------------------------------------------------------

/** pci_enable_sriov: -ENOSYS on a function that is not a PF */
export function* pciEnableSriov(k: Kernel, dev: PciDev, nrVirtfn: number): KGen<number> {
  if (!dev.isPhysfn) return -ENOSYS;
  return yield* sriovEnable(k, dev, nrVirtfn);
}

/** pci_disable_sriov */
export function* pciDisableSriov(k: Kernel, dev: PciDev): KGen<void> {
  if (!dev.isPhysfn) return;
  yield* sriovDisable(k, dev);
}

function busnEnd(dev: PciDev): number {
  // a root bus spans 00-ff; a bus behind a bridge ends at the bridge's subordinate number (the
  // topology gives each bridge one bus)
  return dev.bus.isRoot ? 0xff : dev.bus.number;
}

function writeCtrl(dev: PciDev): void {
  const s = dev.sriov!;
  pciWriteConfigWord(dev, s.pos + PCI_SRIOV_CTRL, s.ctrl);
}

/** sriov_enable */
function* sriovEnable(k: Kernel, dev: PciDev, nrVirtfn: number): KGen<number> {
  const s = dev.sriov!;
  if (!nrVirtfn) return 0;
  if (s.numVfs) return -EINVAL;
  let initial = pciReadConfigWord(dev, s.pos + PCI_SRIOV_INITIAL_VF);
  const vfm = (s.cap & PCI_SRIOV_CAP_VFM) !== 0;
  if (initial > s.totalVfs || (!vfm && initial !== s.totalVfs)) return -EIO;
  if (nrVirtfn < 0 || nrVirtfn > s.totalVfs || (!vfm && nrVirtfn > initial)) return -EINVAL;
  let nres = 0;
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const r = s.res[i];
    if (!r) continue;
    if (s.barsz[i]! * BigInt(nrVirtfn) > r.size) continue;
    if (r.start >= 0n) nres++; // res->parent: the resource was assigned
  }
  if (nres !== s.nres) {
    k.printk(`${dev.name}: not enough MMIO resources for SR-IOV`);
    return -ENOMEM;
  }
  const bus = pciIovVirtfnBus(dev, nrVirtfn - 1);
  if (bus > busnEnd(dev)) {
    k.printk(`${dev.name}: can't enable ${nrVirtfn} VFs (bus ${hex(bus, 2)} out of range of [bus ${hex(dev.bus.number, 2)}-${hex(busnEnd(dev), 2)}])`);
    return -ENOMEM;
  }
  let depLink = false;
  if (s.link !== dev.devfn) {
    const other = dev.bus.devices.find((d) => d.devfn === s.link && !d.removed);
    if (!other) return -ENODEV;
    if (!other.isPhysfn) return -ENOSYS;
    k.vfs.addRelLink(`${dev.sysfsPath}/dep_link`, other.sysfsPath);
    depLink = true;
  }
  s.initialVfs = initial;
  if (nrVirtfn < initial) initial = nrVirtfn;
  pciIovSetNumvfs(dev, nrVirtfn);
  s.ctrl |= PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE;
  writeCtrl(dev);
  k.event('sriov_enable', { device: dev.name, num_vfs: nrVirtfn });
  const rc = yield* sriovAddVfs(k, dev, initial);
  if (rc) {
    // err_pcibios
    s.ctrl &= ~(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE);
    writeCtrl(dev);
    if (depLink) k.vfs.remove(`${dev.sysfsPath}/dep_link`);
    pciIovSetNumvfs(dev, 0);
    return rc;
  }
  s.numVfs = nrVirtfn;
  return 0;
}

/** sriov_add_vfs: all or none */
function* sriovAddVfs(k: Kernel, dev: PciDev, numVfs: number): KGen<number> {
  let i = 0;
  for (; i < numVfs; i++) {
    const rc = yield* pciIovAddVirtfn(k, dev, i);
    if (rc) {
      while (i--) yield* pciIovRemoveVirtfn(k, dev, i);
      return rc;
    }
  }
  return 0;
}

/** sriov_disable: every VF removed (each removal waits for the VF's driver), then VF Enable off */
function* sriovDisable(k: Kernel, dev: PciDev): KGen<void> {
  const s = dev.sriov!;
  if (!s.numVfs) return;
  // sriov_del_vfs
  for (let i = 0; i < s.numVfs; i++) yield* pciIovRemoveVirtfn(k, dev, i);
  s.ctrl &= ~(PCI_SRIOV_CTRL_VFE | PCI_SRIOV_CTRL_MSE);
  writeCtrl(dev);
  if (s.link !== dev.devfn) k.vfs.remove(`${dev.sysfsPath}/dep_link`);
  s.numVfs = 0;
  pciIovSetNumvfs(dev, 0);
  k.event('sriov_disable', { device: dev.name });
}

/** The reset methods pci_init_reset_methods finds on a VF (never bus: its PF shares the bus). */
function vfResetMethods(caps: PciCap[]): ResetMethod[] {
  const m: ResetMethod[] = [];
  const exp = caps.find((c) => c.id === 'pcie');
  if (exp?.id === 'pcie' && exp.flr) m.push('flr');
  const pm = caps.find((c) => c.id === 'pm');
  if (pm?.id === 'pm' && !pm.noSoftReset) m.push('pm');
  return m;
}

const cloneCaps = <T extends PciCap | PciExtCap>(l: T[]): T[] => l.map((c) => ({ ...c }));

/**
 * pci_iov_add_virtfn: the VF as a function of its own (pci_iov_scan_device + pci_setup_device),
 * its BARs carved from the PF's VF BARs, added to the bus (in an IOMMU group of its own: the
 * IOMMU driver's probe at BUS_NOTIFY_ADD_DEVICE), linked to the PF, then probed
 * (pci_bus_add_device; the PF's sriov_drivers_autoprobe gates VFs without a driver_override).
 */
function* pciIovAddVirtfn(k: Kernel, dev: PciDev, id: number): KGen<number> {
  const s = dev.sriov!;
  // virtfn_add_bus: the topology keeps every VF on its PF's bus
  if (pciIovVirtfnBus(dev, id) !== dev.bus.number) return -ENOMEM;
  const vf = s.spec.vf;
  const virtfn = new PciDev({
    bus: dev.bus,
    devfn: pciIovVirtfnDevfn(dev, id),
    vendor: dev.vendor,
    device: s.vfDevice,
    classCode: vf.classCode,
    subsystemVendor: vf.subsystemVendor,
    subsystemDevice: vf.subsystemDevice,
    revision: vf.revision,
    headerType: 'normal',
    resetMethods: vfResetMethods(vf.caps),
    isPcie: true,
    noBusReset: false,
  });
  virtfn.isVirtfn = true;
  virtfn.physfn = dev;
  virtfn.nickname = dev.nickname ? `${dev.nickname}-vf${id}` : null;
  virtfn.cfgSize = 4096;
  virtfn.caps = cloneCaps(vf.caps);
  virtfn.extCaps = cloneCaps(vf.extCaps);
  const msix = virtfn.caps.find((c) => c.id === 'msix');
  virtfn.msixBar = msix?.id === 'msix' ? msix.tableBar : null;
  // SR-IOV: the Interrupt Pin register of a VF is read-only zero (no INTx), unless the hardware
  // reports a bogus one (vfio-pci hides it)
  virtfn.interruptPin = vf.interruptPin ?? 0;
  virtfn.interruptLine = 0;
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const r = s.res[i];
    if (!r || r.start < 0n) continue;
    const size = s.barsz[i]!;
    virtfn.resources[i] = { start: r.start + size * BigInt(id), size, type: 'mem', mem64: r.mem64, prefetch: r.prefetch };
  }
  pciDeviceAdd(k, virtfn);
  pciSetIommuGroup(k, virtfn, iommuGroupCreate(k, iommuGroupAllocId(k)));
  // pci_iov_sysfs_link
  k.vfs.addRelLink(`${dev.sysfsPath}/virtfn${id}`, virtfn.sysfsPath);
  k.vfs.addRelLink(`${virtfn.sysfsPath}/physfn`, dev.sysfsPath);
  k.event('sriov_vf_added', { pf: dev.name, vf: virtfn.name, id, iommu_group: virtfn.iommuGroup?.id ?? null });
  // pci_bus_add_device -> device_initial_probe (the PF's sriov_drivers_autoprobe is checked at
  // probe time: a VF with a driver_override, as vfio-pci's capture gives it, probes regardless)
  yield* deviceAttach(k, virtfn);
  return 0;
}

/** pci_iov_remove_virtfn: unlink, then stop (driver released: may wait) and remove the VF */
function* pciIovRemoveVirtfn(k: Kernel, dev: PciDev, id: number): KGen<void> {
  const devfn = pciIovVirtfnDevfn(dev, id);
  const name = `${hex(dev.bus.domain, 4)}:${hex(pciIovVirtfnBus(dev, id), 2)}:${hex(devfn >> 3, 2)}.${devfn & 7}`;
  const virtfn = pciGetDevice(k, name);
  if (!virtfn) return;
  k.vfs.remove(`${dev.sysfsPath}/virtfn${id}`);
  if (!virtfn.removed) k.vfs.remove(`${virtfn.sysfsPath}/physfn`);
  yield* pciStopAndRemoveBusDevice(k, virtfn);
  k.event('sriov_vf_removed', { pf: dev.name, vf: name, id });
}

/** pci_iov_remove: after the PF's driver is detached */
export function pciIovRemove(k: Kernel, dev: PciDev): void {
  if (!dev.isPhysfn) return;
  const s = dev.sriov!;
  s.driverMaxVfs = s.totalVfs;
  if (s.numVfs) k.printk(`${dev.name}: driver left SR-IOV enabled after remove`);
}

/**
 * sriov_restore_state (pci_restore_state -> pci_restore_iov_state): after a reset cleared VF
 * Enable, the VF BARs, system page size, NumVFs and the control value are programmed again.
 */
function sriovRestoreState(dev: PciDev): void {
  if (!dev.isPhysfn || dev.removed) return;
  const s = dev.sriov!;
  let ctrl = pciReadConfigWord(dev, s.pos + PCI_SRIOV_CTRL);
  if (ctrl & PCI_SRIOV_CTRL_VFE) return;
  ctrl = (ctrl & ~PCI_SRIOV_CTRL_ARI) | (s.ctrl & PCI_SRIOV_CTRL_ARI);
  pciWriteConfigWord(dev, s.pos + PCI_SRIOV_CTRL, ctrl);
  // pci_update_resource -> pci_iov_update_resource for each VF BAR
  for (let i = 0; i < PCI_SRIOV_NUM_BARS; i++) {
    const r = s.res[i];
    if (!r || r.start < 0n) continue;
    const reg = s.pos + PCI_SRIOV_BAR + 4 * i;
    const flags = (r.mem64 ? 4 : 0) | (r.prefetch ? 8 : 0);
    pciWriteConfigDword(dev, reg, (Number(r.start & 0xfffffff0n) | flags) >>> 0);
    if (r.mem64) pciWriteConfigDword(dev, reg + 4, Number((r.start >> 32n) & 0xffffffffn));
  }
  pciWriteConfigDword(dev, s.pos + PCI_SRIOV_SYS_PGSIZE, s.pgsz);
  pciIovSetNumvfs(dev, s.numVfs);
  pciWriteConfigWord(dev, s.pos + PCI_SRIOV_CTRL, s.ctrl);
}
pciRestoreStateHooks.push(sriovRestoreState);
