// Device DMA through iommufd mappings in each mode (cdev + IOAS attach, cdev + manual HWPT, group
// with an iommufd "container" in type1 and type1v2 compat mode), and the VFIO compat ioctls on
// /dev/iommu (drivers/iommu/iommufd/vfio_compat.c). "oracle" marks values observed on the real
// Linux 7.2 kernel (shared/oracle, default topology).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Host, Process } from '../src/api/index.js';
import { dmaRead, dmaWrite } from '../src/iommu/dma.js';
import type { IommuDevice } from '../src/iommu/iommu.js';
import { PROT_READ } from '../src/kernel/uaccess.js';
import { E1000E, U, attach, bind, boot, cdevPath, destroy, detach, getDeviceFd, groupPath, ioasAlloc, proc, setContainer } from './helpers.js';
import {
  FIX, PG, R, RW, U64_MAX, compatGetInfo, hugePages, hwptAlloc, map, mapDma, mapFile, ranges, unmap, unmapAll, unmapDma,
} from './ioas_helpers.js';

const dev = (h: Host): IommuDevice => h.vfioDevice(E1000E.bdf)!.dev;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** DMA read of `len` bytes: the data as text, or the fault kind */
function rd(h: Host, iova: bigint, len: number): string {
  const r = dmaRead(dev(h), iova, len);
  return r.ok ? text(r.data) : `fault:${r.fault}@0x${r.iova.toString(16)}`;
}
function wr(h: Host, iova: bigint, s: string): string {
  const r = dmaWrite(dev(h), iova, bytes(s));
  return r.ok ? 'ok' : `fault:${r.fault}@0x${r.iova.toString(16)}`;
}

/** The shared DMA checks: a RW buffer and a read-only one mapped at 0x100000 / 0x200000. */
function checkDma(h: Host, p: Process, rwBuf: number, roBuf: number): void {
  p.mem.write(rwBuf + 0xff8, bytes('process-data'));
  assert.equal(rd(h, 0x100ff8n, 12), 'process-data'); // across a page boundary
  assert.equal(wr(h, 0x101000n, 'from-device'), 'ok');
  assert.equal(text(p.mem.read(rwBuf + 0x1000, 11)), 'from-device');
  assert.equal(rd(h, 0x200000n, 4), '\0\0\0\0');
  assert.equal(wr(h, 0x200000n, 'x'), 'fault:permission@0x200000');
  assert.equal(rd(h, 0x300000n, 4), 'fault:unmapped@0x300000');
  assert.equal(rd(h, 0x103ffen, 4), 'fault:unmapped@0x104000'); // runs off the end of the area
  void roBuf;
}

test('DMA, cdev + IOAS attach: the device reads and writes the process memory through the auto domain', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const d = p.open(cdevPath(E1000E));
  bind(p, d, io);
  const ioas = ioasAlloc(p, io);
  const buf = p.mem.alloc(0x4000);
  const ro = p.mem.alloc(0x1000, PROT_READ);
  assert.equal(rd(h, 0x100000n, 1), 'fault:blocked@0x100000'); // owned by iommufd: blocking domain
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x4000, 0x100000).ret, 0);
  assert.equal(map(p, io, ioas, R | FIX, ro, PG, 0x200000).ret, 0);
  // written after MAP and before ATTACH: the pages are only pinned at attach
  p.mem.write(buf, bytes('late'));
  assert.equal(attach(p, d, ioas), 3);
  assert.equal(rd(h, 0x100000n, 4), 'late');
  checkDma(h, p, buf, ro);
  // the process unmaps its buffer: the pinned pages stay reachable by the device
  p.mem.free(buf, 0x4000);
  assert.equal(wr(h, 0x100000n, 'still'), 'ok');
  assert.equal(rd(h, 0x100000n, 5), 'still');
  assert.equal(unmap(p, io, ioas, 0x100000, 0x4000).ret, 0);
  assert.equal(rd(h, 0x100000n, 1), 'fault:unmapped@0x100000');
  assert.equal(detach(p, d), 0);
  assert.equal(rd(h, 0x200000n, 1), 'fault:blocked@0x200000');
  assert.equal(h.kernel.warnings.length, 0);
});

