/* The bridge's round trips, timed from a real C client (bench/bridge.ts runs it):
 *   getinfo MS   ioctl(VFIO_DEVICE_GET_INFO) on a bound cdev through the shim, for MS ms
 *   echo MS      the floor: a plain request/answer over a UNIX socket to the same daemon
 *                (the ECHO request, answered without the model), for MS ms
 *   mmio MS      a load through a trapped BAR mapping (the edu function's identification
 *                register, vfio2): fault, decode, forward, step over, for MS ms
 * Prints "OPS NS_PER_OP". */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct bind { uint32_t argsz, flags; int32_t iommufd; uint32_t out_devid; uint64_t token; };
struct info { uint32_t argsz, flags, num_regions, num_irqs, cap_offset, pad; };

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	double secs = atof(argv[2]) / 1000.0;
	long ops = 0;
	double t0, t1;
	if (!strcmp(argv[1], "getinfo")) {
		int dev = open("/dev/vfio/devices/vfio0", O_RDWR), ifd = open("/dev/iommu", O_RDWR);
		struct bind b = {.argsz = sizeof b, .iommufd = ifd};
		if (dev < 0 || ifd < 0 || ioctl(dev, 0x3b76, &b) != 0) { perror("setup"); return 1; }
		struct info i = {.argsz = sizeof i};
		t0 = now();
		do {
			for (int k = 0; k < 64; k++)
				if (ioctl(dev, 0x3b6b, &i) != 0) { perror("GET_INFO"); return 1; }
			ops += 64;
			t1 = now();
		} while (t1 - t0 < secs);
	} else if (!strcmp(argv[1], "mmio")) {
		int dev = open("/dev/vfio/devices/vfio2", O_RDWR), ifd = open("/dev/iommu", O_RDWR);
		struct bind b = {.argsz = sizeof b, .iommufd = ifd};
		if (dev < 0 || ifd < 0 || ioctl(dev, 0x3b76, &b) != 0) { perror("setup"); return 1; }
		uint16_t cmd;
		if (pread(dev, &cmd, 2, (7ULL << 40) + 4) != 2) { perror("config"); return 1; }
		cmd |= 2; /* memory decoding */
		if (pwrite(dev, &cmd, 2, (7ULL << 40) + 4) != 2) { perror("config"); return 1; }
		volatile uint32_t *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
		if (r == MAP_FAILED) { perror("mmap"); return 1; }
		t0 = now();
		do {
			for (int k = 0; k < 64; k++)
				if (r[0] != 0x010000ed) { fprintf(stderr, "edu id: wrong value\n"); return 1; }
			ops += 64;
			t1 = now();
		} while (t1 - t0 < secs);
	} else {
		const char *path = getenv("VFIOSIM_SOCKET");
		int s = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		if (!path || s < 0) return 1;
		strncpy(a.sun_path, path, sizeof a.sun_path - 1);
		if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
		uint32_t req[12] = {17 /* ECHO */};
		char ans[64];
		t0 = now();
		do {
			for (int k = 0; k < 64; k++)
				if (send(s, req, sizeof req, 0) != sizeof req || recv(s, ans, sizeof ans, 0) < 16) { perror("echo"); return 1; }
			ops += 64;
			t1 = now();
		} while (t1 - t0 < secs);
	}
	printf("%ld %.1f\n", ops, (t1 - t0) * 1e9 / ops);
	return 0;
}
