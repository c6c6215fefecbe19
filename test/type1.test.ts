// The type1 / type1v2 container backend's DMA uAPI (drivers/vfio/vfio_iommu_type1.c): GET_INFO
// with its capability chain, MAP_DMA, UNMAP_DMA (v1 and v2), VADDR updates, RLIMIT_MEMLOCK
// accounting, dirty tracking, device DMA through the container's domains, group attach/detach
// with mappings. "oracle" marks values read back from Linux 7.2 (shared/oracle) with the same
// arguments on the same topology.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Process } from '../src/api/index.js';
import type { Host } from '../src/api/index.js';
import { dmaRead, dmaWrite } from '../src/iommu/dma.js';
import { DEFAULT_IOMMU_HW, IommuGroup } from '../src/iommu/iommu.js';
import type { IommuHw } from '../src/iommu/iommu.js';
import type { KGen } from '../src/kernel/sched.js';
import { PROT_READ } from '../src/kernel/uaccess.js';
import type { VfioContainer } from '../src/vfio/container.js';
import { VfioGroupType } from '../src/vfio/vfio.js';
import { VfioIommu, vfioDmaDoMap, vfioIommuType1Ops } from '../src/vfio/vfio_iommu_type1.js';
import { E1000E, EDU, NVME, U, boot, call, getDeviceFd, groupPath, groupStatus, proc, setContainer } from './helpers.js';

const RW = U.VFIO_DMA_MAP_FLAG_READ | U.VFIO_DMA_MAP_FLAG_WRITE;
const R = U.VFIO_DMA_MAP_FLAG_READ;
const W = U.VFIO_DMA_MAP_FLAG_WRITE;
const VADDR = U.VFIO_DMA_MAP_FLAG_VADDR;
const ALL = U.VFIO_DMA_UNMAP_FLAG_ALL;
const UVADDR = U.VFIO_DMA_UNMAP_FLAG_VADDR;
const DIRTY = U.VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
const V1 = U.VFIO_TYPE1_IOMMU;
const V2 = U.VFIO_TYPE1v2_IOMMU;
const APERTURE_END = (1n << 39n) - 1n;

const rc = (p: Process, r: number): number | string => (r === -1 ? p.errnoName : r);

/** A group of `d` in a fresh container with the given backend. */
function container(p: Process, type: number = V2, d: { group: number } = E1000E): { g: number; c: number } {
  const g = p.open(groupPath(d));
  assert.ok(g >= 0, p.errnoName);
  const c = p.open('/dev/vfio/vfio');
  assert.equal(setContainer(p, g, c), 0, p.errnoName);
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, type), 0, p.errnoName);
  return { g, c };
}

/** The backend instance behind a container fd (for inspection). */
function iommuOf(p: Process, c: number): VfioIommu {
  return (p.file(c)!.privateData as VfioContainer).iommuData as VfioIommu;
}

interface MapArgs {
  argsz?: number;
  flags?: number;
  vaddr: bigint | number;
  iova: bigint | number;
  size: bigint | number;
}

function map(p: Process, c: number, m: MapArgs): number | string {
  const a = p.mem.struct(U.vfio_iommu_type1_dma_map, {
    argsz: m.argsz ?? 32,
    flags: m.flags ?? RW,
    vaddr: BigInt(m.vaddr),
    iova: BigInt(m.iova),
    size: BigInt(m.size),
  });
  return rc(p, p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, a));
}

/** UNMAP_DMA; r and the size field as the user reads it back afterwards. */
function unmap(p: Process, c: number, u: { argsz?: number; flags?: number; iova: bigint | number; size: bigint | number }): { r: number | string; size: bigint } {
  const S = U.vfio_iommu_type1_dma_unmap;
  const a = p.mem.struct(S, { argsz: u.argsz ?? 24, flags: u.flags ?? 0, iova: BigInt(u.iova), size: BigInt(u.size) });
  const r = rc(p, p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, a));
  return { r, size: p.mem.readStruct(S, a).size as bigint };
}

/** UNMAP_DMA with GET_DIRTY_BITMAP (argsz 48: the header and a struct vfio_bitmap). */
function unmapDirty(p: Process, c: number, iova: bigint, size: bigint, bm: { pgsize: bigint; size: bigint; data: bigint }): { r: number | string; size: bigint } {
  const a = p.mem.alloc(48);
  const b = new Uint8Array(48);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 48, true);
  dv.setUint32(4, DIRTY, true);
  dv.setBigUint64(8, iova, true);
  dv.setBigUint64(16, size, true);
  dv.setBigUint64(24, bm.pgsize, true);
  dv.setBigUint64(32, bm.size, true);
  dv.setBigUint64(40, bm.data, true);
  p.mem.write(a, b);
  const r = rc(p, p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, a));
  return { r, size: new DataView(p.mem.read(a, 24).buffer).getBigUint64(16, true) };
}

function dirtyPages(p: Process, c: number, argsz: number, flags: number): number | string {
  return rc(p, p.ioctl(c, U.VFIO_IOMMU_DIRTY_PAGES, p.mem.struct(U.vfio_iommu_type1_dirty_bitmap, { argsz, flags })));
}

/** DIRTY_PAGES GET_BITMAP with a vfio_iommu_type1_dirty_bitmap_get after the 8-byte header. */
function getBitmap(
  p: Process,
  c: number,
  r: { argsz?: number; iova: bigint; size: bigint; pgsize?: bigint; bsize?: bigint; data: bigint },
): number | string {
  const a = p.mem.alloc(48);
  const b = new Uint8Array(48);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, r.argsz ?? 48, true);
  dv.setUint32(4, U.VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP, true);
  dv.setBigUint64(8, r.iova, true);
  dv.setBigUint64(16, r.size, true);
  dv.setBigUint64(24, r.pgsize ?? 4096n, true);
  dv.setBigUint64(32, r.bsize ?? 8n, true);
  dv.setBigUint64(40, r.data, true);
  p.mem.write(a, b);
  return rc(p, p.ioctl(c, U.VFIO_IOMMU_DIRTY_PAGES, a));
}

/** GET_INFO into a 256-byte buffer prefilled with 0xaa: r and the first `show` bytes as hex. */
function info(p: Process, c: number, argsz: number, show = Math.min(argsz + 8, 200)): { r: number | string; hex: string; bytes: Uint8Array } {
  const a = p.mem.alloc(256);
  const b = new Uint8Array(256).fill(0xaa);
  new DataView(b.buffer).setUint32(0, argsz, true);
  p.mem.write(a, b);
  const r = rc(p, p.ioctl(c, U.VFIO_IOMMU_GET_INFO, a));
  const bytes = p.mem.read(a, 256);
  return { r, hex: Buffer.from(bytes.subarray(0, show)).toString('hex'), bytes };
}

/** The IOVA ranges of GET_INFO's IOVA_RANGE capability. */
function iovaRanges(p: Process, c: number): Array<[bigint, bigint]> {
  const { r, bytes } = info(p, c, 256);
  assert.equal(r, 0);
  const dv = new DataView(bytes.buffer);
  let off = dv.getUint32(16, true);
  while (off) {
    if (dv.getUint16(off, true) === U.VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const n = dv.getUint32(off + 8, true);
      const out: Array<[bigint, bigint]> = [];
      for (let i = 0; i < n; i++) out.push([dv.getBigUint64(off + 16 + 16 * i, true), dv.getBigUint64(off + 24 + 16 * i, true)]);
      return out;
    }
    off = dv.getUint32(off + 4, true);
  }
  return [];
}

function dmaAvail(p: Process, c: number): number {
  const { bytes } = info(p, c, 256);
  // MIGRATION (32 bytes) at 24, then DMA_AVAIL: avail after its 8-byte header
  return new DataView(bytes.buffer).getUint32(24 + 32 + 8, true);
}

/** A read/write buffer filled with a byte pattern (byte i = i * 7 + seed). */
function pattern(p: Process, len: number, seed = 1): number {
  const a = p.mem.alloc(len);
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed) & 0xff;
  p.mem.write(a, b);
  return a;
}

function pciDev(h: Host, bdf: string) {
  return h.vfioDevice(bdf)!.dev;
}

/** Give one IOMMU group its own hardware description (another IOMMU, for conflict tests). */
function setGroupHw(h: Host, bdf: string, hw: Partial<IommuHw>): IommuGroup {
  const grp = pciDev(h, bdf).iommuGroup!;
  (grp as unknown as { hw: IommuHw }).hw = { ...grp.hw, ...hw };
  return grp;
}

const lockedKb = (p: Process) => p.kproc.lockedVm * 4;

