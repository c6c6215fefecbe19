// vfio-pci interrupts (issue 4, item 3): GET_IRQ_INFO, SET_IRQS, eventfd triggers, INTx masking,
// MSI/MSI-X, and the physical side — host IRQs, MSI messages through the interrupt-remapping
// table, the MSI-X table and PBA, device models raising interrupts. "oracle" marks values observed
// on the real kernel (shared/oracle, default topology): tools/oracle/irqs.c printed
// test/fixtures/oracle-irqs.out there, and the replays below print the same lines through the
// model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import type { Host, Process } from '../src/api/index.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { pciRaiseMsi, pciRaiseMsix, pciMsiDescs } from '../src/drivers/pci/msi.js';
import { irqToDesc, localIrqRestore, localIrqSave, pciDevIrq, pciSetIntx } from '../src/drivers/pci/irq.js';
import { pciReadConfigWord, pciWriteConfigWord } from '../src/drivers/pci/config_space.js';
import { vfioPciCoreAerErrDetected, vfioPciIrqCtxs } from '../src/drivers/vfio_pci_intrs.js';
import { KGen, Task } from '../src/kernel/sched.js';
import { Completion, complete, mutexLock, mutexUnlock, waitForCompletion } from '../src/kernel/sync.js';
import { toCore } from '../src/drivers/vfio_pci_core.js';
import { vfioPciParams } from '../src/drivers/vfio_pci.js';
import { type1Params } from '../src/vfio/vfio_iommu_type1.js';
import { E1000E, EDU, NVME, TESTDEV, U, argsOf, boot, cdevPath, eventsSince, mark, openViaCdev, openViaContainer, proc, yamlHost } from './helpers.js';
import { IrqReplay, oracleSection } from './irq_replay.js';
import { IoWidth, PciHw } from '../src/drivers/pci/hw/hw.js';
import { pciHwRegister } from '../src/drivers/pci/hw/models.js';
import type { Kernel } from '../src/kernel/kernel.js';
import type { PciDev } from '../src/drivers/pci/pci.js';

const ORACLE = readFileSync(new URL('../../test/fixtures/oracle-irqs.out', import.meta.url), 'utf8');
const NONE = U.VFIO_IRQ_SET_DATA_NONE;
const BOOL = U.VFIO_IRQ_SET_DATA_BOOL;
const EFD = U.VFIO_IRQ_SET_DATA_EVENTFD;
const TRIG = U.VFIO_IRQ_SET_ACTION_TRIGGER;
const MASK = U.VFIO_IRQ_SET_ACTION_MASK;
const UNMASK = U.VFIO_IRQ_SET_ACTION_UNMASK;
const INTX = 0;
const MSI = 1;
const MSIX = 2;
const REQ = 4;

// ---- the oracle program, replayed ------------------------------------------------------------------

for (const [name, d, extra] of [
  ['e1000e', E1000E, undefined],
  ['nvme', NVME, undefined],
  ['edu', EDU, 'edu'],
  ['testdev', TESTDEV, undefined],
] as const) {
  test(`irqs: ${name} — tools/oracle/irqs.c prints what it printed on the real kernel, line for line (oracle)`, () => {
    const h = boot();
    const r = new IrqReplay(h, proc(h), d.bdf);
    const got = r.run(name, cdevPath(d), extra);
    const want = oracleSection(ORACLE, name, '-- e1000e device-raised MSI-X');
    assert.ok(want.length > 90, 'the fixture has the section');
    assert.deepEqual(got, want);
  });
}

test('irqs: e1000e — a function-raised MSI-X vector that is masked is pending in the PBA, sent when request_irq unmasks it, also after free_irq and for a dynamically allocated vector (oracle)', () => {
  const h = boot();
  const pdev = pciGetDevice(h.kernel, E1000E.bdf)!;
  const r = new IrqReplay(h, proc(h), E1000E.bdf);
  const got = r.run('e1000e', cdevPath(E1000E), (v) => void pciRaiseMsix(h.kernel, pdev, v));
  // the oracle drove the e1000e's IVAR/IMS/ICS registers where the model drives the output
  const want = oracleSection(ORACLE, 'e1000e', undefined, /^(IVAR|IMS|ICS|ICR)/);
  assert.deepEqual(got, want);
});

// ---- focused rules -------------------------------------------------------------------------------------

function setIrqs(p: Process, dev: number, flags: number, index: number, start: number, count: number, data: number[] = [], argsz?: number): number {
  const size = flags & EFD ? 4 : flags & BOOL ? 1 : 0;
  const b = new Uint8Array(20 + Math.max(size * data.length, 0));
  const dv = new DataView(b.buffer);
  dv.setUint32(0, argsz ?? b.length, true);
  dv.setUint32(4, flags, true);
  dv.setUint32(8, index, true);
  dv.setUint32(12, start, true);
  dv.setUint32(16, count, true);
  data.forEach((v, i) => (size === 4 ? dv.setInt32(20 + 4 * i, v, true) : dv.setUint8(20 + i, v)));
  const a = p.mem.alloc(b.length);
  p.mem.write(a, b);
  return p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, a);
}

const rc = (p: Process, r: number) => (r < 0 ? p.errnoName : r);
const count = (p: Process, fd: number) => p.eventfdCtx(fd)!.count;

function irqInfo(p: Process, dev: number, index: number): { flags: number; count: number } | string {
  const a = p.mem.struct(U.vfio_irq_info, { argsz: 16, index });
  if (p.ioctl(dev, U.VFIO_DEVICE_GET_IRQ_INFO, a)) return p.errnoName;
  const o = p.mem.readStruct(U.vfio_irq_info, a);
  return { flags: o.flags as number, count: o.count as number };
}

