// SPDX-License-Identifier: MIT
/*
 * sriov_probe.c - SR-IOV and VF-token behaviour of vfio-pci, one line per step, with names
 * instead of BDFs/group numbers so that a real kernel's output (the oracle, topology devset-igb,
 * --append vfio_pci.enable_sriov=1) and vfiosim's (`vfiosim exec`) can be diffed.
 *
 * usage: sriov_probe PF_BDF OTHER_BDF
 *   PF_BDF: an SR-IOV PF bound to vfio-pci, no VFs enabled, alone in its IOMMU group
 *   OTHER_BDF: a vfio-pci function without SR-IOV, alone in its group
 * Needs root and vfio_pci.enable_sriov=1 (restored to 1 at the end).
 * Oracle (kernel with CONFIG_PCI_IOV: ORACLE_KCONFIG_EXTRA=.../kconfig/selftests-extra.config
 * build-kernel.sh; the oracle's QEMU 7.2 has no igb, hence an nvme PF):
 *   ../shared/oracle/oracle-cc -o /tmp/sriov_probe tools/oracle/sriov_probe.c
 *   ../shared/oracle/oracle-run -t tools/oracle/sriov-nvme.topology.sh -k <that bzImage> \
 *     --append vfio_pci.enable_sriov=1 -p /tmp/sriov_probe --raw -- \
 *     sh -c 'sriov_probe $ORACLE_PF_BDF $ORACLE_OTHER_BDF' > test/fixtures/oracle-sriov.out
 * vfiosim: cc -o /tmp/sriov_probe tools/oracle/sriov_probe.c (dynamically linked, for the shim);
 *   test/sriov_oracle.test.ts runs it through the bridge on that machine's topology.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/vfio.h>

static const char *errname(int e)
{
	static char buf[16];

	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOTTY: return "ENOTTY";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	}
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static void res(const char *what, long r)
{
	if (r < 0)
		printf("%-58s = %ld %s\n", what, r, errname(errno));
	else
		printf("%-58s = %ld\n", what, r);
	fflush(stdout);
}

static char pf[32], vf0[32], vf1[32], other[32];

/* a sysfs path with the device's name replaced by a symbolic one in the output */
static const char *sym(const char *bdf)
{
	if (!strcmp(bdf, pf)) return "PF";
	if (!strcmp(bdf, vf0)) return "VF0";
	if (!strcmp(bdf, vf1)) return "VF1";
	if (!strcmp(bdf, other)) return "OTHER";
	return bdf;
}

static void sysfs_read(const char *bdf, const char *attr)
{
	char path[256], buf[256], what[128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	snprintf(what, sizeof(what), "read %s/%s", sym(bdf), attr);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		res(what, -1);
		return;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		res(what, -1);
		return;
	}
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = 0;
	printf("%-58s = \"%s\"\n", what, buf);
}

static long write_path(const char *path, const char *val)
{
	long r;
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return -1;
	r = write(fd, val, strlen(val));
	{
		int e = errno;
		close(fd);
		errno = e;
	}
	return r;
}

static void sysfs_write(const char *bdf, const char *attr, const char *val)
{
	char path[256], what[128];

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attr);
	snprintf(what, sizeof(what), "write %s/%s \"%s\"", sym(bdf), attr, val);
	res(what, write_path(path, val));
}

static void link_base(const char *bdf, const char *link, char *out, size_t len)
{
	char path[256], buf[256], what[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, link);
	snprintf(what, sizeof(what), "readlink %s/%s", sym(bdf), link);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0) {
		res(what, -1);
		if (out)
			out[0] = 0;
		return;
	}
	buf[n] = 0;
	if (out)
		snprintf(out, len, "%s", basename(buf));
	printf("%-58s = %s\n", what, sym(basename(buf)));
}

static int group_of(const char *bdf)
{
	char path[256], buf[256];
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return atoi(basename(buf));
}

static void config_dump(const char *bdf, int from, int to)
{
	char path[256];
	unsigned char b[4096];
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : pread(fd, b, sizeof(b), 0);
	if (fd >= 0)
		close(fd);
	for (i = from; i < to && i < n; i += 16) {
		int j;

		printf("%s config %03x:", sym(bdf), i);
		for (j = 0; j < 16 && i + j < to; j++)
			printf(" %02x", b[i + j]);
		printf("\n");
	}
	if (n < to)
		printf("%s config: read %zd bytes\n", sym(bdf), n);
}

