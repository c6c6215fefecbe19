// SPDX-License-Identifier: MIT
/*
 * unplug_devset.c - a device set losing a member: what GET_PCI_HOT_RESET_INFO
 * and PCI_HOT_RESET (iommufd flavour, zero-length array) say on the function
 * that stays, when the other function of the set is unbound from vfio-pci,
 * rebound, then hot-unplugged (sysfs remove) while it is open and bound.
 *
 * usage: unplug_devset FN0_CDEV FN1_CDEV FN1_BDF FN1_GROUP_DEV
 *   (oracle topology devset-igb: two igb functions, one dev_set, two groups)
 * Build: ../shared/oracle/oracle-cc -o /tmp/unplug_devset tools/oracle/unplug_devset.c
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

static void res(const char *what, long ret)
{
	if (ret < 0)
		printf("%-60s = %ld %s\n", what, ret, strerrorname_np(errno) ?: "?");
	else
		printf("%-60s = %ld\n", what, ret);
}

static void exists(const char *tag, const char *path)
{
	struct stat st;

	printf("    %s %s\n", tag, stat(path, &st) ? strerrorname_np(errno) : "exists");
}

static void info(int dev)
{
	char buf[sizeof(struct vfio_pci_hot_reset_info) + 8 * sizeof(struct vfio_pci_dependent_device)];
	struct vfio_pci_hot_reset_info *i = (void *)buf;

	memset(buf, 0, sizeof(buf));
	i->argsz = sizeof(buf);
	res("GET_PCI_HOT_RESET_INFO", ioctl(dev, VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, i));
	printf("    flags=%u count=%u\n", i->flags, i->count);
	for (unsigned int n = 0; n < i->count && n < 8; n++)
		printf("    %04x:%02x:%02x.%x devid=0x%x\n", i->devices[n].segment, i->devices[n].bus,
		       i->devices[n].devfn >> 3, i->devices[n].devfn & 7, i->devices[n].devid);
}

static void hot_reset(int dev)
{
	struct vfio_pci_hot_reset r = { .argsz = sizeof(r) };

	res("PCI_HOT_RESET (zero-length)", ioctl(dev, VFIO_DEVICE_PCI_HOT_RESET, &r));
}

static long echo(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY);
	long r;

	if (fd < 0)
		return -1;
	r = write(fd, s, strlen(s));
	close(fd);
	return r < 0 ? -1 : 0;
}

static int bind(int dev, int iommufd)
{
	struct vfio_device_bind_iommufd b = { .argsz = sizeof(b), .iommufd = iommufd };
	int r = ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &b);

	return r < 0 ? r : (int)b.out_devid;
}

int main(int argc, char **argv)
{
	const char *cdev0 = argv[1], *cdev1 = argv[2], *bdf1 = argv[3], *gdev1 = argv[4];
	char path[160];
	uint64_t v;
	int iommufd, fn0, fn1, efd, status;
	pid_t child;

	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	iommufd = open("/dev/iommu", O_RDWR);
	fn0 = open(cdev0, O_RDWR);
	res("BIND fn0", bind(fn0, iommufd));

	printf("-- fn1 unbound from vfio-pci\n");
	res("unbind fn1", echo("/sys/bus/pci/drivers/vfio-pci/unbind", bdf1));
	exists("cdev1", cdev1);
	info(fn0);
	hot_reset(fn0);

	printf("-- fn1 bound again\n");
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf1);
	res("driver_override vfio-pci", echo(path, "vfio-pci"));
	res("drivers_probe fn1", echo("/sys/bus/pci/drivers_probe", bdf1));
	exists("cdev1", cdev1);
	info(fn0);
	hot_reset(fn0);
	fn1 = open(cdev1, O_RDWR);
	res("BIND fn1 (same iommufd)", bind(fn1, iommufd));
	info(fn0);
	hot_reset(fn0);

	efd = eventfd(0, EFD_NONBLOCK);
	{
		char b[24];
		struct vfio_irq_set *s = (void *)b;

		s->argsz = 24;
		s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
		s->index = VFIO_PCI_REQ_IRQ_INDEX;
		s->start = 0;
		s->count = 1;
		memcpy(s->data, &efd, 4);
		res("SET_IRQS REQ eventfd on fn1", ioctl(fn1, VFIO_DEVICE_SET_IRQS, s));
	}

	printf("-- fn1 removed (sysfs remove) while open\n");
	child = fork();
	if (!child) {
		/* the child must not hold copies of the device files the removal waits for */
		close(fn0);
		close(fn1);
		close(iommufd);
		snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/remove", bdf1);
		_exit(echo(path, "1") ? 1 : 0);
	}
	sleep(2);
	res("read REQ eventfd", read(efd, &v, 8));
	exists("cdev1", cdev1);
	exists("group1", gdev1);
	res("waitpid WNOHANG (remove still blocked?)", waitpid(child, &status, WNOHANG));
	info(fn0);
	hot_reset(fn0);
	res("close(fn1)", close(fn1));
	{
		int secs = 0;
		char buf[4096];

		while (waitpid(child, &status, WNOHANG) == 0 && secs < 40) {
			sleep(1);
			secs++;
		}
		printf("    remove finished after the close: %s (%d s)\n", secs < 40 ? "yes" : "no", secs);
		if (secs >= 40) {
			snprintf(path, sizeof(path), "/proc/%d/stack", child);
			int fd = open(path, O_RDONLY);
			long n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			if (n > 0) {
				buf[n] = 0;
				printf("%s", buf);
			}
			snprintf(path, sizeof(path), "/proc/%d/wchan", child);
			fd = open(path, O_RDONLY);
			n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
			if (n > 0) {
				buf[n] = 0;
				printf("    wchan %s\n", buf);
			}
			res("close(fn0)", close(fn0));
			for (secs = 0; waitpid(child, &status, WNOHANG) == 0 && secs < 15; secs++)
				sleep(1);
			printf("    remove finished after closing fn0 too: %s (%d s)\n", secs < 15 ? "yes" : "no", secs);
			return 0;
		}
	}
	exists("group1", gdev1);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf1);
	exists("fn1 sysfs", path);
	info(fn0);
	hot_reset(fn0);
	res("close(fn0)", close(fn0));
	return 0;
}
