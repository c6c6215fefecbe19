// IOAS mapping throughput: IOMMU_IOAS_MAP + IOMMU_IOAS_UNMAP pairs per second on an IOAS that a
// device is attached to (so every map pins its page and mirrors it into the domain), with 1,000
// and then 100,000 live mappings in the same IOAS (the area tree and the domain's page table are
// O(log n)). Rows: a fixed IOVA, and an automatic one (first fit: the live mappings sit high, so
// the first hole is found at once).
//
//   npx tsc -p tsconfig.json && node dist/bench/ioas.js [ms per row, default 1000]

import { Host, Process, uapi as U, vfio } from '../src/api/index.js';
import { opsPerSecond } from './measure.js';

const PG = 0x1000;
const LIVE_BASE = 0x40000000n; // live mappings from 1 GiB up, one page every two pages

const measure = opsPerSecond;

export function benchIoas(ms: number): Array<{ name: string; opsPerSec: number }> {
  const host = new Host();
  const p = new Process(host, { name: 'bench-ioas' });
  const io = p.open('/dev/iommu');
  const dev = p.open('/dev/vfio/devices/vfio0');
  vfio.bindIommufd(p, dev, io);
  const ioas = vfio.ioasAlloc(p, io);
  vfio.attachIommufdPt(p, dev, ioas);
  const buf = p.mem.alloc(PG);
  const mapArg = p.mem.struct(U.iommu_ioas_map, {
    size: U.iommu_ioas_map.size, flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas, user_va: BigInt(buf), length: BigInt(PG),
  });
  const unmapArg = p.mem.struct(U.iommu_ioas_unmap, { size: U.iommu_ioas_unmap.size, ioas_id: ioas, length: BigInt(PG) });
  const setIova = (a: number, off: number, iova: bigint) => p.mem.write(a + off, new Uint8Array(new BigUint64Array([iova]).buffer));
  const MAP_IOVA = U.iommu_ioas_map.byName.iova.offset;
  const MAP_FLAGS = U.iommu_ioas_map.byName.flags.offset;
  const UNMAP_IOVA = U.iommu_ioas_unmap.byName.iova.offset;
  const flags = (f: number) => p.mem.write(mapArg + MAP_FLAGS, new Uint8Array(new Uint32Array([f]).buffer));
  const FIXED = U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
  let live = 0;
  const grow = (n: number) => {
    flags(FIXED);
    for (; live < n; live++) {
      setIova(mapArg, MAP_IOVA, LIVE_BASE + BigInt(live) * 2n * BigInt(PG));
      if (p.ioctl(io, U.IOMMU_IOAS_MAP, mapArg) !== 0) throw new Error(`live map ${live}: ${p.errnoName}`);
    }
  };
  const pair = (auto: boolean) => () => {
    flags(auto ? FIXED & ~U.IOMMU_IOAS_MAP_FIXED_IOVA : FIXED);
    for (let i = 0; i < 100; i++) {
      setIova(mapArg, MAP_IOVA, 0x100000n);
      if (p.ioctl(io, U.IOMMU_IOAS_MAP, mapArg) !== 0) throw new Error(`map: ${p.errnoName}`);
      const iova = p.mem.readStruct(U.iommu_ioas_map, mapArg).iova as bigint;
      setIova(unmapArg, UNMAP_IOVA, iova);
      if (p.ioctl(io, U.IOMMU_IOAS_UNMAP, unmapArg) !== 0) throw new Error(`unmap: ${p.errnoName}`);
    }
    return 100;
  };
  const out: Array<{ name: string; opsPerSec: number }> = [];
  for (const n of [1_000, 100_000]) {
    grow(n);
    const label = n.toLocaleString('en-US');
    out.push({ name: `IOAS map+unmap pair, fixed IOVA, ${label} live mappings`, opsPerSec: measure(ms, pair(false)) });
    out.push({ name: `IOAS map+unmap pair, automatic IOVA, ${label} live mappings`, opsPerSec: measure(ms, pair(true)) });
  }
  if (host.kernel.warnings.length) throw new Error(`kernel warnings: ${JSON.stringify(host.kernel.warnings)}`);
  p.exit();
  return out;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const ms = Number(process.argv[2] ?? 1000);
  for (const r of benchIoas(ms)) process.stdout.write(`| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} |\n`);
}
