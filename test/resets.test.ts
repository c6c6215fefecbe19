// vfio-pci resets (issue 4, item 4): VFIO_DEVICE_RESET, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO and
// VFIO_DEVICE_PCI_HOT_RESET over the device set, through both device-file flavours. "oracle" marks
// values observed on the real kernel: tools/oracle/resets.c printed test/fixtures/oracle-resets.out
// (default topology); ../shared/oracle/examples/hot_reset.c printed oracle-hot-reset-{devset,group}.out
// on the oracle's "devset" and "group" topologies, which the YAML hosts here reproduce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Host, Process } from '../src/api/index.js';
import { KGen } from '../src/kernel/sched.js';
import { Completion, complete, downRead, mutexLock, mutexUnlock, upRead, waitForCompletion } from '../src/kernel/sync.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { pciMsiDescs, pciRaiseMsix } from '../src/drivers/pci/msi.js';
import { toCore } from '../src/drivers/vfio_pci_core.js';
import { E1000E, EDU, IGB0, IGB1, NVME, TESTDEV, U, argsOf, boot, cdevPath, eventsSince, groupPath, mark, openViaCdev, openViaContainer, proc } from './helpers.js';
import { ResetReplay, oracleResetSection } from './reset_replay.js';
import { ORACLE_DEVSET_HOST, ORACLE_GROUP_HOST, hotResetReplay } from './hot_reset_replay.js';

const fixture = (n: string) => readFileSync(new URL(`../../test/fixtures/${n}`, import.meta.url), 'utf8');
const ORACLE = fixture('oracle-resets.out');
const rc = (p: Process, r: number) => (r < 0 ? p.errnoName : r);

for (const [name, d] of [['e1000e', E1000E], ['nvme', NVME], ['edu', EDU], ['testdev', TESTDEV]] as const) {
  test(`resets: ${name} — tools/oracle/resets.c prints what it printed on the real kernel, cdev and group paths (oracle)`, () => {
    const h = boot();
    const got = new ResetReplay(proc(h)).run(name, cdevPath(d), groupPath(d), d.bdf);
    const want = oracleResetSection(ORACLE, name);
    assert.ok(want.length > 40);
    assert.deepEqual(got, want);
  });
}

test('resets: the oracle\'s "devset" topology — two functions of one slot in one group: OWNED through the group, one group fd covers both (oracle, hot_reset.c)', () => {
  const h = boot(ORACLE_DEVSET_HOST);
  const out = ['### cdev path: bind fn0, then fn1, to one iommufd'];
  out.push(...hotResetReplay(proc(h), 'cdev', ['/dev/vfio/devices/vfio0', '/dev/vfio/devices/vfio1']));
  out.push("### group path: open fn0's group, then fn1's");
  out.push(...hotResetReplay(proc(h), 'group', ['0000:01:00.0:/dev/vfio/4', '0000:01:00.1:/dev/vfio/4']));
  out.push('### the unrelated device');
  out.push(...hotResetReplay(proc(h), 'cdev', ['/dev/vfio/devices/vfio2']));
  assert.deepEqual(out, fixture('oracle-hot-reset-devset.out').trimEnd().split('\n'));
});

test('resets: the oracle\'s "group" topology — edu and testdev behind a PCIe-to-PCI bridge share a group and a bus reset (oracle, hot_reset.c)', () => {
  const h = boot(ORACLE_GROUP_HOST);
  const out = ['### cdev edu then testdev'];
  out.push(...hotResetReplay(proc(h), 'cdev', ['/dev/vfio/devices/vfio0', '/dev/vfio/devices/vfio1']));
  out.push('### group');
  out.push(...hotResetReplay(proc(h), 'group', ['0000:01:01.0:/dev/vfio/1', '0000:01:02.0:/dev/vfio/1']));
  assert.deepEqual(out, fixture('oracle-hot-reset-group.out').trimEnd().split('\n'));
});