test('irqs: GET_IRQ_INFO flags and counts per device — INTx 0 without a pin, MSI from Multiple Message Capable, MSI-X from the table size without NORESIZE (dynamic MSI-X), ERR only for PCIe (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const rows: Record<string, unknown[]> = {};
  for (const [n, d] of [['e1000e', E1000E], ['nvme', NVME], ['edu', EDU], ['testdev', TESTDEV]] as const) {
    const { dev } = openViaCdev(p, d);
    rows[n] = [0, 1, 2, 3, 4, 5].map((i) => irqInfo(p, dev, i));
  }
  const x = (flags: number, count: number) => ({ flags, count });
  assert.deepEqual(rows, {
    e1000e: [x(7, 1), x(9, 1), x(1, 5), x(9, 1), x(9, 1), 'EINVAL'], // oracle
    nvme: [x(7, 1), x(9, 0), x(1, 65), x(9, 1), x(9, 1), 'EINVAL'], // oracle
    edu: [x(7, 1), x(9, 1), x(9, 0), 'EINVAL', x(9, 1), 'EINVAL'], // oracle
    testdev: [x(7, 0), x(9, 0), x(9, 0), 'EINVAL', x(9, 1), 'EINVAL'], // oracle
  });
  // the INTx IRQs (q35 GSIs of the swizzled pins) as sysfs shows them
  const irqs = [E1000E, NVME, EDU, TESTDEV].map((d) => p.readFile(`/sys/bus/pci/devices/${d.bdf}/irq`));
  assert.deepEqual(irqs, ['22\n', '23\n', '20\n', '0\n']); // oracle
});

test('irqs: SET_IRQS validation comes first — a range error is EINVAL even for an action the index does not have (ENOTTY only once the range is valid) (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const e = openViaCdev(p, E1000E).dev;
  const t = openViaCdev(p, TESTDEV).dev;
  // ERR MASK: ENOTTY on PCIe e1000e (count 1), EINVAL on conventional testdev (count 0)
  assert.equal(rc(p, setIrqs(p, e, NONE | MASK, 3, 0, 1)), 'ENOTTY'); // oracle
  assert.equal(rc(p, setIrqs(p, t, NONE | MASK, 3, 0, 1)), 'EINVAL'); // oracle
  // MSI MASK: ENOTTY where MSI exists, EINVAL where it does not
  assert.equal(rc(p, setIrqs(p, e, NONE | MASK, MSI, 0, 1)), 'ENOTTY'); // oracle
  assert.equal(rc(p, setIrqs(p, t, NONE | MASK, MSI, 0, 1)), 'EINVAL'); // oracle
  // two data types, no data type, a flag outside both masks: EINVAL before the action is looked at
  assert.equal(rc(p, setIrqs(p, e, NONE | BOOL | MASK | UNMASK, REQ, 0, 1, [1])), 'EINVAL');
  assert.equal(rc(p, setIrqs(p, e, MASK, REQ, 0, 1)), 'EINVAL');
  assert.equal(rc(p, setIrqs(p, e, NONE | TRIG | 0x40, REQ, 0, 1)), 'EINVAL'); // oracle
  // no action bit, or two: ENOTTY
  assert.equal(rc(p, setIrqs(p, e, NONE, REQ, 0, 1)), 'ENOTTY'); // oracle
  assert.equal(rc(p, setIrqs(p, e, NONE | MASK | TRIG, REQ, 0, 1)), 'ENOTTY'); // oracle
  // start + count wrapping: count >= U32_MAX - start
  assert.equal(rc(p, setIrqs(p, e, NONE | TRIG, REQ, 1, 0xfffffffe)), 'EINVAL'); // oracle
  // the data must fit argsz; it is copied before the action is looked at
  assert.equal(rc(p, setIrqs(p, e, EFD | TRIG, MSIX, 0, 2, [], 27)), 'EINVAL'); // oracle
});

test('irqs: MSI-X eventfds receive software triggers (DATA_NONE, DATA_BOOL) and nothing after the trigger is removed or MSI-X disabled (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  const e = [0, 1, 2, 3, 4].map(() => p.eventfd(0, 0o4000));
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 0, 5, e), 0);
  assert.equal(setIrqs(p, dev, NONE | TRIG, MSIX, 0, 5), 0);
  assert.equal(setIrqs(p, dev, BOOL | TRIG, MSIX, 0, 5, [1, 0, 1, 0, 1]), 0);
  assert.deepEqual(e.map((x) => count(p, x)), [2n, 1n, 2n, 1n, 2n]);
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 1, 1, [-1]), 0);
  assert.equal(setIrqs(p, dev, NONE | TRIG, MSIX, 0, 5), 0);
  assert.deepEqual(e.map((x) => count(p, x)), [3n, 1n, 3n, 2n, 3n]);
  assert.equal(setIrqs(p, dev, NONE | TRIG, MSIX, 0, 0), 0); // disable
  assert.equal(rc(p, setIrqs(p, dev, NONE | TRIG, MSIX, 0, 1)), 'EINVAL'); // oracle: not enabled
  assert.deepEqual(e.map((x) => count(p, x)), [3n, 1n, 3n, 2n, 3n]);
  // the vectors' host IRQs are gone with the descriptors
  assert.deepEqual(pciMsiDescs(h.kernel, pciGetDevice(h.kernel, E1000E.bdf)!), []);
});

