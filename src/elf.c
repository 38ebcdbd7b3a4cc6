/* SPDX-License-Identifier: MIT */
/*
 * The main program's per-CPU section.  Setup may run before the main
 * program's constructors (an explicit percpu_setup() from a library or a
 * priority constructor, or a first use), so the section cannot wait for
 * the main program to register it: it is read from the program's own ELF
 * section headers, relocated by the program's load bias.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

struct main_image {
	uintptr_t bias;
	uintptr_t lo, hi;	/* lowest and highest loaded address */
};

static int find_main(struct dl_phdr_info *info, size_t size, void *data)
{
	struct main_image *m = data;
	(void)size;
	m->bias = info->dlpi_addr;
	m->lo = UINTPTR_MAX;
	m->hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		m->lo = pcpu_min(m->lo, info->dlpi_addr + ph->p_vaddr);
		m->hi = pcpu_max(m->hi, info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
	}
	return 1;	/* the first object is the main program */
}

static struct main_image the_main_image;
static pthread_once_t main_image_once = PTHREAD_ONCE_INIT;

static void find_main_image(void)
{
	dl_iterate_phdr(find_main, &the_main_image);
}

/*
 * The main program never moves: walk the loaded objects once, not on
 * every module constructor that asks.
 */
static struct main_image main_image(void)
{
	pthread_once(&main_image_once, find_main_image);
	return the_main_image;
}

bool pcpu_addr_in_main(const void *addr)
{
	struct main_image m = main_image();
	return (uintptr_t)addr >= m.lo && (uintptr_t)addr < m.hi;
}

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	return pread(fd, buf, len, off) == (ssize_t)len ? 0 : -1;
}

int pcpu_main_section(char **start, char **stop)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;

	int rc = -1;
	ElfW(Ehdr) eh;
	ElfW(Shdr) *sh = NULL;
	char *names = NULL;

	if (read_at(fd, &eh, sizeof(eh), 0) || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
	    eh.e_shentsize != sizeof(ElfW(Shdr)) || !eh.e_shnum || eh.e_shstrndx >= eh.e_shnum)
		goto out;
	sh = calloc(eh.e_shnum, sizeof(*sh));
	if (!sh || read_at(fd, sh, eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff))
		goto out;
	const ElfW(Shdr) *strtab = &sh[eh.e_shstrndx];
	names = malloc(strtab->sh_size + 1);
	if (!names || read_at(fd, names, strtab->sh_size, (off_t)strtab->sh_offset))
		goto out;
	names[strtab->sh_size] = '\0';

	for (int i = 0; i < eh.e_shnum; i++) {
		if (sh[i].sh_name >= strtab->sh_size ||
		    strcmp(names + sh[i].sh_name, "percpu_data") || !(sh[i].sh_flags & SHF_ALLOC))
			continue;
		uintptr_t bias = main_image().bias;
		*start = (char *)(bias + sh[i].sh_addr);
		*stop = *start + sh[i].sh_size;
		rc = 0;
		break;
	}
out:
	free(names);
	free(sh);
	close(fd);
	return rc;
}