test('resets: a slot set spanning two groups (igb0/igb1) — a member nobody owns is NOT_OWNED, clears DEV_ID_OWNED and makes the reset EINVAL; owning both allows it (oracle: devset-igb, shared/oracle/README)', () => {
  const h = boot();
  const p = proc(h);
  const i = p.open('/dev/iommu');
  const a = openViaCdev(p, IGB0, i);
  const info = () => {
    const buf = p.mem.alloc(12 + 8 * 4);
    p.mem.write(buf, new Uint8Array(new Uint32Array([12 + 8 * 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).buffer));
    const r = p.ioctl(a.dev, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, buf);
    const dv = new DataView(p.mem.read(buf, 12 + 16).buffer);
    return { r, flags: dv.getUint32(4, true), count: dv.getUint32(8, true), ids: [dv.getUint32(12, true), dv.getUint32(20, true)], where: [dv.getUint8(18), dv.getUint8(19), dv.getUint8(26), dv.getUint8(27)] };
  };
  const zeroLen = () => rc(p, p.ioctl(a.dev, U.VFIO_DEVICE_PCI_HOT_RESET, p.mem.struct(U.vfio_pci_hot_reset, { argsz: 12, flags: 0, count: 0 })));
  assert.deepEqual(info(), { r: 0, flags: U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID, count: 2, ids: [1, 0xffffffff], where: [4, 0, 4, 1] }); // oracle
  assert.equal(zeroLen(), 'EINVAL'); // oracle
  openViaCdev(p, IGB1, i);
  assert.deepEqual(info(), { r: 0, flags: 3, count: 2, ids: [1, 2], where: [4, 0, 4, 1] }); // oracle
  const m = mark(h);
  assert.equal(zeroLen(), 0); // oracle
  assert.deepEqual(argsOf(eventsSince(h, m), 'pci_reset_slot'), [{ bus: '0000:04', devices: [IGB0.bdf, IGB1.bdf] }]);
});

test('resets: group flavour over two groups — only igb0\'s group fd is EINVAL, both group fds reset the slot (oracle: devset-igb)', () => {
  const h = boot();
  const p = proc(h);
  const a = openViaContainer(p, IGB0);
  const g1 = p.open(groupPath(IGB1));
  assert.equal(p.ioctl(g1, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(a.c)), 0);
  const hot = (fds: number[]) => {
    const b = new Int32Array([12 + 4 * fds.length, 0, fds.length, ...fds]);
    const x = p.mem.alloc(b.byteLength);
    p.mem.write(x, new Uint8Array(b.buffer));
    return rc(p, p.ioctl(a.dev, U.VFIO_DEVICE_PCI_HOT_RESET, x));
  };
  assert.equal(hot([a.g]), 'EINVAL'); // oracle
  assert.equal(hot([a.g, g1]), 0); // oracle
  // a group of a device outside the set does not help, nor repeating one
  assert.equal(hot([a.g, a.g]), 'EINVAL');
  // more fds than affected devices
  assert.equal(hot([a.g, g1, g1]), 'EINVAL');
});

/** Hold `lock` from a kernel task until the returned function is called. */
function hold(h: Host, take: () => KGen<void>, drop: () => KGen<void>): () => void {
  const k = h.kernel;
  const c = new Completion('test hold');
  k.spawnKernelTask('holder', (function* (): KGen<void> {
    yield* take();
    yield* waitForCompletion(c);
    yield* drop();
  })());
  return () => {
    k.spawnKernelTask('release', (function* (): KGen<void> {
      yield* complete(c);
    })());
  };
}

test('resets: hot reset takes every member\'s memory lock with a trylock — a member whose lock is held makes it EBUSY, and nothing stays locked', () => {
  const h = boot(ORACLE_DEVSET_HOST);
  const p = proc(h);
  const i = p.open('/dev/iommu');
  const a = openViaCdev(p, { index: 0 }, i);
  openViaCdev(p, { index: 1 }, i);
  const fn1 = toCore(h.vfioDevice('0000:01:00.1')!);
  const release = hold(h, () => downRead(fn1.memoryLock), () => upRead(fn1.memoryLock));
  const hot = () => rc(p, p.ioctl(a.dev, U.VFIO_DEVICE_PCI_HOT_RESET, p.mem.struct(U.vfio_pci_hot_reset, { argsz: 12 })));
  const zaps = () => [toCore(h.vfioDevice('0000:01:00.0')!).zapCount, fn1.zapCount];
  const z0 = zaps();
  assert.equal(hot(), 'EBUSY');
  // fn0 was locked and zapped before fn1's trylock failed, then unlocked
  assert.deepEqual(zaps(), [z0[0]! + 1, z0[1]!]);
  assert.equal(toCore(h.vfioDevice('0000:01:00.0')!).memoryLock.writer, null);
  release();
  assert.equal(hot(), 0);
  assert.deepEqual(zaps(), [z0[0]! + 2, z0[1]! + 1]);
});

test('resets: VFIO_DEVICE_RESET zaps the BAR mappings under the memory lock, EAGAIN while the device lock is held, and MSI-X vectors work after it (the table is restored)', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdev = pciGetDevice(k, E1000E.bdf)!;
  const { dev } = openViaCdev(p, E1000E);
  const core = toCore(h.vfioDevice(E1000E.bdf)!);
  const e = [p.eventfd(0, 0), p.eventfd(0, 0)];
  const b = new Int32Array([28, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, 2, 0, 2, e[0]!, e[1]!]);
  const x = p.mem.alloc(28);
  p.mem.write(x, new Uint8Array(b.buffer));
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, x), 0);
  const msgs = pciMsiDescs(k, pdev).map((d) => d.msg);
  const release = hold(h, () => mutexLock(pdev.deviceLock), () => mutexUnlock(pdev.deviceLock));
  const z = core.zapCount;
  assert.equal(rc(p, p.ioctl(dev, U.VFIO_DEVICE_RESET, 0)), 'EAGAIN');
  assert.equal(core.zapCount, z + 1);
  release();
  const m = mark(h);
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_RESET, 0), 0); // oracle
  assert.deepEqual(argsOf(eventsSince(h, m), 'pci_reset_function'), [{ device: E1000E.bdf, method: 'pm' }]);
  // pci_restore_state put the table back: the function's raise still reaches the eventfds
  assert.deepEqual(pciMsiDescs(k, pdev).map((d) => d.msg), msgs);
  const cfg = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
  const cmd = new DataView(p.readBytes(dev, 2, cfg + 4n)!.buffer).getUint16(0, true) | 6;
  p.writeBytes(dev, new Uint8Array([cmd & 0xff, cmd >> 8]), cfg + 4n);
  assert.deepEqual([pciRaiseMsix(k, pdev, 0), pciRaiseMsix(k, pdev, 1)], ['sent', 'sent']);
  assert.deepEqual(e.map((fd) => p.eventfdCtx(fd)!.count), [1n, 1n]);
});

