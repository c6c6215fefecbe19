// The PCI core as far as VFIO depends on it: functions, buses, slots, the driver core's
// bind/unbind with driver_override (drivers/base/dd.c, drivers/pci/pci-driver.c, pci-sysfs.c),
// and the reset methods vfio-pci probes and uses (drivers/pci/pci.c).

import { EBUSY, EINVAL, EIO, ENODEV, ENOTTY, EAGAIN } from '../../kernel/errno.js';
import type { PciCap, PciExpCap, PciExtCap, PciMsiCap, PciMsixCap, PciPmCap } from './caps.js';
import {
  PCI_BRIDGE_CONTROL, PCI_BRIDGE_CTL_BUS_RESET, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE, PCI_COMMAND_IO,
  PCI_COMMAND_MASTER, PCI_COMMAND_MEMORY, PCI_EXP_DEVCTL, PCI_EXP_DEVCTL_BCR_FLR, PCI_HEADER_TYPE, PCI_INTERRUPT_PIN,
  PCI_PM_CTRL, PCI_PM_CTRL_NO_SOFT_RESET, PCI_PM_PMC, PciConfigSideEffect, PciConfigSpace,
  pciBuildConfigSpace, pciWriteConfig,
  pciReadConfig, pciReadConfigWord, pciRestoreState, pciSaveState, pciWriteConfigWord,
} from './config_space.js';
import { KDevice, deviceAdd, deviceDel } from '../../kernel/device.js';
import { capable } from '../../kernel/current.js';
import type { PciHw } from './hw/hw.js';
import { pciHwCreate } from './hw/models.js';
import { pciDevIrq } from './irq.js';
import { pciIrqConnect } from './msi.js';
import { PciSriov, pciConfigureAri, pciIovInit, pciIovRemove } from './iov.js';
import { Kernel } from '../../kernel/kernel.js';
import { KGen, KObject } from '../../kernel/sched.js';
import { Mutex, mutexLock, mutexTrylock, mutexUnlock } from '../../kernel/sync.js';
import {
  IommuGroup, iommuDeviceUnuseDefaultDomain, iommuDeviceUseDefaultDomain, iommuGroupAddDevice,
  iommuGroupRemoveDevice,
} from '../../iommu/iommu.js';

export type ResetMethod = 'device_specific' | 'acpi' | 'flr' | 'af_flr' | 'pm' | 'bus' | 'cxl_bus';

/** pci_power_t */
export type PciPowerState = 0 | 1 | 2 | 3 | 4;
export const PCI_D0 = 0;
export const PCI_D1 = 1;
export const PCI_D2 = 2;
export const PCI_D3hot = 3;
export const PCI_D3cold = 4;

export interface PciDriver {
  readonly name: string;
  /** drivers that manage DMA themselves (vfio-pci, pci-stub, pcieport) do not use the DMA API */
  readonly driverManagedDma: boolean;
  /** match by IDs (drivers other than vfio-pci); vfio-pci matches only through driver_override */
  match(pdev: PciDev): boolean;
  probe(pdev: PciDev): KGen<number>;
  remove(pdev: PciDev): KGen<void>;
  /** ->sriov_configure (sriov_numvfs): the VFs enabled, or -errno; absent: not supported */
  sriovConfigure?(pdev: PciDev, nrVirtfn: number): KGen<number>;
}

/** Bus notifier actions (BUS_NOTIFY_ADD_DEVICE, BUS_NOTIFY_BOUND_DRIVER) */
export type PciBusNotifierAction = 'add_device' | 'bound_driver';
export type PciBusNotifier = (action: PciBusNotifierAction, pdev: PciDev) => void;

export class PciBus extends KObject {
  readonly devices: PciDev[] = [];
  readonly slots = new Map<number, PciSlot>();
  constructor(
    readonly domain: number,
    readonly number: number,
    /** the bridge leading to this bus (null for a root bus) */
    readonly self: PciDev | null,
    readonly parent: PciBus | null,
  ) {
    super(`pci_bus ${hex(domain, 4)}:${hex(number, 2)}`);
  }
  get isRoot(): boolean {
    return this.parent === null;
  }
  get name(): string {
    return `${hex(this.domain, 4)}:${hex(this.number, 2)}`;
  }
}

/** struct pci_slot: a hotplug slot; `resetSupported` answers pci_probe_reset_slot. */
export class PciSlot extends KObject {
  constructor(
    readonly bus: PciBus,
    readonly number: number,
    readonly resetSupported: boolean,
  ) {
    super(`pci_slot ${bus.name}:${hex(number, 2)}`);
  }
}

