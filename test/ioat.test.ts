// The Intel IOAT DMA channel model (src/drivers/pci/hw/ioat.ts, 8086:2021 in the default host at
// 0000:00:09.0, group 16, vfio8): registers with exact values, copies and fills through the
// IOMMU, CHANERR and halting on faults (no interrupt then), MSI-X on completion, and an end-to-end
// run in each of the five IOMMU modes the kernel selftests use. QEMU has no IOAT, so the ground
// truth is the drivers that program one: the kernel's ioat (registers.h, hw.h, dma.c), the
// selftests' lib/drivers/ioat/ioat.c (replayed below step by step) and DPDK's dmadev driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Host, Process } from '../src/api/index.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import {
  IOAT_CHANCTRL_ANY_ERR_ABORT_EN, IOAT_CHANCTRL_ERR_COMPLETION_EN, IOAT_CHANCTRL_ERR_INT_EN, IOAT_CHANCTRL_INT_REARM,
  IOAT_CHANERR_COMPLETION_ADDR_ERR, IOAT_CHANERR_CONTROL_ERR, IOAT_CHANERR_DEST_ADDR_ERR, IOAT_CHANERR_LENGTH_ERR,
  IOAT_CHANERR_NEXT_DESC_ALIGN_ERR, IOAT_CHANERR_READ_DATA_ERR, IOAT_CHANERR_SRC_ADDR_ERR, IOAT_DESC_COMPL_WRITE,
  IOAT_DESC_INT_EN, IOAT_DESC_NULL, IOAT_OP_FILL, IoatPciHw, ioatEncodeDescriptor,
} from '../src/drivers/pci/hw/ioat.js';
import { RW, map as ioasMap, R as IOAS_R } from './ioas_helpers.js';
import { U, argsOf, attach, bind, boot, eventsSince, ioasAlloc, mark, proc } from './helpers.js';

const IOAT = { bdf: '0000:00:09.0', index: 8, group: 16 };
const PROT_RW = 3;
const MAP_SHARED = 1;
const O_NONBLOCK = 0o4000;
const CFG = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
const MSIX = 2;
const INTX = 0;

// BAR0 offsets: device registers, then channel 0 at 0x80
const CHANCNT = 0x00, XFERCAP = 0x01, GENCTRL = 0x02, INTRCTRL = 0x03, ATTNSTATUS = 0x04, CBVER = 0x08;
const INTRDELAY = 0x0c, DMACAP = 0x10;
const CHANCTRL = 0x80, CHANCMD = 0x84, DMACOUNT = 0x86, CHANSTS = 0x88, CHAINADDR = 0x90, CHANCMP = 0x98, CDAR = 0xa0;
const CHANERR = 0xa8, CHANERRMSK = 0xac;
const RESET = 0x20, SUSPEND = 0x04, RESUME = 0x10;
const ACTIVE = 0n, DONE = 1n, SUSPENDED = 2n, HALTED = 3n, ARMED = 4n;
// what the selftests' __ioat_memcpy_start writes
const SELFTEST_CHANCTRL = IOAT_CHANCTRL_INT_REARM | IOAT_CHANCTRL_ANY_ERR_ABORT_EN;
const SZ = 0x1000;

type Mode = 'vfio_type1_iommu' | 'vfio_type1v2_iommu' | 'iommufd_compat_type1' | 'iommufd_compat_type1v2' | 'iommufd';
const MODES: Mode[] = ['vfio_type1_iommu', 'vfio_type1v2_iommu', 'iommufd_compat_type1', 'iommufd_compat_type1v2', 'iommufd'];

interface Session {
  dev: number;
  /** map [va, va+len) at iova (read-only when ro) in the mode's IOMMU */
  map(va: number, iova: bigint, len: number, ro?: boolean): void;
}

/** Open the IOAT as lib/iommu.c + vfio_pci_device_init do in each mode (clients.md 1.4). */
function open(p: Process, mode: Mode): Session {
  if (mode === 'iommufd') {
    const i = p.open('/dev/iommu');
    const dev = p.open(`/dev/vfio/devices/vfio${IOAT.index}`);
    assert.ok(dev >= 0 && i >= 0, p.errnoName);
    assert.ok(bind(p, dev, i) > 0, `BIND: ${p.errnoName}`);
    const ioas = ioasAlloc(p, i);
    assert.ok(attach(p, dev, ioas) > 0, `ATTACH: ${p.errnoName}`);
    return {
      dev,
      map: (va, iova, len, ro) => assert.equal(ioasMap(p, i, ioas, (ro ? IOAS_R : RW) | U.IOMMU_IOAS_MAP_FIXED_IOVA, va, len, iova).ret, 0),
    };
  }
  const compat = mode.startsWith('iommufd_compat');
  const type = mode.endsWith('v2') || mode === 'vfio_type1v2_iommu' ? U.VFIO_TYPE1v2_IOMMU : U.VFIO_TYPE1_IOMMU;
  const c = p.open(compat ? '/dev/iommu' : '/dev/vfio/vfio');
  assert.equal(p.ioctl(c, U.VFIO_GET_API_VERSION), U.VFIO_API_VERSION);
  const g = p.open(`/dev/vfio/${IOAT.group}`);
  const st = p.mem.struct(U.vfio_group_status, { argsz: U.vfio_group_status.size });
  assert.equal(p.ioctl(g, U.VFIO_GROUP_GET_STATUS, st), 0);
  assert.equal((p.mem.readStruct(U.vfio_group_status, st).flags as number) & U.VFIO_GROUP_FLAGS_VIABLE, U.VFIO_GROUP_FLAGS_VIABLE);
  const cfd = p.mem.alloc(4);
  p.mem.write(cfd, new Uint8Array(new Int32Array([c]).buffer));
  assert.equal(p.ioctl(g, U.VFIO_GROUP_SET_CONTAINER, cfd), 0, `SET_CONTAINER: ${p.errnoName}`);
  assert.ok(p.ioctl(c, U.VFIO_CHECK_EXTENSION, type) > 0);
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, type), 0, `SET_IOMMU: ${p.errnoName}`);
  const dev = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(IOAT.bdf));
  assert.ok(dev >= 0, `GET_DEVICE_FD: ${p.errnoName}`);
  return {
    dev,
    map: (va, iova, len, ro) => {
      const flags = U.VFIO_DMA_MAP_FLAG_READ | (ro ? 0 : U.VFIO_DMA_MAP_FLAG_WRITE);
      const a = p.mem.struct(U.vfio_iommu_type1_dma_map, { argsz: U.vfio_iommu_type1_dma_map.size, flags, vaddr: BigInt(va), iova, size: BigInt(len) });
      assert.equal(p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, a), 0, `MAP_DMA: ${p.errnoName}`);
    },
  };
}

