// Property test: random IOMMU_IOAS_MAP / UNMAP / COPY sequences on two IOASes (one of which a
// device may be attached to and detached from, and whose large pages may be switched), checked
// after every step against a simple reference model of the address spaces — a sorted list of
// areas per IOAS, the kernel's placement, permission, pinning and attach rules restated plainly.
// The errno and the returned iova/length must match; after each step the device's view (DMA
// through the domain) must equal the process memory behind every area, unmapped IOVA must fault,
// and the pinned page count must equal the pages the areas of the attached IOAS cover (shared
// pages counted once).
//
// Replay: VFIOSIM_SEED=<seed printed on failure> node --test dist/test/ioas_property.test.js

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { dmaRead } from '../src/iommu/dma.js';
import { PROT_READ } from '../src/kernel/uaccess.js';
import { E1000E, attach, bind, boot, cdevPath, detach, ioasAlloc, proc } from './helpers.js';
import { FIX, R, RW, U64_MAX, copy, hugePages, map, unmap } from './ioas_helpers.js';
import { uapi as U } from '../src/api/index.js';

const envSeed = process.env.VFIOSIM_SEED;
const SEED = envSeed ? Number(envSeed) : (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0;
const SCALE = Number(process.env.VFIOSIM_RUNS_SCALE ?? '1') || 1;
const VERBOSE = process.env.VFIOSIM_COVERAGE === '1';
/** what the runs covered: "op result" -> count */
const coverage = new Map<string, number>();
const cover = (op: string, ret: number | string) => coverage.set(`${op} ${ret}`, (coverage.get(`${op} ${ret}`) ?? 0) + 1);

const PAGE = 0x1000n;
const MAX = U64_MAX;
const MSI: [bigint, bigint] = [0xfee00000n, 0xfeefffffn];
const APERTURE_END = (1n << 39n) - 1n;
const RW_PAGES = 32;
const RO_PAGES = 8;

// ---- the reference model -----------------------------------------------------------------------

interface RefArea {
  start: bigint;
  last: bigint;
  /** the iopt_pages it shares */
  pid: number;
  /** byte offset of `start` inside the pages */
  pStart: bigint;
  writable: boolean;
  prot: number;
  /** the user address `start` maps */
  va: bigint;
}

interface RefPages {
  /** page-aligned user address of index 0 */
  base: bigint;
  writable: boolean;
}

class Ref {
  readonly areas: RefArea[][] = [[], []];
  readonly pages = new Map<number, RefPages>();
  nextPid = 1;
  attached = false;
  disableLarge = false;
  constructor(
    readonly rwBase: bigint,
    readonly roBase: bigint,
  ) {}
  align(i: number): bigint {
    return (i === 0 && this.attached) || (i === 0 && this.disableLarge) ? PAGE : 1n;
  }
  reserved(i: number): Array<[bigint, bigint]> {
    return i === 0 && this.attached ? [MSI, [APERTURE_END + 1n, MAX]] : [];
  }
  /** pin_user_pages of [va, va+len): the memory exists and allows the access */
  pinOk(base: bigint, from: bigint, to: bigint, write: boolean): boolean {
    // whole pages from..to (byte addresses) of the user memory
    const first = (base + from) & ~(PAGE - 1n);
    const last = (base + to) | (PAGE - 1n);
    const inRw = first >= this.rwBase && last < this.rwBase + BigInt(RW_PAGES) * PAGE;
    const inRo = first >= this.roBase && last < this.roBase + BigInt(RO_PAGES) * PAGE;
    return inRw || (inRo && !write);
  }
  used(i: number): Array<[bigint, bigint]> {
    return [...this.reserved(i), ...this.areas[i]!.map((a): [bigint, bigint] => [a.start, a.last])].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }
  /** iopt_alloc_iova restated: the first hole of [PAGE, MAX-PAGE] where the aligned start fits */
  allocIova(i: number, addr: bigint, length: bigint): bigint | string {
    const po = addr % PAGE;
    let align = 1n;
    while (align < length) align <<= 1n;
    if (addr !== 0n && (addr & -addr) < align) align = addr & -addr;
    if (align >= PAGE) align = PAGE;
    if (align < this.align(i)) return 'EINVAL';
    const fit = (s: bigint, l: bigint) => {
      let a = ((s + align - 1n) & ~(align - 1n)) | po;
      return a < l && l - a >= length - 1n ? a : null;
    };
    let cur = PAGE;
    const end = MAX - PAGE;
    const start = fit(cur, end);
    if (start === null) return 'ENOSPC';
    cur = start;
    for (const [s, l] of this.used(i)) {
      if (l < cur) continue;
      if (s > cur) {
        const a = fit(cur, s - 1n < end ? s - 1n : end);
        if (a !== null) return a;
      }
      if (l + 1n > cur) cur = l + 1n;
      if (cur > end) return 'ENOSPC';
    }
    return fit(cur, end) ?? 'ENOSPC';
  }
  /** shared placement + insertion of elements (iopt_alloc_area_pages + iopt_insert_area + fill) */
  place(i: number, elms: Array<{ pid: number; pStart: bigint; length: bigint }>, length: bigint, fixed: boolean, iova: bigint, prot: number): { ret: number | string; iova?: bigint } {
    const A = this.align(i);
    if (length % A || !length) return { ret: 'EINVAL' };
    let dst: bigint;
    if (!fixed) {
      const e = elms[0]!;
      const r = this.allocIova(i, this.pages.get(e.pid)!.base + e.pStart, length);
      if (typeof r === 'string') return { ret: r };
      dst = r;
    } else {
      if (iova % A) return { ret: 'EINVAL' };
      const last = iova + length - 1n;
      if (last > MAX) return { ret: 'EOVERFLOW' };
      if (this.reserved(i).some(([s, l]) => s <= last && l >= iova)) return { ret: 'EINVAL' };
      if (this.areas[i]!.some((a) => a.start <= last && a.last >= iova)) return { ret: 'EEXIST' };
      dst = iova;
    }
    const add: RefArea[] = [];
    let cur = dst;
    for (const e of elms) {
      const pg = this.pages.get(e.pid)!;
      if (prot & U.IOMMU_IOAS_MAP_WRITEABLE && !pg.writable) return { ret: 'EPERM' };
      if ((e.pStart % PAGE) % A) return { ret: 'EINVAL' };
      add.push({ start: cur, last: cur + e.length - 1n, pid: e.pid, pStart: e.pStart, writable: pg.writable, prot, va: pg.base + e.pStart });
      cur += e.length;
    }
    // filled into the domain now: pinned from the memory
    if (i === 0 && this.attached) for (const a of add) if (!this.pinOk(this.pages.get(a.pid)!.base, a.pStart, a.pStart + (a.last - a.start), a.writable)) return { ret: 'EFAULT' };
    this.areas[i]!.push(...add);
    this.areas[i]!.sort((a, b) => (a.start < b.start ? -1 : 1));
    return { ret: 0, iova: dst };
  }
  map(i: number, va: bigint, length: bigint, fixed: boolean, iova: bigint, prot: number): { ret: number | string; iova?: bigint } {
    const base = va & ~(PAGE - 1n);
    const pid = this.nextPid++;
    this.pages.set(pid, { base, writable: (prot & U.IOMMU_IOAS_MAP_WRITEABLE) !== 0 });
    const r = this.place(i, [{ pid, pStart: va - base, length }], length, fixed, iova, prot);
    if (r.ret !== 0) this.pages.delete(pid);
    return r;
  }
  unmap(i: number, iova: bigint, length: bigint): { ret: number | string; length?: bigint } {
    const all = iova === 0n && length === MAX;
    const last = all ? MAX : iova + length - 1n;
    let done = 0n;
    for (const a of [...this.areas[i]!]) {
      if (a.last < iova || a.start > last) continue;
      if (a.start < iova || a.last > last) return { ret: 'ENOENT' };
      this.areas[i] = this.areas[i]!.filter((x) => x !== a);
      done += a.last - a.start + 1n;
    }
    if (!all && !done) return { ret: 'ENOENT' };
    return { ret: 0, length: done };
  }
  copy(dst: number, src: number, length: bigint, srcIova: bigint, fixed: boolean, dstIova: bigint, prot: number): { ret: number | string; iova?: bigint } {
    const last = srcIova + length - 1n;
    const elms: Array<{ pid: number; pStart: bigint; length: bigint }> = [];
    let cur = srcIova;
    for (;;) {
      const a = this.areas[src]!.find((x) => x.start <= cur && x.last >= cur);
      if (!a || (cur !== srcIova && a.start !== cur)) return { ret: 'ENOENT' };
      const l = last < a.last ? last : a.last;
      elms.push({ pid: a.pid, pStart: a.pStart + (cur - a.start), length: l - cur + 1n });
      if (last <= a.last) break;
      cur = a.last + 1n;
    }
    return this.place(dst, elms, length, fixed, dstIova, prot);
  }
  attach(): number | string {
    const a0 = this.areas[0]!;
    if (a0.some((a) => a.start <= MSI[1] && a.last >= MSI[0])) return 'EADDRINUSE';
    if (a0.some((a) => a.start % PAGE || (a.last - a.start + 1n) % PAGE || a.pStart % PAGE)) return 'EADDRINUSE';
    if (a0.some((a) => a.last > APERTURE_END)) return 'EADDRINUSE';
    if (a0.some((a) => !this.pinOk(this.pages.get(a.pid)!.base, a.pStart, a.pStart + (a.last - a.start), a.writable))) return 'EFAULT';
    this.attached = true;
    return 0;
  }
  setHuge(on: boolean): number | string {
    if (on) {
      this.disableLarge = false;
      return 0;
    }
    if (this.disableLarge) return 0;
    if (this.attached && this.areas[0]!.length) return 'EINVAL';
    if (this.areas[0]!.some((a) => a.start % PAGE || (a.last - a.start + 1n) % PAGE || a.pStart % PAGE)) return 'EADDRINUSE';
    this.disableLarge = true;
    return 0;
  }
  /** pages pinned: per iopt_pages, the union of the page indexes the areas of the attached IOAS cover */
  pinned(): number {
    if (!this.attached) return 0;
    const byPid = new Map<number, Set<bigint>>();
    for (const a of this.areas[0]!) {
      const s = byPid.get(a.pid) ?? new Set<bigint>();
      for (let x = a.pStart / PAGE; x <= (a.pStart + a.last - a.start) / PAGE; x++) s.add(x);
      byPid.set(a.pid, s);
    }
    let n = 0;
    for (const s of byPid.values()) n += s.size;
    return n;
  }
}

// ---- operations ----------------------------------------------------------------------------------

type Op =
  | { t: 'map'; i: number; fixed: boolean; slot: number; len: number; ro: boolean; vaPage: number; sub: number; prot: number }
  | { t: 'unmap'; i: number; pick: number; mode: number; slot: number; len: number }
  | { t: 'copy'; src: number; dst: number; pick: number; mode: number; slot: number; len: number; fixed: boolean; dslot: number; prot: number }
  | { t: 'attach' }
  | { t: 'detach' }
  | { t: 'huge'; on: boolean };

/** IOVA slots: a dense low window, the MSI window's edges, the aperture's end, sub-page offsets */
const SLOTS = [
  ...Array.from({ length: 24 }, (_, k) => BigInt(k) * PAGE),
  0x800n, 0x1800n, 0x2400n, 0xfedff000n, 0xfee00000n, 0xfeeff000n, 0xfef00000n, APERTURE_END + 1n - PAGE, APERTURE_END + 1n,
];
/** lengths: whole pages mostly, sometimes sub-page */
const LENS = [PAGE, 2n * PAGE, 3n * PAGE, 4n * PAGE, 0x800n, 0x1800n, 1n];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('map' as const), i: fc.nat(1), fixed: fc.boolean(), slot: fc.nat(SLOTS.length - 1), len: fc.nat(LENS.length - 1),
      ro: fc.nat(2).map((x) => x === 0), vaPage: fc.nat(RW_PAGES - 5), sub: fc.constantFrom(0, 0, 0, 0x100, 0x800), prot: fc.constantFrom(RW, RW, R, U.IOMMU_IOAS_MAP_WRITEABLE),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('unmap' as const), i: fc.nat(1), pick: fc.nat(63), mode: fc.constantFrom(0, 0, 1, 2, 3, 4), slot: fc.nat(SLOTS.length - 1), len: fc.nat(LENS.length - 1),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('copy' as const), src: fc.nat(1), dst: fc.nat(1), pick: fc.nat(63), mode: fc.constantFrom(0, 0, 1, 2, 2, 3), slot: fc.nat(SLOTS.length - 1),
      len: fc.nat(LENS.length - 1), fixed: fc.boolean(), dslot: fc.nat(SLOTS.length - 1), prot: fc.constantFrom(RW, R, R),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ t: 'attach' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'detach' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('huge' as const), on: fc.boolean() }) },
);

