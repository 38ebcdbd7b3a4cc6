/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the allocator's tests: a seeded PRNG, failure
 * reporting, per-allocation patterns, zero checks over every possible
 * CPU, stderr capture and resident-memory figures.
 */
#ifndef ALLOC_TEST_UTIL_H
#define ALLOC_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <percpu/percpu.h>

#define FAIL(...) do {								\
	fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__);		\
	fprintf(stderr, __VA_ARGS__);						\
	fputc('\n', stderr);							\
	abort();								\
} while (0)

#define CHECK(cond) do {							\
	if (!(cond))								\
		FAIL("%s", #cond);						\
} while (0)

/* ---- xorshift64* ---- */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* ---- patterns: one 64-bit word per (id, cpu, word index) ---- */
static inline uint64_t pat_base(uint64_t id, unsigned int cpu)
{
	uint64_t x = (id + 1) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)cpu + 1) * 0xc2b2ae3d27d4eb4full;

	x ^= x >> 31;
	return x | 1;	/* never an all-zero pattern */
}

static inline uint64_t pat_word(uint64_t base, size_t w)
{
	return base ^ ((uint64_t)w * 0xff51afd7ed558ccdull);
}

/* Fills size bytes at p with the pattern of (id, cpu). */
static inline void pat_fill(void *p, size_t size, uint64_t id, unsigned int cpu)
{
	uint64_t base = pat_base(id, cpu);
	char *c = p;
	size_t w;

	for (w = 0; (w + 1) * 8 <= size; w++) {
		uint64_t v = pat_word(base, w);
		memcpy(c + w * 8, &v, 8);
	}
	if (w * 8 < size) {
		uint64_t v = pat_word(base, w);
		memcpy(c + w * 8, &v, size - w * 8);
	}
}

/* Offset of the first byte that differs from the pattern, or -1. */
static inline long pat_check(const void *p, size_t size, uint64_t id, unsigned int cpu)
{
	uint64_t base = pat_base(id, cpu);
	const char *c = p;
	size_t w;

	for (w = 0; (w + 1) * 8 <= size; w++) {
		uint64_t v;
		memcpy(&v, c + w * 8, 8);
		if (v != pat_word(base, w))
			goto bytes;
	}
	if (w * 8 < size) {
		uint64_t v = pat_word(base, w), got = 0;
		memcpy(&got, c + w * 8, size - w * 8);
		if (memcmp(&got, &v, size - w * 8))
			goto bytes;
	}
	return -1;
bytes:
	for (size_t i = w * 8; i < size; i++) {
		uint64_t v = pat_word(base, i / 8);
		if (c[i] != ((const char *)&v)[i % 8])
			return (long)i;
	}
	return -1;
}

/* Offset of the first non-zero byte, or -1. */
static inline long first_nonzero(const void *p, size_t size)
{
	const unsigned char *c = p;
	size_t i = 0;

	for (; i + 8 <= size; i += 8) {
		uint64_t v;
		memcpy(&v, c + i, 8);
		if (v)
			break;
	}
	for (; i < size; i++)
		if (c[i])
			return (long)i;
	return -1;
}

/* Every possible CPU's copy of [p, p + size) reads zero; else the CPU. */
static inline int check_zero_all_cpus(void __percpu *p, size_t size, long *where)
{
	unsigned int cpu;

	percpu_for_each_possible_cpu(cpu) {
		long off = first_nonzero(percpu_ptr((char __percpu *)p, cpu), size);
		if (off >= 0) {
			*where = off;
			return (int)cpu;
		}
	}
	return -1;
}

/* ---- stderr capture ---- */
struct capture {
	int saved_fd;
	FILE *tmp;
};

static inline void capture_begin(struct capture *c)
{
	fflush(stderr);
	c->tmp = tmpfile();
	CHECK(c->tmp);
	c->saved_fd = dup(2);
	CHECK(c->saved_fd >= 0);
	CHECK(dup2(fileno(c->tmp), 2) == 2);
}

/* Restores stderr; returns what was written (malloc'ed, NUL-terminated). */
static inline char *capture_end(struct capture *c)
{
	fflush(stderr);
	CHECK(dup2(c->saved_fd, 2) == 2);
	close(c->saved_fd);
	long len = ftell(c->tmp);
	if (len < 0)
		len = lseek(fileno(c->tmp), 0, SEEK_CUR);
	CHECK(len >= 0);
	char *buf = malloc((size_t)len + 1);
	CHECK(buf);
	rewind(c->tmp);
	size_t got = pread(fileno(c->tmp), buf, (size_t)len, 0) == len ? (size_t)len : 0;
	buf[got] = 0;
	fclose(c->tmp);
	return buf;
}

static inline int count_substr(const char *s, const char *sub)
{
	int n = 0;

	for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
		n++;
	return n;
}

/* ---- memory figures ---- */
static inline size_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;

	CHECK(f);
	CHECK(fscanf(f, "%lu %lu", &size, &res) == 2);
	fclose(f);
	return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

/* A "Vm...:" figure of /proc/self/status in bytes (VmPTE, VmRSS), or 0. */
static inline size_t proc_status_kb(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	size_t v = 0, n = strlen(field);

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':') {
			v = strtoul(line + n + 1, NULL, 10) * 1024;
			break;
		}
	fclose(f);
	return v;
}

#define MB(x) ((double)(x) / (1024.0 * 1024.0))

static inline struct percpu_stats get_stats(void)
{
	struct percpu_stats st;

	memset(&st, 0, sizeof(st));
	CHECK(percpu_stats(&st) == 0);
	return st;
}

#endif
