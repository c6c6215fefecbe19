/* File lifetime as the kernel's: the model's file goes exactly when the last real reference does.
 * The observable: while a bound cdev file lives, its group cannot be opened (EBUSY). */
#include "common.h"

static void t_close(void) {
	int dev = open_bound(NULL);
	CHECK(group_busy());
	CHECK(close(dev) == 0);
	CHECK(!group_busy());
}

static void t_dup(void) {
	int dev = open_bound(NULL);
	int d1 = dup(dev), d2 = fcntl(dev, F_DUPFD_CLOEXEC, 100), d3 = 200, d5 = fcntl(dev, F_DUPFD, 150);
	CHECK(d1 >= 0 && d2 >= 100 && d5 >= 150);
	CHECK(fcntl(d2, F_GETFD) == FD_CLOEXEC && fcntl(d5, F_GETFD) == 0);
	CHECK(get_info(d5) == 0 && close(d5) == 0);
	CHECK(dup2(dev, d3) == d3);
	int d4 = 300;
	CHECK(dup3(dev, d4, O_CLOEXEC) == d4);
	CHECK(close(dev) == 0);
	CHECK(get_info(d1) == 0 && get_info(d2) == 0 && get_info(d3) == 0 && get_info(d4) == 0);
	/* a second BIND on the same file through a dup: EINVAL, the file is one */
	int ifd = open("/dev/iommu", O_RDWR);
	CHECK(bind_iommufd(d3, ifd) == -1 && errno == EINVAL);
	close(ifd);
	CHECK(close(d1) == 0 && close(d2) == 0 && close(d3) == 0);
	CHECK(group_busy());
	CHECK(close(d4) == 0);
	CHECK(!group_busy());
}

static void t_fork(void) {
	int dev = open_bound(NULL);
	int go[2];
	CHECK(pipe(go) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char c;
		CHECK(read(go[0], &c, 1) == 1); /* the parent has closed its copy */
		CHECK(get_info(dev) == 0);
		CHECK(group_busy());
		_exit(0);
	}
	CHECK(close(dev) == 0);
	CHECK(group_busy()); /* the child still holds it */
	CHECK(write(go[1], "x", 1) == 1);
	wait_ok(pid);
	CHECK(!group_busy()); /* released when the child exited */
}

static void t_scm_rights(void) {
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		int dev = recv_fd(sv[1]);
		CHECK(get_info(dev) == 0);
		CHECK(write(sv[1], "k", 1) == 1); /* got it */
		char c;
		CHECK(read(sv[1], &c, 1) == 1); /* told to go */
		CHECK(close(dev) == 0);
		_exit(0);
	}
	close(sv[1]);
	int dev = open_bound(NULL);
	send_fd(sv[0], dev);
	char c;
	CHECK(read(sv[0], &c, 1) == 1);
	CHECK(close(dev) == 0);
	CHECK(group_busy()); /* only the receiver holds it now */
	CHECK(write(sv[0], "g", 1) == 1);
	wait_ok(pid);
	CHECK(!group_busy());
}

static void t_in_flight(void) {
	/* an fd in flight (sent, never received) is a reference too, until the socket goes */
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	int dev = open_bound(NULL);
	send_fd(sv[0], dev);
	CHECK(close(dev) == 0);
	CHECK(group_busy());
	close(sv[0]);
	close(sv[1]);
	CHECK(!group_busy());
}

static void t_exec(const char *self) {
	int dev = open_bound(NULL);
	int cloexec = open(CDEV, O_RDWR | O_CLOEXEC); /* a second, unbound file: gone at exec */
	CHECK(cloexec >= 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		char a[16], b[16];
		snprintf(a, sizeof a, "%d", dev);
		snprintf(b, sizeof b, "%d", cloexec);
		execl(self, self, "exec-child", a, b, (char *)NULL);
		_exit(127);
	}
	CHECK(close(dev) == 0 && close(cloexec) == 0);
	wait_ok(pid);
	CHECK(!group_busy());
}

static void t_exec_child(int dev, int cloexec) {
	/* a new program image: the inherited fd is still the bound file */
	struct stat st;
	CHECK(fstat(dev, &st) == 0 && S_ISCHR(st.st_mode));
	CHECK(get_info(dev) == 0);
	CHECK(fcntl(cloexec, F_GETFD) == -1 && errno == EBADF);
	CHECK(group_busy());
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "close")) t_close();
	else if (!strcmp(mode, "dup")) t_dup();
	else if (!strcmp(mode, "fork")) t_fork();
	else if (!strcmp(mode, "scm")) t_scm_rights();
	else if (!strcmp(mode, "inflight")) t_in_flight();
	else if (!strcmp(mode, "exec")) t_exec(argv[0]);
	else if (!strcmp(mode, "exec-child") && argc > 3) t_exec_child(atoi(argv[2]), atoi(argv[3]));
	else {
		fprintf(stderr, "usage: lifetime close|dup|fork|scm|inflight|exec\n");
		return 2;
	}
	printf("ok %s\n", mode);
	return 0;
}
