/* Trapped BAR mappings through the bridge: the edu function (0000:03:00.0, group 8, cdev vfio2)
 * has registers with side effects, so every load and store through a mapping of its BAR0 must
 * reach the device model synchronously, as on real hardware: the shim maps the pages PROT_NONE,
 * decodes each faulting instruction, forwards the access and steps over it.
 *   basic   identification and liveness through the mapping, factorial, 1/2/8-byte widths,
 *           the kernel's copy_from_user/copy_to_user of a buffer inside the mapping,
 *           the instruction forms (SIB, REX registers, AH, immediates, MOVZX/MOVSX/MOVSXD), a
 *           DMA started by a store that is complete when the store returns, a forked child using
 *           the inherited mapping, the file held by the mapping until munmap
 *   faults  memory decoding off: SIGBUS; a store to a read-only mapping: SIGSEGV; the program's
 *           own SIGSEGV handler still gets real faults; an address outside the mapping
 *   dmamap  DMA mapping of the BAR mapping: iommufd refuses it (EFAULT, as GUP refuses
 *           VM_PFNMAP), type1 maps it (vfio follows the PFNs) */
#include "common.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#define EDU_CDEV "/dev/vfio/devices/vfio2"
#define EDU_GROUP "/dev/vfio/8"
#define EDU_BDF "0000:03:00.0"
#define CONFIG_OFF (7ULL << 40) /* VFIO_PCI_CONFIG_REGION_INDEX */

#define T_VFIO_SET_IOMMU 0x3b66
#define T_VFIO_GROUP_SET_CONTAINER 0x3b68
#define T_VFIO_GROUP_GET_DEVICE_FD 0x3b6a
#define T_VFIO_IOMMU_MAP_DMA 0x3b71
#define T_VFIO_IOMMU_UNMAP_DMA 0x3b72
#define T_IOMMU_IOAS_MAP 0x3b85

struct t_ioas_map { uint32_t size, flags, ioas_id, rsvd; uint64_t user_va, length, iova; };
struct t_dma_map { uint32_t argsz, flags; uint64_t vaddr, iova, size; };
struct t_dma_unmap { uint32_t argsz, flags; uint64_t iova, size; };

static void set_command(int dev, uint16_t set, uint16_t clear) {
	uint16_t cmd;
	CHECK(pread(dev, &cmd, 2, CONFIG_OFF + 4) == 2);
	cmd = (uint16_t)((cmd | set) & ~clear);
	CHECK(pwrite(dev, &cmd, 2, CONFIG_OFF + 4) == 2);
}

static int open_edu(int *iommufd, int *ioas) {
	int dev = open(EDU_CDEV, O_RDWR);
	CHECK(dev >= 0);
	int ifd = open("/dev/iommu", O_RDWR);
	CHECK(ifd >= 0);
	CHECK(bind_iommufd(dev, ifd) == 0);
	int id = ioas_alloc(ifd);
	CHECK(id > 0 && attach_pt(dev, (uint32_t)id) == 0);
	*iommufd = ifd;
	*ioas = id;
	set_command(dev, 0x2 | 0x4, 0); /* memory decoding, bus master */
	return dev;
}

