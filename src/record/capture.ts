// The recorder's per-function capture (record/vfiosim-record.c: capture_cdev, capture_group,
// capture_device_fd and the function part of emit_host), run on the simulator through the public
// Process API with the same syscalls in the same order, and returned in the shape the recording's
// YAML parses to. `vfiosim verify` compares the two section by section.

import { EMSGSIZE, ENODEV, ENOSPC, EOVERFLOW, errnoName } from '../kernel/errno.js';
import { O_CLOEXEC, O_RDWR } from '../kernel/fs/file.js';
import * as U from '../uapi/index.js';
import { Process } from '../api/process.js';
import type { Host } from '../host/host.js';
import { configRows } from './format.js';

type Obj = Record<string, unknown>;

const hx = (v: bigint | number): string => '0x' + BigInt(v).toString(16);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const le = (b: Uint8Array, o: number, n: number): bigint => {
  let v = 0n;
  for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[o + i] ?? 0);
  return v;
};
const u16 = (b: Uint8Array, o: number) => Number(le(b, o, 2));
const u32 = (b: Uint8Array, o: number) => Number(le(b, o, 4));
const u64 = (b: Uint8Array, o: number) => le(b, o, 8);
function put(b: Uint8Array, o: number, n: number, v: number | bigint): void {
  let x = BigInt(v);
  for (let i = 0; i < n; i++) {
    b[o + i] = Number(x & 0xffn);
    x >>= 8n;
  }
}

interface RegionCap {
  err: number;
  flags: number;
  capOffset: number;
  size: bigint;
  offset: bigint;
  buf: Uint8Array | null;
}

/** What one function's capture found (struct fn's captured part). */
interface Captured {
  via: 'cdev' | 'group' | null;
  errors: string[];
  cfg: Uint8Array | null;
  cfgErrs: number;
  info: Uint8Array | null;
  infoErr: number;
  regions: RegionCap[];
  irqs: Array<{ err: number; flags: number; count: number }>;
  hr: Uint8Array | null;
  hrErr: number;
  hrg: Uint8Array | null;
  hrgErr: number;
  t1: Uint8Array | null;
  t1Err: number;
  t1Iommu: number;
  t1Cc: number;
  rng0: Uint8Array | null;
  nrng0: number;
  rng1: Uint8Array | null;
  nrng1: number;
  align1: bigint;
  ifdErr: number;
  hwErr: number;
  hwType: number;
  hwLen: number;
  hwPasid: number;
  hwCaps: bigint;
  hwData: Uint8Array;
}

class Capturer {
  readonly c: Captured = {
    via: null, errors: [], cfg: null, cfgErrs: 0, info: null, infoErr: 0, regions: [], irqs: [], hr: null, hrErr: 0, hrg: null,
    hrgErr: 0, t1: null, t1Err: 0, t1Iommu: 0, t1Cc: 0, rng0: null, nrng0: 0, rng1: null, nrng1: 0, align1: 0n, ifdErr: 0,
    hwErr: 0, hwType: 0, hwLen: 0, hwPasid: 0, hwCaps: 0n, hwData: new Uint8Array(512),
  };
  private readonly allocs: Array<[number, number]> = [];
  constructor(
    private readonly p: Process,
    private readonly bdf: string,
    private readonly cdev: string,
    private readonly groupdev: string,
  ) {}

  private alloc(n: number): number {
    const a = this.p.mem.alloc(n);
    this.allocs.push([a, n]);
    return a;
  }
  /** ioctl on a buffer: [-errno or the result, the buffer after the call] */
  private call(fd: number, req: number, b: Uint8Array): [number, Uint8Array] {
    const a = this.alloc(b.length);
    this.p.mem.write(a, b);
    const r = this.p.ioctl(fd, req, a);
    return [r < 0 ? -this.p.errno : r, this.p.mem.read(a, b.length)];
  }
  private exists(path: string): boolean {
    return path !== '' && this.p.stat(path) !== null;
  }
  private note(m: string): void {
    this.c.errors.push(m);
  }

  /** an argsz info ioctl, grown to what the kernel asks for */
  private info(fd: number, req: number, minsz: number, index: number): [Uint8Array | null, number] {
    let sz = minsz;
    for (let tries = 0; tries < 4; tries++) {
      const b = new Uint8Array(sz);
      put(b, 0, 4, sz);
      if (index >= 0) put(b, 8, 4, index);
      const [r, out] = this.call(fd, req, b);
      if (r < 0) return [null, -r];
      const need = u32(out, 0);
      if (need > sz && need <= 1 << 20) {
        sz = need;
        continue;
      }
      return [out, 0];
    }
    return [null, EOVERFLOW];
  }