// The IOVA_RANGE capability of e1000e's group alone: the 39-bit aperture minus the MSI window.
const FULL_INFO_V2 =
  '7800000003000000' + '0010204000000000' + '1800000000000000' + // argsz 120, PGSIZES|CAPS, 4K|2M|1G, cap_offset 24
  '0200010038000000' + '0000000000000000' + '0010000000000000' + '0000001000000000' + // MIGRATION: 4K, max bitmap 256M
  '0300010048000000' + 'ffff000000000000' + // DMA_AVAIL 65535
  '0100010000000000' + '0200000000000000' + '0000000000000000' + 'ffffdffe00000000' + '0000f0fe00000000' + 'ffffffff7f000000'; // IOVA_RANGE x2

// ---- GET_INFO --------------------------------------------------------------------------------------

test('type1 GET_INFO: argsz < 16 EINVAL; copy-out is min(argsz, 24); a short argsz is grown to 120 with no chain (oracle bytes)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const aa = (n: number) => 'aa'.repeat(n);
    const r15 = info(p, c, 15);
    assert.deepEqual([r15.r, r15.hex], ['EINVAL', '0f000000' + aa(19)]); // oracle: nothing written
    assert.equal(info(p, c, 16).hex, '7800000003000000' + '0010204000000000' + aa(8)); // oracle
    assert.equal(info(p, c, 20).hex, '7800000003000000' + '0010204000000000' + '00000000' + aa(8)); // oracle
    assert.equal(info(p, c, 24).hex, '7800000003000000' + '0010204000000000' + '0000000000000000' + aa(8)); // oracle
    assert.equal(info(p, c, 32).hex, '7800000003000000' + '0010204000000000' + '0000000000000000' + aa(16)); // oracle
    const r119 = info(p, c, 119);
    assert.equal(r119.r, 0);
    assert.equal(r119.hex, '7800000003000000' + '0010204000000000' + '0000000000000000' + aa(127 - 24)); // oracle
  }
});

test('type1 GET_INFO: with room the chain MIGRATION, DMA_AVAIL, IOVA_RANGE follows at 24, next offsets from the buffer start (oracle bytes)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const r120 = info(p, c, 120);
    assert.equal(r120.r, 0);
    assert.equal(r120.hex, FULL_INFO_V2 + 'aa'.repeat(8)); // oracle
    // a larger argsz is written back as given; nothing beyond the chain is touched
    const r136 = info(p, c, 136);
    assert.equal(r136.hex, '88' + FULL_INFO_V2.slice(2) + 'aa'.repeat(24)); // oracle
  }
});

test('type1 GET_INFO: EFAULT for an unreadable or read-only argument and for a chain that runs into an unmapped page (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_GET_INFO, 0x1000)), 'EFAULT'); // oracle
  const ro = p.mem.alloc(4096);
  p.mem.write(ro, new Uint8Array([200, 0, 0, 0]));
  p.mem.protect(ro, 4096, PROT_READ);
  assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_GET_INFO, ro)), 'EFAULT'); // oracle
  const two = p.mem.alloc(8192);
  p.mem.free(two + 4096, 4096);
  const arg = two + 4096 - 48;
  const b = new Uint8Array(48).fill(0xaa);
  new DataView(b.buffer).setUint32(0, 200, true);
  p.mem.write(arg, b);
  assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_GET_INFO, arg)), 'EFAULT'); // oracle
  // the header is not written back
  const back = p.mem.readStruct(U.vfio_iommu_type1_info, arg);
  assert.deepEqual([back.argsz, back.cap_offset], [200, 0xaaaaaaaa]); // oracle
});

test('type1 GET_INFO: DMA_AVAIL counts the free mapping slots; the IOVA ranges are the aperture minus the MSI window (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  assert.deepEqual(iovaRanges(p, c), [
    [0n, 0xfedfffffn],
    [0xfef00000n, APERTURE_END],
  ]); // oracle: reserved_regions 0x00000000fee00000 0x00000000feefffff msi
  const buf = p.mem.alloc(0x10000);
  for (let i = 0; i < 7; i++) assert.equal(map(p, c, { vaddr: buf, iova: 0x100000 * (i + 1), size: 0x1000 }), 0);
  assert.equal(dmaAvail(p, c), 0xfff8); // oracle: 65535 - 7
});

// ---- MAP_DMA -----------------------------------------------------------------------------------------

test('type1 MAP_DMA: argument checks in the kernel order (oracle)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const v = BigInt(p.mem.alloc(0x10000));
    const m = (a: Partial<MapArgs>) => map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000, ...a });
    assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, 0x1000)), 'EFAULT'); // oracle
    assert.equal(m({ argsz: 31 }), 'EINVAL'); // oracle
    assert.equal(m({ flags: RW | 8 }), 'EINVAL'); // oracle
    assert.equal(m({ size: 0 }), 'EINVAL'); // oracle
    assert.equal(m({ size: 0, flags: 0 }), 'EINVAL'); // oracle
    assert.equal(m({ iova: 0xfffffffffffff000n }), 'EOVERFLOW'); // oracle
    assert.equal(m({ vaddr: 0xfffffffffffff000n }), 'EOVERFLOW'); // oracle
    assert.equal(m({ iova: 0xfffffffffffff000n, flags: 0 }), 'EOVERFLOW'); // oracle: overflow before the prot check
    assert.equal(m({ flags: 0 }), 'EINVAL'); // oracle
    assert.equal(m({ flags: R | VADDR }), 'EINVAL'); // oracle
    assert.equal(m({ size: 0x2001 }), 'EINVAL'); // oracle
    assert.equal(m({ iova: 0x100800 }), 'EINVAL'); // oracle
    assert.equal(m({ vaddr: v + 8n }), 'EINVAL'); // oracle
    assert.equal(m({ flags: VADDR }), 'ENOENT'); // oracle
    assert.equal(m({ flags: VADDR, iova: 0x100800 }), 'EINVAL'); // oracle: alignment first
    assert.equal(m({}), 0); // oracle
    assert.equal(m({ argsz: 100, iova: 0x200000, size: 0x1000 }), 0); // oracle: a larger argsz is fine
    assert.equal(m({}), 'EEXIST'); // oracle
    assert.equal(m({ iova: 0x101000 }), 'EEXIST'); // oracle
    assert.equal(m({ iova: 0xff000 }), 'EEXIST'); // oracle
    assert.equal(m({ flags: VADDR }), 'EINVAL'); // oracle: the mapping's vaddr is valid
    assert.equal(rc(p, p.ioctl(c, 0x3b76, 0)), 'ENOTTY'); // oracle
  }
});

test('type1 MAP_DMA: only inside one valid IOVA range — not in the MSI window, not above the 39-bit aperture (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const v = p.mem.alloc(0x2000);
  const m = (iova: bigint, size = 0x1000n) => map(p, c, { vaddr: v, iova, size });
  assert.equal(m(0xfee00000n), 'EINVAL'); // oracle
  assert.equal(m(0xfedff000n), 0); // oracle
  assert.equal(m(0xfedff000n, 0x2000n), 'EEXIST'); // oracle: the overlap is found first
  assert.equal(m(0xfeeff000n, 0x2000n), 'EINVAL'); // across the window's end
  assert.equal(m(0xfef00000n), 0); // oracle
  assert.equal(m(APERTURE_END + 1n - 0x1000n), 0); // oracle
  assert.equal(m(APERTURE_END + 1n), 'EINVAL'); // oracle
  assert.equal(m((1n << 48n) - 0x1000n), 'EINVAL'); // oracle
});

test('type1 MAP_DMA: the vaddr must be mapped (and writable for a writable mapping), else EFAULT and nothing stays (oracle)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    assert.equal(map(p, c, { vaddr: 0x1000, iova: 0x300000, size: 0x1000 }), 'EFAULT'); // oracle
    assert.equal(map(p, c, { flags: R, vaddr: 0x1000, iova: 0x300000, size: 0x1000 }), 'EFAULT'); // oracle
    const ro = p.mem.alloc(0x4000, PROT_READ);
    assert.equal(map(p, c, { flags: W, vaddr: ro, iova: 0x300000, size: 0x1000 }), 'EFAULT'); // oracle
    assert.equal(map(p, c, { flags: RW, vaddr: ro, iova: 0x300000, size: 0x1000 }), 'EFAULT'); // oracle
    assert.equal(map(p, c, { flags: R, vaddr: ro, iova: 0x300000, size: 0x1000 }), 0); // oracle
    const none = p.mem.alloc(0x4000, 0);
    assert.equal(map(p, c, { flags: R, vaddr: none, iova: 0x310000, size: 0x1000 }), 'EFAULT'); // oracle
    assert.equal(lockedKb(p), 4); // oracle: the read-only page is accounted
    // second page unmapped: nothing pinned, nothing accounted, nothing mapped
    const half = p.mem.alloc(0x2000);
    p.mem.free(half + 0x1000, 0x1000);
    assert.equal(map(p, c, { vaddr: half, iova: 0x320000, size: 0x2000 }), 'EFAULT'); // oracle
    assert.equal(lockedKb(p), 4); // oracle
    assert.deepEqual(unmap(p, c, { iova: 0x320000, size: 0x2000 }), { r: 0, size: 0n }); // oracle
    assert.equal(map(p, c, { vaddr: half, iova: 0x320000, size: 0x1000 }), 0); // oracle
    assert.equal(lockedKb(p), 8);
    assert.equal(dmaAvail(p, c), 65533);
  }
});

