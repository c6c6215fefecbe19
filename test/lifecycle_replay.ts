// The 47 steps of the oracle's examples/lifecycle.c, through the in-process API, printed in the
// same format (one line per syscall, "#" lines for returned data) so the output diffs directly
// against the real kernel's.

import { Host, Process, uapi } from '../src/api/index.js';
import { errnoName } from '../src/kernel/errno.js';

const U = uapi;

export function lifecycleReplay(host: Host, cdev: string, group: string, bdf: string): string {
  const p = new Process(host, { name: 'lifecycle' });
  const out: string[] = [];
  let step = 0;
  const call = (what: string, ret: number): number => {
    step++;
    const n = String(step).padStart(2);
    out.push(ret < 0 ? `${n} ${what.padEnd(64)} = ${ret} ${errnoName(p.errno)}` : `${n} ${what.padEnd(64)} = ${ret}`);
    return ret;
  };
  const note = (s: string) => out.push(`   # ${s}`);
  const getInfo = (fd: number, what: string) => {
    const a = p.mem.struct(U.vfio_device_info, { argsz: U.vfio_device_info.size });
    const r = call(what, p.ioctl(fd, U.VFIO_DEVICE_GET_INFO, a));
    if (r === 0) {
      const i = p.mem.readStruct(U.vfio_device_info, a);
      note(`flags=0x${(i.flags as number).toString(16)} num_regions=${i.num_regions} num_irqs=${i.num_irqs}`);
    }
  };
  const bind = (dev: number, iommufd: number, what: string) => {
    const a = p.mem.struct(U.vfio_device_bind_iommufd, { argsz: U.vfio_device_bind_iommufd.size, flags: 0, iommufd });
    const r = call(what, p.ioctl(dev, U.VFIO_DEVICE_BIND_IOMMUFD, a));
    if (r === 0) note(`out_devid=${p.mem.readStruct(U.vfio_device_bind_iommufd, a).out_devid}`);
  };
  const status = (gfd: number, what: string) => {
    const a = p.mem.struct(U.vfio_group_status, { argsz: U.vfio_group_status.size });
    const r = call(what, p.ioctl(gfd, U.VFIO_GROUP_GET_STATUS, a));
    if (r === 0) {
      const f = p.mem.readStruct(U.vfio_group_status, a).flags as number;
      note(
        `flags=0x${f.toString(16)} (${f & U.VFIO_GROUP_FLAGS_VIABLE ? 'VIABLE' : 'not-viable'}${f & U.VFIO_GROUP_FLAGS_CONTAINER_SET ? '|CONTAINER_SET' : ''})`,
      );
    }
  };
  const O_RDWR = 2;
  const bdfPtr = p.mem.cstring(bdf);

  note('part 1: cdev / iommufd path');
  const dev1 = call('dev1 = open(cdev, O_RDWR)', p.open(cdev, O_RDWR));
  getInfo(dev1, 'ioctl(dev1, VFIO_DEVICE_GET_INFO)  [before bind]');
  let iommufd = call('iommufd = open(/dev/iommu, O_RDWR)', p.open('/dev/iommu', O_RDWR));
  bind(dev1, iommufd, 'ioctl(dev1, VFIO_DEVICE_BIND_IOMMUFD, iommufd)');
  getInfo(dev1, 'ioctl(dev1, VFIO_DEVICE_GET_INFO)  [after bind]');
  bind(dev1, iommufd, 'ioctl(dev1, VFIO_DEVICE_BIND_IOMMUFD, iommufd)  [again]');
  const dev2 = call('dev2 = open(cdev, O_RDWR)  [second fd, dev1 bound]', p.open(cdev, O_RDWR));
  bind(dev2, iommufd, 'ioctl(dev2, VFIO_DEVICE_BIND_IOMMUFD, iommufd)');
  const iommufd2 = call('iommufd2 = open(/dev/iommu, O_RDWR)', p.open('/dev/iommu', O_RDWR));
  bind(dev2, iommufd2, 'ioctl(dev2, VFIO_DEVICE_BIND_IOMMUFD, iommufd2)');
  getInfo(dev2, 'ioctl(dev2, VFIO_DEVICE_GET_INFO)  [dev2 unbound]');
  const gfd = call('gfd = open(group, O_RDWR)  [cdev bound]', p.open(group, O_RDWR));
  if (gfd >= 0) call('close(gfd)', p.close(gfd));
  call('close(dev2)', p.close(dev2));
  call('close(dev1)', p.close(dev1));
  call('close(iommufd2)', p.close(iommufd2));
  call('close(iommufd)', p.close(iommufd));

  note('part 2: group / container path');
  const g1 = call('g1 = open(group, O_RDWR)', p.open(group, O_RDWR));
  const g2 = call('g2 = open(group, O_RDWR)  [second open]', p.open(group, O_RDWR));
  if (g2 >= 0) call('close(g2)', p.close(g2));
  status(g1, 'ioctl(g1, VFIO_GROUP_GET_STATUS)');
  const container = call('container = open(/dev/vfio/vfio, O_RDWR)', p.open('/dev/vfio/vfio', O_RDWR));
  call('ioctl(container, VFIO_GET_API_VERSION)', p.ioctl(container, U.VFIO_GET_API_VERSION));
  call('ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU)', p.ioctl(container, U.VFIO_CHECK_EXTENSION, U.VFIO_TYPE1_IOMMU));
  call('ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)', p.ioctl(container, U.VFIO_CHECK_EXTENSION, U.VFIO_TYPE1v2_IOMMU));
  call('ioctl(g1, VFIO_GROUP_GET_DEVICE_FD, bdf)  [no container]', p.ioctl(g1, U.VFIO_GROUP_GET_DEVICE_FD, bdfPtr));
  call('ioctl(g1, VFIO_GROUP_SET_CONTAINER, container)', p.ioctl(g1, U.VFIO_GROUP_SET_CONTAINER, p.mem.s32At(container)));
  call('ioctl(g1, VFIO_GROUP_GET_DEVICE_FD, bdf)  [no iommu set]', p.ioctl(g1, U.VFIO_GROUP_GET_DEVICE_FD, bdfPtr));
  call('ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)', p.ioctl(container, U.VFIO_SET_IOMMU, U.VFIO_TYPE1_IOMMU));
  status(g1, 'ioctl(g1, VFIO_GROUP_GET_STATUS)');
  const d1 = call('d1 = ioctl(g1, VFIO_GROUP_GET_DEVICE_FD, bdf)', p.ioctl(g1, U.VFIO_GROUP_GET_DEVICE_FD, bdfPtr));
  const d2 = call('d2 = ioctl(g1, VFIO_GROUP_GET_DEVICE_FD, bdf)  [again]', p.ioctl(g1, U.VFIO_GROUP_GET_DEVICE_FD, bdfPtr));
  getInfo(d2, 'ioctl(d2, VFIO_DEVICE_GET_INFO)');
  iommufd = call('iommufd = open(/dev/iommu, O_RDWR)', p.open('/dev/iommu', O_RDWR));
  const cd = call('cd = open(cdev, O_RDWR)  [group device fds open]', p.open(cdev, O_RDWR));
  bind(cd, iommufd, 'ioctl(cd, VFIO_DEVICE_BIND_IOMMUFD, iommufd)');
  bind(d1, iommufd, 'ioctl(d1, VFIO_DEVICE_BIND_IOMMUFD, iommufd)  [group-path fd]');
  if (cd >= 0) call('close(cd)', p.close(cd));
  call('close(iommufd)', p.close(iommufd));
  call('close(g1)  [device fds still open]', p.close(g1));
  getInfo(d1, 'ioctl(d1, VFIO_DEVICE_GET_INFO)  [group fd closed]');
  let g3 = call('g3 = open(group, O_RDWR)  [d1, d2 open]', p.open(group, O_RDWR));
  if (g3 >= 0) call('close(g3)', p.close(g3));
  call('close(d1)', p.close(d1));
  g3 = call('g3 = open(group, O_RDWR)  [d2 open]', p.open(group, O_RDWR));
  if (g3 >= 0) call('close(g3)', p.close(g3));
  call('close(d2)', p.close(d2));
  g3 = call('g3 = open(group, O_RDWR)  [no device fd open]', p.open(group, O_RDWR));
  if (g3 >= 0) {
    status(g3, 'ioctl(g3, VFIO_GROUP_GET_STATUS)');
    call('close(g3)', p.close(g3));
  }
  call('close(container)', p.close(container));
  p.exit(0);
  return out.join('\n') + '\n';
}