test('DMA, cdev + manual HWPT: both domains of an IOAS mirror every area; replace keeps DMA working', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const d = p.open(cdevPath(E1000E));
  const devid = bind(p, d, io);
  const ioas = ioasAlloc(p, io);
  const a = hwptAlloc(p, io, devid, ioas).id;
  const buf = p.mem.alloc(0x4000);
  const ro = p.mem.alloc(0x1000, PROT_READ);
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x4000, 0x100000).ret, 0);
  assert.equal(map(p, io, ioas, R | FIX, ro, PG, 0x200000).ret, 0);
  const b = hwptAlloc(p, io, devid, ioas).id; // filled from the existing areas
  assert.equal(attach(p, d, a), a);
  checkDma(h, p, buf, ro);
  assert.equal(attach(p, d, b), b); // replace: the group moves to the other domain
  checkDma(h, p, buf, ro);
  assert.equal(p.kproc.pinnedVm, 5); // pinned once for both domains
  assert.equal(detach(p, d), 0);
  assert.equal(destroy(p, io, a), 0);
  assert.equal(destroy(p, io, b), 0);
  assert.equal(p.kproc.pinnedVm, 0);
});

test('DMA into a memfd mapped with IOAS_MAP_FILE: the device writes the file pages', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const d = p.open(cdevPath(E1000E));
  bind(p, d, io);
  const ioas = ioasAlloc(p, io);
  const mfd = p.memfdCreate('dma');
  p.ftruncate(mfd, 0x4000);
  p.writeBytes(mfd, 'file-bytes', 0x1000);
  assert.equal(attach(p, d, ioas), 3);
  assert.deepEqual(mapFile(p, io, ioas, RW, mfd, 0x1000, 0x2000), { ret: 0, iova: 0x1000n });
  assert.equal(rd(h, 0x1000n, 10), 'file-bytes');
  assert.equal(wr(h, 0x2fe0n, 'written by the device'), 'ok');
  assert.equal(text(p.readBytes(mfd, 21, 0x2fe0)!), 'written by the device');
  assert.equal(wr(h, 0x2ff0n, 'written by the device'), 'fault:unmapped@0x3000'); // past the area
  assert.equal(p.kproc.pinnedVm, 2);
  p.close(mfd); // the pages keep the file
  assert.equal(rd(h, 0x2fe0n, 7), 'written');
  assert.equal(unmapAll(p, io, ioas).ret, 0);
  assert.equal(p.kproc.pinnedVm, 0);
});

/** The group path with an iommufd as its container, in type1 or type1v2 compat mode. */
function compatGroup(p: Process, type: number): { g: number; io: number; d: number } {
  const io = p.open('/dev/iommu');
  const g = p.open(groupPath(E1000E));
  assert.equal(setContainer(p, g, io), 0);
  assert.equal(p.ioctl(io, U.VFIO_SET_IOMMU, type), 0);
  const d = getDeviceFd(p, g, E1000E.bdf);
  assert.ok(d >= 0, p.errnoName);
  return { g, io, d };
}

test('DMA, group + iommufd compat type1: MAP_DMA/UNMAP_DMA; v1 partial unmaps cut the area (large pages disabled)', () => {
  const h = boot();
  const p = proc(h);
  const { io } = compatGroup(p, U.VFIO_TYPE1_IOMMU);
  const buf = p.mem.alloc(0x4000);
  const ro = p.mem.alloc(0x1000, PROT_READ);
  const RWF = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
  assert.equal(mapDma(p, io, RWF, buf, 0x100000, 0x4000), 0);
  assert.equal(mapDma(p, io, U.VFIO_DMA_MAP_FLAG_READ, ro, 0x200000, PG), 0);
  checkDma(h, p, buf, ro);
  assert.deepEqual(hugePages(p, io, 1, U.IOMMU_OPTION_OP_GET), { ret: 0, val: 0n });
  assert.deepEqual(unmapDma(p, io, 0, 0x101000, PG), { ret: 0, size: 0x1000n }); // the middle page
  assert.equal(rd(h, 0x101000n, 1), 'fault:unmapped@0x101000');
  p.mem.write(buf + 0x2000, bytes('rest'));
  assert.equal(rd(h, 0x102000n, 4), 'rest');
  assert.equal(wr(h, 0x100000n, 'head'), 'ok');
  assert.equal(text(p.mem.read(buf, 4)), 'head');
  assert.equal(p.kproc.pinnedVm, 4); // 3 + 1: the cut page is unpinned
  assert.deepEqual(unmapDma(p, io, U.VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), { ret: 0, size: 0x4000n });
  assert.equal(p.kproc.pinnedVm, 0);
  assert.equal(rd(h, 0x100000n, 1), 'fault:unmapped@0x100000');
});

