// SPDX-License-Identifier: MIT
/*
 * vfio_pci_device.c - what vfio-pci shows of a device through its file: the virtual config space
 * after open, per-register write behaviour (virtualised, read-only, write-1-to-clear, BAR sizing),
 * GET_REGION_INFO for every index, the config and BAR read/write rules (chunking, EFAULT/EINVAL,
 * short reads, EIO with memory decode off, the MSI-X table hole, the ROM), mmap errnos and
 * faults, resets, and the sysfs files. One line per observation, for vfiosim's tests.
 *
 * usage (in the oracle guest): vfio_pci_device NAME:CDEV:BDF [NAME:CDEV:BDF...]
 * Build: ../shared/oracle/oracle-cc -o /tmp/vfio_pci_device tools/oracle/vfio_pci_device.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

static const char *N; /* device name for every line */
static int dev;
static unsigned cfgsize;

#define OFF(idx) ((uint64_t)(idx) << 40)
#define CFG 7

static const char *en(int e) { return strerrorname_np(e) ?: "?"; }

static void hex(const uint8_t *b, long n)
{
	for (long i = 0; i < n; i++)
		printf("%02x", b[i]);
}

/* pread of region idx at off, count n: "rd NAME idx off n = ret [errno] data" */
static long rd(int idx, uint64_t off, size_t n)
{
	uint8_t b[64];
	memset(b, 0xee, sizeof(b));
	long r = pread(dev, b, n, OFF(idx) + off);
	printf("rd %s %d 0x%llx %zu = ", N, idx, (unsigned long long)off, n);
	if (r < 0)
		printf("-1 %s\n", en(errno));
	else {
		printf("%ld ", r);
		hex(b, r > 64 ? 64 : r);
		printf("\n");
	}
	return r;
}

static long wr(int idx, uint64_t off, size_t n, uint64_t v)
{
	long r = pwrite(dev, &v, n, OFF(idx) + off);
	printf("wr %s %d 0x%llx %zu 0x%llx = ", N, idx, (unsigned long long)off, n, (unsigned long long)v);
	if (r < 0)
		printf("-1 %s\n", en(errno));
	else
		printf("%ld\n", r);
	return r;
}

static uint32_t cfg32(unsigned off)
{
	uint32_t v = 0;
	if (pread(dev, &v, 4, OFF(CFG) + off) != 4)
		printf("ERR cfg32 %s 0x%x %s\n", N, off, en(errno));
	return v;
}
static uint16_t cfg16(unsigned off)
{
	uint16_t v = 0;
	if (pread(dev, &v, 2, OFF(CFG) + off) != 2)
		printf("ERR cfg16 %s 0x%x %s\n", N, off, en(errno));
	return v;
}
static void cfgw(unsigned off, size_t n, uint32_t v)
{
	if (pwrite(dev, &v, n, OFF(CFG) + off) != (long)n)
		printf("ERR cfgw %s 0x%x %s\n", N, off, en(errno));
}

/* write then read back the same width: "cw NAME off n val -> readback" */
static void cw(unsigned off, size_t n, uint32_t v)
{
	uint32_t rb = 0;
	long r = pwrite(dev, &v, n, OFF(CFG) + off);
	long r2 = pread(dev, &rb, n, OFF(CFG) + off);
	printf("cw %s 0x%x %zu 0x%x = %ld", N, off, n, v, r);
	if (r < 0)
		printf(" %s", en(errno));
	printf(" -> %ld 0x%x\n", r2, rb);
}

static void dump(const char *tag)
{
	uint8_t b[4096];
	memset(b, 0xee, sizeof(b));
	long r = pread(dev, b, cfgsize, OFF(CFG));
	printf("dump %s %s = %ld\n", N, tag, r);
	for (unsigned o = 0; o < cfgsize; o += 16) {
		int nz = 0;
		for (int i = 0; i < 16; i++)
			nz |= b[o + i];
		if (!nz && o >= 0x40)
			continue; /* zero lines are left out */
		printf("  %03x:", o);
		for (int i = 0; i < 16; i++)
			printf(" %02x", b[o + i]);
		printf("\n");
	}
}