  private deviceFd(dev: number): void {
    const c = this.c;
    const [info, err] = this.info(dev, U.VFIO_DEVICE_GET_INFO, 24, -1);
    c.info = info;
    c.infoErr = err;
    if (!info) {
      this.note(`VFIO_DEVICE_GET_INFO: ${errnoName(err)}`);
      return;
    }
    const nreg = u32(info, 8),
      nirq = u32(info, 12);
    const nregions = Math.min(nreg + 1, 32);
    for (let i = 0; i < nregions; i++) {
      const [b, e] = this.info(dev, U.VFIO_DEVICE_GET_REGION_INFO, 32, i);
      c.regions.push(
        b
          ? { err: 0, flags: u32(b, 4), capOffset: u32(b, 12), size: u64(b, 16), offset: u64(b, 24), buf: b }
          : { err: e, flags: 0, capOffset: 0, size: 0n, offset: 0n, buf: null },
      );
    }
    const nirqs = Math.min(nirq + 1, 32);
    for (let i = 0; i < nirqs; i++) {
      const [b, e] = this.info(dev, U.VFIO_DEVICE_GET_IRQ_INFO, 16, i);
      c.irqs.push(b ? { err: 0, flags: u32(b, 4), count: u32(b, 12) } : { err: e, flags: 0, count: 0 });
    }
    const cfgReg = c.regions[7];
    if (nreg > 7 && cfgReg?.buf) {
      const size = Number(cfgReg.size > 4096n ? 4096n : cfgReg.size);
      const cfg = new Uint8Array(size);
      const a = this.alloc(4);
      for (let o = 0; o < size; o += 4) {
        if (this.p.pread(dev, a, 4, cfgReg.offset + BigInt(o)) !== 4) {
          cfg.fill(0xff, o, o + 4);
          c.cfgErrs++;
        } else cfg.set(this.p.mem.read(a, 4), o);
      }
      c.cfg = cfg;
    }
  }

  private hotResetInfo(dev: number): [Uint8Array | null, number] {
    let sz = 12;
    for (let tries = 0; tries < 4; tries++) {
      const b = new Uint8Array(sz);
      put(b, 0, 4, sz);
      const [r, out] = this.call(dev, U.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, b);
      if (r === -ENOSPC) {
        sz = 12 + 8 * u32(out, 8);
        continue;
      }
      if (r < 0) return [null, -r];
      return [out, 0];
    }
    return [null, EOVERFLOW];
  }

  private iovaRanges(ifd: number, ioas: number): { ranges: Uint8Array; n: number; align: bigint } | number {
    const a = new Uint8Array(32);
    put(a, 0, 4, 32);
    put(a, 4, 4, ioas);
    const [r, out] = this.call(ifd, U.IOMMU_IOAS_IOVA_RANGES, a);
    if (r < 0 && r !== -EMSGSIZE) return -r;
    const num = u32(out, 8);
    const ra = this.alloc(16 * Math.max(num, 1));
    put(out, 8, 4, num);
    put(out, 16, 8, ra);
    const [r2, out2] = this.call(ifd, U.IOMMU_IOAS_IOVA_RANGES, out);
    if (r2 < 0) return -r2;
    const n = u32(out2, 8);
    return { ranges: this.p.mem.read(ra, 16 * Math.max(num, 1)), n, align: u64(out2, 24) };
  }