export interface PciDevInit {
  bus: PciBus;
  devfn: number;
  vendor: number;
  device: number;
  classCode: number;
  subsystemVendor: number;
  subsystemDevice: number;
  revision: number;
  headerType: 'normal' | 'bridge';
  resetMethods: ResetMethod[];
  isPcie: boolean;
  /** PCI_DEV_FLAGS_NO_BUS_RESET (a bridge that must not be reset) */
  noBusReset: boolean;
}

/** struct pci_dev */
export class PciDev extends KObject {
  readonly bus: PciBus;
  readonly devfn: number;
  vendor: number;
  device: number;
  classCode: number;
  subsystemVendor: number;
  subsystemDevice: number;
  revision: number;
  readonly headerType: 'normal' | 'bridge';
  resetMethods: ResetMethod[];
  readonly isPcie: boolean;
  noBusReset: boolean;
  /** the bus behind a bridge */
  subordinate: PciBus | null = null;
  slot: PciSlot | null = null;
  driver: PciDriver | null = null;
  driverOverride: string | null = null;
  iommuGroup: IommuGroup | null = null;
  isVirtfn = false;
  physfn: PciDev | null = null;
  /** driver private data (dev_get_drvdata) */
  drvdata: unknown = null;
  /** device_lock(&pdev->dev) */
  readonly deviceLock: Mutex;
  readonly kdev: KDevice;
  removed = false;
  /** counts of resets done, for traces and tests */
  resets = { function: 0, bus: 0 };
  /** the topology's friendly name (e1000e, nvme, ...) */
  nickname: string | null = null;
  /** pdev->sriov and pdev->is_physfn: the SR-IOV state of a PF (drivers/pci/iov.ts) */
  sriov: PciSriov | null = null;
  isPhysfn = false;
  /** a bridge forwarding ARI (bridge->ari_enabled, set by pci_configure_ari) */
  ariEnabled = false;
  /** AtomicOp completer widths (VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP flags), 0 if none */
  atomicComp = 0;
  /** resources 0-5 (BARs) and 6 (expansion ROM); a null entry is unimplemented */
  resources: Array<PciResource | null> = [null, null, null, null, null, null, null];
  /** pci_dev->cfg_size: 256, or 4096 for PCIe / PCI-X 2 */
  cfgSize = 256;
  /** the BAR holding the MSI-X table (or null without MSI-X) */
  msixBar: number | null = null;
  /** the capability list (PCI_CAPABILITY_LIST chain order) and the PCIe extended list */
  caps: PciCap[] = [];
  extCaps: PciExtCap[] = [];
  /** PCI_INTERRUPT_PIN (0: the function has no INTx) */
  interruptPin = 1;
  /** PCI_INTERRUPT_LINE as firmware routed it (also the IRQ the sysfs `irq` file would show) */
  interruptLine = 0;
  /** pdev->current_state: PCI_D0 .. PCI_D3cold */
  currentState: PciPowerState = PCI_D0;
  /** pdev->enable_cnt and pdev->is_busmaster (pci_enable_device / pci_set_master) */
  enableCnt = 0;
  isBusmaster = false;
  /** the function's hardware: what its BARs, ROM and resets do (drivers/pci/hw) */
  hw: PciHw | null = null;
  /** the physical configuration space (built when the function is added to its bus) */
  config!: PciConfigSpace;
  /**
   * What the function's own logic does when it is reset (FLR, PM, bus): device models register
   * here to bring their registers back to power-on values. The config space resets itself.
   */
  readonly resetHooks: Array<(how: ResetMethod) => void> = [];
  /** pdev->pm_cap, ->msi_cap, ->msix_cap and the PCIe capability, as found in the list */
  get pmCap(): PciPmCap | null {
    return (this.caps.find((c) => c.id === 'pm') as PciPmCap | undefined) ?? null;
  }
  get msiCap(): PciMsiCap | null {
    return (this.caps.find((c) => c.id === 'msi') as PciMsiCap | undefined) ?? null;
  }
  get msixCap(): PciMsixCap | null {
    return (this.caps.find((c) => c.id === 'msix') as PciMsixCap | undefined) ?? null;
  }
  get pcieCap(): PciExpCap | null {
    return (this.caps.find((c) => c.id === 'pcie') as PciExpCap | undefined) ?? null;
  }
  /** class code says VGA controller */
  get isVga(): boolean {
    return this.classCode >> 8 === 0x0300;
  }

  constructor(init: PciDevInit) {
    const name = `${init.bus.name}:${hex(init.devfn >> 3, 2)}.${init.devfn & 7}`;
    super(`pci ${name}`);
    this.bus = init.bus;
    this.devfn = init.devfn;
    this.vendor = init.vendor;
    this.device = init.device;
    this.classCode = init.classCode;
    this.subsystemVendor = init.subsystemVendor;
    this.subsystemDevice = init.subsystemDevice;
    this.revision = init.revision;
    this.headerType = init.headerType;
    this.resetMethods = init.resetMethods;
    this.isPcie = init.isPcie;
    this.noBusReset = init.noBusReset;
    this.deviceLock = new Mutex(`device_lock(${name})`);
    this.kdev = new KDevice(name);
  }
  /** pci_name(): "0000:01:00.0" */
  get name(): string {
    return this.kdev.name;
  }
  get sysfsPath(): string {
    return this.kdev.sysfsPath!;
  }
}