test('irqs: enabling with count 0 asks the PCI core for 0 vectors — ERANGE; an EVENTFD array with a bad fd unwinds the vectors it touched (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  assert.equal(rc(p, setIrqs(p, dev, EFD | TRIG, MSIX, 0, 0)), 'ERANGE'); // oracle
  assert.equal(rc(p, setIrqs(p, dev, EFD | TRIG, MSI, 0, 0)), 'ERANGE'); // oracle
  const e = [p.eventfd(0, 0o4000), p.eventfd(0, 0o4000), p.eventfd(0, 0o4000)];
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 0, 3, e), 0);
  const f0 = p.eventfd(0, 0o4000);
  assert.equal(rc(p, setIrqs(p, dev, EFD | TRIG, MSIX, 0, 3, [f0, dev, f0])), 'EINVAL'); // oracle
  assert.deepEqual([...vfioPciIrqCtxs(toCore(h.vfioDevice(E1000E.bdf)!)).keys()], [2]); // vectors 0, 1 unwound
  assert.equal(setIrqs(p, dev, NONE | TRIG, MSIX, 0, 3), 0);
  assert.deepEqual([...e.map((x) => count(p, x)), count(p, f0)], [0n, 0n, 1n, 0n]); // oracle
});

test('irqs: the same eventfd on two vectors — both signal it; the second irq-bypass producer registration fails with EBUSY (logged) (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, NVME);
  const f = p.eventfd(0, 0o4000);
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 0, 2, [f, f]), 0);
  assert.equal(setIrqs(p, dev, NONE | TRIG, MSIX, 0, 2), 0);
  assert.equal(count(p, f), 2n); // oracle
  const logs = h.kernel.trace.events().filter((e) => e.name === 'printk' && /irq bypass producer/.test(e.msg ?? ''));
  assert.equal(logs.length, 1);
  assert.match(logs[0]!.msg!, /^0000:02:00\.0: irq bypass producer \(eventfd .*\) registration fails: -16$/); // oracle
});

test('irqs: INTx — the handler masks with DisINTx and signals once; UNMASK with the line still asserted re-signals and stays masked; after the acknowledge it unmasks (oracle, edu)', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const e = p.eventfd(0, 0o4000);
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  const status = () => pciReadConfigWord(pdev, 6) & 8;
  const disint = () => pciReadConfigWord(pdev, 4) & 0x400;
  pciSetIntx(k, pdev, true);
  assert.deepEqual([count(p, e), status(), disint()], [1n, 8, 0x400]); // oracle: phys 05 .. 18 ..
  pciSetIntx(k, pdev, false);
  pciSetIntx(k, pdev, true);
  assert.equal(count(p, e), 1n); // masked: DisINTx holds the line low
  assert.equal(setIrqs(p, dev, NONE | UNMASK, INTX, 0, 1), 0);
  assert.deepEqual([count(p, e), disint()], [2n, 0x400]); // oracle: pending, re-sent, still masked
  pciSetIntx(k, pdev, false);
  assert.equal(setIrqs(p, dev, NONE | UNMASK, INTX, 0, 1), 0);
  assert.deepEqual([count(p, e), disint(), status()], [2n, 0, 0]);
  // the host IRQ is the q35 GSI of the function's pin, requested shared
  assert.equal(pciDevIrq(k, pdev), 20); // oracle: /sys/bus/pci/devices/0000:03:00.0/irq
  assert.equal(p.readFile(`/sys/bus/pci/devices/${EDU.bdf}/irq`), '20\n');
  assert.deepEqual(irqToDesc(k, 20)!.actions.map((a) => a.name), ['vfio-intx(0000:03:00.0)']);
});

