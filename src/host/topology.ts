// The host topology: a declarative description (YAML or JSON) of the PCI functions, IOMMU groups,
// reset domains and driver bindings of a simulated machine, validated with messages that name the
// field and the problem.

import { parse as parseYaml } from 'yaml';
import { kstrtobool, kstrtoul } from '../kernel/kstrtox.js';
import type { ResetMethod } from '../drivers/pci/pci.js';
import { RecordedFunction, RecordedHost, parseRecordedFunction, parseRecordedHost } from '../record/format.js';
import { PCIE_TYPES, PciCap, PciExtCap, PciSriovCap, PciVfBar, PcieType, pciCapLength, pciExtCapLength } from '../drivers/pci/caps.js';

export interface BarSpec {
  size: bigint;
  /** the address firmware assigned (null: the host picks one) */
  addr: bigint | null;
  type: 'mem' | 'io';
  mem64: boolean;
  prefetch: boolean;
}

export interface FunctionSpec {
  bdf: string;
  domain: number;
  bus: number;
  dev: number;
  fn: number;
  /** friendly name, e.g. e1000e */
  name: string | null;
  vendor: number;
  device: number;
  subsystemVendor: number;
  subsystemDevice: number;
  revision: number;
  classCode: number;
  /** secondary bus number for a bridge */
  secondaryBus: number | null;
  pcie: boolean;
  /** IOMMU group id, or null for a function without an IOMMU group */
  iommuGroup: number | null;
  /** bound driver at boot (null = none) */
  driver: string | null;
  /** reset methods as sysfs reset_method would list them */
  reset: ResetMethod[];
  /** a bridge that must not do a secondary bus reset */
  noBusReset: boolean;
  bars: Array<BarSpec | null>;
  rom: bigint;
  romAddr: bigint | null;
  /** which BAR holds the MSI-X table (from the msix capability) */
  msixBar: number | null;
  /** the standard capability list, in chain order, with resolved offsets */
  caps: PciCap[];
  /** the PCIe extended capability list, in chain order */
  extCaps: PciExtCap[];
  /** PCI_INTERRUPT_PIN: 0 = no INTx, 1..4 = INTA..INTD */
  interruptPin: number;
  /** PCI_INTERRUPT_LINE as firmware routed it (null: 11 for a function with a pin, else 0) */
  interruptLine: number | null;
  /** extra device-model properties, passed through (config space, capabilities, ...) */
  extra: Record<string, unknown>;
  /** what vfiosim-record captured on a real machine (src/record/format.ts) */
  recorded?: RecordedFunction | null;
}

export interface SlotSpec {
  domain: number;
  bus: number;
  slot: number;
  reset: boolean;
}

export interface IommuSpec {
  addressWidth: number;
  interruptRemapping: boolean;
  cacheCoherency: boolean;
  enforceCacheCoherency: boolean;
  reservedRegions: Array<{ start: bigint; end: bigint; type: 'msi' | 'direct' | 'direct-relaxable' | 'reserved' | 'msi-sw' }>;
  /** VT-d capability / extended capability registers (IOMMU_GET_HW_INFO); null: the model's */
  vtdCapReg?: bigint | null;
  vtdEcapReg?: bigint | null;
}

export interface KernelSpec {
  vfioMajor: number | null;
  vfioDevMajor: number | null;
  iommuMinor: number;
  noiommu: boolean;
  /** module parameters given on the kernel command line ("vfio_pci.enable_sriov=1 ..."), in order */
  cmdline: Array<{ param: string; value: string }>;
}

/**
 * The module parameters a topology's kernel.cmdline may set, as module.param (the kernel's
 * param_set_bool / param_set_uint parse them: kstrtobool, kstrtouint).
 */
export const KERNEL_CMDLINE_PARAMS: Record<string, 'bool' | 'uint'> = {
  'vfio.enable_unsafe_noiommu_mode': 'bool',
  'vfio_pci.nointxmask': 'bool',
  'vfio_pci.disable_idle_d3': 'bool',
  'vfio_pci.enable_sriov': 'bool',
  'vfio_pci.disable_denylist': 'bool',
  'vfio_iommu_type1.allow_unsafe_interrupts': 'bool',
  'vfio_iommu_type1.disable_hugepages': 'bool',
  'vfio_iommu_type1.dma_entry_limit': 'uint',
  'iommufd.allow_unsafe_interrupts': 'bool',
};

export interface Topology {
  name: string;
  description: string;
  kernel: KernelSpec;
  iommu: IommuSpec;
  functions: FunctionSpec[];
  slots: SlotSpec[];
  /** a recorded machine's kernel identity, IOMMU groups and probe results (src/record/format.ts) */
  recorded?: RecordedHost | null;
}

export class HostConfigError extends Error {
  constructor(
    readonly problems: string[],
    readonly source: string,
  ) {
    super(`${source}: invalid host topology:\n  ${problems.join('\n  ')}`);
    this.name = 'HostConfigError';
  }
}

const RESET_METHODS: ResetMethod[] = ['device_specific', 'acpi', 'flr', 'af_flr', 'pm', 'bus', 'cxl_bus'];
const BDF_RE = /^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$/;

type Obj = Record<string, unknown>;

