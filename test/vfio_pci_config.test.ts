// vfio-pci's virtual config space (drivers/vfio/pci/vfio_pci_config.c) beyond what the oracle
// replay shows line by line: which capabilities vfio_config_init hides and how the chains are
// relinked, INTx disable following the virtual bit, the INTx pin hidden, BAR restore after a
// backdoor reset, an FLR requested through DEVCTL, PM state changes with needs_pm_restore, and
// properties over random read/write sequences. "oracle" marks values seen on the real kernel.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Host, Process } from '../src/api/index.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { VfioPciCoreDevice } from '../src/drivers/vfio_pci_core.js';
import { E1000E, EDU, NVME, TESTDEV, boot, names, call, openViaCdev, proc, yamlHost } from './helpers.js';

const CFG = 7n << 40n;
const BAR = (i: number) => BigInt(i) << 40n;

/** pread/pwrite helpers on a device fd (little-endian values) */
function io(p: Process, dev: number) {
  const buf = p.mem.alloc(8192);
  const rd = (region: bigint, off: number, n: number): number | string => {
    const r = p.pread(dev, buf, n, region + BigInt(off));
    if (r < 0) return p.errnoName;
    assert.equal(r, n, 'no short read here');
    let v = 0;
    const b = p.mem.read(buf, n);
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i]!;
    return v;
  };
  const wr = (region: bigint, off: number, n: number, v: number): number | string => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(v / 256 ** i) & 0xff;
    p.mem.write(buf, b);
    const r = p.pwrite(dev, buf, n, region + BigInt(off));
    return r < 0 ? p.errnoName : r;
  };
  const bytes = (region: bigint, off: number, n: number): number[] | string => {
    const r = p.pread(dev, buf, n, region + BigInt(off));
    return r < 0 ? p.errnoName : [...p.mem.read(buf, r)];
  };
  return {
    cfg: (off: number, n: number) => rd(CFG, off, n),
    cfgw: (off: number, n: number, v: number) => wr(CFG, off, n, v),
    bar: (i: number, off: number, n: number) => rd(BAR(i), off, n),
    barw: (i: number, off: number, n: number, v: number) => wr(BAR(i), off, n, v),
    bytes,
  };
}

const core = (h: Host, bdf: string) => pciGetDevice(h.kernel, bdf)!.drvdata as VfioPciCoreDevice;
const pdevOf = (h: Host, bdf: string) => pciGetDevice(h.kernel, bdf)!;