test('type1 MAP_DMA: pinned pages are charged to locked_vm per mapping; RLIMIT_MEMLOCK gives ENOMEM without CAP_IPC_LOCK (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const v = p.mem.alloc(0x40000);
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x8000 }), 0);
  assert.equal(lockedKb(p), 32); // oracle VmLck
  // root: CAP_IPC_LOCK lifts the limit
  p.kproc.rlimitMemlock = 0x4000;
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x8000 }), 0);
  assert.equal(lockedKb(p), 64);
  assert.equal(unmap(p, c, { iova: 0x200000, size: 0x8000 }).r, 0);
  // without it: 64K = 16 pages
  p.kproc.rlimitMemlock = 0x10000;
  p.kproc.cred.caps.delete('CAP_IPC_LOCK');
  assert.equal(map(p, c, { vaddr: v + 0x8000, iova: 0x200000, size: 0x8000 }), 0); // oracle: exactly the limit
  const over = call(p, () => p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, p.mem.struct(U.vfio_iommu_type1_dma_map, { argsz: 32, flags: RW, vaddr: BigInt(v + 0x10000), iova: 0x300000n, size: 0x1000n })));
  assert.deepEqual([over.errno, over.events], ['ENOMEM', ['printk']]); // oracle
  assert.equal(over.trace.find((e) => e.name === 'printk')!.msg, 'vfio_pin_pages_remote: RLIMIT_MEMLOCK (65536) exceeded'); // oracle dmesg
  assert.equal(lockedKb(p), 64); // oracle
  // a page already pinned by another mapping is charged again
  assert.equal(map(p, c, { vaddr: v, iova: 0x400000, size: 0x1000 }), 'ENOMEM'); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x100000, size: 0x8000 }), { r: 0, size: 0x8000n }); // oracle
  assert.equal(map(p, c, { vaddr: v + 0x20000, iova: 0x500000, size: 0x10000 }), 'ENOMEM'); // oracle: all or nothing
  assert.equal(lockedKb(p), 32); // oracle
  assert.deepEqual(unmap(p, c, { flags: ALL, iova: 0, size: 0 }), { r: 0, size: 0x8000n }); // oracle
  assert.equal(lockedKb(p), 0); // oracle
});

test('type1 MAP_DMA: RLIMIT_MEMLOCK against a fault — whichever the in-order walk of the pages meets first (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const hole = p.mem.alloc(0x8000);
  p.mem.free(hole + 0x3000, 0x1000); // page 3 missing
  const child = p.fork('child'); // uses the container fd it inherited
  child.kproc.cred.caps.clear();
  child.kproc.rlimitMemlock = 0x2000; // 2 pages
  assert.equal(map(child, c, { vaddr: hole, iova: 0x100000, size: 0x8000 }), 'ENOMEM'); // oracle: the limit at page 2, the fault at 3
  assert.equal(map(child, c, { vaddr: hole, iova: 0x100000, size: 0x2000 }), 0); // oracle
  assert.equal(map(child, c, { vaddr: hole, iova: 0x200000, size: 0x1000 }), 'ENOMEM'); // oracle
  assert.equal(map(child, c, { vaddr: hole + 0x3000, iova: 0x200000, size: 0x1000 }), 'EFAULT'); // oracle: the fault comes first
  assert.equal(lockedKb(child), 8); // oracle
  assert.deepEqual(unmap(child, c, { flags: ALL, iova: 0, size: 0 }), { r: 0, size: 0x2000n }); // oracle
  child.kproc.rlimitMemlock = 0;
  assert.equal(map(child, c, { vaddr: hole + 0x3000, iova: 0x400000, size: 0x1000 }), 'EFAULT'); // oracle
  assert.equal(map(child, c, { vaddr: hole, iova: 0x400000, size: 0x1000 }), 'ENOMEM'); // oracle
  assert.equal(lockedKb(p), 0);
});

test('type1 MAP_DMA: dma_entry_limit slots — ENOSPC after EEXIST and before the IOVA-range check; freed by UNMAP (oracle)', () => {
  const h = boot();
  const p = proc(h);
  assert.equal(p.writeFile('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', '2'), 1); // oracle
  const { c } = container(p);
  const v = p.mem.alloc(0x1000);
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x1000 }), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x1000 }), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x300000, size: 0x1000 }), 'ENOSPC'); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0xfee00000, size: 0x1000 }), 'ENOSPC'); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x1000 }), 'EEXIST'); // oracle
  assert.equal(dmaAvail(p, c), 0); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x100000, size: 0x1000 }), { r: 0, size: 0x1000n });
  assert.equal(map(p, c, { vaddr: v, iova: 0x300000, size: 0x1000 }), 0); // oracle
  // the limit is read when the backend is opened
  p.writeFile('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', '65535');
  assert.equal(map(p, c, { vaddr: v, iova: 0x400000, size: 0x1000 }), 'ENOSPC');
});

test('type1 MAP_DMA: a successful map is a vfio_dma_map event; the mapping is mirrored in the domain page table', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const v = p.mem.alloc(0x3000);
  const r = call(p, () => p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, p.mem.struct(U.vfio_iommu_type1_dma_map, { argsz: 32, flags: RW, vaddr: BigInt(v), iova: 0x10000n, size: 0x3000n })));
  assert.deepEqual([r.ret, r.events], [0, ['vfio_dma_map']]);
  const iommu = iommuOf(p, c);
  assert.equal(iommu.domains.length, 1);
  const pt = iommu.domains[0]!.domain.pt.all();
  assert.deepEqual(pt.map((m) => [m.start, m.last, m.prot]), [[0x10000n, 0x12fffn, 1 | 2 | 4]]); // READ|WRITE|CACHE
  const u = call(p, () => p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: 24, iova: 0x10000n, size: 0x3000n })));
  assert.deepEqual([u.ret, u.events], [0, ['vfio_dma_unmap']]);
  assert.equal(iommu.domains[0]!.domain.pt.size, 0);
});

// ---- UNMAP_DMA -----------------------------------------------------------------------------------------