class Checker {
  readonly problems: string[] = [];
  err(path: string, msg: string): void {
    this.problems.push(`${path}: ${msg}`);
  }
  obj(v: unknown, path: string): Obj | null {
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) {
      this.err(path, `must be a mapping, got ${describe(v)}`);
      return null;
    }
    return v as Obj;
  }
  known(o: Obj, path: string, keys: string[]): void {
    for (const k of Object.keys(o)) if (!keys.includes(k)) this.err(`${path}.${k}`, `unknown field (known: ${keys.join(', ')})`);
  }
  /** an integer from a number or a "0x.." / decimal string */
  int(v: unknown, path: string, min: number, max: number, dflt?: number): number {
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      this.err(path, 'is required');
      return min;
    }
    const n = toBig(v);
    if (n === null) {
      this.err(path, `must be an integer, got ${describe(v)}`);
      return min;
    }
    if (n < BigInt(min) || n > BigInt(max)) {
      this.err(path, `${String(v)} is out of range ${min}..${max < 0x100000 ? max : '0x' + max.toString(16)}`);
      return min;
    }
    return Number(n);
  }
  big(v: unknown, path: string, dflt?: bigint): bigint {
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      this.err(path, 'is required');
      return 0n;
    }
    const n = toBig(v);
    if (n === null || n < 0n || n > 0xffffffffffffffffn) {
      const big = typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v);
      this.err(path, big ? `${String(v)} is too large to be exact as a YAML number: quote it ("0x...")` : `must be an unsigned 64-bit integer, got ${describe(v)}`);
      return 0n;
    }
    return n;
  }
  bool(v: unknown, path: string, dflt: boolean): boolean {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') {
      this.err(path, `must be true or false, got ${describe(v)}`);
      return dflt;
    }
    return v;
  }
  str(v: unknown, path: string, dflt?: string | null): string | null {
    if (v === undefined || v === null) {
      if (dflt !== undefined) return dflt;
      this.err(path, 'is required');
      return null;
    }
    if (typeof v !== 'string') {
      this.err(path, `must be a string, got ${describe(v)}`);
      return null;
    }
    return v;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function toBig(v: unknown): bigint | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : null;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'string') {
    const t = v.trim().replace(/_/g, '');
    if (/^0x[0-9a-fA-F]+$/.test(t) || /^[0-9]+$/.test(t)) return BigInt(t);
    const m = /^([0-9]+)\s*([KMG])i?B?$/i.exec(t);
    if (m) return BigInt(m[1]!) << BigInt({ K: 10, M: 20, G: 30 }[m[2]!.toUpperCase() as 'K' | 'M' | 'G']);
  }
  return null;
}

/** vendor:device pair "8086:10d3" */
function parseIdPair(c: Checker, v: unknown, path: string): [number, number] | null {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{4}:[0-9a-fA-F]{4}$/.test(v)) {
    c.err(path, `must be "vvvv:dddd" (hex vendor:device), got ${describe(v)}`);
    return null;
  }
  const [a, b] = v.split(':');
  return [parseInt(a!, 16), parseInt(b!, 16)];
}

const FUNCTION_KEYS = [
  'bdf', 'name', 'id', 'vendor', 'device', 'subsystem', 'revision', 'class', 'bridge', 'pcie', 'iommu_group',
  'driver', 'reset', 'no_bus_reset', 'bars', 'rom', 'rom_addr', 'msix_bar', 'caps', 'ext_caps', 'interrupt_pin', 'interrupt_line', 'model',
  'recorded',
];