function run(ops: Op[]): void {
  const h = boot();
  const p = proc(h);
  const io = p.open('/dev/iommu');
  const d = p.open(cdevPath(E1000E));
  bind(p, d, io);
  const ids = [ioasAlloc(p, io), ioasAlloc(p, io)];
  const rw = p.mem.alloc(RW_PAGES * 0x1000);
  const pattern = new Uint8Array(RW_PAGES * 0x1000);
  for (let k = 0; k < pattern.length; k++) pattern[k] = (k * 131 + (k >> 12)) & 0xff;
  p.mem.write(rw, pattern);
  const ro = p.mem.alloc(RO_PAGES * 0x1000, PROT_READ);
  const ref = new Ref(BigInt(rw), BigInt(ro));
  const dev = h.vfioDevice(E1000E.bdf)!.dev;
  /**
   * A source range from the live areas of IOAS i: mode 0 an area exactly, 1 its start with a
   * length from LENS, 2 an area and the next one, 3 an IOVA slot with a length from LENS, 4 all
   */
  const pickRange = (i: number, pick: number, mode: number, slot: number, len: number): [bigint, bigint] => {
    const as = ref.areas[i]!;
    const a = as.length ? as[pick % as.length]! : null;
    if (mode === 4) return [0n, MAX];
    if (!a || mode === 3) return [SLOTS[slot]!, LENS[len]!];
    if (mode === 1) return [a.start, LENS[len]!];
    const b = mode === 2 ? (as[(pick % as.length) + 1] ?? a) : a;
    return [a.start, b.last - a.start + 1n];
  };
  ops.forEach((op, step) => {
    const where = `step ${step}: ${JSON.stringify(op)}`;
    switch (op.t) {
      case 'map': {
        const va = (op.ro ? BigInt(ro) + BigInt(op.vaPage % RO_PAGES) * PAGE : BigInt(rw) + BigInt(op.vaPage) * PAGE) + BigInt(op.sub);
        const len = LENS[op.len]!;
        const iova = SLOTS[op.slot]!;
        const want = ref.map(op.i, va, len, op.fixed, iova, op.prot);
        const got = map(p, io, ids[op.i]!, op.prot | (op.fixed ? FIX : 0), va, len, iova);
        assert.equal(got.ret, want.ret, where);
        if (want.ret === 0) assert.equal(got.iova, want.iova, where);
        cover(`map${op.fixed ? ' fixed' : ' auto'}${op.i === 0 && ref.attached ? ' (domain)' : ''}`, got.ret);
        break;
      }
      case 'unmap': {
        const [iova, len] = pickRange(op.i, op.pick, op.mode, op.slot, op.len);
        const want = ref.unmap(op.i, iova, len);
        const got = unmap(p, io, ids[op.i]!, iova, len);
        assert.equal(got.ret, want.ret, where);
        if (want.ret === 0) assert.equal(got.length, want.length, where);
        cover(op.mode === 4 ? 'unmap all' : 'unmap', got.ret);
        break;
      }
      case 'copy': {
        const [src, len] = pickRange(op.src, op.pick, op.mode === 4 ? 0 : op.mode, op.slot, op.len);
        const dst = SLOTS[op.dslot]!;
        const want = ref.copy(op.dst, op.src, len, src, op.fixed, dst, op.prot);
        const got = copy(p, io, op.prot | (op.fixed ? FIX : 0), ids[op.dst]!, ids[op.src]!, len, dst, src);
        assert.equal(got.ret, want.ret, where);
        if (want.ret === 0) assert.equal(got.dstIova, want.iova, where);
        cover(`copy${op.fixed ? ' fixed' : ' auto'}`, got.ret);
        break;
      }
      case 'attach': {
        if (ref.attached) break;
        const want = ref.attach();
        const got = attach(p, d, ids[0]!);
        assert.equal(got === -1 ? p.errnoName : 0, want, where);
        cover('attach', want);
        break;
      }
      case 'detach':
        if (!ref.attached) break;
        assert.equal(detach(p, d), 0, where);
        ref.attached = false;
        break;
      case 'huge': {
        const want = ref.setHuge(op.on);
        const got = hugePages(p, io, ids[0]!, U.IOMMU_OPTION_OP_SET, op.on ? 1 : 0);
        assert.equal(got.ret, want, where);
        cover(`huge ${op.on ? 1 : 0}`, want);
        break;
      }
    }
    // the device sees exactly the areas of the attached IOAS, with their permissions
    if (ref.attached) {
      for (const a of ref.areas[0]!) {
        const n = Number(a.last - a.start + 1n);
        const r = dmaRead(dev, a.start, n);
        if (a.prot & U.IOMMU_IOAS_MAP_READABLE) {
          assert.ok(r.ok, `${where}: DMA read of area 0x${a.start.toString(16)}`);
          assert.deepEqual(r.data, p.mem.read(Number(a.va), n), `${where}: DMA content at 0x${a.start.toString(16)}`);
        } else assert.equal(r.ok ? 'ok' : r.fault, 'permission', where);
      }
      const holes = [0x30000n, 0xfee00000n - PAGE, 0x7000000000n];
      for (const x of holes) {
        if (ref.areas[0]!.some((a) => a.start <= x && a.last >= x)) continue;
        const r = dmaRead(dev, x, 1);
        assert.equal(r.ok ? 'ok' : r.fault, 'unmapped', `${where}: IOVA 0x${x.toString(16)} should fault`);
      }
    }
    assert.equal(p.kproc.pinnedVm, ref.pinned(), `${where}: pinned pages`);
  });
  assert.equal(h.kernel.warnings.length, 0, JSON.stringify(h.kernel.warnings));
  // teardown: everything unpinned
  p.exit();
  assert.equal(p.kproc.pinnedVm, 0);
}