static void t_basic(void) {
	int ifd, ioas;
	int dev = open_edu(&ifd, &ioas);
	uint8_t *bar = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
	CHECK(bar != MAP_FAILED);
	volatile uint32_t *r = (volatile uint32_t *)bar;
	CHECK(r[0] == 0x010000ed);              /* identification: a load through the mapping */
	r[1] = 0x12345678;                       /* liveness: a store ... */
	CHECK(r[1] == (uint32_t)~0x12345678u);   /* ... the device inverted it */
	uint32_t v = 0;
	CHECK(pread(dev, &v, 4, 4) == 4 && v == (uint32_t)~0x12345678u); /* the same register by pread */
	v = 0xa5a5a5a5;
	CHECK(pwrite(dev, &v, 4, 4) == 4 && r[1] == 0x5a5a5a5a);
	/* the kernel's own accesses to a user buffer inside the mapping (copy_from_user/copy_to_user
	 * fault the BAR in): pwrite from the identification register into liveness, pread of the
	 * identification register into liveness */
	CHECK(pwrite(dev, bar, 4, 4) == 4 && r[1] == (uint32_t)~0x010000edu);
	CHECK(pread(dev, bar + 4, 4, 0) == 4 && r[1] == (uint32_t)~0x010000edu);
	v = 0xa5a5a5a5;
	CHECK(pwrite(dev, &v, 4, 4) == 4);
	r[2] = 5;                                /* factorial: the store starts it ... */
	CHECK(r[2] == 120);                      /* ... the next load sees the result */
	/* widths: edu answers 1- and 2-byte loads with 0 and 8-byte ones below 0x80 with all ones */
	CHECK(*(volatile uint8_t *)bar == 0 && *(volatile uint16_t *)(bar + 2) == 0);
	CHECK(*(volatile uint64_t *)bar == ~0ULL);
	*(volatile uint64_t *)(bar + 0x80) = 0x0123456789abcdefULL; /* DMA source, 8 bytes */
	CHECK(*(volatile uint64_t *)(bar + 0x80) == 0x0123456789abcdefULL);
	/* instruction forms */
	uint64_t out, idx = 1;
	__asm__ volatile("movl (%1,%2,4), %k0" : "=r"(out) : "r"(bar), "r"(idx) : "memory");
	CHECK(out == 0x5a5a5a5a);
	__asm__ volatile("mov %1, %%r13\n\tmovl 4(%%r13), %%r9d\n\tmov %%r9, %0" : "=r"(out) : "r"(bar) : "r13", "r9", "memory");
	CHECK(out == 0x5a5a5a5a);
	__asm__ volatile("movl $0x55, 4(%0)" : : "r"(bar) : "memory");
	CHECK(r[1] == 0xffffffaa);
	__asm__ volatile("movslq 4(%1), %0" : "=r"(out) : "r"(bar) : "memory");
	CHECK(out == 0xffffffffffffffaaULL);
	__asm__ volatile("movzbl 4(%1), %k0" : "=r"(out) : "r"(bar) : "memory");
	CHECK(out == 0); /* a 1-byte load: edu says 0 */
	__asm__ volatile("mov $0xffff, %%eax\n\tmovb (%1), %%ah\n\tmov %%rax, %0" : "=r"(out) : "r"(bar) : "rax", "memory");
	CHECK(out == 0xff); /* only AH was loaded */
	__asm__ volatile("mov $0x3c3c3c3c, %%ecx\n\tmovl %%ecx, 4(%0)" : : "r"(bar) : "rcx", "memory");
	CHECK(r[1] == 0xc3c3c3c3);
	/* a DMA the device runs when the command store lands: complete when the store returns */
	uint8_t *buf = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK(buf != MAP_FAILED);
	struct t_ioas_map m = {.size = sizeof m, .flags = 1 | 2 | 4, .ioas_id = (uint32_t)ioas,
	                       .user_va = (uintptr_t)buf, .length = 8192, .iova = 0x100000};
	CHECK(ioctl(ifd, T_IOMMU_IOAS_MAP, &m) == 0);
	for (int i = 0; i < 64; i++) buf[i] = (uint8_t)(i * 7 + 1);
	volatile uint64_t *d = (volatile uint64_t *)(bar + 0x80);
	d[0] = 0x100000; d[1] = 0x40000; d[2] = 64; d[3] = 1;       /* RAM -> device buffer */
	CHECK(d[3] == 0);                                            /* done: RUN cleared */
	d[0] = 0x40000; d[1] = 0x101000; d[2] = 64; d[3] = 1 | 2;   /* device buffer -> RAM */
	CHECK(d[3] == 2);
	CHECK(memcmp(buf, buf + 4096, 64) == 0);                    /* the copy is there already */
	/* a forked child uses the inherited mapping */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		CHECK(r[0] == 0x010000ed);
		r[1] = 7;
		_exit(r[1] == ~7u ? 0 : 1);
	}
	wait_ok(pid);
	CHECK(r[1] == ~7u);
	/* the mapping holds the file */
	CHECK(close(dev) == 0);
	CHECK(r[0] == 0x010000ed);
	CHECK(munmap(bar, 1 << 20) == 0);
	CHECK(close(ifd) == 0);
	int g = open(EDU_GROUP, O_RDWR);
	CHECK(g >= 0); /* the cdev file went with the mapping */
	close(g);
}

static sigjmp_buf jb;
static volatile sig_atomic_t got;
static void on_segv(int sig) {
	got = sig;
	siglongjmp(jb, 1);
}

static int child_signal(void (*fn)(volatile uint32_t *), volatile uint32_t *r) {
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		fn(r);
		_exit(0);
	}
	int st;
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFSIGNALED(st) ? WTERMSIG(st) : -WEXITSTATUS(st);
}
static void load(volatile uint32_t *r) {
	(void)r[0];
}
static void store(volatile uint32_t *r) {
	r[1] = 1;
}