function parseFunction(c: Checker, raw: unknown, i: number): FunctionSpec | null {
  const path = `functions[${i}]`;
  const o = c.obj(raw, path);
  if (!o) {
    if (raw === null || raw === undefined) c.err(path, 'must be a mapping');
    return null;
  }
  c.known(o, path, FUNCTION_KEYS);
  const bdfRaw = c.str(o.bdf, `${path}.bdf`);
  let domain = 0,
    bus = 0,
    dev = 0,
    fn = 0;
  if (bdfRaw !== null) {
    const m = BDF_RE.exec(bdfRaw);
    if (!m) c.err(`${path}.bdf`, `"${bdfRaw}" is not a PCI address (expected DDDD:BB:DD.F, e.g. 0000:01:00.0)`);
    else {
      domain = parseInt(m[1]!, 16);
      bus = parseInt(m[2]!, 16);
      dev = parseInt(m[3]!, 16);
      fn = parseInt(m[4]!, 10);
      if (dev > 0x1f) c.err(`${path}.bdf`, `device number ${m[3]} is above 1f`);
    }
  }
  let vendor = 0,
    device = 0;
  if (o.id !== undefined) {
    const p = parseIdPair(c, o.id, `${path}.id`);
    if (p) [vendor, device] = p;
    if (o.vendor !== undefined || o.device !== undefined) c.err(path, 'give either id or vendor/device, not both');
  } else {
    vendor = c.int(o.vendor, `${path}.vendor`, 0, 0xffff);
    device = c.int(o.device, `${path}.device`, 0, 0xffff);
  }
  let subsystemVendor = vendor,
    subsystemDevice = 0;
  if (o.subsystem !== undefined) {
    const p = parseIdPair(c, o.subsystem, `${path}.subsystem`);
    if (p) [subsystemVendor, subsystemDevice] = p;
  }
  const classCode = c.int(o.class, `${path}.class`, 0, 0xffffff);
  let secondaryBus: number | null = null;
  if (o.bridge !== undefined) {
    const b = c.obj(o.bridge, `${path}.bridge`);
    if (b) {
      c.known(b, `${path}.bridge`, ['secondary']);
      secondaryBus = c.int(b.secondary, `${path}.bridge.secondary`, 1, 255);
    }
  }
  if (classCode >> 8 === 0x0604 && secondaryBus === null)
    c.err(`${path}.bridge`, 'a PCI bridge (class 0x0604xx) needs bridge.secondary (its secondary bus number)');
  const groupRaw = o.iommu_group;
  const iommuGroup = groupRaw === null ? null : c.int(groupRaw, `${path}.iommu_group`, 0, 0xfffff);
  const driver = o.driver === undefined ? null : c.str(o.driver, `${path}.driver`, null);
  if (driver !== null && !/^[A-Za-z0-9_.-]+$/.test(driver)) c.err(`${path}.driver`, `"${driver}" is not a driver name`);
  let reset: ResetMethod[] = [];
  if (o.reset !== undefined) {
    if (!Array.isArray(o.reset)) c.err(`${path}.reset`, `must be a list of reset methods (${RESET_METHODS.join(', ')})`);
    else
      reset = o.reset.filter((r, j) => {
        if (!RESET_METHODS.includes(r as ResetMethod)) {
          c.err(`${path}.reset[${j}]`, `unknown reset method ${describe(r)} (known: ${RESET_METHODS.join(', ')})`);
          return false;
        }
        return true;
      }) as ResetMethod[];
  }
  const bars: Array<BarSpec | null> = [null, null, null, null, null, null];
  if (o.bars !== undefined) {
    if (!Array.isArray(o.bars) || o.bars.length > 6) c.err(`${path}.bars`, 'must be a list of at most 6 BARs (null for an unused one)');
    else
      o.bars.forEach((b: unknown, j: number) => {
        if (b === null) return;
        const bp = `${path}.bars[${j}]`;
        const bo = c.obj(b, bp);
        if (!bo) return;
        c.known(bo, bp, ['size', 'type', 'mem64', 'prefetch', 'addr']);
        const size = c.big(bo.size, `${bp}.size`);
        if (size && (size & (size - 1n)) !== 0n) c.err(`${bp}.size`, `0x${size.toString(16)} is not a power of two`);
        const type = (c.str(bo.type, `${bp}.type`, 'mem') ?? 'mem') as 'mem' | 'io';
        if (type !== 'mem' && type !== 'io') c.err(`${bp}.type`, `must be mem or io, got "${type}"`);
        const mem64 = c.bool(bo.mem64, `${bp}.mem64`, false);
        if (mem64 && j === 5) c.err(`${bp}.mem64`, 'BAR5 cannot be 64-bit (it needs the next BAR)');
        const addr = bo.addr === undefined ? null : c.big(bo.addr, `${bp}.addr`);
        if (addr !== null && size && addr % size !== 0n) c.err(`${bp}.addr`, `0x${addr.toString(16)} is not aligned to the BAR size 0x${size.toString(16)}`);
        if (addr !== null && !mem64 && addr > 0xffffffffn) c.err(`${bp}.addr`, `0x${addr.toString(16)} is above 4 GiB in a 32-bit BAR`);
        bars[j] = { size, addr, type, mem64, prefetch: c.bool(bo.prefetch, `${bp}.prefetch`, false) };
      });
    bars.forEach((b, j) => {
      if (b?.mem64 && j < 5 && bars[j + 1]) c.err(`${path}.bars[${j + 1}]`, `must be null: BAR${j} is 64-bit and uses it`);
    });
  }
  const rom = o.rom === undefined ? 0n : c.big(o.rom, `${path}.rom`);
  const romAddr = o.rom_addr === undefined ? null : c.big(o.rom_addr, `${path}.rom_addr`);
  if (romAddr !== null && rom && romAddr % rom !== 0n) c.err(`${path}.rom_addr`, `0x${romAddr.toString(16)} is not aligned to the ROM size 0x${rom.toString(16)}`);
  const msixBarRaw = o.msix_bar === undefined || o.msix_bar === null ? null : c.int(o.msix_bar, `${path}.msix_bar`, 0, 5);
  if (msixBarRaw !== null && !bars[msixBarRaw]) c.err(`${path}.msix_bar`, `BAR${msixBarRaw} is not defined`);
  const pcie = c.bool(o.pcie, `${path}.pcie`, false);
  const caps = parseCaps(c, o, path, { bars, reset, pcie, msixBar: msixBarRaw, bridge: secondaryBus !== null, classCode });
  const revision = c.int(o.revision, `${path}.revision`, 0, 0xff, 0);
  const extCaps = parseExtCaps(c, o.ext_caps, `${path}.ext_caps`, pcie, {
    pf: { classCode, revision, subsystemVendor, subsystemDevice },
    bridge: secondaryBus !== null,
  });
  const msix = caps.find((x) => x.id === 'msix');
  const msixBar = msix ? msix.tableBar : null;
  const extra = o.model === undefined ? {} : (c.obj(o.model, `${path}.model`) ?? {});
  const recorded = o.recorded === undefined ? null : parseRecordedFunction(o.recorded, `${path}.recorded`, (p, m) => c.err(p, m));
  if (recorded?.configRaw && recorded.configRaw.length !== (pcie ? 4096 : 256) && recorded.configRaw.length < 256)
    c.err(`${path}.recorded.config_raw.size`, `${recorded.configRaw.length}: a recorded config space is 256 or 4096 bytes (sysfs config read as root)`);
  return {
    bdf: bdfRaw?.toLowerCase() ?? '',
    domain,
    bus,
    dev,
    fn,
    name: o.name === undefined ? null : c.str(o.name, `${path}.name`, null),
    vendor,
    device,
    subsystemVendor,
    subsystemDevice,
    revision,
    classCode,
    secondaryBus,
    pcie,
    iommuGroup,
    driver,
    reset,
    noBusReset: c.bool(o.no_bus_reset, `${path}.no_bus_reset`, false),
    bars,
    rom,
    romAddr,
    msixBar,
    caps,
    extCaps,
    interruptPin: c.int(o.interrupt_pin, `${path}.interrupt_pin`, 0, 4, secondaryBus === null ? 1 : 0),
    interruptLine: o.interrupt_line === undefined ? null : c.int(o.interrupt_line, `${path}.interrupt_line`, 0, 0xff),
    extra,
    recorded,
  };
}