  cdevPath(): boolean {
    const c = this.c;
    const p = this.p;
    if (!this.exists(this.cdev) || !this.exists('/dev/iommu')) return false;
    const dev = p.open(this.cdev, O_RDWR | O_CLOEXEC);
    if (dev < 0) {
      this.note(`open ${this.cdev}: ${p.errnoName}`);
      return false;
    }
    const ifd = p.open('/dev/iommu', O_RDWR | O_CLOEXEC);
    if (ifd < 0) {
      this.note(`open /dev/iommu: ${p.errnoName}`);
      p.close(dev);
      return false;
    }
    const bind = new Uint8Array(24);
    put(bind, 0, 4, 24);
    put(bind, 8, 4, ifd);
    const [r, bo] = this.call(dev, U.VFIO_DEVICE_BIND_IOMMUFD, bind);
    if (r < 0) {
      this.note(`VFIO_DEVICE_BIND_IOMMUFD: ${errnoName(-r)}`);
      p.close(dev);
      p.close(ifd);
      return false;
    }
    const devid = u32(bo, 12);
    c.via = 'cdev';
    const alloc = new Uint8Array(12);
    put(alloc, 0, 4, 12);
    const [ra, ao] = this.call(ifd, U.IOMMU_IOAS_ALLOC, alloc);
    if (ra < 0) c.ifdErr = -ra;
    else {
      const ioas = u32(ao, 8);
      const r0 = this.iovaRanges(ifd, ioas);
      if (typeof r0 === 'number') c.ifdErr = r0;
      else [c.rng0, c.nrng0] = [r0.ranges, r0.n];
      const at = new Uint8Array(16);
      put(at, 0, 4, 16);
      put(at, 8, 4, ioas);
      const [rat] = this.call(dev, U.VFIO_DEVICE_ATTACH_IOMMUFD_PT, at);
      if (rat < 0) c.ifdErr = -rat;
      else {
        const r1 = this.iovaRanges(ifd, ioas);
        if (typeof r1 === 'number') c.ifdErr = r1;
        else [c.rng1, c.nrng1, c.align1] = [r1.ranges, r1.n, r1.align];
      }
    }
    const hw = new Uint8Array(40);
    const data = this.alloc(512);
    put(hw, 0, 4, 40);
    put(hw, 8, 4, devid);
    put(hw, 12, 4, 512);
    put(hw, 16, 8, data);
    const [rh, ho] = this.call(ifd, U.IOMMU_GET_HW_INFO, hw);
    if (rh < 0) c.hwErr = -rh;
    else {
      c.hwLen = Math.min(u32(ho, 12), 512);
      c.hwType = u32(ho, 24);
      c.hwPasid = ho[28]!;
      c.hwCaps = u64(ho, 32);
      c.hwData = p.mem.read(data, 512);
    }
    this.deviceFd(dev);
    [c.hr, c.hrErr] = this.hotResetInfo(dev);
    p.close(dev);
    p.close(ifd);
    return true;
  }

  groupPath(wantDevice: boolean): void {
    const c = this.c;
    const p = this.p;
    if (!this.groupdev || !this.exists('/dev/vfio/vfio')) return;
    const g = p.open(this.groupdev, O_RDWR | O_CLOEXEC);
    if (g < 0) {
      c.t1Err = c.hrgErr = p.errno;
      this.note(`open ${this.groupdev}: ${p.errnoName}`);
      return;
    }
    const ct = p.open('/dev/vfio/vfio', O_RDWR | O_CLOEXEC);
    if (ct < 0) {
      c.t1Err = c.hrgErr = p.errno;
      p.close(g);
      return;
    }
    const fdb = new Uint8Array(4);
    put(fdb, 0, 4, ct);
    let [r] = this.call(g, U.VFIO_GROUP_SET_CONTAINER, fdb);
    let type = 0;
    if (r === 0) {
      const has = (t: number) => p.ioctl(ct, U.VFIO_CHECK_EXTENSION, t) > 0;
      type = has(3) ? 3 : has(1) ? 1 : has(8) ? 8 : 0;
      if (type) {
        const x = p.ioctl(ct, U.VFIO_SET_IOMMU, type);
        r = x < 0 ? -p.errno : x;
      } else r = -ENODEV;
    }
    if (r < 0) {
      c.t1Err = c.hrgErr = -r;
      this.note(`group ${this.groupdev}: SET_CONTAINER/SET_IOMMU: ${errnoName(-r)}`);
      p.close(g);
      p.close(ct);
      return;
    }
    c.t1Iommu = type;
    c.t1Cc = p.ioctl(ct, U.VFIO_CHECK_EXTENSION, 4);
    if (type !== 8) [c.t1, c.t1Err] = this.info(ct, U.VFIO_IOMMU_GET_INFO, 24, -1);
    const dev = p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, this.strArg(this.bdf));
    if (dev < 0) {
      c.hrgErr = p.errno;
      this.note(`VFIO_GROUP_GET_DEVICE_FD ${this.bdf}: ${p.errnoName}`);
    } else {
      if (wantDevice) {
        c.via = 'group';
        this.deviceFd(dev);
      }
      [c.hrg, c.hrgErr] = this.hotResetInfo(dev);
      p.close(dev);
    }
    p.close(g);
    p.close(ct);
  }

  private strArg(s: string): number {
    const b = new TextEncoder().encode(s + '\0');
    const a = this.alloc(b.length);
    this.p.mem.write(a, b);
    return a;
  }

  free(): void {
    for (const [a, n] of this.allocs) this.p.mem.free(a, n);
    this.allocs.length = 0;
  }
}

function hotReset(b: Uint8Array | null, err: number, groupForm: boolean): Obj | undefined {
  if (!b) return err ? { errno: errnoName(err) } : undefined;
  const flags = u32(b, 4),
    count = u32(b, 8);
  const devices: Obj[] = [];
  for (let i = 0; i < count && 12 + 8 * (i + 1) <= b.length; i++) {
    const d = b.subarray(12 + 8 * i);
    const bdf = `${u16(d, 4).toString(16).padStart(4, '0')}:${d[6]!.toString(16).padStart(2, '0')}:${(d[7]! >> 3).toString(16).padStart(2, '0')}.${d[7]! & 7}`;
    const key = groupForm ? 'group' : flags & 1 ? 'devid' : 'group';
    devices.push({ bdf, [key]: u32(d, 0) | 0 });
  }
  return { flags, devices };
}