test('irqs: the INTx unmask eventfd — a write unmasks (consuming the count), a second one is EBUSY, closing the eventfd removes it', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const e = p.eventfd(0, 0o4000);
  const u = p.eventfd(0, 0o4000);
  const u2 = p.eventfd(0, 0o4000);
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  assert.equal(setIrqs(p, dev, EFD | UNMASK, INTX, 0, 1, [u]), 0);
  assert.equal(rc(p, setIrqs(p, dev, EFD | UNMASK, INTX, 0, 1, [u2])), 'EBUSY'); // oracle
  pciSetIntx(k, pdev, true);
  pciSetIntx(k, pdev, false);
  assert.equal(count(p, e), 1n);
  p.writeBytes(u, new Uint8Array([3, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(count(p, u), 0n); // oracle: virqfd_wakeup read the counter
  assert.equal(pciReadConfigWord(pdev, 4) & 0x400, 0);
  pciSetIntx(k, pdev, true);
  assert.equal(count(p, e), 2n);
  // an unmask with the line asserted: re-sent through the virqfd's thread (oracle)
  p.writeBytes(u, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  assert.equal(count(p, e), 3n);
  // EPOLLHUP: the unmask eventfd's last close deactivates the virqfd; another can be installed
  p.close(u);
  assert.equal(setIrqs(p, dev, EFD | UNMASK, INTX, 0, 1, [u2]), 0);
});

test('irqs: virtual INTx disable (COMMAND.INTX_DISABLE in the config region) masks INTx and silences loopback triggers; clearing it with the line asserted re-sends (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const e = p.eventfd(0, 0o4000);
  const cfg = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
  const cmd = new DataView(p.readBytes(dev, 2, cfg + 4n)!.buffer).getUint16(0, true);
  const wr = (v: number) => p.writeBytes(dev, new Uint8Array([v & 0xff, v >> 8]), cfg + 4n);
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  assert.equal(wr(cmd | 0x400), 2);
  assert.equal(setIrqs(p, dev, NONE | TRIG, INTX, 0, 1), 0);
  pciSetIntx(k, pdev, true);
  assert.equal(count(p, e), 0n); // oracle
  assert.equal(wr(cmd & ~0x400), 2);
  assert.equal(count(p, e), 1n); // oracle
});

test('irqs: INTx asserted before vfio requests the IRQ is not delivered (the IOAPIC sees no edge); the next assertion is (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const e = p.eventfd(0, 0o4000);
  // the open left DisINTx clear: assert with nothing requested, then set DisINTx as vfio would
  pciSetIntx(k, pdev, true);
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  assert.equal(count(p, e), 0n); // oracle
  pciSetIntx(k, pdev, false);
  pciSetIntx(k, pdev, true);
  assert.equal(count(p, e), 1n); // oracle
});

test('irqs: MSI needs bus mastering — the edu model raising MSI with COMMAND.MASTER clear is lost; with it set every raise reaches the eventfd (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const e = p.eventfd(0, 0o4000);
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSI, 0, 1, [e]), 0);
  assert.equal(pciRaiseMsi(k, pdev, 0), 'no-bus-master');
  assert.equal(count(p, e), 0n); // oracle
  const cfg = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
  const cmd = new DataView(p.readBytes(dev, 2, cfg + 4n)!.buffer).getUint16(0, true);
  p.writeBytes(dev, new Uint8Array([(cmd | 6) & 0xff, (cmd | 6) >> 8]), cfg + 4n);
  // edu's raise-interrupt register (BAR0 + 0x60) raises MSI vector 0 through the API
  assert.equal(p.writeBytes(dev, new Uint8Array([1, 0, 0, 0]), 0x60n), 4);
  assert.equal(p.writeBytes(dev, new Uint8Array([2, 0, 0, 0]), 0x60n), 4);
  assert.equal(count(p, e), 2n); // oracle
  // the message: remappable format, IRTE 23 (0xfee002f8), data 0 — as the real kernel programmed it
  const msg = pciMsiDescs(k, pdev)[0]!.msg;
  assert.deepEqual(msg, { addressLo: 0xfee002f8, addressHi: 0, data: 0 }); // oracle: phys MSI cap
  assert.equal(pciDevIrq(k, pdev), pciMsiDescs(k, pdev)[0]!.irqs[0]!.irq); // dev->irq is the MSI IRQ
});

const MULTI_MSI = yamlHost(`  - bdf: "0000:01:00.0"
    name: mm
    id: "8086:10d3"
    class: 0x020000
    pcie: true
    iommu_group: 4
    driver: vfio-pci
    reset: [flr]
    bars: [ { size: 0x20000 } ]
    caps:
      - { id: msi, at: 0x50, vectors: 4, addr64: true, maskable: true }
      - { id: pcie, at: 0xa0, flr: true }
`);

test('irqs: multi-vector MSI (remapping) — one IRTE block, the vector in the data low bits, per-vector masking with pending bits the function sends on unmask', () => {
  const h = boot(MULTI_MSI);
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, '0000:01:00.0')!;
  const { dev } = openViaCdev(p, { index: 0 });
  assert.deepEqual(irqInfo(p, dev, MSI), { flags: 9, count: 4 });
  const e = [p.eventfd(0, 0), p.eventfd(0, 0), p.eventfd(0, 0)];
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSI, 0, 3, e), 0);
  const msi = pdev.msiCap!.at;
  // QSIZE = 2 (4 vectors for 3), the block is 4 IRTEs aligned: 24..27 (23 is taken at boot)
  assert.equal((pciReadConfigWord(pdev, msi + 2) >> 4) & 7, 2);
  assert.deepEqual(pciMsiDescs(k, pdev)[0]!.msg, { addressLo: 0xfee00318, addressHi: 0, data: 0 });
  p.writeBytes(dev, new Uint8Array([0x06, 0x00]), (BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n) + 4n);
  assert.deepEqual([0, 1, 2].map((v) => pciRaiseMsi(k, pdev, v)), ['sent', 'sent', 'sent']);
  assert.deepEqual(e.map((x) => count(p, x)), [1n, 1n, 1n]);
  // vector 3 exists in the block but has no IRQ: the remapping table has no present entry for it
  assert.equal(pciRaiseMsi(k, pdev, 3), 'remap-fault');
  // vfio's free_irq masks the vector (mask bit), the function keeps the message pending
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSI, 1, 1, [-1]), 0);
  assert.equal(pciRaiseMsi(k, pdev, 1), 'pending');
  const pend = () => pdev.config.read(msi + 20, 4);
  assert.equal(pend(), 2);
  // request_irq unmasks: the pending vector 1 goes out at once
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSI, 1, 1, [e[0]!]), 0);
  assert.equal(pend(), 0);
  assert.deepEqual(e.map((x) => count(p, x)), [2n, 1n, 1n]);
  // the virtual MSI capability shows the vectors the user enabled (msi_qmax)
  assert.equal(toCore(h.vfioDevice('0000:01:00.0')!).msiQmax, 2);
});

