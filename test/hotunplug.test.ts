// Hot-unplug and driver unbind of an open vfio-pci function (issue 4, item 5): unregister waits for
// the users, asking them through the REQ eventfd (vfio_pci_core_request) once at once and again
// every 10 s; the cdev and vfio-dev entries go before the wait, the group node after it. "oracle"
// marks what tools/oracle/unplug.c printed on the real kernel (test/fixtures/oracle-unplug.out:
// e1000e unbound, nvme removed, edu unbound without a REQ eventfd).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Host, Process } from '../src/api/index.js';
import { E1000E, EDU, NVME, U, argsOf, boot, cdevPath, eventsSince, getInfo, groupPath, mark, openViaCdev, openViaContainer, proc } from './helpers.js';
import { ORACLE_DEVSET_HOST, unplugDevsetReplay } from './hot_reset_replay.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { pciMsiDescs, pciRaiseMsix } from '../src/drivers/pci/msi.js';
import { irqToDesc, pciDevIrq, pciSetIntx } from '../src/drivers/pci/irq.js';

const ORACLE = readFileSync(new URL('../../test/fixtures/oracle-unplug.out', import.meta.url), 'utf8').split('\n');

function reqEventfd(p: Process, dev: number): number {
  const e = p.eventfd(0, 0o4000);
  const b = new Int32Array([24, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, U.VFIO_PCI_REQ_IRQ_INDEX, 0, 1, e]);
  const a = p.mem.alloc(24);
  p.mem.write(a, new Uint8Array(b.buffer));
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, a), 0);
  return e;
}

/** read(2) of the eventfd as the oracle program did: the count, or EAGAIN. */
function readCount(p: Process, e: number): string {
  const b = p.readBytes(e, 8);
  return b ? `count=${new DataView(b.buffer, b.byteOffset).getBigUint64(0, true)}` : p.errnoName;
}

const exists = (p: Process, path: string) => (p.stat(path) ? 'exists' : p.errnoName);

/**
 * The oracle program's observations, in the model: REQ counts at 2 s, 12 s, 22 s after the unbind
 * (or removal) started, which nodes exist during the wait, what opens and the open fd do, then the
 * state after the close.
 */
function scenario(h: Host, d: { bdf: string; index: number; group: number }, how: 'unbind' | 'remove', withReq: boolean): string[] {
  const p = proc(h);
  const out: string[] = [];
  const { dev } = openViaCdev(p, d);
  const e = withReq ? reqEventfd(p, dev) : p.eventfd(0, 0o4000);
  const t = how === 'unbind' ? h.unbind(d.bdf) : h.hotUnplug(d.bdf);
  h.advanceTime(2_000);
  out.push(readCount(p, e));
  const sys = `/sys/bus/pci/devices/${d.bdf}`;
  out.push(`cdev ${exists(p, cdevPath(d))}`, `group ${exists(p, groupPath(d))}`);
  if (how === 'unbind') out.push(`vfio-dev dir ${exists(p, sys + '/vfio-dev')}`, `driver link ${exists(p, sys + '/driver')}`);
  out.push(`open(cdev) ${p.open(cdevPath(d)) < 0 ? p.errnoName : 'ok'}`);
  out.push(`GET_INFO ${getInfo(p, dev).ret}`);
  out.push(`done ${t.done}`);
  h.advanceTime(10_000);
  out.push(readCount(p, e));
  h.advanceTime(10_000);
  out.push(readCount(p, e));
  p.close(dev);
  out.push(`done ${t.done}`);
  out.push(`cdev ${exists(p, cdevPath(d))}`, `group ${exists(p, groupPath(d))}`);
  out.push(`open(cdev) ${p.open(cdevPath(d)) < 0 ? p.errnoName : 'ok'}`, `open(group) ${p.open(groupPath(d)) < 0 ? p.errnoName : 'ok'}`);
  out.push(readCount(p, e));
  return out;
}

