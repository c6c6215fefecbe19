// IOAS mapping (drivers/iommu/iommufd/ioas.c, io_pagetable.c, pages.c): IOMMU_IOAS_MAP,
// MAP_FILE, COPY, UNMAP, the HUGE_PAGES option, lazy pinning and its accounting, domains
// mirroring every area, and IOMMU_GET_HW_INFO. "oracle" marks values observed on the real
// Linux 7.2 kernel (shared/oracle, default topology, e1000e 0000:01:00.0).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Process } from '../src/api/index.js';
import { dmaRead } from '../src/iommu/dma.js';
import { procTable } from '../src/kernel/process.js';
import type { StructDef } from '../src/uapi/layout.js';
import { AddressSpace, PROT_READ } from '../src/kernel/uaccess.js';
import { E1000E, EDU, NVME, U, attach, bind, boot, cdevPath, destroy, detach, ioasAlloc, proc } from './helpers.js';
import {
  FIX, PG, R, RW, U64_MAX, W, allowIovas, copy, hex, hugePages, hwptAlloc, map, mapFile, option, ranges, unmap, unmapAll,
} from './ioas_helpers.js';

const GET = U.IOMMU_OPTION_OP_GET;
const SET = U.IOMMU_OPTION_OP_SET;

/** /dev/iommu, an IOAS and the e1000e cdev bound (not attached). */
function setup(p: Process, d: { index: number } = E1000E): { io: number; ioas: number; dev: number; devid: number } {
  const io = p.open('/dev/iommu');
  const dev = p.open(cdevPath(d));
  const devid = bind(p, dev, io);
  const ioas = ioasAlloc(p, io);
  return { io, ioas, dev, devid };
}

const FRESH = ['0x0-0xffffffffffffffff'];
const ATTACHED = ['0x0-0xfedfffff', '0xfef00000-0x7fffffffff'];

test('IOAS_MAP: argument checks in the kernel order (oracle)', () => {
  const p = proc(boot());
  const { io, ioas } = setup(p);
  const buf = p.mem.alloc(1 << 22);
  const m = (flags: number, va: number | bigint, len: number | bigint, iova: number | bigint = 0, id = ioas) => map(p, io, id, flags, va, len, iova);
  assert.equal(m(RW | 8, buf, PG).ret, 'EOPNOTSUPP');
  const res = p.mem.struct(U.iommu_ioas_map, { size: 40, flags: RW, ioas_id: ioas, __reserved: 1, user_va: BigInt(buf), length: 0x1000n });
  assert.equal(p.ioctl(io, U.IOMMU_IOAS_MAP, res), -1);
  assert.equal(p.errnoName, 'EOPNOTSUPP');
  assert.equal(m(RW | FIX, buf, PG, U64_MAX).ret, 'EOVERFLOW');
  assert.equal(m(RW, buf, U64_MAX).ret, 'EOVERFLOW');
  assert.equal(m(FIX, buf, PG).ret, 'EINVAL');
  assert.equal(m(RW, buf, PG, 0, 99).ret, 'ENOENT');
  assert.equal(m(0, buf, PG, 0, 99).ret, 'EINVAL');
  assert.equal(m(RW, 0xfffffffffffff000n, 0x2000).ret, 'EOVERFLOW');
  assert.equal(m(RW, buf, 0).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf, 0, 0x1000).ret, 'EINVAL');
  assert.equal(m(RW, 0x1000, 1n << 63n).ret, 'EOVERFLOW'); // automatic: length >= ULONG_MAX / 2
  // without a domain nothing is pinned: absurd lengths are accepted
  assert.deepEqual(m(RW | FIX, 0x1000, 1n << 63n, 0x1000), { ret: 0, iova: 0x1000n });
  assert.deepEqual(m(RW, 0x1000, 1n << 62n), { ret: 0, iova: 0x8000000000001000n });
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0xc000000000000000n });
  assert.equal(m(RW | FIX, 0x1000, 0x2000, 0xfffffffffffff000n).ret, 'EOVERFLOW');
  assert.equal(m(RW | FIX, 0x1000, 0x1000, 0xfffffffffffff000n).ret, 0);
  assert.equal(m(RW | FIX, 0x1000, 0x1000, 0).ret, 0); // a fixed IOVA of 0 is fine
  assert.equal(m(RW, 0x1000, 0xffffffffffffd000n).ret, 'EOVERFLOW');
  assert.deepEqual(m(RW, 0x1000, (1n << 62n) + 0x1000n), { ret: 0, iova: 0x1000n });
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x4000000000003000n });
  assert.equal(p.host.kernel.warnings.length, 0);
});

test('IOAS_MAP: automatic IOVA — alignment from length and user_va (at most PAGE_SIZE), page offset kept, never 0 (oracle)', () => {
  const p = proc(boot());
  const { io, ioas } = setup(p);
  const buf = p.mem.alloc(1 << 22);
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 1n, ranges: FRESH });
  const m = (va: number, len: number) => map(p, io, ioas, RW, va, len);
  assert.deepEqual(m(buf + 0x100, 0x1000), { ret: 0, iova: 0x1100n }); // alignment 0x100, offset 0x100
  assert.deepEqual(m(buf, 0x3000), { ret: 0, iova: 0x3000n });
  assert.deepEqual(m(buf + 7, 1), { ret: 0, iova: 0x1007n });
  assert.deepEqual(m(buf, 0x100000), { ret: 0, iova: 0x6000n });
  assert.deepEqual(m(0x12345, 5), { ret: 0, iova: 0x2345n }); // ALIGN_UP(start) | page_offset
  assert.deepEqual(m(0, 0x2000), { ret: 0, iova: 0x106000n }); // user_va 0: aligned to the length
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x106006n });
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0n }); // nothing mapped: success, 0
});