test('irqs: without interrupt remapping, more than one MSI vector cannot be had — SET_IRQS returns the positive count the PCI core could give; messages are in compatibility format', () => {
  const h = boot(MULTI_MSI.replace('name: t\n', 'name: t\niommu: { interrupt_remapping: false }\n'));
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, '0000:01:00.0')!;
  // no isolated MSI: type1 needs allow_unsafe_interrupts
  type1Params(k).allowUnsafeInterrupts = true;
  const { dev } = openViaContainer(p, { bdf: '0000:01:00.0', group: 4 });
  const e = [p.eventfd(0, 0), p.eventfd(0, 0)];
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSI, 0, 2, e), 1);
  assert.equal(toCore(h.vfioDevice('0000:01:00.0')!).irqType, 5); // nothing enabled
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSI, 0, 1, e), 0);
  const m = pciMsiDescs(k, pdev)[0]!.msg;
  assert.equal(m.addressLo, 0xfee00000);
  assert.ok(m.data >= 0x22 && m.data < 0xec);
  p.writeBytes(dev, new Uint8Array([0x06, 0x00]), (BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n) + 4n);
  assert.equal(pciRaiseMsi(k, pdev, 0), 'sent');
  assert.equal(count(p, e[0]!), 1n);
});

test('irqs: close_device disables what is enabled — MSI-X vectors freed and the capability off in the function, REQ/ERR eventfds dropped; the next open starts clean', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, E1000E.bdf)!;
  const { g, c, dev } = openViaContainer(p, E1000E);
  const e = [p.eventfd(0, 0), p.eventfd(0, 0)];
  const r = p.eventfd(0, 0);
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 0, 2, e), 0);
  assert.equal(setIrqs(p, dev, EFD | TRIG, REQ, 0, 1, [r]), 0);
  const core = toCore(h.vfioDevice(E1000E.bdf)!);
  assert.equal(core.irqType, MSIX);
  const before = pciMsiDescs(k, pdev).map((d) => d.irqs[0]!.irq);
  assert.equal(before.length, 2);
  p.close(dev);
  assert.deepEqual([core.irqType, core.reqTrigger, pciMsiDescs(k, pdev).length], [5, null, 0]);
  assert.equal(pciReadConfigWord(pdev, pdev.msixCap!.at + 2) & 0x8000, 0);
  for (const irq of before) assert.equal(irqToDesc(k, irq), null);
  const dev2 = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(E1000E.bdf));
  assert.equal(rc(p, setIrqs(p, dev2, NONE | TRIG, MSIX, 0, 1)), 'EINVAL');
  assert.equal(rc(p, setIrqs(p, dev2, NONE | TRIG, REQ, 0, 1)), 'EINVAL');
  void c;
});

test('irqs: nointxmask=1 — no PCI 2.3 masking: the handler disables the host IRQ, the unmask enables it again', () => {
  const h = boot();
  vfioPciParams(h.kernel).nointxmask = true;
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const core = toCore(h.vfioDevice(EDU.bdf)!);
  assert.equal(core.pci23, false);
  const e = p.eventfd(0, 0);
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  pciSetIntx(k, pdev, true);
  assert.equal(count(p, e), 1n);
  assert.equal(irqToDesc(k, 20)!.depth, 1); // disable_irq_nosync
  assert.equal(pciReadConfigWord(pdev, 4) & 0x400, 0); // DisINTx untouched
  pciSetIntx(k, pdev, false);
  assert.equal(setIrqs(p, dev, NONE | UNMASK, INTX, 0, 1), 0);
  assert.equal(irqToDesc(k, 20)!.depth, 0);
  pciSetIntx(k, pdev, true);
  assert.equal(count(p, e), 2n);
});

// ---- a property: random SET_IRQS sequences against a reference model ------------------------------

interface RefState {
  type: number; // 5 = none
  triggers: Map<number, number>; // vector -> eventfd index
  req: number | null;
}

type Op =
  | { k: 'efd'; index: number; start: number; fds: number[] }
  | { k: 'none'; index: number; start: number; count: number }
  | { k: 'bool'; index: number; start: number; bits: number[] };

function refApply(s: RefState, op: Op, nv: number[]): { ret: string | number; signals: number[] } {
  const signals: number[] = [];
  const count = op.k === 'efd' ? op.fds.length : op.k === 'bool' ? op.bits.length : op.count;
  const num = nv[op.index]!;
  if (op.start >= num || op.start + count > num) return { ret: 'EINVAL', signals };
  if (op.index === REQ) {
    if (op.k === 'none') {
      if (s.req === null) return { ret: 'EINVAL', signals };
      if (count) signals.push(s.req);
      else s.req = null;
      return { ret: 0, signals };
    }
    if (op.k === 'bool') {
      if (!count) return { ret: 'EINVAL', signals };
      if (op.bits[0] && s.req !== null) signals.push(s.req);
      return { ret: 0, signals };
    }
    if (!count) return { ret: 'EINVAL', signals };
    s.req = op.fds[0]! === -1 ? null : op.fds[0]!;
    return { ret: 0, signals };
  }
  const active = s.type === op.index;
  if (active && !count && op.k === 'none') {
    s.type = 5;
    s.triggers.clear();
    return { ret: 0, signals };
  }
  if (!(active || s.type === 5)) return { ret: 'EINVAL', signals };
  if (op.k === 'efd') {
    if (!active) {
      if (op.start + count === 0) return { ret: 'ERANGE', signals };
      s.type = op.index;
    }
    op.fds.forEach((fd, i) => {
      if (fd < 0) s.triggers.delete(op.start + i);
      else s.triggers.set(op.start + i, fd);
    });
    return { ret: 0, signals };
  }
  if (!active) return { ret: 'EINVAL', signals };
  for (let i = op.start; i < op.start + count; i++) {
    const t = s.triggers.get(i);
    if (t === undefined) continue;
    if (op.k === 'none' || op.bits[i - op.start]) signals.push(t);
  }
  return { ret: 0, signals };
}

