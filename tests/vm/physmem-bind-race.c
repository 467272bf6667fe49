// SPDX-License-Identifier: GPL-2.0
/*
 * physmem-bind-race BDF ROUNDS: BIND, UNBIND, SEGMENTS by binding id and
 * close from three threads while the PCI device BDF is removed and
 * rescanned ROUNDS times (tests/vm/cases-iommu/80-bind.sh, bind-race-
 * threads; written in the issue-10 attack pass).  A binding reported as
 * translated (PHYSMEM_BIND_IOMMU) whose first address lies below the
 * emulated IOMMU's IOVA range (QEMU's intel-iommu hands them out downwards
 * from 4 GiB) is a dma-direct mapping made while the device was still being
 * set up: exit 1.  The case script also checks the kernel log and that the
 * module's counters return to zero.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include "uapi/physmem.h"

static unsigned dom, bus, slot, fn;
static int dev;
static volatile int stop;
static volatile uint64_t last_id;
static volatile int shared_fd = -1;
static long nbind, nfail, nseg, nunb, nodd;

static void *binder(void *arg)
{
	(void)arg;
	while (!stop) {
		struct physmem_alloc a = { .size = sizeof(a), .length = 64 << 10 };
		if (ioctl(dev, PHYSMEM_IOC_ALLOC, &a)) continue;
		shared_fd = a.fd;
		for (int i = 0; i < 20 && !stop; i++) {
			struct physmem_dma_segment s[4];
			struct physmem_bind b = { .size = sizeof(b), .fd = a.fd, .pci_domain = dom, .pci_bus = bus,
				.pci_devfn = (slot << 3) | fn, .segments = (uintptr_t)s, .capacity = 4 };
			if (ioctl(dev, PHYSMEM_IOC_BIND, &b)) { __sync_fetch_and_add(&nfail, 1); usleep(1000); continue; }
			__sync_fetch_and_add(&nbind, 1);
			if ((b.out_flags & PHYSMEM_BIND_IOMMU) && b.nr_segments &&
			    s[0].addr < 0xf0000000ull && __sync_fetch_and_add(&nodd, 1) < 8)
				printf("ODD binding id %llu flags %#x (1=IOMMU 2=IDENTITY 4=DIRECT?) addr %#llx\n",
				       (unsigned long long)b.binding_id, b.out_flags, (unsigned long long)s[0].addr);
			last_id = b.binding_id;
			if (i & 1) {
				struct physmem_unbind u = { .size = sizeof(u), .fd = a.fd, .binding_id = b.binding_id };
				if (!ioctl(dev, PHYSMEM_IOC_UNBIND, &u)) __sync_fetch_and_add(&nunb, 1);
			}
		}
		shared_fd = -1;
		close(a.fd);	/* with a live or revoked binding */
	}
	return NULL;
}
static void *segger(void *arg)
{
	(void)arg;
	while (!stop) {
		int fd = shared_fd;
		struct physmem_dma_segment s[4];
		struct physmem_segments q = { .size = sizeof(q), .fd = fd, .binding_id = last_id,
			.segments = (uintptr_t)s, .capacity = 4 };
		if (fd >= 0 && !ioctl(dev, PHYSMEM_IOC_SEGMENTS, &q)) __sync_fetch_and_add(&nseg, 1);
		struct physmem_unbind u = { .size = sizeof(u), .fd = fd, .binding_id = last_id };
		if (fd >= 0 && !ioctl(dev, PHYSMEM_IOC_UNBIND, &u)) __sync_fetch_and_add(&nunb, 1);
	}
	return NULL;
}
static void wr(const char *p, const char *v)
{
	int f = open(p, O_WRONLY);
	if (f >= 0) { if (write(f, v, strlen(v)) < 0) {} close(f); }
}
int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	pthread_t t[4];
	char p[256];
	if (argc < 3 || sscanf(argv[1], "%x:%x:%x.%x", &dom, &bus, &slot, &fn) != 4) return 2;
	int rounds = atoi(argv[2]);
	dev = open("/dev/physmem", O_RDWR);
	if (dev < 0)
		return 2;
	pthread_create(&t[0], NULL, binder, NULL);
	pthread_create(&t[1], NULL, binder, NULL);
	pthread_create(&t[2], NULL, segger, NULL);
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/remove", argv[1]);
	for (int r = 0; r < rounds; r++) {
		usleep(100000);
		wr(p, "1");
		usleep(50000);
		wr("/sys/bus/pci/rescan", "1");
	}
	usleep(200000);
	stop = 1;
	for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
	printf("binds %ld failed %ld segments %ld unbinds %ld odd %ld\n", nbind, nfail, nseg, nunb, nodd);
	close(dev);
	return nodd ? 1 : 0;
}