/** The same observations, from the oracle's output for one run. */
function oracleObservations(run: number, how: 'unbind' | 'remove'): string[] {
  const starts = ORACLE.map((l, i) => (l.startsWith('BIND ') ? i : -1)).filter((i) => i >= 0);
  const lines = ORACLE.slice(starts[run], starts[run + 1] ?? ORACLE.length);
  const val = (l: string) => l.slice(l.lastIndexOf('= ') + 2);
  const out: string[] = [];
  const counts: string[] = [];
  lines.forEach((l, i) => {
    if (l.startsWith('read REQ eventfd')) counts.push(val(l).endsWith('EAGAIN') ? 'EAGAIN' : lines[i + 1]!.trim());
  });
  const find = (prefix: string, from = 0) => lines.find((l, i) => i >= from && l.trim().startsWith(prefix))!;
  const after = lines.findIndex((l) => l.startsWith('-- ') && l.includes('after the close'));
  out.push(counts[0]!);
  out.push(find('cdev').trim(), find('group').trim());
  if (how === 'unbind') out.push(find('vfio-dev dir').trim(), find('driver link').trim());
  out.push(`open(cdev) ${val(find('open(cdev) during')).split(' ')[1]}`);
  out.push(`GET_INFO ${val(find('GET_INFO'))}`);
  out.push(`done ${val(find('waitpid WNOHANG')) === '0' ? 'false' : 'true'}`);
  out.push(counts[1]!, counts[2]!);
  out.push(`done ${val(find('waitpid (unbind')) === '0'}`);
  out.push(find('cdev', after).trim(), find('group', after).trim());
  out.push(`open(cdev) ${val(find('open(cdev) after')).split(' ')[1]}`, `open(group) ${val(find('open(group) after')).split(' ')[1]}`);
  out.push(counts[3]!);
  return out;
}

test('unplug: unbind of an open device — REQ eventfd signalled at once and every 10 s, cdev and vfio-dev gone during the wait, the group node stays, the open fd works; the close lets the unbind finish (oracle)', () => {
  const h = boot();
  const got = scenario(h, E1000E, 'unbind', true);
  assert.deepEqual(got, oracleObservations(0, 'unbind'));
  assert.deepEqual(got.slice(0, 3), ['count=1', 'cdev ENOENT', 'group exists']); // and the fixture says so
});

test('unplug: hot-unplug (sysfs remove) of an open device behaves the same (oracle)', () => {
  const h = boot();
  const got = scenario(h, NVME, 'remove', true);
  assert.deepEqual(got, oracleObservations(1, 'remove'));
  // the function itself is gone after the wait
  assert.equal(proc(h).stat(`/sys/bus/pci/devices/${NVME.bdf}`), null);
});

test('unplug: without a REQ eventfd the driver logs one notice and the user is not told (oracle)', () => {
  const h = boot();
  const m = mark(h);
  const got = scenario(h, EDU, 'unbind', false);
  assert.deepEqual(got, oracleObservations(2, 'unbind'));
  const logs = eventsSince(h, m).filter((e) => e.name === 'printk' && /request/.test(e.msg ?? '')).map((e) => e.msg);
  assert.deepEqual(logs, ['0000:03:00.0: No device request channel registered, blocked until released by user']); // oracle (dmesg)
});

test('unplug: the relay notice is logged for requests #0, #10, #20 ... and the REQ count follows every request', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, E1000E);
  const e = reqEventfd(p, dev);
  const m = mark(h);
  const t = h.unbind(E1000E.bdf);
  for (let i = 0; i < 25; i++) h.advanceTime(10_000);
  assert.equal(p.eventfdCtx(e)!.count, 26n);
  const logs = eventsSince(h, m).filter((ev) => ev.name === 'printk').map((ev) => ev.msg);
  assert.deepEqual(logs, [0, 10, 20].map((n) => `0000:01:00.0: Relaying device request to user (#${n})`)); // oracle: #0
  assert.deepEqual(argsOf(eventsSince(h, m), 'request').map((a) => a.count), Array.from({ length: 26 }, (_, i) => i));
  p.close(dev);
  assert.equal(t.done, true);
});

test('unplug: the REQ eventfd belongs to the open device — several group-path fds share it; closing one keeps the wait going, the last close ends it', () => {
  const h = boot();
  const p = proc(h);
  const { g, dev } = openViaContainer(p, E1000E);
  const dev2 = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(E1000E.bdf));
  assert.ok(dev2 >= 0);
  const e = reqEventfd(p, dev2);
  const t = h.unbind(E1000E.bdf);
  assert.equal(p.eventfdCtx(e)!.count, 1n);
  p.close(dev2);
  h.advanceTime(10_000);
  assert.equal(p.eventfdCtx(e)!.count, 2n); // still registered: the device is still open through dev
  assert.equal(t.done, false);
  p.close(dev);
  assert.equal(t.done, true);
  h.advanceTime(10_000);
  assert.equal(p.eventfdCtx(e)!.count, 2n);
});

