// Property tests (fast-check) for the type1 backend: random sequences of MAP_DMA, UNMAP_DMA (with
// random sizes and offsets, VADDR and ALL), VADDR updates and a second group attaching and
// detaching, on v1 and v2 containers, against a simple reference model of the IOVA space. After
// every step the returned errno, the size written back, the backend's mapping list, locked_vm and
// what each device can reach by DMA must match the reference.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Process } from '../src/api/index.js';
import { dmaRead } from '../src/iommu/dma.js';
import type { IommuHw } from '../src/iommu/iommu.js';
import type { VfioContainer } from '../src/vfio/container.js';
import type { VfioIommu } from '../src/vfio/vfio_iommu_type1.js';
import { E1000E, NVME, U, boot, groupPath, proc, setContainer } from './helpers.js';

const PAGE = 0x1000n;
const U64_MAX = (1n << 64n) - 1n;
const RD = U.VFIO_DMA_MAP_FLAG_READ;
const WR = U.VFIO_DMA_MAP_FLAG_WRITE;
const VADDR = U.VFIO_DMA_MAP_FLAG_VADDR;
const ALL = U.VFIO_DMA_UNMAP_FLAG_ALL;
const HIGH = -1n;
const UVADDR = U.VFIO_DMA_UNMAP_FLAG_VADDR;

/** Two IOVA windows: one in plain memory, one straddling the start of the MSI window. */
const WINDOWS = [
  { base: 0x100000n, pages: 24 },
  { base: 0xfedf8000n, pages: 16 },
];
/** the valid IOVA ranges with e1000e's group (39-bit aperture minus the MSI window) */
const VALID: Array<[bigint, bigint]> = [
  [0n, 0xfedfffffn],
  [0xfef00000n, (1n << 39n) - 1n],
];

// ---- the reference model -----------------------------------------------------------------------------

interface RefMapping {
  iova: bigint;
  size: bigint;
  read: boolean;
  invalid: boolean;
}

type Res = number | string;

/** What the type1 uAPI promises, written as plainly as possible (no trees, no kernel structure). */
class Reference {
  maps: RefMapping[] = [];
  second = false;
  constructor(
    readonly v2: boolean,
    readonly limit: number,
  ) {}

  private overlapping(a: bigint, b: bigint): RefMapping[] {
    return this.maps.filter((m) => m.iova <= b && m.iova + m.size - 1n >= a).sort((x, y) => (x.iova < y.iova ? -1 : 1));
  }

  map(flags: number, iova: bigint, size: bigint): Res {
    const vaddrUpdate = (flags & VADDR) !== 0;
    if (size === 0n) return 'EINVAL';
    if (iova + size - 1n > U64_MAX) return 'EOVERFLOW';
    const prot = flags & (RD | WR);
    if (prot ? vaddrUpdate : !vaddrUpdate) return 'EINVAL';
    if (iova % PAGE || size % PAGE) return 'EINVAL';
    const hit = this.overlapping(iova, iova + size - 1n);
    if (vaddrUpdate) {
      if (!hit.length) return 'ENOENT';
      const m = hit[0]!;
      if (hit.length > 1 || !m.invalid || m.iova !== iova || m.size !== size) return 'EINVAL';
      m.invalid = false;
      return 0;
    }
    if (hit.length) return 'EEXIST';
    if (this.maps.length >= this.limit) return 'ENOSPC';
    if (!VALID.some(([s, e]) => iova >= s && iova + size - 1n <= e)) return 'EINVAL';
    this.maps.push({ iova, size, read: (flags & RD) !== 0, invalid: false });
    return 0;
  }

