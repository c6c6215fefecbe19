// SPDX-License-Identifier: MIT
/*
 * irqs.c - VFIO interrupt uAPI on a vfio-pci device, one line per call:
 * GET_IRQ_INFO bytes for every index, a table of SET_IRQS validation cases,
 * software (loopback) triggers reaching eventfds, MSI/MSI-X enable/disable and
 * vector changes, INTx masking, and - for QEMU's edu - real interrupts raised by
 * the device (INTx with its automask, MSI).
 *
 * usage: irqs NAME CDEV BDF [edu]
 * Build: ../shared/oracle/oracle-cc -o /tmp/irqs tools/oracle/irqs.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <poll.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

static int dev;

static void res(const char *what, long ret)
{
	if (ret < 0)
		printf("%-64s = %ld %s\n", what, ret, strerrorname_np(errno) ?: "?");
	else
		printf("%-64s = %ld\n", what, ret);
}

static void hex(const char *tag, const void *p, size_t n)
{
	const unsigned char *b = p;

	printf("    %s:", tag);
	for (size_t i = 0; i < n; i++)
		printf(" %02x", b[i]);
	printf("\n");
}

/* counter of an eventfd (non-blocking read; 0 if EAGAIN) */
static unsigned long long cnt(int efd)
{
	uint64_t v = 0;

	if (read(efd, &v, 8) != 8)
		return 0;
	return v;
}

/* the same after giving a real interrupt time to arrive (another vCPU may take it) */
static unsigned long long cntw(int efd)
{
	usleep(200000);
	return cnt(efd);
}

static const char *g_bdf;

/* the physical config space through sysfs */
static void phys_cfg(const char *tag, unsigned int off, unsigned int len)
{
	char path[128];
	unsigned char b[64];
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/config", g_bdf);
	fd = open(path, O_RDONLY);
	if (fd < 0 || pread(fd, b, len, off) != (ssize_t)len) {
		printf("    %s: unreadable\n", tag);
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	hex(tag, b, len);
}

static long set_irqs(uint32_t argsz, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
		     const void *data, size_t dlen)
{
	char buf[4096] __attribute__((aligned(8)));
	struct vfio_irq_set *s = (void *)buf;

	memset(buf, 0, sizeof(buf));
	s->argsz = argsz;
	s->flags = flags;
	s->index = index;
	s->start = start;
	s->count = count;
	if (dlen)
		memcpy(s->data, data, dlen);
	return ioctl(dev, VFIO_DEVICE_SET_IRQS, s);
}

#define NONE VFIO_IRQ_SET_DATA_NONE
#define BOOL VFIO_IRQ_SET_DATA_BOOL
#define EFD VFIO_IRQ_SET_DATA_EVENTFD
#define MASK VFIO_IRQ_SET_ACTION_MASK
#define UNMASK VFIO_IRQ_SET_ACTION_UNMASK
#define TRIG VFIO_IRQ_SET_ACTION_TRIGGER

static long fds_set(uint32_t index, uint32_t start, uint32_t count, const int *fds)
{
	return set_irqs(20 + 4 * count, EFD | TRIG, index, start, count, fds, 4 * count);
}

static long none_trig(uint32_t index, uint32_t start, uint32_t count)
{
	return set_irqs(20, NONE | TRIG, index, start, count, NULL, 0);
}

static uint32_t irq_count[5];

static void irq_info(void)
{
	char what[96];

	for (unsigned int i = 0; i <= 5; i++) {
		struct vfio_irq_info info = { .argsz = sizeof(info), .index = i };
		long r;

		memset((char *)&info + 4, 0xa5, 4);
		info.index = i;
		info.count = 0x5a5a5a5a;
		snprintf(what, sizeof(what), "GET_IRQ_INFO index %u", i);
		r = ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &info);
		res(what, r);
		if (!r) {
			hex("bytes", &info, sizeof(info));
			irq_count[i] = info.count;
		}
	}
	/* argsz edges */
	{
		unsigned char b[32];
		struct vfio_irq_info *info = (void *)b;

		memset(b, 0xee, sizeof(b));
		info->argsz = 15;
		info->index = 1;
		res("GET_IRQ_INFO argsz 15", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, info));
		memset(b, 0xee, sizeof(b));
		info->argsz = 32;
		info->index = 2;
		res("GET_IRQ_INFO argsz 32 (tail untouched?)", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, info));
		hex("bytes", b, 32);
		memset(b, 0xee, sizeof(b));
		info->argsz = 16;
		info->index = 0xffffffff;
		res("GET_IRQ_INFO index 0xffffffff", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, info));
		res("GET_IRQ_INFO arg NULL", ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, NULL));
	}
}

