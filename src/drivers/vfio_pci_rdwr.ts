// drivers/vfio/pci/vfio_pci_rdwr.c: read/write of the BAR, ROM and VGA regions. A transfer is
// clipped to the end of the BAR (short transfers are allowed here, unlike config space), cut into
// naturally aligned 8/4/2/1-byte MMIO or port accesses (at most 4 bytes for the ROM), and each
// access to a memory BAR checks, under memory_lock, that the *virtual* COMMAND register enables
// memory and the function is not in D3 (else EIO). The MSI-X table's bytes are an excluded range:
// reads give 0xff, writes are dropped but counted. Accesses reach the function's hardware model
// as the kernel's ioread/iowrite reach the device (pciHwIoRead / pciHwIoWrite).

import { EFAULT, EINVAL, ENOMEM } from '../kernel/errno.js';
import { currentMm } from '../kernel/current.js';
import { Pos } from '../kernel/fs/file.js';
import { KGen } from '../kernel/sched.js';
import { downRead, upRead } from '../kernel/sync.js';
import { copyFromUser, copyToUser } from '../kernel/uaccess.js';
import { IoWidth, getLe, pciHwIoRead, pciHwIoWrite, putLe } from './pci/hw/hw.js';
import { pciMapRom, pciUnmapRom } from './pci/rom.js';
import { VFIO_PCI_OFFSET_MASK, VFIO_PCI_OFFSET_SHIFT, vfioPciMemoryEnabled } from './vfio_pci_config.js';
import type { VfioPciCoreDevice } from './vfio_pci_core.js';

/** What an access goes to: a BAR (0-5), the ROM (6), or a VGA legacy window. */
export type IoTarget = { kind: 'bar'; bar: number } | { kind: 'vga'; space: 'mem' | 'io'; base: number };

function ioRead(vdev: VfioPciCoreDevice, io: IoTarget, off: number, size: IoWidth): bigint {
  if (io.kind === 'bar') return pciHwIoRead(vdev.pdev, io.bar, off, size);
  return vdev.pdev.hw ? vdev.pdev.hw.vgaRead(io.space, io.base + off, size) : (1n << BigInt(8 * size)) - 1n;
}

function ioWrite(vdev: VfioPciCoreDevice, io: IoTarget, off: number, size: IoWidth, v: bigint): void {
  if (io.kind === 'bar') pciHwIoWrite(vdev.pdev, io.bar, off, size, v);
  else vdev.pdev.hw?.vgaWrite(io.space, io.base + off, size, v);
}

/** vfio_pci_core_ioread{8,16,32,64}: -EIO when memory is not enabled (test_mem) */
export function* vfioPciCoreIoread(vdev: VfioPciCoreDevice, testMem: boolean, io: IoTarget, off: number, size: IoWidth): KGen<bigint | number> {
  if (testMem) {
    yield* downRead(vdev.memoryLock);
    if (!vfioPciMemoryEnabled(vdev)) {
      yield* upRead(vdev.memoryLock);
      return -5; // -EIO
    }
  }
  const v = ioRead(vdev, io, off, size);
  if (testMem) yield* upRead(vdev.memoryLock);
  return v;
}

/** vfio_pci_core_iowrite{8,16,32,64} */
export function* vfioPciCoreIowrite(vdev: VfioPciCoreDevice, testMem: boolean, io: IoTarget, off: number, size: IoWidth, v: bigint): KGen<number> {
  if (testMem) {
    yield* downRead(vdev.memoryLock);
    if (!vfioPciMemoryEnabled(vdev)) {
      yield* upRead(vdev.memoryLock);
      return -5; // -EIO
    }
  }
  ioWrite(vdev, io, off, size, v);
  if (testMem) yield* upRead(vdev.memoryLock);
  return 0;
}

/** vfio_pci_iordwr{8,16,32,64}: one access between user memory and the device */
function* vfioPciIordwr(vdev: VfioPciCoreDevice, iswrite: boolean, testMem: boolean, io: IoTarget, buf: number, off: number, size: IoWidth): KGen<number> {
  const mm = currentMm();
  if (iswrite) {
    const b = copyFromUser(mm, buf, size);
    if (typeof b === 'number') return -EFAULT;
    return yield* vfioPciCoreIowrite(vdev, testMem, io, off, size, getLe(b, 0, size));
  }
  const v = yield* vfioPciCoreIoread(vdev, testMem, io, off, size);
  if (typeof v === 'number') return v;
  const out = new Uint8Array(size);
  putLe(out, 0, size, v);
  return copyToUser(mm, buf, out) < 0 ? -EFAULT : 0;
}

/**
 * vfio_pci_core_do_io_rw: the transfer in naturally aligned accesses of at most `maxWidth`
 * bytes; [xStart, xEnd) is excluded (reads fill 0xff, writes dropped). Returns the bytes done or
 * the first error (the progress made before it is not reported).
 */
