// The kernel's VFIO selftests (tools/testing/selftests/vfio of Linux 7.2), unmodified, under
// `vfiosim exec`: one fresh daemon (a fresh boot) per binary, the device's BDF as the trailing
// argument, as the oracle's run-selftests.sh does on the real kernel. Each binary runs against the
// function it is about, looked up in the host: the oracle's e1000e for most, an SR-IOV PF (booted
// with vfio_pci.enable_sriov=1, as the oracle would need) for vfio_pci_sriov_uapi_test, a function
// the selftest library has a driver for (IOAT 8086:2021, DSA) for vfio_pci_driver_test. A binary
// whose device the host lacks is not run ("no device": its model has not landed).
//
//   node dist/src/bridge/selftests.js [--gate] [--json] [--markdown] [--dir DIR] [--bdf BDF]
//                                     [--host TOPOLOGY] [TEST...]
//
// Each result is compared with the real kernel's: every instance passes (the oracle's counts,
// ../shared/oracle/README.md, where the oracle has the device), except skips that come from the
// machine rather than the kernel (hugetlb variants without free huge pages skip on a real machine
// too). --gate: exit 1 unless every binary that ran matches (any failure, crash, whole-binary
// skip or unexplained skip fails CI). --bdf overrides the oracle device. DIR defaults to
// $VFIO_SELFTESTS_DIR, else what ../shared/tools/build-vfio-selftests.sh builds (cached).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseDocument } from 'yaml';
import { join, resolve } from 'node:path';
import { Host } from '../host/host.js';
import { DEFAULT_HOST_YAML } from '../host/default_host.js';
import { pciGetDevice } from '../drivers/pci/pci.js';
import { PACKAGE_ROOT } from './native.js';

/** Which function a binary runs against. */
export type SelftestDevice = 'oracle' | 'sriov-pf' | 'driver';

export interface SelftestSpec {
  test: string;
  device: SelftestDevice;
  /** module parameters on the kernel command line the run needs (the oracle's --append) */
  cmdline?: string;
  /** test instances the binary runs when it has its device; all pass on a correct kernel */
  instances: number;
  /** the real kernel's result on the oracle (default topology, e1000e 0000:01:00.0) */
  oracle: string;
  /** skips that come from the machine, not the kernel (matched against the skip reason) */
  envSkip?: { reason: RegExp; why: string };
}

export const SPECS: SelftestSpec[] = [
  { test: 'vfio_iommufd_setup_test', device: 'oracle', instances: 6, oracle: '6 pass' },
  { test: 'vfio_pci_device_test', device: 'oracle', instances: 5, oracle: '5 pass' },
  {
    test: 'vfio_dma_mapping_test',
    device: 'oracle',
    instances: 30,
    oracle: '30 pass',
    // MAP_HUGETLB fails before any VFIO call when the machine has no free 2 MiB / 1 GiB pages
    envSkip: { reason: /mmap\(\) failed: Cannot allocate memory/, why: 'no free hugetlb pages on this machine' },
  },
  { test: 'vfio_dma_mapping_mmio_test', device: 'oracle', instances: 15, oracle: '15 pass' },
  { test: 'vfio_pci_device_init_perf_test', device: 'oracle', instances: 5, oracle: '5 pass' },
  {
    test: 'vfio_pci_sriov_uapi_test',
    device: 'sriov-pf',
    cmdline: 'vfio_pci.enable_sriov=1',
    instances: 45,
    oracle: 'skipped (no CONFIG_PCI_IOV)',
  },
  { test: 'vfio_pci_driver_test', device: 'driver', instances: 35, oracle: 'skipped (no IOAT/DSA device)' },
];

export const SELFTESTS = SPECS.map((s) => s.test);

/** The real kernel's results on the oracle (../shared/oracle/README.md), e1000e 0000:01:00.0. */
export const ORACLE: Record<string, string> = Object.fromEntries(SPECS.map((s) => [s.test, s.oracle]));

/** vendor:device of the functions the selftest library has a driver for (lib/drivers: ioat, dsa) */
export const SELFTEST_DRIVER_IDS = ['8086:2021', '8086:0b25', '8086:11fb', '8086:1212'];