static void region_info(unsigned idx, unsigned argsz)
{
	uint8_t buf[128];
	struct vfio_region_info *ri = (void *)buf;
	memset(buf, 0, sizeof(buf));
	ri->argsz = argsz;
	ri->index = idx;
	ri->cap_offset = 0x1234;
	int r = ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, ri);
	printf("rinfo %s %u argsz=%u = %d", N, idx, argsz, r);
	if (r < 0) {
		printf(" %s\n", en(errno));
		return;
	}
	printf(" argsz=%u flags=0x%x index=%u cap_offset=0x%x size=0x%llx offset=0x%llx", ri->argsz, ri->flags, ri->index,
	       ri->cap_offset, (unsigned long long)ri->size, (unsigned long long)ri->offset);
	if ((ri->flags & VFIO_REGION_INFO_FLAG_CAPS) && ri->cap_offset && ri->cap_offset < argsz) {
		unsigned o = ri->cap_offset;
		while (o && o + 8 <= argsz) {
			struct vfio_info_cap_header *h = (void *)(buf + o);
			printf(" cap@%u{id=%u v=%u next=%u}", o, h->id, h->version, h->next);
			o = h->next;
		}
	}
	printf("\n");
}

static sigjmp_buf jb;
static void on_sig(int s)
{
	siglongjmp(jb, s);
}

/* touch a mapping: "SIGBUS" or the value */
static void touch(const char *what, volatile uint32_t *p)
{
	int s = sigsetjmp(jb, 1);
	if (s) {
		printf("touch %s %s = %s\n", N, what, s == SIGBUS ? "SIGBUS" : s == SIGSEGV ? "SIGSEGV" : "SIG?");
		return;
	}
	uint32_t v = *p;
	printf("touch %s %s = 0x%x\n", N, what, v);
}

static void try_mmap(const char *what, size_t len, int prot, int flags, uint64_t off)
{
	void *p = mmap(NULL, len, prot, flags, dev, off);
	printf("mmap %s %s len=0x%zx off=0x%llx = ", N, what, len, (unsigned long long)off);
	if (p == MAP_FAILED)
		printf("-1 %s\n", en(errno));
	else {
		printf("ok\n");
		munmap(p, len);
	}
}

