// A simulated host: boots a kernel from a topology (PCI functions, IOMMU groups, drivers), runs the
// module inits in the kernel's order, binds drivers, and offers the administrator's operations
// (bind/unbind to a driver, hot-unplug) and read-only views of the objects and their states.

import { readFileSync } from 'node:fs';
import { Kernel } from '../kernel/kernel.js';
import { mountProc } from '../kernel/process.js';
import { memDevicesInit } from '../kernel/mem_devices.js';
import { KGen, Task } from '../kernel/sched.js';
import { IommuHw, iommuGroupCreate, iommuState } from '../iommu/iommu.js';
import {
  PciDev, PciDriver, deviceDriverAttach, deviceReleaseDriver, pciAddChildBus, pciCreateRootBus, pciCreateSlot,
  pciDeviceAdd, pciGetDevice, pciProbeResetSlot, pciRegisterDriver, pciSetIommuGroup, pciState,
  pciStopAndRemoveBusDevice,
} from '../drivers/pci/pci.js';
import { kernelPciDriver } from '../drivers/kernel_drivers.js';
import { vfioPciDriver, vfioPciParams } from '../drivers/vfio_pci.js';
import { VfioPciCoreDevice } from '../drivers/vfio_pci_core.js';
import { iommufdInit, iommufdParams } from '../iommufd/iommufd.js';
import { vfioGroupInit, vfioGroupState } from '../vfio/group.js';
import { vfioIommuType1Init } from '../vfio/container.js';
import { type1Params } from '../vfio/vfio_iommu_type1.js';
import { vfioCdevInit, vfioState } from '../vfio/vfio_main.js';
import { VfioDevice, VfioGroup } from '../vfio/vfio.js';
import { DEFAULT_HOST_YAML } from './default_host.js';
import { FunctionSpec, Topology, parseTopology } from './topology.js';
import { kstrtobool, kstrtoul } from '../kernel/kstrtox.js';
import { sriovNumvfsStore } from '../drivers/pci/iov.js';
import { applyRecordedConfig } from '../record/replay.js';

/** A kernel-side operation started by the administrator; it may wait (unbind waits for users). */
export class AdminTask {
  constructor(
    readonly name: string,
    readonly task: Task,
  ) {}
  get done(): boolean {
    return this.task.state === 'done';
  }
  /** the result once done (0 or a negative errno) */
  get result(): number | undefined {
    if (this.task.error !== undefined) throw this.task.error;
    return this.task.state === 'done' ? ((this.task.result as number | undefined) ?? 0) : undefined;
  }
}

export interface DeviceView {
  bdf: string;
  name: string | null;
  vendorDevice: string;
  driver: string | null;
  iommuGroup: number | null;
  /** vfio-pci devices */
  vfio: null | {
    index: number;
    cdev: string | null;
    groupNode: string | null;
    devSet: string;
    openCount: number;
    registered: boolean;
    registrationRefcount: number;
    cdevOpened: boolean;
    resetWorks: boolean;
    needsReset: boolean;
  };
}

export interface GroupView {
  id: number;
  node: string;
  devices: string[];
  open: boolean;
  container: number | null;
  iommufd: boolean;
  containerUsers: number;
  cdevDeviceOpenCnt: number;
  viable: boolean;
  drivers: number;
  alive: boolean;
}

export interface DeviceSetView {
  label: string;
  devices: string[];
  openCount: number;
}

export class Host {
  readonly kernel: Kernel;
  readonly topology: Topology;
  private readonly drivers = new Map<string, PciDriver>();

  /** Boot from a topology object, YAML/JSON text, or nothing (the embedded default). */
  constructor(topology?: Topology | string) {
    this.topology =
      topology === undefined
        ? parseTopology(DEFAULT_HOST_YAML, 'default host')
        : typeof topology === 'string'
          ? parseTopology(topology, 'topology')
          : topology;
    this.kernel = new Kernel();
    this.boot();
  }

  /** Boot from a topology file (.yaml, .yml or .json). */
  static fromFile(path: string): Host {
    return new Host(parseTopology(readFileSync(path, 'utf8'), path));
  }