/**
 * The function a binary runs against in this host (null: the host has none, i.e. the model the
 * binary needs has not landed). `bdf` overrides the oracle device.
 */
export function selftestDevice(host: Host, spec: SelftestSpec, bdf?: string): string | null {
  const vfio = host.devices().filter((d) => d.driver === 'vfio-pci');
  switch (spec.device) {
    case 'oracle':
      if (bdf) return bdf;
      return (vfio.find((d) => d.name === 'e1000e') ?? vfio.find((d) => d.vendorDevice === '8086:10d3'))?.bdf ?? null;
    case 'sriov-pf':
      // what the test reads: sriov_totalvfs of a PF (pci_iov_init made it one)
      return (
        vfio.find((d) => {
          const p = pciGetDevice(host.kernel, d.bdf);
          return !!p?.isPhysfn && typeof host.kernel.vfs.resolve(`/sys/bus/pci/devices/${d.bdf}/sriov_totalvfs`, true) !== 'number';
        })?.bdf ?? null
      );
    case 'driver':
      return vfio.find((d) => SELFTEST_DRIVER_IDS.includes(d.vendorDevice))?.bdf ?? null;
  }
}

/** The host's YAML with module parameters added to kernel.cmdline (as the oracle's --append). */
export function withCmdline(yaml: string, cmdline: string): string {
  const doc = parseDocument(yaml);
  const old = doc.getIn(['kernel', 'cmdline']);
  const value = `${typeof old === 'string' ? old : ''} ${cmdline}`.trim();
  if (doc.get('kernel') === undefined) doc.set('kernel', doc.createNode({ cmdline: value }));
  else doc.setIn(['kernel', 'cmdline'], value);
  return doc.toString();
}

export interface SelftestResult {
  test: string;
  /** the function it ran against (null: the host has none, not run) */
  bdf: string | null;
  rc: number | null;
  pass: number | null;
  fail: number | null;
  skip: number | null;
  error: number | null;
  /** skips the spec puts down to the machine (envSkip) */
  envSkips: number;
  seconds: number;
  /** why the binary stopped early, or was skipped as a whole */
  note: string;
  output: string;
}

/** The folder with the built selftests ($VFIO_SELFTESTS_DIR, else built and cached by shared/). */
export function selftestDir(): string {
  if (process.env.VFIO_SELFTESTS_DIR) return process.env.VFIO_SELFTESTS_DIR;
  // the shared tree: $VFIOSIM_SHARED, else next to the checkout, else the machine's /work/shared
  const candidates = [process.env.VFIOSIM_SHARED, resolve(PACKAGE_ROOT, '..', 'shared'), '/work/shared']
    .filter((x): x is string => !!x)
    .map((d) => resolve(d, 'tools', 'build-vfio-selftests.sh'));
  const script = candidates.find((f) => existsSync(f));
  if (!script) throw new Error(`no $VFIO_SELFTESTS_DIR and none of ${candidates.join(', ')} to build the selftests`);
  return execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
}

export interface RunOptions {
  /** the host's YAML (default: the embedded default host) */
  hostYaml?: string;
  /** overrides the oracle device */
  bdf?: string;
  timeoutMs?: number;
}

