// drivers/char/mem.c: /dev/null and /dev/zero (major 1), which every process's stdio uses.

import { DeviceClass, KDevice, cdevDeviceAdd } from './device.js';
import { currentMm } from './current.js';
import { EFAULT } from './errno.js';
import { File, FileOperations, Pos } from './fs/file.js';
import { Kernel } from './kernel.js';
import { KGen } from './sched.js';
import { copyToUser } from './uaccess.js';

const memClass: DeviceClass = { name: 'mem', devnode: (d) => ({ name: d.name, mode: 0o666 }) };

const nullFops: FileOperations = {
  name: 'null_fops',
  *read(): KGen<number> {
    return 0;
  },
  *write(_f: File, _buf: number, count: number): KGen<number> {
    return count;
  },
  *llseek(): KGen<number> {
    return 0;
  },
};

const zeroFops: FileOperations = {
  name: 'zero_fops',
  *read(_f: File, buf: number, count: number, _pos: Pos): KGen<number> {
    return copyToUser(currentMm(), buf, new Uint8Array(count)) < 0 ? -EFAULT : count;
  },
  *write(_f: File, _buf: number, count: number): KGen<number> {
    return count;
  },
  *llseek(): KGen<number> {
    return 0;
  },
};

/** chr_dev_init: the "mem" region and its nodes. */
export function memDevicesInit(k: Kernel): void {
  k.chrdevs.registerRegion('mem', 1, 0, 256);
  for (const [name, minor, fops] of [
    ['null', 3, nullFops],
    ['zero', 5, zeroFops],
  ] as const) {
    const dev = new KDevice(name, { cls: memClass, devt: { major: 1, minor } });
    cdevDeviceAdd(k, { devt: dev.devt!, count: 1, fops, owner: null }, dev);
  }
}