test('type1 UNMAP_DMA: argument checks in the kernel order; the size field is written back only on success (oracle)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const v = p.mem.alloc(0x2000);
    assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 0);
    const u = (a: { argsz?: number; flags?: number; iova: bigint | number; size: bigint | number }) => unmap(p, c, a);
    assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, 0x1000)), 'EFAULT'); // oracle
    assert.deepEqual(u({ argsz: 23, iova: 0x100000, size: 0x2000 }), { r: 'EINVAL', size: 0x2000n }); // oracle
    assert.deepEqual(u({ flags: 8, iova: 0x100000, size: 0x2000 }), { r: 'EINVAL', size: 0x2000n }); // oracle
    assert.deepEqual(u({ flags: DIRTY | ALL, iova: 0, size: 0 }), { r: 'EINVAL', size: 0n }); // oracle
    assert.deepEqual(u({ flags: DIRTY | UVADDR, iova: 0x100000, size: 0x2000 }), { r: 'EINVAL', size: 0x2000n }); // oracle
    assert.deepEqual(u({ flags: DIRTY, iova: 0x100000, size: 0x2000 }), { r: 'EINVAL', size: 0x2000n }); // oracle: argsz 24 < 48
    assert.deepEqual(u({ iova: 0x100800, size: 0x2000 }), { r: 'EINVAL', size: 0x2000n }); // oracle
    assert.deepEqual(u({ flags: ALL, iova: 0x100000, size: 0 }), { r: 'EINVAL', size: 0n }); // oracle
    assert.deepEqual(u({ flags: ALL, iova: 0, size: 0x1000 }), { r: 'EINVAL', size: 0x1000n }); // oracle
    assert.deepEqual(u({ iova: 0x100000, size: 0 }), { r: 'EINVAL', size: 0n }); // oracle
    assert.deepEqual(u({ iova: 0x100000, size: 0x1800 }), { r: 'EINVAL', size: 0x1800n }); // oracle
    assert.deepEqual(u({ iova: 0xfffffffffffff000n, size: 0x2000 }), { r: 'EOVERFLOW', size: 0x2000n }); // oracle
    assert.deepEqual(u({ iova: 0x5000000, size: 0x2000 }), { r: 0, size: 0n }); // oracle: nothing there
    // GET_DIRTY_BITMAP: the bitmap argument, then tracking must be on
    const bits = BigInt(p.mem.alloc(32));
    const ud = (size: bigint, bm: { pgsize: bigint; size: bigint; data: bigint }) => unmapDirty(p, c, 0x100000n, size, bm);
    assert.deepEqual(ud(0x2000n, { pgsize: 4096n, size: 8n, data: bits }), { r: 'EINVAL', size: 0x2000n }); // oracle: tracking off
    assert.equal(ud(0x2000n, { pgsize: 0n, size: 8n, data: bits }).r, 'EINVAL'); // oracle
    assert.equal(ud(0x2000n, { pgsize: 4096n, size: 0n, data: bits }).r, 'EINVAL'); // oracle
    assert.equal(ud(0x2000n, { pgsize: 4096n, size: 8n, data: 0xffffffffffff0000n }).r, 'EINVAL'); // oracle: access_ok
    assert.equal(ud(0x2000n, { pgsize: 4096n, size: 0x10000001n, data: bits }).r, 'EINVAL'); // oracle: over 256 MiB
    assert.equal(ud(0n, { pgsize: 4096n, size: 8n, data: bits }).r, 'EINVAL'); // oracle
    // the mapping is still there after all of this
    assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 'EEXIST');
    // on a fault writing the result back the unmap has happened anyway (oracle)
    const a = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: 24, iova: 0x100000n, size: 0x2000n });
    p.mem.protect(a, 4096, PROT_READ);
    assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, a)), 'EFAULT'); // oracle
    assert.deepEqual(u({ iova: 0x100000, size: 0x2000 }), { r: 0, size: 0n }); // oracle
  }
});

test('type1v2 UNMAP_DMA: no bisecting — a range starting or ending inside a mapping is EINVAL; whole mappings go (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p, V2);
  const v = p.mem.alloc(0x4000);
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x1000 }), 0);
  assert.deepEqual(unmap(p, c, { iova: 0x101000, size: 0x1000 }), { r: 'EINVAL', size: 0x1000n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x100000, size: 0x1000 }), { r: 'EINVAL', size: 0x1000n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0xff000, size: 0x2000 }), { r: 'EINVAL', size: 0x2000n }); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 'EEXIST'); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0xf0000, size: 0x200000 }), { r: 0, size: 0x3000n }); // oracle: both, from a wide range
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 0); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0x102000, size: 0x1000 }), 0); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x101000, size: 0x3000 }), { r: 'EINVAL', size: 0x3000n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x100000, size: 0x2000 }), { r: 0, size: 0x2000n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x102000, size: 0x1000 }), { r: 0, size: 0x1000n }); // oracle
});

test('type1 (v1) UNMAP_DMA: a range covering a mapping\'s first page takes the whole mapping; a walk meeting a mapping that starts below iova stops (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p, V1);
  const v = p.mem.alloc(0x4000);
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x1000 }), 0);
  assert.deepEqual(unmap(p, c, { iova: 0x101000, size: 0x1000 }), { r: 0, size: 0n }); // oracle: success, nothing
  assert.deepEqual(unmap(p, c, { iova: 0x100000, size: 0x1000 }), { r: 0, size: 0x2000n }); // oracle: the whole mapping
  assert.deepEqual(unmap(p, c, { iova: 0xff000, size: 0x2000 }), { r: 0, size: 0n }); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 0); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0xf0000, size: 0x200000 }), { r: 0, size: 0x3000n }); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x2000 }), 0); // oracle
  assert.equal(map(p, c, { vaddr: v, iova: 0x102000, size: 0x1000 }), 0); // oracle
  // the first mapping met starts below iova: nothing is unmapped, not even the one fully inside
  assert.deepEqual(unmap(p, c, { iova: 0x101000, size: 0x3000 }), { r: 0, size: 0n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x100000, size: 0x2000 }), { r: 0, size: 0x2000n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x102000, size: 0x1000 }), { r: 0, size: 0x1000n }); // oracle
});

test('type1 UNMAP_DMA ALL: every mapping, the total size written back; again gives 0; pins and accounting released (oracle)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const v = p.mem.alloc(0x10000);
    assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x4000 }), 0);
    assert.equal(map(p, c, { vaddr: v, iova: 0xfef00000, size: 0x1000 }), 0);
    assert.equal(map(p, c, { vaddr: v, iova: APERTURE_END + 1n - 0x2000n, size: 0x2000 }), 0);
    assert.equal(lockedKb(p), 28);
    assert.deepEqual(unmap(p, c, { flags: ALL, iova: 0, size: 0 }), { r: 0, size: 0x7000n }); // oracle
    assert.equal(lockedKb(p), 0); // oracle
    assert.deepEqual(unmap(p, c, { flags: ALL, iova: 0, size: 0 }), { r: 0, size: 0n }); // oracle
    assert.equal(dmaAvail(p, c), 65535);
    assert.equal(iommuOf(p, c).domains[0]!.domain.pt.size, 0);
  }
});

// ---- VADDR -----------------------------------------------------------------------------------------------

test('type1 VADDR: invalidate, roll back on an already invalid mapping, update only with the exact iova and size (oracle)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const v = BigInt(p.mem.alloc(0x40000));
    assert.equal(rc(p, p.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_UPDATE_VADDR)), 1); // oracle
    assert.equal(map(p, c, { vaddr: v, iova: 0x400000, size: 0x4000 }), 0);
    assert.equal(map(p, c, { vaddr: v + 0x4000n, iova: 0x404000, size: 0x1000 }), 0);
    assert.equal(lockedKb(p), 20);
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x400000, size: 0x4000 }), { r: 0, size: 0x4000n }); // oracle
    assert.equal(lockedKb(p), 20); // oracle: still pinned and charged
    assert.equal(iommuOf(p, c).vaddrInvalidCount, 1);
    // c is already invalid: nothing stays marked by this call
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x400000, size: 0x5000 }), { r: 'EINVAL', size: 0x5000n }); // oracle
    assert.equal(iommuOf(p, c).vaddrInvalidCount, 1);
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x404000, size: 0x1000 }), { r: 0, size: 0x1000n }); // oracle
    // the first mapping met is already invalid: EINVAL, nothing marked
    assert.deepEqual(unmap(p, c, { flags: UVADDR | ALL, iova: 0, size: 0 }), { r: 'EINVAL', size: 0n }); // oracle
    assert.equal(iommuOf(p, c).vaddrInvalidCount, 2);
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x400000, size: 0x2000 }), 'EINVAL'); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x401000, size: 0x1000 }), 'EINVAL'); // oracle
    assert.equal(map(p, c, { vaddr: v, iova: 0x400000, size: 0x4000 }), 'EEXIST'); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v + 0x10000n, iova: 0x400000, size: 0x4000 }), 0); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v + 0x20000n, iova: 0x404000, size: 0x1000 }), 0); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v + 0x10000n, iova: 0x400000, size: 0x4000 }), 'EINVAL'); // oracle: valid again
    const iommu = iommuOf(p, c);
    assert.equal(iommu.vaddrInvalidCount, 0);
    assert.deepEqual(iommu.mappings().map((d) => d.vaddr), [v + 0x10000n, v + 0x20000n]);
    // a normal unmap removes invalidated mappings too
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x400000, size: 0x5000 }), { r: 0, size: 0x5000n }); // oracle
    assert.deepEqual(unmap(p, c, { iova: 0x400000, size: 0x5000 }), { r: 0, size: 0x5000n }); // oracle
    assert.equal(iommu.vaddrInvalidCount, 0);
    assert.equal(lockedKb(p), 0);
  }
});

