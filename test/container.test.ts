// Rule 6 — the legacy container /dev/vfio/vfio (drivers/vfio/container.c). "oracle" marks values
// observed on the real kernel (shared/oracle, default topology).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  E1000E, TESTDEV, U, boot, call, getDeviceFd, groupPath, groupStatus, proc, setContainer, yamlHost,
} from './helpers.js';

const EXTS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

test('container: GET_API_VERSION is 0; every open is a new empty container', () => {
  const h = boot();
  const p = proc(h);
  const o = call(p, () => p.open('/dev/vfio/vfio'));
  assert.deepEqual(o.events, ['vfio_container_open']);
  assert.equal(call(p, () => p.ioctl(o.ret, U.VFIO_GET_API_VERSION)).ret, 0);
  const o2 = call(p, () => p.open('/dev/vfio/vfio'));
  assert.deepEqual(o2.events, ['vfio_container_open']);
  // an unprivileged user may open it (0666) and ask
  const u = proc(h, { uid: 1000, caps: [] });
  const c = u.open('/dev/vfio/vfio');
  assert.ok(c >= 0);
  assert.equal(u.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_TYPE1v2_IOMMU), 1);
});

test('container: CHECK_EXTENSION without a backend — TYPE1 1, TYPE1v2 1, UNMAP_ALL 1, everything else 0 (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  // 0..12: SPAPR (2, 7), DMA_CC (4), EEH (5), nesting-reserved (6), NOIOMMU (8), UPDATE_VADDR (10) are 0
  const r = EXTS.map((e) => call(p, () => p.ioctl(c, U.VFIO_CHECK_EXTENSION, e)));
  assert.deepEqual(r.map((x) => x.ret), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]); // oracle
  assert.ok(r.every((x) => x.events.length === 0));
  // with a group attached but no backend yet: the same answers (oracle)
  const g = p.open(groupPath(E1000E));
  setContainer(p, g, c);
  assert.deepEqual(EXTS.map((e) => p.ioctl(c, U.VFIO_CHECK_EXTENSION, e)), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
});

test('container: CHECK_EXTENSION with the type1 backend — UPDATE_VADDR 1, DMA_CC 0 without enforced coherency (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(groupPath(E1000E));
  setContainer(p, g, c);
  assert.equal(p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), 0);
  assert.deepEqual(EXTS.map((e) => p.ioctl(c, U.VFIO_CHECK_EXTENSION, e)), [0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 0]); // oracle
  // DMA_CC 1 when every domain enforces cache coherency (vfio_iommu_type1_check_extension)
  const h2 = boot(yamlHost(`  - { bdf: "0000:01:00.0", id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 6, driver: vfio-pci }\n`, 'iommu: { enforce_cache_coherency: true }\n'));
  const q = proc(h2);
  const c2 = q.open('/dev/vfio/vfio');
  setContainer(q, q.open('/dev/vfio/6'), c2);
  assert.equal(q.ioctl(c2, U.VFIO_CHECK_EXTENSION, U.VFIO_DMA_CC_IOMMU), 0); // no backend
  q.ioctl(c2, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
  assert.equal(q.ioctl(c2, U.VFIO_CHECK_EXTENSION, U.VFIO_DMA_CC_IOMMU), 1);
});

test('container: CHECK_EXTENSION(NOIOMMU) is 1 only with the noiommu module parameter', () => {
  const h = boot(yamlHost(`  - { bdf: "0000:01:00.0", id: "8086:10d3", class: 0x020000, pcie: true, iommu_group: 6, driver: vfio-pci }\n`, 'kernel: { noiommu: true }\n'));
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  assert.equal(p.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_NOIOMMU_IOMMU), 1);
  // the module parameter is read at each CHECK_EXTENSION
  assert.equal(p.writeFile('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', '0'), 1);
  assert.equal(p.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_NOIOMMU_IOMMU), 0);
  // a real group in the container: the noiommu backend is not asked any more
  assert.equal(p.writeFile('/sys/module/vfio/parameters/enable_unsafe_noiommu_mode', 'Y'), 1);
  setContainer(p, p.open('/dev/vfio/6'), c);
  assert.equal(p.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_NOIOMMU_IOMMU), 0);
});