const CAP_KEYS: Record<PciCap['id'], string[]> = {
  pm: ['id', 'at', 'no_soft_reset', 'pmc'],
  msi: ['id', 'at', 'vectors', 'addr64', 'maskable'],
  msix: ['id', 'at', 'vectors', 'table', 'pba'],
  pcie: ['id', 'at', 'type', 'version', 'flr'],
  vendor: ['id', 'at', 'length'],
  raw: ['id', 'at', 'cap', 'length'],
};

interface CapContext {
  bars: Array<BarSpec | null>;
  reset: ResetMethod[];
  pcie: boolean;
  msixBar: number | null;
  bridge: boolean;
  classCode: number;
}

/**
 * The standard capability list. Without `caps`, a minimal list is inferred from the other fields
 * (PM for a pm reset, PCIe for a PCIe function, MSI-X for msix_bar); with it, the list is taken as
 * given and checked against them. Offsets left out are laid out from 0x40 in list order.
 */
function parseCaps(c: Checker, o: Obj, path: string, x: CapContext): PciCap[] {
  const caps: PciCap[] = [];
  const p = `${path}.caps`;
  if (o.caps === undefined) {
    if (x.reset.includes('pm')) caps.push({ id: 'pm', at: -1, noSoftReset: false });
    if (x.pcie) caps.push({ id: 'pcie', at: -1, type: defaultPcieType(x), version: 2, flr: x.reset.includes('flr') });
    if (x.msixBar !== null && x.bars[x.msixBar]) {
      const size = Number(x.bars[x.msixBar]!.size);
      caps.push({ id: 'msix', at: -1, vectors: 1, tableBar: x.msixBar, tableOffset: 0, pbaBar: x.msixBar, pbaOffset: size >= 0x2000 ? size / 2 : 0x800 });
    }
  } else if (!Array.isArray(o.caps)) {
    c.err(p, 'must be a list of capabilities, e.g. [ { id: pm }, { id: msi, vectors: 4 } ]');
  } else {
    o.caps.forEach((raw: unknown, i: number) => {
      const cp = `${p}[${i}]`;
      const co = c.obj(raw, cp);
      if (!co) {
        if (raw === null) c.err(cp, 'must be a mapping');
        return;
      }
      const id = co.id as PciCap['id'];
      if (typeof id !== 'string' || !(id in CAP_KEYS)) {
        c.err(`${cp}.id`, `unknown capability ${describe(co.id)} (known: ${Object.keys(CAP_KEYS).join(', ')})`);
        return;
      }
      c.known(co, cp, CAP_KEYS[id]);
      if (id !== 'raw' && caps.some((e) => e.id === id)) c.err(`${cp}.id`, `a second ${id} capability`);
      const at = co.at === undefined ? -1 : c.int(co.at, `${cp}.at`, 0x40, 0xfc);
      switch (id) {
        case 'pm':
          caps.push({ id, at, noSoftReset: c.bool(co.no_soft_reset, `${cp}.no_soft_reset`, false), ...(co.pmc === undefined ? {} : { pmc: c.int(co.pmc, `${cp}.pmc`, 0, 0xffff) }) });
          break;
        case 'msi': {
          const vectors = c.int(co.vectors, `${cp}.vectors`, 1, 32, 1);
          if (vectors & (vectors - 1)) c.err(`${cp}.vectors`, `${vectors} is not a power of two (1, 2, 4, 8, 16 or 32)`);
          caps.push({ id, at, vectors, addr64: c.bool(co.addr64, `${cp}.addr64`, true), maskable: c.bool(co.maskable, `${cp}.maskable`, false) });
          break;
        }
        case 'msix': {
          const vectors = c.int(co.vectors, `${cp}.vectors`, 1, 2048);
          const loc = (v: unknown, lp: string, dflt: { bar: number; offset: number } | null) => {
            if (v === undefined && dflt) return dflt;
            const lo = c.obj(v, lp);
            if (!lo) {
              c.err(lp, 'is required: { bar: N, offset: 0x... }');
              return { bar: 0, offset: 0 };
            }
            c.known(lo, lp, ['bar', 'offset']);
            const r = { bar: c.int(lo.bar, `${lp}.bar`, 0, 5), offset: c.int(lo.offset, `${lp}.offset`, 0, 0xfffffff8, 0) };
            if (r.offset & 7) c.err(`${lp}.offset`, `0x${r.offset.toString(16)} is not 8-byte aligned`);
            return r;
          };
          const table = loc(co.table, `${cp}.table`, x.msixBar !== null ? { bar: x.msixBar, offset: 0 } : null);
          const pbaDefault = { bar: table.bar, offset: alignUp(table.offset + vectors * 16, 0x1000) };
          const pba = loc(co.pba, `${cp}.pba`, pbaDefault);
          const fits = (l: { bar: number; offset: number }, len: number, lp: string) => {
            const b = x.bars[l.bar];
            if (!b) c.err(`${lp}.bar`, `BAR${l.bar} is not defined`);
            else if (b.type !== 'mem') c.err(`${lp}.bar`, `BAR${l.bar} is an I/O BAR (MSI-X structures live in memory BARs)`);
            else if (BigInt(l.offset + len) > b.size)
              c.err(lp, `0x${len.toString(16)} bytes at 0x${l.offset.toString(16)} do not fit in BAR${l.bar} (0x${b.size.toString(16)} bytes)`);
          };
          fits(table, vectors * 16, `${cp}.table`);
          fits(pba, Math.ceil(vectors / 64) * 8, `${cp}.pba`);
          if (table.bar === pba.bar && table.offset < pba.offset + Math.ceil(vectors / 64) * 8 && pba.offset < table.offset + vectors * 16)
            c.err(`${cp}.pba`, 'overlaps the MSI-X table');
          if (x.msixBar !== null && x.msixBar !== table.bar) c.err(`${path}.msix_bar`, `says BAR${x.msixBar} but the msix capability's table is in BAR${table.bar}`);
          caps.push({ id, at, vectors, tableBar: table.bar, tableOffset: table.offset, pbaBar: pba.bar, pbaOffset: pba.offset });
          break;
        }
        case 'pcie': {
          const type = (c.str(co.type, `${cp}.type`, defaultPcieType(x)) ?? 'endpoint') as PcieType;
          if (!(type in PCIE_TYPES)) c.err(`${cp}.type`, `unknown PCIe port type "${type}" (known: ${Object.keys(PCIE_TYPES).join(', ')})`);
          caps.push({ id, at, type, version: c.int(co.version, `${cp}.version`, 1, 2, 2), flr: c.bool(co.flr, `${cp}.flr`, x.reset.includes('flr')) });
          break;
        }
        case 'vendor': {
          const length = c.int(co.length, `${cp}.length`, 3, 0xc0, 8);
          caps.push({ id, at, length });
          break;
        }
        case 'raw':
          caps.push({ id, at, capId: c.int(co.cap, `${cp}.cap`, 0, 0xff), length: c.int(co.length, `${cp}.length`, 2, 0xc0, 4) });
          break;
      }
    });
    if (x.msixBar !== null && !caps.some((e) => e.id === 'msix')) c.err(`${path}.msix_bar`, 'is set but caps has no msix capability');
    if (x.pcie && !caps.some((e) => e.id === 'pcie')) c.err(p, 'a PCIe function (pcie: true) needs a pcie capability');
    if (!x.pcie && caps.some((e) => e.id === 'pcie')) c.err(p, 'has a pcie capability but the function is not PCIe (set pcie: true)');
  }
  if (x.reset.includes('pm') && caps.find((e) => e.id === 'pm')?.noSoftReset !== false)
    c.err(`${path}.reset`, 'a pm reset needs a pm capability without no_soft_reset');
  const exp = caps.find((e) => e.id === 'pcie');
  if (x.reset.includes('flr') && !(exp?.id === 'pcie' && exp.flr)) c.err(`${path}.reset`, 'an flr reset needs a pcie capability with flr: true');
  layout(c, caps, p, 0x40, 0x100, pciCapLength);
  return caps;
}