test('IOAS_ALLOW_IOVAS: automatic IOVAs come from the allowed ranges (ENOSPC), fixed ones do not; IOVA_RANGES unchanged (oracle)', () => {
  const p = proc(boot());
  const { io, ioas, dev } = setup(p);
  const buf = p.mem.alloc(1 << 22);
  assert.equal(allowIovas(p, io, ioas, [[0x100000, 0x1fffff], [0x400000, 0x4fffff]]), 0);
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 1n, ranges: FRESH });
  const m = (len: number) => map(p, io, ioas, RW, buf, len);
  assert.deepEqual(m(0x80000), { ret: 0, iova: 0x100000n });
  assert.deepEqual(m(0x80000), { ret: 0, iova: 0x180000n });
  assert.deepEqual(m(0x80000), { ret: 0, iova: 0x400000n });
  assert.equal(m(0x100000).ret, 'ENOSPC');
  assert.equal(map(p, io, ioas, RW | FIX, buf, PG, 0x10000000).ret, 0);
  assert.equal(map(p, io, ioas, RW | FIX, buf, PG, 0x1000).ret, 0);
  assert.equal(map(p, io, ioas, RW | FIX, buf, PG, 0x100000).ret, 'EEXIST');
  // an allowed range over the MSI window: the device's reserved region cannot be reserved
  assert.equal(allowIovas(p, io, ioas, [[0xfe000000, 0xfeffffff]]), 0);
  assert.equal(attach(p, dev, ioas), -1);
  assert.equal(p.errnoName, 'EADDRINUSE');
  assert.equal(allowIovas(p, io, ioas, []), 0);
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x182000n });
  // and once reserved, an allowed range over it is refused
  assert.ok(attach(p, dev, ioas) > 0);
  assert.equal(allowIovas(p, io, ioas, [[0xfe000000, 0xfeffffff]]), 'EADDRINUSE');
});

test('lazy pinning: MAP accepts any user_va without a domain; ATTACH pins (EFAULT) or reserves (EADDRINUSE) and is undone on failure (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { io, ioas, dev } = setup(p);
  const buf = p.mem.alloc(1 << 22);
  const bad = p.mem.alloc(0x2000);
  p.mem.protect(bad, 0x2000, 0);
  const ro = p.mem.alloc(0x2000, PROT_READ);
  const group = h.vfioDevice(E1000E.bdf)!.dev.iommuGroup!;
  const blocking = group.domain;
  const tryAttach = (flags: number, va: number, len: number, iova: number | bigint) => {
    assert.equal(map(p, io, ioas, flags | FIX, va, len, iova).ret, 0);
    const a = attach(p, dev, ioas);
    const out = a === -1 ? p.errnoName : 'ok';
    if (a !== -1) detach(p, dev);
    assert.equal(group.domain, blocking); // the group is back on its blocking domain
    assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 1n, ranges: FRESH });
    assert.deepEqual(unmap(p, io, ioas, iova, len).ret, 0);
    return out;
  };
  assert.equal(tryAttach(RW, bad, 0x2000, 0x100000), 'EFAULT');
  assert.equal(tryAttach(RW, ro, 0x2000, 0x100000), 'EFAULT'); // FOLL_WRITE on a read-only mapping
  assert.equal(tryAttach(R, ro, 0x2000, 0x100000), 'ok');
  assert.equal(tryAttach(RW, buf, PG, 0xfee00000), 'EADDRINUSE'); // the MSI window
  assert.equal(tryAttach(RW, buf, PG, 1n << 39n), 'EADDRINUSE'); // beyond the aperture
  assert.equal(tryAttach(RW, buf, 0x800, 0x1000), 'EADDRINUSE'); // not page aligned
  assert.equal(p.kproc.pinnedVm, 0);
  // no object id was consumed by the failed attaches: the auto HWPT of the next attach is 3
  assert.equal(attach(p, dev, ioas), 3);
  assert.equal(h.kernel.warnings.length, 0);
});

test('IOAS_MAP with a domain: pinned at once (EFAULT), PAGE_SIZE alignment, reserved ranges EINVAL; HUGE_PAGES (oracle)', () => {
  const p = proc(boot());
  const { io, ioas, dev } = setup(p);
  const buf = p.mem.alloc(1 << 22);
  const bad = p.mem.alloc(0x2000);
  p.mem.protect(bad, 0x2000, 0);
  const ro = p.mem.alloc(0x2000, PROT_READ);
  assert.equal(attach(p, dev, ioas), 3);
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 0x1000n, ranges: ATTACHED });
  const m = (flags: number, va: number, len: number, iova = 0n) => map(p, io, ioas, flags, va, len, iova);
  assert.equal(m(RW, buf + 0x100, PG).ret, 'EINVAL');
  assert.deepEqual(m(RW, buf, 0x3000), { ret: 0, iova: 0x1000n });
  assert.deepEqual(m(RW, buf + 0x1000, PG), { ret: 0, iova: 0x4000n });
  assert.equal(m(RW, bad, PG).ret, 'EFAULT');
  assert.equal(m(RW, ro, PG).ret, 'EFAULT');
  assert.deepEqual(m(R, ro, PG), { ret: 0, iova: 0x5000n });
  assert.deepEqual(m(W, buf, PG), { ret: 0, iova: 0x6000n });
  assert.equal(m(RW | FIX, buf, PG, 0xfee00000n).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf, 0x2000, 0xfedff000n).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf, PG, 1n << 39n).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf, 0x800, 0x4000000n).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf, PG, 0x4000800n).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf + 0x800, PG, 0x4000000n).ret, 'EINVAL');
  assert.equal(m(RW, buf + 0x800, PG).ret, 'EINVAL');
  assert.equal(m(RW | FIX, buf, PG, 0x1000n).ret, 'EEXIST');
  // 3 + 1 + 1 + 1 pages pinned; root has CAP_IPC_LOCK: nothing charged, pinned_vm counts
  assert.equal(p.kproc.pinnedVm, 6);
  assert.equal(hugePages(p, io, ioas, SET, 0).ret, 'EINVAL'); // domains with areas
  assert.deepEqual(hugePages(p, io, ioas, GET), { ret: 0, val: 1n });
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x6000n });
  assert.equal(p.kproc.pinnedVm, 0);
  assert.equal(hugePages(p, io, ioas, SET, 0).ret, 0);
  assert.deepEqual(hugePages(p, io, ioas, GET), { ret: 0, val: 0n });
  assert.equal(hugePages(p, io, ioas, SET, 2).ret, 'EINVAL');
  assert.equal(hugePages(p, io, ioas, 3).ret, 'EOPNOTSUPP');
  assert.equal(hugePages(p, io, 99, 3).ret, 'ENOENT');
  assert.equal(hugePages(p, io, 0, GET).ret, 'ENOENT');
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 0x1000n, ranges: ATTACHED });
  assert.deepEqual(option(p, io, U.IOMMU_OPTION_RLIMIT_MODE, GET, 0, 77), { ret: 0, val: 0n });
});