test('vfio config: hidden capabilities are unlinked; a hidden first extended capability stays as an anchor with its ID cleared', () => {
  // PM, a debug-port capability (ID 0x0a: vfio's length 0, hidden), MSI; extended: PASID (0x1b,
  // length 0: hidden, first in the chain), AER, DPC (0x1d: hidden, not first), DSN
  const h = boot(
    yamlHost(`  - bdf: "0000:01:00.0"
    id: "1af4:1041"
    class: 0x020000
    pcie: true
    iommu_group: 6
    driver: vfio-pci
    reset: [flr]
    bars: [ { size: 0x4000 } ]
    caps: [ { id: pm, at: 0x40 }, { id: raw, cap: 0x0a, at: 0x48, length: 8 }, { id: msi, at: 0x50, vectors: 4, addr64: false }, { id: pcie, at: 0x60, flr: true } ]
    ext_caps: [ { id: raw, cap: 0x1b, at: 0x100, length: 8 }, { id: aer, at: 0x110 }, { id: raw, cap: 0x1d, at: 0x160, length: 8 }, { id: dsn, at: 0x180, serial: "0x1122334455667788" } ]
`),
  );
  const p = proc(h);
  const { dev } = openViaCdev(p, { index: 0 });
  const c = io(p, dev);
  // the chain as vfio shows it: 0x40 (PM) -> 0x50 (MSI) -> 0x60 (PCIe) -> end
  assert.deepEqual([c.cfg(0x34, 1), c.cfg(0x40, 2), c.cfg(0x50, 2), c.cfg(0x60, 2)], [0x40, 0x5001, 0x6005, 0x0010]);
  // the hidden capability's bytes are unassigned: raw reads of the hardware (ID 0x0a, next 0x50)
  assert.deepEqual(c.cfg(0x48, 2), 0x500a);
  // MSI with 4 vectors, 32-bit: vfio_msi_config_read's msi_qmax fixup lands on the capability's
  // first word (vconfig[start], not start + PCI_MSI_FLAGS), whose ID byte is read from the
  // hardware: the user sees the function's Multiple Message Capable (4 vectors)
  assert.equal(c.cfg(0x52, 2), 0x0004);
  assert.equal(c.cfg(0x50, 2), 0x6005);
  // extended: 0x100 keeps its next pointer (0x110) with ID and version cleared; AER skips DPC
  assert.equal(c.cfg(0x100, 4), 0x110 << 20);
  assert.equal(c.cfg(0x110, 4), ((0x180 << 20) | (2 << 16) | 0x0001) >>> 0);
  assert.equal(c.cfg(0x180, 4), (1 << 16) | 0x0003);
  assert.deepEqual([c.cfg(0x184, 4), c.cfg(0x188, 4)], [0x55667788, 0x11223344]);
  // the hidden DPC's bytes: raw hardware (its real header)
  assert.equal(c.cfg(0x160, 4), ((0x180 << 20) | (1 << 16) | 0x1d) >>> 0);
  // the anchor is read-only and virtual: a write changes nothing
  assert.equal(c.cfgw(0x100, 4, 0xffffffff), 4);
  assert.equal(c.cfg(0x100, 4), 0x110 << 20);
});

test('vfio config: with every capability hidden the status bit is cleared (virtually only)', () => {
  const h = boot(
    yamlHost(`  - { bdf: "0000:01:00.0", id: "1af4:1041", class: 0x020000, iommu_group: 6, driver: vfio-pci, bars: [ { size: 0x1000 } ], caps: [ { id: raw, cap: 0x0a, at: 0x40, length: 4 } ] }
`),
  );
  const p = proc(h);
  const { dev } = openViaCdev(p, { index: 0 });
  const c = io(p, dev);
  assert.equal((c.cfg(0x06, 2) as number) & 0x10, 0);
  assert.equal(pdevOf(h, '0000:01:00.0').config.read(0x06, 2) & 0x10, 0x10);
  // the first capability was hidden through `prev` = PCI_CAPABILITY_LIST: the pointer reads 0
  assert.equal(c.cfg(0x34, 1), 0x00);
  assert.equal(pdevOf(h, '0000:01:00.0').config.read(0x34, 1), 0x40);
});

test('vfio config: INTx disable is virtual; the physical bit follows it while INTx is not in use (PCI 2.3 masking)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, EDU);
  const c = io(p, dev);
  const phys = () => pdevOf(h, EDU.bdf).config.read(0x04, 2);
  assert.equal(phys() & 0x400, 0);
  assert.equal(c.cfgw(0x04, 2, 0x0407), 2);
  assert.equal(c.cfg(0x04, 2), 0x0407); // oracle: 0x400 reads back (cw 0x4 2 0x400)
  assert.equal(phys(), 0x0407);
  assert.equal(core(h, EDU.bdf).virqDisabled, true);
  assert.equal(c.cfgw(0x05, 1, 0x00), 1, 'a byte write of the upper half counts too');
  assert.equal(phys() & 0x400, 0);
  assert.equal(core(h, EDU.bdf).virqDisabled, false);
  // close: vfio_pci_core_disable clears virq_disabled; the device is left without bus mastering
  c.cfgw(0x04, 2, 0x0407);
  p.close(dev);
  assert.equal(core(h, EDU.bdf).virqDisabled, false);
  assert.equal(phys() & 0x4, 0, 'bus master cleared at close');
});

