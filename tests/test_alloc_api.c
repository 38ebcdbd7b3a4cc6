/* SPDX-License-Identifier: MIT */
/*
 * The dynamic allocator's API contract, as the kernel's __alloc_percpu():
 * validation (EINVAL, one warning per process, none with NOWARN), zeroed
 * memory on every possible CPU (also when an area comes back), free(NULL),
 * non-blocking allocations that never create a chunk, the reserved
 * region, the largest size, and statistics that add up.
 */
#define _GNU_SOURCE
#include "alloc_test_util.h"

static const char *illegal_msg = "percpu: illegal size";
static const char *failed_msg = "percpu: allocation failed";

static size_t chunk_free_total(struct percpu_stats *st, bool reserved)
{
	size_t sum = 0;

	for (unsigned int i = 0; i < st->nr_chunk_stats; i++)
		if (st->chunks[i].reserved == reserved)
			sum += st->chunks[i].free_bytes;
	return sum;
}

/* Each live snapshot gets its own chunk array (callers compare snapshots). */
static struct percpu_chunk_stats chunk_bufs[4][1024];
static unsigned int next_buf;

static struct percpu_stats full_stats(void)
{
	struct percpu_stats st;

	memset(&st, 0, sizeof(st));
	st.chunks = chunk_bufs[next_buf++ % 4];
	st.max_chunk_stats = 1024;
	CHECK(percpu_stats(&st) == 0);
	CHECK(st.nr_chunk_stats <= st.max_chunk_stats);
	return st;
}

/* ---- validation ---- */

static void expect_einval(void __percpu *p, const char *what)
{
	int e = errno;

	if (p || e != EINVAL)
		FAIL("%s: got %p errno %d, want NULL/EINVAL", what, p, e);
}

static void test_validation(void)
{
	size_t max = percpu_max_alloc_size();
	struct capture cap;
	char *out;

	CHECK(max >= PERCPU_MIN_UNIT_SIZE);

	/* With NOWARN, an illegal request is refused silently (kernel: do_warn). */
	capture_begin(&cap);
	errno = 0;
	expect_einval(percpu_alloc_flags(0, 8, PERCPU_ALLOC_F_NOWARN), "flags NOWARN size 0");
	errno = 0;
	expect_einval(percpu_alloc_flags(8, 3, PERCPU_ALLOC_F_NOWARN | PERCPU_ALLOC_F_NOWAIT),
		      "flags NOWARN|NOWAIT align 3");
	out = capture_end(&cap);
	if (out[0])
		FAIL("NOWARN illegal request printed: \"%s\"", out);
	free(out);

	capture_begin(&cap);
	static const struct { size_t size, align; } bad[] = {
		{ 0, 8 }, { 0, 1 }, { 1, 0 }, { 8, 3 }, { 8, 6 }, { 8, 8192 }, { 8, 1 << 20 },
		{ 16, 4097 }, { SIZE_MAX, 8 }, { SIZE_MAX / 2 + 1, 8 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[96];
		snprintf(what, sizeof(what), "size %zu align %zu", bad[i].size, bad[i].align);
		errno = 0;
		expect_einval(percpu_alloc(bad[i].size, bad[i].align), what);
		errno = 0;
		expect_einval(percpu_alloc_nowait(bad[i].size, bad[i].align), what);
		errno = 0;
		expect_einval(percpu_alloc_reserved(bad[i].size, bad[i].align), what);
		errno = 0;
		expect_einval(percpu_alloc_flags(bad[i].size, bad[i].align, 0), what);
	}
	errno = 0;
	expect_einval(percpu_alloc(max + 1, 4), "max + 1");
	errno = 0;
	expect_einval(percpu_alloc(max + 4096, 4096), "max + page");
	out = capture_end(&cap);
	char first[128];
	snprintf(first, sizeof(first), "percpu: illegal size (%d) or align (%d) for percpu allocation\n",
		 0, 8);
	printf("validation: warnings printed: %d\n", count_substr(out, illegal_msg));
	if (count_substr(out, illegal_msg) != 1 || !strstr(out, first))
		FAIL("want exactly one \"%s\", got:\n%s", first, out);
	free(out);

	/* The largest size and page alignment are legal. */
	void __percpu *p = percpu_alloc(max, 4096);
	if (!p)
		FAIL("largest allocation (%zu) failed: errno %d", max, errno);
	long off;
	int cpu = check_zero_all_cpus(p, max, &off);
	if (cpu >= 0)
		FAIL("largest allocation not zero on cpu %d at %ld", cpu, off);
	CHECK(((uintptr_t)percpu_ptr((char __percpu *)p, 0) & 4095) == 0);
	percpu_free(p);
	p = percpu_alloc(1, 1);
	CHECK(p);
	percpu_free(p);
	printf("validation: largest allocation %zu bytes ok\n", max);
}

/* ---- zeroing ---- */

static void write_all_cpus(void __percpu *p, size_t size, uint64_t id)
{
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu)
		pat_fill(percpu_ptr((char __percpu *)p, cpu), size, id, cpu);
}