function defaultPcieType(x: CapContext): PcieType {
  if (!x.bridge) return 'endpoint';
  return x.classCode >> 8 === 0x0604 && x.pcie ? 'root-port' : 'pcie-pci-bridge';
}

const EXT_CAP_KEYS: Record<PciExtCap['id'], string[]> = {
  aer: ['id', 'at'],
  dsn: ['id', 'at', 'serial'],
  sriov: ['id', 'at', 'total_vfs', 'initial_vfs', 'vf_device', 'offset', 'stride', 'vf_bars', 'vf'],
  raw: ['id', 'at', 'cap', 'length'],
};

/** What an SR-IOV capability's VFs default to (the PF's IDs); null: a VF's list (no nesting). */
interface ExtCapContext {
  pf: { classCode: number; revision: number; subsystemVendor: number; subsystemDevice: number };
  bridge: boolean;
}

/**
 * An SR-IOV extended capability (a PF): TotalVFs/InitialVFs, VF Device ID, First VF Offset and
 * VF Stride, the VF BARs (memory, a power of two of at least the 4 KiB system page size), and
 * what the VFs present (their capability lists, class, revision, subsystem IDs).
 */
function parseSriov(c: Checker, co: Obj, cp: string, at: number, x: ExtCapContext): PciSriovCap {
  if (x.bridge) c.err(`${cp}.id`, 'an SR-IOV capability belongs to an endpoint, not a bridge');
  const totalVfs = c.int(co.total_vfs, `${cp}.total_vfs`, 0, 0xffff);
  const initialVfs = c.int(co.initial_vfs, `${cp}.initial_vfs`, 0, 0xffff, totalVfs);
  if (initialVfs > totalVfs) c.err(`${cp}.initial_vfs`, `${initialVfs} is above total_vfs (${totalVfs})`);
  const vfDevice = c.int(co.vf_device, `${cp}.vf_device`, 0, 0xffff);
  const offset = c.int(co.offset, `${cp}.offset`, 0, 0xffff);
  const stride = c.int(co.stride, `${cp}.stride`, 0, 0xffff, 1);
  if (totalVfs && offset === 0) c.err(`${cp}.offset`, 'must be at least 1 (the kernel rejects a First VF Offset of 0)');
  if (totalVfs > 1 && stride === 0) c.err(`${cp}.stride`, 'must be at least 1 with more than one VF (the kernel rejects a VF Stride of 0)');
  const vfBars: Array<PciVfBar | null> = [null, null, null, null, null, null];
  const bp = `${cp}.vf_bars`;
  if (co.vf_bars !== undefined) {
    if (!Array.isArray(co.vf_bars) || co.vf_bars.length > 6) c.err(bp, 'must be a list of at most 6 VF BARs (null for an unused one)');
    else
      co.vf_bars.forEach((b: unknown, j: number) => {
        if (b === null) return;
        const p = `${bp}[${j}]`;
        const bo = c.obj(b, p);
        if (!bo) return;
        c.known(bo, p, ['size', 'mem64', 'prefetch', 'addr']);
        const size = c.big(bo.size, `${p}.size`);
        if (size < 0x1000n || (size & (size - 1n)) !== 0n)
          c.err(`${p}.size`, `0x${size.toString(16)} is not a power of two of at least 0x1000 (VF BARs are multiples of the 4 KiB system page size)`);
        const mem64 = c.bool(bo.mem64, `${p}.mem64`, false);
        if (mem64 && j === 5) c.err(`${p}.mem64`, 'VF BAR5 cannot be 64-bit (it needs the next BAR)');
        const addr = bo.addr === undefined ? null : c.big(bo.addr, `${p}.addr`);
        if (addr !== null && size && addr % size !== 0n) c.err(`${p}.addr`, `0x${addr.toString(16)} is not aligned to the VF BAR size 0x${size.toString(16)}`);
        if (addr !== null && !mem64 && addr + size * BigInt(totalVfs) > 0x100000000n)
          c.err(`${p}.addr`, `the ${totalVfs} VFs' BARs from 0x${addr.toString(16)} reach above 4 GiB in a 32-bit VF BAR`);
        vfBars[j] = { size, addr, mem64, prefetch: c.bool(bo.prefetch, `${p}.prefetch`, false) };
      });
    vfBars.forEach((b, j) => {
      if (b?.mem64 && j < 5 && vfBars[j + 1]) c.err(`${bp}[${j + 1}]`, `must be null: VF BAR${j} is 64-bit and uses it`);
    });
  }
  const vp = `${cp}.vf`;
  const vo = co.vf === undefined ? {} : (c.obj(co.vf, vp) ?? {});
  c.known(vo, vp, ['class', 'revision', 'subsystem', 'interrupt_pin', 'caps', 'ext_caps']);
  let subsystemVendor = x.pf.subsystemVendor,
    subsystemDevice = x.pf.subsystemDevice;
  if (vo.subsystem !== undefined) {
    const ids = parseIdPair(c, vo.subsystem, `${vp}.subsystem`);
    if (ids) [subsystemVendor, subsystemDevice] = ids;
  }
  const classCode = c.int(vo.class, `${vp}.class`, 0, 0xffffff, x.pf.classCode);
  const barSpecs = vfBars.map((b) => (b ? { size: b.size, addr: null, type: 'mem' as const, mem64: b.mem64, prefetch: b.prefetch } : null));
  // a VF is a PCIe endpoint: without `caps`, a PCIe capability (no FLR) is inferred
  const caps = parseCaps(c, vo, vp, { bars: barSpecs, reset: [], pcie: true, msixBar: null, bridge: false, classCode });
  const extCaps = parseExtCaps(c, vo.ext_caps, `${vp}.ext_caps`, true, null);
  return {
    id: 'sriov',
    at,
    totalVfs,
    initialVfs,
    vfDevice,
    offset,
    stride,
    vfBars,
    vf: {
      caps,
      extCaps,
      classCode,
      revision: c.int(vo.revision, `${vp}.revision`, 0, 0xff, x.pf.revision),
      subsystemVendor,
      subsystemDevice,
      interruptPin: c.int(vo.interrupt_pin, `${vp}.interrupt_pin`, 0, 0xff, 0),
    },
  };
}