test('HUGE_PAGES: disabling raises the alignment to PAGE_SIZE even without a domain; EADDRINUSE over sub-page areas (oracle)', () => {
  const p = proc(boot());
  const { io, ioas, devid } = setup(p);
  const buf = p.mem.alloc(1 << 20);
  const a = hwptAlloc(p, io, devid, ioas);
  const b = hwptAlloc(p, io, devid, ioas);
  assert.deepEqual([a, b], [{ ret: 0, id: 3 }, { ret: 0, id: 4 }]);
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x4000, 0x100000).ret, 0);
  assert.equal(destroy(p, io, 3), 0);
  assert.equal(hugePages(p, io, ioas, SET, 0).ret, 'EINVAL'); // one domain left, with an area
  assert.equal(destroy(p, io, 4), 0);
  assert.equal(hugePages(p, io, ioas, SET, 0).ret, 0); // no domain
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 0x1000n, ranges: FRESH });
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x800, 0x300000).ret, 'EINVAL');
  assert.equal(hugePages(p, io, ioas, SET, 1).ret, 0);
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 1n, ranges: FRESH });
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x800, 0x300000).ret, 0);
  assert.equal(hugePages(p, io, ioas, SET, 0).ret, 'EADDRINUSE');
  assert.deepEqual(hugePages(p, io, ioas, GET), { ret: 0, val: 1n });
  // IOMMU_OPTION with the minimum size (24): val64 is written back
  const o = p.mem.alloc(32);
  const ob = new Uint8Array(32).fill(0xee);
  ob.set(new Uint8Array([24, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, ioas, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0]));
  p.mem.write(o, ob);
  assert.equal(p.ioctl(io, U.IOMMU_OPTION, o), 0);
  assert.equal(hex(p.mem.read(o, 32)), `1800000001000000 01000000${ioas.toString(16).padStart(2, '0')}000000 0100000000000000 eeeeeeeeeeeeeeee`);
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x4800n });
});

test('IOAS_UNMAP: no splitting, nothing unmapped is ENOENT, removed areas stay removed, size checks (oracle)', () => {
  const p = proc(boot());
  const { io, ioas } = setup(p);
  const buf = p.mem.alloc(1 << 20);
  for (const [iova, len] of [[0x100000, 0x4000], [0x300000, 0x1000], [0x301000, 0x2000]] as const)
    assert.equal(map(p, io, ioas, RW | FIX, buf, len, iova).ret, 0);
  assert.deepEqual(unmap(p, io, ioas, 0x101000, 0x1000), { ret: 'ENOENT', length: 0x1000n }); // inside an area
  // the first area goes, then the second one reaches outside: ENOENT, length not written
  assert.deepEqual(unmap(p, io, ioas, 0x300000, 0x2000), { ret: 'ENOENT', length: 0x2000n });
  assert.deepEqual(unmap(p, io, ioas, 0x300000, 0x1000), { ret: 'ENOENT', length: 0x1000n }); // already gone
  assert.equal(unmap(p, io, ioas, 0x900000, 0).ret, 'EINVAL');
  assert.equal(unmap(p, io, ioas, U64_MAX, 1).ret, 'EOVERFLOW');
  assert.equal(unmap(p, io, ioas, 0xfffffffffffff000n, 0x2000).ret, 'EOVERFLOW');
  assert.equal(unmap(p, io, ioas, 0x1000, U64_MAX).ret, 'EOVERFLOW');
  assert.equal(unmap(p, io, 99, 0, U64_MAX).ret, 'ENOENT');
  assert.deepEqual(unmap(p, io, ioas, 0, 0x200000), { ret: 0, length: 0x4000n }); // a superset of areas
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x2000n });
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0n });
});

test('IOAS_COPY: exact contiguous coverage or ENOENT, EPERM for WRITEABLE over pages mapped without write, pages shared (oracle)', () => {
  const p = proc(boot());
  const { io, ioas } = setup(p);
  const ioas2 = ioasAlloc(p, io);
  const buf = p.mem.alloc(1 << 20);
  const ro = p.mem.alloc(0x4000, PROT_READ);
  assert.equal(map(p, io, ioas, R | FIX, ro, 0x2000, 0x100000).ret, 0);
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x2000, 0x102000).ret, 0);
  assert.equal(map(p, io, ioas, R | FIX, buf + 0x10000, 0x2000, 0x104000).ret, 0);
  const c = (flags: number, len: number | bigint, dst: number | bigint, src: number | bigint, d = ioas2, s = ioas) => copy(p, io, flags, d, s, len, dst, src);
  assert.equal(c(RW | FIX, 0x1000, 0x200000, 0x100000).ret, 'EPERM');
  assert.equal(c(R | FIX, 0x2000, 0x200000, 0x100000).ret, 0);
  assert.equal(c(RW | FIX, 0x2000, 0x300000, 0x104000).ret, 'EPERM'); // writable memory, mapped READABLE
  assert.equal(c(RW, 0x4000, 0, 0x102000).ret, 'EPERM');
  const span = c(R, 0x4000, 0, 0x100000); // over a READABLE-only and a RW area
  assert.deepEqual([span.ret, span.dstIova], [0, 0x1000n]);
  const sub = c(R, 0x2000, 0, 0x101000); // the second page of one area, the first of the next
  assert.deepEqual([sub.ret, sub.dstIova], [0, 0x5000n]);
  assert.equal(c(R, 0x2000, 0, 0x105000).ret, 'ENOENT'); // runs past the last area
  assert.equal(c(R, 0x2000, 0, 0x900000).ret, 'ENOENT');
  assert.equal(c(R, 0, 0, 0x100000).ret, 'EINVAL');
  assert.equal(c(R | 8, 0x1000, 0, 0x100000).ret, 'EOPNOTSUPP');
  assert.equal(c(0, 0x1000, 0, 0x100000).ret, 'EINVAL');
  assert.equal(c(R, 0x1000, 0, 0x100000, ioas2, 99).ret, 'ENOENT');
  assert.equal(c(R, 0x1000, 0, 0x100000, 99).ret, 'ENOENT');
  assert.equal(c(R, 0x1000, 0, 0x900000, 99).ret, 'ENOENT');
  assert.equal(c(R, U64_MAX, 0, 0x100000).ret, 'EOVERFLOW');
  assert.equal(c(R, 0x2000, 0, 0xfffffffffffff000n).ret, 'EOVERFLOW');
  assert.equal(c(R | FIX, 0x1000, 0x200000, 0x100000).ret, 'EEXIST');
  assert.equal(c(R | FIX, 0x1000, 0x1000, 0x100000, ioas).ret, 0); // within one IOAS
  // CONFIG_IOMMUFD_TEST's syzkaller hook: src_iova = {nth area, offset}
  const syz = c(R | (1 << 16), 0x1000, 0, 1n | (0x1000n << 32n));
  assert.deepEqual([syz.ret, syz.dstIova], [0, 0x7000n]);
  assert.deepEqual([syz.raw.flags, syz.raw.src_iova], [R, 0x101000n]); // the converted command is written back
  assert.deepEqual(unmapAll(p, io, ioas2), { ret: 0, length: 0x9000n });
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0x7000n });
});