function type1Ranges(b: Uint8Array): Obj[] {
  const out: Obj[] = [];
  let off = u32(b, 16);
  for (let guard = 0; off >= 24 && off + 8 <= b.length && guard < 16; guard++) {
    const id = u16(b, off),
      next = u32(b, off + 4);
    if (id === 1 && off + 16 <= b.length) {
      const nr = u32(b, off + 8);
      for (let i = 0; i < nr && off + 16 + 16 * (i + 1) <= b.length; i++) out.push({ start: hx(u64(b, off + 16 + 16 * i)), end: hx(u64(b, off + 24 + 16 * i)) });
    }
    if (!next || next <= off) break;
    off = next;
  }
  return out;
}

function ifdRanges(r: Uint8Array, n: number): Obj[] {
  const out: Obj[] = [];
  for (let i = 0; i < n; i++) out.push({ start: hx(u64(r, 16 * i)), last: hx(u64(r, 16 * i + 8)) });
  return out;
}

/** The function's section (without vfio_index, reset_method, config_raw), in the recording's shape. */
function emit(c: Captured): Obj {
  const o: Obj = {};
  if (!c.via) {
    if (c.errors.length) o.errors = c.errors.join('\n');
    return o;
  }
  o.via = c.via;
  if (c.cfg) o.config = configRows(c.cfg);
  if (c.cfgErrs) o.config_errors = c.cfgErrs;
  if (c.info) {
    o.device_info = { flags: u32(c.info, 4), num_regions: u32(c.info, 8), num_irqs: u32(c.info, 12), cap_offset: u32(c.info, 16), caps: hex(c.info.subarray(24)) };
  }
  if (c.regions.length)
    o.regions = c.regions.map((r, index) =>
      r.buf
        ? { index, flags: r.flags, size: hx(r.size), offset: hx(r.offset), cap_offset: r.flags & 8 ? r.capOffset : 0, caps: hex(r.buf.subarray(32)) }
        : { index, errno: errnoName(r.err) },
    );
  if (c.irqs.length) o.irqs = c.irqs.map((q, index) => (q.err ? { index, errno: errnoName(q.err) } : { index, flags: q.flags, count: q.count }));
  const hr = hotReset(c.hr, c.hrErr, false);
  if (hr) o.hot_reset = hr;
  const hrg = hotReset(c.hrg, c.hrgErr, true);
  if (hrg) o.hot_reset_group = hrg;
  if (c.t1)
    o.type1 = {
      iommu: c.t1Iommu,
      dma_cc: c.t1Cc,
      flags: u32(c.t1, 4),
      iova_pgsizes: hx(u64(c.t1, 8)),
      cap_offset: u32(c.t1, 16),
      caps: hex(c.t1.subarray(24)),
      iova_ranges: type1Ranges(c.t1),
    };
  else if (c.t1Err) o.type1 = { errno: errnoName(c.t1Err) };
  if (c.rng0 || c.rng1 || c.ifdErr) {
    const i: Obj = {};
    if (c.rng0) i.iova_ranges_unattached = ifdRanges(c.rng0, c.nrng0);
    if (c.rng1) {
      i.iova_ranges = ifdRanges(c.rng1, c.nrng1);
      i.iova_alignment = hx(c.align1);
    }
    if (c.ifdErr) i.errno = errnoName(c.ifdErr);
    i.hw_info = c.hwErr
      ? { errno: errnoName(c.hwErr) }
      : { type: c.hwType, capabilities: hx(c.hwCaps), max_pasid_log2: c.hwPasid, data: hex(c.hwData.subarray(0, c.hwLen)) };
    o.iommufd = i;
  }
  if (c.errors.length) o.errors = c.errors.join('\n');
  return o;
}

export interface CaptureTarget {
  bdf: string;
  cdev: string;
  groupdev: string;
}

/**
 * Capture the functions as the recorder does (in the given order, vfio index order), each in a
 * fresh process, and return each function's section keyed by BDF.
 */
export function captureFunctions(host: Host, targets: CaptureTarget[]): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const t of targets) {
    const p = new Process(host, { name: 'vfiosim-record' });
    const cap = new Capturer(p, t.bdf, t.cdev, t.groupdev);
    const viaCdev = cap.cdevPath();
    cap.groupPath(!viaCdev);
    cap.free();
    for (const fd of p.fds()) if (fd > 2) p.close(fd);
    p.exit(0);
    out.set(t.bdf, emit(cap.c));
  }
  return out;
}
