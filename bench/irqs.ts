// vfio-pci interrupts and resets: a function-raised MSI-X vector delivered to its eventfd (the
// function's table entry, bus mastering, the MSI message through the remapping table, the host
// IRQ's edge flow, vfio_msihandler, eventfd_signal), the same through a device model's doorbell
// register written with pwrite, INTx (assert -> automask -> eventfd, UNMASK, deassert), a SET_IRQS
// loopback trigger (DATA_NONE on one vector), MSI-X enable + disable of 5 vectors, and
// VFIO_DEVICE_RESET. A null syscall (ioctl FIOCLEX) is the yardstick.
//
//   npx tsc -p tsconfig.json && node dist/bench/irqs.js [ms per row, default 1000]

import { Host, Process, uapi as U, vfio } from '../src/api/index.js';
import { pciGetDevice } from '../src/drivers/pci/pci.js';
import { pciRaiseMsix } from '../src/drivers/pci/msi.js';
import { pciSetIntx } from '../src/drivers/pci/irq.js';
import { opsPerSecond } from './measure.js';

const measure = opsPerSecond;

function setIrqs(p: Process, flags: number, index: number, start: number, fds: number[], count = fds.length): number {
  const b = new Int32Array([20 + 4 * fds.length, flags, index, start, count, ...fds]);
  const a = p.mem.alloc(b.byteLength);
  p.mem.write(a, new Uint8Array(b.buffer));
  return a;
}

export function benchIrqs(ms: number): Array<{ name: string; opsPerSec: number; nullSyscalls: number }> {
  const host = new Host();
  const k = host.kernel;
  const p = new Process(host, { name: 'bench-irqs' });
  const io = p.open('/dev/iommu');
  const nul = p.open('/dev/null');
  const EFD = U.VFIO_IRQ_SET_DATA_EVENTFD | U.VFIO_IRQ_SET_ACTION_TRIGGER;
  const NONE = U.VFIO_IRQ_SET_DATA_NONE | U.VFIO_IRQ_SET_ACTION_TRIGGER;
  const CFG = BigInt(U.VFIO_PCI_CONFIG_REGION_INDEX) << 40n;
  const ok = (r: number, what: string) => {
    if (r < 0) throw new Error(`${what}: ${p.errnoName}`);
    return r;
  };

  // e1000e (vfio0): MSI-X vector 0 with an eventfd, bus mastering on
  const x = p.open('/dev/vfio/devices/vfio0');
  vfio.bindIommufd(p, x, io);
  const ex = p.eventfd(0, 0);
  const enableX = setIrqs(p, EFD, U.VFIO_PCI_MSIX_IRQ_INDEX, 0, [ex]);
  ok(p.ioctl(x, U.VFIO_DEVICE_SET_IRQS, enableX), 'MSI-X enable');
  p.writeBytes(x, new Uint8Array([0x06, 0x00]), CFG + 4n);
  const pdevX = pciGetDevice(k, '0000:01:00.0')!;
  const loop = setIrqs(p, NONE, U.VFIO_PCI_MSIX_IRQ_INDEX, 0, [], 1);

  // a second e1000e-like function for enable/disable cycles: the igb (vfio4, 10 MSI-X vectors)
  const g = p.open('/dev/vfio/devices/vfio4');
  vfio.bindIommufd(p, g, io);
  const eg = [0, 1, 2, 3, 4].map(() => p.eventfd(0, 0));
  const enable5 = setIrqs(p, EFD, U.VFIO_PCI_MSIX_IRQ_INDEX, 0, eg);
  const disable = setIrqs(p, NONE, U.VFIO_PCI_MSIX_IRQ_INDEX, 0, [], 0);

  // edu (vfio2): INTx with an eventfd
  const d = p.open('/dev/vfio/devices/vfio2');
  vfio.bindIommufd(p, d, io);
  const ed = p.eventfd(0, 0);
  ok(p.ioctl(d, U.VFIO_DEVICE_SET_IRQS, setIrqs(p, EFD, U.VFIO_PCI_INTX_IRQ_INDEX, 0, [ed])), 'INTx enable');
  const unmask = setIrqs(p, U.VFIO_IRQ_SET_DATA_NONE | U.VFIO_IRQ_SET_ACTION_UNMASK, U.VFIO_PCI_INTX_IRQ_INDEX, 0, [], 1);
  const pdevD = pciGetDevice(k, '0000:03:00.0')!;
  const raise = new Uint8Array([1, 0, 0, 0]);
  // edu's MSI is off: its raise register (BAR0 + 0x60) drives INTx; lower (0x64) clears it
  const raiseAddr = p.mem.alloc(4);
  p.mem.write(raiseAddr, raise);

  const rows: Array<[string, () => number]> = [
    ['null syscall (ioctl FIOCLEX)', () => (p.ioctl(nul, 0x5451, 0), 1)],
    ['device-raised MSI-X -> eventfd (pciRaiseMsix)', () => (pciRaiseMsix(k, pdevX, 0), 1)],
    ['device-raised INTx -> eventfd + UNMASK ioctl + deassert', () => {
      pciSetIntx(k, pdevD, true);
      pciSetIntx(k, pdevD, false);
      p.ioctl(d, U.VFIO_DEVICE_SET_IRQS, unmask);
      return 1;
    }],
    ['edu raise register (pwrite) -> INTx -> eventfd, lower, UNMASK', () => {
      p.pwrite(d, raiseAddr, 4, 0x60n);
      p.pwrite(d, raiseAddr, 4, 0x64n);
      p.ioctl(d, U.VFIO_DEVICE_SET_IRQS, unmask);
      return 1;
    }],
    ['SET_IRQS loopback trigger (DATA_NONE, 1 vector)', () => (p.ioctl(x, U.VFIO_DEVICE_SET_IRQS, loop), 1)],
    ['SET_IRQS MSI-X enable 5 vectors + disable', () => {
      ok(p.ioctl(g, U.VFIO_DEVICE_SET_IRQS, enable5), 'enable');
      ok(p.ioctl(g, U.VFIO_DEVICE_SET_IRQS, disable), 'disable');
      return 1;
    }],
    ['VFIO_DEVICE_RESET (e1000e, PM reset, MSI-X restored)', () => (ok(p.ioctl(x, U.VFIO_DEVICE_RESET, 0), 'reset'), 1)],
  ];
  const out = rows.map(([name, f]) => ({ name, opsPerSec: measure(ms, f), nullSyscalls: 0 }));
  for (const r of out) r.nullSyscalls = out[0]!.opsPerSec / r.opsPerSec;
  // the deliveries really happened
  if (!(p.eventfdCtx(ex)!.count > 0n && p.eventfdCtx(ed)!.count > 0n)) throw new Error('no interrupt reached the eventfds');
  if (k.warnings.length) throw new Error(`kernel warnings during the benchmark: ${JSON.stringify(k.warnings)}`);
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const ms = Number(process.argv[2] ?? 1000);
  for (const r of benchIrqs(ms))
    console.log(`${r.name.padEnd(58)} ${Math.round(r.opsPerSec).toLocaleString('en-US').padStart(12)} ops/s  ${r.nullSyscalls.toFixed(1)} null syscalls`);
}
