// The `recorded:` sections of a host recorded by vfiosim-record (record/vfiosim-record.c): what the
// machine showed that the model cannot derive from a topology's fields (the config bytes, the VFIO
// answers, the results of the probe sequences). A function's section holds its physical config
// space (booted as the function's power-on contents) and what VFIO reported for it; the host's
// holds the kernel's identity, module parameters, IOMMU groups and the probe runs. `vfiosim verify`
// compares all of it with the simulator (src/record/verify.ts). record/FORMAT.md documents it.
//
// The parsers here validate shapes and report problems with the field's path, as topology.ts does
// for the rest of the file; the contents are compared, not interpreted.

import type { StepResult, ProbeRun } from './probes.js';

/** What a function's `recorded:` section holds. */
export interface RecordedFunction {
  vfioIndex: number | null;
  /** sysfs reset_method as read */
  resetMethod: string | null;
  /** the physical config space (sysfs `config` read as root), size 64..4096 */
  configRaw: Uint8Array | null;
  /** how VFIO was reached (null: not captured) */
  via: 'cdev' | 'group' | null;
  /**
   * everything else in the section, as parsed from YAML (config through vfio-pci, device_info,
   * regions, irqs, hot_reset, hot_reset_group, type1, iommufd, errors): verify compares it with
   * the same capture made on the simulator
   */
  capture: Record<string, unknown>;
}

/** What the top-level `recorded:` section holds. */
export interface RecordedHost {
  recorder: number;
  /** the functions recorded through VFIO, in capture (and probe) order; null: not said */
  selected: string[] | null;
  uname: { release: string; version: string; machine: string } | null;
  /** module.param -> value as sysfs showed it */
  moduleParams: Record<string, string>;
  iommuGroups: Array<{ id: number; type: string | null; devices: string[]; reservedRegions: Array<{ start: string; end: string; type: string }> }>;
  probes: RecordedProbes | null;
  /** the section as parsed (chrdevs, misc, ...) */
  raw: Record<string, unknown>;
}

export interface RecordedProbes {
  format: number;
  firstFreeFd: number;
  /** the probe file the recorder ran, one entry per line */
  source: string[];
  runs: ProbeRun[];
}

export const FUNCTION_RECORDED_KEYS = [
  'vfio_index', 'reset_method', 'config_raw', 'via', 'config', 'config_errors', 'device_info', 'regions', 'irqs',
  'hot_reset', 'hot_reset_group', 'type1', 'iommufd', 'errors',
];
export const HOST_RECORDED_KEYS = ['recorder', 'selected', 'uname', 'chrdevs', 'misc', 'module_params', 'iommu_groups', 'probes'];
const STEP_KEYS = ['line', 'ret', 'errno', 'out', 'out_zeros', 'error'];

type Obj = Record<string, unknown>;
/** report a problem at a path */
export type Report = (path: string, msg: string) => void;

function describe(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function mapping(v: unknown, path: string, err: Report): Obj | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    err(path, `must be a mapping, got ${describe(v)}`);
    return null;
  }
  return v as Obj;
}

function known(o: Obj, path: string, keys: string[], err: Report): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) err(`${path}.${k}`, `unknown field (known: ${keys.join(', ')})`);
}

function int(v: unknown, path: string, err: Report, min: number, max: number): number | null {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    err(path, `must be an integer, got ${describe(v)}`);
    return null;
  }
  if (v < min || v > max) {
    err(path, `${v} is out of range ${min}..${max}`);
    return null;
  }
  return v;
}

function str(v: unknown, path: string, err: Report): string | null {
  if (typeof v !== 'string') {
    err(path, `must be a string, got ${describe(v)}`);
    return null;
  }
  return v;
}

function hexString(v: unknown, path: string, err: Report): string | null {
  const s = str(v, path, err);
  if (s === null) return null;
  if (s.length % 2 || !/^[0-9a-f]*$/.test(s)) {
    err(path, `must be lower-case hex bytes ("0a1b..."), got ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + '...' : s)}`);
    return null;
  }
  return s;
}

/**
 * A config space as the recorder writes it: `{ size, rows: { "OFF": "b0 b1 ... b15" } }` with the
 * all-zero rows left out.
 */
export function parseConfigRows(v: unknown, path: string, err: Report): Uint8Array | null {
  const o = mapping(v, path, err);
  if (!o) return null;
  known(o, path, ['size', 'rows'], err);
  const size = int(o.size, `${path}.size`, err, 0, 4096);
  if (size === null) return null;
  if (size % 4) {
    err(`${path}.size`, `${size} is not a multiple of 4`);
    return null;
  }
  const bytes = new Uint8Array(size);
  if (o.rows === undefined || o.rows === null) return bytes;
  const rows = mapping(o.rows, `${path}.rows`, err);
  if (!rows) return null;
  let ok = true;
  for (const [k, val] of Object.entries(rows)) {
    const rp = `${path}.rows."${k}"`;
    if (!/^[0-9a-f]{3}$/.test(k) || parseInt(k, 16) % 16 || parseInt(k, 16) >= size) {
      err(rp, `row offsets are three hex digits, a multiple of 0x10 below the size 0x${size.toString(16)}`);
      ok = false;
      continue;
    }
    const off = parseInt(k, 16);
    const want = Math.min(16, size - off);
    const parts = typeof val === 'string' ? val.split(' ') : [];
    if (parts.length !== want || !parts.every((p) => /^[0-9a-f]{2}$/.test(p))) {
      err(rp, `must be ${want} hex bytes separated by spaces ("86 80 d3 10 ..."), got ${describe(val)}`);
      ok = false;
      continue;
    }
    parts.forEach((p, i) => (bytes[off + i] = parseInt(p, 16)));
  }
  return ok ? bytes : null;
}

