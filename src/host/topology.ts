// The host topology: a declarative description (YAML or JSON) of the PCI functions, IOMMU groups,
// reset domains and driver bindings of a simulated machine, validated with messages that name the
// field and the problem.

import { parse as parseYaml } from 'yaml';
import type { ResetMethod } from '../drivers/pci/pci.js';

export interface BarSpec {
  size: bigint;
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
  /** which BAR holds the MSI-X table */
  msixBar: number | null;
  /** extra device-model properties, passed through (config space, capabilities, ...) */
  extra: Record<string, unknown>;
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
}

export interface KernelSpec {
  vfioMajor: number | null;
  vfioDevMajor: number | null;
  iommuMinor: number;
  noiommu: boolean;
}

export interface Topology {
  name: string;
  description: string;
  kernel: KernelSpec;
  iommu: IommuSpec;
  functions: FunctionSpec[];
  slots: SlotSpec[];
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
      this.err(path, `must be an unsigned 64-bit integer, got ${describe(v)}`);
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
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : null;
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
  'driver', 'reset', 'no_bus_reset', 'bars', 'rom', 'msix_bar', 'model',
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
        c.known(bo, bp, ['size', 'type', 'mem64', 'prefetch']);
        const size = c.big(bo.size, `${bp}.size`);
        if (size && (size & (size - 1n)) !== 0n) c.err(`${bp}.size`, `0x${size.toString(16)} is not a power of two`);
        const type = (c.str(bo.type, `${bp}.type`, 'mem') ?? 'mem') as 'mem' | 'io';
        if (type !== 'mem' && type !== 'io') c.err(`${bp}.type`, `must be mem or io, got "${type}"`);
        const mem64 = c.bool(bo.mem64, `${bp}.mem64`, false);
        if (mem64 && j === 5) c.err(`${bp}.mem64`, 'BAR5 cannot be 64-bit (it needs the next BAR)');
        bars[j] = { size, type, mem64, prefetch: c.bool(bo.prefetch, `${bp}.prefetch`, false) };
      });
    bars.forEach((b, j) => {
      if (b?.mem64 && j < 5 && bars[j + 1]) c.err(`${path}.bars[${j + 1}]`, `must be null: BAR${j} is 64-bit and uses it`);
    });
  }
  const rom = o.rom === undefined ? 0n : c.big(o.rom, `${path}.rom`);
  const msixBar = o.msix_bar === undefined || o.msix_bar === null ? null : c.int(o.msix_bar, `${path}.msix_bar`, 0, 5);
  if (msixBar !== null && !bars[msixBar]) c.err(`${path}.msix_bar`, `BAR${msixBar} is not defined`);
  const extra = o.model === undefined ? {} : (c.obj(o.model, `${path}.model`) ?? {});
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
    revision: c.int(o.revision, `${path}.revision`, 0, 0xff, 0),
    classCode,
    secondaryBus,
    pcie: c.bool(o.pcie, `${path}.pcie`, false),
    iommuGroup,
    driver,
    reset,
    noBusReset: c.bool(o.no_bus_reset, `${path}.no_bus_reset`, false),
    bars,
    rom,
    msixBar,
    extra,
  };
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
  c.known(top, '(top level)', ['name', 'description', 'kernel', 'iommu', 'functions', 'slots']);
  const k = c.obj(top.kernel, 'kernel') ?? {};
  c.known(k, 'kernel', ['vfio_major', 'vfio_dev_major', 'iommu_minor', 'noiommu']);
  const kernel: KernelSpec = {
    vfioMajor: k.vfio_major === undefined ? 249 : k.vfio_major === null ? null : c.int(k.vfio_major, 'kernel.vfio_major', 1, 511),
    vfioDevMajor:
      k.vfio_dev_major === undefined ? 248 : k.vfio_dev_major === null ? null : c.int(k.vfio_dev_major, 'kernel.vfio_dev_major', 1, 511),
    iommuMinor: c.int(k.iommu_minor, 'kernel.iommu_minor', 0, 0xfffff, 257),
    noiommu: c.bool(k.noiommu, 'kernel.noiommu', false),
  };
  if (kernel.vfioMajor !== null && kernel.vfioMajor === kernel.vfioDevMajor)
    c.err('kernel.vfio_dev_major', `must differ from kernel.vfio_major (${kernel.vfioMajor})`);
  const im = c.obj(top.iommu, 'iommu') ?? {};
  c.known(im, 'iommu', ['address_width', 'interrupt_remapping', 'cache_coherency', 'enforce_cache_coherency', 'reserved_regions']);
  const iommu: IommuSpec = {
    addressWidth: c.int(im.address_width, 'iommu.address_width', 32, 64, 39),
    interruptRemapping: c.bool(im.interrupt_remapping, 'iommu.interrupt_remapping', true),
    cacheCoherency: c.bool(im.cache_coherency, 'iommu.cache_coherency', true),
    enforceCacheCoherency: c.bool(im.enforce_cache_coherency, 'iommu.enforce_cache_coherency', false),
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
  };
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