test('type1 VADDR: marks made before meeting an invalid mapping are rolled back; v2 refuses a bisecting range, v1 stops at it (oracle)', () => {
  for (const type of [V2, V1]) {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, type);
    const v = p.mem.alloc(0x10000);
    for (const iova of [0x100000, 0x102000, 0x104000]) assert.equal(map(p, c, { vaddr: v, iova, size: 0x1000 }), 0);
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x102000, size: 0x1000 }), { r: 0, size: 0x1000n }); // oracle
    // A is marked, then B (invalid) is met: A's mark is undone, C never marked
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x100000, size: 0x5000 }), { r: 'EINVAL', size: 0x5000n }); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x100000, size: 0x1000 }), 'EINVAL'); // oracle: A valid
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x104000, size: 0x1000 }), 'EINVAL'); // oracle: C valid
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x102000, size: 0x1000 }), 0); // oracle
    assert.deepEqual(unmap(p, c, { flags: UVADDR | ALL, iova: 0, size: 0 }), { r: 0, size: 0x3000n }); // oracle
    for (const iova of [0x100000, 0x102000, 0x104000]) assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova, size: 0x1000 }), 0); // oracle
    assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x3000 }), 0);
    assert.deepEqual(
      unmap(p, c, { flags: UVADDR, iova: 0x201000, size: 0x4000 }),
      type === V2 ? { r: 'EINVAL', size: 0x4000n } : { r: 0, size: 0n },
    ); // oracle
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0xff000, size: 0x3000 }), { r: 0, size: 0x1000n }); // oracle: A only
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x100000, size: 0x1000 }), 0); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x102000, size: 0x1000 }), 'EINVAL'); // oracle
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x102000, size: 0x1000 }), { r: 0, size: 0x1000n }); // oracle
    // B (invalid) is met first: C is not marked
    assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x101000, size: 0x4000 }), { r: 'EINVAL', size: 0x4000n }); // oracle
    assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x104000, size: 0x1000 }), 'EINVAL'); // oracle
    assert.equal(iommuOf(p, c).vaddrInvalidCount, 1);
  }
});

test('type1 VADDR: a second group cannot attach while a vaddr is invalid (EBUSY); after the update it attaches and the mappings replay without new pins (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const v = p.mem.alloc(0x2000);
  assert.equal(map(p, c, { vaddr: v, iova: 0x900000, size: 0x2000 }), 0);
  assert.deepEqual(unmap(p, c, { flags: UVADDR, iova: 0x900000, size: 0x2000 }), { r: 0, size: 0x2000n }); // oracle
  const g2 = p.open(groupPath(NVME));
  assert.equal(rc(p, setContainer(p, g2, c)), 'EBUSY'); // oracle
  assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x900000, size: 0x2000 }), 0); // oracle
  assert.equal(lockedKb(p), 8);
  assert.equal(setContainer(p, g2, c), 0); // oracle
  assert.equal(lockedKb(p), 8); // oracle: replayed from the existing domain, not pinned again
  assert.equal(dmaAvail(p, c), 65534);
  assert.equal(rc(p, p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER)), 0); // oracle
  assert.equal(lockedKb(p), 8); // oracle
});

test('type1 VADDR from another mm (a forked child): the locked_vm charge moves to it, or ENOMEM over its limit (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const v = BigInt(p.mem.alloc(0x10000));
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x4000 }), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x2000 }), 0);
  assert.equal(unmap(p, c, { flags: UVADDR, iova: 0x100000, size: 0x4000 }).r, 0);
  const child = p.fork('child');
  assert.deepEqual([lockedKb(child), lockedKb(p)], [0, 24]); // oracle
  assert.equal(map(child, c, { flags: VADDR, vaddr: v, iova: 0x100000, size: 0x4000 }), 0); // oracle
  assert.deepEqual([lockedKb(child), lockedKb(p)], [16, 8]); // oracle
  // the child unmapping the parent's mapping uncharges the parent
  assert.deepEqual(unmap(child, c, { iova: 0x200000, size: 0x2000 }), { r: 0, size: 0x2000n }); // oracle
  assert.deepEqual([lockedKb(child), lockedKb(p)], [16, 0]); // oracle
  assert.equal(map(child, c, { vaddr: v, iova: 0x300000, size: 0x1000 }), 0); // oracle
  assert.deepEqual([lockedKb(child), lockedKb(p)], [20, 0]); // oracle
  // an update from the owning mm itself is not re-checked against the limit
  assert.equal(unmap(child, c, { flags: UVADDR, iova: 0x100000, size: 0x4000 }).r, 0);
  child.kproc.cred.caps.clear();
  child.kproc.rlimitMemlock = 0x2000;
  assert.equal(map(child, c, { flags: VADDR, vaddr: v, iova: 0x100000, size: 0x4000 }), 0); // oracle
  child.exit(0);
  assert.deepEqual(unmap(p, c, { flags: ALL, iova: 0, size: 0 }), { r: 0, size: 0x5000n }); // oracle
  assert.equal(lockedKb(p), 0); // oracle
  // into a process over its limit: ENOMEM, the vaddr stays invalid, the owner can still update it
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x4000 }), 0);
  assert.equal(unmap(p, c, { flags: UVADDR, iova: 0x100000, size: 0x4000 }).r, 0);
  const child2 = p.fork('child2');
  child2.kproc.cred.caps.clear();
  child2.kproc.rlimitMemlock = 0x2000;
  assert.equal(map(child2, c, { flags: VADDR, vaddr: v, iova: 0x100000, size: 0x4000 }), 'ENOMEM'); // oracle
  assert.deepEqual([lockedKb(child2), lockedKb(p)], [0, 16]);
  child2.exit(0);
  assert.equal(map(p, c, { flags: VADDR, vaddr: v, iova: 0x100000, size: 0x4000 }), 0); // oracle
});

// ---- DIRTY_PAGES -----------------------------------------------------------------------------------------

test('type1 DIRTY_PAGES: v1 is EACCES before anything else; v2 checks argsz and exactly one flag; START/STOP are idempotent (oracle)', () => {
  {
    const h = boot();
    const p = proc(h);
    const { c } = container(p, V1);
    for (const [argsz, flags] of [[8, 0], [7, 1], [8, 8], [8, 3], [8, 2], [8, 4], [8, 1]] as const)
      assert.equal(dirtyPages(p, c, argsz, flags), 'EACCES'); // oracle
    assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_DIRTY_PAGES, 0x1000)), 'EACCES');
    const bits = BigInt(p.mem.alloc(8));
    const v = p.mem.alloc(0x1000);
    assert.equal(map(p, c, { vaddr: v, iova: 0x800000, size: 0x1000 }), 0);
    assert.equal(unmapDirty(p, c, 0x800000n, 0x1000n, { pgsize: 4096n, size: 8n, data: bits }).r, 'EINVAL'); // oracle
  }
  const h = boot();
  const p = proc(h);
  const { c } = container(p, V2);
  assert.equal(rc(p, p.ioctl(c, U.VFIO_IOMMU_DIRTY_PAGES, 0x1000)), 'EFAULT'); // oracle
  assert.equal(dirtyPages(p, c, 8, 0), 'EINVAL'); // oracle
  assert.equal(dirtyPages(p, c, 7, 1), 'EINVAL'); // oracle
  assert.equal(dirtyPages(p, c, 8, 8), 'EINVAL'); // oracle
  assert.equal(dirtyPages(p, c, 8, 3), 'EINVAL'); // oracle
  assert.equal(dirtyPages(p, c, 8, 2), 0); // oracle: STOP while off
  assert.equal(dirtyPages(p, c, 8, 4), 'EINVAL'); // oracle: GET_BITMAP needs the range
  const bits = BigInt(p.mem.alloc(8));
  assert.equal(getBitmap(p, c, { iova: 0x800000n, size: 0x1000n, data: bits }), 'EINVAL'); // tracking off
  assert.equal(dirtyPages(p, c, 8, 1), 0); // oracle
  assert.equal(dirtyPages(p, c, 8, 1), 0); // oracle
  assert.equal(iommuOf(p, c).dirtyPageTracking, true);
  assert.equal(dirtyPages(p, c, 8, 2), 0); // oracle
  assert.equal(dirtyPages(p, c, 8, 2), 0); // oracle
  assert.equal(iommuOf(p, c).dirtyPageTracking, false);
});

