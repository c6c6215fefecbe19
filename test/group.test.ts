// Rule 5 — the group file /dev/vfio/N (drivers/vfio/group.c). Expected values marked "oracle"
// were observed on the real kernel (shared/oracle, default topology, e1000e = group 6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Process } from '../src/api/index.js';
import {
  E1000E, GRP_EDU, GRP_TESTDEV, TESTDEV, U, boot, call, cdevPath, getDeviceFd, getInfo, groupPath, groupStatus,
  openViaContainer, openViaGroupIommufd, proc, setContainer, bind, yamlHost,
} from './helpers.js';

const VIABLE = U.VFIO_GROUP_FLAGS_VIABLE;
const CONTAINER_SET = U.VFIO_GROUP_FLAGS_CONTAINER_SET;

/** An unreadable page (PROT_NONE) in p's memory. */
function badPtr(p: Process): number {
  const a = p.mem.alloc(4096);
  p.mem.protect(a, 4096, 0);
  return a;
}

test('group: one opener at a time — a second open is EBUSY, the release frees the group for the next opener', () => {
  const h = boot();
  const p = proc(h);
  const first = call(p, () => p.open(groupPath(E1000E)));
  assert.deepEqual(first.events, ['group_open']);
  const second = call(p, () => p.open(groupPath(E1000E)));
  assert.deepEqual([second.ret, second.errno, second.events], [-1, 'EBUSY', []]); // oracle (lifecycle 18)
  // another process gets EBUSY too: the group is open, whoever holds it
  const q = proc(h);
  assert.deepEqual([q.open(groupPath(E1000E)), q.errnoName], [-1, 'EBUSY']);
  assert.deepEqual(call(p, () => p.close(first.ret)).events, ['group_release']);
  assert.ok(q.open(groupPath(E1000E)) >= 0);
});

test('group: GET_STATUS — VIABLE when idle, VIABLE|CONTAINER_SET after SET_CONTAINER; argsz and pointer checks', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(E1000E));
  assert.equal(groupStatus(p, g), VIABLE); // oracle flags=1
  const a4 = p.mem.struct(U.vfio_group_status, { argsz: 4 });
  assert.deepEqual([p.ioctl(g, U.VFIO_GROUP_GET_STATUS, a4), p.errnoName], [-1, 'EINVAL']); // oracle
  assert.deepEqual([p.ioctl(g, U.VFIO_GROUP_GET_STATUS, badPtr(p)), p.errnoName], [-1, 'EFAULT']); // oracle
  const c = p.open('/dev/vfio/vfio');
  assert.equal(setContainer(p, g, c), 0);
  assert.equal(groupStatus(p, g), VIABLE | CONTAINER_SET); // oracle flags=3
  // argsz is echoed unchanged, only flags is written
  const a = p.mem.struct(U.vfio_group_status, { argsz: 64 }, 64);
  assert.equal(p.ioctl(g, U.VFIO_GROUP_GET_STATUS, a), 0);
  assert.deepEqual(p.mem.readStruct(U.vfio_group_status, a), { argsz: 64, flags: 3 });
  // unknown group ioctl
  assert.deepEqual([p.ioctl(g, 0x3b99), p.errnoName], [-1, 'ENOTTY']); // oracle
});

test('group: SET_CONTAINER check order EFAULT → EBADF → EINVAL (already set) → EBADFD (wrong file type)', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(E1000E));
  const c = p.open('/dev/vfio/vfio');
  const io = p.open('/dev/iommu');
  const ev = p.eventfd();
  const dn = p.open('/dev/null');
  const sc = (fd: number) => {
    const r = call(p, () => setContainer(p, g, fd));
    return r.ret === -1 ? r.errno : r.ret;
  };
  assert.equal(rcOf(p, call(p, () => p.ioctl(g, U.VFIO_GROUP_SET_CONTAINER, badPtr(p)))), 'EFAULT'); // oracle
  assert.equal(sc(999), 'EBADF'); // oracle
  assert.equal(sc(-1), 'EBADF'); // oracle
  assert.equal(sc(ev), 'EBADFD'); // oracle: an eventfd
  assert.equal(sc(dn), 'EBADFD'); // oracle: /dev/null
  assert.equal(sc(g), 'EBADFD'); // oracle: the group itself
  const ok = call(p, () => setContainer(p, g, c));
  assert.deepEqual([ok.ret, ok.events], [0, ['container_attach_group', 'group_set_container']]);
  assert.equal(sc(c), 'EINVAL'); // oracle: already set
  assert.equal(sc(ev), 'EINVAL'); // oracle: "already set" wins over the file type
  assert.equal(sc(io), 'EINVAL'); // oracle
  assert.equal(sc(999), 'EBADF'); // oracle: the fd lookup comes before the group lock
});

