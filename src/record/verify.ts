// `vfiosim verify FILE`: boot a recorded host and check the simulator against everything the
// recording says the real machine answered:
//   * each captured function: the config space read through vfio-pci, GET_INFO, every region's
//     and IRQ index's info (with capability chains), hot-reset info on both paths, type1 GET_INFO
//     with its capability chain, iommufd IOVA ranges before and after attach, IOMMU_GET_HW_INFO
//     (src/record/capture.ts makes the same calls in the same order);
//   * the IOMMU groups (members, type, reserved regions) and the module parameters in sysfs;
//   * every step of every probe run (record/probes.txt as stored in the recording): return value,
//     errno and the bytes written back.
// Every difference names where it is, what the kernel answered and what the simulator answered.

import { Host } from '../host/host.js';
import type { Topology } from '../host/topology.js';
import { Process } from '../api/process.js';
import { PROBE_FORMAT, ProbeSyntaxError, ProbeTarget, StepResult, parseProbes, probeTargets, runProbes } from './probes.js';
import { parseConfigRows } from './format.js';
import { captureFunctions } from './capture.js';

export interface Difference {
  /** capture: a function's recorded VFIO answers; host: groups and parameters; probe: a probe step */
  kind: 'capture' | 'host' | 'probe' | 'model';
  /** where: "0000:01:00.0 regions[3].flags", "probe device-info on 0000:01:00.1, line 317" */
  where: string;
  /** the probe step's source text */
  step?: string;
  kernel: string;
  vfiosim: string;
}

export interface VerifyReport {
  host: string;
  kernelRelease: string | null;
  recorder: number;
  /** functions whose VFIO captures were compared */
  functions: number;
  /** leaf values compared in the captures, groups and parameters */
  fields: number;
  probeRuns: number;
  probeSteps: number;
  differences: Difference[];
}

export class VerifyError extends Error {}

type Obj = Record<string, unknown>;

function show(v: unknown): string {
  if (v === undefined) return '(absent)';
  return typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v);
}

/** Compare two parsed values, reporting each differing leaf by path; returns the leaves compared. */
function compare(path: string, kernel: unknown, ours: unknown, out: (where: string, k: string, v: string) => void): number {
  const isObj = (x: unknown): x is Obj => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (Array.isArray(kernel) && Array.isArray(ours)) {
    let n = 0;
    for (let i = 0; i < Math.max(kernel.length, ours.length); i++) n += compare(`${path}[${i}]`, kernel[i], ours[i], out);
    return n;
  }
  if (isObj(kernel) && isObj(ours)) {
    let n = 0;
    for (const k of new Set([...Object.keys(kernel), ...Object.keys(ours)])) n += compare(path ? `${path}.${k}` : k, kernel[k], ours[k], out);
    return n;
  }
  if (JSON.stringify(kernel) !== JSON.stringify(ours)) out(path, show(kernel), show(ours));
  return 1;
}

