/* SPDX-License-Identifier: MIT */
/*
 * Modules' static per-CPU sections.
 *
 * Every module (the main program and each shared library) that includes
 * <percpu/percpu.h> registers its "percpu_data" section from a priority
 * 101 constructor (once per translation unit: registration is
 * idempotent).  The main program's section is the first chunk's static
 * region; a shared library's is placed like a kernel module's: in the
 * reserved region (__alloc_reserved_percpu), or, when that is full, in the
 * dynamic area (percpu_alloc: any chunk, a new one if needed).  Its image
 * is copied into every unit (the space is zeroed first when reused), and
 * the module's hidden delta then maps its variables' addresses into the
 * per-CPU range.  A library registered before setup (linked at start-up:
 * its constructors run before the main program's) is placed by setup.
 * dlclose runs the destructor, which gives the space back; at process
 * exit nothing is freed (other threads may still run library code).
 *
 * The reserved region defaults to PERCPU_DEFAULT_RESERVE = 64 KiB, eight
 * times the kernel's 8 KiB: userspace libraries are larger and more
 * numerous than kernel modules' per-CPU sections, and unused reserved
 * space costs only address space, since pages populate on first touch.
 * percpu_config.reserved_size or PERCPU_RESERVED change it.
 *
 * A library whose section fits neither the reserved region nor the
 * dynamic area (larger than a unit, or out of memory) cannot run: a
 * constructor cannot make dlopen() fail, and a wrong delta would corrupt
 * memory silently.  The registration prints one line naming the library
 * and the size it needed, then aborts the process.
 *
 * Lookup (percpu__static_lookup, out of line): a module's own variables
 * are translated inline by its delta; anything else outside the per-CPU
 * range comes here: another module's variable (DECLARE_PER_CPU of an
 * exported one), a variable used before setup (setup runs first: a
 * per-CPU address is only ever formed after setup, so it cannot go stale
 * when an operation's slow path sets up), and a copy-relocated variable:
 * a position-dependent or PIE main program that names a library's
 * exported variable gets a copy of it in its own .bss (R_X86_64_COPY) and
 * every module's references, the library's own included, bind to that
 * copy.  Such an address is resolved once by symbol (dladdr in the
 * program, dlsym in each library) and remembered as an alias of the
 * library's variable.  The table is read without a lock (sequence count).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if PERCPU_SMP
struct module {
	/* Read by lookups without the lock (atomics, under modules_seq). */
	char *start, *stop;	/* the section; for an alias, the copied variable */
	intptr_t delta;		/* 0 until placed */
	/* Under modules_lock only. */
	intptr_t *delta_var;	/* the module's hidden delta (NULL: not registered yet) */
	uintptr_t area;		/* per-CPU pointer of its copy (libraries) */
	char *owner;		/* alias: start of the library defining it; else NULL */
	bool main;
	bool placed;
};

/*
 * Writers hold modules_lock and make modules_seq odd while they change
 * the table.  Readers retry when it was odd or changed.  The array only
 * grows; an outgrown array is kept (a reader may still scan it) on the
 * retired list, so readers never touch freed memory.
 */
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int modules_seq;
static struct module *modules;
static size_t nr_modules, cap_modules;
struct retired {
	struct retired *next;
	struct module *table;
};
static struct retired *retired;

