// SPDX-License-Identifier: MIT
/*
 * unplug.c - what an open vfio-pci device sees while its driver is unbound (or
 * the function removed) underneath it: the REQ eventfd counts, the cdev node
 * gone before the wait and the group node after it, the device fd still
 * working, and later opens failing.
 *
 * usage: unplug unbind|remove|noreq CDEV GROUP_DEV BDF
 *   unbind: REQ eventfd registered, echo BDF > .../drivers/vfio-pci/unbind
 *   remove: REQ eventfd registered, echo 1 > /sys/bus/pci/devices/BDF/remove
 *   noreq:  no REQ eventfd (the kernel logs one warning), unbind
 * Build: ../shared/oracle/oracle-cc -o /tmp/unplug tools/oracle/unplug.c
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
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/vfio.h>

static struct timespec t0;

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9;
}

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

int main(int argc, char **argv)
{
	const char *mode = argv[1], *cdev = argv[2], *gdev = argv[3], *bdf = argv[4];
	int dev, iommufd, efd = eventfd(0, EFD_NONBLOCK);
	char path[160], sysdev[128];
	uint64_t v;
	pid_t child;
	int status;

	(void)argc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(sysdev, sizeof(sysdev), "/sys/bus/pci/devices/%s", bdf);
	dev = open(cdev, O_RDWR);
	iommufd = open("/dev/iommu", O_RDWR);
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind), .iommufd = iommufd };
	res("BIND", ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, &bind));
	if (strcmp(mode, "noreq")) {
		char buf[24];
		struct vfio_irq_set *s = (void *)buf;

		s->argsz = 24;
		s->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
		s->index = VFIO_PCI_REQ_IRQ_INDEX;
		s->start = 0;
		s->count = 1;
		memcpy(s->data, &efd, 4);
		res("SET_IRQS REQ eventfd", ioctl(dev, VFIO_DEVICE_SET_IRQS, s));
	}
	child = fork();
	if (!child) {
		int fd;

		/* the child must not keep the device open: its unbind would wait for itself */
		close(dev);
		close(iommufd);
		close(efd);
		if (!strcmp(mode, "remove")) {
			snprintf(path, sizeof(path), "%s/remove", sysdev);
			fd = open(path, O_WRONLY);
			_exit(write(fd, "1", 1) == 1 ? 0 : 1);
		}
		fd = open("/sys/bus/pci/drivers/vfio-pci/unbind", O_WRONLY);
		_exit(write(fd, bdf, strlen(bdf)) == (ssize_t)strlen(bdf) ? 0 : 1);
	}
	usleep(1500000);
	printf("-- %.0fs after the %s started\n", now(), mode);
	v = 0;
	res("read REQ eventfd", read(efd, &v, 8));
	printf("    count=%llu\n", (unsigned long long)v);
	exists("cdev", cdev);
	exists("group", gdev);
	snprintf(path, sizeof(path), "%s/vfio-dev", sysdev);
	exists("vfio-dev dir", path);
	snprintf(path, sizeof(path), "%s/driver", sysdev);
	exists("driver link", path);
	res("open(cdev) during the wait", open(cdev, O_RDWR));
	{
		struct vfio_device_info di = { .argsz = sizeof(di) };

		res("GET_INFO on the open fd", ioctl(dev, VFIO_DEVICE_GET_INFO, &di));
	}
	res("waitpid WNOHANG (unbind still blocked?)", waitpid(child, &status, WNOHANG));
	usleep(10000000);
	printf("-- %.0fs\n", now());
	v = 0;
	res("read REQ eventfd", read(efd, &v, 8));
	printf("    count=%llu\n", (unsigned long long)v);
	usleep(10000000);
	printf("-- %.0fs\n", now());
	v = 0;
	res("read REQ eventfd", read(efd, &v, 8));
	printf("    count=%llu\n", (unsigned long long)v);
	res("close(device)", close(dev));
	res("waitpid (unbind finished)", waitpid(child, &status, 0) == child ? WEXITSTATUS(status) : -1);
	printf("-- %.0fs after the close\n", now());
	exists("cdev", cdev);
	exists("group", gdev);
	res("open(cdev) after", open(cdev, O_RDWR));
	res("open(group) after", open(gdev, O_RDWR));
	v = 0;
	res("read REQ eventfd", read(efd, &v, 8));
	printf("    count=%llu\n", (unsigned long long)v);
	close(iommufd);
	fflush(stdout);
	system("dmesg | grep -i 'device request\\|request channel' | sed 's/^\\[[ 0-9.]*\\] /    dmesg: /'");
	return 0;
}
