// `vfiosim demo`: a narrated tour on the default host. It is an ordinary scenario (the format of
// `vfiosim run`); `vfiosim demo --scenario` prints it.

export const DEMO_SCENARIO = `description: vfiosim demo - the VFIO device-access lifecycle of Linux 7.2 on the default host
host: default
processes:
  qemu: {}
  other: {}
steps:
  - say: "1. Legacy group/container flow on e1000e (0000:01:00.0, IOMMU group 6), as Documentation/driver-api/vfio.rst does it"
  - qemu: open /dev/vfio/vfio as container
  - { qemu: { ioctl: VFIO_GET_API_VERSION, fd: container }, expect: 0 }
  - { qemu: { ioctl: VFIO_CHECK_EXTENSION, fd: container, arg: VFIO_TYPE1v2_IOMMU }, expect: 1 }
  - { qemu: open /dev/vfio/6 as group, expect: ok }
  - { qemu: { ioctl: VFIO_GROUP_GET_STATUS, fd: group, arg: {} }, expect: 0, out: { flags: 1 }, note: "VIABLE: no kernel driver does DMA in the group" }
  - { qemu: { ioctl: VFIO_GROUP_SET_CONTAINER, fd: group, arg: $container }, expect: 0 }
  - { qemu: { ioctl: VFIO_SET_IOMMU, fd: container, arg: VFIO_TYPE1v2_IOMMU }, expect: 0 }
  - { qemu: { ioctl: VFIO_GROUP_GET_DEVICE_FD, fd: group, arg: "0000:01:00.0" }, as: dev, expect: ok, note: "first open of the device: open_device runs" }
  - { qemu: { ioctl: VFIO_DEVICE_GET_INFO, fd: dev, arg: {} }, expect: 0, out: { flags: 3, num_regions: 9, num_irqs: 5 } }
  - { qemu: { ioctl: VFIO_GROUP_GET_DEVICE_FD, fd: group, arg: "0000:01:00.0" }, as: dev2, expect: ok, note: "a second file of the same device: no second open_device" }
  - { qemu: close group, expect: 0, note: "the device files still hold the group file: no release yet" }
  - { other: open /dev/vfio/6, expect: EBUSY, note: "the group file is still open (held by the device files)" }
  - { qemu: close dev2, expect: 0 }
  - { qemu: close dev, expect: 0, note: "last close: close_device, then the group file is released and the container detached" }
  - { other: open /dev/vfio/6 as g, expect: ok, note: "the group can be opened again" }
  - { other: close g, expect: 0 }
  - { qemu: close container, expect: 0 }

  - say: "2. iommufd cdev flow on the same device: /dev/vfio/devices/vfio0 opens blocked until BIND_IOMMUFD"
  - { qemu: open /dev/vfio/devices/vfio0 as cdev, expect: ok }
  - { qemu: { ioctl: VFIO_DEVICE_GET_INFO, fd: cdev, arg: {} }, expect: EINVAL, note: "blocked: every ioctl but BIND is refused" }
  - { qemu: open /dev/iommu as iommufd, expect: ok }
  - { qemu: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: cdev, arg: { iommufd: $iommufd } }, expect: 0, out: { out_devid: 1 } }
  - { qemu: { ioctl: IOMMU_IOAS_ALLOC, fd: iommufd, arg: {} }, as: ioas, expect: 0, out: { out_ioas_id: 2 } }
  - { qemu: { ioctl: VFIO_DEVICE_ATTACH_IOMMUFD_PT, fd: cdev, arg: { argsz: 16, pt_id: $ioas.out_ioas_id } }, expect: 0, out: { pt_id: 3 }, note: "an automatic HWPT (id 3) is created on the IOAS" }
  - { qemu: { ioctl: VFIO_DEVICE_GET_INFO, fd: cdev, arg: {} }, expect: 0, out: { flags: 3 } }
  - { qemu: close iommufd, expect: 0, note: "the bound cdev keeps the iommufd context alive" }
  - { qemu: close cdev, expect: 0, note: "release: close_device, unbind, group unblocked, registration put; then the context goes" }

  - say: "3. The rules the design enforces"
  - say: "   one opener per group"
  - { qemu: open /dev/vfio/8 as g8, expect: ok }
  - { other: open /dev/vfio/8, expect: EBUSY }
  - { qemu: close g8, expect: 0 }
  - say: "   no access before bind, and a file binds only once"
  - { qemu: open /dev/vfio/devices/vfio1 as nvme, expect: ok }
  - { qemu: open /dev/iommu as ictx, expect: ok }
  - { qemu: { ioctl: VFIO_DEVICE_ATTACH_IOMMUFD_PT, fd: nvme, arg: { argsz: 16, pt_id: 1 } }, expect: EINVAL }
  - { qemu: { read: nvme, count: 4 }, expect: EINVAL }
  - { qemu: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: nvme, arg: { iommufd: $ictx } }, expect: 0 }
  - { qemu: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: nvme, arg: { iommufd: $ictx } }, expect: EINVAL, note: "second bind of the same file" }
  - { other: open /dev/vfio/devices/vfio1 as nvme2, expect: ok, note: "any number of blocked cdev files may exist" }
  - { other: open /dev/iommu as ictx2, expect: ok }
  - { other: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: nvme2, arg: { iommufd: $ictx2 } }, expect: EINVAL, note: "the device is already open through another cdev file" }
  - say: "   group/cdev mutual exclusion"
  - { other: open /dev/vfio/7, expect: EBUSY, note: "a cdev of group 7 is bound" }
  - { other: close nvme2, expect: 0 }
  - { qemu: close nvme, expect: 0 }
  - { other: open /dev/vfio/7 as g7, expect: ok }
  - { other: open /dev/vfio/devices/vfio1 as nvme3, expect: ok }
  - { other: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: nvme3, arg: { iommufd: $ictx2 } }, expect: EBUSY, note: "the group file is open" }
  - { other: close nvme3, expect: 0 }
  - { other: close g7, expect: 0 }
  - say: "   a device set: igb0 and igb1 share reset slot 0000:04:00 (two IOMMU groups, one dev_set)"
  - { qemu: open /dev/vfio/devices/vfio4 as igb0, expect: ok }
  - { qemu: open /dev/vfio/devices/vfio5 as igb1, expect: ok }
  - { qemu: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: igb0, arg: { iommufd: $ictx } }, expect: 0 }
  - { qemu: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: igb1, arg: { iommufd: $ictx } }, expect: 0 }
  - { qemu: close igb0, expect: 0, note: "igb1 is still open in the set: no set-wide reset is even considered" }
  - { qemu: close igb1, expect: 0, note: "last close in the set; both functions were reset by FLR at close_device, so no slot reset is needed" }
  - say: "   a group of two devices (group 13: grp-edu and grp-testdev): one open_device per device, however many files"
  - { qemu: open /dev/vfio/vfio as c2, expect: ok }
  - { qemu: open /dev/vfio/13 as g13, expect: ok }
  - { qemu: { ioctl: VFIO_GROUP_SET_CONTAINER, fd: g13, arg: $c2 }, expect: 0 }
  - { qemu: { ioctl: VFIO_SET_IOMMU, fd: c2, arg: VFIO_TYPE1v2_IOMMU }, expect: 0 }
  - { qemu: { ioctl: VFIO_GROUP_GET_DEVICE_FD, fd: g13, arg: "0000:06:01.0" }, as: e1, expect: ok }
  - { qemu: { ioctl: VFIO_GROUP_GET_DEVICE_FD, fd: g13, arg: "0000:06:01.0" }, as: e2, expect: ok }
  - { qemu: { ioctl: VFIO_GROUP_GET_DEVICE_FD, fd: g13, arg: "0000:06:02.0" }, as: t1, expect: ok }
  - { qemu: close e1, expect: 0 }
  - { qemu: close e2, expect: 0 }
  - { qemu: close t1, expect: 0, note: "last close in the bus-06 set: testdev has no function reset, so the whole bus is reset" }
  - { qemu: close g13, expect: 0 }
  - { qemu: close c2, expect: 0 }

  - say: "4. Unregister waits for users: unbinding edu (vfio2) while a file is open"
  - { qemu: open /dev/vfio/devices/vfio2 as edu, expect: ok }
  - { qemu: { ioctl: VFIO_DEVICE_BIND_IOMMUFD, fd: edu, arg: { iommufd: $ictx } }, expect: 0 }
  - { admin: unbind edu, as: unbind_edu, note: "the unbind waits: the file is still open" }
  - { qemu: stat /dev/vfio/devices/vfio2, expect: ENOENT, note: "the cdev node is already gone" }
  - { admin: advance 10000, note: "10 s later the driver is asked again" }
  - { qemu: close edu, expect: 0, note: "the last user goes: unregister completes" }
  - { admin: wait unbind_edu }
  - { qemu: close ictx, expect: 0 }
  - { other: close ictx2, expect: 0 }
`;