static int config_read(const char *bdf, unsigned char *b, int len)
{
	char path[256];
	int fd, n;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : pread(fd, b, len, 0);
	if (fd >= 0)
		close(fd);
	return n;
}

/* the capability lists as "id@offset", chain order; returns the offset of `want` (0: none) */
static int caps_list(const char *bdf, int want, int want_ext, int print)
{
	unsigned char b[4096];
	int n = config_read(bdf, b, sizeof(b)), pos, ttl, found = 0;

	if (n < 64)
		return 0;
	if (print)
		printf("%s caps:", sym(bdf));
	for (pos = b[0x34], ttl = 48; (b[6] & 0x10) && pos >= 0x40 && ttl--; pos = b[pos + 1]) {
		pos &= ~3;
		if (print)
			printf(" %02x@%02x", b[pos], pos);
		if (b[pos] == want && !found)
			found = pos;
	}
	if (print)
		printf("\n%s ext caps:", sym(bdf));
	for (pos = 0x100, ttl = 480; n >= 4096 && pos >= 0x100 && ttl--;) {
		uint32_t h = b[pos] | b[pos + 1] << 8 | b[pos + 2] << 16 | (uint32_t)b[pos + 3] << 24;

		if (!h || h == 0xffffffff)
			break;
		if (print)
			printf(" %04x.v%u@%03x", h & 0xffff, (h >> 16) & 0xf, pos);
		if (want_ext && (int)(h & 0xffff) == want_ext && !found)
			found = pos;
		pos = h >> 20;
	}
	if (print)
		printf("\n");
	return found;
}

/* the PF's SR-IOV capability: registers up to System Page Size, then the VF BARs' type bits
 * (their addresses are whatever firmware assigned) */
static void sriov_dump(void)
{
	unsigned char b[4096];
	int at = caps_list(pf, -1, 0x10, 0), i;

	config_read(pf, b, sizeof(b));
	if (!at) {
		printf("PF: no SR-IOV capability\n");
		return;
	}
	config_dump(pf, at, at + 0x24);
	printf("PF VF BAR low bits:");
	for (i = 0; i < 6; i++)
		printf(" %x", b[at + 0x24 + 4 * i] & 0xf);
	printf("\n");
}

#define UUID1 "52ac9bff-3a88-4fbd-901a-0d767c3b6c97"
#define UUID2 "88594674-90a0-47a9-aea8-9d9b352ac08a"
static const unsigned char uuid1[16] = { 0x52, 0xac, 0x9b, 0xff, 0x3a, 0x88, 0x4f, 0xbd,
					  0x90, 0x1a, 0x0d, 0x76, 0x7c, 0x3b, 0x6c, 0x97 };
static const unsigned char uuid2[16] = { 0x88, 0x59, 0x46, 0x74, 0x90, 0xa0, 0x47, 0xa9,
					  0xae, 0xa8, 0x9d, 0x9b, 0x35, 0x2a, 0xc0, 0x8a };

static int get_fd(int group, const char *name, const char *fmt, const char *arg)
{
	char buf[256], what[160];
	int r;

	snprintf(buf, sizeof(buf), fmt, name, arg);
	snprintf(what, sizeof(what), "GET_DEVICE_FD \"%s%s\"", sym(name), buf + strlen(name));
	r = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, buf);
	res(what, r);
	return r;
}

static int set_token(int dev, const char *who, uint32_t flags, const unsigned char *uuid, uint32_t argsz)
{
	struct {
		struct vfio_device_feature f;
		unsigned char uuid[16];
	} a;
	char what[128];
	int r;

	memset(&a, 0, sizeof(a));
	a.f.argsz = argsz;
	a.f.flags = flags | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN;
	if (uuid)
		memcpy(a.uuid, uuid, 16);
	snprintf(what, sizeof(what), "%s FEATURE PCI_VF_TOKEN flags=%#x argsz=%u", who, flags, argsz);
	r = ioctl(dev, VFIO_DEVICE_FEATURE, &a);
	res(what, r);
	return r;
}

/* struct vfio_device_bind_iommufd as of 7.2 (older headers lack token_uuid_ptr) */
struct bind_arg {
	uint32_t argsz;
	uint32_t flags;
	int32_t iommufd;
	uint32_t out_devid;
	uint64_t token_uuid_ptr;
};
#ifndef VFIO_DEVICE_BIND_FLAG_TOKEN
#define VFIO_DEVICE_BIND_FLAG_TOKEN (1 << 0)
#endif
#ifndef VFIO_DEVICE_BIND_IOMMUFD
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