/** BAR0 through a mapping (trapped: every load and store reaches the model), and config space. */
class Regs {
  readonly bar: number;
  constructor(readonly p: Process, readonly dev: number) {
    this.bar = p.mmap(0x4000, PROT_RW, MAP_SHARED, dev, 0);
    assert.ok(this.bar > 0, `mmap BAR0: ${p.errnoName}`);
  }
  rd(off: number, size: 1 | 2 | 4 | 8): bigint {
    const b = this.p.mem.read(this.bar + off, size);
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    return v;
  }
  wr(off: number, size: 1 | 2 | 4 | 8, v: bigint | number): void {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = Number((BigInt(v) >> BigInt(8 * i)) & 0xffn);
    this.p.mem.write(this.bar + off, b);
  }
  cfgRd(off: number, size: 1 | 2 | 4): number {
    const b = this.p.readBytes(this.dev, size, CFG + BigInt(off))!;
    return b.reduceRight((v, x) => v * 256 + x, 0);
  }
  cfgWr(off: number, size: 1 | 2 | 4, v: number): void {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = (v >>> (8 * i)) & 0xff;
    assert.equal(this.p.writeBytes(this.dev, b, CFG + BigInt(off)), size);
  }
  sts(): bigint {
    return this.rd(CHANSTS, 8);
  }
}

/** MSI-X vector 0 to a non-blocking eventfd, as vfio_pci_msix_enable does */
function msixEventfd(p: Process, dev: number): number {
  const efd = p.eventfd(0, O_NONBLOCK);
  const a = p.mem.alloc(24);
  const b = new DataView(new ArrayBuffer(24));
  b.setUint32(0, 24, true);
  b.setUint32(4, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, true);
  b.setUint32(8, MSIX, true);
  b.setUint32(12, 0, true);
  b.setUint32(16, 1, true);
  b.setInt32(20, efd, true);
  p.mem.write(a, new Uint8Array(b.buffer));
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, a), 0, `SET_IRQS: ${p.errnoName}`);
  return efd;
}

/** read(2) of an eventfd: its counter, or the errno name (EAGAIN: nothing signalled) */
function readEventfd(p: Process, efd: number): bigint | string {
  const buf = p.mem.alloc(8);
  if (p.read(efd, buf, 8) !== 8) return p.errnoName;
  return new DataView(p.mem.read(buf, 8).buffer).getBigUint64(0, true);
}

/** A process with the IOAT open in `mode`, 64 KiB of memory mapped at IOVA 0x100000, BAR0 mapped. */
function setup(mode: Mode = 'iommufd'): { h: Host; p: Process; s: Session; r: Regs; hw: IoatPciHw; mem: number; iova: bigint } {
  const h = boot();
  const p = proc(h);
  const s = open(p, mode);
  const mem = p.mem.alloc(0x10000);
  const iova = 0x100000n;
  s.map(mem, iova, 0x10000);
  const r = new Regs(p, s.dev);
  const hw = pciGetDevice(h.kernel, IOAT.bdf)!.hw as IoatPciHw;
  return { h, p, s, r, hw, mem, iova };
}

/** ioat_init: MEMORY | MASTER | INTX_DISABLE, clear errors, reset, MSI-X vector control, MSI-X on */
function init(p: Process, r: Regs, dev: number): number {
  r.cfgWr(4, 2, 0x0406); // PCI_COMMAND
  r.wr(CHANERR, 4, r.rd(CHANERR, 4));
  r.wr(CHANCMD, 1, RESET);
  assert.equal(r.rd(CHANCMD, 1), 0n);
  assert.equal(r.sts() & 7n, HALTED);
  r.wr(INTRCTRL, 1, 0x08);
  return msixEventfd(p, dev);
}

/** __ioat_memcpy_start: one self-linked descriptor at `desc`, CHAINADDR, CHANCTRL, DMACOUNT */
function start(p: Process, r: Regs, desc: { va: number; iova: bigint }, src: bigint, dst: bigint, size: number, count: number, ctl = 0): void {
  p.mem.write(desc.va, ioatEncodeDescriptor({ size, ctl, src, dst, next: desc.iova }));
  r.wr(CHAINADDR, 8, desc.iova);
  r.wr(CHANCTRL, 2, SELFTEST_CHANCTRL);
  r.wr(DMACOUNT, 2, count);
}