function rcOf(_p: Process, r: { ret: number; errno: string | undefined }): string | number {
  return r.ret === -1 ? r.errno! : r.ret;
}

test('group: SET_CONTAINER on a dead group — EBADF first, then ENODEV whatever the file type', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(TESTDEV));
  assert.equal(h.unbind(TESTDEV.bdf).result, 0); // the group's only device goes: the group is dead
  assert.deepEqual(rcOf(p, call(p, () => setContainer(p, g, 999))), 'EBADF');
  const c = p.open('/dev/vfio/vfio');
  const r = call(p, () => setContainer(p, g, c));
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'ENODEV', []]);
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, p.eventfd()))), 'ENODEV'); // drivers/vfio/group.c: iommu_group NULL before the type check
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, p.open('/dev/iommu')))), 'ENODEV');
});

test('group: a dead group in iommufd mode — GET_STATUS ENODEV, SET_CONTAINER EINVAL, UNSET drops the iommufd once (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(TESTDEV));
  const io = p.open('/dev/iommu');
  assert.equal(setContainer(p, g, io), 0);
  const minor = p.fstat(g)!.rdevMinor;
  assert.equal(h.unbind(TESTDEV.bdf).result, 0);
  // spec 7.1 G-dead: group->iommufd is not cleared by the teardown
  assert.equal(rcOf(p, call(p, () => p.ioctl(g, U.VFIO_GROUP_GET_STATUS, p.mem.struct(U.vfio_group_status, { argsz: 8 })))), 'ENODEV'); // oracle
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, io))), 'EINVAL'); // oracle
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, p.open('/dev/vfio/vfio')))), 'EINVAL'); // oracle
  assert.equal(rcOf(p, call(p, () => getDeviceFd(p, g, TESTDEV.bdf))), 'ENODEV'); // oracle
  assert.equal(rcOf(p, call(p, () => p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER))), 0); // oracle
  assert.equal(rcOf(p, call(p, () => p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER))), 'EINVAL'); // oracle
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, p.open('/dev/vfio/vfio')))), 'ENODEV'); // oracle
  // rebinding creates a new group object; the dead one keeps its minor until its last fd closes
  assert.equal(h.bind(TESTDEV.bdf), 0);
  const g2 = p.open(groupPath(TESTDEV));
  assert.ok(g2 >= 0); // oracle: open new group = 6
  assert.notEqual(p.fstat(g2)!.rdevMinor, minor); // oracle: 249:4 vs the dead group's 249:3
  assert.equal(groupStatus(p, g2), VIABLE);
  assert.deepEqual(call(p, () => p.close(g)).events, ['group_release', 'vfio_group_free']);
});

test('group: SET_CONTAINER accepts a legacy container and an iommufd (compat IOAS created)', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(E1000E));
  const io = p.open('/dev/iommu');
  const r = call(p, () => setContainer(p, g, io));
  // iommufd_vfio_compat_ioas_create: a new IOAS becomes the compat IOAS; no DMA ownership yet
  assert.deepEqual([r.ret, r.events], [0, ['iommufd_compat_ioas', 'group_set_container']]);
  assert.equal(groupStatus(p, g), VIABLE | CONTAINER_SET);
  const v = p.mem.struct(U.iommu_vfio_ioas, { size: U.iommu_vfio_ioas.size, op: U.IOMMU_VFIO_IOAS_GET });
  assert.equal(p.ioctl(io, U.IOMMU_VFIO_IOAS, v), 0);
  assert.equal(p.mem.readStruct(U.iommu_vfio_ioas, v).ioas_id, 1);
  // a second group in the same context reuses the compat IOAS (the new allocation is aborted)
  const g2 = p.open(groupPath(TESTDEV));
  assert.deepEqual(call(p, () => setContainer(p, g2, io)).events, ['group_set_container']);
});