test('unplug: a user that closes after the first request ends the wait there — one request, no further signal', () => {
  const h = boot();
  const p = proc(h);
  const { dev } = openViaCdev(p, EDU);
  const e = reqEventfd(p, dev);
  const m = mark(h);
  const t = h.unbind(EDU.bdf);
  assert.equal(p.eventfdCtx(e)!.count, 1n);
  h.advanceTime(3_000);
  p.close(dev);
  assert.equal(t.done, true);
  assert.deepEqual(argsOf(eventsSince(h, m), 'request').map((a) => a.count), [0]);
  assert.deepEqual(argsOf(eventsSince(h, m), 'vfio_unregister_done').map((a) => a.requests), [1]);
});

// ---- a device set losing a member; interrupts across the wait --------------------------------------------

test('unplug: the other function of a device set unbound, rebound, then removed while open — hot-reset info and the zero-length hot reset on the function that stays, step by step (oracle: tools/oracle/unplug_devset.c, devset topology)', () => {
  const h = boot(ORACLE_DEVSET_HOST);
  const m = mark(h);
  const got = unplugDevsetReplay(h, proc(h), { cdev0: '/dev/vfio/devices/vfio0', cdev1: '/dev/vfio/devices/vfio1', bdf1: '0000:01:00.1', gdev1: '/dev/vfio/4' });
  assert.deepEqual(got, readFileSync(new URL('../../test/fixtures/oracle-hot-reset-unplug.out', import.meta.url), 'utf8').trimEnd().split('\n'));
  // the resets the ioctls did (oracle dmesg: "resetting" for fn0 and fn1 twice, then fn0 alone);
  // the EAGAIN one found fn1's device lock held by the removal and reset nothing
  const resets = argsOf(eventsSince(h, m), 'pci_reset_bus').map((a) => a.devices);
  assert.deepEqual(resets, [['0000:01:00.0', '0000:01:00.1'], ['0000:01:00.0', '0000:01:00.1'], ['0000:01:00.0']]);
  const relays = eventsSince(h, m).filter((e) => e.name === 'printk' && /Relaying/.test(e.msg ?? '')).map((e) => e.msg);
  assert.deepEqual(relays, ['0000:01:00.1: Relaying device request to user (#0)']); // oracle (dmesg)
  assert.deepEqual(h.kernel.warnings, []);
});

test('unplug: hot-unplug of a device open through its group — the REQ count grows 1, 2, 3 unread; GET_DEVICE_FD is ENODEV during the wait, the group node and fd stay; after the close the group node is gone and the old group fd is a dead group', () => {
  const h = boot();
  const p = proc(h);
  const { g, dev } = openViaContainer(p, E1000E);
  const e = reqEventfd(p, dev);
  const t = h.hotUnplug(E1000E.bdf);
  const counts = [p.eventfdCtx(e)!.count];
  h.advanceTime(10_000);
  counts.push(p.eventfdCtx(e)!.count);
  h.advanceTime(10_000);
  counts.push(p.eventfdCtx(e)!.count);
  assert.deepEqual(counts, [1n, 2n, 3n]);
  const gdf = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(E1000E.bdf));
  assert.deepEqual([gdf, p.errnoName], [-1, 'ENODEV']);
  assert.deepEqual([p.open(cdevPath(E1000E)), p.errnoName], [-1, 'ENOENT']);
  assert.equal(exists(p, groupPath(E1000E)), 'exists');
  const st = p.mem.struct(U.vfio_group_status, { argsz: 8 });
  assert.equal(p.ioctl(g, U.VFIO_GROUP_GET_STATUS, st), 0);
  assert.equal(getInfo(p, dev).ret, 0);
  assert.equal(t.done, false);
  assert.equal(p.close(dev), 0);
  assert.equal(t.done, true);
  assert.equal(p.stat(`/sys/bus/pci/devices/${E1000E.bdf}`), null);
  assert.deepEqual([exists(p, groupPath(E1000E)), p.open(groupPath(E1000E)), p.errnoName], ['ENOENT', -1, 'ENOENT']);
  assert.deepEqual([p.ioctl(g, U.VFIO_GROUP_GET_STATUS, st), p.errnoName], [-1, 'ENODEV']);
  assert.deepEqual([p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, p.mem.cstring(E1000E.bdf)), p.errnoName], [-1, 'ENODEV']);
  // nothing signals the REQ eventfd any more
  h.advanceTime(30_000);
  assert.equal(p.eventfdCtx(e)!.count, 3n);
});