/*
 * Writes size bytes on every CPU, frees, allocates until the same pointer
 * comes back and checks it reads zero everywhere.
 */
static void test_reuse_zero(size_t size, size_t align, bool balance_between)
{
	void __percpu *p = percpu_alloc(size, align);
	void __percpu *others[2048];
	int n = 0;
	long off;
	int cpu;

	if (!p)
		FAIL("alloc %zu/%zu: errno %d", size, align, errno);
	cpu = check_zero_all_cpus(p, size, &off);
	if (cpu >= 0)
		FAIL("fresh %zu/%zu not zero on cpu %d at %ld", size, align, cpu, off);
	/* A neighbour keeps p's chunk from being destroyed once p is free. */
	void __percpu *keeper = percpu_alloc(size, align);
	CHECK(keeper);
	write_all_cpus(p, size, 7);
	percpu_free(p);
	if (balance_between)
		percpu_balance();
	for (;;) {
		void __percpu *q = percpu_alloc(size, align);
		if (!q)
			FAIL("realloc %zu/%zu: errno %d", size, align, errno);
		cpu = check_zero_all_cpus(q, size, &off);
		if (cpu >= 0)
			FAIL("reused %zu/%zu (%s) not zero on cpu %d at offset %ld (same area: %d)",
			     size, align, balance_between ? "after balance" : "no balance", cpu, off,
			     q == p);
		if (q == p) {
			percpu_free(q);
			break;
		}
		if (n == (int)(sizeof(others) / sizeof(others[0]))) {
			struct percpu_stats st = full_stats();
			percpu_stats_print(stderr, &st);
			FAIL("%zu/%zu: the freed area %p never came back (got %p %p ... %p)", size,
			     align, (void *)p, (void *)others[0], (void *)others[1],
			     (void *)others[n - 1]);
		}
		others[n++] = q;
		/* It may sit in another CPU's (or another class's) cache: drain. */
		if (n == 256)
			percpu_balance();
	}
	while (n)
		percpu_free(others[--n]);
	percpu_free(keeper);
}

static void test_zeroing(void)
{
	static const size_t sizes[] = { 1, 4, 8, 12, 24, 64, 100, 512, 1024, 1028, 3000,
					4096, 5000, 20000 };
	size_t max = percpu_max_alloc_size();

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t align = 1; align <= 4096; align *= 8) {
			test_reuse_zero(sizes[i], align, false);
			test_reuse_zero(sizes[i], align, true);
		}
	test_reuse_zero(max, 4096, false);
	test_reuse_zero(max, 4096, true);
	test_reuse_zero(max / 2, 64, false);

	/* A small area reused from the middle of a dirty page, with neighbours live. */
	void __percpu *a[64];
	for (int i = 0; i < 64; i++) {
		a[i] = percpu_alloc(48, 16);
		CHECK(a[i]);
		write_all_cpus(a[i], 48, (uint64_t)i);
	}
	for (int i = 0; i < 64; i += 2)
		percpu_free(a[i]);
	for (int i = 0; i < 64; i += 2) {
		long off;
		a[i] = percpu_alloc(48, 16);
		CHECK(a[i]);
		int cpu = check_zero_all_cpus(a[i], 48, &off);
		if (cpu >= 0)
			FAIL("reused 48-byte area not zero on cpu %d", cpu);
		write_all_cpus(a[i], 48, (uint64_t)i);
	}
	for (int i = 0; i < 64; i++) {
		unsigned int cpu;
		percpu_for_each_possible_cpu(cpu)
			if (pat_check(percpu_ptr((char __percpu *)a[i], cpu), 48, (uint64_t)i, cpu) >= 0)
				FAIL("neighbour %d clobbered on cpu %u", i, cpu);
		percpu_free(a[i]);
	}
	printf("zeroing: fresh and reused areas zero on all %u possible CPUs\n",
	       percpu_num_possible_cpus());
}

/* ---- nowait, reserved, NOWARN ---- */