/** struct resource of a BAR or ROM */
export interface PciResource {
  start: bigint;
  size: bigint;
  type: 'mem' | 'io';
  mem64: boolean;
  prefetch: boolean;
}

export function hex(n: number, w: number): string {
  return n.toString(16).padStart(w, '0');
}

interface PciState {
  buses: Map<string, PciBus>;
  devices: Map<string, PciDev>;
  drivers: Map<string, PciDriver>;
  /** bus_register_notifier(&pci_bus_type, ...) */
  notifiers: PciBusNotifier[];
}

export function pciState(k: Kernel): PciState {
  return k.state<PciState>('pci', () => ({ buses: new Map(), devices: new Map(), drivers: new Map(), notifiers: [] }));
}

/** bus_register_notifier / bus_unregister_notifier on the PCI bus */
export function pciBusRegisterNotifier(k: Kernel, nb: PciBusNotifier): void {
  pciState(k).notifiers.push(nb);
}
export function pciBusUnregisterNotifier(k: Kernel, nb: PciBusNotifier): void {
  const l = pciState(k).notifiers;
  const i = l.indexOf(nb);
  if (i >= 0) l.splice(i, 1);
}
function pciBusNotify(k: Kernel, action: PciBusNotifierAction, d: PciDev): void {
  for (const nb of [...pciState(k).notifiers]) nb(action, d);
}

export function pciGetDevice(k: Kernel, name: string): PciDev | undefined {
  return pciState(k).devices.get(name);
}

/** Create a root bus (pci0000:00 in sysfs). */
export function pciCreateRootBus(k: Kernel, domain: number, number: number): PciBus {
  const b = new PciBus(domain, number, null, null);
  pciState(k).buses.set(b.name, b);
  k.vfs.mkdirp(`/sys/devices/pci${b.name}`, k.sysFs);
  return b;
}

/** The bus behind a bridge. */
export function pciAddChildBus(k: Kernel, bridge: PciDev, number: number): PciBus {
  const b = new PciBus(bridge.bus.domain, number, bridge, bridge.bus);
  bridge.subordinate = b;
  pciState(k).buses.set(b.name, b);
  return b;
}

export function pciCreateSlot(bus: PciBus, number: number, resetSupported: boolean): PciSlot {
  const s = new PciSlot(bus, number, resetSupported);
  bus.slots.set(number, s);
  for (const d of bus.devices) if (d.devfn >> 3 === number) d.slot = s;
  return s;
}

function modalias(d: PciDev): string {
  const h = (n: number) => hex(n, 8).toUpperCase();
  const c = d.classCode;
  return (
    `pci:v${h(d.vendor)}d${h(d.device)}sv${h(d.subsystemVendor)}sd${h(d.subsystemDevice)}` +
    `bc${hex((c >> 16) & 0xff, 2).toUpperCase()}sc${hex((c >> 8) & 0xff, 2).toUpperCase()}i${hex(c & 0xff, 2).toUpperCase()}`
  );
}

