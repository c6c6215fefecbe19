/* Processes racing for one group: exactly one open succeeds, the others get EBUSY; and threads
 * of one process racing on one fd (concurrent ioctls on one file). */
#include "common.h"
#include <pthread.h>

#define RACERS 8

static int shared_dev;
static pthread_barrier_t barrier;

static void *hammer(void *arg) {
	(void)arg;
	pthread_barrier_wait(&barrier);
	for (int i = 0; i < 200; i++) CHECK(get_info(shared_dev) == 0);
	/* and opens of other files, concurrently */
	for (int i = 0; i < 20; i++) {
		int fd = open("/sys/bus/pci/devices/0000:01:00.0/vendor", O_RDONLY);
		CHECK(fd >= 0);
		char b[16] = {0};
		CHECK(read(fd, b, sizeof b - 1) == 7 && !strcmp(b, "0x8086\n"));
		CHECK(close(fd) == 0);
	}
	return NULL;
}

int main(void) {
	int go[2], res[2];
	CHECK(pipe(go) == 0 && pipe(res) == 0);
	pid_t pids[RACERS];
	for (int i = 0; i < RACERS; i++) {
		pids[i] = fork();
		CHECK(pids[i] >= 0);
		if (pids[i] == 0) {
			close(go[1]);
			char c;
			CHECK(read(go[0], &c, 1) == 0); /* EOF: everyone starts at once */
			int fd = open(GROUP, O_RDWR);
			char r = fd >= 0 ? 'W' : errno == EBUSY ? 'B' : 'E';
			CHECK(write(res[1], &r, 1) == 1);
			usleep(200000); /* hold it while the others try */
			_exit(0);
		}
	}
	close(go[0]);
	close(go[1]);
	int won = 0, busy = 0;
	for (int i = 0; i < RACERS; i++) {
		char r;
		CHECK(read(res[0], &r, 1) == 1);
		if (r == 'W') won++;
		else if (r == 'B') busy++;
	}
	for (int i = 0; i < RACERS; i++) wait_ok(pids[i]);
	if (won != 1 || busy != RACERS - 1) {
		fprintf(stderr, "race: %d opened the group, %d got EBUSY\n", won, busy);
		return 1;
	}
	CHECK(!group_busy());

	/* threads: concurrent ioctls on one fd */
	shared_dev = open_bound(NULL);
	pthread_t th[RACERS];
	pthread_barrier_init(&barrier, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) CHECK(pthread_create(&th[i], NULL, hammer, NULL) == 0);
	for (int i = 0; i < RACERS; i++) pthread_join(th[i], NULL);
	/* processes sharing one fd (after fork), concurrently */
	pid_t kids[4];
	for (int i = 0; i < 4; i++) {
		kids[i] = fork();
		CHECK(kids[i] >= 0);
		if (kids[i] == 0) {
			for (int j = 0; j < 200; j++) CHECK(get_info(shared_dev) == 0);
			_exit(0);
		}
	}
	for (int i = 0; i < 4; i++) wait_ok(kids[i]);
	CHECK(close(shared_dev) == 0);
	CHECK(!group_busy());
	printf("ok race: 1 winner, %d EBUSY; threads and processes on one fd\n", busy);
	return 0;
}
