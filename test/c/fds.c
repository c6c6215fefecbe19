/* fds inside ioctl structs are resolved in the calling process's own fd table, and eventfds are
 * signalled for real:
 *   SET_CONTAINER's container fd, PCI_HOT_RESET's group fds, SET_IRQS's eventfds: the number
 *   names the caller's file (a child that reuses the number for a pipe names the pipe), with the
 *   kernel's errors (EBADF: no such fd, EBADFD / EINVAL: not that kind of file);
 *   SET_IRQS with a real eventfd, then a loopback trigger (DATA_NONE, DATA_BOOL): the eventfd's
 *   counter goes up in the program's own eventfd. */
#include "common.h"
#include <sys/eventfd.h>

#define T_VFIO_SET_IOMMU 0x3b66
#define T_VFIO_GROUP_SET_CONTAINER 0x3b68
#define T_VFIO_GROUP_GET_DEVICE_FD 0x3b6a
#define T_VFIO_DEVICE_SET_IRQS 0x3b6e
#define T_VFIO_DEVICE_GET_PCI_HOT_RESET_INFO 0x3b70
#define T_VFIO_DEVICE_PCI_HOT_RESET 0x3b71

#define IRQ_DATA_NONE 1
#define IRQ_DATA_BOOL 2
#define IRQ_DATA_EVENTFD 4
#define IRQ_ACTION_TRIGGER 32
#define MSIX_INDEX 2
#define NOT_OPEN 900

struct t_irq_set { uint32_t argsz, flags, index, start, count; int32_t fd; };
struct t_hot_reset { uint32_t argsz, flags, count; int32_t fds[2]; };
struct t_dep { uint32_t id; uint16_t segment; uint8_t bus, devfn; };
struct t_hot_reset_info { uint32_t argsz, flags, count; struct t_dep devs[4]; };

static int set_container(int g, int fd) {
	return ioctl(g, T_VFIO_GROUP_SET_CONTAINER, &fd);
}

static int hot_reset(int dev, int gfd) {
	struct t_hot_reset r = {.argsz = sizeof r - 4, .count = 1, .fds = {gfd}};
	return ioctl(dev, T_VFIO_DEVICE_PCI_HOT_RESET, &r);
}

static int set_irq_eventfd(int dev, int fd) {
	struct t_irq_set s = {.argsz = sizeof s, .flags = IRQ_DATA_EVENTFD | IRQ_ACTION_TRIGGER, .index = MSIX_INDEX, .count = 1, .fd = fd};
	return ioctl(dev, T_VFIO_DEVICE_SET_IRQS, &s);
}

/* fork, replace fd `num` in the child by a pipe, run fn there; the child must exit 0 */
static void in_child_with_pipe_at(int num, void (*fn)(int), int arg) {
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int p[2];
		CHECK(pipe(p) == 0);
		CHECK(dup2(p[0], num) == num);
		fn(arg);
		_exit(0);
	}
	wait_ok(pid);
}

static int g_group, g_container, g_dev, g_efd;
static void child_set_container(int g) {
	/* the child's g_container is a pipe now: the parent's container is not its to name */
	CHECK(set_container(g, g_container) == -1 && errno == EBADFD);
}
static void child_hot_reset(int dev) {
	CHECK(hot_reset(dev, g_group) == -1 && errno == EINVAL);
}
static void child_set_irq(int dev) {
	CHECK(set_irq_eventfd(dev, g_efd) == -1 && errno == EINVAL);
}