/** The recorder's rows form of a config space (all-zero rows left out). */
export function configRows(b: Uint8Array): { size: number; rows: Record<string, string> } {
  const rows: Record<string, string> = {};
  for (let o = 0; o < b.length; o += 16) {
    const row = b.subarray(o, Math.min(o + 16, b.length));
    if (row.some((x) => x !== 0)) rows[o.toString(16).padStart(3, '0')] = [...row].map((x) => x.toString(16).padStart(2, '0')).join(' ');
  }
  return { size: b.length, rows };
}

/** Parse and check a function's `recorded:` section. */
export function parseRecordedFunction(v: unknown, path: string, err: Report): RecordedFunction | null {
  const o = mapping(v, path, err);
  if (!o) return null;
  known(o, path, FUNCTION_RECORDED_KEYS, err);
  const via = o.via === undefined ? null : str(o.via, `${path}.via`, err);
  if (via !== null && via !== 'cdev' && via !== 'group') err(`${path}.via`, `must be cdev or group, got "${via}"`);
  const configRaw = o.config_raw === undefined ? null : parseConfigRows(o.config_raw, `${path}.config_raw`, err);
  if (configRaw && configRaw.length < 64) err(`${path}.config_raw.size`, `${configRaw.length} is below the 64-byte header`);
  if (o.config !== undefined) parseConfigRows(o.config, `${path}.config`, err);
  for (const k of ['device_info', 'hot_reset', 'hot_reset_group', 'type1', 'iommufd'])
    if (o[k] !== undefined) mapping(o[k], `${path}.${k}`, err);
  for (const k of ['regions', 'irqs'])
    if (o[k] !== undefined) {
      if (!Array.isArray(o[k])) err(`${path}.${k}`, `must be a list, got ${describe(o[k])}`);
      else (o[k] as unknown[]).forEach((e, i) => mapping(e, `${path}.${k}[${i}]`, err));
    }
  const capture: Obj = {};
  for (const [k, val] of Object.entries(o)) if (!['vfio_index', 'reset_method', 'config_raw'].includes(k)) capture[k] = val;
  return {
    vfioIndex: o.vfio_index === undefined ? null : int(o.vfio_index, `${path}.vfio_index`, err, 0, 0xffff),
    resetMethod: o.reset_method === undefined ? null : str(o.reset_method, `${path}.reset_method`, err),
    configRaw,
    via: via === 'cdev' || via === 'group' ? via : null,
    capture,
  };
}