function parseExtCaps(c: Checker, v: unknown, p: string, pcie: boolean, x: ExtCapContext | null): PciExtCap[] {
  const caps: PciExtCap[] = [];
  if (v === undefined) return caps;
  if (!Array.isArray(v)) {
    c.err(p, 'must be a list of extended capabilities, e.g. [ { id: aer }, { id: dsn, serial: 0x1122334455667788 } ]');
    return caps;
  }
  if (!pcie && v.length) c.err(p, 'extended capabilities need a PCIe function (pcie: true)');
  v.forEach((raw: unknown, i: number) => {
    const cp = `${p}[${i}]`;
    const co = c.obj(raw, cp);
    if (!co) {
      if (raw === null) c.err(cp, 'must be a mapping');
      return;
    }
    const id = co.id as keyof typeof EXT_CAP_KEYS;
    const known = Object.keys(EXT_CAP_KEYS).filter((k) => x || k !== 'sriov');
    if (typeof id !== 'string' || !known.includes(id)) {
      const why = id === 'sriov' ? 'a VF has no SR-IOV capability of its own' : `unknown extended capability ${describe(co.id)}`;
      c.err(`${cp}.id`, `${why} (known: ${known.join(', ')})`);
      return;
    }
    c.known(co, cp, EXT_CAP_KEYS[id]);
    if (id !== 'raw' && caps.some((e) => e.id === id)) c.err(`${cp}.id`, `a second ${id} capability`);
    const at = co.at === undefined ? -1 : c.int(co.at, `${cp}.at`, 0x100, 0xffc);
    if (id === 'aer') caps.push({ id, at });
    else if (id === 'sriov') caps.push(parseSriov(c, co, cp, at, x!));
    else if (id === 'raw') caps.push({ id, at, capId: c.int(co.cap, `${cp}.cap`, 0, 0xffff), length: c.int(co.length, `${cp}.length`, 4, 0xf00, 4) });
    else caps.push({ id, at, serial: c.big(co.serial, `${cp}.serial`, 0n) });
  });
  layout(c, caps, p, 0x100, 0x1000, pciExtCapLength);
  if (caps[0] && caps[0].at !== 0x100)
    c.err(`${p}[0].at`, `0x${caps[0].at.toString(16)}: the extended list starts at 0x100 (the first capability must be there, or the kernel finds none)`);
  return caps;
}

