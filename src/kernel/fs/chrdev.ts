// The char-device registry (fs/char_dev.c) and misc devices (drivers/char/misc.c).

import { ENXIO } from '../errno.js';
import { KGen } from '../sched.js';
import { DevT, File, FileOperations, Inode, devKey } from './file.js';

/** struct cdev: a range of minors served by one file_operations. `owner` is the containing object. */
export interface Cdev {
  devt: DevT;
  count: number;
  fops: FileOperations;
  owner: unknown;
  /**
   * cdev_get/cdev_put: an open file pins the object that contains the cdev. cdev_get is
   * kobject_get_unless_zero: false when the object is already going away (the open is ENXIO).
   */
  get?(): KGen<void | boolean>;
  put?(): KGen<void>;
}

interface Region {
  name: string;
  major: number;
  baseminor: number;
  count: number;
}

export class Chrdevs {
  private readonly regions: Region[] = [];
  private readonly cdevs = new Map<string, Cdev>();
  private readonly byMajor = new Map<number, Cdev[]>();

  /**
   * alloc_chrdev_region: a dynamic major, the highest free in 254..234 then 511..384
   * (fs/char_dev.c: find_dynamic_major), unless the host pins one for this name.
   */
  allocRegion(name: string, count: number, pinned?: number): number {
    let major = pinned;
    if (major === undefined) {
      const used = new Set(this.regions.map((r) => r.major));
      for (let m = 254; m >= 234 && major === undefined; m--) if (!used.has(m)) major = m;
      for (let m = 511; m >= 384 && major === undefined; m--) if (!used.has(m)) major = m;
      if (major === undefined) throw new Error('no free dynamic char major');
    }
    this.regions.push({ name, major, baseminor: 0, count });
    return major;
  }

  registerRegion(name: string, major: number, baseminor: number, count: number): void {
    this.regions.push({ name, major, baseminor, count });
  }

  /** cdev_add */
  add(c: Cdev): void {
    for (let i = 0; i < c.count; i++) {
      this.cdevs.set(devKey({ major: c.devt.major, minor: c.devt.minor + i }), c);
    }
    let l = this.byMajor.get(c.devt.major);
    if (!l) this.byMajor.set(c.devt.major, (l = []));
    l.push(c);
  }

  /** cdev_del */
  del(c: Cdev): void {
    for (let i = 0; i < c.count; i++) {
      const k = devKey({ major: c.devt.major, minor: c.devt.minor + i });
      if (this.cdevs.get(k) === c) this.cdevs.delete(k);
    }
    const l = this.byMajor.get(c.devt.major);
    if (l) {
      const i = l.indexOf(c);
      if (i >= 0) l.splice(i, 1);
    }
  }

  lookup(d: DevT): Cdev | undefined {
    return this.cdevs.get(devKey(d));
  }

  /** /proc/devices, character part */
  procDevices(): string {
    const seen = new Map<number, string>();
    for (const r of this.regions) if (!seen.has(r.major)) seen.set(r.major, r.name);
    const lines = [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([m, n]) => `${String(m).padStart(3)} ${n}`);
    return `Character devices:\n${lines.join('\n')}\n`;
  }
}

/** chrdev_open: find the cdev for the inode's device number and hand over to its fops. */
export function* chrdevOpen(chrdevs: Chrdevs, inode: Inode, file: File): KGen<number> {
  const c = inode.rdev ? chrdevs.lookup(inode.rdev) : undefined;
  if (!c) return -ENXIO;
  if (c.get && (yield* c.get()) === false) return -ENXIO;
  inode.cdev = c;
  file.fOp = c.fops;
  file.cdev = c;
  if (c.fops.open) {
    const r = yield* c.fops.open(inode, file);
    if (r < 0) {
      file.cdev = null;
      if (c.put) yield* c.put();
    }
    return r;
  }
  return 0;
}

export const MISC_MAJOR = 10;
