/* Holds an eventfd and waits for someone else to signal it (the daemon, through pidfd_getfd). */
#include "common.h"
#include <poll.h>
#include <sys/eventfd.h>

int main(void) {
	int fd = eventfd(0, 0);
	CHECK(fd >= 0);
	printf("%d %d\n", (int)getpid(), fd);
	fflush(stdout);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	CHECK(poll(&p, 1, 20000) == 1);
	uint64_t v;
	CHECK(read(fd, &v, sizeof v) == sizeof v);
	printf("signalled %llu\n", (unsigned long long)v);
	return 0;
}
