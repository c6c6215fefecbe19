// vfio-pci's BAR, ROM and VGA regions and BAR mmap (vfio_pci_rdwr.c, vfio_pci_core_mmap) reaching
// the functions' hardware models (src/drivers/pci/hw): the generic RAM-like BARs seen the same
// through pread/pwrite and a mapping, QEMU's edu through a trapped mapping, a model plugged in by
// vendor:device that reacts to register writes at once and does DMA through the IOMMU, the VGA
// region of a VGA function, a ROM without a valid image, and what memory decode does to mappings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Host, Process } from '../src/api/index.js';
import { PciDev, pciGetDevice } from '../src/drivers/pci/pci.js';
import { EduPciHw } from '../src/drivers/pci/hw/edu.js';
import { GenericPciHw } from '../src/drivers/pci/hw/generic.js';
import { IoWidth, PciHw, PciHwIrq, getLe, putLe } from '../src/drivers/pci/hw/hw.js';
import { pciHwRegister } from '../src/drivers/pci/hw/models.js';
import { vfioPciParams } from '../src/drivers/vfio_pci.js';
import { VfioPciCoreDevice } from '../src/drivers/vfio_pci_core.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { E1000E, EDU, TESTDEV, U, attach, boot, ioasAlloc, openViaCdev, proc, yamlHost } from './helpers.js';

const R = (i: number, off = 0) => (BigInt(i) << 40n) + BigInt(off);
const PROT_RW = 3,
  MAP_SHARED = 1;
const u32 = (b: Uint8Array) => (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
const le32 = (v: number) => new Uint8Array(new Uint32Array([v >>> 0]).buffer);
const pdevOf = (h: Host, bdf: string): PciDev => pciGetDevice(h.kernel, bdf)!;
const core = (h: Host, bdf: string) => pdevOf(h, bdf).drvdata as VfioPciCoreDevice;

function rw(p: Process, dev: number) {
  const buf = p.mem.alloc(0x40000);
  return {
    rd(region: bigint, n: number): number[] | string {
      const r = p.pread(dev, buf, n, region);
      return r < 0 ? p.errnoName : [...p.mem.read(buf, r)];
    },
    rd32(region: bigint): number | string {
      const r = p.pread(dev, buf, 4, region);
      return r < 0 ? p.errnoName : u32(p.mem.read(buf, 4));
    },
    wr32(region: bigint, v: number): number | string {
      p.mem.write(buf, le32(v));
      const r = p.pwrite(dev, buf, 4, region);
      return r < 0 ? p.errnoName : r;
    },
    wr64(region: bigint, v: bigint): number | string {
      p.mem.write(buf, new Uint8Array(new BigUint64Array([v]).buffer));
      const r = p.pwrite(dev, buf, 8, region);
      return r < 0 ? p.errnoName : r;
    },
  };
}

test('regions: a generic BAR is one memory — pwrite is seen through the mapping and stores through the mapping by pread', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, TESTDEV);
  const d = rw(p, dev);
  const m = p.mmap(4096, PROT_RW, MAP_SHARED, dev, 0);
  assert.ok(m > 0);
  assert.equal(d.wr32(R(0, 0x20), 0x11223344), 4);
  assert.equal(u32(p.mem.read(m + 0x20, 4)), 0x11223344);
  p.mem.write(m + 0x40, le32(0xa5a5a5a5));
  assert.equal(d.rd32(R(0, 0x40)), 0xa5a5a5a5);
  const hw = pdevOf(h, TESTDEV.bdf).hw as GenericPciHw;
  assert.equal(u32(hw.barMemory(0)!.subarray(0x40)), 0xa5a5a5a5, 'the model holds it');
  // an I/O BAR: pread/pwrite work (it is not mmap-able: oracle mmap bar1 = EINVAL)
  assert.equal(d.wr32(R(1, 0x10), 0xdeadbeef), 4);
  assert.equal(d.rd32(R(1, 0x10)), 0xdeadbeef);
  assert.deepEqual([p.mmap(4096, 1, MAP_SHARED, dev, R(1)), p.errnoName], [-1, 'EINVAL']);
});