  /** the result and the size field afterwards (unchanged on failure) */
  unmap(flags: number, iova: bigint, size: bigint): { r: Res; size: bigint } {
    const fail = (r: Res) => ({ r, size });
    const all = (flags & ALL) !== 0;
    const inval = (flags & UVADDR) !== 0;
    if (iova % PAGE) return fail('EINVAL');
    let end: bigint;
    if (all) {
      if (iova || size) return fail('EINVAL');
      end = U64_MAX;
    } else {
      if (size === 0n || size % PAGE) return fail('EINVAL');
      end = iova + size - 1n;
      if (end > U64_MAX) return fail('EOVERFLOW');
    }
    const hit = this.overlapping(iova, end);
    if (this.v2 && !all) {
      // no mapping may be cut at either end
      if (hit.some((m) => m.iova < iova || m.iova + m.size - 1n > end)) return fail('EINVAL');
    }
    let done = 0n;
    const marked: RefMapping[] = [];
    for (const m of hit) {
      // v1: a mapping that begins before the range ends the request
      if (!this.v2 && m.iova < iova) break;
      if (inval) {
        if (m.invalid) {
          for (const x of marked) x.invalid = false;
          return fail('EINVAL');
        }
        m.invalid = true;
        marked.push(m);
      } else {
        this.maps.splice(this.maps.indexOf(m), 1);
      }
      done += m.size;
    }
    return { r: 0, size: done };
  }

  attach(): Res {
    if (this.maps.some((m) => m.invalid)) return 'EBUSY';
    this.second = true;
    return 0;
  }

  /** the DMA read of one byte at iova by a device of the container: fault kind or the mapping */
  reach(iova: bigint): 'unmapped' | 'permission' | RefMapping {
    const m = this.maps.find((x) => iova >= x.iova && iova < x.iova + x.size);
    if (!m) return 'unmapped';
    return m.read ? m : 'permission';
  }
}

// ---- operations -------------------------------------------------------------------------------------

type Op =
  | { kind: 'map'; win: number; page: number; pages: number; offset: bigint; flags: number }
  | { kind: 'unmap'; win: number; page: number; pages: number; offset: bigint; sizeOffset: bigint; flags: number }
  | { kind: 'all'; flags: number; iova: bigint }
  | { kind: 'attach' }
  | { kind: 'detach' };

const winArb = fc.constantFrom(0, 0, 0, 1);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      win: winArb,
      page: fc.nat({ max: 23 }),
      pages: fc.nat({ max: 6 }),
      offset: fc.constantFrom(0n, 0n, 0n, 0n, 0n, 0x800n),
      flags: fc.constantFrom(RD | WR, RD | WR, RD, WR, VADDR, VADDR, 0, RD | VADDR),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('unmap' as const),
      win: winArb,
      page: fc.nat({ max: 23 }),
      pages: fc.nat({ max: 10 }),
      offset: fc.constantFrom(0n, 0n, 0n, 0n, 0n, 0x800n, HIGH),
      sizeOffset: fc.constantFrom(0n, 0n, 0n, 0n, 0n, 0x100n),
      flags: fc.constantFrom(0, 0, UVADDR),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('all' as const),
      flags: fc.constantFrom(ALL, ALL, ALL | UVADDR),
      iova: fc.constantFrom(0n, 0n, 0n, 0x1000n),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'attach' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'detach' as const }) },
);

const rc = (p: Process, r: number): Res => (r === -1 ? p.errnoName : r);