test('ioat: the default host has an IOAT (8086:2021) at 0000:00:09.0, group 16, vfio8, bound to vfio-pci; config, sysfs and region/IRQ info agree', () => {
  const h = boot();
  const p = proc(h);
  assert.equal(p.readlink(`/sys/bus/pci/devices/${IOAT.bdf}/iommu_group`)?.split('/').pop(), '16');
  assert.equal(p.readlink(`/sys/bus/pci/devices/${IOAT.bdf}/driver`)?.split('/').pop(), 'vfio-pci');
  const ls = (path: string) => p.readdir(path)?.filter((n) => !n.startsWith('.'));
  assert.deepEqual(ls(`/sys/bus/pci/devices/${IOAT.bdf}/vfio-dev`), ['vfio8']);
  assert.equal(p.readFile(`/sys/bus/pci/devices/${IOAT.bdf}/vendor`), '0x8086\n');
  assert.equal(p.readFile(`/sys/bus/pci/devices/${IOAT.bdf}/device`), '0x2021\n');
  assert.equal(p.readFile(`/sys/bus/pci/devices/${IOAT.bdf}/class`), '0x088000\n');
  const s = open(p, 'iommufd');
  const r = new Regs(p, s.dev);
  assert.deepEqual([r.cfgRd(0, 2), r.cfgRd(2, 2), r.cfgRd(8, 1)], [0x8086, 0x2021, 4]);
  const ri = p.mem.struct(U.vfio_region_info, { argsz: 32, index: 0 });
  assert.equal(p.ioctl(s.dev, U.VFIO_DEVICE_GET_REGION_INFO, ri), 0);
  assert.equal(p.mem.readStruct(U.vfio_region_info, ri).size, 0x4000n);
  const ii = p.mem.struct(U.vfio_irq_info, { argsz: 16, index: MSIX });
  assert.equal(p.ioctl(s.dev, U.VFIO_DEVICE_GET_IRQ_INFO, ii), 0);
  assert.equal(p.mem.readStruct(U.vfio_irq_info, ii).count, 1);
  // the other devices keep their indices and groups
  assert.deepEqual(ls('/sys/bus/pci/devices/0000:01:00.0/vfio-dev'), ['vfio0']);
  assert.deepEqual(ls('/sys/bus/pci/devices/0000:06:02.0/vfio-dev'), ['vfio7']);
});

test('ioat: power-on registers — CHANCNT 1, XFERCAP 12, CBVER 0x33, DMACAPABILITY FILL_BLOCK, CHANSTS HALTED, the rest 0', () => {
  const { r } = setup();
  assert.deepEqual(
    [r.rd(CHANCNT, 1), r.rd(XFERCAP, 1), r.rd(GENCTRL, 1), r.rd(INTRCTRL, 1), r.rd(ATTNSTATUS, 4), r.rd(CBVER, 1), r.rd(DMACAP, 4)],
    [1n, 12n, 0n, 0n, 0n, 0x33n, 0x40n],
  );
  assert.deepEqual(
    [r.rd(CHANCTRL, 2), r.rd(CHANCMD, 1), r.rd(DMACOUNT, 2), r.sts(), r.rd(CHAINADDR, 8), r.rd(CHANCMP, 8), r.rd(CDAR, 8), r.rd(CHANERR, 4), r.rd(CHANERRMSK, 4)],
    [0n, 0n, 0n, HALTED, 0n, 0n, 0n, 0n, 0n],
  );
  // the same bytes, as one 8-byte load each (DPDK's struct ioat_registers is read field by field)
  assert.equal(r.rd(0, 8), 0x0c01n);
  assert.deepEqual([r.rd(8, 8), r.rd(0x10, 8)], [0x33n, 0x40n]);
  assert.equal(r.rd(0x40, 4), 0n, 'reserved registers read 0');
  // the MSI-X table (BAR0 0x2000) and PBA (0x3000): vector 0 masked, nothing pending
  assert.deepEqual([r.rd(0x2000, 8), r.rd(0x2008, 4), r.rd(0x200c, 4), r.rd(0x3000, 8)], [0n, 0n, 1n, 0n]);
});