/* Set by an exit handler: destructors then run at exit, not at dlclose. */
static bool exiting;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void seq_begin(void)
{
	__atomic_store_n(&modules_seq, modules_seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static void seq_end(void)
{
	__atomic_store_n(&modules_seq, modules_seq + 1, __ATOMIC_RELEASE);
}

static void entry_set(struct module *m, char *start, char *stop, intptr_t delta)
{
	__atomic_store_n(&m->start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&m->stop, stop, __ATOMIC_RELAXED);
	__atomic_store_n(&m->delta, delta, __ATOMIC_RELAXED);
}

/* A library's registration: a module, not an alias. */
static struct module *find_by_start(const char *start)
{
	for (size_t i = 0; i < nr_modules; i++)
		if (modules[i].start == start && !modules[i].owner)
			return &modules[i];
	return NULL;
}

static struct module *find_containing(uintptr_t a)
{
	for (size_t i = 0; i < nr_modules; i++)
		if (a >= (uintptr_t)modules[i].start && a < (uintptr_t)modules[i].stop)
			return &modules[i];
	return NULL;
}

/* Appends an entry (modules_lock held, inside a write section). */
static struct module *add_entry(char *start, char *stop)
{
	if (nr_modules == cap_modules) {
		size_t cap = cap_modules ? 2 * cap_modules : 16;
		struct module *t = calloc(cap, sizeof(*t));
		struct retired *r = malloc(sizeof(*r));
		if (!t || !r) {
			free(t);
			free(r);
			return NULL;
		}
		if (nr_modules)
			memcpy(t, modules, nr_modules * sizeof(*t));
		r->table = modules;
		r->next = retired;
		retired = r;
		/* Published before any count that needs it (readers load the count first). */
		__atomic_store_n(&modules, t, __ATOMIC_RELEASE);
		cap_modules = cap;
	}
	struct module *m = &modules[nr_modules];
	memset(&m->delta_var, 0, sizeof(*m) - offsetof(struct module, delta_var));
	entry_set(m, start, stop, 0);
	__atomic_store_n(&nr_modules, nr_modules + 1, __ATOMIC_RELEASE);
	return m;
}

/* Removes entry i (modules_lock held, inside a write section). */
static void remove_entry(size_t i)
{
	struct module *last = &modules[nr_modules - 1];

	if (&modules[i] != last) {
		entry_set(&modules[i], last->start, last->stop, last->delta);
		modules[i].delta_var = last->delta_var;
		modules[i].area = last->area;
		modules[i].owner = last->owner;
		modules[i].main = last->main;
		modules[i].placed = last->placed;
	}
	__atomic_store_n(&nr_modules, nr_modules - 1, __ATOMIC_RELEASE);
}

/* The translation of a, if a lies in a placed entry; lock-free. */
static bool lookup_fast(uintptr_t a, intptr_t *delta)
{
	for (unsigned int spins = 0;; spins++) {
		unsigned int s = __atomic_load_n(&modules_seq, __ATOMIC_ACQUIRE);
		if (s & 1) {
			if (spins > 100)
				sched_yield();
			continue;
		}
		size_t n = __atomic_load_n(&nr_modules, __ATOMIC_ACQUIRE);
		const struct module *t = __atomic_load_n(&modules, __ATOMIC_ACQUIRE);
		intptr_t d = 0;
		for (size_t i = 0; i < n; i++) {
			uintptr_t lo = (uintptr_t)__atomic_load_n(&t[i].start, __ATOMIC_RELAXED);
			uintptr_t hi = (uintptr_t)__atomic_load_n(&t[i].stop, __ATOMIC_RELAXED);
			if (a >= lo && a < hi) {
				d = __atomic_load_n(&t[i].delta, __ATOMIC_RELAXED);
				break;
			}
		}
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&modules_seq, __ATOMIC_RELAXED) == s) {
			*delta = d;
			return d != 0;
		}
	}
}

static const char *module_name(const void *addr)
{
	Dl_info info;
	if (dladdr(addr, &info) && info.dli_fname && info.dli_fname[0])
		return info.dli_fname;
	return "the main program";
}

/*
 * The alignment a section needs: its start's (the linker aligned it to
 * its largest member's alignment), at least 4, at most a page.
 */
static size_t section_align(const char *start)
{
	size_t a = (uintptr_t)start & -(uintptr_t)start;
	return a && a < PCPU_PAGE_SIZE ? pcpu_max(a, (size_t)4) : PCPU_PAGE_SIZE;
}

/* Publishes a placed module's delta (modules_lock held). */
static void set_delta(struct module *m, intptr_t delta)
{
	seq_begin();
	__atomic_store_n(&m->delta, delta, __ATOMIC_RELAXED);
	m->placed = true;
	seq_end();
	/* Release: a thread that reads the delta sees the copied image. */
	if (m->delta_var)
		__atomic_store_n(m->delta_var, delta, __ATOMIC_RELEASE);
}

struct place_failure {
	const char *start;
	size_t size, align;
};

/*
 * Gives a module its place (modules_lock held, after setup).  A library's
 * section goes to the reserved region, else the dynamic area; its image
 * is copied there.  On failure fills *f (the caller reports it after
 * dropping the lock: naming the library takes the loader's lock).
 */