test('vfio config: the INTx pin reads 0 for a function without a pin and for the nointx quirk (Intel X550)', () => {
  const h = boot();
  const p = proc(h);
  assert.equal(io(p, openViaCdev(p, TESTDEV).dev).cfg(0x3d, 1), 0); // oracle (testdev has no pin)
  assert.equal(io(p, openViaCdev(p, E1000E).dev).cfg(0x3d, 1), 1); // oracle
  const h2 = boot(
    yamlHost(`  - { bdf: "0000:01:00.0", id: "8086:1563", class: 0x020000, pcie: true, iommu_group: 6, driver: vfio-pci, bars: [ { size: 0x4000 } ] }
`),
  );
  const p2 = proc(h2);
  const r = call(p2, () => openViaCdev(p2, { index: 0 }).dev);
  assert.ok(names(r.trace).includes('printk'));
  const c = io(p2, r.ret);
  assert.equal(c.cfg(0x3d, 1), 0);
  assert.equal(pdevOf(h2, '0000:01:00.0').config.read(0x3d, 1), 1, 'the function does have a pin');
  assert.equal(pdevOf(h2, '0000:01:00.0').config.read(0x04, 2) & 0x400, 0x400, 'pci_intx(pdev, 0) at open');
});

test('vfio config: a BAR lost behind vfio\'s back is restored when the user touches COMMAND (vfio_bar_restore)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, EDU);
  const c = io(p, dev);
  const pd = pdevOf(h, EDU.bdf);
  const bar0 = pd.config.read(0x10, 4);
  pd.config.set(0x10, 4, 0); // a backdoor reset cleared the BAR
  const r = call(p, () => c.cfgw(0x04, 2, 0x0103) as number);
  assert.equal(r.ret, 2);
  assert.equal(pd.config.read(0x10, 4), bar0);
  assert.ok(r.trace.some((e) => e.name === 'printk' && /restoring BARs/.test(String(e.msg))));
});

test('vfio config: DEVCTL initiate-FLR on a function with FLR resets it (BARs zapped around pci_try_reset_function); without FLR it only reads 0', () => {
  const h = boot();
  const p = proc(h);
  const n = io(p, openViaCdev(p, NVME).dev);
  const nvme = pdevOf(h, NVME.bdf);
  assert.equal(n.barw(0, 0x100, 4, 0xdeadbeef), 4);
  assert.equal(n.bar(0, 0x100, 4), 0xdeadbeef);
  const resets = nvme.resets.function;
  const zaps = core(h, NVME.bdf).zapCount;
  assert.equal(n.cfgw(0x88, 2, 0x8000), 2);
  assert.equal(n.cfg(0x88, 2), 0); // oracle: cw nvme 0x88 2 0x8000 -> 0x0
  assert.equal(nvme.resets.function, resets + 1);
  assert.equal(core(h, NVME.bdf).zapCount, zaps + 1);
  assert.equal(n.bar(0, 0x100, 4), 0, 'the function reset cleared the BAR');
  // e1000e has no FLR capability: the bit is dropped, nothing is reset
  const e = io(p, openViaCdev(p, E1000E).dev);
  const e1000e = pdevOf(h, E1000E.bdf);
  e.barw(0, 0x100, 4, 0x12345678);
  const er = e1000e.resets.function;
  assert.equal(e.cfgw(0xe8, 2, 0x8000), 2);
  assert.equal(e.cfg(0xe8, 2), 0); // oracle
  assert.equal(e1000e.resets.function, er);
  assert.equal(e.bar(0, 0x100, 4), 0x12345678);
});