int main(void) {
	int p[2];
	CHECK(pipe(p) == 0);
	g_group = open(GROUP, O_RDWR);
	g_container = open("/dev/vfio/vfio", O_RDWR);
	CHECK(g_group >= 0 && g_container >= 0);
	/* SET_CONTAINER: not a container, no such fd, someone else's container */
	CHECK(set_container(g_group, p[0]) == -1 && errno == EBADFD);
	CHECK(set_container(g_group, NOT_OPEN) == -1 && errno == EBADF);
	in_child_with_pipe_at(g_container, child_set_container, g_group);
	struct t_group_status st = {.argsz = sizeof st};
	CHECK(ioctl(g_group, T_VFIO_GROUP_GET_STATUS, &st) == 0 && st.flags == 1); /* VIABLE, no container */
	CHECK(set_container(g_group, g_container) == 0);
	CHECK(ioctl(g_container, T_VFIO_SET_IOMMU, 3) == 0);
	g_dev = ioctl(g_group, T_VFIO_GROUP_GET_DEVICE_FD, BDF);
	CHECK(g_dev >= 0);

	/* PCI_HOT_RESET: the dev_set is the e1000e alone (bus 01), owned through group 6 */
	struct t_hot_reset_info info = {.argsz = sizeof info};
	CHECK(ioctl(g_dev, T_VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, &info) == 0);
	CHECK(info.count == 1 && info.devs[0].id == 6 && info.devs[0].bus == 1 && info.devs[0].devfn == 0);
	CHECK(hot_reset(g_dev, p[0]) == -1 && errno == EINVAL);
	CHECK(hot_reset(g_dev, NOT_OPEN) == -1 && errno == EBADF);
	in_child_with_pipe_at(g_group, child_hot_reset, g_dev);
	CHECK(hot_reset(g_dev, g_group) == 0);

	/* SET_IRQS: the eventfd is the caller's, and the model signals it for real */
	g_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK(g_efd >= 0);
	CHECK(set_irq_eventfd(g_dev, p[0]) == -1 && errno == EINVAL);
	CHECK(set_irq_eventfd(g_dev, NOT_OPEN) == -1 && errno == EBADF);
	in_child_with_pipe_at(g_efd, child_set_irq, g_dev);
	CHECK(set_irq_eventfd(g_dev, g_efd) == 0);
	uint64_t v = 0;
	CHECK(read(g_efd, &v, 8) == -1 && errno == EAGAIN); /* nothing yet */
	struct t_irq_set trig = {.argsz = sizeof trig - 4, .flags = IRQ_DATA_NONE | IRQ_ACTION_TRIGGER, .index = MSIX_INDEX, .count = 1};
	CHECK(ioctl(g_dev, T_VFIO_DEVICE_SET_IRQS, &trig) == 0);
	CHECK(read(g_efd, &v, 8) == 8 && v == 1);
	struct t_irq_set bt = {.argsz = sizeof bt - 3, .flags = IRQ_DATA_BOOL | IRQ_ACTION_TRIGGER, .index = MSIX_INDEX, .count = 1, .fd = 1};
	CHECK(ioctl(g_dev, T_VFIO_DEVICE_SET_IRQS, &bt) == 0);
	CHECK(ioctl(g_dev, T_VFIO_DEVICE_SET_IRQS, &trig) == 0);
	CHECK(read(g_efd, &v, 8) == 8 && v == 2);
	/* a forked child holding the same device fd triggers the parent's eventfd (one file) */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(ioctl(g_dev, T_VFIO_DEVICE_SET_IRQS, &trig) == 0);
		_exit(0);
	}
	wait_ok(pid);
	CHECK(read(g_efd, &v, 8) == 8 && v == 1);
	/* teardown (DATA_EVENTFD -1), then no more signals */
	CHECK(set_irq_eventfd(g_dev, -1) == 0);
	struct t_irq_set off = {.argsz = sizeof off - 4, .flags = IRQ_DATA_NONE | IRQ_ACTION_TRIGGER, .index = MSIX_INDEX, .count = 0};
	CHECK(ioctl(g_dev, T_VFIO_DEVICE_SET_IRQS, &off) == 0);
	CHECK(ioctl(g_dev, T_VFIO_DEVICE_SET_IRQS, &trig) == -1 && errno == EINVAL); /* MSI-X off */
	CHECK(read(g_efd, &v, 8) == -1 && errno == EAGAIN);
	CHECK(close(g_dev) == 0 && close(g_group) == 0 && close(g_container) == 0 && close(g_efd) == 0);
	CHECK(!group_busy());
	printf("ok fds\n");
	return 0;
}
