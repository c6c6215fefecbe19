// The kernel's VFIO selftests (tools/testing/selftests/vfio of Linux 7.2), unmodified, under
// `vfiosim exec` against the default host: one fresh daemon (a fresh boot) per binary, the device's
// BDF as the trailing argument, as the oracle's run-selftests.sh does on the real kernel.
//
//   node dist/src/bridge/selftests.js [--gate] [--json] [--dir DIR] [--bdf BDF] [TEST...]
//
// --gate: exit 1 unless every binary in EXPECTED passes with at least the listed count and no
// failure (the other binaries are reported, not judged). DIR defaults to $VFIO_SELFTESTS_DIR,
// else what ../shared/tools/build-vfio-selftests.sh builds (cached).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PACKAGE_ROOT } from './native.js';

export const SELFTESTS = [
  'vfio_iommufd_setup_test',
  'vfio_pci_device_test',
  'vfio_dma_mapping_test',
  'vfio_dma_mapping_mmio_test',
  'vfio_pci_device_init_perf_test',
  'vfio_pci_sriov_uapi_test',
  'vfio_pci_driver_test',
] as const;

/** Binaries CI requires to pass (and how many tests each must pass). The list grows with the model. */
export const EXPECTED: Record<string, { pass: number }> = {
  vfio_iommufd_setup_test: { pass: 6 },
};

/** The real kernel's results on the oracle (../shared/oracle/README.md), e1000e 0000:01:00.0. */
export const ORACLE: Record<string, string> = {
  vfio_iommufd_setup_test: '6 pass',
  vfio_pci_device_test: '5 pass',
  vfio_dma_mapping_test: '30 pass',
  vfio_dma_mapping_mmio_test: '15 pass',
  vfio_pci_device_init_perf_test: '5 pass',
  vfio_pci_sriov_uapi_test: 'skipped (no CONFIG_PCI_IOV)',
  vfio_pci_driver_test: 'skipped (no IOAT/DSA device)',
};

export interface SelftestResult {
  test: string;
  rc: number | null;
  pass: number | null;
  fail: number | null;
  skip: number | null;
  error: number | null;
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

/** Run one binary under `vfiosim exec` (its own daemon) and read its TAP totals. */
export function runSelftest(dir: string, test: string, bdf: string, timeoutMs = 600_000): Promise<SelftestResult> {
  const cli = join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js');
  const t0 = performance.now();
  return new Promise((done) => {
    const env = { ...process.env };
    delete env.VFIOSIM_SOCKET; // a private daemon: a fresh host for every binary
    const child = spawn(process.execPath, [cli, 'exec', '--', join(dir, test), bdf], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - t0) / 1000;
      const tot = [...out.matchAll(/^# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+)/gm)].pop();
      let note = '';
      if (tot && Number(tot[2]) > 0) {
        const first = /Expression: (.*)\n(?:.*\n)?.*?(\[errno: [^\]]*\])?/.exec(out);
        if (first) note = `first failure: ${first[1]!.trim()}${first[2] ? ' ' + first[2] : ''}`.slice(0, 110);
      }
      if (!tot) {
        const skip = /^(1\.\.0 # SKIP.*|ok .*# SKIP.*|Bail out.*)$/m.exec(out);
        note = skip ? skip[1]!.slice(0, 100) : (out.trim().split('\n').pop() ?? '').slice(0, 100);
        if (code === 4) note = `whole binary skipped: ${note}`;
      }
      if (signal) note = `killed by ${signal}${signal === 'SIGKILL' ? ' (timeout)' : ''}`;
      done({
        test,
        rc: code,
        pass: tot ? Number(tot[1]) : null,
        fail: tot ? Number(tot[2]) : null,
        skip: tot ? Number(tot[5]) : null,
        error: tot ? Number(tot[6]) : null,
        seconds,
        note,
        output: out,
      });
    });
  });
}

export function verdict(r: SelftestResult): 'pass' | 'fail' | 'skip' {
  if (r.rc === 4 && r.pass === null) return 'skip';
  if (r.rc === 0 && (r.fail ?? 0) === 0 && (r.error ?? 0) === 0) return 'pass';
  return 'fail';
}

/** Whether CI's expectations hold for these results (messages for those that do not). */
export function gate(results: SelftestResult[]): string[] {
  const bad: string[] = [];
  for (const [test, exp] of Object.entries(EXPECTED)) {
    const r = results.find((x) => x.test === test);
    if (!r) continue;
    if (verdict(r) !== 'pass' || (r.pass ?? 0) < exp.pass)
      bad.push(`${test}: expected ${exp.pass} passing and no failure, got rc=${r.rc} pass=${r.pass ?? '-'} fail=${r.fail ?? '-'}${r.note ? ` (${r.note})` : ''}`);
  }
  return bad;
}

export function table(results: SelftestResult[]): string {
  const rows = results.map((r) => [
    r.test,
    String(r.rc ?? '-'),
    String(r.pass ?? '-'),
    String(r.fail ?? '-'),
    String(r.skip ?? '-'),
    verdict(r),
    r.seconds.toFixed(2),
    EXPECTED[r.test] ? 'gated' : '',
    r.note,
  ]);
  const head = ['test', 'rc', 'pass', 'fail', 'skip', 'verdict', 'secs', 'ci', 'note'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (x: string[]) => x.map((c, i) => (i === x.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let gateOn = false;
  let json = false;
  let dir: string | undefined;
  let bdf = '0000:01:00.0';
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--gate') gateOn = true;
    else if (a === '--json') json = true;
    else if (a === '--dir') dir = argv[++i];
    else if (a === '--bdf') bdf = argv[++i] ?? bdf;
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
    const r = await runSelftest(d, t, bdf);
    results.push(r);
    if (process.env.VFIOSIM_SELFTESTS_VERBOSE) process.stdout.write(`=== ${t}\n${r.output}\n`);
  }
  const wall = (performance.now() - t0) / 1000;
  if (json) process.stdout.write(JSON.stringify({ bdf, wall, results: results.map(({ output: _o, ...r }) => r) }, null, 1) + '\n');
  else process.stdout.write(`${table(results)}\nselftests under vfiosim exec, device ${bdf}: ${wall.toFixed(2)} s wall\n`);
  if (!gateOn) return 0;
  const bad = gate(results);
  for (const b of bad) process.stderr.write(`selftests gate: ${b}\n`);
  for (const r of results) {
    if (bad.some((b) => b.startsWith(r.test + ':'))) process.stderr.write(`--- ${r.test} output ---\n${r.output}\n`);
  }
  if (!bad.length) process.stdout.write(`gate: ${Object.keys(EXPECTED).join(', ')} passed\n`);
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