test('ioat: register semantics — read-only and writable bits, CHANCMD self-clearing, CHANERR write-1-to-clear, CHAINADDR arming, SUSPEND/RESUME, config CHANERR_INT', () => {
  const { r, hw } = setup();
  // read-only: CHANCNT, XFERCAP, CBVER, DMACAPABILITY, CHANSTS, CDAR, ATTNSTATUS
  for (const [off, size] of [[CHANCNT, 1], [XFERCAP, 1], [CBVER, 1], [DMACAP, 4], [CHANSTS, 8], [CDAR, 8], [ATTNSTATUS, 4]] as const) {
    const before = r.rd(off, size);
    r.wr(off, size, (1n << BigInt(8 * size)) - 1n);
    assert.equal(r.rd(off, size), before, `register 0x${off.toString(16)} is read-only`);
  }
  // writable bits
  r.wr(GENCTRL, 1, 0xff);
  r.wr(INTRCTRL, 1, 0xff);
  r.wr(INTRDELAY, 2, 0xffff);
  r.wr(CHANCTRL, 2, 0xffff);
  r.wr(CHANERRMSK, 4, 0xffffffff);
  assert.deepEqual([r.rd(GENCTRL, 1), r.rd(INTRCTRL, 1), r.rd(INTRDELAY, 2), r.rd(CHANCTRL, 2), r.rd(CHANERRMSK, 4)], [0x01n, 0x09n, 0x3fffn, 0xf33dn, 0x7ffffn]);
  r.wr(CHANCMP, 8, 0x1234_5678_9abc_def0n);
  assert.equal(r.rd(CHANCMP, 8), 0x1234_5678_9abc_def0n);
  // CHAINADDR in two 32-bit halves (the kernel's ioat_set_chainaddr): the reset channel is armed
  r.wr(CHAINADDR, 4, 0x0010_0040);
  r.wr(CHAINADDR + 4, 4, 0);
  assert.deepEqual([r.rd(CHAINADDR, 8), r.sts()], [0x100040n, ARMED]);
  // SUSPEND: suspended; a DMACOUNT write does not run it; RESUME runs it (nothing to do: DONE)
  r.wr(CHANCMD, 1, SUSPEND);
  assert.deepEqual([r.rd(CHANCMD, 1), r.sts()], [0n, SUSPENDED]);
  r.wr(CHANCMD, 1, RESUME);
  assert.deepEqual([r.rd(CHANCMD, 1), r.sts()], [0n, DONE]);
  // errors: a descriptor fetch from an unmapped IOVA. Masked by CHANERRMSK: nothing recorded, halted
  const fail = () => {
    r.wr(CHAINADDR, 8, 0x4000_0000n);
    r.wr(DMACOUNT, 2, 1);
  };
  r.cfgWr(4, 2, 0x0406);
  fail();
  assert.deepEqual([r.rd(CHANERR, 4), r.sts()], [0n, HALTED]);
  r.wr(CHANCMD, 1, RESET);
  r.wr(CHANERRMSK, 4, 0);
  fail();
  // READ_DATA_ERR, and COMPLETION_ADDR_ERR: ERR_COMPLETION_EN (set above) wrote at an unmapped CHANCMP
  assert.deepEqual([r.rd(CHANERR, 4), r.sts()], [0x1100n, HALTED]);
  assert.equal(hw.stats.errors, 2);
  // CHANERR: write-1-to-clear
  r.wr(CHANERR, 4, 0x1000);
  assert.equal(r.rd(CHANERR, 4), 0x100n);
  // halted by an error: CHAINADDR does not arm it, SUSPEND does not change it; RESET does
  r.wr(CHAINADDR, 8, 0x100000n);
  r.wr(CHANCMD, 1, SUSPEND);
  assert.equal(r.sts(), HALTED);
  r.wr(CHANCMD, 1, RESET);
  assert.deepEqual([r.rd(CHANCMD, 1), r.sts(), r.rd(CHAINADDR, 8), r.rd(DMACOUNT, 2)], [0n, HALTED, 0n, 0n]);
  // RESET keeps CHANCTRL, CHANCMP and CHANERR (the drivers clear CHANERR themselves first)
  assert.deepEqual([r.rd(CHANCTRL, 2), r.rd(CHANCMP, 8), r.rd(CHANERR, 4)], [0xf33dn, 0x1234_5678_9abc_def0n, 0x100n]);
  r.wr(CHAINADDR, 8, 0x100000n);
  assert.equal(r.sts(), ARMED, "DPDK's __ioat_recover: RESET, CHAINADDR, then CHANSTS == ARMED");
  // config space: DMAUNCERRSTS (0x148) and CHANERR_INT (0x180) are W1C zeros, CHANERRMSK_INT RW
  r.cfgWr(0x180, 4, 0xffffffff);
  r.cfgWr(0x148, 4, 0xffffffff);
  r.cfgWr(0x184, 4, 0x12345678);
  assert.deepEqual([r.cfgRd(0x180, 4), r.cfgRd(0x148, 4), r.cfgRd(0x184, 4)], [0, 0, 0x12345678]);
  // a function reset (VFIO_DEVICE_RESET: FLR) brings every register back to power-on
  assert.equal(r.p.ioctl(r.dev, U.VFIO_DEVICE_RESET), 0, r.p.errnoName);
  assert.deepEqual([r.rd(CHANCTRL, 2), r.rd(CHANCMP, 8), r.rd(CHANERR, 4), r.rd(CHANERRMSK, 4), r.sts(), r.rd(XFERCAP, 1)], [0n, 0n, 0n, 0n, HALTED, 12n]);
});

