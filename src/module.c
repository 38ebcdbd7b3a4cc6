/* SPDX-License-Identifier: MIT */
/*
 * Modules' static per-CPU sections.
 *
 * Every module (the main program and each shared library) that includes
 * <percpu/percpu.h> registers its "percpu_data" section from a
 * constructor.  The main program's section is the first chunk's static
 * region; a shared library's is placed like a kernel module's: in the
 * reserved region (__alloc_reserved_percpu), or, when that is full, in
 * the dynamic area.  The module's hidden delta then maps its variables'
 * addresses into the per-CPU range.  dlclose runs the destructor, which
 * gives the space back.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct module {
	char *start, *stop;
	intptr_t *delta_var;	/* the module's hidden delta (NULL until it registers) */
	intptr_t delta;
	uintptr_t area;		/* per-CPU pointer of its copy (0: not placed) */
	bool main;
	bool placed;
};

static pthread_rwlock_t modules_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct module *modules;
static size_t nr_modules, cap_modules;

static struct module *find_by_start(const char *start)
{
	for (size_t i = 0; i < nr_modules; i++)
		if (modules[i].start == start)
			return &modules[i];
	return NULL;
}

static struct module *add_module(char *start, char *stop)
{
	if (nr_modules == cap_modules) {
		size_t cap = cap_modules ? 2 * cap_modules : 16;
		struct module *m = realloc(modules, cap * sizeof(*m));
		if (!m)
			return NULL;
		modules = m;
		cap_modules = cap;
	}
	struct module *m = &modules[nr_modules++];
	memset(m, 0, sizeof(*m));
	m->start = start;
	m->stop = stop;
	return m;
}

static const char *module_name(const void *addr)
{
	Dl_info info;
	if (dladdr(addr, &info) && info.dli_fname && info.dli_fname[0])
		return info.dli_fname;
	return "the main program";
}

/* The largest alignment the section's start has (the linker aligned it). */
static size_t section_align(const char *start)
{
	size_t a = (uintptr_t)start & -(uintptr_t)start;
	return a && a < PCPU_PAGE_SIZE ? pcpu_max(a, (size_t)4) : PCPU_PAGE_SIZE;
}

static void set_delta(struct module *m, intptr_t delta)
{
	m->delta = delta;
	if (m->delta_var)
		*m->delta_var = delta;
}

/*
 * Gives a library's section its space in every unit: reserved region
 * first, then the dynamic area; copies its initial image there.
 */
static int place_library(struct module *m)
{
	size_t size = (size_t)(m->stop - m->start), align = section_align(m->start);
	void *p = pcpu_alloc_area(size, align, PCPU_ALLOC_RESERVED);

	if (!p && size <= percpu_max_alloc_size())
		p = pcpu_alloc_area(size, align, 0);
	if (!p) {
		pcpu_msg("cannot load %s: its per-CPU section needs %zu bytes (align %zu) "
			 "and neither the reserved region nor the dynamic area has them",
			 module_name(m->start), size, align);
		return -1;
	}
	m->area = (uintptr_t)p;
	m->placed = true;
	pcpu_copy_image(m->area, m->start, size);
	set_delta(m, (intptr_t)(m->area - (uintptr_t)m->start));
	return 0;
}

static int place(struct module *m)
{
	if (m->main) {
		m->placed = true;
		set_delta(m, (intptr_t)(pcpu.ptr_base - (uintptr_t)m->start));
		return 0;
	}
	return place_library(m);
}

int percpu__module_register(const struct percpu_module *pm)
{
	if (!PERCPU_SMP || !pm->start || pm->start == pm->stop)
		return 0;
	pthread_rwlock_wrlock(&modules_lock);
	struct module *m = find_by_start(pm->start);
	int rc = 0;
	if (m) {
		/* Registered before, or found by setup in the program's headers. */
		if (!m->delta_var) {
			m->delta_var = pm->delta;
			*m->delta_var = m->delta;
		}
		goto out;
	}
	m = add_module(pm->start, pm->stop);
	if (!m) {
		pcpu_msg("cannot register %s: out of memory", module_name(pm->start));
		rc = -1;
		goto out;
	}
	m->delta_var = pm->delta;
	m->main = pcpu_addr_in_main(pm->start);
	if (percpu_is_setup()) {
		/* A main section setup could not read is placed like a library's. */
		if (m->main && pm->start != pcpu.main_start)
			m->main = false;
		rc = place(m);
		if (rc) {
			/* Never leave a wrong pointer: the library must not run. */
			pthread_rwlock_unlock(&modules_lock);
			abort();
		}
	}
out:
	pthread_rwlock_unlock(&modules_lock);
	return rc;
}

void percpu__module_unregister(const struct percpu_module *pm)
{
	if (!PERCPU_SMP || !pm->start || pm->start == pm->stop)
		return;
	pthread_rwlock_wrlock(&modules_lock);
	struct module *m = find_by_start(pm->start);
	if (m && !m->main) {
		if (m->placed)
			percpu_free((void *)m->area);
		*m = modules[--nr_modules];
	}
	pthread_rwlock_unlock(&modules_lock);
}

bool pcpu_modules_main(char **start, char **stop)
{
	bool found = false;
	pthread_rwlock_rdlock(&modules_lock);
	for (size_t i = 0; i < nr_modules && !found; i++)
		if (modules[i].main) {
			*start = modules[i].start;
			*stop = modules[i].stop;
			found = true;
		}
	pthread_rwlock_unlock(&modules_lock);
	return found;
}

int pcpu_modules_setup(void)
{
	pthread_rwlock_wrlock(&modules_lock);
	if (pcpu.static_size && !find_by_start(pcpu.main_start)) {
		/* Setup ran before the main program registered: it will find this. */
		struct module *m = add_module(pcpu.main_start, pcpu.main_start + pcpu.static_size);
		if (m)
			m->main = true;
	}
	for (size_t i = 0; i < nr_modules; i++) {
		struct module *m = &modules[i];
		if (m->main && m->start != pcpu.main_start)
			m->main = false;
		if (!m->placed && place(m))
			abort();	/* said why; a wrong pointer would corrupt silently */
	}
	pthread_rwlock_unlock(&modules_lock);
	return 0;
}

uintptr_t percpu__static_lookup(uintptr_t a)
{
	uintptr_t r = 0;
	bool found = false;

	pthread_rwlock_rdlock(&modules_lock);
	for (size_t i = 0; i < nr_modules; i++) {
		const struct module *m = &modules[i];
		if (a >= (uintptr_t)m->start && a < (uintptr_t)m->stop) {
			r = a + (uintptr_t)m->delta;
			found = true;
			break;
		}
	}
	pthread_rwlock_unlock(&modules_lock);
	if (!found) {
		pcpu_msg("%#lx is not a per-CPU pointer", (unsigned long)a);
		abort();
	}
	return r;
}