test('vfio config: PM state writes — D3hot makes memory BARs EIO and mappings fault; D0 soft-resets a function without No_Soft_Reset and restores its state', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  const e = io(p, dev);
  const pd = pdevOf(h, E1000E.bdf);
  assert.equal(core(h, E1000E.bdf).needsPmRestore, true);
  e.cfgw(0x0c, 1, 0x10);
  e.barw(0, 0x40, 4, 0xcafe);
  const m = p.mmap(4096, 1, 1, dev, 0);
  assert.ok(m > 0);
  assert.equal(e.cfgw(0xcc, 2, 0x0003), 2);
  assert.equal(e.cfg(0xcc, 2), 0x0003); // oracle
  assert.equal(pd.currentState, 3);
  assert.equal(e.bar(0, 0, 4), 'EIO'); // oracle
  assert.equal(e.bar(2, 0, 4), 0xffffffff, 'I/O BARs are not checked by vfio; a D3hot function does not answer');
  assert.throws(() => p.mem.read(m, 4), /SIGBUS/); // oracle: touch bar0-d3 = SIGBUS
  assert.equal(e.cfg(0x00, 4), 0x10d38086, 'config space still answers in D3hot');
  assert.equal(e.cfgw(0xcc, 2, 0x0000), 2);
  assert.equal(pd.currentState, 0);
  assert.equal(e.cfg(0x0c, 1), 0x10, 'pm_save restored the state lost by the soft reset');
  assert.equal(e.bar(0, 0x40, 4), 0, 'the function itself was reset');
  assert.deepEqual([...p.mem.read(m, 4)], [0, 0, 0, 0]);
  // D1 is not supported (PMC 0x0022): the request changes nothing
  assert.equal(e.cfgw(0xcc, 2, 0x0001), 2);
  assert.equal(pd.currentState, 0);
  // nvme has No_Soft_Reset: no state to save, no reset on D3hot->D0
  const n = io(p, openViaCdev(p, NVME).dev);
  assert.equal(core(h, NVME.bdf).needsPmRestore, false);
  n.barw(0, 0x40, 4, 0xbeef);
  n.cfgw(0x64, 2, 3);
  n.cfgw(0x64, 2, 0);
  assert.equal(n.bar(0, 0x40, 4), 0xbeef);
});

test('vfio config: COMMAND bus master is cleared at open and at close, kept by VFIO_DEVICE_RESET (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, NVME);
  const c = io(p, dev);
  assert.equal(c.cfg(0x04, 2), 0x0103); // oracle: dump open
  c.cfgw(0x04, 2, 0x0107);
  assert.equal(pdevOf(h, NVME.bdf).config.read(0x04, 2), 0x0107);
  p.close(dev);
  assert.equal(pdevOf(h, NVME.bdf).config.read(0x04, 2) & 0x4, 0);
  const d2 = openViaCdev(p, NVME).dev;
  assert.equal(io(p, d2).cfg(0x04, 2), 0x0103); // oracle: dump reopen
});

test('vfio config: reads are the same whatever the chunking, writes to read-only registers change nothing (property)', () => {
  const h = boot();
  const p = proc(h);
  const devs = [E1000E, NVME, EDU, TESTDEV].map((d) => ({ d, dev: openViaCdev(p, d).dev, size: d === EDU || d === TESTDEV ? 256 : 4096 }));
  const buf = p.mem.alloc(8192);
  // registers outside BARs and the power state, so that a random write cannot make the function
  // vanish or reset it; ID/class/header type/capability pointer must never change
  const ro = [0x00, 0x02, 0x08, 0x0a, 0x0e, 0x34];
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.record({ off: fc.integer({ min: 0, max: 0xff }), n: fc.constantFrom(1, 2, 3, 4, 8), v: fc.integer({ min: 0, max: 0xffffffff }) }), { maxLength: 12 }),
      fc.integer({ min: 0, max: 4095 }),
      fc.integer({ min: 1, max: 64 }),
      (which, writes, at, len) => {
        const { d, dev, size } = devs[which]!;
        const c = io(p, dev);
        const before = ro.map((o) => c.cfg(o, 2));
        for (const w of writes) {
          // leave COMMAND's decode bits, the PM control register and DEVCTL alone
          if (w.off < 0x08 || w.off + w.n > 0x100 || (w.off >= 0x40 && d !== EDU && d !== TESTDEV && w.off < 0xf0)) continue;
          const r = c.cfgw(w.off, w.n, w.v);
          assert.equal(r, w.n, `write ${w.n} at 0x${w.off.toString(16)}`);
        }
        assert.deepEqual(ro.map((o) => c.cfg(o, 2)), before);
        const start = at % size;
        const n = Math.min(len, size - start);
        const whole = p.pread(dev, buf, n, CFG + BigInt(start));
        assert.equal(whole, n);
        const a = [...p.mem.read(buf, n)];
        const b: number[] = [];
        for (let i = 0; i < n; i++) {
          assert.equal(p.pread(dev, buf + 4096, 1, CFG + BigInt(start + i)), 1);
          b.push(p.mem.read(buf + 4096, 1)[0]!);
        }
        assert.deepEqual(a, b);
        // across the end: EFAULT and nothing copied (no short read)
        p.mem.write(buf, new Uint8Array(8).fill(0xee));
        assert.equal(p.pread(dev, buf, 8, CFG + BigInt(size - (start % 8))), -1);
        assert.equal(p.errnoName, 'EFAULT');
        assert.deepEqual([...p.mem.read(buf, 8)], new Array(8).fill(0xee));
      },
    ),
    { numRuns: 60 },
  );
});