test('IOAS_MAP_FILE: any file is taken lazily; with a domain only a shmem file inside its size pins (EINVAL otherwise); EBADF (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { io, ioas, dev } = setup(p);
  const mfd = p.memfdCreate('m');
  assert.equal(p.ftruncate(mfd, 0x10000), 0);
  const efd = p.eventfd();
  const nfd = p.open('/dev/null');
  const mf = (flags: number, fd: number, start: number | bigint, len: number | bigint, iova: number | bigint = 0) => mapFile(p, io, ioas, flags, fd, start, len, iova);
  assert.deepEqual(mf(RW, mfd, 0, 0x4000), { ret: 0, iova: 0x1000n });
  assert.deepEqual(mf(RW, mfd, 0x100, 0x1000), { ret: 0, iova: 0x5100n }); // the offset in the page is kept
  assert.deepEqual(mf(RW, mfd, 0xf000, 0x4000), { ret: 0, iova: 0x7000n }); // past i_size: nothing checks yet
  assert.deepEqual(mf(RW, efd, 0, 0x1000), { ret: 0, iova: 0xb000n }); // not even a memfd
  assert.equal(mf(RW, 77, 0, 0x1000).ret, 'EBADF');
  assert.equal(mf(RW, -1, 0, 0x1000).ret, 'EBADF');
  assert.equal(mf(RW, mfd, 0, 0).ret, 'EINVAL');
  assert.equal(mf(RW, mfd, U64_MAX - 0x10n, 0x1000).ret, 'EOVERFLOW');
  assert.equal(mf(RW, 77, 0, 0).ret, 'EINVAL');
  assert.equal(mf(RW | 8, mfd, 0, 0x1000).ret, 'EOPNOTSUPP');
  assert.equal(mf(0, mfd, 0, 0x1000).ret, 'EINVAL');
  assert.equal(mf(RW, mfd, U64_MAX, 0x1000).ret, 'EOVERFLOW');
  // the pages hold the eventfd: closing the fd does not release it while mapped
  assert.equal(p.close(efd), 0);
  assert.deepEqual(unmapAll(p, io, ioas), { ret: 0, length: 0xa000n });
  assert.equal(attach(p, dev, ioas), 3);
  assert.deepEqual(mf(RW, mfd, 0, 0x4000), { ret: 0, iova: 0x1000n });
  assert.deepEqual(mf(RW, mfd, 0x1000, 0x1000), { ret: 0, iova: 0x5000n });
  assert.equal(mf(RW, mfd, 0x100, 0x1000).ret, 'EINVAL'); // alignment 0x100 < PAGE_SIZE
  assert.equal(mf(RW, mfd, 0xf000, 0x4000).ret, 'EINVAL'); // memfd_pin_folios: past i_size
  assert.equal(mf(RW, mfd, 0xf000, 0x1000).ret, 0);
  const efd2 = p.eventfd();
  assert.equal(mf(RW, efd2, 0, 0x1000).ret, 'EINVAL');
  assert.equal(mf(RW, nfd, 0, 0x1000).ret, 'EINVAL');
  assert.equal(mf(RW, p.memfdCreate('empty'), 0, 0x1000).ret, 'EINVAL');
  assert.equal(p.kproc.pinnedVm, 6); // 4 + 1 + 1 pages of the memfd
  assert.equal(unmapAll(p, io, ioas).ret, 0);
  assert.equal(p.kproc.pinnedVm, 0);
  assert.equal(h.kernel.warnings.length, 0);
});

test('memfd_create / ftruncate: a shmem file with its own pages (read, write, fstat, /proc link)', () => {
  const p = proc(boot());
  const fd = p.memfdCreate('buf');
  assert.equal(fd, 3);
  assert.equal(p.readlink(`/proc/self/fd/${fd}`), '/memfd:buf (deleted)');
  assert.equal(p.fstat(fd)!.size, 0);
  assert.equal(p.ftruncate(fd, 0x3000), 0);
  assert.equal(p.fstat(fd)!.size, 0x3000);
  assert.equal(p.writeBytes(fd, 'hello', 0x1ffe), 5);
  assert.equal(new TextDecoder().decode(p.readBytes(fd, 5, 0x1ffe)!), 'hello');
  assert.deepEqual([...p.readBytes(fd, 4, 0)!], [0, 0, 0, 0]);
  assert.equal(p.readBytes(fd, 16, 0x3000)!.length, 0);
  assert.equal(p.ftruncate(fd, 0x1fff), 0);
  assert.deepEqual([...p.readBytes(fd, 8, 0x1ffe)!], [0x68]);
  assert.equal(p.ftruncate(fd, -1), -1);
  assert.equal(p.errnoName, 'EINVAL');
  assert.equal(p.ftruncate(99, 0), -1);
  assert.equal(p.errnoName, 'EBADF');
  assert.equal(p.ftruncate(p.open('/dev/null'), 0), -1);
  assert.equal(p.errnoName, 'EINVAL');
  assert.equal(p.memfdCreate('x'.repeat(250)), -1);
  assert.equal(p.errnoName, 'EINVAL');
  assert.equal(p.memfdCreate('c', 1 /* MFD_CLOEXEC */), 5);
  assert.equal(p.fcntl(5, 1 /* F_GETFD */), 1);
});