/** "0x00000000fee00000" or "fee00000" -> "0xfee00000" (anything else as it is) */
function hexNorm(s: string | undefined): string {
  const m = /^(0x)?([0-9a-fA-F]+)$/.exec(s ?? '');
  return m ? '0x' + BigInt('0x' + m[2]).toString(16) : String(s);
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** config spaces: one difference per differing dword */
function compareConfig(where: string, kernel: Uint8Array, ours: Uint8Array, out: (where: string, k: string, v: string) => void): number {
  if (kernel.length !== ours.length) {
    out(`${where}.size`, String(kernel.length), String(ours.length));
    return 1;
  }
  for (let o = 0; o < kernel.length; o += 4) {
    const k = kernel.subarray(o, o + 4),
      v = ours.subarray(o, o + 4);
    if (k.some((b, i) => b !== v[i])) out(`${where} @0x${o.toString(16).padStart(3, '0')}`, [...k].map(hex2).join(' '), [...v].map(hex2).join(' '));
  }
  return kernel.length;
}

function stepText(s: StepResult | undefined): string {
  if (!s) return '(no step)';
  if (s.error !== undefined) return `not run: ${s.error}`;
  let t = `= ${s.ret}${s.errno ? ' ' + s.errno : ''}`;
  if (s.out !== undefined) {
    const shown = s.out.length > 128 ? `${s.out.slice(0, 128)}... (${s.out.length / 2} bytes)` : s.out || '(none)';
    t += `, bytes ${shown}${s.outZeros ? ` + ${s.outZeros} zero bytes` : ''}`;
  }
  return t;
}

/** the bytes a step recorded, zero tail included (null: none) */
function stepBytes(s: StepResult): Buffer | null {
  return s.out === undefined ? null : Buffer.concat([Buffer.from(s.out, 'hex'), Buffer.alloc(s.outZeros ?? 0)]);
}

/** same result: the bytes compare whatever way their zero tail was written */
function sameStep(a: StepResult, b: StepResult): boolean {
  if (a.ret !== b.ret || a.errno !== b.errno || a.error !== b.error) return false;
  const x = stepBytes(a),
    y = stepBytes(b);
  return x === null || y === null ? x === y : x.equals(y);
}

/** the first byte at which two recorded byte strings differ */
function firstByteDiff(a: StepResult, b: StepResult): string {
  const x = stepBytes(a),
    y = stepBytes(b);
  if (!x || !y) return '';
  for (let i = 0; i < Math.max(x.length, y.length); i++)
    if (x[i] !== y[i]) return ` (first difference at byte ${i}: kernel ${x[i] === undefined ? '-' : hex2(x[i]!)}, vfiosim ${y[i] === undefined ? '-' : hex2(y[i]!)})`;
  return '';
}

/**
 * Verify a recorded topology against the simulator. Throws VerifyError when the file is not a
 * recording or its probes cannot be run (a bad or newer probe format).
 */
export function verifyRecording(t: Topology): VerifyReport {
  const rec = t.recorded;
  if (!rec) throw new VerifyError(`${t.name}: not a recording (no top-level "recorded:" section; make one with "vfiosim record")`);
  const host = new Host(t);
  const diffs: Difference[] = [];
  let fields = 0;
  const byBdf = new Map(t.functions.map((f) => [f.bdf, f]));

  // the functions the recorder captured and probed, in its order
  const all = probeTargets(host);
  let targets: ProbeTarget[] = all;
  if (rec.selected) {
    targets = [];
    for (const b of rec.selected) {
      const x = all.find((a) => a.bdf === b.toLowerCase());
      if (x) targets.push(x);
      else diffs.push({ kind: 'host', where: `${b}`, kernel: 'recorded through VFIO (bound to vfio-pci)', vfiosim: 'not a vfio-pci device' });
    }
  }

  // 1. the captures
  const caps = captureFunctions(host, targets);
  let functions = 0;
  for (const tg of targets) {
    const recd = byBdf.get(tg.bdf)?.recorded;
    const ours = caps.get(tg.bdf)!;
    if (!recd) {
      diffs.push({ kind: 'capture', where: tg.bdf, kernel: '(no recorded section)', vfiosim: ours.via ? `captured via ${String(ours.via)}` : 'not captured' });
      continue;
    }
    functions++;
    const add = (where: string, k: string, v: string) => diffs.push({ kind: 'capture', where: `${tg.bdf} ${where}`, kernel: k, vfiosim: v });
    const kernelCap = { ...recd.capture };
    const oursCap = { ...ours };
    if (kernelCap.config !== undefined || oursCap.config !== undefined) {
      const kc = kernelCap.config === undefined ? new Uint8Array(0) : parseConfigRows(kernelCap.config, 'config', () => {})!;
      const oc = oursCap.config === undefined ? new Uint8Array(0) : parseConfigRows(oursCap.config, 'config', () => {})!;
      fields += compareConfig('config', kc, oc, add);
      delete kernelCap.config;
      delete oursCap.config;
    }
    fields += compare('', kernelCap, oursCap, add);
    if (recd.vfioIndex !== null && recd.vfioIndex !== tg.index) add('vfio_index', String(recd.vfioIndex), String(tg.index));
    fields++;
  }

  // 2. IOMMU groups and module parameters, as sysfs shows them
  const p = new Process(host, { name: 'vfiosim-verify' });
  for (const g of rec.iommuGroups) {
    const dir = `/sys/kernel/iommu_groups/${g.id}`;
    const add = (where: string, k: string, v: string) => diffs.push({ kind: 'host', where: `iommu group ${g.id} ${where}`, kernel: k, vfiosim: v });
    const devices = p.readdir(`${dir}/devices`);
    if (!devices) {
      add('', 'exists', 'no such group');
      fields++;
      continue;
    }
    fields += compare('devices', [...g.devices].sort(), devices.filter((d) => d !== '.' && d !== '..').sort(), add);
    if (g.type !== null) fields += compare('type', g.type, p.readFile(`${dir}/type`)?.trim(), add);
    const rr = (p.readFile(`${dir}/reserved_regions`) ?? '')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => {
        const [s, e, ty] = l.trim().split(/\s+/);
        return { start: hexNorm(s), end: hexNorm(e), type: ty ?? '' };
      });
    const norm = (x: { start: string; end: string; type: string }) => ({ start: hexNorm(x.start), end: hexNorm(x.end), type: x.type });
    fields += compare('reserved_regions', g.reservedRegions.map(norm), rr, add);
  }
  for (const [param, value] of Object.entries(rec.moduleParams)) {
    const [mod, name] = param.split('.');
    const v = p.readFile(`/sys/module/${mod}/parameters/${name}`);
    fields++;
    if (v === null) diffs.push({ kind: 'host', where: `module parameter ${param}`, kernel: JSON.stringify(value), vfiosim: '(no such parameter)' });
    else if (v.trim() !== value) diffs.push({ kind: 'host', where: `module parameter ${param}`, kernel: JSON.stringify(value), vfiosim: JSON.stringify(v.trim()) });
  }
  p.exit(0);

  // 3. the probe runs
  let probeRuns = 0,
    probeSteps = 0;
  if (rec.probes) {
    const pr = rec.probes;
    if (pr.format !== PROBE_FORMAT) throw new VerifyError(`recorded.probes.format ${pr.format}: this vfiosim runs probe format ${PROBE_FORMAT}`);
    let pf;
    try {
      pf = parseProbes(pr.source.join('\n') + '\n', 'recorded.probes.source');
    } catch (e) {
      if (e instanceof ProbeSyntaxError) throw new VerifyError(`the recording's probe source does not parse: ${e.message}`);
      throw e;
    }
    if (pr.firstFreeFd !== 3)
      diffs.push({ kind: 'host', where: 'probes first_free_fd', kernel: `${pr.firstFreeFd} (the recorder ran with extra fds open)`, vfiosim: '3' });
    const ours = runProbes(host, pf, { targets });
    const src = (line: number) => pr.source[line - 1]?.replace(/#.*$/, '').trim() ?? '';
    for (let i = 0; i < Math.max(ours.length, pr.runs.length); i++) {
      const k = pr.runs[i],
        v = ours[i];
      if (!k || !v || k.seq !== v.seq || k.bdf !== v.bdf) {
        diffs.push({
          kind: 'probe',
          where: `probe run #${i + 1}`,
          kernel: k ? `${k.seq} on ${k.bdf}` : '(no run)',
          vfiosim: v ? `${v.seq} on ${v.bdf}` : '(no run)',
        });
        continue;
      }
      probeRuns++;
      const where = `probe ${k.seq} on ${k.bdf}`;
      if (k.skipped !== undefined || v.skipped !== undefined) {
        if (k.skipped !== v.skipped) diffs.push({ kind: 'probe', where, kernel: k.skipped ? `skipped: ${k.skipped}` : 'ran', vfiosim: v.skipped ? `skipped: ${v.skipped}` : 'ran' });
        continue;
      }
      const ks = k.steps ?? [],
        vs = v.steps ?? [];
      for (let j = 0; j < Math.max(ks.length, vs.length); j++) {
        const a = ks[j],
          b = vs[j];
        probeSteps++;
        if (a && b && a.line === b.line && sameStep(a, b)) continue;
        const line = a?.line ?? b!.line;
        diffs.push({ kind: 'probe', where: `${where}, line ${line}`, step: src(line), kernel: stepText(a), vfiosim: stepText(b) + (a && b ? firstByteDiff(a, b) : '') });
      }
    }
  }
  for (const w of host.kernel.warnings) diffs.push({ kind: 'model', where: 'kernel warning', kernel: '(none)', vfiosim: w.message });
  return {
    host: t.name,
    kernelRelease: rec.uname?.release ?? null,
    recorder: rec.recorder,
    functions,
    fields,
    probeRuns,
    probeSteps,
    differences: diffs,
  };
}

/** The report as text, one block per difference. */
export function formatVerifyReport(r: VerifyReport): string {
  const lines: string[] = [];
  lines.push(`host ${r.host}${r.kernelRelease ? ` (recorded on Linux ${r.kernelRelease} by vfiosim-record ${r.recorder})` : ''}`);
  const count = (k: Difference['kind'][]) => r.differences.filter((d) => k.includes(d.kind)).length;
  const says = (n: number) => (n ? `${n} difference${n === 1 ? '' : 's'}` : 'no difference');
  lines.push(`  captures: ${r.functions} function${r.functions === 1 ? '' : 's'}, groups and parameters: ${r.fields} values compared: ${says(count(['capture', 'host']))}`);
  lines.push(`  probes: ${r.probeRuns} runs, ${r.probeSteps} steps: ${says(count(['probe']))}`);
  if (count(['model'])) lines.push(`  kernel model warnings: ${count(['model'])}`);
  for (const d of r.differences) {
    lines.push('');
    lines.push(`${d.where}${d.step ? `: ${d.step}` : ''}`);
    lines.push(`  kernel:  ${d.kernel}`);
    lines.push(`  vfiosim: ${d.vfiosim}`);
  }
  lines.push('');
  lines.push(r.differences.length ? `${r.differences.length} difference${r.differences.length === 1 ? '' : 's'}` : 'no difference');
  return lines.join('\n') + '\n';
}