  private boot(): void {
    const k = this.kernel;
    const t = this.topology;
    mountProc(k);
    for (const d of ['/sys/bus/pci/devices', '/sys/bus/pci/drivers', '/sys/bus/pci/slots', '/sys/kernel/iommu_groups', '/sys/class', '/sys/dev/char', '/sys/module'])
      k.vfs.mkdirp(d, k.sysFs);
    // the IOMMU hardware
    const hw: IommuHw = {
      pgsizeBitmap: 0x40201000n,
      apertureEnd: (1n << BigInt(t.iommu.addressWidth)) - 1n,
      isolatedMsi: t.iommu.interruptRemapping,
      cacheCoherency: t.iommu.cacheCoherency,
      enforceCacheCoherency: t.iommu.enforceCacheCoherency,
      dirtyTracking: false,
      reservedRegions: t.iommu.reservedRegions.map((r) => ({ start: r.start, last: r.end, type: r.type })),
      defaultDomainType: 'DMA',
      vtdRegs: t.iommu.vtdCapReg != null && t.iommu.vtdEcapReg != null ? { cap: t.iommu.vtdCapReg, ecap: t.iommu.vtdEcapReg } : null,
    };
    iommuState(k).hw = hw;
    vfioState(k).noiommu = t.kernel.noiommu;
    // module init, in the kernel's order: iommufd, vfio (groups + container, then device cdevs),
    // the type1 backend, then vfio-pci
    memDevicesInit(k);
    iommufdInit(k, t.kernel.iommuMinor);
    vfioGroupInit(k, t.kernel.vfioMajor ?? undefined);
    vfioCdevInit(k, t.kernel.vfioDevMajor ?? undefined);
    vfioIommuType1Init(k);
    this.moduleParams();
    this.enumerate();
    const vfio = vfioPciDriver(k);
    this.drivers.set(vfio.name, vfio);
    pciRegisterDriver(k, vfio);
    const claims = new Map<string, Set<string>>();
    for (const f of t.functions) {
      if (!f.driver || f.driver === 'vfio-pci') continue;
      let s = claims.get(f.driver);
      if (!s) claims.set(f.driver, (s = new Set()));
      s.add(f.bdf);
    }
    for (const [name, set] of claims) {
      const drv = kernelPciDriver(name, set);
      this.drivers.set(name, drv);
      pciRegisterDriver(k, drv);
    }
    // kernel drivers probe at enumeration; vfio-pci binds afterwards, in topology order
    for (const f of t.functions) if (f.driver && f.driver !== 'vfio-pci') this.bootBind(f, f.driver);
    for (const f of t.functions) if (f.driver === 'vfio-pci') this.bootBind(f, 'vfio-pci');
  }

  private bootBind(f: FunctionSpec, driver: string): void {
    const k = this.kernel;
    const pdev = pciGetDevice(k, f.bdf)!;
    if (driver === 'vfio-pci') pdev.driverOverride = 'vfio-pci';
    const drv = this.drivers.get(driver)!;
    const t = k.spawnKernelTask(`boot: bind ${f.bdf} to ${driver}`, deviceDriverAttach(k, pdev, drv));
    if (t.state !== 'done') throw new Error(`boot: binding ${f.bdf} to ${driver} blocked`);
    if (t.error) throw t.error;
    const r = t.result as number;
    if (r < 0) k.warn(`boot: ${driver} probe of ${f.bdf} failed (${r})`);
  }

