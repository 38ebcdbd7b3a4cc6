/* SPDX-License-Identifier: MIT */
/* The cpulist parser and formatter (src/cpulist.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "check.h"

/* Parses s and checks that exactly the ids in want[] (ending with -1) are set. */
static void check_valid(const char *s, unsigned int max_ids, const int *want,
			unsigned int want_nbits)
{
	unsigned long *bits = NULL;
	unsigned int nbits = 0;

	if (pcpu_cpulist_parse(s, max_ids, &bits, &nbits)) {
		fprintf(stderr, "valid list '%s' rejected: %s\n", s,
			strerror(errno));
		check_failures++;
		return;
	}
	if (nbits != want_nbits) {
		fprintf(stderr, "'%s': nbits %u, want %u\n", s, nbits, want_nbits);
		check_failures++;
	}
	for (unsigned int i = 0; i < nbits; i++) {
		bool want_set = false;

		for (const int *w = want; *w >= 0; w++)
			want_set |= (unsigned int)*w == i;
		if (pcpu_test_bit(bits, i) != want_set) {
			fprintf(stderr, "'%s': bit %u is %d\n", s, i,
				pcpu_test_bit(bits, i));
			check_failures++;
		}
	}
	free(bits);
}

static void check_malformed(const char *s, unsigned int max_ids)
{
	unsigned long *bits = NULL;
	unsigned int nbits = 12345;

	errno = 0;
	if (pcpu_cpulist_parse(s, max_ids, &bits, &nbits) == 0) {
		fprintf(stderr, "malformed list '%s' accepted\n", s ? s : "(null)");
		check_failures++;
		free(bits);
		return;
	}
	if (errno != EINVAL) {
		fprintf(stderr, "'%s': errno %d, want EINVAL\n", s, errno);
		check_failures++;
	}
	CHECK(bits == NULL);
	CHECK(nbits == 12345);	/* outputs untouched on failure */
}

static void test_valid(void)
{
	static const int one[] = { 0, -1 };
	static const int sparse[] = { 0, 1, 2, 3, 64, 65, 66, 67, -1 };
	static const int mixed[] = { 1, 3, 5, 6, 7, -1 };
	static const int strided[] = { 0, 1, 4, 5, 8, -1 };
	static const int single[] = { 7, -1 };
	static const int top[] = { 65535, -1 };

	check_valid("0", 64, one, 1);
	check_valid("0-3,64-67", PCPU_MAX_CPUS, sparse, 68);
	check_valid("0-3,64-67\n", PCPU_MAX_CPUS, sparse, 68);
	check_valid("  0-3,64-67 \t\n", PCPU_MAX_CPUS, sparse, 68);
	check_valid("64-67,0-3", PCPU_MAX_CPUS, sparse, 68);	/* any order */
	check_valid("0-2,1-3,64-67,66", PCPU_MAX_CPUS, sparse, 68); /* overlaps */
	check_valid("1,3,5-7", 8, mixed, 8);			/* 7 < max 8 */
	check_valid("7-7", 8, single, 8);
	/* used/group: the first 2 of every 4 ids from 0 to 8 */
	check_valid("0-8:2/4", 64, strided, 9);
	check_valid("65535", PCPU_MAX_CPUS, top, 65536);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"", " ", "\n", "3-1", "a", "1,,2", "1-", "-1", "1,", ",1",
		"1x", "0-3x", "1 2", "1-2-3", "1--2", "0x10", "+1", "1;2",
		"0-3:", "0-3:1", "0-3:1/", "0-3:0/4", "0-3:5/4", "0-3:1/0",
		"0-3:/4", "99999999999999999999999", "4294967296",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_malformed(bad[i], PCPU_MAX_CPUS);
	check_malformed(NULL, 64);
	/* ids >= max_ids */
	check_malformed("8", 8);
	check_malformed("0-8", 8);
	check_malformed("0-3,64", 64);
	check_malformed("65536", PCPU_MAX_CPUS);
	check_malformed("0-70000", PCPU_MAX_CPUS);
}

/* parse(in) then format gives want; and want parses back to the same bits. */
static void check_format(const char *in, const char *want)
{
	unsigned long *bits, *again;
	unsigned int nbits, nbits2;
	char buf[256];
	size_t len;

	if (pcpu_cpulist_parse(in, PCPU_MAX_CPUS, &bits, &nbits)) {
		fprintf(stderr, "'%s' rejected\n", in);
		check_failures++;
		return;
	}
	memset(buf, 'x', sizeof(buf));
	len = pcpu_cpulist_format(buf, sizeof(buf), bits, nbits);
	if (strcmp(buf, want) || len != strlen(want)) {
		fprintf(stderr, "format('%s') = '%s' (%zu), want '%s'\n", in,
			buf, len, want);
		check_failures++;
	}
	CHECK(pcpu_cpulist_parse(buf, PCPU_MAX_CPUS, &again, &nbits2) == 0);
	CHECK(nbits2 == nbits);
	CHECK(memcmp(again, bits, BITS_TO_LONGS(nbits) * sizeof(long)) == 0);
	free(again);
	free(bits);
}

static void test_format(void)
{
	unsigned long bits[2] = { 0, 0 };
	char buf[8];

	check_format("0-3,64-67", "0-3,64-67");
	check_format("0", "0");
	check_format("5\n", "5");
	check_format("3,2,1,0", "0-3");
	check_format("1,3,5", "1,3,5");
	check_format("0-8:2/4", "0-1,4-5,8");
	check_format("63-64", "63-64");		/* across a word boundary */
	check_format("0-65535", "0-65535");

	/* empty bitmap: empty string */
	memset(buf, 'x', sizeof(buf));
	CHECK(pcpu_cpulist_format(buf, sizeof(buf), bits, 128) == 0);
	CHECK(buf[0] == '\0');

	/* truncation: always terminated, length is what was written */
	bits[0] = 0xf;			/* 0-3 */
	bits[1] = 0xf;			/* 64-67 */
	memset(buf, 'x', sizeof(buf));
	CHECK(pcpu_cpulist_format(buf, 6, bits, 128) == strlen(buf));
	CHECK(strlen(buf) < 6);
	CHECK(strncmp(buf, "0-3,64-67", strlen(buf)) == 0);
	CHECK(pcpu_cpulist_format(buf, 0, bits, 128) == 0);
}

int main(void)
{
	test_valid();
	test_malformed();
	test_format();
	if (check_failures) {
		fprintf(stderr, "test_cpulist: %lu failure(s)\n", check_failures);
		return 1;
	}
	printf("test_cpulist: ok\n");
	return 0;
}