test('container: SET_IOMMU — EINVAL without groups, ENODEV for unclaimed types, EINVAL for UNMAP_ALL, EINVAL once set', () => {
  const h = boot();
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  const si = (t: number) => {
    const r = call(p, () => p.ioctl(c, U.VFIO_SET_IOMMU, t));
    return r.ret === -1 ? r.errno : r.ret;
  };
  assert.equal(si(U.VFIO_TYPE1v2_IOMMU), 'EINVAL'); // oracle: no groups
  const g = p.open(groupPath(E1000E));
  setContainer(p, g, c);
  // oracle: 0, 99, SPAPR (2, 7), NOIOMMU (8), nesting-reserved (6), EEH (5), DMA_CC (4), 10, 11 → ENODEV
  for (const t of [0, 99, 2, 7, 8, 6, 5, 4, 10, 11]) assert.equal(si(t), 'ENODEV', `type ${t}`);
  // spec "Checked against the real kernel" 3: UNMAP_ALL passes CHECK_EXTENSION but is no IOMMU type
  assert.equal(si(U.VFIO_UNMAP_ALL), 'EINVAL'); // oracle
  const ok = call(p, () => p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU));
  assert.deepEqual([ok.ret, ok.events], [0, ['container_set_iommu']]);
  assert.equal(si(U.VFIO_TYPE1v2_IOMMU), 'EINVAL'); // oracle: already set
  assert.equal(si(U.VFIO_TYPE1_IOMMU), 'EINVAL'); // oracle
  assert.equal(groupStatus(p, g), U.VFIO_GROUP_FLAGS_VIABLE | U.VFIO_GROUP_FLAGS_CONTAINER_SET);
});

test('container: other ioctls without a backend are EINVAL; with type1 an unknown one is ENOTTY; no read/write/mmap (oracle)', () => {
  const h = boot();
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  const info = p.mem.struct(U.vfio_iommu_type1_info, { argsz: U.vfio_iommu_type1_info.size });
  const e = (r: number) => (r === -1 ? p.errnoName : r);
  assert.equal(e(p.ioctl(c, U.VFIO_IOMMU_GET_INFO, info)), 'EINVAL');
  assert.equal(e(p.ioctl(c, U.VFIO_IOMMU_MAP_DMA, info)), 'EINVAL');
  assert.equal(e(p.ioctl(c, 0x3b99)), 'EINVAL');
  assert.equal(e(p.ioctl(c, 0x1234)), 'EINVAL');
  const buf = p.mem.alloc(8);
  assert.equal(e(p.read(c, buf, 8)), 'EINVAL');
  assert.equal(e(p.write(c, buf, 8)), 'EINVAL');
  assert.equal(e(p.lseek(c, 0, 0)), 'ESPIPE');
  assert.equal(e(p.mmap(4096, 1, 1, c, 0)), 'ENODEV');
  const g = p.open(groupPath(E1000E));
  setContainer(p, g, c);
  assert.equal(e(p.ioctl(c, U.VFIO_IOMMU_GET_INFO, info)), 'EINVAL'); // oracle: groups but no backend
  p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
  assert.equal(e(p.ioctl(c, 0x3b99)), 'ENOTTY'); // oracle
});

test('container: release keeps the container (and its backend) alive while groups are attached', () => {
  const h = boot();
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  const g = p.open(groupPath(E1000E));
  setContainer(p, g, c);
  p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
  assert.deepEqual(call(p, () => p.close(c)).events, []); // the group's kref keeps it
  assert.equal(groupStatus(p, g), U.VFIO_GROUP_FLAGS_VIABLE | U.VFIO_GROUP_FLAGS_CONTAINER_SET);
  // the backend is still there: a device can be opened
  const d = call(p, () => getDeviceFd(p, g, E1000E.bdf));
  assert.ok(d.ret >= 0);
  assert.ok(d.events.includes('open_device'));
  p.close(d.ret);
  // the last group's detach releases the backend and frees the container
  assert.deepEqual(call(p, () => p.close(g)).events, [
    'container_backend_released', 'container_detach_group', 'vfio_container_free', 'group_release',
  ]);
});

test('container: the backend goes with the last group, not before; then SET_IOMMU needs a group again', () => {
  const h = boot();
  const p = proc(h);
  const c = p.open('/dev/vfio/vfio');
  const g1 = p.open(groupPath(E1000E));
  const g2 = p.open(groupPath(TESTDEV));
  setContainer(p, g1, c);
  p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU);
  // a group joining a container with a backend is attached to the backend at once
  const j = call(p, () => setContainer(p, g2, c));
  assert.deepEqual([j.ret, j.events], [0, ['container_attach_group', 'group_set_container']]);
  assert.deepEqual(call(p, () => p.ioctl(g1, U.VFIO_GROUP_UNSET_CONTAINER)).events, ['container_detach_group']);
  assert.equal(p.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_UPDATE_VADDR), 1); // still has the backend
  assert.deepEqual(call(p, () => p.ioctl(g2, U.VFIO_GROUP_UNSET_CONTAINER)).events, ['container_backend_released', 'container_detach_group']);
  assert.equal(p.ioctl(c, U.VFIO_CHECK_EXTENSION, U.VFIO_UPDATE_VADDR), 0); // back to "no backend"
  assert.deepEqual([p.ioctl(c, U.VFIO_SET_IOMMU, U.VFIO_TYPE1v2_IOMMU), p.errnoName], [-1, 'EINVAL']);
  assert.deepEqual(call(p, () => p.close(c)).events, ['vfio_container_free']);
});