test('type1 DIRTY_PAGES GET_BITMAP: every mapped page is dirty (no device reports dirtying), bits merged as the kernel shifts them (oracle bits)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p, V2);
  const v = p.mem.alloc(0x10000);
  assert.equal(dirtyPages(p, c, 8, 1), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x800000, size: 0x3000 }), 0); // e
  assert.equal(map(p, c, { flags: R, vaddr: v, iova: 0x803000, size: 0x2000 }), 0); // f: read-only, still reported
  const bits = p.mem.alloc(32);
  const words = () => {
    const dv = new DataView(p.mem.read(bits, 16).buffer);
    return [dv.getBigUint64(0, true), dv.getBigUint64(8, true)];
  };
  const setWords = (w0: bigint, w1: bigint) => {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setBigUint64(0, w0, true);
    dv.setBigUint64(8, w1, true);
    p.mem.write(bits, b);
  };
  const B = BigInt(bits);
  setWords(0x8000000000000000n, 0xffffffffffffffffn);
  assert.equal(getBitmap(p, c, { iova: 0x800000n, size: 0x5000n, data: B }), 0);
  assert.deepEqual(words(), [0x1fn, 0xffffffffffffffffn]); // oracle: only the words covering the range are written
  setWords(0n, 0n);
  assert.equal(getBitmap(p, c, { iova: 0x800000n, size: 0x5000n, data: B }), 0);
  assert.deepEqual(words(), [0xffn, 0n]); // oracle: bits shifted in by the previous report stay in f's bitmap
  setWords(0n, 0n);
  assert.equal(getBitmap(p, c, { iova: 0x7ff000n, size: 0x8000n, data: B }), 0);
  assert.deepEqual(words(), [0xffen, 0n]); // oracle
  assert.equal(getBitmap(p, c, { iova: 0x801000n, size: 0x4000n, data: B }), 'EINVAL'); // oracle: bisects e
  assert.equal(getBitmap(p, c, { iova: 0x803000n, size: 0x2000n, pgsize: 8192n, data: B }), 'EINVAL'); // oracle
  assert.equal(getBitmap(p, c, { iova: 0x803000n, size: 0x2000n, pgsize: 0n, data: B }), 'EINVAL'); // oracle
  assert.equal(getBitmap(p, c, { iova: 0x803000n, size: 0n, data: B }), 'EINVAL'); // oracle
  assert.equal(getBitmap(p, c, { iova: 0xfffffffffffff000n, size: 0x2000n, data: B }), 'EOVERFLOW'); // oracle
  assert.equal(getBitmap(p, c, { iova: 0x803800n, size: 0x2000n, data: B }), 'EINVAL'); // oracle
  assert.equal(getBitmap(p, c, { iova: 0x803000n, size: 0x2000n, data: 0x1000n }), 'EFAULT'); // oracle
  assert.equal(getBitmap(p, c, { argsz: 39, iova: 0x803000n, size: 0x2000n, data: B }), 'EINVAL'); // oracle
  // UNMAP with GET_DIRTY_BITMAP reports the same way and unmaps
  setWords(0n, 0n);
  assert.deepEqual(unmapDirty(p, c, 0x800000n, 0x5000n, { pgsize: 4096n, size: 8n, data: B }), { r: 0, size: 0x5000n }); // oracle
  assert.deepEqual(words(), [0x7fffn, 0n]); // oracle
  assert.equal(iommuOf(p, c).mappings().length, 0);
  assert.equal(dirtyPages(p, c, 8, 2), 0); // oracle
});

test('type1 UNMAP_DMA with GET_DIRTY_BITMAP: a fault on the bitmap is EFAULT after the mappings before it went; size not written (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p, V2);
  const v = p.mem.alloc(0x1000);
  assert.equal(dirtyPages(p, c, 8, 1), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x1000 }), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x240000, size: 0x1000 }), 0);
  const two = p.mem.alloc(8192);
  p.mem.free(two + 4096, 4096);
  const r = unmapDirty(p, c, 0x200000n, 0x80000n, { pgsize: 4096n, size: 16n, data: BigInt(two + 4096 - 8) });
  assert.deepEqual(r, { r: 'EFAULT', size: 0x80000n }); // oracle
  assert.deepEqual(unmap(p, c, { iova: 0x200000, size: 0x1000 }), { r: 0, size: 0n }); // oracle: gone
  assert.deepEqual(unmap(p, c, { iova: 0x240000, size: 0x1000 }), { r: 0, size: 0x1000n }); // oracle: still there
});

test('type1 DIRTY_PAGES: mappings made while tracking get a bitmap; STOP drops them; detaching a group marks every page dirty', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p, V2);
  const v = p.mem.alloc(0x4000);
  assert.equal(map(p, c, { vaddr: v, iova: 0x100000, size: 0x4000 }), 0);
  assert.equal(dirtyPages(p, c, 8, 1), 0);
  assert.equal(map(p, c, { vaddr: v, iova: 0x200000, size: 0x1000 }), 0);
  const iommu = iommuOf(p, c);
  assert.ok(iommu.mappings().every((d) => d.bitmap));
  // a group attaches and detaches: vfio_iommu_populate_bitmap_full
  const g2 = p.open(groupPath(NVME));
  assert.equal(setContainer(p, g2, c), 0);
  assert.equal(iommu.numNonPinnedGroups, 2);
  assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0);
  assert.equal(iommu.numNonPinnedGroups, 1);
  assert.equal(iommu.mappings()[0]!.bitmap![0], 0xfn);
  assert.equal(dirtyPages(p, c, 8, 2), 0);
  assert.ok(iommu.mappings().every((d) => d.bitmap === null));
});

// ---- device DMA through the container --------------------------------------------------------------------

test('type1 device DMA: a device opened through the group reads and writes the mapping process\'s memory with the mapping\'s permissions (v1 and v2)', () => {
  for (const type of [V1, V2]) {
    const h = boot();
    const p = proc(h);
    const { g, c } = container(p, type);
    const dev = getDeviceFd(p, g, E1000E.bdf);
    assert.ok(dev >= 0);
    const pd = pciDev(h, E1000E.bdf);
    const buf = pattern(p, 0x4000, 3);
    assert.equal(map(p, c, { vaddr: buf, iova: 0x10000, size: 0x2000 }), 0);
    assert.equal(map(p, c, { flags: R, vaddr: buf + 0x2000, iova: 0x20000, size: 0x1000 }), 0);
    assert.equal(map(p, c, { flags: W, vaddr: buf + 0x3000, iova: 0x30000, size: 0x1000 }), 0);
    // read across the page boundary of one mapping
    const r = dmaRead(pd, 0x10ff0n, 0x20);
    assert.ok(r.ok);
    assert.deepEqual(r.data, p.mem.read(buf + 0xff0, 0x20));
    // write, and the process sees it
    const msg = new TextEncoder().encode('written by the device');
    assert.deepEqual(dmaWrite(pd, 0x11000n, msg), { ok: true });
    assert.deepEqual(p.mem.read(buf + 0x1000, msg.length), msg);
    // read-only mapping: reads work, writes fault
    const ro = dmaRead(pd, 0x20000n, 8);
    assert.ok(ro.ok);
    assert.deepEqual(ro.data, p.mem.read(buf + 0x2000, 8));
    assert.deepEqual(dmaWrite(pd, 0x20000n, new Uint8Array(4)), { ok: false, fault: 'permission', iova: 0x20000n });
    assert.deepEqual(p.mem.read(buf + 0x2000, 4), new Uint8Array([3, 10, 17, 24]));
    // write-only mapping: writes work, reads fault
    assert.deepEqual(dmaWrite(pd, 0x30000n, new Uint8Array([9, 9])), { ok: true });
    assert.deepEqual(p.mem.read(buf + 0x3000, 2), new Uint8Array([9, 9]));
    assert.deepEqual(dmaRead(pd, 0x30000n, 2), { ok: false, fault: 'permission', iova: 0x30000n });
    // unmapped IOVA, and a transfer running off the end of a mapping
    assert.deepEqual(dmaRead(pd, 0x40000n, 4), { ok: false, fault: 'unmapped', iova: 0x40000n });
    assert.deepEqual(dmaRead(pd, 0x11ffen, 4), { ok: false, fault: 'unmapped', iova: 0x12000n });
    // after UNMAP the device faults
    assert.deepEqual(unmap(p, c, { iova: 0x10000, size: 0x2000 }), { r: 0, size: 0x2000n });
    assert.deepEqual(dmaRead(pd, 0x10000n, 4), { ok: false, fault: 'unmapped', iova: 0x10000n });
    p.close(dev);
  }
});

test('type1 device DMA: pinned pages outlive the process\'s munmap; a VADDR update does not repin', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const pd = pciDev(h, E1000E.bdf);
  const buf = pattern(p, 0x1000, 5);
  const before = p.mem.read(buf, 16);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x10000, size: 0x1000 }), 0);
  p.mem.free(buf, 0x1000);
  const r = dmaRead(pd, 0x10000n, 16);
  assert.ok(r.ok);
  assert.deepEqual(r.data, before);
  // a new vaddr is recorded for later replays; the device keeps the pinned pages
  const other = pattern(p, 0x1000, 9);
  assert.equal(unmap(p, c, { flags: UVADDR, iova: 0x10000, size: 0x1000 }).r, 0);
  assert.equal(map(p, c, { flags: VADDR, vaddr: other, iova: 0x10000, size: 0x1000 }), 0);
  const r2 = dmaRead(pd, 0x10000n, 16);
  assert.ok(r2.ok);
  assert.deepEqual(r2.data, before);
});