test('accounting: USER mode per uid against RLIMIT_MEMLOCK, MM mode per process (locked_vm), pinned_vm always; pins follow domains (oracle)', () => {
  const h = boot();
  const caps = ['CAP_SYS_RAWIO', 'CAP_SYS_RESOURCE', 'CAP_SYS_ADMIN', 'CAP_DAC_OVERRIDE']; // root without CAP_IPC_LOCK
  const p = proc(h, { caps, rlimitMemlock: 16 * PG });
  const { io, ioas, dev } = setup(p);
  const ioas2 = ioasAlloc(p, io);
  const buf = p.mem.alloc(1 << 22);
  const users = procTable(h.kernel).userLockedVm;
  const st = () => ({ user: users.get(0) ?? 0, locked: p.kproc.lockedVm, pinned: p.kproc.pinnedVm });
  assert.equal(attach(p, dev, ioas), 4);
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x8000, 0x100000).ret, 0);
  assert.deepEqual(st(), { user: 8, locked: 0, pinned: 8 });
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x8000, 0x200000).ret, 0); // the same memory again: charged again
  assert.deepEqual(st(), { user: 16, locked: 0, pinned: 16 });
  assert.equal(map(p, io, ioas, RW | FIX, buf + 0x100000, 0x1000, 0x300000).ret, 'ENOMEM');
  assert.deepEqual(st(), { user: 16, locked: 0, pinned: 16 });
  assert.equal(unmap(p, io, ioas, 0x200000, 0x8000).ret, 0);
  assert.deepEqual(st(), { user: 8, locked: 0, pinned: 8 });
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x800, 0x300000).ret, 'EINVAL');
  // a copy shares the pages: nothing more is pinned
  assert.equal(copy(p, io, RW | FIX, ioas2, ioas, 0x8000, 0x100000, 0x100000).ret, 0);
  assert.deepEqual(st(), { user: 8, locked: 0, pinned: 8 });
  // a second context in MM mode (vfio's accounting)
  const io2 = p.open('/dev/iommu');
  const rl = (op: number, val = 0, obj = 0) => option(p, io2, U.IOMMU_OPTION_RLIMIT_MODE, op, obj, val);
  assert.deepEqual(rl(GET), { ret: 0, val: 0n });
  assert.equal(rl(SET, 1).ret, 0);
  assert.deepEqual(rl(GET), { ret: 0, val: 1n });
  assert.equal(rl(SET, 2).ret, 'EINVAL');
  assert.equal(rl(GET, 0, 1).ret, 'EOPNOTSUPP');
  assert.equal(rl(2).ret, 'EOPNOTSUPP');
  const i2 = ioasAlloc(p, io2);
  assert.equal(rl(SET, 0).ret, 'EBUSY');
  const dev2 = p.open(cdevPath(NVME));
  bind(p, dev2, io2);
  assert.ok(attach(p, dev2, i2) > 0);
  assert.equal(map(p, io2, i2, RW | FIX, buf + 0x200000, 0x8000, 0x100000).ret, 0);
  assert.deepEqual(st(), { user: 8, locked: 8, pinned: 16 });
  assert.equal(map(p, io2, i2, RW | FIX, buf + 0x200000, 0x8000, 0x200000).ret, 0);
  assert.deepEqual(st(), { user: 8, locked: 16, pinned: 24 });
  assert.equal(map(p, io2, i2, RW | FIX, buf + 0x200000, 0x1000, 0x300000).ret, 'ENOMEM');
  assert.deepEqual(unmapAll(p, io2, i2), { ret: 0, length: 0x10000n });
  assert.deepEqual(st(), { user: 8, locked: 0, pinned: 8 });
  assert.equal(destroy(p, io, ioas2), 0);
  assert.equal(detach(p, dev), 0); // the last domain goes: the areas stay, unpinned
  assert.deepEqual(st(), { user: 0, locked: 0, pinned: 0 });
  assert.ok(attach(p, dev, ioas) > 0); // pinned again
  assert.deepEqual(st(), { user: 8, locked: 0, pinned: 8 });
  assert.equal(detach(p, dev), 0);
  assert.equal(destroy(p, io, ioas), 0);
  assert.deepEqual(st(), { user: 0, locked: 0, pinned: 0 });
  // CAP_IPC_LOCK: IOPT_PAGES_ACCOUNT_NONE, only pinned_vm
  const q = proc(h, { rlimitMemlock: PG });
  const s = setup(q, EDU);
  assert.ok(attach(q, s.dev, s.ioas) > 0);
  const qb = q.mem.alloc(0x10000);
  assert.equal(map(q, s.io, s.ioas, RW, qb, 0x10000).ret, 0);
  assert.deepEqual([users.get(0) ?? 0, q.kproc.lockedVm, q.kproc.pinnedVm], [0, 0, 16]);
  // exit: the context goes, leaf first; the areas are unmapped and unaccounted
  q.exit();
  assert.deepEqual([users.get(0) ?? 0, q.kproc.lockedVm, q.kproc.pinnedVm], [0, 0, 0]);
  assert.equal(h.kernel.warnings.length, 0);
});