function run(v2: boolean, limit: number, ops: Op[]): void {
  const h = boot();
  const p = proc(h);
  if (limit !== 65535) p.writeFile('/sys/module/vfio_iommu_type1/parameters/dma_entry_limit', String(limit));
  const g = p.open(groupPath(E1000E));
  const c = p.open('/dev/vfio/vfio');
  assert.equal(setContainer(p, g, c), 0);
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, v2 ? U.VFIO_TYPE1v2_IOMMU : U.VFIO_TYPE1_IOMMU), 0);
  const iommu = (p.file(c)!.privateData as VfioContainer).iommuData as VfioIommu;
  // nvme behind an IOMMU instance of its own: it gets a domain of its own and mappings replay into it
  const nvmeGroup = h.vfioDevice(NVME.bdf)!.dev.iommuGroup!;
  (nvmeGroup as unknown as { hw: IommuHw }).hw = { ...nvmeGroup.hw };
  const g2 = p.open(groupPath(NVME));
  const devs = [h.vfioDevice(E1000E.bdf)!.dev, h.vfioDevice(NVME.bdf)!.dev];
  // one buffer per window; byte = the page's index (plus the window's) so every page is distinct
  const bufs = WINDOWS.map((w, i) => {
    const len = (w.pages + 16) * 0x1000;
    const a = p.mem.alloc(len);
    const b = new Uint8Array(len);
    for (let o = 0; o < len; o++) b[o] = (Math.floor(o / 0x1000) + 64 * i + 1) & 0xff;
    p.mem.write(a, b);
    return BigInt(a);
  });
  const vaddrOf = (iova: bigint) => {
    const w = WINDOWS.findIndex((x) => iova >= x.base && iova < x.base + BigInt(x.pages + 16) * PAGE);
    return w < 0 ? 0n : bufs[w]! + (iova - WINDOWS[w]!.base);
  };
  const ref = new Reference(v2, limit);
  const mapArg = p.mem.alloc(32);
  const unmapArg = p.mem.alloc(24);
  const S = U.vfio_iommu_type1_dma_unmap;

  ops.forEach((op, step) => {
    const where = `step ${step} ${JSON.stringify(op, (_k, v) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v))}`;
    switch (op.kind) {
      case 'map': {
        const w = WINDOWS[op.win]!;
        const iova = w.base + BigInt(op.page % w.pages) * PAGE + op.offset;
        const size = BigInt(op.pages) * PAGE;
        const vaddr = vaddrOf(iova - op.offset) + op.offset;
        p.mem.write(mapArg, new Uint8Array(32));
        p.mem.write(mapArg, encodeMap(op.flags, vaddr, iova, size));
        const got = rc(p, p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, mapArg));
        assert.equal(got, ref.map(op.flags, iova, size), where);
        break;
      }
      case 'unmap': {
        const w = WINDOWS[op.win]!;
        // HIGH: just below 2^64, so that larger sizes overflow
        const iova = op.offset === HIGH ? 0xffffffffffffc000n : w.base + BigInt(op.page % w.pages) * PAGE + op.offset;
        const size = BigInt(op.pages) * PAGE + op.sizeOffset;
        p.mem.write(unmapArg, encodeUnmap(op.flags, iova, size));
        const r = rc(p, p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, unmapArg));
        const back = p.mem.readStruct(S, unmapArg).size as bigint;
        assert.deepEqual({ r, size: back }, ref.unmap(op.flags, iova, size), where);
        break;
      }
      case 'all': {
        p.mem.write(unmapArg, encodeUnmap(op.flags, op.iova, 0n));
        const r = rc(p, p.ioctl(c, U.VFIO_IOMMU_UNMAP_DMA, unmapArg));
        const back = p.mem.readStruct(S, unmapArg).size as bigint;
        assert.deepEqual({ r, size: back }, ref.unmap(op.flags, op.iova, 0n), where);
        break;
      }
      case 'attach': {
        if (ref.second) break;
        assert.equal(rc(p, setContainer(p, g2, c)), ref.attach(), where);
        break;
      }
      case 'detach': {
        if (!ref.second) break;
        assert.equal(p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER), 0, where);
        ref.second = false;
        break;
      }
    }
    // the backend's mappings are the reference's
    const want = [...ref.maps].sort((a, b) => (a.iova < b.iova ? -1 : 1)).map((m) => [m.iova, m.size, m.invalid]);
    assert.deepEqual(iommu.mappings().map((d) => [d.iova, d.size, d.vaddrInvalid]), want, where);
    assert.equal(iommu.dmaAvail, limit - ref.maps.length, where);
    assert.equal(iommu.domains.length, ref.second ? 2 : 1, where);
    // every page is pinned once per mapping and charged to the process
    assert.equal(BigInt(p.kproc.lockedVm) * PAGE, ref.maps.reduce((a, m) => a + m.size, 0n), where);
    // what each device of the container reaches by DMA
    for (const [i, dev] of devs.entries()) {
      for (const w of WINDOWS) {
        for (let pg = 0; pg < w.pages + 8; pg++) {
          const iova = w.base + BigInt(pg) * PAGE;
          const got = dmaRead(dev, iova, 1);
          if (i === 1 && !ref.second) {
            assert.equal(got.ok ? 'ok' : got.fault, 'blocked', where);
            continue;
          }
          const exp = ref.reach(iova);
          if (typeof exp === 'string') assert.equal(got.ok ? 'ok' : got.fault, exp, `${where} dev ${i} iova 0x${iova.toString(16)}`);
          else {
            assert.ok(got.ok, `${where} dev ${i} iova 0x${iova.toString(16)}: ${got.ok || got.fault}`);
            const expect = p.mem.read(Number(vaddrOf(iova)), 1)[0];
            assert.equal(got.data[0], expect, `${where} data at 0x${iova.toString(16)}`);
          }
        }
      }
    }
  });
  // the last group leaving destroys every mapping and releases every pin
  p.close(g2);
  p.close(g);
  p.close(c);
  assert.equal(p.kproc.lockedVm, 0);
  assert.equal(iommu.mappings().length, 0);
}