test('group: UNSET_CONTAINER — EINVAL when none set, EBUSY with devices open in container mode', () => {
  const h = boot();
  const p = proc(h);
  const g0 = p.open(groupPath(TESTDEV));
  const n = call(p, () => p.ioctl(g0, U.VFIO_GROUP_UNSET_CONTAINER));
  assert.deepEqual([n.ret, n.errno, n.events], [-1, 'EINVAL', []]); // oracle
  p.close(g0);
  const { g, dev } = openViaContainer(p, E1000E);
  const b = call(p, () => p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER));
  assert.deepEqual([b.ret, b.errno, b.events], [-1, 'EBUSY', []]); // oracle
  p.close(dev);
  const u = call(p, () => p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER));
  assert.deepEqual([u.ret, u.events], [0, ['container_backend_released', 'container_detach_group']]); // oracle: 0
  assert.equal(rcOf(p, call(p, () => p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER))), 'EINVAL'); // oracle
  assert.equal(groupStatus(p, g), VIABLE);
});

test('group: UNSET_CONTAINER in iommufd mode succeeds with devices open; the device stays bound and owns the group', () => {
  const h = boot();
  const p = proc(h);
  const { g, i, dev } = openViaGroupIommufd(p, E1000E);
  const u = call(p, () => p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER));
  assert.deepEqual([u.ret, u.events], [0, []]); // oracle: 0
  // the bound device keeps the IOMMU group DMA-owned by the context
  assert.equal(groupStatus(p, g), 0); // oracle: flags=0
  assert.equal(getInfo(p, dev).ret, 0);
  const c = p.open('/dev/vfio/vfio');
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, c))), 'EPERM'); // oracle
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, i))), 0); // oracle
});

test('group: GET_DEVICE_FD needs a container or an iommufd (EINVAL), and a backend (EINVAL); unknown names are ENODEV first', () => {
  const h = boot();
  const p = proc(h);
  const g = p.open(groupPath(E1000E));
  const r1 = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  assert.deepEqual([r1.ret, r1.errno, r1.events], [-1, 'EINVAL', ['registration_get', 'registration_put']]); // oracle
  assert.equal(rcOf(p, call(p, () => getDeviceFd(p, g, '0000:09:00.0'))), 'ENODEV'); // oracle
  const c = p.open('/dev/vfio/vfio');
  setContainer(p, g, c);
  const r2 = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  // vfio_group_use_container: SET_IOMMU not done yet
  assert.deepEqual([r2.ret, r2.errno, r2.events], [-1, 'EINVAL', ['registration_get', 'registration_put']]); // oracle
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1_IOMMU), 0);
  const ok = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  assert.deepEqual(ok.events, ['registration_get', 'group_file_get', 'pci_reset_function', 'open_device', 'access_granted']);
  assert.equal(p.fcntl(ok.ret, 1), 1); // O_CLOEXEC (oracle F_GETFD = 1)
  assert.equal(p.fcntl(ok.ret, 3), 2); // O_RDWR (oracle F_GETFL = 2)
  assert.equal(rcOf(p, call(p, () => p.lseek(ok.ret, 0, 0))), 'ESPIPE'); // oracle
});

test('group: GET_DEVICE_FD name parsing — " vf_token=<uuid>" and options, trailing garbage, NUL within 4096 bytes, EFAULT', () => {
  const h = boot();
  const p = proc(h);
  const { g, dev } = openViaContainer(p, E1000E);
  p.close(dev);
  const gdf = (name: string | number) => {
    const r = call(p, () => p.ioctl(g, U.VFIO_GROUP_GET_DEVICE_FD, typeof name === 'string' ? p.mem.cstring(name) : name));
    if (r.ret >= 0) p.close(r.ret);
    return r.ret >= 0 ? 'fd' : r.errno;
  };
  const uuid = '2f5e1a3c-8e1b-4c7d-9a2b-1f2e3d4c5b6a';
  assert.equal(gdf(`${E1000E.bdf} vf_token=${uuid}`), 'EINVAL'); // oracle: a token on a non-PF/VF
  assert.equal(gdf(`${E1000E.bdf}0`), 'ENODEV'); // oracle: "0000:01:00.00" — no space after the name: no match
  assert.equal(gdf(`${E1000E.bdf} foo`), 'EINVAL'); // oracle: unknown option
  assert.equal(gdf(`${E1000E.bdf} vf_token=1234`), 'EINVAL'); // oracle: short uuid
  assert.equal(gdf(`${E1000E.bdf} vf_token=${uuid.replace('a', 'z')}`), 'EINVAL'); // unparsable uuid
  assert.equal(gdf(`${E1000E.bdf} `), 'fd'); // oracle: a trailing space is accepted
  assert.equal(gdf(`${E1000E.bdf}  `), 'fd'); // oracle
  assert.equal(gdf(''), 'ENODEV'); // oracle
  assert.equal(gdf('0000:09:00.0'), 'ENODEV'); // oracle
  assert.equal(gdf(badPtr(p)), 'EFAULT'); // oracle
  // strndup_user(arg, PAGE_SIZE): no NUL in the first 4096 bytes → EINVAL; 4095 chars + NUL → ENODEV
  const m = p.mem.alloc(8192);
  p.mem.write(m, new Uint8Array(8192).fill(0x61));
  p.mem.write(m + 4096, new Uint8Array([0]));
  assert.equal(gdf(m), 'EINVAL'); // oracle
  p.mem.write(m + 4095, new Uint8Array([0]));
  assert.equal(gdf(m), 'ENODEV'); // oracle
  // a name running into an unmapped page without a NUL: EFAULT
  p.mem.free(m + 4096, 4096);
  p.mem.write(m + 4096 - 12, new TextEncoder().encode(E1000E.bdf));
  assert.equal(gdf(m + 4096 - 12), 'EFAULT'); // oracle
  // the failed matches left nothing open
  assert.equal(h.devices().find((d) => d.bdf === E1000E.bdf)!.vfio!.openCount, 0);
});