test('regions: memory decode off — BAR pread/pwrite EIO, mapped accesses SIGBUS, the mappings zapped; back on they work again (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  const d = rw(p, dev);
  const m = p.mmap(8192, PROT_RW, MAP_SHARED, dev, 0);
  d.wr32(R(0, 0x1000), 7);
  const zaps = core(h, E1000E.bdf).zapCount;
  assert.equal(d.wr32(R(7, 4), 0x0101), 4); // COMMAND: IO + SERR, memory off
  assert.equal(core(h, E1000E.bdf).zapCount, zaps + 1);
  assert.equal(d.rd32(R(0)), 'EIO'); // oracle
  assert.equal(d.wr32(R(0, 4), 0), 'EIO'); // oracle
  assert.equal(d.rd32(R(2)), 0, 'the I/O BAR is not checked'); // oracle
  assert.deepEqual(d.rd(R(3), 16), new Array(16).fill(0xff), 'the MSI-X table range is not an access at all'); // oracle
  assert.throws(() => p.mem.read(m + 0x1000, 4), /SIGBUS/); // oracle
  assert.throws(() => p.mem.write(m, le32(1)), /SIGBUS/);
  // the kernel's own copy from a zapped mapping faults too (EFAULT)
  assert.deepEqual([p.pwrite(dev, m, 4, R(7, 0x3c)), p.errnoName], [-1, 'EFAULT']);
  d.wr32(R(7, 4), 0x0103);
  assert.equal(u32(p.mem.read(m + 0x1000, 4)), 7); // oracle: touch bar0-memon works
  assert.equal(p.pwrite(dev, m + 0x1000, 1, R(7, 0x3c)), 1);
});

test('regions: edu through a mapping — every load and store is trapped (identification, liveness inversion, 1-byte accesses read 0)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, EDU);
  const m = p.mmap(4096, PROT_RW, MAP_SHARED, dev, 0);
  assert.equal(u32(p.mem.read(m, 4)), 0x010000ed); // oracle: touch bar0-memon = 0x10000ed
  p.mem.write(m + 4, le32(0x12345678));
  assert.equal(u32(p.mem.read(m + 4, 4)), 0xedcba987);
  assert.deepEqual([...p.mem.read(m, 1)], [0], 'QEMU rejects 1-byte accesses: 0'); // oracle (pread of 1)
  const hw = pdevOf(h, EDU.bdf).hw as EduPciHw;
  assert.equal(hw.addr4, 0xedcba987);
  // the shadow the bridge would map holds the 4-byte register values
  assert.equal(u32(hw.mmapMemory(0)!.subarray(4)), 0xedcba987);
  // a factorial through the mapping, computed before the store returns
  p.mem.write(m + 8, le32(10));
  assert.deepEqual([u32(p.mem.read(m + 0x20, 4)), u32(p.mem.read(m + 8, 4))], [0, 3628800]);
});