export function* vfioPciCoreDoIoRw(
  vdev: VfioPciCoreDevice,
  testMem: boolean,
  io: IoTarget,
  buf: number,
  off: number,
  count: number,
  xStart: number,
  xEnd: number,
  iswrite: boolean,
  maxWidth: IoWidth,
): KGen<number> {
  let done = 0;
  while (count) {
    let fillable: number;
    let filled: number;
    if (off < xStart) fillable = Math.min(count, xStart - off);
    else if (off >= xEnd) fillable = count;
    else fillable = 0;
    let size: IoWidth | 0 = 0;
    if (fillable >= 8 && !(off % 8) && maxWidth >= 8) size = 8;
    else if (fillable >= 4 && !(off % 4) && maxWidth >= 4) size = 4;
    else if (fillable >= 2 && !(off % 2) && maxWidth >= 2) size = 2;
    else if (fillable) size = 1;
    if (size) {
      const ret = yield* vfioPciIordwr(vdev, iswrite, testMem, io, buf, off, size);
      if (ret) return ret;
      filled = size;
    } else {
      // fill reads with -1, drop writes
      filled = Math.min(count, xEnd - off);
      if (!iswrite) {
        const mm = currentMm();
        for (let i = 0; i < filled; i++) if (copyToUser(mm, buf + i, new Uint8Array([0xff])) < 0) return -EFAULT;
      }
    }
    count -= filled;
    done += filled;
    off += filled;
    buf += filled;
  }
  return done;
}

/** vfio_pci_core_get_iomap: the BAR's mapping made at open, or its error */
function vfioPciCoreGetIomap(vdev: VfioPciCoreDevice, bar: number): number {
  if (bar >= 6) return -EINVAL;
  return vdev.barmap[bar]!;
}

/** vfio_pci_bar_rw: BARs 0-5 and the ROM (read-only, 4-byte accesses, 0xff past the image) */
export function* vfioPciBarRw(vdev: VfioPciCoreDevice, buf: number, count: number, ppos: Pos, iswrite: boolean): KGen<number> {
  const pdev = vdev.pdev;
  const pos = Number(ppos.pos & VFIO_PCI_OFFSET_MASK);
  const bar = Number(ppos.pos >> VFIO_PCI_OFFSET_SHIFT);
  const res = pdev.resources[bar];
  let xStart = 0;
  let xEnd = 0;
  let maxWidth: IoWidth = 8;
  // (no platform shadow ROMs are modelled: a ROM needs its ROM BAR)
  if (!res || !res.start) return -EINVAL;
  const end = Number(res.size);
  if (pos >= end) return -EINVAL;
  count = Math.min(count, end - pos);
  if (bar === 6) {
    // the ROM may fill less than its BAR: the excluded range starts at the end of the image
    const size = pciMapRom(pdev);
    if (size === null) return -ENOMEM;
    xStart = size;
    xEnd = end;
    maxWidth = 4; // no qword access to ROM BARs (Intel X710 and others)
  } else {
    const io = vfioPciCoreGetIomap(vdev, bar);
    if (io < 0) return io;
  }
  if (bar === vdev.msixBar) {
    xStart = vdev.msixOffset;
    xEnd = vdev.msixOffset + vdev.msixSize;
  }
  const done = yield* vfioPciCoreDoIoRw(vdev, res.type === 'mem', { kind: 'bar', bar }, buf, pos, count, xStart, xEnd, iswrite, maxWidth);
  if (done >= 0) ppos.pos += BigInt(done);
  if (bar === 6) pciUnmapRom(pdev);
  return done;
}

/**
 * vfio_pci_vga_rw: the legacy VGA memory (0xa0000-0xbffff) and ports (0x3b0-0x3bb, 0x3c0-0x3df)
 * at their own offsets; count clipped to the window. (The VGA arbiter is not modelled: the
 * resource is always granted.)
 */
export function* vfioPciVgaRw(vdev: VfioPciCoreDevice, buf: number, count: number, ppos: Pos, iswrite: boolean): KGen<number> {
  const pos = Number(ppos.pos & VFIO_PCI_OFFSET_MASK);
  if (!vdev.hasVga) return -EINVAL;
  if (pos > 0xbffff) return -EINVAL;
  let io: IoTarget;
  let off: number;
  if (pos >= 0xa0000 && pos <= 0xbffff) {
    count = Math.min(count, 0xc0000 - pos);
    io = { kind: 'vga', space: 'mem', base: 0xa0000 };
    off = pos - 0xa0000;
  } else if (pos >= 0x3b0 && pos <= 0x3bb) {
    count = Math.min(count, 0x3bc - pos);
    io = { kind: 'vga', space: 'io', base: 0x3b0 };
    off = pos - 0x3b0;
  } else if (pos >= 0x3c0 && pos <= 0x3df) {
    count = Math.min(count, 0x3e0 - pos);
    io = { kind: 'vga', space: 'io', base: 0x3c0 };
    off = pos - 0x3c0;
  } else return -EINVAL;
  const done = yield* vfioPciCoreDoIoRw(vdev, false, io, buf, off, count, 0, 0, iswrite, 4);
  if (done >= 0) ppos.pos += BigInt(done);
  return done;
}

