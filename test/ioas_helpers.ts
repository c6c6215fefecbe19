// Argument builders for the IOAS mapping ioctls (IOMMU_IOAS_MAP/MAP_FILE/COPY/UNMAP, OPTION,
// IOVA_RANGES, GET_HW_INFO, HWPT_ALLOC) and the VFIO compat ioctls on an iommufd; each returns
// libc's result as ret/errno plus what the kernel wrote back.

import type { Process } from '../src/api/index.js';
import { U } from './helpers.js';

export const RW = U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE;
export const R = U.IOMMU_IOAS_MAP_READABLE;
export const W = U.IOMMU_IOAS_MAP_WRITEABLE;
export const FIX = U.IOMMU_IOAS_MAP_FIXED_IOVA;
export const U64_MAX = 0xffffffffffffffffn;
export const PG = 0x1000;

export type Res = { ret: number | string } & Record<string, unknown>;
const r = (p: Process, ret: number): number | string => (ret === -1 ? p.errnoName : ret);

export function map(p: Process, fd: number, ioas: number, flags: number, va: number | bigint, length: number | bigint, iova: number | bigint = 0): { ret: number | string; iova: bigint } {
  const a = p.mem.struct(U.iommu_ioas_map, {
    size: U.iommu_ioas_map.size, flags, ioas_id: ioas, user_va: BigInt(va), length: BigInt(length), iova: BigInt(iova),
  });
  const ret = r(p, p.ioctl(fd, U.IOMMU_IOAS_MAP, a));
  return { ret, iova: p.mem.readStruct(U.iommu_ioas_map, a).iova as bigint };
}

export function mapFile(p: Process, fd: number, ioas: number, flags: number, mfd: number, start: number | bigint, length: number | bigint, iova: number | bigint = 0): { ret: number | string; iova: bigint } {
  const a = p.mem.struct(U.iommu_ioas_map_file, {
    size: U.iommu_ioas_map_file.size, flags, ioas_id: ioas, fd: mfd, start: BigInt(start), length: BigInt(length), iova: BigInt(iova),
  });
  const ret = r(p, p.ioctl(fd, U.IOMMU_IOAS_MAP_FILE, a));
  return { ret, iova: p.mem.readStruct(U.iommu_ioas_map_file, a).iova as bigint };
}

export function unmap(p: Process, fd: number, ioas: number, iova: number | bigint, length: number | bigint): { ret: number | string; length: bigint } {
  const a = p.mem.struct(U.iommu_ioas_unmap, { size: U.iommu_ioas_unmap.size, ioas_id: ioas, iova: BigInt(iova), length: BigInt(length) });
  const ret = r(p, p.ioctl(fd, U.IOMMU_IOAS_UNMAP, a));
  return { ret, length: p.mem.readStruct(U.iommu_ioas_unmap, a).length as bigint };
}

export function unmapAll(p: Process, fd: number, ioas: number): { ret: number | string; length: bigint } {
  return unmap(p, fd, ioas, 0, U64_MAX);
}

export function copy(p: Process, fd: number, flags: number, dst: number, src: number, length: number | bigint, dstIova: number | bigint, srcIova: number | bigint): { ret: number | string; dstIova: bigint; raw: Record<string, unknown> } {
  const a = p.mem.struct(U.iommu_ioas_copy, {
    size: U.iommu_ioas_copy.size, flags, dst_ioas_id: dst, src_ioas_id: src, length: BigInt(length), dst_iova: BigInt(dstIova), src_iova: BigInt(srcIova),
  });
  const ret = r(p, p.ioctl(fd, U.IOMMU_IOAS_COPY, a));
  const raw = p.mem.readStruct(U.iommu_ioas_copy, a);
  return { ret, dstIova: raw.dst_iova as bigint, raw };
}

export function option(p: Process, fd: number, optionId: number, op: number, objectId: number, val: number | bigint = 0): { ret: number | string; val: bigint } {
  const a = p.mem.struct(U.iommu_option, { size: U.iommu_option.size, option_id: optionId, op, object_id: objectId, val64: BigInt(val) });
  const ret = r(p, p.ioctl(fd, U.IOMMU_OPTION, a));
  return { ret, val: p.mem.readStruct(U.iommu_option, a).val64 as bigint };
}

export const hugePages = (p: Process, fd: number, ioas: number, op: number, val: number | bigint = 0) =>
  option(p, fd, U.IOMMU_OPTION_HUGE_PAGES, op, ioas, val);