test('regions: edu interrupts — the raise/lower registers and a finished factorial drive the function\'s irq outputs (MSI when enabled, else INTx)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, EDU);
  const d = rw(p, dev);
  const hw = pdevOf(h, EDU.bdf).hw as EduPciHw;
  const seen: string[] = [];
  const sink: PciHwIrq = { msi: (v) => seen.push(`msi ${v}`), msix: (v) => seen.push(`msix ${v}`), intx: (l) => seen.push(`intx ${l}`) };
  hw.irq = sink;
  d.wr32(R(0, 0x60), 0x10);
  assert.equal(d.rd32(R(0, 0x24)), 0x10);
  d.wr32(R(0, 0x64), 0x10);
  assert.equal(d.rd32(R(0, 0x24)), 0);
  assert.deepEqual(seen, ['intx true', 'intx false']);
  // MSI enabled in the function's config space (as the interrupt code would enable it)
  const msi = pdevOf(h, EDU.bdf).msiCap!.at;
  pdevOf(h, EDU.bdf).config.write(msi + 2, 2, 0x0081);
  d.wr32(R(0, 0x20), 0x80); // interrupt when the factorial is done
  d.wr32(R(0, 0x08), 5);
  assert.deepEqual([d.rd32(R(0, 0x08)), d.rd32(R(0, 0x24))], [120, 1]);
  assert.deepEqual(seen, ['intx true', 'intx false', 'msi 0']);
  // unconnected (no interrupt layer yet): only the status register changes
  hw.irq = null;
  d.wr32(R(0, 0x60), 0x2);
  assert.equal(d.rd32(R(0, 0x24)), 3);
});

test('regions: edu DMA goes through the IOMMU domain and needs bus mastering; an unmapped IOVA moves nothing', () => {
  const h = boot();
  const p = proc(h);
  const { dev, i } = openViaCdev(p, EDU);
  const ioas = ioasAlloc(p, i);
  assert.ok(attach(p, dev, ioas) > 0);
  const buf = p.mem.alloc(8192);
  p.mem.write(buf, Uint8Array.from({ length: 64 }, (_, k) => 0x40 + k));
  const map = p.mem.struct(U.iommu_ioas_map, {
    size: U.iommu_ioas_map.size,
    flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas,
    user_va: BigInt(buf),
    length: 8192n,
    iova: 0x100000n,
  });
  assert.equal(p.ioctl(i, U.IOMMU_IOAS_MAP, map), 0);
  const d = rw(p, dev);
  const hw = pdevOf(h, EDU.bdf).hw as EduPciHw;
  const run = (src: bigint, dst: bigint, cnt: bigint, cmd: bigint) => {
    d.wr64(R(0, 0x80), src);
    d.wr64(R(0, 0x88), dst);
    d.wr64(R(0, 0x90), cnt);
    d.wr64(R(0, 0x98), cmd);
  };
  run(0x100000n, 0x40000n, 16n, 1n); // bus mastering is off after open: nothing is read
  assert.equal(hw.dmaFaults, 1);
  d.wr32(R(7, 4), 0x0107);
  run(0x100000n, 0x40000n, 16n, 1n); // host -> device buffer
  run(0x40004n, 0x101000n, 8n, 3n); // device buffer -> host
  assert.deepEqual([...p.mem.read(buf + 0x1000, 12)], [0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0, 0, 0, 0]); // oracle: dma edu master
  run(0x40000n, 0x200000n, 8n, 3n); // an IOVA nothing is mapped at
  assert.equal(hw.dmaFaults, 2);
  assert.equal(d.rd32(R(0, 0x98)), 2, 'the run bit clears'); // oracle: rd edu 0 0x98 8 = 02..
});

/** A model plugged in by vendor:device: a doorbell register that copies through the IOMMU. */
class DoorbellHw extends PciHw {
  regs = new Uint8Array(0x1000);
  doorbells = 0;
  constructor(k: Kernel, pdev: PciDev) {
    super(k, pdev);
  }
  read(bar: number, off: number, size: IoWidth): bigint {
    return bar === 0 ? getLe(this.regs, off, size) : 0n;
  }
  write(bar: number, off: number, size: IoWidth, value: bigint): void {
    if (bar !== 0) return;
    putLe(this.regs, off, size, value);
    if (off === 0x10) {
      // doorbell: copy 8 bytes from IOVA [0x20] to IOVA [0x28], status at 0x30
      this.doorbells++;
      const r = this.dmaRead(getLe(this.regs, 0x20, 8), 8);
      const w = r.ok ? this.dmaWrite(getLe(this.regs, 0x28, 8), r.data) : r;
      putLe(this.regs, 0x30, 4, w.ok ? 1n : 2n);
      if (w.ok) this.irq?.msix(0);
    }
  }
  override mmapMemory(): Uint8Array | null {
    return null;
  }
  override reset(): void {
    this.regs.fill(0);
  }
}

