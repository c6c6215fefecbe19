/* SIGKILL mid-session: a client killed while it holds files (and while it is issuing ioctls)
 * leaves the model consistent: its files are released, the group can be opened, a new client
 * can bind the device again. */
#include "common.h"
#include <signal.h>

int main(void) {
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