test('resets: GET_PCI_HOT_RESET_INFO on a cdev device lists a function outside the set as NOT_OWNED (clearing DEV_ID_OWNED), and the reset is EINVAL', () => {
  // a root-port bus with a vfio-pci function and a function bound to no driver (not in the set)
  const y = `name: t
functions:
  - { bdf: "0000:00:02.0", name: rp1, id: "1b36:000c", class: 0x060400, pcie: true, bridge: { secondary: 1 }, iommu_group: 1, driver: pcieport }
  - { bdf: "0000:01:00.0", name: a, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 4, driver: vfio-pci, reset: [pm, bus], bars: [ { size: 0x20000 } ] }
  - { bdf: "0000:01:00.1", name: b, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 5, reset: [pm], bars: [ { size: 0x20000 } ] }
`;
  const h = boot(y);
  const p = proc(h);
  const { dev } = openViaCdev(p, { index: 0 });
  const buf = p.mem.alloc(64);
  p.mem.write(buf, new Uint8Array(new Uint32Array([64, 0, 0]).buffer));
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, buf), 0);
  const w = new Uint32Array(p.mem.read(buf, 28).buffer.slice(0));
  assert.deepEqual([w[1], w[2], w[3], w[5]], [U.VFIO_PCI_HOT_RESET_FLAG_DEV_ID, 2, 1, 0xffffffff]);
  // the reset needs the whole scope inside the set: EINVAL
  assert.equal(rc(p, p.ioctl(dev, U.VFIO_DEVICE_PCI_HOT_RESET, p.mem.struct(U.vfio_pci_hot_reset, { argsz: 12 }))), 'EINVAL');
});