test('regions: a model plugged in by vendor:device sees register writes synchronously and does DMA through the IOMMU', () => {
  pciHwRegister(0x1af4, 0x10fe, (k, d) => new DoorbellHw(k, d));
  const h = boot(
    yamlHost(`  - { bdf: "0000:01:00.0", id: "1af4:10fe", class: 0x088000, pcie: true, iommu_group: 6, driver: vfio-pci, reset: [flr], bars: [ { size: 0x1000 } ] }
`),
  );
  const p = proc(h);
  const { dev, i } = openViaCdev(p, { index: 0 });
  const hw = pdevOf(h, '0000:01:00.0').hw as DoorbellHw;
  assert.ok(hw instanceof DoorbellHw);
  const ioas = ioasAlloc(p, i);
  attach(p, dev, ioas);
  const buf = p.mem.alloc(4096);
  p.mem.write(buf, new TextEncoder().encode('vfiosim!'));
  const map = p.mem.struct(U.iommu_ioas_map, {
    size: U.iommu_ioas_map.size,
    flags: U.IOMMU_IOAS_MAP_FIXED_IOVA | U.IOMMU_IOAS_MAP_READABLE | U.IOMMU_IOAS_MAP_WRITEABLE,
    ioas_id: ioas,
    user_va: BigInt(buf),
    length: 4096n,
    iova: 0x10000n,
  });
  assert.equal(p.ioctl(i, U.IOMMU_IOAS_MAP, map), 0);
  const d = rw(p, dev);
  const irqs: number[] = [];
  hw.irq = { msi: () => {}, msix: (v) => irqs.push(v), intx: () => {} };
  d.wr32(R(7, 4), 0x0106); // memory + bus master
  d.wr64(R(0, 0x20), 0x10000n);
  d.wr64(R(0, 0x28), 0x10100n);
  assert.equal(d.wr32(R(0, 0x10), 1), 4);
  assert.equal(d.rd32(R(0, 0x30)), 1, 'done before the write returned');
  assert.equal(new TextDecoder().decode(p.mem.read(buf + 0x100, 8)), 'vfiosim!');
  assert.deepEqual(irqs, [0]);
  // through a mapping (in process every access is trapped): a store rings the doorbell at once
  const m = p.mmap(4096, PROT_RW, MAP_SHARED, dev, 0);
  assert.ok(m > 0);
  p.mem.write(m + 0x28, new Uint8Array(new BigUint64Array([0x10200n]).buffer));
  p.mem.write(m + 0x10, le32(1));
  assert.deepEqual([hw.doorbells, u32(p.mem.read(m + 0x30, 4))], [2, 1]);
  assert.equal(new TextDecoder().decode(p.mem.read(buf + 0x200, 8)), 'vfiosim!');
  // an FLR through DEVCTL reaches the model's reset
  const exp = pdevOf(h, '0000:01:00.0').pcieCap!.at;
  const b = p.mem.alloc(2);
  p.mem.write(b, new Uint8Array([0, 0x80]));
  assert.equal(p.pwrite(dev, b, 2, R(7, exp + 8)), 2);
  assert.equal(d.rd32(R(0, 0x30)), 0);
});