test('ioat: memcpy — a descriptor fetched through the IOMMU copies 4 KiB in the process\'s memory before the DMACOUNT store returns; CHANSTS, CDAR, the completion write-back; no MSI-X without int_en', () => {
  const { p, r, s, mem, iova, hw } = setup();
  const efd = init(p, r, s.dev);
  const src = mem + 0x1000, dst = mem + 0x2000, desc = { va: mem, iova }, cmp = mem + 0x3000;
  p.mem.write(src, new Uint8Array(SZ).fill(0x78)); // 'x'
  p.mem.write(dst, new Uint8Array(SZ).fill(0x79)); // 'y'
  p.mem.write(cmp, new Uint8Array(8).fill(0xee));
  r.wr(CHANCMP, 8, iova + 0x3000n);
  start(p, r, desc, iova + 0x1000n, iova + 0x2000n, SZ, 1, IOAT_DESC_COMPL_WRITE);
  assert.equal(r.sts(), iova | DONE, 'CHANSTS: the completed descriptor | DONE');
  assert.deepEqual(p.mem.read(dst, SZ), new Uint8Array(SZ).fill(0x78));
  assert.equal(new DataView(p.mem.read(cmp, 8).buffer).getBigUint64(0, true), iova | DONE, 'completion written at CHANCMP');
  assert.equal(r.rd(CDAR, 8), iova);
  assert.equal(r.rd(CHANERR, 4), 0n);
  assert.equal(readEventfd(p, efd), 'EAGAIN');
  assert.deepEqual(hw.stats, { descriptors: 1, bytes: SZ, errors: 0, interrupts: 0 });
  // ioat_memcpy_wait: SUSPEND once DONE
  r.wr(CHANCMD, 1, SUSPEND);
  assert.equal(r.sts(), iova | SUSPENDED);
});

test('ioat: a descriptor ring — DMACOUNT is a running count since CHAINADDR (the kernel\'s and DPDK\'s doorbell), completion status ACTIVE then DONE, FILL and null descriptors', () => {
  const { p, r, mem, iova } = setup();
  r.cfgWr(4, 2, 0x0406); // memory, bus master
  const ring = Array.from({ length: 4 }, (_, i) => ({ va: mem + i * 64, iova: iova + BigInt(i * 64) }));
  const buf = (i: number) => ({ va: mem + 0x1000 * (i + 1), iova: iova + BigInt(0x1000 * (i + 1)) });
  p.mem.write(buf(0).va, new TextEncoder().encode('hello, ioat'));
  const descs = [
    { size: 11, ctl: IOAT_DESC_COMPL_WRITE, src: buf(0).iova, dst: buf(1).iova },
    { size: 16, ctl: IOAT_DESC_COMPL_WRITE | (IOAT_OP_FILL << 24), src: 0x0807060504030201n, dst: buf(2).iova + 4n },
    { size: 1, ctl: IOAT_DESC_NULL | IOAT_DESC_COMPL_WRITE, src: 0n, dst: 0n },
    { size: 5, ctl: IOAT_DESC_COMPL_WRITE, src: buf(0).iova + 7n, dst: buf(3).iova },
  ];
  descs.forEach((d, i) => p.mem.write(ring[i]!.va, ioatEncodeDescriptor({ ...d, next: ring[(i + 1) % 4]!.iova })));
  const cmp = mem + 0xf000;
  r.wr(CHANCMP, 8, iova + 0xf000n);
  const completion = () => new DataView(p.mem.read(cmp, 8).buffer).getBigUint64(0, true);
  r.wr(CHANCMD, 1, RESET);
  r.wr(CHAINADDR, 8, ring[0]!.iova);
  r.wr(DMACOUNT, 2, 2);
  assert.equal(r.sts(), ring[1]!.iova | DONE);
  assert.equal(completion(), ring[1]!.iova | DONE);
  assert.equal(new TextDecoder().decode(p.mem.read(buf(1).va, 11)), 'hello, ioat');
  assert.deepEqual([...p.mem.read(buf(2).va, 24)], [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0]);
  // the same count again: nothing to do
  r.wr(DMACOUNT, 2, 2);
  assert.equal(r.sts(), ring[1]!.iova | DONE);
  // two more: the null descriptor moves nothing, the fourth copies bytes 7..11 of the source
  r.wr(DMACOUNT, 2, 4);
  assert.equal(r.sts(), ring[3]!.iova | DONE);
  assert.equal(new TextDecoder().decode(p.mem.read(buf(3).va, 5)), 'ioat\0');
  // the count wraps at 2^16: 65535 then 0 after a CHAINADDR restart runs 65535 + 1 descriptors
  // of the ring (cheap ones: make them all null)
  descs.forEach((_, i) => p.mem.write(ring[i]!.va, ioatEncodeDescriptor({ size: 1, ctl: IOAT_DESC_NULL, src: 0n, dst: 0n, next: ring[(i + 1) % 4]!.iova })));
  r.wr(CHAINADDR, 8, ring[0]!.iova);
  r.wr(DMACOUNT, 2, 0xffff);
  assert.equal(r.sts(), ring[(0xffff - 1) % 4]!.iova | DONE);
  r.wr(DMACOUNT, 2, 0);
  assert.equal(r.sts(), ring[0xffff % 4]!.iova | DONE);
  // a completion written while more descriptors are pending says ACTIVE: make the fourth fail
  // (size 0) to see what the third wrote
  descs.forEach((d, i) => p.mem.write(ring[i]!.va, ioatEncodeDescriptor({ ...d, next: ring[(i + 1) % 4]!.iova })));
  p.mem.write(ring[3]!.va, ioatEncodeDescriptor({ size: 0, ctl: 0, src: 0n, dst: 0n, next: 0n }));
  r.wr(CHAINADDR, 8, ring[0]!.iova);
  r.wr(DMACOUNT, 2, 4);
  assert.equal(completion(), ring[2]!.iova | ACTIVE);
  assert.deepEqual([r.sts(), r.rd(CHANERR, 4)], [ring[2]!.iova | HALTED, BigInt(IOAT_CHANERR_LENGTH_ERR)]);
});