static int place(struct module *m, struct place_failure *f)
{
	if (m->placed)
		return 0;
	if (m->main && m->start != pcpu.main_start)
		m->main = false;	/* a section setup could not read: like a library's */
	if (m->main) {
		set_delta(m, (intptr_t)(pcpu.ptr_base - (uintptr_t)m->start));
		return 0;
	}

	size_t size = (size_t)(m->stop - m->start), align = section_align(m->start);
	void *p = pcpu_alloc_area(size, align, PCPU_ALLOC_RESERVED | PCPU_ALLOC_NOWARN);

	if (!p && size <= pcpu.layout->unit_size)
		p = pcpu_alloc_area(size, align, PCPU_ALLOC_NOWARN);
	if (!p) {
		*f = (struct place_failure){ m->start, size, align };
		return -1;
	}
	m->area = (uintptr_t)p;
	/* The area reads as zero on every CPU (the allocator zeroes reused space). */
	pcpu_copy_image(m->area, m->start, size);
	set_delta(m, (intptr_t)(m->area - (uintptr_t)m->start));
	return 0;
}

static __attribute__((noreturn)) void place_failed(const struct place_failure *f)
{
	pcpu_msg("cannot load %s: its per-CPU section needs %zu bytes (align %zu) and "
		 "neither the reserved region (%zu bytes) nor the dynamic area (at most %zu "
		 "bytes per unit) can hold it; raise PERCPU_RESERVED or shrink the section",
		 module_name(f->start), f->size, f->align, pcpu.layout->reserved_size,
		 pcpu.layout->unit_size);
	abort();
}

static void note_exit(void)
{
	__atomic_store_n(&exiting, true, __ATOMIC_RELAXED);
}

static void register_exit_handler(void)
{
	atexit(note_exit);
}

int percpu__module_register(const struct percpu_module *pm)
{
	struct place_failure f;

	/*
	 * The main program's constructors run after the loader registered
	 * its own exit work (destructors), so a handler registered now runs
	 * before the destructors and tells them the process is exiting.
	 */
	if (pm->cookie && pcpu_addr_in_main(pm->cookie))
		pthread_once(&exit_once, register_exit_handler);
	if (!pm->start || pm->start == pm->stop)
		return 0;
	pthread_mutex_lock(&modules_lock);
	struct module *m = find_by_start(pm->start);
	if (m) {
		/* Registered before (another translation unit), or found by setup. */
		if (!m->delta_var) {
			m->delta_var = pm->delta;
			if (m->placed)
				__atomic_store_n(m->delta_var, m->delta, __ATOMIC_RELEASE);
		}
		goto out;
	}
	seq_begin();
	m = add_entry(pm->start, pm->stop);
	seq_end();
	if (!m) {
		pthread_mutex_unlock(&modules_lock);
		pcpu_msg("cannot register %s: out of memory", module_name(pm->start));
		abort();
	}
	m->delta_var = pm->delta;
	m->main = pcpu_addr_in_main(pm->start);
	if (percpu_is_setup() && place(m, &f)) {
		pthread_mutex_unlock(&modules_lock);
		place_failed(&f);
	}
out:
	pthread_mutex_unlock(&modules_lock);
	return 0;
}

