// The IOAT DMA channel model (src/drivers/pci/hw/ioat.ts): 4 KiB memcpys through the model, in
// process, iommufd mode (the descriptor, source and destination in one IOAS mapping).
//   * one memcpy as the selftests' driver does it: descriptor written, CHAINADDR, CHANCTRL and
//     DMACOUNT stores through the (trapped) BAR mapping, CHANSTS polled once, SUSPEND;
//   * batched: one DMACOUNT store runs 1,000 self-linked 4 KiB copy descriptors (the engine alone:
//     descriptor fetch and copy through the IOMMU translation).
// A null syscall (ioctl FIOCLEX) is the yardstick.
//
//   npx tsc -p tsconfig.json && node dist/bench/ioat.js [ms per row, default 1000]

import { Host, Process, uapi as U, vfio } from '../src/api/index.js';
import { ioatEncodeDescriptor } from '../src/drivers/pci/hw/ioat.js';
import { opsPerSecond } from './measure.js';

const measure = opsPerSecond;

export interface IoatBenchRow {
  name: string;
  /** operations (null syscalls, or 4 KiB copies) per second */
  opsPerSec: number;
  /** the cost of one operation in null syscalls */
  nullSyscalls: number;
}

export function benchIoat(ms = 1000): IoatBenchRow[] {
  const host = new Host();
  const p = new Process(host, { name: 'bench-ioat' });
  const io = p.open('/dev/iommu');
  const dev = p.open('/dev/vfio/devices/vfio8'); // the IOAT, 0000:00:09.0
  vfio.bindIommufd(p, dev, io);
  const ioas = vfio.ioasAlloc(p, io);
  vfio.attachIommufdPt(p, dev, ioas);
  const mem = p.mem.alloc(0x10000);
  const iova = 0x100000n;
  const m = p.mem.struct(U.iommu_ioas_map, {
    size: U.iommu_ioas_map.size,
    flags: U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE | U.IOMMU_IOAS_MAP_FIXED_IOVA,
    ioas_id: ioas,
    user_va: BigInt(mem),
    length: 0x10000n,
    iova,
  });
  if (p.ioctl(io, U.IOMMU_IOAS_MAP, m)) throw new Error(`IOAS_MAP: ${p.errnoName}`);
  const cmd = new Uint8Array([0x06, 0x04]); // MEMORY | MASTER | INTX_DISABLE
  p.writeBytes(dev, cmd, (7n << 40n) + 4n);
  const bar = p.mmap(0x4000, 3, 1, dev, 0);
  const le = (v: bigint, n: number) => Uint8Array.from({ length: n }, (_, i) => Number((v >> BigInt(8 * i)) & 0xffn));
  const wr = (off: number, n: number, v: bigint) => p.mem.write(bar + off, le(v, n));
  const sts = () => p.mem.read(bar + 0x88, 8)[0]! & 7;
  wr(0x84, 1, 0x20n); // CHANCMD RESET
  const desc = ioatEncodeDescriptor({ size: 4096, ctl: 0, src: iova + 0x1000n, dst: iova + 0x2000n, next: iova });
  const nul = p.open('/dev/null');
  const single = () => {
    p.mem.write(mem, desc);
    wr(0x90, 8, iova); // CHAINADDR
    wr(0x80, 2, 0x9n); // CHANCTRL: INT_REARM | ANY_ERR_ABORT_EN
    wr(0x86, 2, 1n); // DMACOUNT
    if (sts() !== 1) throw new Error('not DONE');
    wr(0x84, 1, 0x04n); // SUSPEND
    return 1;
  };
  const batch = () => {
    wr(0x90, 8, iova);
    wr(0x86, 2, 1000n);
    if (sts() !== 1) throw new Error('not DONE');
    return 1000;
  };
  const rows: Array<[string, () => number]> = [
    ['null syscall (ioctl FIOCLEX)', () => (p.ioctl(nul, 0x5451, 0), 1)],
    ['IOAT 4 KiB memcpy, one per doorbell (selftest driver sequence)', single],
    ['IOAT 4 KiB memcpy, 1,000 descriptors per doorbell', batch],
  ];
  const out = rows.map(([name, f]) => ({ name, opsPerSec: measure(ms, f), nullSyscalls: 0 }));
  for (const r of out) r.nullSyscalls = out[0]!.opsPerSec / r.opsPerSec;
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ms = Number(process.argv[2] ?? 1000);
  for (const r of benchIoat(ms))
    console.log(`${r.name.padEnd(66)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(12)} ops/s  ${r.nullSyscalls.toFixed(1)} null syscalls`);
}