static void validation(void)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	char what[128];
	uint8_t one = 1;
	int m1 = -1, m2 = -2, bad = 1000;
	struct {
		const char *name;
		uint32_t argsz, flags, index, start, count;
		const void *data;
		size_t dlen;
	} t[] = {
		{ "argsz 19 MSIX NONE|TRIG 0/0", 19, NONE | TRIG, 2, 0, 0, 0, 0 },
		{ "index 5", 20, NONE | TRIG, 5, 0, 1, 0, 0 },
		{ "index 5 count 0", 20, NONE | TRIG, 5, 0, 0, 0, 0 },
		{ "flags bit 6", 20, NONE | TRIG | 0x40, 4, 0, 1, 0, 0 },
		{ "start 1 count 0xfffffffe", 20, NONE | TRIG, 4, 1, 0xfffffffe, 0, 0 },
		{ "start 0 count 0xffffffff", 20, NONE | TRIG, 4, 0, 0xffffffff, 0, 0 },
		{ "REQ start 1 count 0", 20, NONE | TRIG, 4, 1, 0, 0, 0 },
		{ "REQ start 0 count 2", 20, NONE | TRIG, 4, 0, 2, 0, 0 },
		{ "REQ NONE|BOOL", 21, NONE | BOOL | TRIG, 4, 0, 1, &one, 1 },
		{ "REQ no data type", 20, TRIG, 4, 0, 1, 0, 0 },
		{ "REQ BOOL argsz 20", 20, BOOL | TRIG, 4, 0, 1, 0, 0 },
		{ "REQ EFD argsz 23", 23, EFD | TRIG, 4, 0, 1, &m1, 3 },
		{ "REQ NONE no action", 20, NONE, 4, 0, 1, 0, 0 },
		{ "REQ NONE MASK", 20, NONE | MASK, 4, 0, 1, 0, 0 },
		{ "REQ NONE UNMASK", 20, NONE | UNMASK, 4, 0, 1, 0, 0 },
		{ "REQ NONE MASK|TRIG", 20, NONE | MASK | TRIG, 4, 0, 1, 0, 0 },
		{ "REQ NONE TRIG count 1 (none registered)", 20, NONE | TRIG, 4, 0, 1, 0, 0 },
		{ "REQ NONE TRIG count 0 (none registered)", 20, NONE | TRIG, 4, 0, 0, 0, 0 },
		{ "REQ BOOL count 0", 20, BOOL | TRIG, 4, 0, 0, 0, 0 },
		{ "REQ BOOL count 1 (none registered)", 21, BOOL | TRIG, 4, 0, 1, &one, 1 },
		{ "REQ EFD count 0", 20, EFD | TRIG, 4, 0, 0, 0, 0 },
		{ "REQ EFD fd -2", 24, EFD | TRIG, 4, 0, 1, &m2, 4 },
		{ "REQ EFD fd 1000 (not open)", 24, EFD | TRIG, 4, 0, 1, &bad, 4 },
		{ "REQ EFD fd = device fd", 24, EFD | TRIG, 4, 0, 1, &dev, 4 },
		{ "REQ EFD fd -1 (none registered)", 24, EFD | TRIG, 4, 0, 1, &m1, 4 },
		{ "ERR NONE TRIG count 1", 20, NONE | TRIG, 3, 0, 1, 0, 0 },
		{ "ERR NONE TRIG count 0", 20, NONE | TRIG, 3, 0, 0, 0, 0 },
		{ "ERR NONE MASK", 20, NONE | MASK, 3, 0, 1, 0, 0 },
		{ "ERR EFD fd -2", 24, EFD | TRIG, 3, 0, 1, &m2, 4 },
		{ "INTX MASK NONE (not enabled)", 20, NONE | MASK, 0, 0, 1, 0, 0 },
		{ "INTX UNMASK NONE (not enabled)", 20, NONE | UNMASK, 0, 0, 1, 0, 0 },
		{ "INTX MASK EFD (not enabled)", 24, EFD | MASK, 0, 0, 1, &efd, 4 },
		{ "INTX TRIG NONE count 1 (not enabled)", 20, NONE | TRIG, 0, 0, 1, 0, 0 },
		{ "INTX TRIG NONE count 0 (not enabled)", 20, NONE | TRIG, 0, 0, 0, 0, 0 },
		{ "INTX TRIG BOOL count 1 (not enabled)", 21, BOOL | TRIG, 0, 0, 1, &one, 1 },
		{ "INTX TRIG EFD fd 1000", 24, EFD | TRIG, 0, 0, 1, &bad, 4 },
		{ "INTX TRIG EFD fd = device fd", 24, EFD | TRIG, 0, 0, 1, &dev, 4 },
		{ "INTX start 1 count 0", 20, NONE | TRIG, 0, 1, 0, 0, 0 },
		{ "MSI MASK NONE", 20, NONE | MASK, 1, 0, 1, 0, 0 },
		{ "MSI UNMASK NONE", 20, NONE | UNMASK, 1, 0, 1, 0, 0 },
		{ "MSI TRIG NONE count 1 (not enabled)", 20, NONE | TRIG, 1, 0, 1, 0, 0 },
		{ "MSI TRIG NONE count 0 (not enabled)", 20, NONE | TRIG, 1, 0, 0, 0, 0 },
		{ "MSI TRIG BOOL count 0 (not enabled)", 20, BOOL | TRIG, 1, 0, 0, 0, 0 },
		{ "MSI TRIG EFD count 0 (not enabled)", 20, EFD | TRIG, 1, 0, 0, 0, 0 },
		{ "MSI TRIG EFD fd -1 (not enabled)", 24, EFD | TRIG, 1, 0, 1, &m1, 4 },
		{ "MSI TRIG EFD fd 1000", 24, EFD | TRIG, 1, 0, 1, &bad, 4 },
		{ "MSIX MASK NONE", 20, NONE | MASK, 2, 0, 1, 0, 0 },
		{ "MSIX UNMASK EFD", 24, EFD | UNMASK, 2, 0, 1, &efd, 4 },
		{ "MSIX MASK|UNMASK", 20, NONE | MASK | UNMASK, 2, 0, 1, 0, 0 },
		{ "MSIX TRIG NONE count 1 (not enabled)", 20, NONE | TRIG, 2, 0, 1, 0, 0 },
		{ "MSIX TRIG NONE count 0 (not enabled)", 20, NONE | TRIG, 2, 0, 0, 0, 0 },
		{ "MSIX TRIG BOOL count 0 (not enabled)", 20, BOOL | TRIG, 2, 0, 0, 0, 0 },
		{ "MSIX TRIG EFD count 0 (not enabled)", 20, EFD | TRIG, 2, 0, 0, 0, 0 },
		{ "MSIX TRIG EFD fd -1 (not enabled)", 24, EFD | TRIG, 2, 0, 1, &m1, 4 },
		{ "MSIX TRIG EFD fd 1000", 24, EFD | TRIG, 2, 0, 1, &bad, 4 },
		{ "MSIX TRIG EFD fd = device fd", 24, EFD | TRIG, 2, 0, 1, &dev, 4 },
		{ "MSIX start = count", 20, NONE | TRIG, 2, irq_count[2], 0, 0, 0 },
		{ "MSIX start 0 count = count+1", 20, NONE | TRIG, 2, 0, irq_count[2] + 1, 0, 0 },
		{ "MSIX start 0 count 0xffffffff", 20, NONE | TRIG, 2, 0, 0xffffffff, 0, 0 },
		{ "MSIX EFD count 2 argsz 27", 27, EFD | TRIG, 2, 0, 2, 0, 0 },
		{ "MSIX BOOL count 2 argsz 21", 21, BOOL | TRIG, 2, 0, 2, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(what, sizeof(what), "SET_IRQS %s", t[i].name);
		res(what, set_irqs(t[i].argsz, t[i].flags, t[i].index, t[i].start, t[i].count, t[i].data,
				   t[i].dlen));
	}
	res("SET_IRQS arg NULL", ioctl(dev, VFIO_DEVICE_SET_IRQS, NULL));
	/* the data array in an unreadable page */
	{
		long pg = sysconf(_SC_PAGESIZE);
		char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct vfio_irq_set *s = (void *)(m + pg - 20);

		mprotect(m + pg, pg, PROT_NONE);
		s->argsz = 24;
		s->flags = EFD | TRIG;
		s->index = 4;
		s->start = 0;
		s->count = 1;
		res("SET_IRQS REQ EFD data unreadable", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
		s->flags = NONE | TRIG;
		s->count = 1;
		res("SET_IRQS REQ NONE data unreadable (none read)", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
		s->flags = EFD | TRIG;
		s->index = 9;
		res("SET_IRQS index 9 data unreadable", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
		munmap(m, 2 * pg);
	}
	close(efd);
}

static void req_err(void)
{
	int e1 = eventfd(0, EFD_NONBLOCK), e2 = eventfd(0, EFD_NONBLOCK);
	uint8_t b1 = 1, b0 = 0;
	int m1 = -1;

	res("REQ EFD e1", fds_set(4, 0, 1, &e1));
	res("REQ NONE count 1", none_trig(4, 0, 1));
	res("REQ BOOL 1", set_irqs(21, BOOL | TRIG, 4, 0, 1, &b1, 1));
	res("REQ BOOL 0", set_irqs(21, BOOL | TRIG, 4, 0, 1, &b0, 1));
	printf("    e1=%llu\n", cnt(e1));
	res("REQ EFD e2 (replace)", fds_set(4, 0, 1, &e2));
	res("REQ NONE count 1", none_trig(4, 0, 1));
	printf("    e1=%llu e2=%llu\n", cnt(e1), cnt(e2));
	res("REQ NONE count 0 (unregister)", none_trig(4, 0, 0));
	res("REQ NONE count 1 (none now)", none_trig(4, 0, 1));
	res("REQ EFD e1 again", fds_set(4, 0, 1, &e1));
	res("REQ EFD -1 (unregister)", fds_set(4, 0, 1, &m1));
	res("REQ BOOL 1 (none registered)", set_irqs(21, BOOL | TRIG, 4, 0, 1, &b1, 1));
	printf("    e1=%llu\n", cnt(e1));
	if (irq_count[3]) {
		res("ERR EFD e1", fds_set(3, 0, 1, &e1));
		res("ERR NONE count 1", none_trig(3, 0, 1));
		printf("    e1=%llu\n", cnt(e1));
		res("ERR NONE count 0", none_trig(3, 0, 0));
	}
	close(e1);
	close(e2);
}

#define CFG_OFF ((uint64_t)VFIO_PCI_CONFIG_REGION_INDEX << 40)

static volatile uint32_t *msix_tab, *msix_pba;
static unsigned int msix_pos;

static void find_msix(void)
{
	uint8_t pos = 0, id;
	uint32_t table, pba;

	pread(dev, &pos, 1, CFG_OFF + 0x34);
	while (pos) {
		pread(dev, &id, 1, CFG_OFF + pos);
		if (id == 0x11)
			break;
		pread(dev, &pos, 1, CFG_OFF + pos + 1);
	}
	if (!pos)
		return;
	msix_pos = pos;
	pread(dev, &table, 4, CFG_OFF + pos + 4);
	pread(dev, &pba, 4, CFG_OFF + pos + 8);
	struct vfio_region_info ri = { .argsz = sizeof(ri), .index = table & 7 };
	if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, &ri))
		return;
	char *m = mmap(NULL, ri.size, PROT_READ, MAP_SHARED, dev, ri.offset);
	if (m == MAP_FAILED) {
		printf("    mmap of the MSI-X BAR failed\n");
		return;
	}
	msix_tab = (void *)(m + (table & ~7u));
	if ((pba & 7) == (table & 7))
		msix_pba = (void *)(m + (pba & ~7u));
}

static void dump_msix(const char *tag, unsigned int n)
{
	if (!msix_tab)
		return;
	printf("    %s:\n", tag);
	phys_cfg("phys MSI-X flags", msix_pos + 2, 2);
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	for (unsigned int i = 0; i < n; i++)
		printf("      entry %u: addr %08x:%08x data %08x ctrl %08x\n", i, msix_tab[4 * i + 1],
		       msix_tab[4 * i], msix_tab[4 * i + 2], msix_tab[4 * i + 3]);
	if (msix_pba)
		printf("      pba %08x\n", msix_pba[0]);
}

static void msi_flows(uint32_t index)
{
	const char *n = index == 1 ? "MSI" : "MSIX";
	uint32_t nv = irq_count[index] < 8 ? irq_count[index] : 8;
	int e[8], f[8], m1 = -1;
	char what[128];
	uint8_t bools[8] = { 1, 0, 1, 0, 1, 0, 1, 0 };

	if (!nv)
		return;
	printf("-- %s with %u vectors\n", n, nv);
	res("EFD count 0 (nothing enabled)", set_irqs(20, EFD | TRIG, index, 0, 0, NULL, 0));
	if (index == 1)
		phys_cfg("phys MSI cap before", 0, 0);
	if (index == 2) {
		find_msix();
		dump_msix("before", nv);
	}
	for (uint32_t i = 0; i < nv; i++) {
		e[i] = eventfd(0, EFD_NONBLOCK);
		f[i] = eventfd(0, EFD_NONBLOCK);
	}
	snprintf(what, sizeof(what), "%s EFD 0..%u", n, nv);
	res(what, fds_set(index, 0, nv, e));
	if (index == 2)
		dump_msix("enabled", nv);
	printf("    counters:");
	for (uint32_t i = 0; i < nv; i++)
		printf(" %llu", cnt(e[i]));
	printf("\n");
	res("NONE trigger all", none_trig(index, 0, nv));
	res("NONE trigger all again", none_trig(index, 0, nv));
	printf("    counters:");
	for (uint32_t i = 0; i < nv; i++)
		printf(" %llu", cnt(e[i]));
	printf("\n");
	res("BOOL trigger 1,0,1,0..", set_irqs(20 + nv, BOOL | TRIG, index, 0, nv, bools, nv));
	printf("    counters:");
	for (uint32_t i = 0; i < nv; i++)
		printf(" %llu", cnt(e[i]));
	printf("\n");
	res("NONE trigger count 0 is disable", none_trig(index, 0, 0));
	res("NONE trigger after disable", none_trig(index, 0, 1));
	res("EFD start 0 count 1", fds_set(index, 0, 1, e));
	res("EFD count 0 while enabled", set_irqs(20, EFD | TRIG, index, 0, 0, NULL, 0));
	res("BOOL count 0 while enabled", set_irqs(20, BOOL | TRIG, index, 0, 0, NULL, 0));
	if (nv > 1) {
		snprintf(what, sizeof(what), "EFD vector %u (past the enabled count)", nv - 1);
		res(what, fds_set(index, nv - 1, 1, &e[nv - 1]));
		res("NONE trigger all", none_trig(index, 0, nv));
		printf("    counters:");
		for (uint32_t i = 0; i < nv; i++)
			printf(" %llu", cnt(e[i]));
		printf("\n");
	}
	res("change vector 0 to f0", fds_set(index, 0, 1, f));
	res("NONE trigger 0", none_trig(index, 0, 1));
	printf("    e0=%llu f0=%llu\n", cnt(e[0]), cnt(f[0]));
	res("vector 0 fd -1", fds_set(index, 0, 1, &m1));
	if (index == 2)
		dump_msix("vector 0 without trigger", nv);
	res("NONE trigger 0 (no trigger)", none_trig(index, 0, 1));
	printf("    e0=%llu f0=%llu\n", cnt(e[0]), cnt(f[0]));
	res("other index while enabled: INTX TRIG EFD", fds_set(0, 0, 1, e));
	res("other index while enabled: INTX MASK", set_irqs(20, NONE | MASK, 0, 0, 1, 0, 0));
	res("other index while enabled: INTX TRIG NONE count 0", none_trig(0, 0, 0));
	res(index == 1 ? "other index while enabled: MSIX EFD" : "other index while enabled: MSI EFD",
	    fds_set(index == 1 ? 2 : 1, 0, 1, e));
	res("disable", none_trig(index, 0, 0));
	if (index == 2)
		dump_msix("disabled", nv);
	res("disable again", none_trig(index, 0, 0));
	if (nv > 2) {
		int bad[3] = { e[0], dev, e[2] };

		res("EFD [e0, devfd, e2] (not enabled)", fds_set(index, 0, 3, bad));
		res("NONE trigger (enabled?)", none_trig(index, 0, 1));
		res("EFD 0..3", fds_set(index, 0, 3, e));
		res("EFD [f0, devfd, f2] (enabled)", fds_set(index, 0, 3, (int[]){ f[0], dev, f[2] }));
		res("NONE trigger 0..3", none_trig(index, 0, 3));
		printf("    e=%llu,%llu,%llu f=%llu,%llu,%llu\n", cnt(e[0]), cnt(e[1]), cnt(e[2]), cnt(f[0]),
		       cnt(f[1]), cnt(f[2]));
		res("disable", none_trig(index, 0, 0));
		res("EFD start 2 count 1 (enable)", fds_set(index, 2, 1, &e[2]));
		res("NONE trigger 0..3", none_trig(index, 0, 3));
		printf("    e=%llu,%llu,%llu\n", cnt(e[0]), cnt(e[1]), cnt(e[2]));
		res("same eventfd on two vectors", fds_set(index, 0, 2, (int[]){ f[0], f[0] }));
		res("NONE trigger 0..3", none_trig(index, 0, 3));
		printf("    f0=%llu e2=%llu\n", cnt(f[0]), cnt(e[2]));
		res("disable", none_trig(index, 0, 0));
	}
	for (uint32_t i = 0; i < nv; i++) {
		close(e[i]);
		close(f[i]);
	}
}

static void intx_flows(void)
{
	int e = eventfd(0, EFD_NONBLOCK), u = eventfd(0, EFD_NONBLOCK), u2 = eventfd(0, EFD_NONBLOCK);
	int m1 = -1;
	uint8_t b1 = 1, b0 = 0;

	if (!irq_count[0])
		return;
	printf("-- INTx\n");
	res("INTX EFD fd -1 (enable without trigger)", fds_set(0, 0, 1, &m1));
	res("INTX NONE trigger (no eventfd)", none_trig(0, 0, 1));
	res("INTX EFD e (replace trigger)", fds_set(0, 0, 1, &e));
	res("INTX NONE trigger", none_trig(0, 0, 1));
	res("INTX BOOL 1", set_irqs(21, BOOL | TRIG, 0, 0, 1, &b1, 1));
	res("INTX BOOL 0", set_irqs(21, BOOL | TRIG, 0, 0, 1, &b0, 1));
	printf("    e=%llu\n", cnt(e));
	res("INTX MASK NONE", set_irqs(20, NONE | MASK, 0, 0, 1, 0, 0));
	res("INTX NONE trigger while masked", none_trig(0, 0, 1));
	printf("    e=%llu\n", cnt(e));
	res("INTX MASK BOOL 0", set_irqs(21, BOOL | MASK, 0, 0, 1, &b0, 1));
	res("INTX MASK EFD", set_irqs(24, EFD | MASK, 0, 0, 1, &u, 4));
	res("INTX MASK start 0 count 0", set_irqs(20, NONE | MASK, 0, 0, 0, 0, 0));
	res("INTX UNMASK NONE", set_irqs(20, NONE | UNMASK, 0, 0, 1, 0, 0));
	printf("    e=%llu\n", cnt(e));
	res("INTX UNMASK BOOL 1", set_irqs(21, BOOL | UNMASK, 0, 0, 1, &b1, 1));
	res("INTX UNMASK EFD u", set_irqs(24, EFD | UNMASK, 0, 0, 1, &u, 4));
	res("INTX UNMASK EFD u2 (second)", set_irqs(24, EFD | UNMASK, 0, 0, 1, &u2, 4));
	res("INTX UNMASK EFD -1", set_irqs(24, EFD | UNMASK, 0, 0, 1, &m1, 4));
	res("INTX UNMASK EFD u2", set_irqs(24, EFD | UNMASK, 0, 0, 1, &u2, 4));
	res("INTX UNMASK EFD -2", set_irqs(24, EFD | UNMASK, 0, 0, 1, (int[]){ -2 }, 4));
	res("INTX TRIG EFD e again (enabled)", fds_set(0, 0, 1, &e));
	res("INTX TRIG EFD -1 (remove trigger)", fds_set(0, 0, 1, &m1));
	res("INTX NONE trigger (no eventfd)", none_trig(0, 0, 1));
	printf("    e=%llu\n", cnt(e));
	res("INTX MSI EFD while INTx enabled", fds_set(1, 0, 1, &e));
	res("INTX MSIX EFD while INTx enabled", fds_set(2, 0, 1, &e));
	res("INTX disable", none_trig(0, 0, 0));
	res("INTX disable again", none_trig(0, 0, 0));
	res("INTX EFD e BOOL... (enable with BOOL)", set_irqs(21, BOOL | TRIG, 0, 0, 1, &b1, 1));
	res("INTX enable e", fds_set(0, 0, 1, &e));
	res("INTX disable via BOOL count 0", set_irqs(20, BOOL | TRIG, 0, 0, 0, 0, 0));
	res("INTX disable via EFD count 0", set_irqs(20, EFD | TRIG, 0, 0, 0, 0, 0));
	res("INTX disable", none_trig(0, 0, 0));
	close(e);
	close(u);
	close(u2);
}

#define BAR0_OFF 0ull

static long edu_w(uint32_t reg, uint32_t v)
{
	return pwrite(dev, &v, 4, BAR0_OFF + reg);
}

static uint32_t edu_r(uint32_t reg)
{
	uint32_t v = 0xdeadbeef;

	if (pread(dev, &v, 4, BAR0_OFF + reg) != 4)
		return 0xdeadbeef;
	return v;
}

static void edu(void)
{
	int e = eventfd(0, EFD_NONBLOCK), u = eventfd(0, EFD_NONBLOCK);
	uint16_t cmd;
	uint64_t one = 1;

	printf("-- edu real interrupts\n");
	pread(dev, &cmd, 2, CFG_OFF + 4);
	printf("    virtual COMMAND=%#x\n", cmd);
	cmd |= 2;
	res("cfg write COMMAND |= MEMORY", pwrite(dev, &cmd, 2, CFG_OFF + 4));
	printf("    ident=%#x status=%#x\n", edu_r(0), edu_r(0x24));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	res("INTX enable e", fds_set(0, 0, 1, &e));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	res("edu raise 0x1", edu_w(0x60, 1));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	printf("    e=%llu irqstatus=%#x\n", cntw(e), edu_r(0x24));
	res("edu raise 0x2 (automasked)", edu_w(0x60, 2));
	printf("    e=%llu\n", cntw(e));
	res("INTX UNMASK while still asserted", set_irqs(20, NONE | UNMASK, 0, 0, 1, 0, 0));
	printf("    e=%llu\n", cntw(e));
	res("edu ack 0x3", edu_w(0x64, 3));
	res("INTX UNMASK after ack", set_irqs(20, NONE | UNMASK, 0, 0, 1, 0, 0));
	printf("    e=%llu\n", cntw(e));
	res("edu raise 0x4", edu_w(0x60, 4));
	printf("    e=%llu\n", cntw(e));
	res("edu ack 0x4", edu_w(0x64, 4));
	res("INTX UNMASK EFD u", set_irqs(24, EFD | UNMASK, 0, 0, 1, &u, 4));
	printf("    e=%llu\n", cntw(e));
	res("write 1 to u (unmask via eventfd)", write(u, &one, 8));
	printf("    e=%llu u=%llu\n", cntw(e), cnt(u));
	res("edu raise 0x8", edu_w(0x60, 8));
	printf("    e=%llu\n", cntw(e));
	res("write 1 to u while asserted", write(u, &one, 8));
	printf("    e=%llu u=%llu\n", cntw(e), cnt(u));
	res("edu ack 0x8", edu_w(0x64, 8));
	res("write 1 to u", write(u, &one, 8));
	printf("    e=%llu\n", cntw(e));
	/* virtual INTx disable */
	{
		uint16_t c2 = cmd | 0x400;

		res("cfg COMMAND |= INTX_DISABLE", pwrite(dev, &c2, 2, CFG_OFF + 4));
		res("INTX NONE trigger while virq disabled", none_trig(0, 0, 1));
		res("edu raise 0x10 while virq disabled", edu_w(0x60, 0x10));
		printf("    e=%llu\n", cntw(e));
		res("cfg COMMAND &= ~INTX_DISABLE (asserted)", pwrite(dev, &cmd, 2, CFG_OFF + 4));
		printf("    e=%llu\n", cntw(e));
		res("edu ack 0x10", edu_w(0x64, 0x10));
		res("INTX UNMASK", set_irqs(20, NONE | UNMASK, 0, 0, 1, 0, 0));
		printf("    e=%llu\n", cntw(e));
	}
	res("edu raise 0x20 then disable INTx", edu_w(0x60, 0x20));
	printf("    e=%llu\n", cntw(e));
	res("INTX disable", none_trig(0, 0, 0));
	res("edu ack 0x20", edu_w(0x64, 0x20));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	phys_cfg("phys MSI cap", 0x40, 16);
	res("MSI enable e (bus master off)", fds_set(1, 0, 1, &e));
	res("edu raise 0x1 (MSI, bus master off)", edu_w(0x60, 1));
	printf("    e=%llu\n", cntw(e));
	res("edu ack 0x1", edu_w(0x64, 1));
	{
		uint16_t m = cmd | 4;

		res("cfg COMMAND |= MASTER", pwrite(dev, &m, 2, CFG_OFF + 4));
	}
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	phys_cfg("phys MSI cap", 0x40, 16);
	res("edu raise 0x1 (MSI)", edu_w(0x60, 1));
	printf("    e=%llu\n", cntw(e));
	res("edu raise 0x1 again (MSI, status still set)", edu_w(0x60, 1));
	usleep(200000);
	res("edu raise 0x2 (MSI)", edu_w(0x60, 2));
	printf("    e=%llu\n", cntw(e));
	res("edu ack 0x3", edu_w(0x64, 3));
	printf("    e=%llu\n", cntw(e));
	res("MSI vector 0 fd -1", fds_set(1, 0, 1, (int[]){ -1 }));
	res("edu raise 0x1 (no trigger)", edu_w(0x60, 1));
	res("MSI vector 0 fd e", fds_set(1, 0, 1, &e));
	printf("    e=%llu\n", cntw(e));
	res("edu ack 0x1", edu_w(0x64, 1));
	res("MSI disable", none_trig(1, 0, 0));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	phys_cfg("phys MSI cap", 0x40, 16);
	res("edu raise 0x1 (INTx, none enabled)", edu_w(0x60, 1));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	res("INTX enable e (asserted)", fds_set(0, 0, 1, &e));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	printf("    e=%llu\n", cntw(e));
	system("grep vfio /proc/interrupts");
	res("INTX UNMASK", set_irqs(20, NONE | UNMASK, 0, 0, 1, 0, 0));
	printf("    e=%llu\n", cntw(e));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	res("edu ack", edu_w(0x64, 1));
	res("edu raise 0x1 (after the missed one)", edu_w(0x60, 1));
	printf("    e=%llu\n", cntw(e));
	phys_cfg("phys COMMAND/STATUS", 4, 4);
	system("grep vfio /proc/interrupts");
	res("edu ack", edu_w(0x64, 1));
	res("INTX UNMASK", set_irqs(20, NONE | UNMASK, 0, 0, 1, 0, 0));
	res("edu raise 0x1", edu_w(0x60, 1));
	printf("    e=%llu\n", cntw(e));
	res("INTX disable", none_trig(0, 0, 0));
	res("INTX enable e (not asserted: status still set? ack first)", (edu_w(0x64, 1), fds_set(0, 0, 1, &e)));
	res("edu raise 0x1", edu_w(0x60, 1));
	printf("    e=%llu\n", cntw(e));
	system("grep vfio /proc/interrupts");
	res("edu ack", edu_w(0x64, 1));
	res("INTX disable", none_trig(0, 0, 0));
	close(e);
	close(u);
}

static void e1000e_msix(void)
{
	int e[3];
	uint16_t cmd;

	printf("-- e1000e device-raised MSI-X\n");
	for (int i = 0; i < 3; i++)
		e[i] = eventfd(0, EFD_NONBLOCK);
	pread(dev, &cmd, 2, CFG_OFF + 4);
	cmd |= 6;
	res("cfg COMMAND |= MEMORY|MASTER", pwrite(dev, &cmd, 2, CFG_OFF + 4));
	res("MSIX enable vectors 0,1 (1 without trigger)", fds_set(2, 0, 2, (int[]){ e[0], -1 }));
	dump_msix("after enable", 3);
	res("IVAR: RXQ0 -> vector 1 (valid)", edu_w(0xe4, 0x8 | 1));
	res("IMS = RXQ0", edu_w(0xd0, 1u << 20));
	res("ICS = RXQ0 (vector 1 masked: pending)", edu_w(0xc8, 1u << 20));
	printf("    e0=%llu\n", cntw(e[0]));
	dump_msix("raised while masked", 3);
	res("vector 1 trigger e1 (request_irq unmasks)", fds_set(2, 1, 1, &e[1]));
	printf("    e1=%llu\n", cntw(e[1]));
	dump_msix("after trigger", 3);
	res("ICR W1C all", edu_w(0xc0, 0xffffffff));
	res("ICS = RXQ0 again", edu_w(0xc8, 1u << 20));
	printf("    e1=%llu\n", cntw(e[1]));
	res("ICR W1C all", edu_w(0xc0, 0xffffffff));
	res("vector 1 fd -1 (free_irq masks)", fds_set(2, 1, 1, (int[]){ -1 }));
	res("ICS = RXQ0 (masked again)", edu_w(0xc8, 1u << 20));
	printf("    e1=%llu\n", cntw(e[1]));
	dump_msix("raised after fd -1", 3);
	res("vector 1 trigger e2", fds_set(2, 1, 1, &e[2]));
	{
		unsigned long long a = cntw(e[1]), b = cnt(e[2]);

		printf("    e1=%llu e2=%llu\n", a, b);
	}
	res("ICR W1C all", edu_w(0xc0, 0xffffffff));
	res("IVAR: RXQ0 -> vector 2 (not allocated)", edu_w(0xe4, 0x8 | 2));
	res("ICS = RXQ0 -> vector 2", edu_w(0xc8, 1u << 20));
	dump_msix("raised on unallocated vector 2", 3);
	res("vector 2 trigger e0 (dynamic allocation)", fds_set(2, 2, 1, &e[0]));
	printf("    e0=%llu\n", cntw(e[0]));
	dump_msix("after", 3);
	res("ICR W1C all", edu_w(0xc0, 0xffffffff));
	res("MSIX disable", none_trig(2, 0, 0));
	cmd &= ~4;
	res("cfg COMMAND &= ~MASTER", pwrite(dev, &cmd, 2, CFG_OFF + 4));
	for (int i = 0; i < 3; i++)
		close(e[i]);
}

int main(int argc, char **argv)
{
	const char *name = argv[1], *cdev = argv[2];

	g_bdf = argv[3];
	int iommufd;
	struct vfio_device_info di = { .argsz = sizeof(di) };

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("==== %s\n", name);
	dev = open(cdev, O_RDWR);
	iommufd = open("/dev/iommu", O_RDWR);
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	res("BIND", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	res("GET_INFO", ioctl(dev, VFIO_DEVICE_GET_INFO, &di));
	printf("    flags=%#x num_irqs=%u\n", di.flags, di.num_irqs);
	irq_info();
	validation();
	req_err();
	msi_flows(1);
	msi_flows(2);
	intx_flows();
	if (argc > 4 && !strcmp(argv[4], "edu"))
		edu();
	if (argc > 4 && !strcmp(argv[4], "e1000e"))
		e1000e_msix();
	close(dev);
	close(iommufd);
	return 0;
}
