/* SPDX-License-Identifier: MIT */
/* The tests' assertions: every failure is printed; main returns check_report(). */
#ifndef PERCPU_TEST_CHECK_H
#define PERCPU_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned long check_failures;

#define CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			check_failures++;					\
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,	\
				__LINE__, #cond);				\
			if (check_failures > 50)				\
				abort();					\
		}								\
	} while (0)

#define CHECK_EQ(a, b)								\
	do {									\
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);	\
		if (check_a_ != check_b_) {					\
			check_failures++;					\
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_);	\
			if (check_failures > 50)				\
				abort();					\
		}								\
	} while (0)

static inline int check_report(void)
{
	if (check_failures) {
		fprintf(stderr, "%lu check(s) failed\n", check_failures);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}

/* Sanitizers add shadow memory and redzones: RSS bounds do not apply there. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
# define CHECK_SANITIZED 1
#elif defined(__has_feature)
# if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#  define CHECK_SANITIZED 1
# endif
#endif
#ifndef CHECK_SANITIZED
# define CHECK_SANITIZED 0
#endif

/* Emulated (qemu-user): RSS is the emulator's; re-exec needs binfmt_misc. */
#ifdef PERCPU_TEST_EMULATED
# define CHECK_EMULATED 1
#else
# define CHECK_EMULATED 0
#endif

/* Resident set size of this process, bytes. */
static inline size_t check_rss(void)
{
	unsigned long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%lu %lu", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * 4096;
}

#endif