test('unplug: interrupts keep working during the wait (the function is still there); the close frees them — no vector, IRQ or IOAPIC action left, no WARN — and the removed function raises nothing', () => {
  const h = boot();
  const p = proc(h);
  const k = h.kernel;
  const pdevX = pciGetDevice(k, E1000E.bdf)!;
  const pdevI = pciGetDevice(k, EDU.bdf)!;
  const x = openViaCdev(p, E1000E).dev;
  const i = openViaCdev(p, EDU).dev;
  const ex = [p.eventfd(0, 0), p.eventfd(0, 0)];
  const ei = p.eventfd(0, 0);
  const set = (dev: number, index: number, fds: number[]) => {
    const b = new Int32Array([20 + 4 * fds.length, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, index, 0, fds.length, ...fds]);
    const a = p.mem.alloc(b.byteLength);
    p.mem.write(a, new Uint8Array(b.buffer));
    return p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, a);
  };
  assert.equal(set(x, U.VFIO_PCI_MSIX_IRQ_INDEX, ex), 0);
  assert.equal(set(i, U.VFIO_PCI_INTX_IRQ_INDEX, [ei]), 0);
  const cfg = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
  assert.equal(p.writeBytes(x, new Uint8Array([0x06, 0x00]), cfg + 4n), 2);
  const irqs = pciMsiDescs(k, pdevX).map((d) => d.irqs[0]!.irq);
  assert.equal(irqs.length, 2);
  const tx = h.hotUnplug(E1000E.bdf);
  const ti = h.hotUnplug(EDU.bdf);
  h.advanceTime(2_000);
  assert.deepEqual([tx.done, ti.done], [false, false]);
  assert.deepEqual([pciRaiseMsix(k, pdevX, 0), pciRaiseMsix(k, pdevX, 1)], ['sent', 'sent']);
  assert.equal(p.writeBytes(i, new Uint8Array([1, 0, 0, 0]), 0x60n), 4); // edu raises INTx
  assert.deepEqual([...ex, ei].map((fd) => p.eventfdCtx(fd)!.count), [1n, 1n, 1n]);
  p.close(x);
  p.close(i);
  assert.deepEqual([tx.done, ti.done], [true, true]);
  assert.deepEqual(pciMsiDescs(k, pdevX), []);
  for (const irq of irqs) assert.equal(irqToDesc(k, irq), null);
  assert.deepEqual(irqToDesc(k, 20)!.actions, []); // edu's GSI: vfio-intx freed
  assert.deepEqual([pdevX.removed, pdevI.removed], [true, true]);
  assert.equal(pciRaiseMsix(k, pdevX, 0), 'disabled');
  pciSetIntx(k, pdevI, false);
  pciSetIntx(k, pdevI, true);
  assert.deepEqual([...ex, ei].map((fd) => p.eventfdCtx(fd)!.count), [1n, 1n, 1n]);
  assert.deepEqual(h.kernel.warnings, []);
});

test('unplug: a removed function no longer drives its INTx line — a function sharing the IOAPIC pin still gets its interrupt after the other was unplugged while asserting', () => {
  const h = boot(ORACLE_DEVSET_HOST);
  const p = proc(h);
  const k = h.kernel;
  const fn0 = pciGetDevice(k, '0000:01:00.0')!;
  const fn1 = pciGetDevice(k, '0000:01:00.1')!;
  assert.equal(pciDevIrq(k, fn0), pciDevIrq(k, fn1)); // same slot, same pin: one GSI
  const gsi = pciDevIrq(k, fn0);
  // fn1 asserts INTx with nobody handling it (its open left DisINTx clear), then goes away
  const d1 = p.open('/dev/vfio/devices/vfio1');
  pciSetIntx(k, fn1, true);
  const t = h.hotUnplug('0000:01:00.1');
  p.close(d1);
  assert.deepEqual([t.done, fn1.removed], [true, true]);
  // fn0 with an INTx eventfd on the shared line
  const { dev } = openViaCdev(p, { index: 0 });
  const e = p.eventfd(0, 0);
  const b = new Int32Array([24, U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER, U.VFIO_PCI_INTX_IRQ_INDEX, 0, 1, e]);
  const a = p.mem.alloc(24);
  p.mem.write(a, new Uint8Array(b.buffer));
  assert.equal(p.ioctl(dev, U.VFIO_DEVICE_SET_IRQS, a), 0);
  pciSetIntx(k, fn0, true);
  assert.equal(p.eventfdCtx(e)!.count, 1n);
  assert.deepEqual(irqToDesc(k, gsi)!.actions.map((x) => x.name), ['vfio-intx(0000:01:00.0)']);
});