test('type1 device DMA: a group attached later sees the existing mappings; both devices share one domain of the same IOMMU', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const buf = pattern(p, 0x2000, 11);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x10000, size: 0x2000 }), 0);
  const g2 = p.open(groupPath(NVME));
  assert.equal(setContainer(p, g2, c), 0);
  const iommu = iommuOf(p, c);
  assert.equal(iommu.domains.length, 1);
  assert.deepEqual(iommu.domains[0]!.groups.map((g) => g.id), [E1000E.group, NVME.group]);
  const nvme = pciDev(h, NVME.bdf);
  const e1000e = pciDev(h, E1000E.bdf);
  assert.deepEqual(dmaWrite(nvme, 0x10010n, new Uint8Array([1, 2, 3])), { ok: true });
  const r = dmaRead(e1000e, 0x10010n, 3);
  assert.ok(r.ok);
  assert.deepEqual(r.data, new Uint8Array([1, 2, 3]));
  assert.deepEqual(p.mem.read(buf + 0x10, 3), new Uint8Array([1, 2, 3]));
  // the detached group is back in its blocking domain
  assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0);
  assert.deepEqual(dmaRead(nvme, 0x10010n, 3), { ok: false, fault: 'blocked', iova: 0x10010n });
  assert.ok(dmaRead(e1000e, 0x10010n, 3).ok);
});

test('type1 attach with mappings: another IOMMU gets its own domain, the mappings are replayed into it; failing checks leave the group out', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const buf = pattern(p, 0x2000, 13);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x10000, size: 0x1000 }), 0);
  assert.equal(map(p, c, { flags: R, vaddr: buf + 0x1000, iova: 0x1_0000_0000n, size: 0x1000 }), 0);
  // nvme behind an IOMMU with a 32-bit aperture: the mapping at 4G would be left out
  setGroupHw(h, NVME.bdf, { apertureEnd: 0xffffffffn });
  const g2 = p.open(groupPath(NVME));
  const r = call(p, () => setContainer(p, g2, c));
  assert.deepEqual([r.errno, r.events], ['EINVAL', []]);
  assert.equal(groupStatus(p, g2), U.VFIO_GROUP_FLAGS_VIABLE); // not in the container
  assert.deepEqual(unmap(p, c, { iova: 0x1_0000_0000n, size: 0x1000 }), { r: 0, size: 0x1000n });
  const locked = lockedKb(p);
  assert.equal(setContainer(p, g2, c), 0);
  assert.equal(lockedKb(p), locked); // replayed from the pinned pages
  const iommu = iommuOf(p, c);
  assert.equal(iommu.domains.length, 2);
  // both domains translate the mapping: DMA from either device
  for (const d of iommu.domains) assert.deepEqual(d.domain.pt.all().map((m) => [m.start, m.last]), [[0x10000n, 0x10fffn]]);
  const nv = dmaRead(pciDev(h, NVME.bdf), 0x10000n, 8);
  assert.ok(nv.ok);
  assert.deepEqual(nv.data, p.mem.read(buf, 8));
  // the IOVA list narrowed to the smaller aperture; maps above it fail
  assert.deepEqual(iovaRanges(p, c), [
    [0n, 0xfedfffffn],
    [0xfef00000n, 0xffffffffn],
  ]);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x1_0000_0000n, size: 0x1000 }), 'EINVAL');
  // new maps go into both domains, unmaps out of both
  assert.equal(map(p, c, { vaddr: buf + 0x1000, iova: 0x20000, size: 0x1000 }), 0);
  for (const d of iommu.domains) assert.equal(d.domain.pt.size, 2);
  assert.deepEqual(unmap(p, c, { iova: 0x20000, size: 0x1000 }), { r: 0, size: 0x1000n });
  for (const d of iommu.domains) assert.equal(d.domain.pt.size, 1);
  // detaching re-widens the list to the remaining aperture
  assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0);
  assert.equal(iommu.domains.length, 1);
  assert.deepEqual(iovaRanges(p, c), [
    [0n, 0xfedfffffn],
    [0xfef00000n, APERTURE_END],
  ]);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x1_0000_0000n, size: 0x1000 }), 0);
});

test('type1 attach with mappings: a reserved region over a mapping is EINVAL (direct-relaxable ones are ignored); a group whose regions leave no IOVA is EINVAL', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const buf = p.mem.alloc(0x1000);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x8000000, size: 0x1000 }), 0);
  const msi = { start: 0xfee00000n, last: 0xfeefffffn, type: 'msi' as const };
  setGroupHw(h, NVME.bdf, { reservedRegions: [msi, { start: 0x8000000n, last: 0x80fffffn, type: 'reserved' }] });
  const g2 = p.open(groupPath(NVME));
  assert.equal(rc(p, setContainer(p, g2, c)), 'EINVAL');
  setGroupHw(h, NVME.bdf, { reservedRegions: [msi, { start: 0x8000000n, last: 0x80fffffn, type: 'direct-relaxable' }] });
  assert.equal(setContainer(p, g2, c), 0);
  assert.equal(iovaRanges(p, c).length, 2); // a relaxable region is not cut out
  assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0);
  // a region not over any mapping narrows the list, and detach gives it back
  setGroupHw(h, NVME.bdf, { reservedRegions: [msi, { start: 0x20000000n, last: 0x2fffffffn, type: 'direct' }] });
  assert.equal(setContainer(p, g2, c), 0);
  assert.deepEqual(iovaRanges(p, c), [
    [0n, 0x1fffffffn],
    [0x30000000n, 0xfedfffffn],
    [0xfef00000n, APERTURE_END],
  ]);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x20000000, size: 0x1000 }), 'EINVAL');
  assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0);
  assert.equal(iovaRanges(p, c).length, 2);
  // reserved regions covering the whole aperture: nothing valid left
  const g3 = p.open(groupPath(EDU));
  setGroupHw(h, EDU.bdf, { reservedRegions: [{ start: 0n, last: APERTURE_END, type: 'reserved' }] });
  assert.deepEqual(unmap(p, c, { flags: ALL, iova: 0, size: 0 }), { r: 0, size: 0x1000n });
  assert.equal(rc(p, setContainer(p, g3, c)), 'EINVAL');
});

test('type1 attach: a coarser IOMMU narrows iova_pgsizes and the alignment rule; detach restores them; no interrupt remapping is EPERM', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const buf = p.mem.alloc(0x400000);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x1000, size: 0x1000 }), 0);
  setGroupHw(h, NVME.bdf, { pgsizeBitmap: 0x40200000n });
  const g2 = p.open(groupPath(NVME));
  assert.equal(setContainer(p, g2, c), 0);
  const pg = () => new DataView(info(p, c, 256).bytes.buffer).getBigUint64(8, true);
  const migPg = () => new DataView(info(p, c, 256).bytes.buffer).getBigUint64(24 + 16, true);
  assert.deepEqual([pg(), migPg()], [0x40200000n, 0x200000n]);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x200000, size: 0x1000 }), 'EINVAL');
  assert.deepEqual(unmap(p, c, { iova: 0x1000, size: 0x1000 }), { r: 'EINVAL', size: 0x1000n });
  const aligned = BigInt(buf) + ((0x200000n - (BigInt(buf) % 0x200000n)) % 0x200000n);
  assert.equal(map(p, c, { vaddr: aligned, iova: 0x200000, size: 0x200000 }), 0);
  assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0);
  assert.deepEqual([pg(), migPg()], [0x40201000n, 0x1000n]);
  assert.deepEqual(unmap(p, c, { iova: 0x1000, size: 0x1000 }), { r: 0, size: 0x1000n });
  // no interrupt remapping: EPERM with the kernel's warning, unless allow_unsafe_interrupts
  setGroupHw(h, EDU.bdf, { isolatedMsi: false });
  const g3 = p.open(groupPath(EDU));
  const r = call(p, () => setContainer(p, g3, c));
  assert.deepEqual([r.errno, r.events], ['EPERM', ['printk']]);
  assert.match(r.trace.find((e) => e.name === 'printk')!.msg!, /^vfio_iommu_type1_attach_group: No interrupt remapping support\./);
  assert.equal(p.writeFile('/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts', 'Y'), 1);
  assert.equal(setContainer(p, g3, c), 0);
});

