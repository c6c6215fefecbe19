// npm run bench: in-process throughput of the cdev flow, the group flow, DMA mapping (type1 and
// iommufd IOAS with 1,000 and 100,000 live mappings) side by side with a null syscall (the
// cheapest call through the same syscall layer) measured in the same run, so the ratios compare
// across machines; then the bridge's round trip against its echo floor. Flags: --json,
// --no-bridge (skip the part that needs cc and spawns processes), --no-explore. BENCH_MS sets ms per row.

import { Host, Process, uapi as U, vfio } from '../src/api/index.js';
import { opsPerSecond } from './measure.js';
import { benchType1 } from './type1.js';
import { benchIoas } from './ioas.js';
import { benchBridge } from './bridge.js';
import { benchVfioPciRw } from './vfio_pci_rw.js';
import { benchExplore } from './explore.js';
import { benchIrqs } from './irqs.js';
import { benchIoat } from './ioat.js';

interface Result {
  name: string;
  opsPerSec: number;
  /** cost of one op in null syscalls */
  vsNull?: number;
}

function measure(name: string, ms: number, body: () => number): Result {
  return { name, opsPerSec: opsPerSecond(ms, body) };
}

function nullSyscall(p: Process, fd: number): () => number {
  return () => {
    for (let i = 0; i < 100; i++) p.ioctl(fd, 0x5451); // FIOCLEX: handled by the VFS itself
    return 100;
  };
}

/** open cdev, open iommufd, bind, IOAS alloc, attach, N x GET_INFO, close */
function cdevFlow(host: Host, p: Process, n: number): () => number {
  const info = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
  return () => {
    const dev = p.open('/dev/vfio/devices/vfio0');
    const ifd = p.open('/dev/iommu');
    vfio.bindIommufd(p, dev, ifd);
    const ioas = vfio.ioasAlloc(p, ifd);
    vfio.attachIommufdPt(p, dev, ioas);
    for (let i = 0; i < n; i++) if (p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, info) !== 0) throw new Error('GET_INFO failed');
    p.close(dev);
    p.close(ifd);
    return 1;
  };
}

/** open container + group, SET_CONTAINER, SET_IOMMU, GET_DEVICE_FD, N x GET_INFO, close */
function groupFlow(host: Host, p: Process, n: number): () => number {
  const info = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
  const name = p.mem.cstring('0000:01:00.0');
  return () => {
    const c = p.open('/dev/vfio/vfio');
    const g = p.open('/dev/vfio/6');
    vfio.groupSetContainer(p, g, c);
    vfio.setIommu(p, c, U.VFIO_TYPE1v2_IOMMU);
    const dev = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, name);
    if (dev < 0) throw new Error('GET_DEVICE_FD failed');
    for (let i = 0; i < n; i++) if (p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, info) !== 0) throw new Error('GET_INFO failed');
    p.close(dev);
    p.close(g);
    p.close(c);
    return 1;
  };
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const ms = Number(process.env.BENCH_MS ?? 1500);
  const host = new Host();
  const p = new Process(host, { name: 'bench' });
  const nullFd = p.open('/dev/null');
  const results: Result[] = [];
  const nul = measure('null syscall (ioctl FIOCLEX)', ms, nullSyscall(p, nullFd));
  results.push(nul);
  for (const n of [0, 100]) {
    results.push(measure(`cdev flow, ${n} x GET_INFO`, ms, cdevFlow(host, p, n)));
    results.push(measure(`group flow, ${n} x GET_INFO`, ms, groupFlow(host, p, n)));
  }
  const getInfo = measure('GET_INFO on a bound cdev', ms, (() => {
    const dev = p.open('/dev/vfio/devices/vfio1');
    const ifd = p.open('/dev/iommu');
    vfio.bindIommufd(p, dev, ifd);
    const info = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
    return () => {
      for (let i = 0; i < 100; i++) p.ioctl(dev, U.VFIO_DEVICE_GET_INFO, info);
      return 100;
    };
  })());
  results.push(getInfo);
  if (host.kernel.warnings.length) throw new Error(`kernel warnings during the benchmark: ${JSON.stringify(host.kernel.warnings)}`);
  for (const r of [...benchType1(ms), ...benchIoas(ms), ...benchVfioPciRw(ms), ...benchIrqs(ms), ...benchIoat(ms)].filter((r) => !r.name.startsWith('null'))) results.push({ name: r.name, opsPerSec: r.opsPerSec });
  for (const r of results) r.vsNull = nul.opsPerSec / r.opsPerSec;
  const bridge = process.argv.includes('--no-bridge') ? [] : await benchBridge(ms).catch((e: Error) => {
    process.stderr.write(`bench: bridge part skipped: ${e.message.split('\n')[0]}\n`);
    return [];
  });
  const explore = process.argv.includes('--no-explore') ? [] : benchExplore();
  if (json) {
    process.stdout.write(JSON.stringify({ node: process.version, results, bridge, explore }, null, 1) + '\n');
    return;
  }
  process.stdout.write(`vfiosim benchmark (node ${process.version}, ${ms} ms per row)\n\n`);
  process.stdout.write('| measurement | ops/s | cost in null syscalls |\n|---|---:|---:|\n');
  for (const r of results)
    process.stdout.write(`| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.vsNull!.toFixed(1)} |\n`);
  if (bridge.length) {
    process.stdout.write('\n| bridge measurement | value |\n|---|---:|\n');
    for (const b of bridge) process.stdout.write(`| ${b.name.replace(/^bridge: /, '')} | ${b.value.toFixed(2)} ${b.unit} |\n`);
  }
  if (explore.length) {
    process.stdout.write('\n| explorer measurement | value |\n|---|---:|\n');
    for (const b of explore) process.stdout.write(`| ${b.name} | ${b.value.toFixed(2)} ${b.unit} |\n`);
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