/** pci_device_add + sysfs: the function appears in /sys/devices/... and /sys/bus/pci/devices. */
export function pciDeviceAdd(k: Kernel, d: PciDev): void {
  const st = pciState(k);
  d.bus.devices.push(d);
  d.config = pciBuildConfigSpace(d);
  d.config.sideEffect = (what) => pciConfigSideEffect(k, d, what);
  d.hw = pciHwCreate(k, d);
  // the function's interrupt wiring: INTx route, MSI/MSI-X registers, the model's irq outputs
  pciIrqConnect(k, d);
  // a second function in the slot makes the first one multi-function (never a VF: multifunction = 0)
  for (const o of d.bus.devices)
    if (o !== d && !o.isVirtfn && !d.isVirtfn && o.devfn >> 3 === d.devfn >> 3) {
      o.config.data[PCI_HEADER_TYPE] |= 0x80;
      o.config.init[PCI_HEADER_TYPE] |= 0x80;
    }
  d.slot = d.bus.slots.get(d.devfn >> 3) ?? null;
  const parentPath = d.bus.self ? d.bus.self.sysfsPath : `/sys/devices/pci${d.bus.name}`;
  d.kdev.sysfsPath = `${parentPath}/${d.name}`;
  const a = d.kdev.attrs;
  const ro = (name: string, f: () => string) => a.set(name, { ops: { show: () => f() + '\n' }, mode: 0o444 });
  ro('vendor', () => '0x' + hex(d.vendor, 4));
  ro('device', () => '0x' + hex(d.device, 4));
  ro('class', () => '0x' + hex(d.classCode, 6));
  ro('subsystem_vendor', () => '0x' + hex(d.subsystemVendor, 4));
  ro('subsystem_device', () => '0x' + hex(d.subsystemDevice, 4));
  ro('revision', () => '0x' + hex(d.revision, 2));
  ro('modalias', () => modalias(d));
  ro('numa_node', () => '-1');
  // pci-sysfs.c: pci_read_config — the whole space for CAP_SYS_ADMIN, else the first 64 bytes
  a.set('config', {
    ops: {
      show: () => {
        const size = capable('CAP_SYS_ADMIN') ? d.config.size : 64;
        const out = new Uint8Array(size);
        for (let i = 0; i < size; i++) out[i] = pciReadConfig(d, i, 1)[1];
        return out;
      },
      size: d.cfgSize,
    },
    mode: 0o644,
  });
  ro('irq', () => String(pciDevIrq(k, d)));
  ro('enable', () => '0');
  a.set('reset_method', {
    ops: { show: () => (d.resetMethods.length ? d.resetMethods.join(' ') + '\n' : '\n') },
    mode: 0o644,
  });
  a.set('driver_override', {
    ops: {
      show: () => `${d.driverOverride ?? '(null)'}\n`,
      *store(s: string): KGen<number> {
        return driverOverrideStore(d, s);
      },
    },
    mode: 0o644,
  });
  a.set('remove', {
    ops: {
      *store(s: string): KGen<number> {
        if (!/^\s*[1-9]/.test(s)) return s.length;
        yield* pciStopAndRemoveBusDevice(k, d);
        return s.length;
      },
    },
    mode: 0o200,
  });
  // pci_init_capabilities: pci_configure_ari, then pci_iov_init (a PF's SR-IOV state and its
  // sriov_* attributes)
  pciConfigureAri(d);
  pciIovInit(k, d);
  deviceAdd(k, d.kdev);
  k.vfs.mkdirp('/sys/bus/pci/devices', k.sysFs);
  k.vfs.addRelLink(`/sys/bus/pci/devices/${d.name}`, d.sysfsPath);
  k.vfs.addRelLink(`${d.sysfsPath}/subsystem`, '/sys/bus/pci');
  st.devices.set(d.name, d);
  pciBusNotify(k, 'add_device', d);
}

/** driver_override_store (drivers/base/driver.c: driver_set_override) */
function driverOverrideStore(d: PciDev, s: string): number {
  const len = s.length;
  if (len >= 4096 - 1) return -EINVAL;
  let v = s;
  const nl = v.indexOf('\n');
  if (nl >= 0) v = v.slice(0, nl);
  d.driverOverride = v.length === 0 ? null : v;
  return len;
}

/** Attach an IOMMU group membership (done by the IOMMU driver at enumeration). */
export function pciSetIommuGroup(k: Kernel, d: PciDev, g: IommuGroup): void {
  iommuGroupAddDevice(k, g, d, d.sysfsPath);
}

// ---- drivers ---------------------------------------------------------------------------------

/** pci_register_driver + the /sys/bus/pci/drivers/<name> directory with bind/unbind. */
export function pciRegisterDriver(k: Kernel, drv: PciDriver): void {
  const st = pciState(k);
  st.drivers.set(drv.name, drv);
  const dir = `/sys/bus/pci/drivers/${drv.name}`;
  k.vfs.mkdirp(dir, k.sysFs);
  k.vfs.addAttr(`${dir}/bind`, {
    *store(s: string): KGen<number> {
      const d = st.devices.get(s.trim());
      if (!d || !pciBusMatch(d, drv)) return -ENODEV;
      const r = yield* deviceDriverAttach(k, d, drv);
      return r < 0 ? r : s.length;
    },
  });
  k.vfs.addAttr(`${dir}/unbind`, {
    *store(s: string): KGen<number> {
      const d = st.devices.get(s.trim());
      if (!d || d.driver !== drv) return -ENODEV;
      yield* deviceReleaseDriver(k, d);
      return s.length;
    },
  });
  k.vfs.addAttr(`${dir}/new_id`, {
    *store(s: string): KGen<number> {
      return s.length;
    },
  });
  k.vfs.addAttr(`${dir}/remove_id`, {
    *store(s: string): KGen<number> {
      return s.length;
    },
  });
  if (!k.vfs.exists('/sys/bus/pci/drivers_probe')) {
    k.vfs.addAttr('/sys/bus/pci/drivers_probe', {
      *store(s: string): KGen<number> {
        const d = st.devices.get(s.trim());
        if (!d) return -ENODEV;
        const r = yield* deviceAttach(k, d);
        return r < 0 ? r : s.length;
      },
    });
  }
}