test('regions: a VGA function has the VGA region (legacy memory and ports, clipped to their windows); without VGA or with disable_vga it is EINVAL', () => {
  const topo = yamlHost(`  - { bdf: "0000:01:00.0", id: "1234:1111", class: 0x030000, iommu_group: 6, driver: vfio-pci, bars: [ { size: 0x1000000, prefetch: true }, null, { size: 0x1000 } ] }
`);
  const h = boot(topo);
  const p = proc(h);
  const { dev } = openViaCdev(p, { index: 0 });
  const ri = p.mem.struct(U.vfio_region_info, { argsz: 32, index: 8 });
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, ri), 0);
  const v = p.mem.readStruct(U.vfio_region_info, ri);
  assert.deepEqual([v.flags, v.size, v.offset], [3, 0xc0000n, 8n << 40n]);
  const d = rw(p, dev);
  assert.deepEqual(d.rd(R(8, 0xa0000), 4), [0xff, 0xff, 0xff, 0xff], 'no VGA memory behind it in this model');
  assert.equal((d.rd(R(8, 0x3c0), 0x40) as number[]).length, 0x20, 'ports 0x3c0-0x3df');
  assert.equal((d.rd(R(8, 0xbfffe), 8) as number[]).length, 2);
  assert.equal(d.rd(R(8, 0x400), 4), 'EINVAL');
  assert.equal(d.rd(R(8, 0xc0000), 4), 'EINVAL');
  assert.deepEqual([p.mmap(4096, 1, MAP_SHARED, dev, R(8)), p.errnoName], [-1, 'EINVAL']);
  const h2 = boot(topo);
  vfioPciParams(h2.kernel).disableVga = true;
  const p2 = proc(h2);
  const d2 = openViaCdev(p2, { index: 0 }).dev;
  assert.deepEqual([p2.ioctl(d2, U.VFIO_DEVICE_GET_REGION_INFO, p2.mem.struct(U.vfio_region_info, { argsz: 32, index: 8 })), p2.errnoName], [-1, 'EINVAL']);
});

test('regions: a ROM BAR without a valid image has no ROM region (size 0, flags 0) and reads ENOMEM; a valid one reads 0xff past the image', () => {
  class BlankRomHw extends GenericPciHw {
    override rom(): Uint8Array | null {
      return new Uint8Array(0x800); // erased: no 55 AA signature
    }
  }
  pciHwRegister(0x1af4, 0x10fd, (k, d) => new BlankRomHw(k, d));
  const h = boot(
    yamlHost(`  - { bdf: "0000:01:00.0", id: "1af4:10fd", class: 0x020000, iommu_group: 6, driver: vfio-pci, bars: [ { size: 0x1000 } ], rom: 0x10000 }
`),
  );
  const p = proc(h);
  const { dev } = openViaCdev(p, { index: 0 });
  const ri = p.mem.struct(U.vfio_region_info, { argsz: 32, index: 6 });
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_REGION_INFO, ri), 0);
  assert.deepEqual([p.mem.readStruct(U.vfio_region_info, ri).flags, p.mem.readStruct(U.vfio_region_info, ri).size], [0, 0n]);
  assert.equal(rw(p, dev).rd(R(6), 4), 'ENOMEM');
  // the ROM BAR is left disabled afterwards (pci_unmap_rom / pci_map_rom's error path)
  assert.equal(pdevOf(h, '0000:01:00.0').config.read(0x30, 4) & 1, 0);
  // e1000e's generic ROM: a 192 KiB image in a 256 KiB BAR, 4-byte accesses, read-only
  const q = proc(boot());
  const e = rw(q, openViaCdev(q, E1000E).dev);
  assert.deepEqual(e.rd(R(6), 2), [0x55, 0xaa]); // oracle: 55aa...
  assert.deepEqual((e.rd(R(6, 0x2fffe), 4) as number[]).slice(2), [0xff, 0xff], 'past the image');
  const img = e.rd(R(6), 0x30000) as number[];
  assert.equal(img.reduce((a, x) => (a + x) & 0xff, 0), 0, 'the image checksums to 0');
  assert.deepEqual(e.rd(R(6, 0x3fffc), 8), [0xff, 0xff, 0xff, 0xff]); // oracle: clipped at the BAR end
  assert.equal(e.rd(R(6, 0x40000), 4), 'EINVAL'); // oracle
  assert.equal(e.wr32(R(6), 0), 'EINVAL'); // oracle
});