test(`IOAS map/unmap/copy/attach sequences match a reference model of the address space (seed ${SEED})`, () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 50 }), (ops) => run(ops)),
    {
      seed: SEED,
      numRuns: Math.round(400 * SCALE),
      endOnFailure: false,
      // rare outcomes the coverage check below needs on every seed: a writable auto-IOVA map of
      // read-only memory once a domain is attached pins at MAP time and fails
      examples: [[[{ t: 'attach' }, { t: 'map', i: 0, fixed: false, slot: 0, len: 0, ro: true, vaPage: 0, sub: 0, prot: RW }]]],
    },
  );
  if (VERBOSE) for (const [k, v] of [...coverage].sort()) process.stdout.write(`# ${k}: ${v}\n`);
  // the generator reaches every outcome the model distinguishes
  const must = ['map fixed 0', 'map auto 0', 'map fixed EEXIST', 'map fixed (domain) 0', 'map fixed (domain) EINVAL', 'map auto (domain) EFAULT', 'unmap ENOENT', 'unmap 0', 'unmap all 0', 'copy fixed 0', 'copy auto 0', 'copy fixed ENOENT', 'attach EADDRINUSE', 'attach 0', 'huge 0 EADDRINUSE'];
  for (const k of must)
    assert.ok(coverage.has(k), `not covered: ${k}`);
});