/** pci_bus_match / pci_match_device with driver_override. */
export function pciBusMatch(d: PciDev, drv: PciDriver): boolean {
  if (d.driverOverride !== null) return d.driverOverride === drv.name;
  return drv.match(d);
}

/** device_attach: try every registered driver that matches (drivers_probe). */
export function* deviceAttach(k: Kernel, d: PciDev): KGen<number> {
  if (d.driver) return 0;
  for (const drv of pciState(k).drivers.values()) {
    if (!pciBusMatch(d, drv)) continue;
    const r = yield* deviceDriverAttach(k, d, drv);
    if (r === 0) return 0;
  }
  return 0;
}

/** device_driver_attach -> __driver_probe_device -> really_probe, under the device lock. */
export function* deviceDriverAttach(k: Kernel, d: PciDev, drv: PciDriver): KGen<number> {
  yield* mutexLock(d.deviceLock);
  let ret: number;
  if (d.driver) ret = -EBUSY;
  else if (d.removed) ret = -ENODEV;
  else ret = yield* reallyProbe(k, d, drv);
  yield* mutexUnlock(d.deviceLock);
  return ret;
}

function* reallyProbe(k: Kernel, d: PciDev, drv: PciDriver): KGen<number> {
  d.driver = drv;
  // pci_dma_configure: a DMA-API driver becomes a user of the default domain
  if (!drv.driverManagedDma) {
    const r = yield* iommuDeviceUseDefaultDomain(d);
    if (r) {
      d.driver = null;
      return r;
    }
  }
  const drvDir = `/sys/bus/pci/drivers/${drv.name}`;
  k.vfs.addRelLink(`${drvDir}/${d.name}`, d.sysfsPath);
  k.vfs.addRelLink(`${d.sysfsPath}/driver`, drvDir);
  k.event('driver_probe', { device: d.name, driver: drv.name });
  // pci_device_probe: a VF probes only if its PF's sriov_drivers_autoprobe allows it or it has a
  // driver_override (pci_device_can_probe)
  const canProbe = !d.isVirtfn || !d.physfn?.sriov || d.physfn.sriov.driversAutoprobe || d.driverOverride !== null;
  const r = canProbe ? yield* drv.probe(d) : -ENODEV;
  if (r) {
    k.vfs.remove(`${drvDir}/${d.name}`);
    k.vfs.remove(`${d.sysfsPath}/driver`);
    if (!drv.driverManagedDma) yield* iommuDeviceUnuseDefaultDomain(d, (m) => k.warn(m));
    d.driver = null;
    k.event('driver_probe_failed', { device: d.name, driver: drv.name, ret: r });
    return r;
  }
  pciBusNotify(k, 'bound_driver', d);
  return 0;
}

/** device_release_driver: remove under the device lock; may block (vfio waits for its users). */
export function* deviceReleaseDriver(k: Kernel, d: PciDev): KGen<void> {
  yield* mutexLock(d.deviceLock);
  const drv = d.driver;
  if (drv) {
    const drvDir = `/sys/bus/pci/drivers/${drv.name}`;
    // driver_sysfs_remove happens before ->remove
    k.vfs.remove(`${drvDir}/${d.name}`);
    k.vfs.remove(`${d.sysfsPath}/driver`);
    yield* drv.remove(d);
    // pci_device_remove: pci_iov_remove after the driver's ->remove
    pciIovRemove(k, d);
    if (!drv.driverManagedDma) yield* iommuDeviceUnuseDefaultDomain(d, (m) => k.warn(m));
    d.driver = null;
    d.drvdata = null;
    k.event('driver_unbound', { device: d.name, driver: drv.name });
  }
  yield* mutexUnlock(d.deviceLock);
}

/** pci_stop_bus_device: release drivers, children first and in reverse order (VFs before PFs). */
function* pciStopBusDevice(k: Kernel, d: PciDev): KGen<void> {
  if (d.subordinate) for (const c of [...d.subordinate.devices].reverse()) yield* pciStopBusDevice(k, c);
  // pci_stop_dev
  yield* deviceReleaseDriver(k, d);
}

/** pci_remove_bus_device: the functions disappear, children first, in list order. */
function pciRemoveBusDevice(k: Kernel, d: PciDev): void {
  if (d.subordinate) {
    for (const c of [...d.subordinate.devices]) pciRemoveBusDevice(k, c);
    pciState(k).buses.delete(d.subordinate.name);
    d.subordinate = null;
  }
  // pci_destroy_dev
  if (d.removed) return;
  d.removed = true;
  iommuGroupRemoveDevice(k, d, d.sysfsPath);
  k.vfs.remove(`/sys/bus/pci/devices/${d.name}`);
  deviceDel(k, d.kdev);
  const i = d.bus.devices.indexOf(d);
  if (i >= 0) d.bus.devices.splice(i, 1);
  pciState(k).devices.delete(d.name);
  k.event('pci_device_removed', { device: d.name });
}