test('ioat: faults — an unmapped source, destination or descriptor, a read-only destination: CHANERR, HALTED, no bytes moved and no MSI-X; halted until RESET', () => {
  for (const [what, bit] of [
    ['source', IOAT_CHANERR_SRC_ADDR_ERR],
    ['destination', IOAT_CHANERR_DEST_ADDR_ERR],
    ['read-only destination', IOAT_CHANERR_DEST_ADDR_ERR],
    ['descriptor', IOAT_CHANERR_READ_DATA_ERR],
  ] as const) {
    const { p, r, s, mem, iova, h } = setup();
    const efd = init(p, r, s.dev);
    const ro = p.mem.alloc(SZ);
    s.map(ro, 0x200000n, SZ, true);
    const unmapped = 0x40000000n;
    p.mem.write(mem + 0x1000, new Uint8Array(SZ).fill(1));
    p.mem.write(mem + 0x2000, new Uint8Array(SZ).fill(2));
    const src = what === 'source' ? unmapped : iova + 0x1000n;
    const dst = what === 'destination' ? unmapped + 0x1000n : what === 'read-only destination' ? 0x200000n : iova + 0x2000n;
    const m = mark(h);
    // int_en set: a successful copy would interrupt
    p.mem.write(mem, ioatEncodeDescriptor({ size: SZ, ctl: IOAT_DESC_INT_EN | IOAT_DESC_COMPL_WRITE, src, dst, next: iova }));
    r.wr(CHANCMP, 8, iova + 0x3000n);
    r.wr(CHAINADDR, 8, what === 'descriptor' ? unmapped : iova);
    r.wr(CHANCTRL, 2, SELFTEST_CHANCTRL);
    r.wr(DMACOUNT, 2, 1);
    assert.deepEqual([r.sts(), r.rd(CHANERR, 4)], [HALTED, BigInt(bit)], what);
    assert.deepEqual(p.mem.read(mem + 0x2000, SZ), new Uint8Array(SZ).fill(2), `${what}: nothing written`);
    assert.deepEqual(p.mem.read(ro, 4), new Uint8Array(4), `${what}: the read-only page is untouched`);
    assert.equal(readEventfd(p, efd), 'EAGAIN', `${what}: no MSI-X`);
    assert.deepEqual(argsOf(eventsSince(h, m), 'msix_raise'), []);
    assert.equal(r.rd(CHANCTRL, 2) & BigInt(IOAT_CHANCTRL_INT_REARM), 1n, 'still armed: no interrupt was sent');
    // halted: a CHAINADDR write does not arm it, DMACOUNT does not run it
    p.mem.write(mem, ioatEncodeDescriptor({ size: 8, ctl: 0, src: iova + 0x1000n, dst: iova + 0x2000n, next: iova }));
    r.wr(CHAINADDR, 8, iova);
    r.wr(DMACOUNT, 2, 1);
    assert.deepEqual([r.sts(), p.mem.read(mem + 0x2000, 1)[0]], [HALTED, 2]);
    // ioat_handle_error -> ioat_reset: clear CHANERR, RESET; then the copy works
    r.wr(CHANERR, 4, r.rd(CHANERR, 4));
    r.wr(CHANCMD, 1, RESET);
    assert.deepEqual([r.sts(), r.rd(CHANERR, 4)], [HALTED, 0n]);
    r.wr(CHAINADDR, 8, iova);
    r.wr(DMACOUNT, 2, 1);
    assert.deepEqual([r.sts(), p.mem.read(mem + 0x2000, 1)[0]], [iova | DONE, 1]);
  }
});

test('ioat: error reporting — ERR_COMPLETION_EN writes the halted status at CHANCMP, ERR_INT_EN raises MSI-X; LENGTH, alignment, op and completion-address errors', () => {
  const { p, r, s, mem, iova, hw } = setup();
  const efd = init(p, r, s.dev);
  const cmp = mem + 0x3000;
  const run = (d: { size: number; ctl: number; src?: bigint; dst?: bigint }, chain = iova): bigint => {
    r.wr(CHANERR, 4, 0xffffffff);
    r.wr(CHANCMD, 1, RESET);
    p.mem.write(mem, ioatEncodeDescriptor({ src: iova + 0x1000n, dst: iova + 0x2000n, ...d, next: iova }));
    r.wr(CHAINADDR, 8, chain);
    r.wr(DMACOUNT, 2, 1);
    return r.rd(CHANERR, 4);
  };
  r.wr(CHANCMP, 8, iova + 0x3000n);
  r.wr(CHANCTRL, 2, IOAT_CHANCTRL_ERR_COMPLETION_EN | IOAT_CHANCTRL_ERR_INT_EN | IOAT_CHANCTRL_ANY_ERR_ABORT_EN);
  assert.equal(run({ size: 0, ctl: 0 }), BigInt(IOAT_CHANERR_LENGTH_ERR), 'size 0');
  assert.equal(new DataView(p.mem.read(cmp, 8).buffer).getBigUint64(0, true), HALTED, 'the halted status, written at CHANCMP');
  assert.equal(readEventfd(p, efd), 1n, 'ERR_INT_EN: an error interrupt');
  assert.equal(run({ size: SZ + 1, ctl: 0 }), BigInt(IOAT_CHANERR_LENGTH_ERR), 'above 2^XFERCAP');
  assert.equal(run({ size: SZ, ctl: 0 }), 0n, 'exactly 2^XFERCAP');
  assert.equal(run({ size: 8, ctl: 0x87 << 24 }), BigInt(IOAT_CHANERR_CONTROL_ERR), 'XOR: not on this channel');
  assert.equal(run({ size: 8, ctl: 0 }, iova + 0x20n), BigInt(IOAT_CHANERR_NEXT_DESC_ALIGN_ERR), 'misaligned CHAINADDR');
  assert.equal(readEventfd(p, efd), 3n, 'one error interrupt for each of the three errors since');
  // a completion address that does not translate (or is misaligned): COMPLETION_ADDR_ERR
  r.wr(CHANCTRL, 2, IOAT_CHANCTRL_ANY_ERR_ABORT_EN);
  r.wr(CHANCMP, 8, 0x7000_0000n);
  assert.equal(run({ size: 8, ctl: IOAT_DESC_COMPL_WRITE }), BigInt(IOAT_CHANERR_COMPLETION_ADDR_ERR));
  assert.equal(r.sts(), iova | HALTED, 'the descriptor completed; the write-back failed');
  r.wr(CHANCMP, 8, iova + 0x3004n);
  assert.equal(run({ size: 8, ctl: IOAT_DESC_COMPL_WRITE }), BigInt(IOAT_CHANERR_COMPLETION_ADDR_ERR));
  assert.equal(readEventfd(p, efd), 'EAGAIN', 'ERR_INT_EN clear: no interrupt');
  assert.equal(hw.stats.errors, 6);
  // a larger XFERCAP (a model property) admits the larger copy
  hw.xfercap = 13;
  assert.deepEqual([r.rd(XFERCAP, 1), run({ size: SZ + 1, ctl: 0 }), r.sts()], [13n, 0n, iova | DONE]);
});