test('group: container mode — device fds keep the group file: re-open EBUSY until the last device fd closes, then the container is detached', () => {
  const h = boot();
  const p = proc(h);
  const { g, c, dev } = openViaContainer(p, E1000E);
  const d2 = getDeviceFd(p, g, E1000E.bdf);
  assert.deepEqual(call(p, () => p.close(g)).events, []); // lifecycle 38: nothing released yet
  assert.equal(getInfo(p, dev).ret, 0); // lifecycle 39
  assert.equal(rcOf(p, call(p, () => p.open(groupPath(E1000E)))), 'EBUSY'); // lifecycle 40
  assert.deepEqual(call(p, () => p.close(dev)).events, ['registration_put']);
  assert.equal(rcOf(p, call(p, () => p.open(groupPath(E1000E)))), 'EBUSY'); // lifecycle 42
  // the last device close drops the group-file reference: the group file is released and the
  // container detached (and its backend with its last group)
  const last = call(p, () => p.close(d2));
  assert.deepEqual(last.events, [
    'close_device', 'pci_reset_function', 'group_file_put', 'registration_put', 'container_backend_released',
    'container_detach_group', 'group_release',
  ]);
  const g3 = p.open(groupPath(E1000E)); // lifecycle 44
  assert.ok(g3 >= 0);
  assert.equal(groupStatus(p, g3), VIABLE); // lifecycle 45: the container is gone
  void c;
});

test('group: iommufd mode — device fds do not hold the group file: the group is re-openable, devices stay bound', () => {
  const h = boot();
  const p = proc(h);
  const { g, dev } = openViaGroupIommufd(p, E1000E);
  const cl = call(p, () => p.close(g));
  assert.deepEqual(cl.events, ['group_release']); // oracle: close(g) = 0
  const g2 = call(p, () => p.open(groupPath(E1000E)));
  assert.deepEqual([g2.ret >= 0, g2.events], [true, ['group_open']]); // oracle: reopen = 5
  assert.equal(getInfo(p, dev).ret, 0); // oracle: GET_INFO d2 = 0
  assert.equal(h.devices().find((d) => d.bdf === E1000E.bdf)!.vfio!.openCount, 1);
  // a cdev BIND cannot open the device while the group-path fd has it open
  p.close(g2.ret);
  const cd = p.open(cdevPath(E1000E));
  const io = p.open('/dev/iommu');
  assert.deepEqual([bind(p, cd, io), p.errnoName], [-1, 'EINVAL']); // spec 7.5: device open_count != 0
});

test('group: a group of two functions — one group fd opens both devices; the cdev of one blocks the group', () => {
  const h = boot();
  const p = proc(h);
  const { g } = openViaContainer(p, GRP_EDU);
  assert.ok(getDeviceFd(p, g, GRP_TESTDEV.bdf) >= 0);
  const cd = p.open(cdevPath(GRP_TESTDEV));
  const io = p.open('/dev/iommu');
  // vfio_device_block_group: the group is open → EBUSY
  assert.deepEqual([bind(p, cd, io), p.errnoName], [-1, 'EBUSY']);
});