test('DMA, group + iommufd compat type1v2: no cutting (ENOENT, size 0), whole-area unmaps', () => {
  const h = boot();
  const p = proc(h);
  const { io, d } = compatGroup(p, U.VFIO_TYPE1v2_IOMMU);
  const buf = p.mem.alloc(0x4000);
  const ro = p.mem.alloc(0x1000, PROT_READ);
  const RWF = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
  assert.equal(mapDma(p, io, RWF, buf, 0x100000, 0x4000), 0);
  assert.equal(mapDma(p, io, U.VFIO_DMA_MAP_FLAG_READ, ro, 0x200000, PG), 0);
  checkDma(h, p, buf, ro);
  assert.deepEqual(unmapDma(p, io, 0, 0x101000, PG), { ret: 'ENOENT', size: 0n });
  assert.equal(rd(h, 0x101000n, 11), 'from-device'); // still mapped
  assert.deepEqual(unmapDma(p, io, 0, 0x100000, 0x4000), { ret: 0, size: 0x4000n });
  assert.equal(rd(h, 0x101000n, 1), 'fault:unmapped@0x101000');
  // closing the device detaches it from the compat IOAS: back to the default (DMA API) domain
  p.close(d);
  assert.equal(rd(h, 0x200000n, 1), 'fault:blocked@0x200000');
});