static void test_nowait(void)
{
	size_t max = percpu_max_alloc_size();
	struct percpu_stats before = get_stats(), after;
	void __percpu *ps[4096];
	int n = 0, failed = 0;
	struct capture cap;

	/* Small nowait allocations in existing chunks. */
	for (int i = 0; i < 16; i++) {
		ps[n] = percpu_alloc_nowait(32, 8);
		if (!ps[n]) {
			CHECK(errno == ENOMEM);
			failed++;
			continue;
		}
		long off;
		CHECK(check_zero_all_cpus(ps[n], 32, &off) < 0);
		write_all_cpus(ps[n], 32, 1);
		n++;
	}
	CHECK(n > 0);

	/* Nowait until it fails: never a new chunk. */
	capture_begin(&cap);
	for (int i = 0; i < 2000 && n < 4096; i++) {
		void __percpu *p = percpu_alloc_flags(4096 + 64, 64,
						      PERCPU_ALLOC_F_NOWAIT | PERCPU_ALLOC_F_NOWARN);
		if (!p) {
			if (errno != ENOMEM)
				FAIL("nowait failed with errno %d", errno);
			failed++;
			break;
		}
		ps[n++] = p;
	}
	char *out = capture_end(&cap);
	if (out[0])
		FAIL("NOWARN allocation failure printed: \"%s\"", out);
	free(out);
	CHECK(failed > 0);
	after = get_stats();
	printf("nowait: %d allocations, stopped by ENOMEM; nr_chunks %u -> %u\n", n,
	       before.nr_chunks, after.nr_chunks);
	if (after.nr_chunks != before.nr_chunks)
		FAIL("nowait allocations created chunks: %u -> %u", before.nr_chunks,
		     after.nr_chunks);
	CHECK(after.nr_max_chunks == before.nr_max_chunks || after.nr_chunks == before.nr_chunks);

	/* Without NOWARN, the failure is reported. */
	capture_begin(&cap);
	void __percpu *p = percpu_alloc_nowait(max, 4096);
	int e = errno;
	out = capture_end(&cap);
	if (p)
		percpu_free(p);
	else if (e != ENOMEM || !strstr(out, failed_msg) || !strstr(out, "atomic=1"))
		FAIL("nowait failure: errno %d, message \"%s\"", e, out);
	free(out);

	/* A blocking allocation of the same size makes room. */
	p = percpu_alloc(4096 + 64, 64);
	CHECK(p);
	percpu_free(p);

	/*
	 * Non-blocking allocations that failed are not starved for good: the
	 * balance work (here an explicit pass) refills their reserve, as the
	 * kernel's balance work does, so they succeed again.
	 */
	for (int i = 0; i < 4; i++) {
		void __percpu *q = percpu_alloc_flags(4096 + 64, 64, PERCPU_ALLOC_F_NOWAIT |
							     PERCPU_ALLOC_F_NOWARN);
		if (!q) {
			percpu_balance();
			q = percpu_alloc_flags(4096 + 64, 64, PERCPU_ALLOC_F_NOWAIT |
							      PERCPU_ALLOC_F_NOWARN);
			if (!q)
				FAIL("nowait still fails after a balance pass (round %d)", i);
		}
		if (q && n < 4096)
			ps[n++] = q;
		else if (q)
			percpu_free(q);
	}
	while (n)
		percpu_free(ps[--n]);
}

static void test_reserved(void)
{
	struct percpu_stats st0 = full_stats();
	size_t rfree0 = chunk_free_total(&st0, true);
	void __percpu *r[4096];
	int n = 0;
	long off;

	CHECK(st0.reserved_size > 0);
	for (;;) {
		void __percpu *p = percpu_alloc_reserved(256, 64);
		if (!p) {
			CHECK(errno == ENOMEM);
			break;
		}
		CHECK(((uintptr_t)p & 63) == 0);
		CHECK(check_zero_all_cpus(p, 256, &off) < 0);
		write_all_cpus(p, 256, (uint64_t)n + 100);
		r[n++] = p;
		CHECK(n < 4096);
	}
	printf("reserved: %d x 256 B before ENOMEM (reserved region %zu B, %zu free)\n", n,
	       st0.reserved_size, rfree0);
	CHECK(n >= 1);
	CHECK((size_t)n * 256 <= st0.reserved_size);
	for (int i = 0; i < n; i++) {
		unsigned int cpu;
		percpu_for_each_possible_cpu(cpu)
			if (pat_check(percpu_ptr((char __percpu *)r[i], cpu), 256,
				      (uint64_t)i + 100, cpu) >= 0)
				FAIL("reserved allocation %d clobbered on cpu %u", i, cpu);
	}
	while (n)
		percpu_free(r[--n]);
	struct percpu_stats st1 = full_stats();
	CHECK(chunk_free_total(&st1, true) == rfree0);

	/* Reused reserved memory is zero again. */
	void __percpu *p = percpu_alloc_reserved(256, 64);
	CHECK(p);
	int cpu = check_zero_all_cpus(p, 256, &off);
	if (cpu >= 0)
		FAIL("reused reserved area not zero on cpu %d at %ld", cpu, off);
	percpu_free(p);
}