// ---- noiommu ----------------------------------------------------------------------------------

const NOIOMMU_HOST = yamlHost(
  `  - { bdf: "0000:01:00.0", name: nio, id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: null, driver: vfio-pci, reset: [pm], bars: [ { size: 0x20000 } ] }
  - { bdf: "0000:00:05.0", name: td, id: "1b36:0005", class: 0x00ff00, iommu_group: 4, driver: vfio-pci, bars: [ { size: 0x1000 } ] }
`,
  'kernel: { noiommu: true }\n',
);

test('group: noiommu — /dev/vfio/noiommu-N, no cdev node, no vfio-dev dev attribute, a tainting fake group', () => {
  const h = boot(NOIOMMU_HOST);
  const p = proc(h);
  assert.deepEqual([...p.readdir('/dev/vfio')!].sort(), ['.', '..', '4', 'devices', 'noiommu-0', 'vfio']);
  assert.deepEqual(p.readdir('/dev/vfio/devices'), ['.', '..', 'vfio1']); // only the IOMMU-backed function
  const nio = h.devices().find((d) => d.name === 'nio')!;
  assert.deepEqual([nio.vfio!.index, nio.vfio!.cdev, nio.vfio!.groupNode], [0, null, '/dev/vfio/noiommu-0']);
  // drivers/vfio/vfio.h: vfio_device_add — noiommu: device_add without a cdev: no "dev" attribute
  assert.deepEqual([...p.readdir('/sys/bus/pci/devices/0000:01:00.0/vfio-dev/vfio0')!].sort(), ['.', '..', 'device', 'power', 'subsystem', 'uevent']);
  assert.equal(p.readFile('/sys/class/vfio-dev/vfio0/uevent'), '');
  assert.equal(p.readlink('/sys/bus/pci/devices/0000:01:00.0/iommu_group'), '../../../../kernel/iommu_groups/0');
  assert.equal(p.readFile('/sys/kernel/iommu_groups/0/name'), 'vfio-noiommu\n');
  assert.equal(p.readFile('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode'), 'Y\n');
  // without the module parameter the function cannot register (no IOMMU group → EINVAL)
  const off = boot(NOIOMMU_HOST.replace('noiommu: true', 'noiommu: false'));
  assert.equal(off.devices().find((d) => d.name === 'nio')!.driver, null);
  assert.equal(proc(off).stat('/dev/vfio/noiommu-0'), null);
});

test('group: noiommu — opening the group needs CAP_SYS_RAWIO (EPERM), after the VFS permission check (EACCES)', () => {
  const h = boot(NOIOMMU_HOST);
  const root = proc(h);
  const user = proc(h, { uid: 1000, caps: [] });
  // the node is root:root 0600: the VFS refuses first
  assert.deepEqual([user.open('/dev/vfio/noiommu-0'), user.errnoName], [-1, 'EACCES']);
  // chown 1000 /dev/vfio/noiommu-0 (as udev rules would): now VFIO's own check refuses
  h.kernel.vfs.lookupNoFollow('/dev/vfio/noiommu-0')!.uid = 1000;
  const r = call(user, () => user.open('/dev/vfio/noiommu-0'));
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'EPERM', []]); // drivers/vfio/group.c: vfio_group_fops_open
  // a normal group owned by the user opens without any capability
  h.kernel.vfs.lookupNoFollow('/dev/vfio/4')!.uid = 1000;
  assert.ok(user.open('/dev/vfio/4') >= 0);
  assert.deepEqual(call(root, () => root.open('/dev/vfio/noiommu-0')).events, ['group_open']);
});