static int bind(int dev, int iommufd, const char *who, uint32_t flags, const unsigned char *uuid)
{
	struct bind_arg b = { .argsz = sizeof(b), .flags = flags, .iommufd = iommufd };
	char what[128];
	int r;

	b.token_uuid_ptr = (uintptr_t)uuid;
	snprintf(what, sizeof(what), "%s BIND_IOMMUFD flags=%u token=%s", who, flags,
		 uuid == uuid1 ? "UUID1" : uuid == uuid2 ? "UUID2" : uuid ? "?" : "NULL");
	r = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);
	res(what, r);
	return r;
}

static int open_group(const char *bdf, int container)
{
	char path[64], what[128];
	int g, r;

	snprintf(path, sizeof(path), "/dev/vfio/%d", group_of(bdf));
	g = open(path, O_RDWR);
	snprintf(what, sizeof(what), "open group of %s", sym(bdf));
	res(what, g < 0 ? -1 : 0);
	r = ioctl(g, VFIO_GROUP_SET_CONTAINER, &container);
	snprintf(what, sizeof(what), "SET_CONTAINER group of %s", sym(bdf));
	res(what, r);
	return g;
}

static void vf_vfio_config(int dev, const char *who)
{
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	struct vfio_device_info di = { .argsz = sizeof(di) };
	struct vfio_irq_info ii = { .argsz = sizeof(ii) };
	unsigned char c[64];
	uint32_t all = 0xffffffff, bar;
	char what[128];
	int i;

	ioctl(dev, VFIO_DEVICE_GET_INFO, &di);
	printf("%s GET_INFO flags=%#x regions=%u irqs=%u\n", who, di.flags, di.num_regions, di.num_irqs);
	ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri);
	snprintf(what, sizeof(what), "%s pread config 0..64", who);
	res(what, pread(dev, c, 64, ri.offset));
	for (i = 0; i < 64; i += 16) {
		int j;

		printf("%s vconfig %02x:", who, i);
		for (j = 0; j < 16; j++)
			printf(" %02x", c[i + j]);
		printf("\n");
	}
	pwrite(dev, &all, 4, ri.offset + 0x10);
	pread(dev, &bar, 4, ri.offset + 0x10);
	printf("%s BAR0 after sizing write = %#x\n", who, bar);
	for (i = 0; i < 6; i++) {
		struct vfio_region_info b = { .argsz = sizeof(b), .index = i };

		ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &b);
		printf("%s region %d size=%#llx flags=%#x\n", who, i, (unsigned long long)b.size, b.flags);
	}
	for (i = 0; i < 5; i++) {
		ii.index = i;
		ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii);
		printf("%s irq %d count=%u flags=%#x\n", who, i, ii.count, ii.flags);
	}
}

