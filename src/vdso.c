/* SPDX-License-Identifier: MIT */
/*
 * A function of the vDSO, found by reading its ELF symbol table where the
 * kernel mapped it (getauxval(AT_SYSINFO_EHDR)).  dlopen()/dlsym() would
 * find it too, but they take the dynamic loader's lock, which glibc holds
 * while it runs library constructors: setup, holding its own lock, would
 * then wait for a dlopen() whose constructor waits for setup.  Reading the
 * mapping takes no lock.  The vDSO is never unmapped.
 */
#include <elf.h>
#include <link.h>
#include <stdbool.h>
#include <string.h>
#include <sys/auxv.h>

#include "internal.h"

void *pcpu_vdso_sym(const char *name)
{
	uintptr_t base = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)base;

	if (!base || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32))
		return NULL;
	/* Link-time addresses + bias = where they are mapped. */
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(base + eh->e_phoff);
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t bias = 0;
	bool have_load = false;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && !have_load) {
			bias = base + ph[i].p_offset - ph[i].p_vaddr;
			have_load = true;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const ElfW(Dyn) *)(base + ph[i].p_offset);
		}
	}
	if (!have_load || !dyn)
		return NULL;
	const ElfW(Sym) *sym = NULL;
	const char *str = NULL;
	const ElfW(Word) *hash = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_SYMTAB)
			sym = (const ElfW(Sym) *)(bias + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_STRTAB)
			str = (const char *)(bias + dyn->d_un.d_ptr);
		else if (dyn->d_tag == DT_HASH)
			hash = (const ElfW(Word) *)(bias + dyn->d_un.d_ptr);
	}
	/* The SysV hash table's second word is the number of symbols. */
	if (!sym || !str || !hash)
		return NULL;
	for (ElfW(Word) i = 0; i < hash[1]; i++) {
		if (ELF64_ST_TYPE(sym[i].st_info) != STT_FUNC || sym[i].st_shndx == SHN_UNDEF ||
		    (ELF64_ST_BIND(sym[i].st_info) != STB_GLOBAL &&
		     ELF64_ST_BIND(sym[i].st_info) != STB_WEAK))
			continue;
		if (!strcmp(str + sym[i].st_name, name))
			return (void *)(bias + sym[i].st_value);
	}
	return NULL;
}