/** pci_stop_and_remove_bus_device: hot-unplug (drivers unbound, which may wait, then removal). */
export function* pciStopAndRemoveBusDevice(k: Kernel, d: PciDev): KGen<void> {
  if (d.removed) return;
  yield* pciStopBusDevice(k, d);
  pciRemoveBusDevice(k, d);
}

// ---- resets (drivers/pci/pci.c) ----------------------------------------------------------------

/** pci_probe_reset_slot: 0 if the slot can be reset, -ENOTTY otherwise. */
export function pciProbeResetSlot(slot: PciSlot | null): number {
  return slot && slot.resetSupported ? 0 : -ENOTTY;
}

/** pci_bus_resettable: no device on or below the bus forbids a bus reset. */
function pciBusResettable(bus: PciBus): boolean {
  if (bus.self && bus.self.noBusReset) return false;
  return bus.devices.every((d) => !d.noBusReset && (!d.subordinate || pciBusResettable(d.subordinate)));
}

/** pci_probe_reset_bus: secondary bus reset through the upstream bridge. */
export function pciProbeResetBus(bus: PciBus): number {
  if (!bus.self || !pciBusResettable(bus)) return -ENOTTY;
  return 0;
}

/** pci_reset_function method "bus": only if the function is alone on a resettable bus. */
function parentBusResetPossible(d: PciDev): boolean {
  if (d.bus.isRoot || d.subordinate || !d.bus.self || d.bus.self.noBusReset) return false;
  return d.bus.devices.every((o) => o === d);
}

/** pci_reset_supported */
export function pciResetSupported(d: PciDev): boolean {
  return d.resetMethods.length > 0;
}

/** The function's hardware resets: every register to its power-on value, device logic too. */
export function pciDevHardwareReset(d: PciDev, how: ResetMethod): void {
  d.config.powerOnReset();
  for (const h of d.resetHooks) h(how);
}

/** A config write with a side effect (initiate FLR, D3hot->D0, secondary bus reset). */
function pciConfigSideEffect(k: Kernel, d: PciDev, what: PciConfigSideEffect): void {
  if (what === 'flr') pciDevHardwareReset(d, 'flr');
  else if (what === 'pm-d3hot-to-d0') pciDevHardwareReset(d, 'pm');
  else if (d.subordinate) for (const x of pciDevicesBelow(d.subordinate)) pciDevHardwareReset(x, 'bus');
  void k;
}

function pciDevicesBelow(bus: PciBus): PciDev[] {
  const out: PciDev[] = [];
  for (const x of bus.devices) {
    out.push(x);
    if (x.subordinate) out.push(...pciDevicesBelow(x.subordinate));
  }
  return out;
}

/** Perform one reset method through the registers, as pcie_flr / pci_pm_reset / the SBR do. */
function pciDoReset(d: PciDev, m: ResetMethod): void {
  const cs = d.config;
  if (m === 'flr' && cs.expAt) {
    const ctl = pciReadConfigWord(d, cs.expAt + PCI_EXP_DEVCTL);
    pciWriteConfigWord(d, cs.expAt + PCI_EXP_DEVCTL, ctl | PCI_EXP_DEVCTL_BCR_FLR);
  } else if (m === 'pm' && cs.pmAt) {
    const csr = pciReadConfigWord(d, cs.pmAt + PCI_PM_CTRL) & ~3;
    pciWriteConfigWord(d, cs.pmAt + PCI_PM_CTRL, csr | 3);
    pciWriteConfigWord(d, cs.pmAt + PCI_PM_CTRL, csr);
  } else if (m === 'bus' && d.bus.self) {
    const bridge = d.bus.self;
    const ctl = pciReadConfigWord(bridge, PCI_BRIDGE_CONTROL);
    pciWriteConfigWord(bridge, PCI_BRIDGE_CONTROL, ctl | PCI_BRIDGE_CTL_BUS_RESET);
    pciWriteConfigWord(bridge, PCI_BRIDGE_CONTROL, ctl & ~PCI_BRIDGE_CTL_BUS_RESET);
  } else {
    pciDevHardwareReset(d, m);
  }
}

/** __pci_reset_function_locked: try the device's reset methods in order. */
export function pciResetFunctionLocked(k: Kernel, d: PciDev): number {
  for (const m of d.resetMethods) {
    if (m === 'bus' && !parentBusResetPossible(d)) continue;
    d.resets.function++;
    pciDoReset(d, m);
    k.event('pci_reset_function', { device: d.name, method: m });
    return 0;
  }
  return -ENOTTY;
}