test('HWPT_ALLOC with areas: pinned when the domain is added (EFAULT), aperture EADDRINUSE; reserved regions only at ATTACH (oracle)', () => {
  const p = proc(boot());
  const { io, ioas, dev, devid } = setup(p);
  const buf = p.mem.alloc(1 << 20);
  const bad = p.mem.alloc(0x2000);
  p.mem.protect(bad, 0x2000, 0);
  assert.equal(map(p, io, ioas, RW | FIX, bad, PG, 0x100000).ret, 0);
  assert.equal(hwptAlloc(p, io, devid, ioas).ret, 'EFAULT');
  assert.equal(unmap(p, io, ioas, 0x100000, PG).ret, 0);
  assert.equal(map(p, io, ioas, RW | FIX, buf, PG, 0xfee00000).ret, 0);
  assert.deepEqual(hwptAlloc(p, io, devid, ioas), { ret: 0, id: 3 });
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 0x1000n, ranges: ['0x0-0x7fffffffff'] });
  assert.equal(attach(p, dev, 3), -1);
  assert.equal(p.errnoName, 'EADDRINUSE');
  assert.equal(unmap(p, io, ioas, 0xfee00000, PG).ret, 0);
  assert.equal(attach(p, dev, 3), 3);
  assert.deepEqual(ranges(p, io, ioas), { ret: 0, align: 0x1000n, ranges: ATTACHED });
  assert.equal(map(p, io, ioas, RW | FIX, buf, PG, 0xfee00000).ret, 'EINVAL');
  assert.equal(destroy(p, io, ioas), -1);
  assert.equal(p.errnoName, 'EBUSY');
  assert.equal(detach(p, dev), 0);
  assert.equal(destroy(p, io, 3), 0);
  assert.equal(map(p, io, ioas, RW | FIX, buf, PG, 1n << 39n).ret, 0);
  assert.equal(hwptAlloc(p, io, devid, ioas).ret, 'EADDRINUSE');
  assert.equal(unmapAll(p, io, ioas).ret, 0);
  // two domains: a map goes into both, a bad one into neither
  assert.deepEqual([hwptAlloc(p, io, devid, ioas), hwptAlloc(p, io, devid, ioas)], [{ ret: 0, id: 3 }, { ret: 0, id: 4 }]);
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x4000, 0x100000).ret, 0);
  assert.equal(map(p, io, ioas, RW | FIX, bad, PG, 0x200000).ret, 'EFAULT');
  assert.equal(p.kproc.pinnedVm, 4); // pinned once for both domains
  // IOVA_RANGES with too small an array: EMSGSIZE after writing what fits and the count
  assert.equal(destroy(p, io, 3), 0);
  assert.equal(destroy(p, io, 4), 0);
  assert.equal(p.kproc.pinnedVm, 0);
  assert.equal(attach(p, dev, ioas), 3);
  const arr = p.mem.alloc(32);
  p.mem.write(arr, new Uint8Array(32).fill(0xab));
  const q = p.mem.struct(U.iommu_ioas_iova_ranges, { size: 32, ioas_id: ioas, num_iovas: 1, allowed_iovas: BigInt(arr) });
  assert.equal(p.ioctl(io, U.IOMMU_IOAS_IOVA_RANGES, q), -1);
  assert.equal(p.errnoName, 'EMSGSIZE');
  const o = p.mem.readStruct(U.iommu_ioas_iova_ranges, q);
  assert.deepEqual([o.num_iovas, o.out_iova_alignment], [2, 0x1000n]);
  assert.equal(hex(p.mem.read(arr, 32)), '0000000000000000 ffffdffe00000000 abababababababab abababababababab');
  assert.equal(destroy(p, io, ioas), -1);
  assert.equal(detach(p, dev), 0);
  assert.equal(destroy(p, io, ioas), 0); // with an area
});

test('IOMMU_GET_HW_INFO: Intel VT-d data (cap/ecap of the emulated IOMMU), zero-filled tail, data_len, capabilities (oracle)', () => {
  const p = proc(boot());
  const { io, devid } = setup(p);
  const data = p.mem.alloc(64);
  const hi = (over: Record<string, number | bigint>, size = U.iommu_hw_info.size) => {
    const a = p.mem.alloc(48);
    const b = new Uint8Array(48).fill(0xee);
    const v = { size, flags: 0, dev_id: devid, data_len: 24, data_uptr: BigInt(data), ...over };
    b.set(U.encode(U.iommu_hw_info, v as never).subarray(0, Math.min(size, 40)));
    p.mem.write(a, b);
    p.mem.write(data, new Uint8Array(64).fill(0xcc));
    const ret = p.ioctl(io, U.IOMMU_GET_HW_INFO, a);
    return { ret: ret === -1 ? p.errnoName : ret, cmd: hex(p.mem.read(a, 48)), data: hex(p.mem.read(data, 48)) };
  };
  const up = (BigInt(data) | 0n).toString(16).padStart(16, '0').match(/../g)!.reverse().join('');
  const cmd = `2800000000000000 0${devid}00000018000000 ${up} 0100000000000000 0800000000000000 eeeeeeeeeeeeeeee`;
  const cc = 'cccccccccccccccc';
  const words = ['0100000000000000', '860226228c00d200', '4a0ff00000000000', '0000000000000000', '0000000000000000'];
  for (let dl = 0; dl <= 40; dl += 8) {
    const r = hi({ data_len: dl });
    assert.equal(r.ret, 0);
    assert.equal(r.cmd, cmd, `data_len ${dl}`);
    assert.equal(r.data, [...words.slice(0, dl / 8), ...Array(6 - dl / 8).fill(cc)].join(' '), `data_len ${dl}`);
  }
  // size 32: out_capabilities is not written back
  assert.equal(hi({}, 32).cmd, `2000000000000000 0${devid}00000018000000 ${up} 0100000000000000 eeeeeeeeeeeeeeee eeeeeeeeeeeeeeee`);
  const F = U.IOMMU_HW_INFO_FLAG_INPUT_TYPE;
  assert.equal(hi({ flags: F, in_data_type: 2 }).ret, 'EOPNOTSUPP');
  assert.equal(hi({ flags: F, in_data_type: 1 }).ret, 0);
  assert.equal(hi({ flags: F, in_data_type: 0 }).ret, 0);
  assert.equal(hi({ in_data_type: 7 }).ret, 0); // ignored without the flag
  assert.equal(hi({ flags: 2 }).ret, 'EOPNOTSUPP');
  const rb = p.mem.struct(U.iommu_hw_info, { size: 40, dev_id: devid, data_len: 24, data_uptr: BigInt(data) });
  p.mem.write(rb + 30, new Uint8Array([1]));
  assert.equal(p.ioctl(io, U.IOMMU_GET_HW_INFO, rb), -1);
  assert.equal(p.errnoName, 'EOPNOTSUPP'); // __reserved
  assert.equal(hi({ dev_id: 99 }).ret, 'ENOENT');
  assert.equal(hi({ data_uptr: 8n }).ret, 'EFAULT');
  assert.equal(hi({ data_uptr: 8n, data_len: 0 }).ret, 0);
});