static void sysfs(const char *bdf)
{
	const char *attrs[] = { "vendor", "device", "class", "subsystem_vendor", "subsystem_device", "revision", "irq" };
	char path[256], buf[128];
	for (unsigned i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", bdf, attrs[i]);
		int fd = open(path, O_RDONLY);
		long r = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (fd >= 0)
			close(fd);
		printf("sysfs %s %s = %ld ", N, attrs[i], r);
		for (long j = 0; j < r; j++)
			printf(buf[j] == '\n' ? "\\n" : "%c", buf[j]);
		printf("\n");
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", bdf);
	struct stat st;
	stat(path, &st);
	printf("sysfs %s config st_size=%lld mode=0%o\n", N, (long long)st.st_size, st.st_mode & 07777);
	uint8_t b[8192];
	int fd = open(path, O_RDONLY);
	long r = read(fd, b, sizeof(b));
	long r2 = pread(fd, b + 4096, 16, st.st_size - 4);
	long r3 = pread(fd, b + 4096, 16, st.st_size);
	printf("sysfs %s config read=%ld tail=%ld past=%ld head=", N, r, r2, r3);
	hex(b, 64);
	printf("\n");
	close(fd);
	pid_t pid = fork();
	if (!pid) {
		if (setuid(65534))
			_exit(1);
		int fd2 = open(path, O_RDONLY);
		long u = read(fd2, b, sizeof(b));
		long u2 = pread(fd2, b, 16, 60);
		long u3 = pread(fd2, b, 16, 64);
		printf("sysfs %s config unprivileged open=%d read=%ld at60=%ld at64=%ld\n", N, fd2, u, u2, u3);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

static unsigned find_cap(unsigned id)
{
	if (!(cfg16(6) & 0x10))
		return 0;
	unsigned pos = cfg32(0x34) & 0xff;
	for (int ttl = 48; pos && ttl; ttl--) {
		uint16_t ent = cfg16(pos);
		if ((ent & 0xff) == id)
			return pos;
		pos = ent >> 8;
	}
	return 0;
}

static unsigned find_ecap(unsigned id)
{
	if (cfgsize <= 256)
		return 0;
	unsigned pos = 0x100;
	for (int ttl = 480; pos && ttl; ttl--) {
		uint32_t h = cfg32(pos);
		if (!h)
			return 0;
		if ((h & 0xffff) == id)
			return pos;
		pos = h >> 20;
		if (pos < 0x100)
			return 0;
	}
	return 0;
}

static void edu_wait(void)
{
	for (int i = 0; i < 100000; i++) {
		uint32_t st = 0;
		pread(dev, &st, 4, 0x20);
		if (!(st & 1))
			return;
		usleep(1000);
	}
	printf("ERR edu %s factorial still computing\n", N);
}

/* edu's DMA engine through the IOMMU: host memory -> the 4 KiB buffer -> host memory */
static void edu_dma(int iommufd)
{
	struct iommu_ioas_alloc a = { .size = sizeof(a) };
	if (ioctl(iommufd, IOMMU_IOAS_ALLOC, &a)) {
		printf("ERR ioas %s\n", en(errno));
		return;
	}
	struct vfio_device_attach_iommufd_pt at = { .argsz = sizeof(at), .pt_id = a.out_ioas_id };
	if (ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &at)) {
		printf("ERR attach %s\n", en(errno));
		return;
	}
	uint8_t *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < 64; i++)
		buf[i] = 0x40 + i;
	struct iommu_ioas_map m = { .size = sizeof(m), .flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE,
				    .ioas_id = a.out_ioas_id, .user_va = (uintptr_t)buf, .length = 8192, .iova = 0x100000 };
	if (ioctl(iommufd, IOMMU_IOAS_MAP, &m)) {
		printf("ERR map %s\n", en(errno));
		return;
	}
	uint16_t cmd0 = cfg16(4);
	/* without bus mastering the transfer goes nowhere */
	cfgw(4, 2, cmd0 & ~4);
	wr(0, 0x80, 8, 0x100000);
	wr(0, 0x88, 8, 0x40000);
	wr(0, 0x90, 8, 16);
	wr(0, 0x98, 8, 1);
	usleep(300000);
	rd(0, 0x98, 8);
	wr(0, 0x80, 8, 0x40000);
	wr(0, 0x88, 8, 0x101000);
	wr(0, 0x90, 8, 16);
	wr(0, 0x98, 8, 3);
	usleep(300000);
	printf("dma %s no-master ", N);
	hex(buf + 0x1000, 16);
	printf("\n");
	cfgw(4, 2, cmd0 | 4);
	wr(0, 0x80, 8, 0x100000);
	wr(0, 0x88, 8, 0x40000);
	wr(0, 0x90, 8, 16);
	wr(0, 0x98, 8, 1);
	usleep(300000);
	rd(0, 0x98, 8);
	wr(0, 0x80, 8, 0x40004);
	wr(0, 0x88, 8, 0x101000);
	wr(0, 0x90, 8, 8);
	wr(0, 0x98, 8, 3);
	usleep(300000);
	rd(0, 0x98, 8);
	rd(0, 0x24, 4);
	printf("dma %s master ", N);
	hex(buf + 0x1000, 16);
	printf("\n");
	cfgw(4, 2, cmd0);
}

static void device(char *spec)
{
	char *name = strtok(spec, ":");
	char *cdev = strtok(NULL, ":");
	char *bdf = cdev + strlen(cdev) + 1;
	N = name;
	printf("== %s %s %s\n", name, cdev, bdf);
	sysfs(bdf);

	dev = open(cdev, O_RDWR);
	int iommufd = open("/dev/iommu", O_RDWR);
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind)) {
		printf("ERR bind %s\n", en(errno));
		return;
	}
	struct vfio_region_info cri = { .argsz = sizeof(cri), .index = CFG };
	ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &cri);
	cfgsize = cri.size;
	dump("open");

	/* GET_REGION_INFO, every index, small and large argsz */
	for (unsigned i = 0; i <= 9; i++) {
		region_info(i, 32);
		region_info(i, 96);
	}
	struct vfio_region_info bi[7];
	for (unsigned i = 0; i < 7; i++) {
		bi[i] = (struct vfio_region_info){ .argsz = sizeof(bi[i]), .index = i };
		ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &bi[i]);
	}

	/* config reads: sizes, alignment, past the end */
	rd(CFG, 0, 1);
	rd(CFG, 0, 2);
	rd(CFG, 0, 3);
	rd(CFG, 0, 4);
	rd(CFG, 0, 8);
	rd(CFG, 1, 4);
	rd(CFG, 2, 8);
	rd(CFG, 3, 3);
	rd(CFG, 0x3e, 4);
	rd(CFG, cfgsize - 4, 4);
	rd(CFG, cfgsize - 2, 4);
	rd(CFG, cfgsize - 1, 1);
	rd(CFG, cfgsize, 1);
	rd(CFG, cfgsize + 100, 4);
	rd(CFG, 0, 0);
	rd(9, 0, 4);
	rd(20, 0, 0);
	rd(20, 0, 4);
	wr(CFG, cfgsize - 2, 4, 0);
	wr(CFG, cfgsize, 1, 0);

	/* header registers */
	uint16_t cmd0 = cfg16(4);
	cw(0x00, 4, 0xffffffff);
	cw(0x04, 2, 0xffff);
	cw(0x04, 2, 0x0000);
	cw(0x04, 2, 0x0400);
	cfgw(0x04, 2, cmd0);
	cw(0x06, 2, 0xffff);
	cw(0x08, 4, 0xffffffff);
	cw(0x0c, 1, 0xff);
	cw(0x0d, 1, 0xff);
	cw(0x0e, 1, 0xff);
	cw(0x0f, 1, 0xff);
	cw(0x28, 4, 0xffffffff);
	cw(0x2c, 4, 0xffffffff);
	cw(0x34, 1, 0x00);
	cw(0x38, 4, 0xffffffff);
	cw(0x3c, 1, 0x5a);
	cw(0x3d, 1, 0x03);
	cw(0x3e, 2, 0xffff);
	/* BAR sizing on the virtual BARs, then the addresses written back */
	for (unsigned off = 0x10; off <= 0x30; off += 4) {
		if (off == 0x28 || off == 0x2c)
			continue;
		uint32_t orig = cfg32(off);
		cw(off, 4, 0xffffffff);
		cw(off, 4, 0x12345678);
		cw(off, 4, orig);
	}
	cw(0x10, 2, 0xffff);
	cw(0x12, 2, 0xffff);
	cw(0x13, 1, 0xab);
	cfgw(0x10, 4, cfg32(0x10)); /* leave sizing state */
	dump("after-header-writes");

	/* capabilities */
	unsigned pm = find_cap(0x01), msi = find_cap(0x05), exp = find_cap(0x10), msix = find_cap(0x11);
	unsigned aer = find_ecap(0x01), dsn = find_ecap(0x03);
	printf("caps %s pm=0x%x msi=0x%x exp=0x%x msix=0x%x aer=0x%x dsn=0x%x\n", N, pm, msi, exp, msix, aer, dsn);
	if (pm) {
		cw(pm, 2, 0xffff);
		cw(pm + 2, 2, 0xffff);
		cw(pm + 4, 2, 0x8100);
		cw(pm + 4, 2, 0x0003); /* D3hot */
		rd(0, 0, 4);
		if (bi[0].size) {
			void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0);
			printf("mmap %s bar0-d3 = %s\n", N, m == MAP_FAILED ? en(errno) : "ok");
			if (m != MAP_FAILED) {
				touch("bar0-d3", m);
				munmap(m, 4096);
			}
		}
		cw(pm + 4, 2, 0x0000); /* D0 */
		rd(0, 0, 4);
		cw(pm + 6, 2, 0xffff);
	}
	if (msi) {
		uint16_t f = cfg16(msi + 2);
		cw(msi, 2, 0xffff);
		cw(msi + 2, 2, 0xffff);
		cw(msi + 2, 2, 0x0070);
		cw(msi + 2, 2, f);
		cw(msi + 4, 4, 0xffffffff);
		cw(msi + 8, 4, 0xffffffff);
		cw(msi + 12, 4, 0xffffffff);
		cw(msi + 16, 4, 0xffffffff);
		cw(msi + 20, 4, 0xffffffff);
	}
	if (msix) {
		cw(msix, 2, 0xffff);
		cw(msix + 2, 2, 0xffff);
		cw(msix + 4, 4, 0xffffffff);
		cw(msix + 8, 4, 0xffffffff);
	}
	if (exp) {
		cw(exp, 2, 0xffff);
		cw(exp + 2, 2, 0xffff);
		cw(exp + 4, 4, 0xffffffff);
		uint16_t ctl = cfg16(exp + 8);
		cw(exp + 8, 2, 0x7fff);
		cw(exp + 8, 2, ctl);
		cw(exp + 10, 2, 0xffff);
		cw(exp + 16, 2, 0xffff);
		cw(exp + 0x28, 2, 0xffff);
		cw(exp + 0x30, 2, 0xffff);
	}
	if (aer)
		for (unsigned o = 0; o < 0x2c; o += 4)
			cw(aer + o, 4, 0xffffffff);
	if (dsn)
		for (unsigned o = 0; o < 12; o += 4)
			cw(dsn + o, 4, 0xffffffff);
	/* unassigned space (raw access to the hardware) */
	cw(0x40, 4, 0xffffffff);
	cw(0x5c, 4, 0xffffffff);
	cw(0xfc, 4, 0xffffffff);
	if (cfgsize > 256) {
		cw(0x100, 4, 0xffffffff);
		cw(0x104, 4, 0xffffffff);
		cw(0x200, 4, 0xffffffff);
		cw(0xffc, 4, 0xffffffff);
	}
	dump("after-cap-writes");

	/* BARs */
	for (int i = 0; i < 6; i++) {
		if (!bi[i].size) {
			rd(i, 0, 4);
			continue;
		}
		rd(i, 0, 1);
		rd(i, 0, 2);
		rd(i, 0, 4);
		rd(i, 0, 8);
		rd(i, 1, 4);
		rd(i, 0, 3);
		rd(i, 0, 16);
		rd(i, bi[i].size - 2, 8);
		rd(i, bi[i].size, 4);
		rd(i, bi[i].size + 0x1000, 4);
	}
	if (msix) {
		uint32_t t = cfg32(msix + 4), p = cfg32(msix + 8);
		int tb = t & 7;
		rd(tb, (t & ~7u) - 4, 8);
		rd(tb, (t & ~7u), 16);
		wr(tb, (t & ~7u), 4, 0x12345678);
		rd(tb, (t & ~7u), 4);
		rd(p & 7, p & ~7u, 8);
		unsigned qs = (cfg16(msix + 2) & 0x7ff) + 1;
		rd(tb, (t & ~7u) + qs * 16 - 4, 8);
	}
	/* memory decode off: memory BARs fail, I/O BARs do not */
	cfgw(4, 2, cmd0 & ~2);
	printf("cmd %s mem-off 0x%x\n", N, cfg16(4));
	for (int i = 0; i < 6; i++)
		if (bi[i].size) {
			rd(i, 0, 4);
			wr(i, 0x4, 4, 0);
		}
	if (bi[0].size && (bi[0].flags & VFIO_REGION_INFO_FLAG_MMAP)) {
		void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0);
		printf("mmap %s bar0-memoff = %s\n", N, m == MAP_FAILED ? en(errno) : "ok");
		if (m != MAP_FAILED) {
			touch("bar0-memoff", m);
			cfgw(4, 2, cmd0);
			touch("bar0-memon", m);
			cfgw(4, 2, cmd0 & ~2);
			touch("bar0-memoff-again", m);
			munmap(m, 4096);
		}
	}
	rd(6, 0, 4);
	region_info(6, 32);
	cfgw(4, 2, cmd0 & ~1);
	for (int i = 0; i < 6; i++)
		if (bi[i].size)
			rd(i, 0, 4);
	cfgw(4, 2, cmd0);
	if (msix) {
		uint32_t t = cfg32(msix + 4);
		int tb = t & 7;
		void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, OFF(tb) + ((t & ~7u) & ~4095u));
		printf("mmap %s msix-table = %s\n", N, m == MAP_FAILED ? en(errno) : "ok");
		if (m != MAP_FAILED) {
			touch("msix-vector0-ctrl", (void *)((char *)m + ((t & ~7u) & 4095) + 12));
			munmap(m, 4096);
		}
	}
	/* ROM */
	rd(6, 0, 4);
	rd(6, 0, 8);
	rd(6, 0, 32);
	wr(6, 0, 4, 0);
	if (bi[6].size) {
		static uint8_t rom[1 << 20];
		long r = pread(dev, rom, bi[6].size, OFF(6));
		long last = -1;
		for (long i = 0; i < r; i++)
			if (rom[i] != 0xff)
				last = i;
		printf("rom %s read=%ld last_non_ff=0x%lx\n", N, r, last);
		rd(6, bi[6].size - 4, 8);
		rd(6, bi[6].size, 4);
	}
	rd(8, 0, 4);
	rd(8, 0xa0000, 4);
	rd(8, 0x3c0, 1);

	/* mmap rules */
	try_mmap("cfg", 4096, PROT_READ, MAP_SHARED, OFF(CFG));
	try_mmap("rom", 4096, PROT_READ, MAP_SHARED, OFF(6));
	try_mmap("vga", 4096, PROT_READ, MAP_SHARED, OFF(8));
	try_mmap("idx9", 4096, PROT_READ, MAP_SHARED, OFF(9));
	try_mmap("idx20", 4096, PROT_READ, MAP_SHARED, OFF(20));
	for (int i = 0; i < 6; i++) {
		char w[32];
		snprintf(w, sizeof(w), "bar%d", i);
		try_mmap(w, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, OFF(i));
		if (bi[i].flags & VFIO_REGION_INFO_FLAG_MMAP) {
			snprintf(w, sizeof(w), "bar%d-private", i);
			try_mmap(w, 4096, PROT_READ, MAP_PRIVATE, OFF(i));
			snprintf(w, sizeof(w), "bar%d-full", i);
			try_mmap(w, bi[i].size < 4096 ? 4096 : bi[i].size, PROT_READ, MAP_SHARED, OFF(i));
			snprintf(w, sizeof(w), "bar%d-over", i);
			try_mmap(w, (bi[i].size < 4096 ? 4096 : bi[i].size) + 4096, PROT_READ, MAP_SHARED, OFF(i));
			snprintf(w, sizeof(w), "bar%d-lastpage", i);
			uint64_t lp = bi[i].size > 4096 ? bi[i].size - 4096 : 0;
			try_mmap(w, 4096, PROT_READ, MAP_SHARED, OFF(i) + lp);
			snprintf(w, sizeof(w), "bar%d-pastend", i);
			try_mmap(w, 4096, PROT_READ, MAP_SHARED, OFF(i) + (bi[i].size < 4096 ? 4096 : bi[i].size));
			snprintf(w, sizeof(w), "bar%d-unaligned", i);
			try_mmap(w, 4096, PROT_READ, MAP_SHARED, OFF(i) + 8);
			snprintf(w, sizeof(w), "bar%d-len0", i);
			try_mmap(w, 0, PROT_READ, MAP_SHARED, OFF(i));
		}
	}

	/* resets: bus master, decode, what the virtual config shows afterwards */
	cfgw(4, 2, cmd0 | 4);
	struct vfio_device_info di = { .argsz = sizeof(di) };
	ioctl(dev, VFIO_DEVICE_GET_INFO, &di);
	printf("info %s flags=0x%x\n", N, di.flags);
	void *m0 = MAP_FAILED;
	if (bi[0].flags & VFIO_REGION_INFO_FLAG_MMAP)
		m0 = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0);
	if (m0 != MAP_FAILED)
		touch("bar0-before-reset", m0);
	int r = ioctl(dev, VFIO_DEVICE_RESET);
	printf("reset %s = %d %s cmd=0x%x\n", N, r, r ? en(errno) : "", cfg16(4));
	if (m0 != MAP_FAILED) {
		touch("bar0-after-reset", m0);
		munmap(m0, 4096);
	}
	dump("after-reset");
	if (exp) {
		cfgw(4, 2, cmd0 | 4);
		uint16_t ctl = cfg16(exp + 8);
		cw(exp + 8, 2, ctl | 0x8000);
		printf("flr %s cmd=0x%x\n", N, cfg16(4));
		dump("after-devctl-flr");
	}

	/* device-specific registers through pread/pwrite */
	if (!strcmp(name, "edu")) {
		rd(0, 0x00, 4);
		rd(0, 0x04, 4);
		wr(0, 0x04, 4, 0x12345678);
		rd(0, 0x04, 4);
		rd(0, 0x04, 8);
		rd(0, 0x04, 2);
		wr(0, 0x04, 2, 0x1111);
		rd(0, 0x04, 4);
		wr(0, 0x00, 8, 0x2222222233333333ull);
		rd(0, 0x04, 4);
		wr(0, 0x04, 8, 0x0000000533333333ull); /* two 4-byte writes: liveness, then factorial 5 */
		edu_wait();
		rd(0, 0x04, 4);
		rd(0, 0x20, 4);
		rd(0, 0x08, 4);
		wr(0, 0x08, 4, 12);
		edu_wait();
		rd(0, 0x08, 4);
		wr(0, 0x08, 4, 34);
		edu_wait();
		rd(0, 0x08, 4);
		rd(0, 0x24, 4);
		wr(0, 0x20, 4, 0x80);
		rd(0, 0x20, 4);
		wr(0, 0x20, 4, 0);
		rd(0, 0x20, 4);
		wr(0, 0x80, 8, 0x1000);
		rd(0, 0x80, 8);
		rd(0, 0x80, 4);
		rd(0, 0x84, 4);
		wr(0, 0x88, 4, 0x40000);
		rd(0, 0x88, 8);
		wr(0, 0x90, 4, 0x100);
		rd(0, 0x90, 4);
		rd(0, 0x98, 8);
		rd(0, 0x0c, 4);
		rd(0, 0x40000, 4);
		rd(0, 0x7c, 8);
		rd(0, 0x100, 4);
		edu_dma(iommufd);
	}
	close(dev);
	/* reopen: what open does to the state the user left */
	dev = open(cdev, O_RDWR);
	bind.argsz = sizeof(bind);
	if (ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		printf("ERR rebind %s\n", en(errno));
	dump("reopen");
	if (!strcmp(name, "edu")) {
		rd(0, 0x04, 4);
		rd(0, 0x08, 4);
		rd(0, 0x20, 4);
		rd(0, 0x80, 8);
	}
	close(dev);
	close(iommufd);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_sig };
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 1; i < argc; i++)
		device(argv[i]);
	return 0;
}
