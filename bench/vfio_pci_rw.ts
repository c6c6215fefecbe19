// vfio-pci's data path: pread of the virtual config space (4-byte reads of COMMAND, through the
// header's permission table; a whole 4 KiB dump, cut into dword chunks), pread/pwrite of a BAR
// register (memory_lock + the model), and a load through a BAR mapping in process (trapped:
// memory-enable check + the model). A null syscall (ioctl FIOCLEX) is the yardstick.
//
//   npx tsc -p tsconfig.json && node dist/bench/vfio_pci_rw.js [ms per row, default 1000]

import { Host, Process, vfio } from '../src/api/index.js';
import { opsPerSecond } from './measure.js';

const measure = opsPerSecond;

export function benchVfioPciRw(ms: number): Array<{ name: string; opsPerSec: number; nullSyscalls: number }> {
  const host = new Host();
  const p = new Process(host, { name: 'bench-vfio-pci' });
  const io = p.open('/dev/iommu');
  const dev = p.open('/dev/vfio/devices/vfio0'); // e1000e: PCIe, 4 KiB config space
  vfio.bindIommufd(p, dev, io);
  const nul = p.open('/dev/null');
  const buf = p.mem.alloc(8192);
  const CFG = 7n << 40n;
  const map = p.mmap(4096, 3, 1, dev, 0);
  const rows: Array<[string, () => number]> = [
    ['null syscall (ioctl FIOCLEX)', () => (p.ioctl(nul, 0x5451, 0), 1)],
    ['config pread 4 bytes (COMMAND)', () => (p.pread(dev, buf, 4, CFG + 4n), 1)],
    ['config pread of the whole 4 KiB space', () => (p.pread(dev, buf, 4096, CFG), 1)],
    ['config pwrite 2 bytes (COMMAND)', () => (p.pwrite(dev, buf, 2, CFG + 4n), 1)],
    ['BAR0 pread 4 bytes', () => (p.pread(dev, buf, 4, 0x100n), 1)],
    ['BAR0 pwrite 4 bytes', () => (p.pwrite(dev, buf, 4, 0x100n), 1)],
    ['BAR0 load through the mapping (4 bytes, in process)', () => (p.mem.read(map + 0x100, 4), 1)],
  ];
  // COMMAND as the device had it, so the pwrite row keeps memory decoding on
  p.pread(dev, buf, 2, CFG + 4n);
  const out = rows.map(([name, f]) => ({ name, opsPerSec: measure(ms, f), nullSyscalls: 0 }));
  for (const r of out) r.nullSyscalls = out[0]!.opsPerSec / r.opsPerSec;
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ms = Number(process.argv[2] ?? 1000);
  for (const r of benchVfioPciRw(ms)) console.log(`${r.name.padEnd(55)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(12)} ops/s  ${r.nullSyscalls.toFixed(1)} null syscalls`);
}