void percpu__module_unregister(const struct percpu_module *pm)
{
	uintptr_t area = 0;

	if (!pm->start || pm->start == pm->stop ||
	    __atomic_load_n(&exiting, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&modules_lock);
	struct module *m = find_by_start(pm->start);
	if (m && !m->main) {
		intptr_t *var = m->delta_var;
		area = m->placed ? m->area : 0;
		seq_begin();
		/* Its aliases (copies of its variables in the program) first. */
		for (size_t i = nr_modules; i-- > 0;)
			if (modules[i].owner == pm->start)
				remove_entry(i);
		remove_entry((size_t)(find_by_start(pm->start) - modules));
		seq_end();
		/* A later use (a bug) takes the lookup and is reported, not redirected. */
		if (var)
			__atomic_store_n(var, 0, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&modules_lock);
	if (area)
		percpu_free((void *)area);
}

bool pcpu_modules_main(char **start, char **stop)
{
	bool found = false;
	pthread_mutex_lock(&modules_lock);
	for (size_t i = 0; i < nr_modules && !found; i++)
		if (modules[i].main && !modules[i].owner) {
			*start = modules[i].start;
			*stop = modules[i].stop;
			found = true;
		}
	pthread_mutex_unlock(&modules_lock);
	return found;
}

int pcpu_modules_setup(void)
{
	struct place_failure f;

	pthread_mutex_lock(&modules_lock);
	if (pcpu.static_size && !find_by_start(pcpu.main_start)) {
		/* Setup ran before the main program registered: it will find this. */
		seq_begin();
		struct module *m = add_entry(pcpu.main_start, pcpu.main_start + pcpu.static_size);
		seq_end();
		if (m)
			m->main = true;
	}
	for (size_t i = 0; i < nr_modules; i++)
		if (place(&modules[i], &f)) {
			pthread_mutex_unlock(&modules_lock);
			place_failed(&f);	/* a wrong pointer would corrupt silently */
		}
	pthread_mutex_unlock(&modules_lock);
	return 0;
}

/*
 * A copy-relocated variable at a: the symbol there in the program, looked
 * up in each library that has a section; remembered as an alias.  Runs
 * without modules_lock (the loader's functions take the loader's lock,
 * which a loading thread holds while it waits for ours).
 */
static bool resolve_alias(uintptr_t a, intptr_t *delta)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;

	if (!dladdr1((void *)a, &info, (void **)&sym, RTLD_DL_SYMENT) || !info.dli_sname ||
	    !info.dli_saddr || !sym)
		return false;
	uintptr_t copy = (uintptr_t)info.dli_saddr;
	size_t size = sym->st_size ? sym->st_size : 1;
	if (a - copy >= size)
		return false;

	/* The libraries' sections, as they are now. */
	pthread_mutex_lock(&modules_lock);
	size_t n = 0;
	char **starts = calloc(nr_modules ? nr_modules : 1, 2 * sizeof(char *));
	for (size_t i = 0; starts && i < nr_modules; i++)
		if (!modules[i].owner && !modules[i].main) {
			starts[2 * n] = modules[i].start;
			starts[2 * n++ + 1] = modules[i].stop;
		}
	pthread_mutex_unlock(&modules_lock);

	char *orig = NULL, *owner = NULL;
	for (size_t i = 0; i < n && !orig; i++) {
		Dl_info li;
		if (!dladdr(starts[2 * i], &li) || !li.dli_fname || !li.dli_fname[0])
			continue;
		void *h = dlopen(li.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
		if (!h)
			continue;
		char *s = dlsym(h, info.dli_sname);
		dlclose(h);
		if (s >= starts[2 * i] && s + size <= starts[2 * i + 1]) {
			orig = s;
			owner = starts[2 * i];
		}
	}
	free(starts);
	if (!orig)
		return false;

	struct place_failure f;
	bool ok = false;
	pthread_mutex_lock(&modules_lock);
	struct module *m = find_by_start(owner);
	if (m && place(m, &f)) {
		pthread_mutex_unlock(&modules_lock);
		place_failed(&f);
	}
	if (m) {
		/* The copy's byte i is the library variable's byte i. */
		*delta = m->delta + (intptr_t)((uintptr_t)orig - copy);
		struct module *e = find_containing(a);
		if (!e) {
			seq_begin();
			e = add_entry((char *)copy, (char *)copy + size);
			if (e) {
				__atomic_store_n(&e->delta, *delta, __ATOMIC_RELAXED);
				e->owner = owner;
				e->placed = true;
			}
			seq_end();
		}
		ok = true;
	}
	pthread_mutex_unlock(&modules_lock);
	return ok;
}

uintptr_t percpu__static_lookup(uintptr_t a)
{
	struct place_failure f;
	intptr_t d;

	/* Setup first: a per-CPU address formed before it would go stale. */
	if (pcpu_ensure_setup()) {
		pcpu_msg("per-CPU variable %#lx used, but the per-CPU areas could not be set up",
			 (unsigned long)a);
		abort();
	}
	if (lookup_fast(a, &d))
		return a + (uintptr_t)d;
	/* The static region, before setup's registration of it is visible. */
	if (pcpu.static_size && a - (uintptr_t)pcpu.main_start < pcpu.static_size)
		return a + (pcpu.ptr_base - (uintptr_t)pcpu.main_start);

	/* A module setup has not placed yet (setup is placing them now). */
	pthread_mutex_lock(&modules_lock);
	struct module *m = find_containing(a);
	if (m && place(m, &f)) {
		pthread_mutex_unlock(&modules_lock);
		place_failed(&f);
	}
	d = m ? m->delta : 0;
	pthread_mutex_unlock(&modules_lock);
	if (m)
		return a + (uintptr_t)d;

	if (resolve_alias(a, &d))
		return a + (uintptr_t)d;
	pcpu_msg("%#lx is not a per-CPU pointer (in no loaded module's per-CPU section)",
		 (unsigned long)a);
	abort();
}

#else /* UP: static per-CPU variables are plain variables; nothing to place. */

bool pcpu_modules_main(char **start, char **stop)
{
	(void)start;
	(void)stop;
	return false;
}

int pcpu_modules_setup(void)
{
	return 0;
}
#endif
