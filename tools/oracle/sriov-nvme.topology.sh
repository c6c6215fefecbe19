# shellcheck shell=bash disable=SC2034 # TOPO_DESC is read by oracle-run --list
# sriov-nvme: an SR-IOV PF for the oracle's QEMU 7.2, which has no igb: QEMU's nvme with
# sriov_max_vfs=2 (VF offset 1, stride 1, one 16 KiB 64-bit VF BAR) in an nvme-subsys, and an edu
# without SR-IOV. Needs a kernel with CONFIG_PCI_IOV (../shared/oracle/kconfig/selftests-extra.config)
# and --append vfio_pci.enable_sriov=1. Used by tools/oracle/sriov_probe.c (test/sriov_oracle.test.ts).
TOPO_DESC="an nvme SR-IOV PF (2 VFs) and an edu"
root_port rp1 0x2
qemu -device nvme-subsys,id=subsys0
vfio_dev pf 02.0/00.0 -device nvme,serial=sriovpf,subsys=subsys0,bus=rp1,addr=0.0,sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2,max_ioqpairs=6,msix_qsize=4
root_port rp2 0x3
vfio_dev other 03.0/00.0 -device edu,bus=rp2,addr=0.0
