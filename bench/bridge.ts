// The bridge's costs, measured in one run so that they compare across machines:
//  - an ioctl round trip through the shim and the daemon (VFIO_DEVICE_GET_INFO on a bound cdev,
//    in a C loop), against
//  - the floor: a plain C request/answer over a UNIX socket to the same daemon (no model, no
//    memory access, no fd lookup);
//  - a load through a trapped BAR mapping (SIGSEGV in the shim, forwarded to the model);
//  - the wall time of the kernel's VFIO selftest suite (7 binaries) under `vfiosim exec`.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Host } from '../src/api/index.js';
import { BridgeDaemon } from '../src/bridge/daemon.js';
import { shimEnv } from '../src/bridge/exec.js';
import { PACKAGE_ROOT, ensureNative } from '../src/bridge/native.js';
import { SELFTESTS, runSelftest, selftestDir } from '../src/bridge/selftests.js';

function run(bin: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${bin} ${args.join(' ')}: exit ${code}: ${err}`))));
  });
}

export async function benchBridge(ms: number): Promise<Array<{ name: string; value: number; unit: string }>> {
  ensureNative();
  const dir = mkdtempSync(join(tmpdir(), 'vfiosim-bench-'));
  const out: Array<{ name: string; value: number; unit: string }> = [];
  try {
    const bin = join(dir, 'bridge_bench');
    execFileSync('cc', ['-O2', '-o', bin, join(PACKAGE_ROOT, 'bench', 'c', 'bridge_bench.c')]);
    const host = new Host();
    const daemon = new BridgeDaemon(host, { socketPath: join(dir, 'd.sock') });
    daemon.start();
    try {
      const env = shimEnv(daemon.socketPath, { pid: process.pid, host: host.topology.name, paths: daemon.paths });
      const slice = Math.max(50, Math.floor(ms / 3));
      await run(bin, ['echo', String(Math.min(slice, 50))], env); // warm up
      await run(bin, ['getinfo', String(Math.min(slice, 50))], env);
      const [, echoNs] = (await run(bin, ['echo', String(slice)], env)).trim().split(' ').map(Number) as [number, number];
      const [, ioctlNs] = (await run(bin, ['getinfo', String(slice)], env)).trim().split(' ').map(Number) as [number, number];
      out.push({ name: 'bridge: ioctl round trip through the shim (GET_INFO on a bound cdev)', value: ioctlNs / 1000, unit: 'us' });
      out.push({ name: 'bridge: floor, plain C echo to the daemon over a UNIX socket', value: echoNs / 1000, unit: 'us' });
      out.push({ name: 'bridge: ioctl round trip / echo floor', value: ioctlNs / echoNs, unit: 'x' });
      const [, mmioNs] = (await run(bin, ['mmio', String(slice)], env)).trim().split(' ').map(Number) as [number, number];
      out.push({ name: 'bridge: trapped BAR load (edu register through a PROT_NONE mapping: fault, forward, step over)', value: mmioNs / 1000, unit: 'us' });
    } finally {
      daemon.stop();
    }
    let stDir: string | null = null;
    try {
      stDir = selftestDir();
    } catch {
      stDir = null; // no selftests on this machine: that measure is left out
    }
    if (stDir) {
      const t0 = performance.now();
      let ran = 0;
      for (const t of SELFTESTS) if ((await runSelftest(stDir, t)).bdf !== null) ran++;
      out.push({ name: `bridge: VFIO selftest suite wall time (${ran} of ${SELFTESTS.length} binaries have a device; vfiosim exec each)`, value: (performance.now() - t0) / 1000, unit: 's' });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const invoked = process.argv[1] ?? '';
if (invoked.endsWith('bridge.js')) {
  benchBridge(Number(process.argv[2] ?? 3000)).then((r) => {
    for (const x of r) process.stdout.write(`${x.name}: ${x.value.toFixed(x.unit === 'x' ? 2 : 2)} ${x.unit}\n`);
  });
}
