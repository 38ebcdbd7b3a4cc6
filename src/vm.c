/* SPDX-License-Identifier: MIT */
/*
 * The address space of the chunks.  All chunks live in one PROT_NONE
 * reservation; a chunk's span is mapped read/write when the chunk is
 * created, each group's units are bound to the group's node, and free
 * pages are released with MADV_DONTNEED.  Pages are populated by the
 * kernel's page faults, so a unit costs memory only where its CPU wrote.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define MPOL_PREFERRED 1

struct pcpu_fault_inject pcpu_fault_inject;

static bool inject_failure(enum pcpu_vm_op op)
{
	unsigned long n = ++pcpu_fault_inject.calls[op];
	return pcpu_fault_inject.fail_at[op] && n == pcpu_fault_inject.fail_at[op];
}

void *pcpu_vm_reserve(size_t want, size_t min, size_t *got)
{
	for (size_t len = want; len >= min && len; len /= 2) {
		if (inject_failure(PCPU_VM_MMAP)) {
			errno = ENOMEM;
			return NULL;
		}
		void *p = mmap(NULL, len, PROT_NONE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p != MAP_FAILED) {
			*got = len;
			return p;
		}
		if (len / 2 < min)
			break;
	}
	errno = ENOMEM;
	return NULL;
}

int pcpu_vm_map(void *addr, size_t len)
{
	if (inject_failure(PCPU_VM_MMAP)) {
		errno = ENOMEM;
		return -1;
	}
	void *p = mmap(addr, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? -1 : 0;
}

int pcpu_vm_unmap(void *addr, size_t len)
{
	/* Not injectable: giving memory back must not fail on a healthy system. */
	void *p = mmap(addr, len, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	return p == MAP_FAILED ? -1 : 0;
}

/* Nodes that exist on this machine: binding to a simulated node is skipped. */
static bool node_exists(int node)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return access(path, F_OK) == 0;
}

int pcpu_vm_bind(void *addr, size_t len, int node)
{
	if (node < 0 || !node_exists(node))
		return 0;
	if (inject_failure(PCPU_VM_MBIND)) {
		errno = EIO;
		return -1;
	}
	unsigned long mask[PCPU_MAX_NODES / BITS_PER_LONG] = { 0 };
	mask[node / BITS_PER_LONG] = 1ul << (node % BITS_PER_LONG);
	long rc = syscall(SYS_mbind, addr, len, MPOL_PREFERRED, mask,
			  (unsigned long)PCPU_MAX_NODES + 1, 0ul);
	if (rc && errno == ENOSYS)	/* no NUMA support: nothing to bind */
		return 0;
	return rc ? -1 : 0;
}

int pcpu_vm_release(void *addr, size_t len)
{
	if (inject_failure(PCPU_VM_MADVISE)) {
		errno = EAGAIN;
		return -1;
	}
	return madvise(addr, len, MADV_DONTNEED);
}

size_t pcpu_vm_resident(void *addr, size_t len)
{
	size_t pages = len / PCPU_PAGE_SIZE, resident = 0;
	unsigned char vec[256];

	for (size_t done = 0; done < pages;) {
		size_t n = pcpu_min(pages - done, sizeof(vec));
		if (mincore((char *)addr + done * PCPU_PAGE_SIZE, n * PCPU_PAGE_SIZE, vec))
			return resident;
		for (size_t i = 0; i < n; i++)
			resident += vec[i] & 1;
		done += n;
	}
	return resident * PCPU_PAGE_SIZE;
}