test('dispatcher size rules for every iommufd ioctl: EFAULT, EINVAL below the minimum, E2BIG for a non-zero tail, a zero tail accepted', () => {
  const h = boot();
  const p = proc(h);
  // drivers/iommu/iommufd/main.c: IOCTL_OP(ioctl, fn, struct, last member)
  const ops: Array<[string, number, StructDef<string>, string]> = [
    ['DESTROY', U.IOMMU_DESTROY, U.iommu_destroy, 'id'],
    ['FAULT_QUEUE_ALLOC', U.IOMMU_FAULT_QUEUE_ALLOC, U.iommu_fault_alloc, 'out_fault_fd'],
    ['GET_HW_INFO', U.IOMMU_GET_HW_INFO, U.iommu_hw_info, '__reserved'],
    ['HW_QUEUE_ALLOC', U.IOMMU_HW_QUEUE_ALLOC, U.iommu_hw_queue_alloc, 'length'],
    ['HWPT_ALLOC', U.IOMMU_HWPT_ALLOC, U.iommu_hwpt_alloc, '__reserved'],
    ['HWPT_GET_DIRTY_BITMAP', U.IOMMU_HWPT_GET_DIRTY_BITMAP, U.iommu_hwpt_get_dirty_bitmap, 'data'],
    ['HWPT_INVALIDATE', U.IOMMU_HWPT_INVALIDATE, U.iommu_hwpt_invalidate, '__reserved'],
    ['HWPT_SET_DIRTY_TRACKING', U.IOMMU_HWPT_SET_DIRTY_TRACKING, U.iommu_hwpt_set_dirty_tracking, '__reserved'],
    ['IOAS_ALLOC', U.IOMMU_IOAS_ALLOC, U.iommu_ioas_alloc, 'out_ioas_id'],
    ['IOAS_ALLOW_IOVAS', U.IOMMU_IOAS_ALLOW_IOVAS, U.iommu_ioas_allow_iovas, 'allowed_iovas'],
    ['IOAS_CHANGE_PROCESS', U.IOMMU_IOAS_CHANGE_PROCESS, U.iommu_ioas_change_process, '__reserved'],
    ['IOAS_COPY', U.IOMMU_IOAS_COPY, U.iommu_ioas_copy, 'src_iova'],
    ['IOAS_IOVA_RANGES', U.IOMMU_IOAS_IOVA_RANGES, U.iommu_ioas_iova_ranges, 'out_iova_alignment'],
    ['IOAS_MAP', U.IOMMU_IOAS_MAP, U.iommu_ioas_map, 'iova'],
    ['IOAS_MAP_FILE', U.IOMMU_IOAS_MAP_FILE, U.iommu_ioas_map_file, 'iova'],
    ['IOAS_UNMAP', U.IOMMU_IOAS_UNMAP, U.iommu_ioas_unmap, 'length'],
    ['OPTION', U.IOMMU_OPTION, U.iommu_option, 'val64'],
    ['VDEVICE_ALLOC', U.IOMMU_VDEVICE_ALLOC, U.iommu_vdevice_alloc, 'virt_id'],
    ['VEVENTQ_ALLOC', U.IOMMU_VEVENTQ_ALLOC, U.iommu_veventq_alloc, 'out_veventq_fd'],
    ['VFIO_IOAS', U.IOMMU_VFIO_IOAS, U.iommu_vfio_ioas, '__reserved'],
    ['VIOMMU_ALLOC', U.IOMMU_VIOMMU_ALLOC, U.iommu_viommu_alloc, 'out_viommu_id'],
  ];
  const call = (num: number, size: number, tail: number, len: number) => {
    const io = p.open('/dev/iommu');
    const a = p.mem.alloc(len + 16);
    const b = new Uint8Array(len + 16);
    new DataView(b.buffer).setUint32(0, size, true);
    // MAP, MAP_FILE, COPY: flags READABLE, so that the handler gets as far as the IOAS lookup
    if ([U.IOMMU_IOAS_MAP, U.IOMMU_IOAS_MAP_FILE, U.IOMMU_IOAS_COPY].includes(num)) b[4] = R;
    if (tail) b[len - 1] = tail;
    p.mem.write(a, b);
    const r = p.ioctl(io, num, a);
    const out = r === -1 ? p.errnoName : r;
    p.close(io);
    return out;
  };
  const io = p.open('/dev/iommu');
  for (const [name, num, S, last] of ops) {
    const min = U.offsetofend(S, last);
    assert.equal(p.ioctl(io, num, 0), -1, name);
    assert.equal(p.errnoName, 'EFAULT', name);
    assert.equal(call(num, min - 1, 0, S.size), 'EINVAL', `${name} size ${min - 1}`);
    assert.equal(call(num, S.size + 8, 1, S.size + 8), 'E2BIG', `${name} non-zero tail`);
    const exact = call(num, S.size, 0, S.size);
    assert.notEqual(exact, 'EINVAL', name);
    assert.equal(call(num, S.size + 8, 0, S.size + 8), exact, `${name} zero tail`);
    assert.equal(call(num, min, 0, min), exact, `${name} minimum size`);
  }
  // an unused slot of the table: ENOTTY after the size read (and EFAULT before it)
  const unused = (0x3b << 8) | 0x95;
  assert.equal(call(unused, 16, 0, 16), 'ENOTTY');
  assert.equal(p.ioctl(io, unused, 0), -1);
  assert.equal(p.errnoName, 'EFAULT');
  // a successful IOAS_MAP with a zero tail writes back sizeof(struct iommu_ioas_map) bytes (oracle)
  const ioas = ioasAlloc(p, io);
  const buf = p.mem.alloc(PG);
  const a = p.mem.alloc(64);
  const b = new Uint8Array(56);
  b.set(U.encode(U.iommu_ioas_map, { size: 48, flags: RW, ioas_id: ioas, user_va: BigInt(buf), length: 0x1000n }));
  b.fill(0xee, 48);
  p.mem.write(a, b);
  assert.equal(p.ioctl(io, U.IOMMU_IOAS_MAP, a), 0);
  const vaHex = hex(new Uint8Array(new BigUint64Array([BigInt(buf)]).buffer));
  assert.equal(hex(p.mem.read(a, 56)), `3000000006000000 0100000000000000 ${vaHex} 0010000000000000 0010000000000000 0000000000000000 eeeeeeeeeeeeeeee`);
});