int main(int argc, char **argv)
{
	int container, pfg, vfg, otherg, pfd, pfd2, vfd, vfd2, ofd, iommufd, vcdev, r;
	char path[256];

	if (argc != 3) {
		fprintf(stderr, "usage: %s PF_BDF OTHER_BDF\n", argv[0]);
		return 2;
	}
	snprintf(pf, sizeof(pf), "%s", argv[1]);
	snprintf(other, sizeof(other), "%s", argv[2]);

	printf("== sysfs of the PF\n");
	sysfs_read(pf, "sriov_totalvfs");
	sysfs_read(pf, "sriov_numvfs");
	sysfs_read(pf, "sriov_offset");
	sysfs_read(pf, "sriov_stride");
	sysfs_read(pf, "sriov_vf_device");
	sysfs_read(pf, "sriov_drivers_autoprobe");
	sysfs_read(pf, "sriov_vf_total_msix");
	sysfs_read(other, "sriov_totalvfs");
	caps_list(pf, -1, 0, 1);
	sriov_dump();

	printf("== sriov_numvfs parsing and range\n");
	sysfs_write(pf, "sriov_numvfs", "x");
	sysfs_write(pf, "sriov_numvfs", "9");
	sysfs_write(pf, "sriov_numvfs", "65536");
	sysfs_write(pf, "sriov_numvfs", " 1");
	sysfs_write(pf, "sriov_numvfs", "-1");
	sysfs_write(pf, "sriov_numvfs", "0");
	sysfs_write(pf, "sriov_numvfs", "0x0\n");
	res("write enable_sriov 0", write_path("/sys/module/vfio_pci/parameters/enable_sriov", "0"));
	sysfs_write(pf, "sriov_numvfs", "1");
	res("write enable_sriov 1", write_path("/sys/module/vfio_pci/parameters/enable_sriov", "1"));

	printf("== enable, EBUSY, same count, disable\n");
	sysfs_write(pf, "sriov_numvfs", "+1\n");
	sysfs_read(pf, "sriov_numvfs");
	sysfs_write(pf, "sriov_numvfs", "2");
	sysfs_write(pf, "sriov_numvfs", "1");
	link_base(pf, "virtfn0", vf0, sizeof(vf0));
	link_base(pf, "virtfn1", NULL, 0);
	sriov_dump();
	sysfs_write(pf, "sriov_numvfs", "0");
	link_base(pf, "virtfn0", NULL, 0);
	sriov_dump();

	printf("== drivers_autoprobe 0\n");
	sysfs_write(pf, "sriov_drivers_autoprobe", "maybe");
	sysfs_write(pf, "sriov_drivers_autoprobe", "0");
	sysfs_write(pf, "sriov_numvfs", "1");
	link_base(vf0, "driver", NULL, 0);
	sysfs_read(vf0, "driver_override");
	sysfs_write(pf, "sriov_numvfs", "0");
	sysfs_write(pf, "sriov_drivers_autoprobe", "1");

	printf("== two VFs\n");
	sysfs_write(pf, "sriov_numvfs", "2");
	link_base(pf, "virtfn1", vf1, sizeof(vf1));
	link_base(vf0, "physfn", NULL, 0);
	link_base(vf0, "driver", NULL, 0);
	link_base(vf1, "driver", NULL, 0);
	sysfs_read(vf0, "driver_override");
	printf("VF0 group differs from the PF's: %d, VF1 group - VF0 group = %d\n", group_of(vf0) != group_of(pf),
	       group_of(vf1) - group_of(vf0));
	sysfs_read(vf0, "vendor");
	sysfs_read(vf0, "device");
	sysfs_read(vf0, "class");
	sysfs_read(vf0, "subsystem_vendor");
	sysfs_read(vf0, "subsystem_device");
	sysfs_read(vf0, "revision");
	sysfs_read(vf0, "reset_method");
	sysfs_read(vf0, "sriov_numvfs");
	sysfs_write(vf0, "sriov_vf_msix_count", "-1");
	sysfs_write(vf0, "sriov_vf_msix_count", "1");
	config_dump(vf0, 0, 0x40);
	caps_list(vf0, -1, 0, 1);

	printf("== VF token: group path\n");
	container = open("/dev/vfio/vfio", O_RDWR);
	pfg = open_group(pf, container);
	res("SET_IOMMU type1v2", ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	get_fd(pfg, pf, "%s%s", "x");
	get_fd(pfg, pf, "%s %s", "foo");
	get_fd(pfg, pf, "%s %s", "vf_token=" "52ac9bff-3a88-4fbd-901a");
	get_fd(pfg, pf, "%s %s", "vf_token=" "52ac9bff-3a88-4fbd-901a-0d767c3b6c9z");
	get_fd(pfg, pf, "%s %s", "vf_token=" UUID1 " vf_token=" UUID1);
	get_fd(pfg, pf, "%s %s", "vf_token=" UUID1 "x");
	r = get_fd(pfg, pf, "%s%s", "   ");
	if (r >= 0)
		close(r);
	pfd = get_fd(pfg, pf, "%s %s", "vf_token=" UUID1);
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_GET, uuid2, sizeof(struct vfio_device_feature) + 16);
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_GET, uuid2, sizeof(struct vfio_device_feature) + 16);
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET, uuid2, sizeof(struct vfio_device_feature) + 16);
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_SET, uuid2, sizeof(struct vfio_device_feature) + 15);
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_SET, NULL, sizeof(struct vfio_device_feature));
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_SET, uuid2, sizeof(struct vfio_device_feature) + 16);
	vfg = open_group(vf0, container);
	get_fd(vfg, vf0, "%s%s", "");
	get_fd(vfg, vf0, "%s %s", "vf_token=" UUID1);
	vfd = get_fd(vfg, vf0, "%s %s", "vf_token=" UUID2);
	set_token(vfd, "VF0", VFIO_DEVICE_FEATURE_SET, uuid1, sizeof(struct vfio_device_feature) + 16);
	vf_vfio_config(vfd, "VF0");
	get_fd(pfg, pf, "%s%s", "");
	get_fd(pfg, pf, "%s %s", "vf_token=" UUID1);
	pfd2 = get_fd(pfg, pf, "%s %s", "vf_token=" UUID2);
	if (pfd2 >= 0)
		close(pfd2);
	/* the token may change while VFs are in use */
	set_token(pfd, "PF", VFIO_DEVICE_FEATURE_SET, uuid1, sizeof(struct vfio_device_feature) + 16);
	vfd2 = get_fd(vfg, vf0, "%s %s", "vf_token=" UUID1);
	if (vfd2 >= 0)
		close(vfd2);
	get_fd(pfg, pf, "%s %s", "vf_token=" UUID2);
	otherg = open_group(other, container);
	get_fd(otherg, other, "%s %s", "vf_token=" UUID1);
	ofd = get_fd(otherg, other, "%s%s", "");
	set_token(ofd, "OTHER", VFIO_DEVICE_FEATURE_SET, uuid1, sizeof(struct vfio_device_feature) + 16);
	set_token(ofd, "OTHER", VFIO_DEVICE_FEATURE_PROBE | VFIO_DEVICE_FEATURE_SET, uuid1, sizeof(struct vfio_device_feature) + 16);

	printf("== VF token: cdev path\n");
	iommufd = open("/dev/iommu", O_RDWR);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", vf1);
	{
		DIR *d = opendir(path);
		struct dirent *e;

		while (d && (e = readdir(d)))
			if (!strncmp(e->d_name, "vfio", 4))
				break;
		if (!d || !e)
			return 1;
		snprintf(path, sizeof(path), "/dev/vfio/devices/%.200s", e->d_name);
		closedir(d);
	}
	vcdev = open(path, O_RDWR);
	res("open VF1 cdev", vcdev < 0 ? -1 : 0);
	bind(vcdev, iommufd, "VF1", 0, NULL);
	bind(vcdev, iommufd, "VF1", VFIO_DEVICE_BIND_FLAG_TOKEN, uuid2);
	bind(vcdev, iommufd, "VF1", VFIO_DEVICE_BIND_FLAG_TOKEN, (const unsigned char *)8);
	bind(vcdev, iommufd, "VF1", 2, uuid1);
	bind(vcdev, iommufd, "VF1", VFIO_DEVICE_BIND_FLAG_TOKEN, uuid1);

	printf("== PF power state with VFs enabled\n");
	{
		struct vfio_region_info ri = { .argsz = sizeof(ri), .index = VFIO_PCI_CONFIG_REGION_INDEX };
		uint16_t pm = 3, back = 0;
		unsigned char b[256];
		int at = caps_list(pf, 0x01, 0, 0);

		ioctl(pfd, VFIO_DEVICE_GET_REGION_INFO, &ri);
		res("PF pwrite PM_CTRL D3hot", pwrite(pfd, &pm, 2, ri.offset + at + 4));
		pread(pfd, &back, 2, ri.offset + at + 4);
		printf("PF vfio PM_CTRL state = %u\n", back & 3);
		config_read(pf, b, sizeof(b));
		printf("PF PM_CTRL state = %u\n", b[at + 4] & 3);
	}

	printf("== release\n");
	close(vcdev);
	close(vfd);
	close(ofd);
	close(pfd);
	close(vfg);
	close(otherg);
	close(pfg);
	close(container);
	close(iommufd);
	sysfs_write(pf, "sriov_numvfs", "0");
	sysfs_read(pf, "sriov_numvfs");

	printf("== unbinding the PF disables its VFs\n");
	sysfs_write(pf, "sriov_numvfs", "1");
	res("unbind PF", write_path("/sys/bus/pci/drivers/vfio-pci/unbind", pf));
	sysfs_read(pf, "sriov_numvfs");
	link_base(pf, "virtfn0", NULL, 0);
	sysfs_write(pf, "sriov_numvfs", "1");
	res("drivers_probe PF", write_path("/sys/bus/pci/drivers_probe", pf));
	link_base(pf, "driver", NULL, 0);
	sysfs_read(pf, "sriov_numvfs");
	return 0;
}