test('irqs: property — random SET_IRQS sequences on MSI, MSI-X and REQ agree with a reference model of the enabled index, the vectors\' eventfds and every counter', () => {
  const opArb = (nv: number[]): fc.Arbitrary<Op> =>
    fc.constantFrom(MSI, MSIX, REQ).chain((index) => {
      const n = nv[index]!;
      const start = fc.integer({ min: 0, max: n });
      return fc.oneof(
        fc.record({ k: fc.constant('efd' as const), index: fc.constant(index), start, fds: fc.array(fc.integer({ min: -1, max: 3 }), { maxLength: 3 }) }),
        fc.record({ k: fc.constant('none' as const), index: fc.constant(index), start, count: fc.integer({ min: 0, max: 2 }) }),
        fc.record({ k: fc.constant('bool' as const), index: fc.constant(index), start, bits: fc.array(fc.integer({ min: 0, max: 1 }), { maxLength: 3 }) }),
      );
    });
  const nv = [1, 1, 5, 1, 1]; // e1000e
  fc.assert(
    fc.property(fc.array(opArb(nv), { maxLength: 25 }), (ops) => {
      const h: Host = boot();
      const p = proc(h);
      const { dev } = openViaCdev(p, E1000E);
      const efds = [0, 1, 2, 3].map(() => p.eventfd(0, 0));
      const ref: RefState = { type: 5, triggers: new Map(), req: null };
      const counts = [0n, 0n, 0n, 0n];
      for (const op of ops) {
        let r: number;
        if (op.k === 'efd') r = setIrqs(p, dev, EFD | TRIG, op.index, op.start, op.fds.length, op.fds.map((i) => (i < 0 ? -1 : efds[i]!)));
        else if (op.k === 'none') r = setIrqs(p, dev, NONE | TRIG, op.index, op.start, op.count);
        else r = setIrqs(p, dev, BOOL | TRIG, op.index, op.start, op.bits.length, op.bits);
        const want = refApply(ref, op, nv);
        assert.equal(rc(p, r), want.ret, JSON.stringify(op));
        for (const i of want.signals) counts[i]!++;
        assert.deepEqual(efds.map((x) => count(p, x)), counts, JSON.stringify(op));
        const core = toCore(h.vfioDevice(E1000E.bdf)!);
        assert.equal(core.irqType, ref.type);
        assert.deepEqual([...vfioPciIrqCtxs(core).keys()], [...ref.triggers.keys()].sort((a, b) => a - b));
      }
    }),
    { numRuns: 60 },
  );
});

test('irqs: an AER error on the function (vfio_pci_core_aer_err_detected) signals the ERR eventfd, also while igate is held (RCU); none registered, nothing happens', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  const core = toCore(h.vfioDevice(E1000E.bdf)!);
  const aer = () => h.kernel.runToCompletion(new Task(h.kernel, 'aer', vfioPciCoreAerErrDetected(core)));
  aer();
  const e = p.eventfd(0, 0);
  assert.equal(setIrqs(p, dev, EFD | TRIG, 3, 0, 1, [e]), 0);
  aer();
  aer();
  assert.equal(count(p, e), 2n);
  // the kernel reads err_trigger under RCU: an error is reported while a SET_IRQS holds igate
  const c = new Completion('hold igate');
  const holder = h.kernel.spawnKernelTask('holder', (function* (): KGen<void> {
    yield* mutexLock(core.igate);
    yield* waitForCompletion(c);
    yield* mutexUnlock(core.igate);
  })());
  const t = h.kernel.spawnKernelTask('aer', vfioPciCoreAerErrDetected(core));
  assert.deepEqual([t.state, count(p, e)], ['done', 3n]);
  h.kernel.spawnKernelTask('release', (function* (): KGen<void> {
    yield* complete(c);
  })());
  assert.equal(holder.state, 'done');
  assert.equal(setIrqs(p, dev, NONE | TRIG, 3, 0, 0), 0); // unregister
  aer();
  assert.equal(count(p, e), 3n);
});

test('irqs: interrupts wait while interrupts are disabled — one raised inside a handler (hard irq context) or under localIrqSave is delivered after, in order', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, E1000E.bdf)!;
  const { dev } = openViaCdev(p, E1000E);
  const e = [p.eventfd(0, 0), p.eventfd(0, 0)];
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 0, 2, e), 0);
  const cfg = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
  p.writeBytes(dev, new Uint8Array([0x06, 0x00]), cfg + 4n);
  const log: string[] = [];
  const a = p.eventfdCtx(e[0]!)!;
  const b = p.eventfdCtx(e[1]!)!;
  // whoever waits on vector 0's eventfd (a wake function, run inside vfio_msihandler) makes the
  // function raise vector 1: it is delivered once vector 0's handler has returned
  a.waiters.add(() => {
    log.push(`a=${a.count} b=${b.count}`);
    if (a.count === 1n) log.push(pciRaiseMsix(k, pdev, 1));
    log.push(`still b=${b.count}`);
  });
  b.waiters.add(() => log.push(`b=${b.count}`));
  assert.equal(pciRaiseMsix(k, pdev, 0), 'sent');
  assert.deepEqual(log, ['a=1 b=0', 'sent', 'still b=0', 'b=1']);
  localIrqSave(k);
  assert.equal(pciRaiseMsix(k, pdev, 1), 'sent');
  assert.equal(b.count, 1n);
  localIrqRestore(k);
  assert.equal(b.count, 2n);
});