test('group: noiommu — container attach and first device open need CAP_SYS_RAWIO; no mixing with real groups', () => {
  const h = boot(NOIOMMU_HOST);
  const root = proc(h);
  const g = root.open('/dev/vfio/noiommu-0');
  const c = root.open('/dev/vfio/vfio');
  // a process that inherited the fds but dropped CAP_SYS_RAWIO (capset)
  const child = root.fork('child');
  child.kproc.cred.caps.delete('CAP_SYS_RAWIO');
  const r = call(child, () => setContainer(child, g, c));
  assert.deepEqual([r.ret, r.errno, r.events], [-1, 'EPERM', []]); // drivers/vfio/container.c: vfio_container_attach_group
  assert.equal(setContainer(root, g, c), 0);
  // real and fake groups cannot share a container
  const g4 = root.open('/dev/vfio/4');
  assert.equal(rcOf(root, call(root, () => setContainer(root, g4, c))), 'EPERM');
  const c2 = root.open('/dev/vfio/vfio');
  assert.equal(setContainer(root, g4, c2), 0);
  // the noiommu backend is the only one a noiommu container takes
  assert.equal(root.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_TYPE1v2_IOMMU), 0);
  assert.equal(root.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_NOIOMMU_IOMMU), 1);
  assert.equal(rcOf(root, call(root, () => root.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU))), 'ENODEV');
  assert.equal(rcOf(root, call(root, () => root.ioctl(c2, U.VFIO_SET_IOMMU, U.VFIO_NOIOMMU_IOMMU))), 'ENODEV');
  const s = call(root, () => root.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_NOIOMMU_IOMMU));
  assert.deepEqual([s.ret, s.events], [0, ['container_set_iommu']]);
  // the noiommu backend has no DMA ioctls
  assert.equal(rcOf(root, call(root, () => root.ioctl(c, U.VFIO_IOMMU_GET_INFO, 0))), 'ENOTTY');
  // vfio_group_use_container: the first device open needs CAP_SYS_RAWIO again
  const d = call(child, () => getDeviceFd(child, g, '0000:01:00.0'));
  assert.deepEqual([d.ret, d.errno], [-1, 'EPERM']);
  const ok = call(root, () => getDeviceFd(root, g, '0000:01:00.0'));
  assert.ok(ok.ret >= 0);
  assert.deepEqual(ok.events, ['registration_get', 'group_file_get', 'pci_reset_function', 'open_device', 'access_granted', 'printk']);
  assert.match(ok.trace.find((e) => e.name === 'printk')!.msg!, /^vfio-noiommu device opened by user \(test:\d+\)$/);
});

test('group: noiommu with an iommufd — no-iommu compat mode, no bind; a compat IOAS makes the first open EPERM', () => {
  const h = boot(NOIOMMU_HOST);
  const p = proc(h);
  const g = p.open('/dev/vfio/noiommu-0');
  const io = p.open('/dev/iommu');
  const s = call(p, () => setContainer(p, g, io));
  // iommufd_vfio_compat_set_no_iommu: no compat IOAS is created
  assert.deepEqual([s.ret, s.events], [0, ['group_set_container']]);
  assert.equal(p.ioctl(io, U.VFIO_CHECK_EXTENSION, U.VFIO_TYPE1v2_IOMMU), 0); // no-iommu mode
  assert.equal(p.ioctl(io, U.VFIO_CHECK_EXTENSION, U.VFIO_NOIOMMU_IOMMU), 1);
  const d = call(p, () => getDeviceFd(p, g, '0000:01:00.0'));
  assert.ok(d.ret >= 0);
  assert.deepEqual(d.events, ['registration_get', 'pci_reset_function', 'open_device', 'access_granted', 'printk']); // no bind
  p.close(d.ret);
  // a real group cannot join a context in no-iommu mode (iommufd_vfio_compat_ioas_create)
  const g4 = p.open('/dev/vfio/4');
  assert.equal(rcOf(p, call(p, () => setContainer(p, g4, io))), 'EINVAL');
  // the user gives the context a compat IOAS: vfio_df_group_open refuses the first open
  const a = p.mem.struct(U.iommu_ioas_alloc, { size: 12 });
  assert.equal(p.ioctl(io, U.IOMMU_IOAS_ALLOC, a), 0);
  const id = p.mem.readStruct(U.iommu_ioas_alloc, a).out_ioas_id as number;
  assert.equal(p.ioctl(io, U.IOMMU_VFIO_IOAS, p.mem.struct(U.iommu_vfio_ioas, { size: 12, op: U.IOMMU_VFIO_IOAS_SET, ioas_id: id })), 0);
  const e = call(p, () => getDeviceFd(p, g, '0000:01:00.0'));
  assert.deepEqual([e.ret, e.errno, e.events], [-1, 'EPERM', ['registration_get', 'registration_put']]);
  // and a second noiommu SET_CONTAINER into a context with a compat IOAS is EINVAL
  p.ioctl(g, U.VFIO_GROUP_UNSET_CONTAINER);
  assert.equal(rcOf(p, call(p, () => setContainer(p, g, io))), 'EINVAL');
});