  /** PCI enumeration: buses behind bridges, functions, slots, IOMMU groups. */
  private enumerate(): void {
    const k = this.kernel;
    const t = this.topology;
    const buses = new Map<string, ReturnType<typeof pciCreateRootBus>>();
    const pending = [...t.functions];
    const order: FunctionSpec[] = [];
    // walk from the root buses down (a child bus exists once its bridge is added)
    for (const dom of new Set(t.functions.map((f) => f.domain))) buses.set(`${dom}:0`, pciCreateRootBus(k, dom, 0));
    let progress = true;
    while (pending.length && progress) {
      progress = false;
      for (let i = 0; i < pending.length; i++) {
        const f = pending[i]!;
        const bus = buses.get(`${f.domain}:${f.bus}`);
        if (!bus) continue;
        const pdev = new PciDev({
          bus,
          devfn: (f.dev << 3) | f.fn,
          vendor: f.vendor,
          device: f.device,
          classCode: f.classCode,
          subsystemVendor: f.subsystemVendor,
          subsystemDevice: f.subsystemDevice,
          revision: f.revision,
          headerType: f.secondaryBus !== null ? 'bridge' : 'normal',
          resetMethods: [...f.reset],
          isPcie: f.pcie,
          noBusReset: f.noBusReset,
        });
        pdev.nickname = f.name;
        pdev.cfgSize = f.recorded?.configRaw?.length ?? (f.pcie ? 4096 : 256);
        pdev.msixBar = f.msixBar;
        pdev.caps = f.caps.map((c) => ({ ...c }));
        pdev.extCaps = f.extCaps.map((c) => ({ ...c }));
        pdev.interruptPin = f.interruptPin;
        pdev.interruptLine = f.interruptLine ?? (f.interruptPin ? 11 : 0);
        let addr = 0xfe000000n - BigInt(order.length) * 0x400000n;
        pdev.resources = [
          ...f.bars.map((b) => {
            if (!b) return null;
            const start = b.addr ?? (b.type === 'io' ? 0xc000n + BigInt(order.length) * 0x100n : (addr -= b.size > 0x1000n ? b.size : 0x1000n));
            return { start, size: b.size, type: b.type, mem64: b.mem64, prefetch: b.prefetch };
          }),
          f.rom ? { start: f.romAddr ?? addr - f.rom, size: f.rom, type: 'mem' as const, mem64: false, prefetch: false } : null,
        ];
        // the PF's VF BARs (TotalVFs copies of each, aligned to one VF's size), as firmware assigns them
        for (const c of pdev.extCaps) {
          if (c.id !== 'sriov') continue;
          const total = BigInt(Math.max(c.totalVfs, 1));
          c.vfBars = c.vfBars.map((b) => {
            if (!b) return null;
            if (b.addr !== null) return { ...b };
            addr = (addr - b.size * total) & ~(b.size - 1n);
            return { ...b, addr };
          });
        }
        pciDeviceAdd(k, pdev);
        if (f.secondaryBus !== null) buses.set(`${f.domain}:${f.secondaryBus}`, pciAddChildBus(k, pdev, f.secondaryBus));
        order.push(f);
        pending.splice(i, 1);
        i--;
        progress = true;
      }
    }
    // a recorded function's config space is the recorded bytes (src/record/replay.ts)
    for (const f of order) if (f.recorded?.configRaw) applyRecordedConfig(pciGetDevice(k, f.bdf)!, f.recorded.configRaw);
    for (const s of t.slots) {
      const bus = buses.get(`${s.domain}:${s.bus}`);
      if (bus) pciCreateSlot(bus, s.slot, s.reset);
    }
    // IOMMU groups, numbered as the topology says
    const ids = [...new Set(t.functions.filter((f) => f.iommuGroup !== null).map((f) => f.iommuGroup!))].sort((a, b) => a - b);
    const groups = new Map(ids.map((id) => [id, iommuGroupCreate(k, id)]));
    for (const f of order) if (f.iommuGroup !== null) pciSetIommuGroup(k, pciGetDevice(k, f.bdf)!, groups.get(f.iommuGroup)!);
  }

