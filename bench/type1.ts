// Type1 DMA-mapping throughput: VFIO_IOMMU_MAP_DMA + VFIO_IOMMU_UNMAP_DMA pairs (one page, through
// the syscall layer, pinned and mirrored into the IOMMU domain) on a type1v2 container that already
// holds 1,000 and 100,000 live mappings. The mappings sit in interval trees, so the cost per pair
// should barely grow with the number of live mappings.
//
//   import { benchType1 } from './type1.js';  benchType1(1500)  // [{ name, opsPerSec }, ...]
//   node dist/bench/type1.js [ms]                                 // prints a table

import { Host, Process, uapi as U } from '../src/api/index.js';
import { opsPerSecond } from './measure.js';

const PAGE = 0x1000n;

/** One page of user memory mapped at `iova`: the MAP_DMA and UNMAP_DMA arguments, built once. */
function pairArgs(p: Process, vaddr: bigint, iova: bigint): { map: number; unmap: number } {
  const map = p.mem.struct(U.vfio_iommu_type1_dma_map, {
    argsz: U.vfio_iommu_type1_dma_map.size,
    flags: U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE,
    vaddr,
    iova,
    size: PAGE,
  });
  const unmap = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: U.vfio_iommu_type1_dma_unmap.size, iova, size: PAGE });
  return { map, unmap };
}

/** A type1v2 container with e1000e's group and `live` one-page mappings at IOVA 0, 4K, 8K, ... */
function setup(live: number): { p: Process; c: number; vaddr: bigint } {
  const host = new Host();
  const p = new Process(host, { name: 'bench-type1' });
  // dma_entry_limit (65535 by default) must admit the live mappings plus the measured one
  if (p.writeFile('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', String(live + 16)) < 0)
    throw new Error(`dma_entry_limit: ${p.errnoName}`);
  const g = p.open('/dev/vfio/6');
  const c = p.open('/dev/vfio/vfio');
  if (g < 0 || c < 0) throw new Error(`open: ${p.errnoName}`);
  if (p.ioctl(g, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(c)) < 0) throw new Error(`SET_CONTAINER: ${p.errnoName}`);
  if (p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU) < 0) throw new Error(`SET_IOMMU: ${p.errnoName}`);
  // every mapping pins the same page (root has CAP_IPC_LOCK: no RLIMIT_MEMLOCK)
  const vaddr = BigInt(p.mem.alloc(Number(PAGE)));
  const arg = p.mem.struct(U.vfio_iommu_type1_dma_map, {
    argsz: U.vfio_iommu_type1_dma_map.size,
    flags: U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE,
    vaddr,
    iova: 0n,
    size: PAGE,
  });
  const iovaField = new Uint8Array(8);
  const dv = new DataView(iovaField.buffer);
  for (let i = 0; i < live; i++) {
    dv.setBigUint64(0, BigInt(i) * PAGE, true);
    p.mem.write(arg + 16, iovaField);
    if (p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, arg) < 0) throw new Error(`MAP_DMA #${i}: ${p.errnoName}`);
  }
  return { p, c, vaddr };
}

const measure = opsPerSecond;

/**
 * Map+unmap pairs per second with 1,000 and with 100,000 live mappings (each row measured for
 * `ms` milliseconds after a warm-up; building the 100,000 mappings takes about a second more).
 */
export function benchType1(ms: number): Array<{ name: string; opsPerSec: number }> {
  const out: Array<{ name: string; opsPerSec: number }> = [];
  for (const live of [1_000, 100_000]) {
    const { p, c, vaddr } = setup(live);
    // the measured page goes between existing mappings' IOVA and the top of the low range
    const a = pairArgs(p, vaddr, BigInt(live + 8) * PAGE);
    const pair = () => {
      for (let i = 0; i < 50; i++) {
        if (p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, a.map) !== 0) throw new Error(`MAP_DMA: ${p.errnoName}`);
        if (p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, a.unmap) !== 0) throw new Error(`UNMAP_DMA: ${p.errnoName}`);
      }
      return 50;
    };
    out.push({ name: `type1 MAP_DMA+UNMAP_DMA pair, ${live.toLocaleString('en-US')} live mappings`, opsPerSec: measure(ms, pair) });
    if (p.kernel.warnings.length) throw new Error(`kernel warnings during the benchmark: ${JSON.stringify(p.kernel.warnings)}`);
  }
  return out;
}

// node dist/bench/type1.js [ms]: print the rows
if (import.meta.url === `file://${process.argv[1]}`) {
  const ms = Number(process.argv[2] ?? process.env.BENCH_MS ?? 1500);
  for (const r of benchType1(ms)) process.stdout.write(`| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} |\n`);
}