function encodeMap(flags: number, vaddr: bigint, iova: bigint, size: bigint): Uint8Array {
  const b = new Uint8Array(32);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 32, true);
  dv.setUint32(4, flags, true);
  dv.setBigUint64(8, vaddr & U64_MAX, true);
  dv.setBigUint64(16, iova & U64_MAX, true);
  dv.setBigUint64(24, size & U64_MAX, true);
  return b;
}

function encodeUnmap(flags: number, iova: bigint, size: bigint): Uint8Array {
  const b = new Uint8Array(24);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 24, true);
  dv.setUint32(4, flags, true);
  dv.setBigUint64(8, iova & U64_MAX, true);
  dv.setBigUint64(16, size & U64_MAX, true);
  return b;
}

test('type1 property: random map/unmap/VADDR/ALL/attach sequences match the reference (v2)', () => {
  fc.assert(
    fc.property(fc.constantFrom(65535, 65535, 2, 3), fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), (limit, ops) => run(true, limit, ops)),
    { numRuns: 120 },
  );
});

test('type1 property: random map/unmap/VADDR/ALL/attach sequences match the reference (v1)', () => {
  fc.assert(
    fc.property(fc.constantFrom(65535, 65535, 2, 3), fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), (limit, ops) => run(false, limit, ops)),
    { numRuns: 120 },
  );
});

test('type1 property: mostly-aligned maps and unmaps over a dense window (v1 and v2, no limit)', () => {
  const dense: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      kind: fc.constant('map' as const),
      win: fc.constant(0),
      page: fc.nat({ max: 15 }),
      pages: fc.integer({ min: 1, max: 4 }),
      offset: fc.constant(0n),
      flags: fc.constantFrom(RD | WR, RD),
    }),
    fc.record({
      kind: fc.constant('unmap' as const),
      win: fc.constant(0),
      page: fc.nat({ max: 15 }),
      pages: fc.integer({ min: 1, max: 6 }),
      offset: fc.constant(0n),
      sizeOffset: fc.constant(0n),
      flags: fc.constant(0),
    }),
  );
  fc.assert(
    fc.property(fc.boolean(), fc.array(dense, { minLength: 1, maxLength: 60, size: 'max' }), (v2, ops) => run(v2, 65535, ops)),
    { numRuns: 80 },
  );
});

test('type1 property: VADDR-heavy sequences over a dense window — invalidation, rollback, exact updates, attach while invalid (v1 and v2)', () => {
  const page = fc.nat({ max: 7 });
  const pages = fc.integer({ min: 1, max: 3 });
  const vaddrOps: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('map' as const), win: fc.constant(0), page, pages, offset: fc.constant(0n), flags: fc.constant(RD | WR) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('map' as const), win: fc.constant(0), page, pages, offset: fc.constant(0n), flags: fc.constant(VADDR) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('unmap' as const), win: fc.constant(0), page, pages: fc.integer({ min: 1, max: 6 }), offset: fc.constant(0n), sizeOffset: fc.constant(0n), flags: fc.constant(0) }),
    },
    {
      weight: 3,
      arbitrary: fc.record({ kind: fc.constant('unmap' as const), win: fc.constant(0), page, pages: fc.integer({ min: 1, max: 6 }), offset: fc.constant(0n), sizeOffset: fc.constant(0n), flags: fc.constant(UVADDR) }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('all' as const), flags: fc.constantFrom(ALL, ALL | UVADDR), iova: fc.constant(0n) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'attach' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'detach' as const }) },
  );
  fc.assert(
    fc.property(fc.boolean(), fc.array(vaddrOps, { minLength: 1, maxLength: 40, size: 'max' }), (v2, ops) => run(v2, 65535, ops)),
    { numRuns: 120 },
  );
});
