// SPDX-License-Identifier: MIT
/*
 * resets.c - VFIO_DEVICE_RESET, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO and
 * VFIO_DEVICE_PCI_HOT_RESET on one vfio-pci device, through the cdev (iommufd)
 * path and through the group (type1 container) path: argsz edges, the ENOSPC
 * header, the info bytes, the errnos, and what a reset does to MSI-X vectors.
 *
 * usage: resets NAME CDEV GROUP_DEV BDF
 * Build: ../shared/oracle/oracle-cc -o /tmp/resets tools/oracle/resets.c
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

static void info(uint32_t argsz, size_t show)
{
	unsigned char b[128];
	char what[96];

	memset(b, 0xee, sizeof(b));
	*(uint32_t *)b = argsz;
	snprintf(what, sizeof(what), "GET_PCI_HOT_RESET_INFO argsz %u", argsz);
	res(what, ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, b));
	hex("bytes", b, show);
}

static long hot_reset(uint32_t argsz, uint32_t flags, uint32_t count, const int *fds, int nfds)
{
	unsigned char b[128];
	struct vfio_pci_hot_reset *r = (void *)b;

	memset(b, 0, sizeof(b));
	r->argsz = argsz;
	r->flags = flags;
	r->count = count;
	memcpy(r->group_fds, fds, 4 * nfds);
	return ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, r);
}

static void common(void)
{
	info(11, 16);
	info(12, 24);
	info(20, 24);
	info(28, 32);
	info(64, 40);
	res("GET_PCI_HOT_RESET_INFO arg NULL", ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, NULL));
	res("PCI_HOT_RESET argsz 11", hot_reset(11, 0, 0, NULL, 0));
	res("PCI_HOT_RESET flags 1", hot_reset(12, 1, 0, NULL, 0));
	res("PCI_HOT_RESET arg NULL", ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, NULL));
	res("VFIO_DEVICE_RESET", ioctl(dev, VFIO_DEVICE_RESET, NULL));
	res("VFIO_DEVICE_RESET (arg garbage)", ioctl(dev, VFIO_DEVICE_RESET, (void *)8));
}

static void msix_across_reset(void)
{
	struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = VFIO_PCI_MSIX_IRQ_INDEX };
	char buf[64];
	struct vfio_irq_set *s = (void *)buf;
	int e[2] = { eventfd(0, EFD_NONBLOCK), eventfd(0, EFD_NONBLOCK) };
	uint64_t v;

	if (ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii) || ii.count < 2)
		return;
	s->argsz = 28;
	s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	s->index = VFIO_PCI_MSIX_IRQ_INDEX;
	s->start = 0;
	s->count = 2;
	memcpy(s->data, e, 8);
	res("MSIX enable 2 vectors", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
	res("VFIO_DEVICE_RESET (MSI-X enabled)", ioctl(dev, VFIO_DEVICE_RESET, NULL));
	s->argsz = 20;
	s->flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
	res("NONE trigger 0..2 after reset", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
	for (int i = 0; i < 2; i++) {
		v = 0;
		read(e[i], &v, 8);
		printf("    e%d=%llu\n", i, (unsigned long long)v);
	}
	s->count = 0;
	res("MSIX disable", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
	(void)buf;
	snprintf(buf, sizeof(buf), "x");
	close(e[0]);
	close(e[1]);
}

int main(int argc, char **argv)
{
	const char *name = argv[1], *cdev = argv[2], *gdev = argv[3], *bdf = argv[4];
	int iommufd, group, container, efd = eventfd(0, 0);

	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("==== %s cdev\n", name);
	dev = open(cdev, O_RDWR);
	iommufd = open("/dev/iommu", O_RDWR);
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	res("BIND", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	common();
	res("PCI_HOT_RESET count 1 (cdev)", hot_reset(16, 0, 1, &efd, 1));
	res("PCI_HOT_RESET count 0", hot_reset(12, 0, 0, NULL, 0));
	res("PCI_HOT_RESET count 0 argsz 100", hot_reset(100, 0, 0, NULL, 0));
	msix_across_reset();
	close(dev);
	close(iommufd);

	printf("==== %s group\n", name);
	group = open(gdev, O_RDWR);
	container = open("/dev/vfio/vfio", O_RDWR);
	res("SET_CONTAINER", ioctl(group, VFIO_GROUP_SET_CONTAINER, &container));
	res("SET_IOMMU", ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU));
	dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	res("GET_DEVICE_FD", dev >= 0 ? 0 : -1);
	common();
	res("PCI_HOT_RESET count 0 (group)", hot_reset(12, 0, 0, NULL, 0));
	res("PCI_HOT_RESET count 2", hot_reset(20, 0, 2, (int[]){ group, group }, 2));
	res("PCI_HOT_RESET count 1 fd 1000", hot_reset(16, 0, 1, (int[]){ 1000 }, 1));
	res("PCI_HOT_RESET count 1 fd -1", hot_reset(16, 0, 1, (int[]){ -1 }, 1));
	res("PCI_HOT_RESET count 1 device fd", hot_reset(16, 0, 1, &dev, 1));
	res("PCI_HOT_RESET count 1 container fd", hot_reset(16, 0, 1, &container, 1));
	res("PCI_HOT_RESET count 1 eventfd", hot_reset(16, 0, 1, &efd, 1));
	res("PCI_HOT_RESET count 1 group fd", hot_reset(16, 0, 1, &group, 1));
	res("PCI_HOT_RESET count 1 group fd argsz 12", hot_reset(12, 0, 1, &group, 1));
	{
		long pg = sysconf(_SC_PAGESIZE);
		char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct vfio_pci_hot_reset *r = (void *)(m + pg - 12);

		mprotect(m + pg, pg, PROT_NONE);
		r->argsz = 16;
		r->flags = 0;
		r->count = 1;
		res("PCI_HOT_RESET count 1 fds unreadable", ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, r));
	}
	msix_across_reset();
	close(dev);
	close(group);
	close(container);
	return 0;
}