/* ---- statistics ---- */

static void test_stats(void)
{
	struct percpu_stats a = full_stats(), b, c;
	size_t size = 20000;

	CHECK(a.nr_cur_alloc == a.nr_alloc - a.nr_dealloc);
	CHECK(a.nr_max_alloc >= a.nr_cur_alloc);
	CHECK(a.nr_chunks >= 1 && a.nr_max_chunks >= a.nr_chunks);
	CHECK(a.max_alloc_limit == percpu_max_alloc_size());
	CHECK(a.unit_size >= a.static_size + a.reserved_size + a.dyn_size);
	CHECK(a.nr_chunk_stats == a.nr_chunks + (a.reserved_size ? 1 : 0));
	for (unsigned int i = 0; i < a.nr_chunk_stats; i++) {
		struct percpu_chunk_stats *cs = &a.chunks[i];
		CHECK(cs->free_bytes <= a.unit_size);
		CHECK(cs->contig_bytes <= cs->free_bytes);
		CHECK(cs->max_frag <= cs->free_bytes && cs->sum_frag <= cs->free_bytes);
	}

	void __percpu *p = percpu_alloc(size, 4);
	CHECK(p);
	b = full_stats();
	CHECK(b.nr_alloc == a.nr_alloc + 1);
	CHECK(b.nr_dealloc == a.nr_dealloc);
	CHECK(b.nr_cur_alloc == a.nr_cur_alloc + 1);
	CHECK(b.max_alloc_size >= size && b.min_alloc_size <= size);
	/* The dynamic chunks lost exactly size bytes (plus any new chunk's unit). */
	size_t fa = chunk_free_total(&a, false), fb = chunk_free_total(&b, false);
	size_t want = fa + (b.nr_chunks - a.nr_chunks) * b.unit_size - size;
	if (fb != want)
		FAIL("dynamic free_bytes %zu -> %zu, want %zu (chunks %u -> %u)", fa, fb, want,
		     a.nr_chunks, b.nr_chunks);
	percpu_free(p);
	c = full_stats();
	CHECK(c.nr_alloc == b.nr_alloc);
	CHECK(c.nr_dealloc == b.nr_dealloc + 1);
	CHECK(c.nr_cur_alloc == a.nr_cur_alloc);

	/* A burst of cached-size allocations counts like any other. */
	void __percpu *ps[500];
	for (int i = 0; i < 500; i++)
		CHECK((ps[i] = percpu_alloc(8 + (size_t)(i % 3) * 8, 8)));
	b = full_stats();
	CHECK(b.nr_cur_alloc == a.nr_cur_alloc + 500);
	CHECK(b.nr_max_alloc >= b.nr_cur_alloc);
	for (int i = 0; i < 500; i++)
		percpu_free(ps[i]);
	c = full_stats();
	CHECK(c.nr_cur_alloc == a.nr_cur_alloc);
	CHECK(c.nr_dealloc == a.nr_dealloc + 501);
	printf("stats: nr_alloc %lu nr_dealloc %lu nr_cur_alloc %lu nr_max_alloc %lu nr_chunks %u "
	       "dyn free %zu\n", c.nr_alloc, c.nr_dealloc, c.nr_cur_alloc, c.nr_max_alloc,
	       c.nr_chunks, chunk_free_total(&c, false));

	/* The report carries the kernel's field names. */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	CHECK(f);
	percpu_stats_print(f, &c);
	fclose(f);
	static const char *const fields[] = {
		"Percpu Memory Statistics", "Allocation Info:", "Global Stats:", "unit_size",
		"static_size", "reserved_size", "dyn_size", "atom_size", "alloc_size",
		"nr_alloc", "nr_dealloc", "nr_cur_alloc", "nr_max_alloc", "nr_chunks",
		"nr_max_chunks", "min_alloc_size", "max_alloc_size", "empty_pop_pages",
		"Chunk:", "first_bit", "free_bytes", "contig_bytes", "sum_frag", "max_frag",
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!strstr(text, fields[i]))
			FAIL("percpu_stats_print lacks \"%s\":\n%s", fields[i], text);
	free(text);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	CHECK(percpu_setup(NULL) == 0);
	printf("possible CPUs: %u, largest allocation %zu\n", percpu_num_possible_cpus(),
	       percpu_max_alloc_size());

	percpu_free(NULL);
	test_validation();
	test_zeroing();
	test_nowait();
	if (PERCPU_SMP)
		test_reserved();	/* the UP layout has no reserved region (r0) */
	test_stats();
	percpu_free(NULL);
	printf("test_alloc_api: OK\n");
	return 0;
}