// ---- a device model raising interrupts through the PciHw API ------------------------------------------

/**
 * A minimal register model (the shape an IOAT-like DMA engine has): BAR0 doorbells, MSI-X table at
 * BAR0 + 0x2000 and PBA at + 0x3000 (kept by the PCI layer, not by the model). Writing N to 0x00
 * raises MSI-X vector N, to 0x08 MSI vector N; 0x04 drives INTx (non-zero: asserted).
 */
class DoorbellHw extends PciHw {
  writes = 0;
  constructor(k: Kernel, pdev: PciDev) {
    super(k, pdev);
  }
  read(bar: number, off: number, size: IoWidth): bigint {
    if (bar === 0 && off === 0x10 && size === 4) return BigInt(this.writes);
    return (1n << BigInt(8 * size)) - 1n;
  }
  write(bar: number, off: number, size: IoWidth, value: bigint): void {
    if (bar !== 0 || size !== 4) return;
    this.writes++;
    if (off === 0x00) this.raiseMsix(Number(value));
    else if (off === 0x04) this.setIntx(value !== 0n);
    else if (off === 0x08) this.raiseMsi(Number(value));
  }
}
pciHwRegister(0x1234, 0xfeed, (k, d) => new DoorbellHw(k, d));

const BELL = { bdf: '0000:01:00.0', index: 0, group: 4 };
const BELL_HOST = yamlHost(`  - bdf: "0000:01:00.0"
    name: bell
    id: "1234:feed"
    class: 0x088000
    pcie: true
    iommu_group: 4
    driver: vfio-pci
    reset: [flr]
    bars: [ { size: 0x4000 } ]
    caps:
      - { id: pm, at: 0x40 }
      - { id: msix, at: 0x60, vectors: 4, table: { bar: 0, offset: 0x2000 }, pba: { bar: 0, offset: 0x3000 } }
      - { id: pcie, at: 0xa0, flr: true }
`);

const le32b = (v: number) => new Uint8Array(new Uint32Array([v >>> 0]).buffer);
const cfgOff = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;

test('irqs: a PciHw model raising MSI-X (raiseMsix) reaches the SET_IRQS eventfd — only with MSI-X enabled and bus mastering; masked vectors (entry or function mask) wait in the PBA the user reads through BAR0 and go out when unmasked', () => {
  const h = boot(BELL_HOST);
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, BELL.bdf)!;
  assert.ok(pdev.hw instanceof DoorbellHw);
  assert.ok(pdev.hw.irq, 'the interrupt layer wired the model at boot');
  const { dev } = openViaCdev(p, BELL);
  assert.deepEqual(irqInfo(p, dev, MSIX), { flags: U.VFIO_IRQ_INFO_EVENTFD, count: 4 }); // dynamic MSI-X: no NORESIZE
  const ring = (v: number) => assert.equal(p.writeBytes(dev, le32b(v), 0n), 4); // BAR0 + 0: the doorbell
  const pba = () => new DataView(p.readBytes(dev, 8, 0x3000n)!.buffer).getUint32(0, true);
  const results = (m: number) => argsOf(eventsSince(h, m), 'msix_raise').map((a) => a.result);
  const cmd = (v: number) => p.writeBytes(dev, new Uint8Array([v & 0xff, v >> 8]), cfgOff + 4n);
  const e = [0, 1, 2, 3].map(() => p.eventfd(0, 0o4000));
  const cnt = () => e.map((x) => count(p, x));

  let m = mark(h);
  ring(0); // MSI-X is not enabled in the capability yet
  assert.deepEqual(results(m), ['disabled']);
  assert.equal(pdev.hw.msixEnabled(), false);

  // vectors 0 and 1 with eventfds: the kernel enables MSI-X (and the model sees it)
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 0, 2, [e[0]!, e[1]!]), 0);
  assert.equal(pdev.hw.msixEnabled(), true);
  m = mark(h);
  ring(0); // COMMAND.MASTER is clear: the message write is lost
  assert.deepEqual([results(m), cnt()], [['no-bus-master'], [0n, 0n, 0n, 0n]]);
  assert.equal(cmd(0x0006), 2); // memory + bus master, through the config region
  m = mark(h);
  ring(0);
  ring(1);
  ring(1);
  assert.deepEqual([results(m), cnt()], [['sent', 'sent', 'sent'], [1n, 2n, 0n, 0n]]);

  // vector 3 has no IRQ yet: its entry is masked (msix_mask_all), the raise is pending in the PBA
  m = mark(h);
  ring(3);
  assert.deepEqual([results(m), cnt(), pba()], [['pending'], [1n, 2n, 0n, 0n], 0b1000]);
  // an eventfd for vector 3: dynamic allocation, request_irq unmasks, the pending message goes out
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 3, 1, [e[3]!]), 0);
  assert.deepEqual([cnt(), pba()], [[1n, 2n, 0n, 1n], 0]);

  // the function mask (MSI-X Function Mask, set by the host kernel): pending until cleared
  const flags = pdev.msixCap!.at + 2;
  pciWriteConfigWord(pdev, flags, pciReadConfigWord(pdev, flags) | 0x4000);
  m = mark(h);
  ring(0);
  assert.deepEqual([results(m), cnt(), pba()], [['pending'], [1n, 2n, 0n, 1n], 0b0001]);
  pciWriteConfigWord(pdev, flags, pciReadConfigWord(pdev, flags) & ~0x4000);
  assert.deepEqual([cnt(), pba()], [[2n, 2n, 0n, 1n], 0]);

  // vector 1's trigger removed: free_irq masks its entry, a raise waits (and is sent to e0 when
  // vector 1 gets e0)
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 1, 1, [-1]), 0);
  m = mark(h);
  ring(1);
  ring(7); // no such entry
  assert.deepEqual([results(m), cnt(), pba()], [['pending', 'invalid'], [2n, 2n, 0n, 1n], 0b0010]);
  // not a table entry, and no MSI capability at all: nothing is sent
  assert.deepEqual([pciRaiseMsix(k, pdev, 0.5), pciRaiseMsix(k, pdev, -1), pciRaiseMsi(k, pdev, 0)], ['invalid', 'invalid', 'invalid']);
  assert.deepEqual([cnt(), pba()], [[2n, 2n, 0n, 1n], 0b0010]);
  assert.equal(setIrqs(p, dev, EFD | TRIG, MSIX, 1, 1, [e[0]!]), 0);
  assert.deepEqual([cnt(), pba()], [[3n, 2n, 0n, 1n], 0]);

  // the MSI-X table is the PCI layer's: a vfio read of it is refused (excluded range: all ones)
  // while the kernel's view holds the programmed messages
  assert.deepEqual([...p.readBytes(dev, 4, 0x2000n)!], [0xff, 0xff, 0xff, 0xff]);
  assert.equal(pciMsiDescs(k, pdev).length, 3);

  // disabled (count 0): the capability is off, the raise does nothing
  assert.equal(setIrqs(p, dev, NONE | TRIG, MSIX, 0, 0), 0);
  m = mark(h);
  ring(0);
  assert.deepEqual([results(m), cnt()], [['disabled'], [3n, 2n, 0n, 1n]]);
  assert.equal(pdev.hw.writes, 10); // every doorbell write reached the model
});