function parseStep(v: unknown, path: string, err: Report): StepResult | null {
  const o = mapping(v, path, err);
  if (!o) return null;
  known(o, path, STEP_KEYS, err);
  const line = int(o.line, `${path}.line`, err, 1, 1 << 20);
  if (line === null) return null;
  const s: StepResult = { line };
  if (o.error !== undefined) {
    const e = str(o.error, `${path}.error`, err);
    if (e !== null) s.error = e;
    return s;
  }
  const ret = int(o.ret, `${path}.ret`, err, -(2 ** 53), 2 ** 53);
  if (ret !== null) s.ret = ret;
  if (o.errno !== undefined) {
    const e = str(o.errno, `${path}.errno`, err);
    if (e !== null && !/^E[A-Z0-9]+$|^E#[0-9]+$/.test(e)) err(`${path}.errno`, `"${e}" is not an errno name`);
    if (e !== null) s.errno = e;
  }
  if (o.out !== undefined) {
    const h = hexString(o.out, `${path}.out`, err);
    if (h !== null) s.out = h;
  }
  if (o.out_zeros !== undefined) {
    const z = int(o.out_zeros, `${path}.out_zeros`, err, 1, 1 << 20);
    if (z !== null) s.outZeros = z;
    if (o.out === undefined) err(`${path}.out_zeros`, 'needs out');
  }
  return s;
}

function parseProbesSection(v: unknown, path: string, err: Report): RecordedProbes | null {
  const o = mapping(v, path, err);
  if (!o) return null;
  known(o, path, ['format', 'first_free_fd', 'source', 'runs'], err);
  const format = int(o.format, `${path}.format`, err, 0, 1000);
  const firstFreeFd = int(o.first_free_fd, `${path}.first_free_fd`, err, 0, 1 << 20);
  const source: string[] = [];
  if (!Array.isArray(o.source)) err(`${path}.source`, `must be the probe file's lines (a list of strings), got ${describe(o.source)}`);
  else
    o.source.forEach((l: unknown, i: number) => {
      const s = str(l, `${path}.source[${i}]`, err);
      if (s !== null) source.push(s);
    });
  const runs: ProbeRun[] = [];
  if (!Array.isArray(o.runs)) err(`${path}.runs`, `must be a list, got ${describe(o.runs)}`);
  else
    o.runs.forEach((r: unknown, i: number) => {
      const rp = `${path}.runs[${i}]`;
      const ro = mapping(r, rp, err);
      if (!ro) return;
      known(ro, rp, ['seq', 'bdf', 'cdev', 'groupdev', 'skipped', 'steps'], err);
      const run: ProbeRun = {
        seq: str(ro.seq, `${rp}.seq`, err) ?? '',
        bdf: str(ro.bdf, `${rp}.bdf`, err) ?? '',
        cdev: str(ro.cdev, `${rp}.cdev`, err) ?? '',
        groupdev: str(ro.groupdev, `${rp}.groupdev`, err) ?? '',
      };
      if (ro.skipped !== undefined) {
        const s = str(ro.skipped, `${rp}.skipped`, err);
        if (s !== null) run.skipped = s;
        if (ro.steps !== undefined) err(rp, 'a skipped run has no steps');
      } else if (!Array.isArray(ro.steps)) err(`${rp}.steps`, `must be a list (or the run "skipped: WHY"), got ${describe(ro.steps)}`);
      else run.steps = ro.steps.map((s: unknown, j: number) => parseStep(s, `${rp}.steps[${j}]`, err)).filter((s): s is StepResult => s !== null);
      runs.push(run);
    });
  if (format === null || firstFreeFd === null) return null;
  return { format, firstFreeFd, source, runs };
}

/** Parse and check the top-level `recorded:` section. */
export function parseRecordedHost(v: unknown, path: string, err: Report): RecordedHost | null {
  const o = mapping(v, path, err);
  if (!o) return null;
  known(o, path, HOST_RECORDED_KEYS, err);
  const recorder = int(o.recorder, `${path}.recorder`, err, 1, 1000) ?? 1;
  let selected: string[] | null = null;
  if (o.selected !== undefined) {
    if (!Array.isArray(o.selected)) err(`${path}.selected`, `must be a list of BDFs, got ${describe(o.selected)}`);
    else selected = o.selected.map((b: unknown, i: number) => str(b, `${path}.selected[${i}]`, err) ?? '');
  }
  let uname: RecordedHost['uname'] = null;
  if (o.uname !== undefined) {
    const u = mapping(o.uname, `${path}.uname`, err);
    if (u) uname = { release: String(u.release ?? ''), version: String(u.version ?? ''), machine: String(u.machine ?? '') };
  }
  const moduleParams: Record<string, string> = {};
  if (o.module_params !== undefined) {
    const m = mapping(o.module_params, `${path}.module_params`, err);
    if (m)
      for (const [k, val] of Object.entries(m)) {
        if (!/^[a-z0-9_]+\.[a-z0-9_]+$/.test(k)) err(`${path}.module_params.${k}`, 'is not module.parameter');
        else if (typeof val === 'string') moduleParams[k] = val;
        else err(`${path}.module_params.${k}`, `must be a string, got ${describe(val)}`);
      }
  }
  const iommuGroups: RecordedHost['iommuGroups'] = [];
  if (o.iommu_groups !== undefined) {
    if (!Array.isArray(o.iommu_groups)) err(`${path}.iommu_groups`, `must be a list, got ${describe(o.iommu_groups)}`);
    else
      o.iommu_groups.forEach((g: unknown, i: number) => {
        const gp = `${path}.iommu_groups[${i}]`;
        const go = mapping(g, gp, err);
        if (!go) return;
        known(go, gp, ['id', 'type', 'devices', 'reserved_regions'], err);
        const id = int(go.id, `${gp}.id`, err, 0, 0xfffff);
        const devices = Array.isArray(go.devices) ? go.devices.map((d: unknown, j: number) => str(d, `${gp}.devices[${j}]`, err) ?? '') : [];
        if (!Array.isArray(go.devices)) err(`${gp}.devices`, 'must be a list of BDFs');
        const rr: RecordedHost['iommuGroups'][number]['reservedRegions'] = [];
        if (go.reserved_regions !== undefined) {
          if (!Array.isArray(go.reserved_regions)) err(`${gp}.reserved_regions`, 'must be a list');
          else
            go.reserved_regions.forEach((r: unknown, j: number) => {
              const ro = mapping(r, `${gp}.reserved_regions[${j}]`, err);
              if (ro) rr.push({ start: String(ro.start), end: String(ro.end), type: String(ro.type) });
            });
        }
        if (id !== null) iommuGroups.push({ id, type: go.type === undefined ? null : str(go.type, `${gp}.type`, err), devices, reservedRegions: rr });
      });
  }
  const probes = o.probes === undefined ? null : parseProbesSection(o.probes, `${path}.probes`, err);
  return { recorder, selected, uname, moduleParams, iommuGroups, probes, raw: o };
}