test('IOAS destroy and context release unmap everything: pins released, accounting back to zero, files of MAP_FILE put', () => {
  const h = boot();
  const caps = ['CAP_SYS_RAWIO', 'CAP_SYS_RESOURCE', 'CAP_SYS_ADMIN', 'CAP_DAC_OVERRIDE'];
  const p = proc(h, { caps });
  const users = procTable(h.kernel).userLockedVm;
  const { io, ioas, dev } = setup(p);
  const spare = ioasAlloc(p, io);
  const buf = p.mem.alloc(0x10000);
  const efd = p.eventfd();
  const ef = p.file(efd)!;
  assert.equal(mapFile(p, io, spare, RW, efd, 0, PG).ret, 0); // lazily, no domain
  assert.equal(p.close(efd), 0);
  assert.equal(ef.released, false); // the pages hold it
  assert.equal(destroy(p, io, spare), 0);
  assert.equal(ef.released, true);
  assert.ok(attach(p, dev, ioas) > 0);
  assert.equal(map(p, io, ioas, RW, buf, 0x10000).ret, 0);
  const mfd = p.memfdCreate('m');
  p.ftruncate(mfd, 0x4000);
  assert.equal(mapFile(p, io, ioas, RW, mfd, 0, 0x4000).ret, 0);
  const mf = p.file(mfd)!;
  p.close(mfd);
  assert.deepEqual([users.get(0), p.kproc.pinnedVm], [20, 20]);
  // the IOAS is busy (its HWPT), the context goes when the last file reference does: the
  // cdev's release unbinds, then the leaf-first destruction unmaps the areas
  assert.equal(p.close(io), 0);
  assert.deepEqual([users.get(0), p.kproc.pinnedVm, mf.released], [20, 20, false]);
  assert.equal(p.close(dev), 0);
  assert.deepEqual([users.get(0) ?? 0, p.kproc.pinnedVm, mf.released], [0, 0, true]);
  assert.equal(h.kernel.warnings.length, 0);
});

test('the pages belong to the mapping process: a forked child attaching pins the parent memory (charged to the parent); EFAULT once the parent exited (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { io, ioas, dev } = setup(p);
  const buf = p.mem.alloc(0x4000);
  p.mem.write(buf, new TextEncoder().encode('parent'));
  assert.equal(map(p, io, ioas, RW | FIX, buf, 0x4000, 0x100000).ret, 0);
  const c = p.fork('child');
  c.mem.write(buf, new TextEncoder().encode('child!')); // the child's copy of the memory
  assert.equal(attach(c, dev, ioas), 3);
  const r = dmaRead(h.vfioDevice(E1000E.bdf)!.dev, 0x100000n, 6);
  assert.ok(r.ok);
  assert.equal(new TextDecoder().decode(r.data), 'parent');
  assert.deepEqual([p.kproc.pinnedVm, c.kproc.pinnedVm], [4, 0]);
  assert.equal(detach(c, dev), 0);
  assert.equal(p.kproc.pinnedVm, 0);
  p.exit();
  assert.equal(attach(c, dev, ioas), -1);
  assert.equal(c.errnoName, 'EFAULT');
  assert.equal(unmapAll(c, io, ioas).ret, 0);
  assert.equal(attach(c, dev, ioas), 3);
  assert.equal(map(c, io, ioas, RW | FIX, buf, 0x2000, 0x200000).ret, 0);
  assert.deepEqual([p.kproc.pinnedVm, c.kproc.pinnedVm], [0, 2]);
  // iopt_set_allow_iova looks at reserved ranges only: an allowed range may cover an area
  assert.equal(allowIovas(c, io, ioas, [[0x100000, 0x2fffff]]), 0);
  assert.equal(h.kernel.warnings.length, 0);
});

test('a BAR mmap (VM_IO | VM_PFNMAP) is never pinned: EFAULT at MAP with a domain, at ATTACH without (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { io, ioas, dev } = setup(p);
  // what a driver's ->mmap of device memory installs (Process.mmap does this for vfio-pci regions)
  const bar = (p.kproc.mm as AddressSpace).mapBacked(new Uint8Array(0x2000), 3);
  assert.equal(map(p, io, ioas, RW | FIX, bar, 0x2000, 0x100000).ret, 0);
  assert.equal(attach(p, dev, ioas), -1);
  assert.equal(p.errnoName, 'EFAULT');
  assert.equal(unmap(p, io, ioas, 0x100000, 0x2000).ret, 0);
  assert.equal(attach(p, dev, ioas), 3);
  assert.equal(map(p, io, ioas, RW | FIX, bar, 0x2000, 0x100000).ret, 'EFAULT');
  assert.equal(map(p, io, ioas, R | FIX, bar, 0x1000, 0x100000).ret, 'EFAULT');
  // ordinary memory still maps
  const before = p.mem.alloc(0x1000);
  assert.equal(map(p, io, ioas, R | FIX, before, 0x1000, 0x100000).ret, 0);
  assert.equal(h.kernel.warnings.length, 0);
});