/** Give capabilities without an offset one after the previous (dword aligned), then check overlaps. */
function layout<T extends { id: string; at: number }>(c: Checker, caps: T[], p: string, start: number, end: number, len: (x: T) => number): void {
  let next = start;
  caps.forEach((cap, i) => {
    if (cap.at < 0) cap.at = next;
    else if (cap.at & 3) c.err(`${p}[${i}].at`, `0x${cap.at.toString(16)} is not dword aligned`);
    if (cap.at + len(cap) > end) c.err(`${p}[${i}]`, `${cap.id} at 0x${cap.at.toString(16)} (0x${len(cap).toString(16)} bytes) runs past 0x${end.toString(16)}`);
    next = alignUp(cap.at + len(cap), 4);
  });
  const sorted = [...caps].sort((a, b) => a.at - b.at);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!,
      b = sorted[i]!;
    if (a.at + len(a) > b.at) c.err(p, `${a.id} at 0x${a.at.toString(16)} overlaps ${b.id} at 0x${b.at.toString(16)}`);
  }
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** kernel.cmdline: "module.param=value" words (dashes and underscores alike, as the kernel) */
function parseCmdline(c: Checker, v: unknown): KernelSpec['cmdline'] {
  const out: KernelSpec['cmdline'] = [];
  const s = c.str(v, 'kernel.cmdline', '');
  if (!s) return out;
  for (const word of s.trim().split(/\s+/)) {
    const eq = word.indexOf('=');
    const param = (eq < 0 ? word : word.slice(0, eq)).replace(/-/g, '_');
    const value = eq < 0 ? '' : word.slice(eq + 1);
    const kind = KERNEL_CMDLINE_PARAMS[param];
    if (!kind) {
      c.err('kernel.cmdline', `unknown parameter "${param}" (known: ${Object.keys(KERNEL_CMDLINE_PARAMS).join(', ')})`);
      continue;
    }
    // a bare boolean parameter means true
    const ok = kind === 'bool' ? eq < 0 || kstrtobool(value)[0] === 0 : kstrtoul(value, 0, 0xffffffffn)[0] === 0;
    if (!ok) {
      c.err('kernel.cmdline', `"${word}": ${kind === 'bool' ? 'expected a boolean (1/0, y/n, on/off)' : 'expected an unsigned 32-bit integer'}`);
      continue;
    }
    out.push({ param, value: eq < 0 ? 'Y' : value });
  }
  return out;
}

/** Parse and validate a topology from YAML or JSON text. */
export function parseTopology(text: string, source = '<topology>'): Topology {
  let raw: unknown;
  try {
    raw = source.endsWith('.json') ? JSON.parse(text) : parseYaml(text, { intAsBigInt: false });
  } catch (e) {
    throw new HostConfigError([`not valid ${source.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`], source);
  }
  return validateTopology(raw, source);
}