static void t_faults(void) {
	int ifd, ioas;
	int dev = open_edu(&ifd, &ioas);
	volatile uint32_t *r = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
	CHECK(r != MAP_FAILED);
	CHECK(r[0] == 0x010000ed);
	/* memory decoding off: every access through the mapping is a SIGBUS */
	set_command(dev, 0, 0x2);
	CHECK(child_signal(load, r) == SIGBUS);
	CHECK(child_signal(store, r) == SIGBUS);
	set_command(dev, 0x2, 0);
	CHECK(r[0] == 0x010000ed);
	/* a read-only mapping: loads work, a store is a real SIGSEGV */
	volatile uint32_t *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0);
	CHECK(ro != MAP_FAILED && ro[0] == 0x010000ed);
	CHECK(child_signal(store, ro) == SIGSEGV);
	/* the program's own SIGSEGV handler (installed after the trap) gets real faults ... */
	CHECK(signal(SIGSEGV, on_segv) == SIG_DFL);
	volatile int *unmapped = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(unmapped != MAP_FAILED);
	if (!sigsetjmp(jb, 1)) {
		*unmapped = 1;
		CHECK(0);
	}
	CHECK(got == SIGSEGV);
	got = 0;
	if (!sigsetjmp(jb, 1)) {
		ro[1] = 1;
		CHECK(0);
	}
	CHECK(got == SIGSEGV);
	/* ... and trapped accesses keep working */
	r[1] = 3;
	CHECK(r[1] == ~3u);
	struct sigaction old;
	CHECK(sigaction(SIGSEGV, NULL, &old) == 0 && old.sa_handler == on_segv);
	CHECK(munmap((void *)ro, 4096) == 0 && munmap((void *)r, 4096) == 0);
	close(dev);
	close(ifd);
}

static void t_dmamap(void) {
	/* iommufd: IOAS_MAP of a BAR mapping fails (FOLL_LONGTERM GUP refuses VM_PFNMAP) */
	int ifd, ioas;
	int dev = open_edu(&ifd, &ioas);
	void *bar = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
	CHECK(bar != MAP_FAILED);
	struct t_ioas_map m = {.size = sizeof m, .flags = 1 | 2 | 4, .ioas_id = (uint32_t)ioas,
	                       .user_va = (uintptr_t)bar, .length = 4096, .iova = 0x100000};
	CHECK(ioctl(ifd, T_IOMMU_IOAS_MAP, &m) == -1 && errno == EFAULT);
	CHECK(munmap(bar, 1 << 20) == 0);
	close(dev);
	close(ifd);
	/* type1: MAP_DMA of a BAR mapping works (vfio_iommu_type1 follows the PFNs) */
	int g = open(EDU_GROUP, O_RDWR);
	int c = open("/dev/vfio/vfio", O_RDWR);
	CHECK(g >= 0 && c >= 0);
	CHECK(ioctl(g, T_VFIO_GROUP_SET_CONTAINER, &c) == 0);
	CHECK(ioctl(c, T_VFIO_SET_IOMMU, 3 /* VFIO_TYPE1v2_IOMMU */) == 0);
	dev = ioctl(g, T_VFIO_GROUP_GET_DEVICE_FD, EDU_BDF);
	CHECK(dev >= 0);
	set_command(dev, 0x2, 0);
	bar = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, dev, 0);
	CHECK(bar != MAP_FAILED);
	struct t_dma_map dm = {.argsz = sizeof dm, .flags = 3, .vaddr = (uintptr_t)bar, .iova = 0x200000, .size = 1 << 20};
	CHECK(ioctl(c, T_VFIO_IOMMU_MAP_DMA, &dm) == 0);
	struct t_dma_unmap du = {.argsz = sizeof du, .iova = 0x200000, .size = 1 << 20};
	CHECK(ioctl(c, T_VFIO_IOMMU_UNMAP_DMA, &du) == 0 && du.size == 1 << 20);
	/* a read-only BAR mapping cannot be mapped for device writes */
	void *ro = mmap(NULL, 4096, PROT_READ, MAP_SHARED, dev, 0);
	CHECK(ro != MAP_FAILED);
	dm.vaddr = (uintptr_t)ro;
	dm.size = 4096;
	CHECK(ioctl(c, T_VFIO_IOMMU_MAP_DMA, &dm) == -1 && errno == EFAULT);
	dm.flags = 1; /* READ only */
	CHECK(ioctl(c, T_VFIO_IOMMU_MAP_DMA, &dm) == 0);
	CHECK(munmap(ro, 4096) == 0 && munmap(bar, 1 << 20) == 0);
	close(dev);
	close(g);
	close(c);
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "";
	if (!strcmp(mode, "basic")) t_basic();
	else if (!strcmp(mode, "faults")) t_faults();
	else if (!strcmp(mode, "dmamap")) t_dmamap();
	else {
		fprintf(stderr, "usage: mmio_trap basic|faults|dmamap\n");
		return 2;
	}
	printf("ok %s\n", mode);
	return 0;
}