/**
 * pci_try_reset_function: -EAGAIN if the device lock is contended; the function's state is saved
 * and its COMMAND cleared (INTx disabled) around the reset, then restored (pci_dev_save_and_disable
 * / pci_dev_restore).
 */
export function* pciTryResetFunction(k: Kernel, d: PciDev): KGen<number> {
  if (!pciResetSupported(d)) return -ENOTTY;
  if (!(yield* mutexTrylock(d.deviceLock))) return -EAGAIN;
  const saved = pciSaveState(d);
  pciWriteConfigWord(d, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
  const r = pciResetFunctionLocked(k, d);
  pciRestoreState(d, saved);
  yield* mutexUnlock(d.deviceLock);
  return r;
}

/** pci_dev_trylock + reset + unlock as vfio_pci_core_disable does it. */
export function* pciTryLockAndResetFunction(k: Kernel, d: PciDev): KGen<number> {
  if (!(yield* mutexTrylock(d.deviceLock))) return -EAGAIN;
  const r = pciResetFunctionLocked(k, d);
  yield* mutexUnlock(d.deviceLock);
  return r;
}

/** All functions a slot or bus reset would hit (the bus, its subordinates, or the slot). */
export function pciDevicesAffectedByReset(d: PciDev, slotScope: boolean): PciDev[] {
  const out: PciDev[] = [];
  const walk = (b: PciBus) => {
    for (const x of b.devices) {
      if (slotScope && b === d.bus && x.devfn >> 3 !== d.slot!.number) continue;
      out.push(x);
      if (x.subordinate) walk(x.subordinate);
    }
  };
  walk(d.bus);
  return out;
}

/** __pci_bus_trylock: the bridge, then every device (or subordinate bus) top-down; all or nothing. */
function* pciBusTrylock(bus: PciBus, slot: PciSlot | null, taken: PciDev[]): KGen<boolean> {
  const bridge = bus.self;
  if (bridge) {
    if (!(yield* mutexTrylock(bridge.deviceLock))) return false;
    taken.push(bridge);
  }
  for (const d of bus.devices) {
    if (slot && d.slot !== slot) continue;
    if (d.subordinate) {
      if (!(yield* pciBusTrylock(d.subordinate, null, taken))) return false;
    } else {
      if (!(yield* mutexTrylock(d.deviceLock))) return false;
      taken.push(d);
    }
  }
  return true;
}

/**
 * pci_reset_bus: a slot reset if the slot supports it, else a secondary bus reset; -EAGAIN if
 * any affected device (or the bridge) is locked, e.g. by a driver unbind in progress.
 */
export function* pciResetBus(k: Kernel, d: PciDev): KGen<number> {
  const slot = pciProbeResetSlot(d.slot) === 0;
  if (!slot && pciProbeResetBus(d.bus) !== 0) return -ENOTTY;
  const taken: PciDev[] = [];
  const ok = yield* pciBusTrylock(d.bus, slot ? d.slot : null, taken);
  let rc = -EAGAIN;
  if (ok) {
    const hit = pciDevicesAffectedByReset(d, slot);
    // pci_bus_save_and_disable_locked, the reset, pci_bus_restore_locked
    const saved = hit.map((x) => pciSaveState(x));
    for (const x of hit) pciWriteConfigWord(x, PCI_COMMAND, PCI_COMMAND_INTX_DISABLE);
    for (const x of hit) x.resets.bus++;
    for (const x of hit) pciDevHardwareReset(x, 'bus');
    hit.forEach((x, i) => pciRestoreState(x, saved[i]!));
    k.event(slot ? 'pci_reset_slot' : 'pci_reset_bus', { bus: d.bus.name, devices: hit.map((x) => x.name) });
    rc = 0;
  }
  for (const t of taken.reverse()) yield* mutexUnlock(t.deviceLock);
  return rc;
}


// ---- power states, enable/disable, bus mastering (drivers/pci/pci.c, setup-res.c) --------------

const PCI_PM_CAP_D1 = 0x0200;
const PCI_PM_CAP_D2 = 0x0400;

/** pci_power_up: D0 through the PM capability; 1 if the function lost its state (soft reset). */
function pciPowerUp(d: PciDev): number {
  const pm = d.config.pmAt;
  if (!pm) {
    d.currentState = PCI_D0;
    return -EIO;
  }
  const pmcsr = pciReadConfigWord(d, pm + PCI_PM_CTRL);
  const state = pmcsr & 3;
  const needRestore = (state === PCI_D3hot || d.currentState >= PCI_D3hot) && !(pmcsr & PCI_PM_CTRL_NO_SOFT_RESET);
  if (state !== PCI_D0) pciWriteConfigWord(d, pm + PCI_PM_CTRL, 0);
  d.currentState = PCI_D0;
  return needRestore ? 1 : 0;
}

/** pci_set_low_power_state */
function pciSetLowPowerState(d: PciDev, state: PciPowerState): number {
  const pm = d.config.pmAt;
  if (!pm) return -EIO;
  if (d.currentState <= PCI_D3cold && d.currentState > state) return -EINVAL;
  const pmc = pciReadConfigWord(d, pm + PCI_PM_PMC);
  if ((state === PCI_D1 && !(pmc & PCI_PM_CAP_D1)) || (state === PCI_D2 && !(pmc & PCI_PM_CAP_D2))) return -EIO;
  if (d.currentState === state) return 0;
  let pmcsr = pciReadConfigWord(d, pm + PCI_PM_CTRL);
  pmcsr = (pmcsr & ~3) | state;
  pciWriteConfigWord(d, pm + PCI_PM_CTRL, pmcsr);
  d.currentState = (pciReadConfigWord(d, pm + PCI_PM_CTRL) & 3) as PciPowerState;
  return 0;
}

/**
 * pci_set_power_state: D0 through pci_power_up (restoring the BARs after a soft reset, as
 * pci_set_full_power_state does), D1/D2/D3hot through the PM control register. D3cold needs
 * platform support this model has none of: it is D3hot.
 */
export function pciSetPowerState(d: PciDev, state: PciPowerState): number {
  if (state > PCI_D3cold) state = PCI_D3cold;
  if (d.currentState === state) return 0;
  if (state === PCI_D0) {
    const ret = pciPowerUp(d);
    if (ret < 0) return d.currentState === PCI_D0 ? 0 : ret;
    d.currentState = (pciReadConfigWord(d, d.config.pmAt + PCI_PM_CTRL) & 3) as PciPowerState;
    if (d.currentState === PCI_D0 && ret > 0) pciRestoreBars(d);
    return 0;
  }
  return pciSetLowPowerState(d, state === PCI_D3cold ? PCI_D3hot : state);
}

/** pci_restore_bars -> pci_update_resource: each BAR register gets its resource's address back. */
function pciRestoreBars(d: PciDev): void {
  for (let i = 0; i < 7; i++) {
    const r = d.resources[i];
    if (!r) continue;
    const at = i < 6 ? 0x10 + 4 * i : d.headerType === 'bridge' ? 0x38 : 0x30;
    const lo = Number(r.start & 0xffffffffn) & (r.type === 'io' ? ~3 : i === 6 ? ~0x7ff : ~0xf);
    pciWriteConfig(d, at, 4, lo >>> 0);
    if (i < 6 && r.mem64) pciWriteConfig(d, at + 4, 4, Number((r.start >> 32n) & 0xffffffffn));
  }
}

/** pci_enable_device: D0, decoding for every assigned BAR, INTx enabled for a function with a pin. */
export function pciEnableDevice(d: PciDev): number {
  if (++d.enableCnt > 1) return 0;
  // do_pci_enable_device
  const err = pciSetPowerState(d, PCI_D0);
  if (err < 0 && err !== -EIO) {
    d.enableCnt--;
    return err;
  }
  // pci_enable_resources (the ROM is optional: not enabled)
  let cmd = pciReadConfigWord(d, PCI_COMMAND);
  const old = cmd;
  for (let i = 0; i < 6; i++) {
    const r = d.resources[i];
    if (!r) continue;
    cmd |= r.type === 'io' ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
  }
  if (cmd !== old) pciWriteConfigWord(d, PCI_COMMAND, cmd);
  if (pciReadConfig(d, PCI_INTERRUPT_PIN, 1)[1]) {
    const c = pciReadConfigWord(d, PCI_COMMAND);
    if (c & PCI_COMMAND_INTX_DISABLE) pciWriteConfigWord(d, PCI_COMMAND, c & ~PCI_COMMAND_INTX_DISABLE);
  }
  return 0;
}

/** pci_disable_device: on the last disable, bus mastering off. */
export function pciDisableDevice(d: PciDev): void {
  if (d.enableCnt <= 0) return;
  if (--d.enableCnt !== 0) return;
  const cmd = pciReadConfigWord(d, PCI_COMMAND);
  if (cmd & PCI_COMMAND_MASTER) pciWriteConfigWord(d, PCI_COMMAND, cmd & ~PCI_COMMAND_MASTER);
  d.isBusmaster = false;
}

/** __pci_set_master */
function pciSetMasterBit(d: PciDev, enable: boolean): void {
  const old = pciReadConfigWord(d, PCI_COMMAND);
  const cmd = enable ? old | PCI_COMMAND_MASTER : old & ~PCI_COMMAND_MASTER;
  if (cmd !== old) pciWriteConfigWord(d, PCI_COMMAND, cmd);
  d.isBusmaster = enable;
}
export const pciSetMaster = (d: PciDev): void => pciSetMasterBit(d, true);
export const pciClearMaster = (d: PciDev): void => pciSetMasterBit(d, false);