  private moduleParams(): void {
    const k = this.kernel;
    const yn = (v: boolean) => (v ? 'Y\n' : 'N\n');
    const boolStore = (set: (v: boolean) => void) =>
      function* (s: string): KGen<number> {
        const v = s.trim();
        if (/^(1|y|Y|on)$/.test(v)) set(true);
        else if (/^(0|n|N|off)$/.test(v)) set(false);
        else return -22;
        return s.length;
      };
    const vs = vfioState(k);
    k.vfs.addAttr('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', { show: () => yn(vs.noiommu), store: boolStore((v) => (vs.noiommu = v)) }, 0o644);
    const vp = vfioPciParams(k);
    k.vfs.addAttr('/sys/module/vfio_pci/parameters/nointxmask', { show: () => yn(vp.nointxmask), store: boolStore((v) => (vp.nointxmask = v)) }, 0o644);
    k.vfs.addAttr('/sys/module/vfio_pci/parameters/disable_idle_d3', { show: () => yn(vp.disableIdleD3), store: boolStore((v) => (vp.disableIdleD3 = v)) }, 0o644);
    k.vfs.addAttr('/sys/module/vfio_pci/parameters/disable_denylist', { show: () => yn(vp.disableDenylist) }, 0o444);
    k.vfs.addAttr('/sys/module/vfio_pci/parameters/enable_sriov', { show: () => yn(vp.enableSriov), store: boolStore((v) => (vp.enableSriov = v)) }, 0o644);
    const tp = type1Params(k);
    k.vfs.addAttr('/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts', { show: () => yn(tp.allowUnsafeInterrupts), store: boolStore((v) => (tp.allowUnsafeInterrupts = v)) }, 0o644);
    k.vfs.addAttr('/sys/module/vfio_iommu_type1/parameters/disable_hugepages', { show: () => yn(tp.disableHugepages) }, 0o444);
    k.vfs.addAttr(
      '/sys/module/vfio_iommu_type1/parameters/dma_entry_limit',
      {
        show: () => `${tp.dmaEntryLimit}\n`,
        *store(s: string): KGen<number> {
          const n = Number(s.trim());
          if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) return -22;
          tp.dmaEntryLimit = n;
          return s.length;
        },
      },
      0o644,
    );
    k.vfs.addAttr(
      '/sys/module/iommufd/parameters/allow_unsafe_interrupts',
      { show: () => yn(iommufdParams.allowUnsafeInterrupts), store: boolStore((v) => (iommufdParams.allowUnsafeInterrupts = v)) },
      0o644,
    );
    // the kernel command line (the topology checked every name and value)
    const setters: Record<string, (v: string) => void> = {
      'vfio.enable_unsafe_noiommu_mode': (v) => (vs.noiommu = kstrtobool(v)[1]),
      'vfio_pci.nointxmask': (v) => (vp.nointxmask = kstrtobool(v)[1]),
      'vfio_pci.disable_idle_d3': (v) => (vp.disableIdleD3 = kstrtobool(v)[1]),
      'vfio_pci.enable_sriov': (v) => (vp.enableSriov = kstrtobool(v)[1]),
      'vfio_pci.disable_denylist': (v) => (vp.disableDenylist = kstrtobool(v)[1]),
      'vfio_iommu_type1.allow_unsafe_interrupts': (v) => (tp.allowUnsafeInterrupts = kstrtobool(v)[1]),
      'vfio_iommu_type1.disable_hugepages': (v) => (tp.disableHugepages = kstrtobool(v)[1]),
      'vfio_iommu_type1.dma_entry_limit': (v) => (tp.dmaEntryLimit = kstrtoul(v, 0, 0xffffffffn)[1]),
      'iommufd.allow_unsafe_interrupts': (v) => (iommufdParams.allowUnsafeInterrupts = kstrtobool(v)[1]),
    };
    for (const { param, value } of this.topology.kernel.cmdline) setters[param]!(value);
  }

  // ---- administrator operations --------------------------------------------------------------

  private pdev(bdf: string): PciDev {
    const d = pciGetDevice(this.kernel, bdf.toLowerCase()) ?? this.byName(bdf);
    if (!d) throw new Error(`no PCI function ${bdf} on this host`);
    return d;
  }

  private byName(name: string): PciDev | undefined {
    for (const d of pciState(this.kernel).devices.values()) if (d.nickname === name) return d;
    return undefined;
  }

  /** Resolve a BDF or a topology name ("e1000e") to the canonical BDF. */
  bdf(nameOrBdf: string): string {
    return this.pdev(nameOrBdf).name;
  }

  /**
   * Bind a function to a driver (vfio-pci by default: driver_override + probe), as
   * `echo vfio-pci > driver_override; echo BDF > drivers_probe` does. Returns 0 or -errno.
   */
  bind(bdf: string, driver = 'vfio-pci'): number {
    const k = this.kernel;
    const pdev = this.pdev(bdf);
    const drv = this.drivers.get(driver);
    if (!drv) throw new Error(`no driver ${driver} on this host (known: ${[...this.drivers.keys()].join(', ')})`);
    if (driver === 'vfio-pci') pdev.driverOverride = 'vfio-pci';
    const ev = k.emitAdmin('bind', { device: pdev.name, driver });
    const t = k.spawnKernelTask(`bind ${pdev.name} ${driver}`, deviceDriverAttach(k, pdev, drv), ev?.seq);
    if (t.state !== 'done') throw new Error(`bind of ${pdev.name} blocked`);
    if (t.error) throw t.error;
    return t.result as number;
  }

  /** Unbind a function from its driver. For vfio-pci this waits until every file is released. */
  unbind(bdf: string): AdminTask {
    const k = this.kernel;
    const pdev = this.pdev(bdf);
    const ev = k.emitAdmin('unbind', { device: pdev.name, driver: pdev.driver?.name ?? null });
    const name = `unbind ${pdev.name}`;
    return new AdminTask(name, k.spawnKernelTask(name, deviceReleaseDriver(k, pdev), ev?.seq));
  }

  /** Hot-unplug a function (its driver is unbound first, which may wait for users). */
  hotUnplug(bdf: string): AdminTask {
    const k = this.kernel;
    const pdev = this.pdev(bdf);
    const ev = k.emitAdmin('hot_unplug', { device: pdev.name });
    const name = `hot-unplug ${pdev.name}`;
    return new AdminTask(name, k.spawnKernelTask(name, pciStopAndRemoveBusDevice(k, pdev), ev?.seq));
  }

  /**
   * Set a PF's number of VFs, as `echo N > /sys/bus/pci/devices/BDF/sriov_numvfs` does (vfio-pci
   * needs its enable_sriov parameter). The result is 0 or -errno; disabling waits while a VF's
   * files are open.
   */
  sriovNumVfs(bdf: string, n: number): AdminTask {
    const k = this.kernel;
    const pdev = this.pdev(bdf);
    if (!pdev.isPhysfn) throw new Error(`${pdev.name} is not an SR-IOV PF (no sriov_numvfs)`);
    const ev = k.emitAdmin('sriov_numvfs', { device: pdev.name, num_vfs: n });
    const name = `sriov_numvfs ${pdev.name} ${n}`;
    const body = function* (): KGen<number> {
      const r = yield* sriovNumvfsStore(k, pdev, `${n}\n`);
      return r < 0 ? r : 0;
    };
    return new AdminTask(name, k.spawnKernelTask(name, body(), ev?.seq));
  }

  /** Let virtual time pass (unregister's 10 s waits between device requests). */
  advanceTime(ms: number): void {
    this.kernel.clock.advance(ms);
  }

  // ---- inspection ------------------------------------------------------------------------------

  vfioDevice(bdf: string): VfioDevice | null {
    const d = this.pdev(bdf);
    const core = d.drvdata instanceof VfioPciCoreDevice ? d.drvdata : null;
    return core ? core.vdev : null;
  }

  devices(): DeviceView[] {
    const out: DeviceView[] = [];
    // the topology's functions, each PF followed by its VFs (pci_iov_add_virtfn order)
    const all: PciDev[] = [];
    for (const f of this.topology.functions) {
      const d = pciGetDevice(this.kernel, f.bdf);
      if (!d) continue;
      all.push(d);
      if (d.isPhysfn) all.push(...d.bus.devices.filter((x) => x.isVirtfn && x.physfn === d && !x.removed));
    }
    for (const d of all) {
      const core = d.drvdata instanceof VfioPciCoreDevice ? d.drvdata : null;
      const v = core?.vdev;
      out.push({
        bdf: d.name,
        name: d.nickname,
        vendorDevice: `${d.vendor.toString(16).padStart(4, '0')}:${d.device.toString(16).padStart(4, '0')}`,
        driver: d.driver?.name ?? null,
        iommuGroup: d.iommuGroup?.id ?? null,
        vfio: v
          ? {
              index: v.index,
              cdev: v.cdev && v.registered ? `/dev/vfio/devices/vfio${v.index}` : null,
              groupNode: v.group ? `/dev/vfio/${v.group.name}` : null,
              devSet: v.devSet?.label ?? '',
              openCount: v.openCount,
              registered: v.registered,
              registrationRefcount: v.refcount.value,
              cdevOpened: v.cdevOpened,
              resetWorks: core!.resetWorks,
              needsReset: core!.needsReset,
            }
          : null,
      });
    }
    return out;
  }

  vfioGroups(): VfioGroup[] {
    return [...vfioGroupState(this.kernel).groupList];
  }

  groups(): GroupView[] {
    return this.vfioGroups()
      .map((g) => ({
        id: g.iommuGroup?.id ?? -1,
        node: `/dev/vfio/${g.name}`,
        devices: g.deviceList.map((d) => d.dev.name).reverse(),
        open: g.openedFile !== null,
        container: g.container?.id ?? null,
        iommufd: g.iommufd !== null,
        containerUsers: g.containerUsers,
        cdevDeviceOpenCnt: g.cdevDeviceOpenCnt,
        viable: g.iommuGroup ? g.iommuGroup.ownerCnt === 0 : false,
        drivers: g.drivers.value,
        alive: g.iommuGroup !== null,
      }))
      .sort((a, b) => a.id - b.id);
  }

  deviceSets(): DeviceSetView[] {
    const sets = new Map<string, DeviceSetView>();
    for (const d of this.devices()) {
      if (!d.vfio) continue;
      const dev = this.vfioDevice(d.bdf)!;
      const s = dev.devSet!;
      let v = sets.get(s.label);
      if (!v) sets.set(s.label, (v = { label: s.label, devices: [], openCount: 0 }));
      v.devices.push(d.bdf);
      v.openCount += dev.openCount;
    }
    return [...sets.values()];
  }

  /** Whether a slot reset keys the function's device set (for listings). */
  slotReset(bdf: string): boolean {
    return pciProbeResetSlot(this.pdev(bdf).slot) === 0;
  }
}