test('irqs: a PciHw model driving INTx (setIntx) — the handler automasks (DisINTx) and signals once; UNMASK with the line still asserted re-signals; after the model lowers it, UNMASK unmasks and the next assertion signals', () => {
  const h = boot(BELL_HOST);
  const p = proc(h);
  const pdev = pciGetDevice(h.kernel, BELL.bdf)!;
  const { dev } = openViaCdev(p, BELL);
  assert.deepEqual(irqInfo(p, dev, INTX), { flags: U.VFIO_IRQ_INFO_EVENTFD | U.VFIO_IRQ_INFO_MASKABLE | U.VFIO_IRQ_INFO_AUTOMASKED, count: 1 });
  const line = (v: number) => assert.equal(p.writeBytes(dev, le32b(v), 4n), 4);
  const e = p.eventfd(0, 0o4000);
  const disint = () => pciReadConfigWord(pdev, 4) & 0x400;
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  line(1);
  assert.deepEqual([count(p, e), disint()], [1n, 0x400]);
  assert.equal(setIrqs(p, dev, NONE | UNMASK, INTX, 0, 1), 0);
  assert.deepEqual([count(p, e), disint()], [2n, 0x400]); // still asserted: re-sent, stays masked
  line(0);
  assert.equal(setIrqs(p, dev, NONE | UNMASK, INTX, 0, 1), 0);
  assert.deepEqual([count(p, e), disint()], [2n, 0]);
  line(1);
  assert.deepEqual([count(p, e), disint()], [3n, 0x400]);
  // ACTION_MASK with DATA_BOOL 1 while masked changes nothing; INTx disabled (count 0): the line
  // reaches no handler
  assert.equal(setIrqs(p, dev, BOOL | MASK, INTX, 0, 1, [1]), 0);
  line(0);
  assert.equal(setIrqs(p, dev, NONE | TRIG, INTX, 0, 0), 0);
  line(1);
  assert.equal(count(p, e), 3n);
});

test('irqs: edu through its own registers on INTx — raise (0x60) signals once, UNMASK while the status is set re-signals, lower (0x64) then UNMASK unmasks; a finished factorial with the interrupt bit raises again', () => {
  const h = boot();
  const p = proc(h);
  const pdev = pciGetDevice(h.kernel, EDU.bdf)!;
  const { dev } = openViaCdev(p, EDU);
  const wr = (off: number, v: number) => assert.equal(p.writeBytes(dev, le32b(v), BigInt(off)), 4);
  const rd = (off: number) => new DataView(p.readBytes(dev, 4, BigInt(off))!.buffer).getUint32(0, true);
  const e = p.eventfd(0, 0o4000);
  const u = p.eventfd(0, 0o4000);
  assert.equal(setIrqs(p, dev, EFD | TRIG, INTX, 0, 1, [e]), 0);
  assert.equal(setIrqs(p, dev, EFD | UNMASK, INTX, 0, 1, [u]), 0);
  wr(0x60, 1);
  wr(0x60, 2); // already asserted: no new edge
  assert.deepEqual([count(p, e), rd(0x24)], [1n, 3]);
  p.writeBytes(u, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])); // unmask through the virqfd
  assert.equal(count(p, e), 2n);
  wr(0x64, 3); // the driver acknowledges: edu lowers INTx
  p.writeBytes(u, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]));
  assert.deepEqual([count(p, e), pciReadConfigWord(pdev, 4) & 0x400], [2n, 0]);
  wr(0x20, 0x80); // interrupt when the factorial is done
  wr(0x08, 5);
  assert.deepEqual([count(p, e), rd(0x08), rd(0x24)], [3n, 120, 1]);
});
