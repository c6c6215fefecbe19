/* SIGKILL mid-session: a client killed while it holds files (and while it is issuing ioctls)
 * leaves the model consistent: its files are released, the group can be opened, a new client
 * can bind the device again.
 * "unbind": a client killed in the middle of a call that sleeps in the kernel (a sysfs unbind
 * of the device, waiting for its user to close it): the unbind carries on and finishes when the
 * user closes, as vfio_unregister_group_dev does (it waits on uninterruptibly once signalled);
 * the device can then be bound to vfio-pci again. */
#include "common.h"
#include <signal.h>

static void t_unbind(void) {
	int ifd;
	int dev = open_bound(&ifd);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int fd = open("/sys/bus/pci/drivers/vfio-pci/unbind", O_WRONLY);
		CHECK(fd >= 0);
		(void)!write(fd, BDF, strlen(BDF)); /* sleeps until the device is released */
		_exit(3);
	}
	usleep(300000);
	CHECK(waitpid(pid, NULL, WNOHANG) == 0); /* still in its write */
	CHECK(kill(pid, SIGKILL) == 0);
	usleep(100000);
	CHECK(get_info(dev) == 0); /* the device still works for its user */
	/* the last user goes: the unbind finishes (and the killed writer with it) */
	CHECK(close(dev) == 0 && close(ifd) == 0);
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	char link[256];
	int gone = 0;
	for (int i = 0; i < 200 && !gone; i++) {
		gone = readlink("/sys/bus/pci/devices/0000:01:00.0/driver", link, sizeof link) == -1 && errno == ENOENT;
		if (!gone) usleep(10000);
	}
	CHECK(gone);
	CHECK(access(CDEV, F_OK) == -1 && errno == ENOENT);
	CHECK(access(GROUP, F_OK) == -1 && errno == ENOENT);
	/* bound again */
	int o = open("/sys/bus/pci/devices/0000:01:00.0/driver_override", O_WRONLY);
	CHECK(o >= 0 && write(o, "vfio-pci", 8) == 8 && close(o) == 0);
	int b = open("/sys/bus/pci/drivers/vfio-pci/bind", O_WRONLY);
	CHECK(b >= 0 && write(b, BDF, strlen(BDF)) == (ssize_t)strlen(BDF) && close(b) == 0);
	CHECK(!group_busy());
	dev = open_bound(&ifd);
	CHECK(get_info(dev) == 0);
	CHECK(close(dev) == 0 && close(ifd) == 0);
	printf("ok unbind\n");
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "unbind")) {
		t_unbind();
		return 0;
	}
	for (int round = 0; round < 3; round++) {
		int ready[2];
		CHECK(pipe(ready) == 0);
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			int ifd;
			int dev = open_bound(&ifd);
			int ioas = ioas_alloc(ifd);
			CHECK(ioas > 0);
			CHECK(attach_pt(dev, (uint32_t)ioas) == 0);
			CHECK(write(ready[1], "r", 1) == 1);
			for (;;) CHECK(get_info(dev) == 0); /* killed in here */
		}
		close(ready[1]);
		char c;
		CHECK(read(ready[0], &c, 1) == 1);
		close(ready[0]);
		usleep(1000 * (round + 1));
		CHECK(group_busy());
		CHECK(kill(pid, SIGKILL) == 0);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		/* the kernel released the killed process's files before waitpid returned */
		CHECK(!group_busy());
		int ifd;
		int dev = open_bound(&ifd);
		CHECK(get_info(dev) == 0);
		CHECK(close(dev) == 0 && close(ifd) == 0);
	}
	/* the group path too: a killed group holder */
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		int g = open(GROUP, O_RDWR);
		CHECK(g >= 0);
		CHECK(write(ready[1], "r", 1) == 1);
		pause();
		_exit(0);
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	CHECK(group_busy());
	CHECK(kill(pid, SIGKILL) == 0);
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK(!group_busy());
	printf("ok sigkill\n");
	return 0;
}