export function validateTopology(raw: unknown, source = '<topology>'): Topology {
  const c = new Checker();
  const top = c.obj(raw, '(top level)');
  if (!top) {
    c.err('(top level)', 'the topology must be a mapping with at least "functions"');
    throw new HostConfigError(c.problems, source);
  }
  c.known(top, '(top level)', ['name', 'description', 'kernel', 'iommu', 'functions', 'slots', 'recorded']);
  const k = c.obj(top.kernel, 'kernel') ?? {};
  c.known(k, 'kernel', ['vfio_major', 'vfio_dev_major', 'iommu_minor', 'noiommu', 'cmdline']);
  const kernel: KernelSpec = {
    vfioMajor: k.vfio_major === undefined ? 249 : k.vfio_major === null ? null : c.int(k.vfio_major, 'kernel.vfio_major', 1, 511),
    vfioDevMajor:
      k.vfio_dev_major === undefined ? 248 : k.vfio_dev_major === null ? null : c.int(k.vfio_dev_major, 'kernel.vfio_dev_major', 1, 511),
    iommuMinor: c.int(k.iommu_minor, 'kernel.iommu_minor', 0, 0xfffff, 257),
    noiommu: c.bool(k.noiommu, 'kernel.noiommu', false),
    cmdline: parseCmdline(c, k.cmdline),
  };
  const recorded = top.recorded === undefined ? null : parseRecordedHost(top.recorded, 'recorded', (p, m) => c.err(p, m));
  // a recorded machine boots with the module parameters it had (those the model knows)
  if (recorded)
    for (const [param, value] of Object.entries(recorded.moduleParams))
      if (KERNEL_CMDLINE_PARAMS[param] && !kernel.cmdline.some((x) => x.param === param)) {
        const ok = KERNEL_CMDLINE_PARAMS[param] === 'bool' ? kstrtobool(value)[0] === 0 : kstrtoul(value, 0, 0xffffffffn)[0] === 0;
        if (ok) kernel.cmdline.push({ param, value });
        else c.err(`recorded.module_params.${param}`, `"${value}" is not a valid ${KERNEL_CMDLINE_PARAMS[param]} value`);
      }
  if (kernel.vfioMajor !== null && kernel.vfioMajor === kernel.vfioDevMajor)
    c.err('kernel.vfio_dev_major', `must differ from kernel.vfio_major (${kernel.vfioMajor})`);
  const im = c.obj(top.iommu, 'iommu') ?? {};
  c.known(im, 'iommu', ['address_width', 'interrupt_remapping', 'cache_coherency', 'enforce_cache_coherency', 'reserved_regions', 'vtd_cap_reg', 'vtd_ecap_reg']);
  const iommu: IommuSpec = {
    addressWidth: c.int(im.address_width, 'iommu.address_width', 32, 64, 39),
    interruptRemapping: c.bool(im.interrupt_remapping, 'iommu.interrupt_remapping', true),
    cacheCoherency: c.bool(im.cache_coherency, 'iommu.cache_coherency', true),
    enforceCacheCoherency: c.bool(im.enforce_cache_coherency, 'iommu.enforce_cache_coherency', false),
    vtdCapReg: im.vtd_cap_reg === undefined ? null : c.big(im.vtd_cap_reg, 'iommu.vtd_cap_reg'),
    vtdEcapReg: im.vtd_ecap_reg === undefined ? null : c.big(im.vtd_ecap_reg, 'iommu.vtd_ecap_reg'),
    reservedRegions: [{ start: 0xfee00000n, end: 0xfeefffffn, type: 'msi' }],
  };
  if (im.reserved_regions !== undefined) {
    if (!Array.isArray(im.reserved_regions)) c.err('iommu.reserved_regions', 'must be a list');
    else
      iommu.reservedRegions = im.reserved_regions.map((r: unknown, i: number) => {
        const p = `iommu.reserved_regions[${i}]`;
        const o = c.obj(r, p) ?? {};
        c.known(o, p, ['start', 'end', 'type']);
        const start = c.big(o.start, `${p}.start`);
        const end = c.big(o.end, `${p}.end`);
        if (end < start) c.err(p, 'end is below start');
        const type = (c.str(o.type, `${p}.type`, 'reserved') ?? 'reserved') as IommuSpec['reservedRegions'][number]['type'];
        if (!['msi', 'direct', 'direct-relaxable', 'reserved', 'msi-sw'].includes(type)) c.err(`${p}.type`, `unknown region type "${type}"`);
        return { start, end, type };
      });
  }
  const functions: FunctionSpec[] = [];
  if (!Array.isArray(top.functions) || top.functions.length === 0) c.err('functions', 'must be a non-empty list of PCI functions');
  else
    top.functions.forEach((f: unknown, i: number) => {
      const s = parseFunction(c, f, i);
      if (s) functions.push(s);
    });
  // cross checks
  const seen = new Map<string, number>();
  functions.forEach((f, i) => {
    if (!f.bdf) return;
    const prev = seen.get(f.bdf);
    if (prev !== undefined) c.err(`functions[${i}].bdf`, `${f.bdf} is already used by functions[${prev}]`);
    seen.set(f.bdf, i);
  });
  // SR-IOV: every VF a PF can enable sits on the PF's bus at a routing ID nothing else uses
  const rids = new Map<string, string>();
  const ridKey = (dom: number, bus: number, devfn: number) => `${dom}:${bus}:${devfn}`;
  functions.forEach((f) => rids.set(ridKey(f.domain, f.bus, (f.dev << 3) | f.fn), f.bdf));
  functions.forEach((f, i) => {
    const j = f.extCaps.findIndex((x) => x.id === 'sriov');
    const s = f.extCaps[j];
    if (!s || s.id !== 'sriov' || !f.bdf || !s.offset || (s.totalVfs > 1 && !s.stride)) return;
    const p = `functions[${i}].ext_caps[${j}]`;
    for (let n = 0; n < s.totalVfs; n++) {
      const devfn = ((f.dev << 3) | f.fn) + s.offset + s.stride * n;
      const at = `${f.bdf.slice(0, 8)}${hex2((devfn >> 3) & 0x1f)}.${devfn & 7}`;
      if (devfn > 0xff) {
        c.err(p, `VF ${n} would be at routing ID 0x${devfn.toString(16)}, past bus ${hex2(f.bus)} (VFs on another bus are not modelled): lower total_vfs, offset or stride`);
        break;
      }
      const other = rids.get(ridKey(f.domain, f.bus, devfn));
      if (other) {
        c.err(p, `VF ${n} would be ${at}, which is ${other}`);
        break;
      }
      rids.set(ridKey(f.domain, f.bus, devfn), `VF ${n} of ${f.bdf}`);
    }
  });
  const bridgeFor = new Map<string, FunctionSpec>();
  functions.forEach((f, i) => {
    if (f.secondaryBus === null) return;
    const key = `${f.domain}:${f.secondaryBus}`;
    if (bridgeFor.has(key)) c.err(`functions[${i}].bridge.secondary`, `bus ${hex2(f.secondaryBus)} is already behind ${bridgeFor.get(key)!.bdf}`);
    if (f.secondaryBus <= f.bus) c.err(`functions[${i}].bridge.secondary`, `must be above the bridge's own bus ${hex2(f.bus)}`);
    bridgeFor.set(key, f);
  });
  functions.forEach((f, i) => {
    if (f.bus !== 0 && !bridgeFor.has(`${f.domain}:${f.bus}`))
      c.err(`functions[${i}].bdf`, `bus ${hex2(f.bus)} has no bridge leading to it (add a function with bridge.secondary: ${f.bus})`);
  });
  const names = new Map<string, number>();
  functions.forEach((f, i) => {
    if (!f.name) return;
    if (names.has(f.name)) c.err(`functions[${i}].name`, `"${f.name}" is already used by functions[${names.get(f.name)}]`);
    names.set(f.name, i);
  });
  const slots: SlotSpec[] = [];
  if (top.slots !== undefined) {
    if (!Array.isArray(top.slots)) c.err('slots', 'must be a list');
    else
      top.slots.forEach((s: unknown, i: number) => {
        const p = `slots[${i}]`;
        const o = c.obj(s, p) ?? {};
        c.known(o, p, ['domain', 'bus', 'slot', 'reset']);
        const spec = {
          domain: c.int(o.domain, `${p}.domain`, 0, 0xffff, 0),
          bus: c.int(o.bus, `${p}.bus`, 1, 255),
          slot: c.int(o.slot, `${p}.slot`, 0, 31),
          reset: c.bool(o.reset, `${p}.reset`, true),
        };
        if (!bridgeFor.has(`${spec.domain}:${spec.bus}`)) c.err(`${p}.bus`, `bus ${hex2(spec.bus)} has no bridge (hotplug slots sit below a bridge)`);
        slots.push(spec);
      });
  }
  if (c.problems.length) throw new HostConfigError(c.problems, source);
  return {
    name: c.str(top.name, 'name', 'unnamed') ?? 'unnamed',
    description: c.str(top.description, 'description', '') ?? '',
    kernel,
    iommu,
    functions,
    slots,
    recorded,
  };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
