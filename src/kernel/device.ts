// A minimal driver core (drivers/base/core.c, class.c, devtmpfs.c) and misc devices
// (drivers/char/misc.c): devices appear in sysfs with their attributes and links, and devices
// with a device number get a devtmpfs node and a /sys/dev/char link.

import { Cdev, MISC_MAJOR } from './fs/chrdev.js';
import { DevT, File, FileOperations, Inode } from './fs/file.js';
import { AttrOps, ChrNode } from './fs/vfs.js';
import { Kernel } from './kernel.js';
import { KGen } from './sched.js';

export interface DeviceClass {
  name: string;
  /** devnode callback: the path under /dev and the node mode */
  devnode?(dev: KDevice): { name: string; mode?: number };
}

export class KDevice {
  parent: KDevice | null;
  cls: DeviceClass | null;
  devt: DevT | null = null;
  /** sysfs directory, known once added (or set by the bus for bus devices) */
  sysfsPath: string | null = null;
  readonly attrs = new Map<string, { ops: AttrOps; mode?: number }>();
  added = false;
  devnode: string | null = null;
  constructor(
    public name: string,
    opts: { parent?: KDevice | null; cls?: DeviceClass | null; devt?: DevT | null } = {},
  ) {
    this.parent = opts.parent ?? null;
    this.cls = opts.cls ?? null;
    this.devt = opts.devt ?? null;
  }
}

export function classDir(cls: DeviceClass): string {
  return `/sys/class/${cls.name}`;
}

/** device_add: sysfs directory, attributes, class and dev links, devtmpfs node. */
export function deviceAdd(k: Kernel, dev: KDevice): void {
  if (dev.added) throw new Error(`device_add: ${dev.name} already added`);
  let path: string;
  if (dev.sysfsPath) path = dev.sysfsPath;
  else if (dev.parent) {
    const pp = dev.parent.sysfsPath;
    if (!pp) throw new Error(`device_add: parent of ${dev.name} not in sysfs`);
    path = dev.cls && !dev.parent.cls ? `${pp}/${dev.cls.name}/${dev.name}` : `${pp}/${dev.name}`;
  } else if (dev.cls) path = `/sys/devices/virtual/${dev.cls.name}/${dev.name}`;
  else path = `/sys/devices/${dev.name}`;
  if (k.vfs.exists(path)) throw new Error(`sysfs: cannot create duplicate filename '${path}'`);
  k.vfs.mkdirp(path, k.sysFs);
  dev.sysfsPath = path;
  const v = k.vfs;
  v.mkdirp(`${path}/power`, k.sysFs);
  if (dev.cls) {
    v.mkdirp(classDir(dev.cls), k.sysFs);
    v.addRelLink(`${path}/subsystem`, classDir(dev.cls));
    // device_add_class_symlinks (drivers/base/core.c): a class device with a parent links to it
    if (dev.parent?.sysfsPath) v.addRelLink(`${path}/device`, dev.parent.sysfsPath);
    v.addRelLink(`${classDir(dev.cls)}/${dev.name}`, path);
  }
  let devname: string | null = null;
  let mode = 0o600;
  if (dev.devt) {
    const d = dev.devt;
    if (dev.cls?.devnode) {
      const r = dev.cls.devnode(dev);
      devname = r.name;
      if (r.mode !== undefined) mode = r.mode;
    } else devname = dev.name;
    v.addAttr(`${path}/dev`, { show: () => `${d.major}:${d.minor}\n` }, 0o444);
    v.mkdirp('/sys/dev/char', k.sysFs);
    v.addRelLink(`/sys/dev/char/${d.major}:${d.minor}`, path);
  }
  v.addAttr(
    `${path}/uevent`,
    {
      show: () =>
        dev.devt
          ? `MAJOR=${dev.devt.major}\nMINOR=${dev.devt.minor}\nDEVNAME=${devname}\n`
          : '',
      *store(s: string): KGen<number> {
        return s.length;
      },
    },
    0o644,
  );
  for (const [name, a] of dev.attrs) v.addAttr(`${path}/${name}`, a.ops, a.mode);
  if (dev.devt && devname) {
    // devtmpfs_create_node
    const full = `/dev/${devname}`;
    const parts = full.split('/');
    parts.pop();
    k.vfs.mkdirp(parts.join('/'), k.devFs);
    k.vfs.addNode(full, (n, fs) => new ChrNode(n, dev.devt!, mode, fs));
    dev.devnode = full;
  }
  dev.added = true;
}

/** device_del: everything device_add created disappears. */
export function deviceDel(k: Kernel, dev: KDevice): void {
  if (!dev.added || !dev.sysfsPath) return;
  const v = k.vfs;
  if (dev.devnode) {
    v.remove(dev.devnode);
    dev.devnode = null;
  }
  if (dev.devt) v.remove(`/sys/dev/char/${dev.devt.major}:${dev.devt.minor}`);
  if (dev.cls) v.remove(`${classDir(dev.cls)}/${dev.name}`);
  v.remove(dev.sysfsPath);
  // an emptied class glue directory goes too (kobject cleanup of the "vfio-dev" glue dir)
  if (dev.parent && dev.cls && !dev.parent.cls) {
    const glue = `${dev.parent.sysfsPath}/${dev.cls.name}`;
    const n = v.lookupNoFollow(glue);
    if (n && n.type === 'dir' && (n as unknown as { children: Map<string, unknown> }).children.size === 0) v.remove(glue);
  }
  dev.added = false;
}

/** cdev_device_add: make the cdev live, then add the device (node appears). */
export function cdevDeviceAdd(k: Kernel, cdev: Cdev, dev: KDevice): void {
  if (dev.devt) k.chrdevs.add(cdev);
  deviceAdd(k, dev);
}

/** cdev_device_del: remove the device (node disappears), then the cdev. */
export function cdevDeviceDel(k: Kernel, cdev: Cdev, dev: KDevice): void {
  deviceDel(k, dev);
  if (dev.devt) k.chrdevs.del(cdev);
}

// ---- misc devices ------------------------------------------------------------------------------

export const miscClass: DeviceClass = {
  name: 'misc',
  devnode: (dev) => {
    const m = (dev as MiscDevice).misc;
    return { name: m.nodename ?? m.name, mode: m.mode ?? 0o600 };
  },
};

export interface MiscDeviceDef {
  name: string;
  minor: number;
  fops: FileOperations;
  nodename?: string;
  mode?: number;
}

class MiscDevice extends KDevice {
  constructor(readonly misc: MiscDeviceDef) {
    super(misc.name, { cls: miscClass, devt: { major: MISC_MAJOR, minor: misc.minor } });
  }
}

/**
 * misc_register: the file's private_data is the miscdevice when the driver's open runs
 * (drivers/char/misc.c: misc_open).
 */
export function miscRegister(k: Kernel, def: MiscDeviceDef): KDevice {
  const dev = new MiscDevice(def);
  const fops: FileOperations = {
    name: `misc:${def.name}`,
    *open(inode: Inode, file: File): KGen<number> {
      file.fOp = def.fops;
      file.privateData = def;
      if (def.fops.open) return yield* def.fops.open(inode, file);
      return 0;
    },
  };
  cdevDeviceAdd(k, { devt: dev.devt!, count: 1, fops, owner: def }, dev);
  return dev;
}