test('ioat: bus mastering off — the descriptor fetch is a master abort (READ_DATA_ERR), nothing moves', () => {
  const { p, r, mem, iova } = setup();
  r.cfgWr(4, 2, 0x0002); // memory only
  p.mem.write(mem, ioatEncodeDescriptor({ size: 8, ctl: 0, src: iova + 0x1000n, dst: iova + 0x2000n, next: iova }));
  p.mem.write(mem + 0x1000, new Uint8Array(8).fill(5));
  r.wr(CHANCMD, 1, RESET);
  r.wr(CHAINADDR, 8, iova);
  r.wr(DMACOUNT, 2, 1);
  assert.deepEqual([r.sts(), r.rd(CHANERR, 4), p.mem.read(mem + 0x2000, 8)], [HALTED, BigInt(IOAT_CHANERR_READ_DATA_ERR), new Uint8Array(8)]);
});

test('ioat: completion interrupts — int_en with INT_REARM sends MSI-X vector 0 and disarms; without a re-arm the next completion is silent; a masked vector waits in the PBA', () => {
  const { h, p, r, s, mem, iova } = setup();
  const efd = init(p, r, s.dev);
  let m = mark(h);
  start(p, r, { va: mem, iova }, iova + 0x1000n, iova + 0x2000n, 8, 1, IOAT_DESC_INT_EN);
  assert.deepEqual([r.sts(), readEventfd(p, efd), r.rd(CHANCTRL, 2)], [iova | DONE, 1n, BigInt(IOAT_CHANCTRL_ANY_ERR_ABORT_EN)]);
  assert.deepEqual(argsOf(eventsSince(h, m), 'msix_raise').map((a) => [a.vector, a.result]), [[0, 'sent']]);
  r.wr(DMACOUNT, 2, 2); // not re-armed
  assert.deepEqual([r.sts(), readEventfd(p, efd)], [iova | DONE, 'EAGAIN']);
  // the vector masked in the MSI-X table (BAR0 0x200c): pending in the PBA (BAR0 0x3000), sent
  // when unmasked
  r.wr(0x200c, 4, 1);
  r.wr(CHANCTRL, 2, SELFTEST_CHANCTRL);
  m = mark(h);
  r.wr(DMACOUNT, 2, 3);
  assert.deepEqual([readEventfd(p, efd), r.rd(0x3000, 8)], ['EAGAIN', 1n]);
  r.wr(0x200c, 4, 0);
  assert.deepEqual([readEventfd(p, efd), r.rd(0x3000, 8)], [1n, 0n]);
  assert.deepEqual(argsOf(eventsSince(h, m), 'msix_raise').map((a) => a.result), ['pending']);
});

test('ioat: legacy interrupts (INTRCTRL bit 3 clear) — ATTNSTATUS and INT_STATUS, INTx under the master enable until the channel is re-armed', () => {
  const { p, r, s, mem, iova } = setup();
  r.cfgWr(4, 2, 0x0006);
  const efd = p.eventfd(0, O_NONBLOCK);
  const a = p.mem.alloc(24);
  const b = new DataView(new ArrayBuffer(24));
  [24, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, INTX, 0, 1].forEach((v, i) => b.setUint32(4 * i, v, true));
  b.setInt32(20, efd, true);
  p.mem.write(a, new Uint8Array(b.buffer));
  assert.equal(p.ioctl(s.dev, U.VFIO_DEVICE_SET_IRQS, a), 0, p.errnoName);
  r.wr(CHANCMD, 1, RESET);
  r.wr(INTRCTRL, 1, 0x01); // master enable
  start(p, r, { va: mem, iova }, iova + 0x1000n, iova + 0x2000n, 8, 1, IOAT_DESC_INT_EN);
  assert.deepEqual([r.rd(ATTNSTATUS, 4), r.rd(INTRCTRL, 1), readEventfd(p, efd)], [1n, 0x07n, 1n]);
  r.wr(CHANCTRL, 2, SELFTEST_CHANCTRL); // re-arm: the attention is acknowledged, INTx drops
  assert.deepEqual([r.rd(ATTNSTATUS, 4), r.rd(INTRCTRL, 1)], [0n, 0x01n]);
  // master enable clear: the attention is recorded, the pin stays low
  r.wr(INTRCTRL, 1, 0);
  r.wr(DMACOUNT, 2, 2);
  assert.deepEqual([r.rd(ATTNSTATUS, 4), r.rd(INTRCTRL, 1), readEventfd(p, efd)], [1n, 0x02n, 'EAGAIN']);
});

