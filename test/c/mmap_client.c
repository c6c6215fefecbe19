/* mmap of a BAR through the bridge: the pages are the BAR memory of the function's model (the
 * daemon maps the same memfd), and the mapping keeps the file open (the kernel's vma->vm_file)
 * until it is unmapped. */
#include "common.h"
#include <sys/mman.h>

int main(void) {
	int dev = open_bound(NULL);
	uint32_t v = 0xab;
	volatile uint8_t *p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
	CHECK(p != MAP_FAILED);
	CHECK(pwrite(dev, &v, 4, 0x20) == 4);  /* a store the device takes through pwrite ... */
	CHECK(p[0x20] == 0xab);                  /* ... is in the mapping */
	p[0x10] = 0x5a;                          /* a store through the mapping ... */
	v = 0;
	CHECK(pread(dev, &v, 4, 0x10) == 4);   /* ... is what the device reads back */
	CHECK(v == 0x5a);
	/* past the end of BAR0 (128 KiB); a private mapping; the config region */
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 1 << 30) == MAP_FAILED && errno == EINVAL);
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, dev, 0) == MAP_FAILED && errno == EINVAL);
	CHECK(mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 7ULL << 40) == MAP_FAILED && errno == EINVAL);
	CHECK(close(dev) == 0);
	CHECK(group_busy());            /* the mapping holds the file */
	CHECK(p[0x20] == 0xab);
	CHECK(munmap((void *)p, 8192) == 0);
	CHECK(!group_busy());
	printf("ok mmap\n");
	return 0;
}