/** Run one binary under `vfiosim exec` (its own daemon, a fresh host) against its device. */
export async function runSelftest(dir: string, test: string, o: RunOptions = {}): Promise<SelftestResult> {
  const spec = SPECS.find((x) => x.test === test) ?? { test, device: 'oracle' as const, instances: 0, oracle: '?' };
  const base = o.hostYaml ?? DEFAULT_HOST_YAML;
  const bdf = selftestDevice(new Host(base), spec, o.bdf);
  if (!bdf) {
    const what = spec.device === 'sriov-pf' ? 'SR-IOV PF' : spec.device === 'driver' ? `function with a selftest driver (${SELFTEST_DRIVER_IDS.join(', ')})` : 'e1000e';
    return { test, bdf: null, rc: null, pass: null, fail: null, skip: null, error: null, envSkips: 0, seconds: 0, note: `no ${what} in the host`, output: '' };
  }
  let tmp: string | null = null;
  const args = ['exec'];
  if (spec.cmdline || o.hostYaml) {
    tmp = mkdtempSync(join(tmpdir(), 'vfiosim-selftest-'));
    const f = join(tmp, 'host.yaml');
    writeFileSync(f, spec.cmdline ? withCmdline(base, spec.cmdline) : base);
    args.push('--host', f);
  }
  try {
    return await runUnderExec(dir, spec, bdf, args, o.timeoutMs ?? 600_000);
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

function runUnderExec(dir: string, spec: SelftestSpec, bdf: string, execArgs: string[], timeoutMs: number): Promise<SelftestResult> {
  const cli = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');
  const test = spec.test;
  const t0 = performance.now();
  return new Promise((done) => {
    const env = { ...process.env };
    delete env.VFIOSIM_SOCKET; // a private daemon: a fresh host for every binary
    const child = spawn(process.execPath, [cli, ...execArgs, '--', join(dir, test), bdf], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      const tot = [...out.matchAll(/^# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+)/gm)].pop();
      const skips = [...out.matchAll(/^ok \d+ \S+ # SKIP ?(.*)$/gm)].map((m) => m[1]!);
      const envSkips = spec.envSkip ? skips.filter((r) => spec.envSkip!.reason.test(r)).length : 0;
      let note = '';
      if (tot && Number(tot[2]) > 0) {
        const first = /Expression: (.*)\n(?:.*\n)?.*?(\[errno: [^\]]*\])?/.exec(out);
        if (first) note = `first failure: ${first[1]!.trim()}${first[2] ? ' ' + first[2] : ''}`.slice(0, 110);
      } else if (tot && skips.length > envSkips) {
        note = `skipped: ${skips.find((r) => !spec.envSkip?.reason.test(r))!.slice(0, 90)}`;
      } else if (envSkips) note = `${envSkips} skip: ${spec.envSkip!.why}`;
      if (!tot) {
        const skip = /^(1\.\.0 # SKIP.*|ok .*# SKIP.*|Bail out.*)$/m.exec(out);
        note = skip ? skip[1]!.slice(0, 100) : (out.trim().split('\n').pop() ?? '').slice(0, 100);
        if (code === 4) note = `whole binary skipped: ${note}`;
      }
      if (signal) note = `killed by ${signal}${signal === 'SIGKILL' ? ' (timeout)' : ''}`;
      done({
        test,
        bdf,
        rc: code,
        pass: tot ? Number(tot[1]) : null,
        fail: tot ? Number(tot[2]) : null,
        skip: tot ? Number(tot[5]) : null,
        error: tot ? Number(tot[6]) : null,
        envSkips,
        seconds,
        note,
        output: out,
      });
    });
  });
}

/**
 * How a result compares with the real kernel's: 'match' (every instance passes, bar skips the
 * machine explains), 'mismatch' (a failure, a crash, a whole-binary or unexplained skip, or
 * fewer instances), 'not run' (the host has no device for it).
 */
export function verdict(r: SelftestResult): 'match' | 'mismatch' | 'not run' {
  if (r.bdf === null) return 'not run';
  const spec = SPECS.find((x) => x.test === r.test);
  if (r.rc !== 0 || r.pass === null || (r.fail ?? 0) > 0 || (r.error ?? 0) > 0) return 'mismatch';
  if ((r.skip ?? 0) !== r.envSkips) return 'mismatch';
  if (spec && r.pass + r.envSkips !== spec.instances) return 'mismatch';
  return 'match';
}

/** CI: every binary that ran must match the real kernel (messages for those that do not). */
export function gate(results: SelftestResult[]): string[] {
  return results
    .filter((r) => verdict(r) === 'mismatch')
    .map((r) => {
      const spec = SPECS.find((x) => x.test === r.test);
      return `${r.test} (${r.bdf}): expected ${spec?.instances ?? '?'} passing instances, got rc=${r.rc} pass=${r.pass ?? '-'} fail=${r.fail ?? '-'} skip=${r.skip ?? '-'}${r.note ? ` (${r.note})` : ''}`;
    });
}

function counts(r: SelftestResult): string {
  if (r.bdf === null) return 'not run';
  if (r.pass === null) return r.rc === 4 ? 'skip (whole binary)' : `rc ${r.rc}`;
  const parts = [`${r.pass} pass`];
  if (r.fail) parts.push(`${r.fail} fail`);
  if (r.skip) parts.push(`${r.skip} skip`);
  if (r.error) parts.push(`${r.error} error`);
  return parts.join(', ');
}

function kernelCol(r: SelftestResult): string {
  const spec = SPECS.find((x) => x.test === r.test);
  if (!spec) return '?';
  return spec.device === 'oracle' ? spec.oracle : `${spec.instances} pass expected; oracle: ${spec.oracle}`;
}

export function table(results: SelftestResult[]): string {
  const rows = results.map((r) => [r.test, r.bdf ?? '-', kernelCol(r), counts(r), verdict(r), r.seconds.toFixed(2), r.note]);
  const head = ['test', 'device', 'real kernel', 'vfiosim', 'verdict', 'secs', 'note'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (x: string[]) => x.map((c, i) => (i === x.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The README's table. */
export function markdown(results: SelftestResult[]): string {
  const rows = results.map((r) => {
    const v = verdict(r);
    const sim = v === 'match' ? `**${counts(r)}**` : counts(r);
    return `| ${r.test} | ${r.bdf ?? '-'} | ${kernelCol(r)} | ${sim} | ${v === 'not run' ? 'not run' : v === 'match' ? 'matches, gated' : '**MISMATCH**'} | ${r.note} |`;
  });
  return ['| test binary | device | real kernel | vfiosim | CI | note |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let gateOn = false;
  let json = false;
  let md = false;
  let dir: string | undefined;
  let bdf: string | undefined;
  let hostYaml: string | undefined;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--gate') gateOn = true;
    else if (a === '--json') json = true;
    else if (a === '--markdown') md = true;
    else if (a === '--dir') dir = argv[++i];
    else if (a === '--bdf') bdf = argv[++i];
    else if (a === '--host') hostYaml = readFileSync(argv[++i] ?? '', 'utf8');
    else if (a === '--verbose' || a === '-v') process.env.VFIOSIM_SELFTESTS_VERBOSE = '1';
    else only.push(a);
  }
  const d = dir ?? selftestDir();
  const tests = only.length ? only : [...SELFTESTS];
  const results: SelftestResult[] = [];
  const t0 = performance.now();
  for (const t of tests) {
    if (!existsSync(join(d, t))) {
      process.stderr.write(`not found: ${join(d, t)}\n`);
      return 2;
    }
    const r = await runSelftest(d, t, { ...(bdf ? { bdf } : {}), ...(hostYaml ? { hostYaml } : {}) });
    results.push(r);
    if (process.env.VFIOSIM_SELFTESTS_VERBOSE) process.stdout.write(`=== ${t} (${r.bdf ?? 'not run'})\n${r.output}\n`);
  }
  const wall = (performance.now() - t0) / 1000;
  if (json) process.stdout.write(JSON.stringify({ wall, results: results.map((r) => { const { output: _o, ...rest } = r; return { ...rest, verdict: verdict(r) }; }) }, null, 1) + '\n');
  else process.stdout.write(`${md ? markdown(results) : table(results)}\nselftests under vfiosim exec: ${wall.toFixed(2)} s wall\n`);
  if (!gateOn) return 0;
  const bad = gate(results);
  for (const b of bad) process.stderr.write(`selftests gate: ${b}\n`);
  for (const r of results) if (verdict(r) === 'mismatch') process.stderr.write(`--- ${r.test} output ---\n${r.output}\n`);
  const ran = results.filter((r) => verdict(r) !== 'not run').map((r) => r.test);
  const notRun = results.filter((r) => verdict(r) === 'not run').map((r) => r.test);
  if (!bad.length) process.stdout.write(`gate: ${ran.length} binaries match the real kernel${notRun.length ? `; not run (no device in the host): ${notRun.join(', ')}` : ''}\n`);
  return bad.length ? 1 : 0;
}

const invoked = process.argv[1] ?? '';
if (invoked.endsWith('selftests.js')) {
  main(process.argv.slice(2)).then(
    (c) => (process.exitCode = c),
    (e: unknown) => {
      process.stderr.write(`selftests: ${(e as Error).message}\n`);
      process.exitCode = 2;
    },
  );
}