/** IOMMU_IOAS_IOVA_RANGES with room for 8 ranges: [ret, alignment, "start-last" strings] */
export function ranges(p: Process, fd: number, ioas: number): { ret: number | string; align: bigint; ranges: string[] } {
  const buf = p.mem.alloc(8 * 16);
  const a = p.mem.struct(U.iommu_ioas_iova_ranges, { size: U.iommu_ioas_iova_ranges.size, ioas_id: ioas, num_iovas: 8, allowed_iovas: BigInt(buf) });
  const ret = r(p, p.ioctl(fd, U.IOMMU_IOAS_IOVA_RANGES, a));
  const o = p.mem.readStruct(U.iommu_ioas_iova_ranges, a);
  const out: string[] = [];
  for (let i = 0; i < Math.min(8, o.num_iovas as number); i++) {
    const x = p.mem.readStruct(U.iommu_iova_range, buf + i * 16);
    out.push(`0x${(x.start as bigint).toString(16)}-0x${(x.last as bigint).toString(16)}`);
  }
  return { ret, align: o.out_iova_alignment as bigint, ranges: out };
}

export function allowIovas(p: Process, fd: number, ioas: number, spans: Array<[bigint | number, bigint | number]>): number | string {
  const buf = p.mem.alloc(Math.max(1, spans.length * 16));
  spans.forEach(([s, l], i) => p.mem.write(buf + i * 16, new Uint8Array(new BigUint64Array([BigInt(s), BigInt(l)]).buffer)));
  const a = p.mem.struct(U.iommu_ioas_allow_iovas, { size: U.iommu_ioas_allow_iovas.size, ioas_id: ioas, num_iovas: spans.length, allowed_iovas: BigInt(buf) });
  return r(p, p.ioctl(fd, U.IOMMU_IOAS_ALLOW_IOVAS, a));
}

export function hwptAlloc(p: Process, fd: number, devId: number, ptId: number, flags = 0): { ret: number | string; id: number } {
  const a = p.mem.struct(U.iommu_hwpt_alloc, { size: U.iommu_hwpt_alloc.size, flags, dev_id: devId, pt_id: ptId });
  const ret = r(p, p.ioctl(fd, U.IOMMU_HWPT_ALLOC, a));
  return { ret, id: p.mem.readStruct(U.iommu_hwpt_alloc, a).out_hwpt_id as number };
}

/** Little-endian hex of bytes, 8 per group (as the oracle programs print them). */
export function hex(b: Uint8Array): string {
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 8) out.push([...b.subarray(i, i + 8)].map((x) => x.toString(16).padStart(2, '0')).join(''));
  return out.join(' ');
}

// ---- VFIO compat ioctls on an iommufd -----------------------------------------------------------

export function mapDma(p: Process, fd: number, flags: number, va: number | bigint, iova: number | bigint, size: number | bigint, argsz: number = U.vfio_iommu_type1_dma_map.size): number | string {
  const a = p.mem.struct(U.vfio_iommu_type1_dma_map, { argsz, flags, vaddr: BigInt(va), iova: BigInt(iova), size: BigInt(size) });
  return r(p, p.ioctl(fd, U.VFIO_IOMMU_MAP_DMA, a));
}

export function unmapDma(p: Process, fd: number, flags: number, iova: number | bigint, size: number | bigint): { ret: number | string; size: bigint } {
  const a = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: U.vfio_iommu_type1_dma_unmap.size, flags, iova: BigInt(iova), size: BigInt(size) });
  const ret = r(p, p.ioctl(fd, U.VFIO_IOMMU_UNMAP_DMA, a));
  return { ret, size: p.mem.readStruct(U.vfio_iommu_type1_dma_unmap, a).size as bigint };
}

/** VFIO_IOMMU_GET_INFO into a 0xdd-filled buffer of 256 bytes; the first `show` bytes back. */
export function compatGetInfo(p: Process, fd: number, argsz: number, show = 112): { ret: number | string; bytes: string } {
  const a = p.mem.alloc(256);
  const b = new Uint8Array(256).fill(0xdd);
  new DataView(b.buffer).setUint32(0, argsz, true);
  new DataView(b.buffer).setUint32(4, 0x55, true);
  p.mem.write(a, b);
  const ret = r(p, p.ioctl(fd, U.VFIO_IOMMU_GET_INFO, a));
  return { ret, bytes: hex(p.mem.read(a, show)) };
}