test('type1 release: closing the container keeps the mappings; the last group detaching destroys them and releases the pins (oracle VmLck)', () => {
  const h = boot();
  const p = proc(h);
  const { g, c } = container(p);
  const pd = pciDev(h, E1000E.bdf);
  const buf = pattern(p, 0x4000);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x100000, size: 0x4000 }), 0);
  assert.equal(lockedKb(p), 16); // oracle
  const iommu = iommuOf(p, c);
  assert.equal(p.close(c), 0);
  assert.equal(lockedKb(p), 16); // oracle
  assert.ok(dmaRead(pd, 0x100000n, 4).ok);
  const r = call(p, () => p.close(g));
  assert.equal(r.ret, 0);
  assert.deepEqual(
    r.events.filter((e) => e.startsWith('vfio_dma') || e.includes('container')),
    ['vfio_dma_unmap', 'container_backend_released', 'container_detach_group', 'vfio_container_free'],
  );
  assert.equal(lockedKb(p), 0); // oracle
  assert.equal(iommu.mappings().length, 0);
  assert.equal(iommu.domains.length, 0);
  // the group is back in its default domain: the device reaches no user memory
  assert.deepEqual(dmaRead(pd, 0x100000n, 4), { ok: false, fault: 'blocked', iova: 0x100000n });
});

test('type1 release: mappings of two processes sharing the container by fork go when the last of them exits', () => {
  const h = boot();
  const p = proc(h);
  const { c } = container(p);
  const buf = p.mem.alloc(0x2000);
  assert.equal(map(p, c, { vaddr: buf, iova: 0x100000, size: 0x2000 }), 0);
  const child = p.fork('child');
  assert.equal(map(child, c, { vaddr: buf, iova: 0x200000, size: 0x1000 }), 0);
  assert.deepEqual([lockedKb(p), lockedKb(child)], [8, 4]);
  p.exit(0);
  assert.equal(lockedKb(child), 4); // the child's fds keep the container and its group
  child.exit(0);
  assert.equal(lockedKb(child), 0);
});

test('type1 emulated groups (driven through the backend ops): mappings without a domain are not pinned; a real group replays by pinning, a pinning fault fails the attach; the last domain leaving unpins', () => {
  const h = boot();
  const p = proc(h);
  const ops = vfioIommuType1Ops;
  // run backend code as a syscall of p (current is p)
  const sys = (body: () => KGen<number>) => rc(p, p.sys('type1-op', {}, body()));
  let iommu!: VfioIommu;
  assert.equal(
    sys(function* () {
      const o = yield* ops.open(h.kernel, BigInt(V2));
      if ('err' in o) return o.err;
      iommu = o.data as VfioIommu;
      return 0;
    }),
    0,
  );
  const mdevGroup = new IommuGroup(900, DEFAULT_IOMMU_HW);
  assert.equal(sys(() => ops.attachGroup(iommu, mdevGroup, VfioGroupType.VFIO_EMULATED_IOMMU)), 0);
  assert.equal(sys(() => ops.ioctl(iommu, U.VFIO_CHECK_EXTENSION, BigInt(U.VFIO_UPDATE_VADDR))), 0);
  // no domain: any IOVA goes (the valid list is empty), nothing is pinned or charged
  const buf = pattern(p, 0x3000, 17);
  const doMap = (iova: bigint, size: bigint, vaddr = BigInt(buf)) => sys(() => vfioDmaDoMap(iommu, { flags: RW, vaddr, iova, size }));
  assert.equal(doMap(0xfee00000n, 0x2000n), 0);
  assert.equal(doMap(0x1_0000_0000_0000n, 0x1000n, BigInt(buf + 0x2000)), 0);
  assert.equal(p.kproc.lockedVm, 0);
  assert.ok(iommu.mappings().every((d) => !d.iommuMapped && d.pages === null));
  // GET_INFO: no IOVA_RANGE capability, so the chain is MIGRATION + DMA_AVAIL
  const a = p.mem.alloc(256);
  p.mem.write(a, new Uint8Array([0, 1, 0, 0]));
  assert.equal(sys(() => ops.ioctl(iommu, U.VFIO_IOMMU_GET_INFO, BigInt(a))), 0);
  const hdr = p.mem.readStruct(U.vfio_iommu_type1_info, a);
  assert.deepEqual([hdr.argsz, hdr.cap_offset], [256, 24]);
  assert.equal(new DataView(p.mem.read(a + 56, 8).buffer).getUint32(4, true), 0); // DMA_AVAIL ends the chain
  // VADDR invalidation is refused while an emulated group may pin
  const u = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: 24, flags: UVADDR, iova: 0xfee00000n, size: 0x2000n });
  assert.equal(sys(() => ops.ioctl(iommu, U.VFIO_IOMMU_UNMAP_DMA, BigInt(u))), 'EBUSY');
  // a real group: the mapping at 2^48 is outside its aperture
  const e1000e = pciDev(h, E1000E.bdf).iommuGroup!;
  assert.equal(sys(() => ops.attachGroup(iommu, e1000e, VfioGroupType.VFIO_IOMMU)), 'EINVAL');
  const unAt = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: 24, iova: 0x1_0000_0000_0000n, size: 0x1000n });
  assert.equal(sys(() => ops.ioctl(iommu, U.VFIO_IOMMU_UNMAP_DMA, BigInt(unAt))), 0);
  // ... and the one in the MSI window conflicts with its reserved region
  assert.equal(sys(() => ops.attachGroup(iommu, e1000e, VfioGroupType.VFIO_IOMMU)), 'EINVAL');
  const unMsi = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: 24, iova: 0xfee00000n, size: 0x2000n });
  assert.equal(sys(() => ops.ioctl(iommu, U.VFIO_IOMMU_UNMAP_DMA, BigInt(unMsi))), 0);
  // mapped without CAP_IPC_LOCK (recorded per mapping): the replay's pinning is held to RLIMIT_MEMLOCK
  p.kproc.cred.caps.delete('CAP_IPC_LOCK');
  assert.equal(doMap(0x10000n, 0x2000n), 0);
  assert.equal(doMap(0x20000n, 0x1000n, BigInt(buf + 0x2000)), 0);
  // a pinning fault during the replay fails the attach and leaves nothing pinned
  p.mem.free(buf + 0x2000, 0x1000);
  assert.equal(sys(() => ops.attachGroup(iommu, e1000e, VfioGroupType.VFIO_IOMMU)), 'EFAULT');
  assert.equal(p.kproc.lockedVm, 0);
  assert.equal(iommu.domains.length, 0);
  assert.ok(iommu.mappings().every((d) => !d.iommuMapped && d.pages === null));
  assert.equal(e1000e.domain, e1000e.defaultDomain);
  // RLIMIT_MEMLOCK during the replay fails it too
  const unBad = p.mem.struct(U.vfio_iommu_type1_dma_unmap, { argsz: 24, iova: 0x20000n, size: 0x1000n });
  assert.equal(sys(() => ops.ioctl(iommu, U.VFIO_IOMMU_UNMAP_DMA, BigInt(unBad))), 0);
  p.kproc.rlimitMemlock = 0x1000;
  assert.equal(sys(() => ops.attachGroup(iommu, e1000e, VfioGroupType.VFIO_IOMMU)), 'ENOMEM');
  assert.equal(p.kproc.lockedVm, 0);
  p.kproc.rlimitMemlock = 0x10000;
  // replay pins the pages now, charges them, and the device reaches them
  assert.equal(sys(() => ops.attachGroup(iommu, e1000e, VfioGroupType.VFIO_IOMMU)), 0);
  assert.equal(p.kproc.lockedVm, 2);
  assert.ok(iommu.mappings().every((d) => d.iommuMapped && d.pages));
  const r = dmaRead(pciDev(h, E1000E.bdf), 0x10000n, 4);
  assert.ok(r.ok);
  assert.deepEqual(r.data, p.mem.read(buf, 4));
  assert.equal(iovaRangesOf(iommu), 2);
  // the last IOMMU domain leaving with an emulated group left: unpinned, uncharged, mappings kept
  assert.equal(sys(function* () {
    yield* ops.detachGroup(iommu, e1000e);
    return 0;
  }), 0);
  assert.equal(p.kproc.lockedVm, 0);
  assert.equal(iommu.mappings().length, 1);
  assert.ok(iommu.mappings().every((d) => !d.iommuMapped && d.pages === null));
  // the emulated group leaving last takes the mappings
  assert.equal(sys(function* () {
    yield* ops.detachGroup(iommu, mdevGroup);
    return 0;
  }), 0);
  assert.equal(iommu.mappings().length, 0);
  assert.equal(iommu.dmaAvail, 65535);
  assert.equal(h.kernel.warnings.length, 0);
});

function iovaRangesOf(iommu: VfioIommu): number {
  return iommu.iovaList.length;
}