test('vfio config: BAR sizing on the virtual BARs, for random values (BAR & ~(size-1) | type bits; oracle for all ones)', () => {
  const h = boot();
  const p = proc(h);
  const e = io(p, openViaCdev(p, E1000E).dev);
  const n = io(p, openViaCdev(p, NVME).dev);
  const phys = pdevOf(h, E1000E.bdf).config.read(0x10, 4);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
      e.cfgw(0x10, 4, v);
      assert.equal(e.cfg(0x10, 4), (v & 0xfffe0000) >>> 0); // 128 KiB memory BAR
      e.cfgw(0x18, 4, v);
      assert.equal(e.cfg(0x18, 4), ((v & 0xffffffe0) | 1) >>> 0); // 32-byte I/O BAR
      e.cfgw(0x30, 4, v);
      assert.equal(e.cfg(0x30, 4), (v & 0xfffc0001) >>> 0); // 256 KiB ROM with its enable bit
      n.cfgw(0x10, 4, v);
      n.cfgw(0x14, 4, v);
      assert.deepEqual([n.cfg(0x10, 4), n.cfg(0x14, 4)], [((v & 0xffffc000) | 4) >>> 0, v >>> 0]); // 64-bit
    }),
    { numRuns: 100 },
  );
  assert.equal(pdevOf(h, E1000E.bdf).config.read(0x10, 4), phys, 'the hardware BAR never changes');
});

test('sysfs: vendor, device, class agree with config space and end in a newline; config serves 64 bytes unprivileged, all of it to CAP_SYS_ADMIN (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const nobody = new Process(h, { name: 'nobody', uid: 65534, gid: 65534, caps: [] });
  for (const d of h.devices()) {
    const base = `/sys/bus/pci/devices/${d.bdf}`;
    const pd = pdevOf(h, d.bdf);
    const hex = (v: number, w: number) => `0x${v.toString(16).padStart(w, '0')}\n`;
    assert.equal(p.readFile(`${base}/vendor`), hex(pd.config.read(0, 2), 4), d.bdf);
    assert.equal(p.readFile(`${base}/device`), hex(pd.config.read(2, 2), 4), d.bdf);
    assert.equal(p.readFile(`${base}/class`), hex(pd.config.read(8, 4) >>> 8, 6), d.bdf);
    const st = p.stat(`${base}/config`)!;
    assert.deepEqual([st.size, st.mode & 0o7777], [pd.cfgSize, 0o644]); // oracle: st_size=4096/256 mode=0644
    const fd = p.open(`${base}/config`, 0);
    const buf = p.mem.alloc(8192);
    assert.equal(p.read(fd, buf, 8192), pd.cfgSize); // oracle
    assert.deepEqual([...p.mem.read(buf, pd.cfgSize)], [...pd.config.data]);
    const u = nobody.open(`${base}/config`, 0);
    const ub = nobody.mem.alloc(8192);
    assert.deepEqual([nobody.read(u, ub, 8192), nobody.pread(u, ub, 16, 60), nobody.pread(u, ub, 16, 64)], [64, 4, 0]); // oracle
    nobody.close(u);
    p.close(fd);
  }
});