test('VFIO compat on /dev/iommu: GET_INFO bytes, MAP_DMA, UNMAP_DMA (type1 cuts, size written back), SET_IOMMU (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const gi = p.mem.struct(U.vfio_iommu_type1_info, { argsz: U.vfio_iommu_type1_info.size });
  assert.equal(p.ioctl(io, U.VFIO_IOMMU_GET_INFO, gi), -1);
  assert.equal(p.errnoName, 'ENODEV');
  assert.equal(mapDma(p, io, 3, 0, 0, 0), 'ENODEV');
  assert.deepEqual(unmapDma(p, io, 0, 0, 0), { ret: 'ENODEV', size: 0n });
  const g = p.open(groupPath(E1000E));
  assert.equal(setContainer(p, g, io), 0);
  const dd = 'dddddddddddddddd';
  const D = (n: number) => Array(n).fill(dd).join(' ');
  assert.deepEqual(compatGetInfo(p, io, 16), { ret: 0, bytes: `4800000003000000 00f0ffffffffffff ${D(12)}` });
  assert.deepEqual(compatGetInfo(p, io, 24), { ret: 0, bytes: `4800000003000000 00f0ffffffffffff 0000000000000000 ${D(11)}` });
  assert.deepEqual(compatGetInfo(p, io, 15), { ret: 'EINVAL', bytes: `0f00000055000000 ${D(13)}` });
  const buf = p.mem.alloc(1 << 22);
  assert.equal(mapDma(p, io, 0, buf, 0x100000, PG), 0); // no READ/WRITE check, nothing pinned yet
  assert.equal(mapDma(p, io, 4, buf, 0x200000, PG), 'EINVAL'); // VADDR
  assert.equal(mapDma(p, io, 3, buf, 0x200000, PG, 31), 'EINVAL');
  assert.equal(p.ioctl(io, U.VFIO_SET_IOMMU, U.VFIO_TYPE1_IOMMU), 0);
  assert.deepEqual(hugePages(p, io, 1, U.IOMMU_OPTION_OP_GET), { ret: 0, val: 0n });
  // the area without READ/WRITE cannot be mapped into the new domain: the open fails (and WARNs)
  assert.equal(getDeviceFd(p, g, E1000E.bdf), -1);
  assert.equal(p.errnoName, 'EINVAL');
  assert.equal(h.kernel.warnings.length, 1);
  assert.match(h.kernel.warnings[0]!.message, /vtdss_map_range/);
  assert.deepEqual(unmapDma(p, io, 0, 0x100000, PG), { ret: 0, size: 0x1000n });
  const d = getDeviceFd(p, g, E1000E.bdf);
  assert.ok(d >= 0);
  assert.deepEqual(compatGetInfo(p, io, 24), { ret: 0, bytes: `5800000003000000 0010204000000000 0000000000000000 ${D(11)}` });
  const cap1 = '0300010028000000 ffffffffdddddddd';
  for (const sz of [40, 48, 56])
    assert.deepEqual(compatGetInfo(p, io, sz), { ret: 0, bytes: `5800000003000000 0010204000000000 0000000000000000 ${cap1} ${D(9)}` });
  assert.deepEqual(compatGetInfo(p, io, 72), {
    ret: 0, bytes: `5800000003000000 0010204000000000 0000000000000000 ${cap1} ${D(2)} 0000000000000000 ffffdffe00000000 ${D(5)}`,
  });
  const full = `5800000003000000 0010204000000000 1800000000000000 ${cap1} 0100010000000000 0200000000000000 0000000000000000 ffffdffe00000000 0000f0fe00000000 ffffffff7f000000 ${D(3)}`;
  assert.deepEqual(compatGetInfo(p, io, 88), { ret: 0, bytes: full });
  assert.deepEqual(compatGetInfo(p, io, 200), { ret: 0, bytes: full });
  assert.equal(mapDma(p, io, 0, buf, 0x100000, PG), 'EINVAL'); // now pinned at once: the map fails
  assert.equal(h.kernel.warnings.length, 2);
  assert.equal(mapDma(p, io, 3, buf, 0x100000, 0x4000), 0);
  assert.equal(mapDma(p, io, 3, buf, 0x100000, 0x4000), 'EEXIST');
  assert.equal(mapDma(p, io, 1, buf, 0x200000, 0x2000), 0);
  assert.deepEqual(unmapDma(p, io, 0, 0x101000, PG), { ret: 0, size: 0x1000n }); // cut out of the middle
  assert.deepEqual(unmapDma(p, io, 0, 0x900000, PG), { ret: 0, size: 0n }); // nothing: success
  assert.deepEqual(unmapDma(p, io, 0, 0x100000, 0x800), { ret: 'EINVAL', size: 0x800n }); // the cut fails: not written
  assert.deepEqual(unmapDma(p, io, 0, 0x100000, 0), { ret: 'EINVAL', size: 0n });
  assert.deepEqual(unmapDma(p, io, U.VFIO_DMA_UNMAP_FLAG_ALL, 0x100000, 0), { ret: 'EINVAL', size: 0n });
  assert.deepEqual(unmapDma(p, io, 1, 0x100000, PG), { ret: 'EINVAL', size: 0x1000n });
  assert.deepEqual(unmapDma(p, io, 0, 0x100000, 0x4000), { ret: 0, size: 0x3000n });
  assert.deepEqual(unmapDma(p, io, U.VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), { ret: 0, size: 0x2000n });
  assert.deepEqual(unmapDma(p, io, U.VFIO_DMA_UNMAP_FLAG_ALL, 0, 0), { ret: 0, size: 0n });
  assert.equal(mapDma(p, io, 3, buf, 0xfee00000, PG), 'EINVAL');
  assert.equal(mapDma(p, io, 3, buf, 0x100000, 0), 'EINVAL');
  assert.equal(p.ioctl(io, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0);
  assert.equal(p.ioctl(io, U.VFIO_SET_IOMMU, U.VFIO_TYPE1_IOMMU), 0);
  assert.deepEqual(unmapDma(p, io, 0, 0xfffffffffffff000n, 0x2000), { ret: 'EOVERFLOW', size: 0n });
  assert.deepEqual(unmapDma(p, io, 0, U64_MAX, 1), { ret: 0, size: 0n });
  assert.deepEqual(hugePages(p, io, 1, U.IOMMU_OPTION_OP_SET, 1).ret, 0);
  assert.equal(mapDma(p, io, 3, buf, 0x100000, 0x4000), 0);
  assert.deepEqual(unmapDma(p, io, 0, 0x101000, PG), { ret: 'ENOENT', size: 0n }); // large pages on: no cut
  assert.equal(p.ioctl(io, U.VFIO_SET_IOMMU, U.VFIO_TYPE1_IOMMU), -1); // areas in a domain
  assert.equal(p.errnoName, 'EINVAL');
  assert.equal(p.ioctl(io, U.VFIO_CHECK_EXTENSION, U.VFIO_DMA_CC_IOMMU), 0);
  assert.equal(mapDma(p, io, 3, buf, 0x300000, 0x1000), 0);
  assert.equal(mapDma(p, io, 3, buf, 0x301000, 0x2000), 0);
  assert.deepEqual(unmapDma(p, io, 0, 0x300000, 0x2000), { ret: 'ENOENT', size: 0x1000n }); // written back on error
  assert.deepEqual(unmap(p, io, 1, 0x301000, 0x1000), { ret: 'ENOENT', length: 0x1000n });
  assert.deepEqual(unmapAll(p, io, 1), { ret: 0, length: 0x6000n });
  assert.equal(p.ioctl(io, U.VFIO_IOMMU_DIRTY_PAGES, 0), -1);
  assert.equal(p.errnoName, 'ENOTTY');
  assert.equal(p.close(d), 0);
});