test('ioat: the selftests\' driver sequence (lib/drivers/ioat/ioat.c) in process — init, memcpy_success, memcpy from/to an unmapped IOVA (no MSI), send_msi, mix_and_match, remove', () => {
  const { p, r, s, mem, iova } = setup();
  // ioat_state at the start of the driver region: the descriptor, then send_msi_src/dst
  const desc = { va: mem, iova };
  const msiSrc = iova + 64n, msiDst = iova + 72n;
  const src = iova + 0x4000n, dst = iova + 0x8000n, unmapped = 0x8000_0000n;
  const efd = init(p, r, s.dev);
  const maxSize = 1 << Number(r.rd(XFERCAP, 1));
  assert.equal(maxSize, SZ);
  const wait = (): number => {
    for (;;) {
      const st = r.sts() & 7n;
      if (st === DONE) break;
      if (st === HALTED) {
        r.cfgWr(0x180, 4, r.cfgRd(0x180, 4));
        r.cfgWr(0x180, 4, r.cfgRd(0x148, 4));
        r.wr(CHANERR, 4, r.rd(CHANERR, 4));
        r.wr(CHANCMD, 1, RESET);
        assert.equal(r.rd(CHANCMD, 1) & BigInt(RESET), 0n);
        assert.equal(r.sts() & 7n, HALTED);
        return -1;
      }
      assert.fail(`CHANSTS ${st}: the selftest would spin`);
    }
    r.wr(CHANCMD, 1, SUSPEND);
    assert.equal(r.sts() & 7n, SUSPENDED);
    return 0;
  };
  const memcpy = (a: bigint, b: bigint) => {
    start(p, r, desc, a, b, maxSize, 1);
    return wait();
  };
  const sendMsi = () => {
    start(p, r, desc, msiSrc, msiDst, 8, 1, IOAT_DESC_INT_EN);
    assert.equal(wait(), 0);
  };
  for (let i = 0; i < 10; i++) {
    p.mem.write(mem + 0x4000, new Uint8Array(maxSize).fill(0x78));
    p.mem.write(mem + 0x8000, new Uint8Array(maxSize).fill(0x79));
    assert.equal(memcpy(src, dst), 0);
    assert.deepEqual(p.mem.read(mem + 0x8000, maxSize), p.mem.read(mem + 0x4000, maxSize));
    assert.equal(readEventfd(p, efd), 'EAGAIN');
    assert.equal(memcpy(unmapped, dst), -1);
    assert.equal(memcpy(src, unmapped), -1);
    assert.equal(readEventfd(p, efd), 'EAGAIN');
    sendMsi();
    assert.equal(readEventfd(p, efd), 1n);
  }
  // memcpy_storm: DMACOUNT = 65535 copies of the self-linked descriptor, in one store
  start(p, r, desc, src, dst, maxSize, 0xffff);
  assert.equal(wait(), 0);
  assert.equal(readEventfd(p, efd), 'EAGAIN');
});

for (const mode of MODES)
  test(`ioat: end to end in ${mode} — map memory, program a copy through the mapped BAR, the bytes land in the process's memory and the completion's MSI-X reaches the eventfd`, () => {
    const h = boot();
    const p = proc(h, { name: `ioat-${mode}` });
    const s = open(p, mode);
    // 2 MiB of memory at IOVA 0x10000000 (descriptor, source, destination)
    const mem = p.mem.alloc(0x200000);
    const iova = 0x10000000n;
    s.map(mem, iova, 0x200000);
    const r = new Regs(p, s.dev);
    const efd = init(p, r, s.dev);
    assert.equal(readEventfd(p, efd), 'EAGAIN');
    const pattern = Uint8Array.from({ length: SZ }, (_, i) => (i * 7 + mode.length) & 0xff);
    p.mem.write(mem + 0x100000, pattern);
    start(p, r, { va: mem, iova }, iova + 0x100000n, iova + 0x180000n, SZ, 1, IOAT_DESC_INT_EN);
    assert.equal(r.sts(), iova | DONE);
    assert.deepEqual(p.mem.read(mem + 0x180000, SZ), pattern);
    assert.equal(readEventfd(p, efd), 1n);
    assert.equal(readEventfd(p, efd), 'EAGAIN');
    // an IOVA outside the mapping: CHANERR, halted, no interrupt
    r.wr(CHANCMD, 1, RESET);
    start(p, r, { va: mem, iova }, iova + 0x200000n, iova + 0x180000n, SZ, 1, IOAT_DESC_INT_EN);
    assert.deepEqual([r.sts(), r.rd(CHANERR, 4), readEventfd(p, efd)], [HALTED, BigInt(IOAT_CHANERR_SRC_ADDR_ERR), 'EAGAIN']);
  });