test('iommufd selftest flow (vfio_dma_mapping_test, iommufd_compat_type1v2 and iommufd modes): map, translate, unmap', () => {
  for (const mode of ['compat', 'iommufd'] as const) {
    const h = boot();
    const p = proc(h);
    const buf = p.mem.alloc(0x200000);
    let io: number;
    if (mode === 'compat') {
      io = compatGroup(p, U.VFIO_TYPE1v2_IOMMU).io;
      assert.equal(mapDma(p, io, 3, buf, 0x200000, 0x200000), 0);
    } else {
      io = p.open('/dev/iommu');
      const d = p.open(cdevPath(E1000E));
      bind(p, d, io);
      const ioas = ioasAlloc(p, io);
      assert.ok(attach(p, d, ioas) > 0);
      assert.equal(map(p, io, ioas, RW | FIX, buf, 0x200000, 0x200000).ret, 0);
    }
    for (let off = 0; off < 0x200000; off += 0x40000) {
      p.mem.write(buf + off, bytes(`page@${off}`));
      assert.equal(rd(h, 0x200000n + BigInt(off), `page@${off}`.length), `page@${off}`);
    }
    const ioasId = mode === 'compat' ? 1 : 2;
    assert.deepEqual(unmap(p, io, ioasId, 0x200000, 0x200000), { ret: 0, length: 0x200000n });
    assert.equal(rd(h, 0x200000n, 1), 'fault:unmapped@0x200000');
    assert.equal(h.kernel.warnings.length, 0);
  }
});

test('selftest vfio_dma_map_limit_test in the iommufd, iommufd_compat_type1 and iommufd_compat_type1v2 modes', () => {
  for (const mode of ['iommufd', 'compat_type1', 'compat_type1v2'] as const) {
    const h = boot();
    const p = proc(h);
    const buf = p.mem.alloc(0x2000);
    let io: number;
    let ioasId: number;
    let last: bigint;
    if (mode === 'iommufd') {
      io = p.open('/dev/iommu');
      const d = p.open(cdevPath(E1000E));
      bind(p, d, io);
      ioasId = ioasAlloc(p, io);
      assert.ok(attach(p, d, ioasId) > 0);
      const r = ranges(p, io, ioasId);
      last = BigInt(r.ranges[r.ranges.length - 1]!.split('-')[1]!);
    } else {
      io = compatGroup(p, mode === 'compat_type1' ? U.VFIO_TYPE1_IOMMU : U.VFIO_TYPE1v2_IOMMU).io;
      ioasId = 1;
      // the last IOVA range of the VFIO_IOMMU_GET_INFO capability chain
      const info = p.mem.struct(U.vfio_iommu_type1_info, { argsz: 256 }, 256);
      assert.equal(p.ioctl(io, U.VFIO_IOMMU_GET_INFO, info), 0);
      const capOff = p.mem.readStruct(U.vfio_iommu_type1_info, info).cap_offset as number;
      const first = p.mem.readStruct(U.vfio_info_cap_header, info + capOff);
      const iovaCap = info + (first.next as number);
      const nr = p.mem.u32(iovaCap + 8);
      last = p.mem.readStruct(U.vfio_iova_range, iovaCap + 16 + (nr - 1) * 16).end as bigint;
    }
    assert.equal(last, 0x7fffffffffn, mode);
    const iova = last & ~0xfffn;
    const doMap = (at: bigint, size: number) =>
      mode === 'iommufd' ? map(p, io, ioasId, RW | FIX, buf, size, at).ret : mapDma(p, io, 3, buf, at, size);
    const doUnmap = (at: bigint, size: number) =>
      mode === 'iommufd' ? unmap(p, io, ioasId, at, size) : (({ ret, size: s }) => ({ ret, length: s }))(unmapDma(p, io, 0, at, size));
    // unmap_range
    assert.equal(doMap(iova, PG), 0, mode);
    assert.equal(rd(h, iova, 1), '\0');
    assert.deepEqual(doUnmap(iova, PG), { ret: 0, length: 0x1000n }, mode);
    // unmap_all
    assert.equal(doMap(iova, PG), 0, mode);
    const all = mode === 'iommufd' ? unmapAll(p, io, ioasId) : (({ ret, size }) => ({ ret, length: size }))(unmapDma(p, io, U.VFIO_DMA_UNMAP_FLAG_ALL, 0, 0));
    assert.deepEqual(all, { ret: 0, length: 0x1000n }, mode);
    // overflow
    assert.equal(doMap(0xfffffffffffff000n, 0x2000), 'EOVERFLOW', mode);
    assert.equal(doUnmap(0xfffffffffffff000n, 0x2000).ret, 'EOVERFLOW', mode);
    assert.equal(h.kernel.warnings.length, 0);
  }
});
