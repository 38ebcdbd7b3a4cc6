// SPDX-License-Identifier: MIT
/* Deterministic unit tests of src/chunk.c. */
#include "chunk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK PCPU_BITMAP_BLOCK_BITS

static int failures;

#define EXPECT(cond)                                                        \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "%s:%d: %s: expected %s\n", __FILE__, \
				__LINE__, __func__, #cond);                 \
			failures++;                                         \
		}                                                           \
	} while (0)

#define EXPECT_EQ(a, b)                                                     \
	do {                                                                \
		long long a_ = (a), b_ = (b);                               \
		if (a_ != b_) {                                             \
			fprintf(stderr, "%s:%d: %s: %s == %lld, want %lld\n", \
				__FILE__, __LINE__, __func__, #a, a_, b_);  \
			failures++;                                         \
		}                                                           \
	} while (0)

struct fixture {
	struct pcpu_chunk_map m;
	void *mem;
	size_t size;
};

static void setup(struct fixture *f, int pages, int head, int tail, bool pop)
{
	f->size = pcpu_chunk_map_mem_size(pages);
	f->mem = malloc(f->size);
	memset(f->mem, 0xff, f->size);
	pcpu_chunk_map_init(&f->m, f->mem, pages, head, tail, pop);
}

static void teardown(struct fixture *f)
{
	free(f->mem);
}

static void check_ok(struct fixture *f, int line)
{
	char msg[200];

	if (pcpu_chunk_map_check(&f->m, msg, sizeof(msg))) {
		fprintf(stderr, "test_chunk.c:%d: check failed: %s\n", line, msg);
		failures++;
	}
}
#define CHECK(f) check_ok(f, __LINE__)

static void test_init_and_hidden(void)
{
	struct fixture f;

	setup(&f, 2, 0, 0, true);
	CHECK(&f);
	EXPECT_EQ(f.m.free_bytes, 2 * 4096);
	EXPECT_EQ(pcpu_chunk_map_contig_bits(&f.m), 2 * BLOCK);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 2);
	EXPECT_EQ(f.m.nr_populated, 2);
	teardown(&f);

	/* Head and tail not page-aligned: 1000 and 300 bytes hidden. */
	setup(&f, 3, 1000, 300, true);
	CHECK(&f);
	EXPECT_EQ(f.m.free_bytes, 3 * 4096 - 1000 - 300);
	EXPECT_EQ(f.m.nr_alloc, 0);
	EXPECT_EQ(pcpu_chunk_map_contig_bits(&f.m), 3 * BLOCK - 250 - 75);
	EXPECT(!pcpu_chunk_map_page_empty(&f.m, 0));
	EXPECT(pcpu_chunk_map_page_empty(&f.m, 1));
	EXPECT(!pcpu_chunk_map_page_empty(&f.m, 2));
	EXPECT_EQ(f.m.nr_empty_pop_pages, 1);
	/* The whole visible area is one allocation, starting after the head. */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 3 * BLOCK - 325, 1, false), 250);
	EXPECT_EQ(f.m.free_bytes, 0);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 1, 1, false), -1);
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, 250), 3 * BLOCK - 325);
	/* Aligned to 256 bits: the first such bit after the head is 256. */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 4, 256, false), 256);
	CHECK(&f);
	teardown(&f);
}

/* Every invalid free returns -1 and leaves every byte as it was. */
static void expect_rejected(struct fixture *f, int bit, int line)
{
	void *copy = malloc(f->size);
	struct pcpu_chunk_map mcopy = f->m;

	memcpy(copy, f->mem, f->size);
	if (pcpu_chunk_map_free(&f->m, bit) != -1 ||
	    memcmp(copy, f->mem, f->size) || memcmp(&mcopy, &f->m, sizeof(mcopy))) {
		fprintf(stderr, "test_chunk.c:%d: free(%d) not rejected cleanly\n",
			line, bit);
		failures++;
	}
	EXPECT_EQ(pcpu_chunk_map_alloc_bits(&f->m, bit), -1);
	free(copy);
}

static void test_invalid_free(void)
{
	struct fixture f;
	int a, b;

	setup(&f, 2, 64, 128, true);
	a = pcpu_chunk_map_alloc(&f.m, 10, 1, false);
	b = pcpu_chunk_map_alloc(&f.m, 5, 1, false);
	EXPECT_EQ(a, 16);
	EXPECT_EQ(b, 26);
	EXPECT_EQ(pcpu_chunk_map_alloc_bits(&f.m, a), 10);
	expect_rejected(&f, a + 1, __LINE__);		/* interior */
	expect_rejected(&f, a + 9, __LINE__);
	expect_rejected(&f, b + 5, __LINE__);		/* free space after b */
	expect_rejected(&f, 1000, __LINE__);		/* free space */
	expect_rejected(&f, 0, __LINE__);		/* hidden head start */
	expect_rejected(&f, 15, __LINE__);		/* hidden head end */
	expect_rejected(&f, 2 * BLOCK - 32, __LINE__);	/* hidden tail start */
	expect_rejected(&f, 2 * BLOCK - 1, __LINE__);
	expect_rejected(&f, -1, __LINE__);		/* out of range */
	expect_rejected(&f, 2 * BLOCK, __LINE__);
	expect_rejected(&f, 1 << 30, __LINE__);
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, a), 10);
	expect_rejected(&f, a, __LINE__);		/* double free */
	/* b's start is also a's old end bound: still b's, still valid. */
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, b), 5);
	expect_rejected(&f, b, __LINE__);
	CHECK(&f);
	EXPECT_EQ(f.m.nr_alloc, 0);
	EXPECT_EQ(f.m.free_bytes, 2 * 4096 - 64 - 128);
	teardown(&f);
}

static void test_alignment(void)
{
	struct fixture f;

	setup(&f, 4, 4, 0, true);
	for (int align = 1; align <= BLOCK; align <<= 1) {
		int at = pcpu_chunk_map_alloc(&f.m, 3, align, false);

		EXPECT(at >= 0 && at % align == 0);
		CHECK(&f);
	}
	/* The 3-bit allocations took bits 1024 and 2048 (align 512, 1024). */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, BLOCK, BLOCK, false), 3 * BLOCK);
	/* Bad arguments. */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 4, 3, false), -1);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 4, 2 * BLOCK, false), -1);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 0, 1, false), -1);
	CHECK(&f);
	teardown(&f);
}

static void test_span_blocks(void)
{
	struct fixture f;
	int a, b, c;

	setup(&f, 4, 0, 0, true);
	a = pcpu_chunk_map_alloc(&f.m, BLOCK - 10, 1, false);	/* 0..1013 */
	b = pcpu_chunk_map_alloc(&f.m, 20, 1, false);		/* spans 0|1 */
	EXPECT_EQ(b, BLOCK - 10);
	c = pcpu_chunk_map_alloc(&f.m, 2 * BLOCK, 1, false);	/* spans 1..3 */
	EXPECT_EQ(c, BLOCK + 10);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 0);
	CHECK(&f);
	/* Free the middle one: a run spanning pages 0 and 1 reappears. */
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, b), 20);
	CHECK(&f);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 20, 1, false), b);
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, c), 2 * BLOCK);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 2);	/* pages 2 and 3 */
	CHECK(&f);
	/* The whole chunk but 3 pages' worth: needs 1..3 joined. */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 3 * BLOCK - 10, 1, false),
		  BLOCK + 10);
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, a), BLOCK - 10);
	EXPECT_EQ(pcpu_chunk_map_contig_bits(&f.m), BLOCK - 10);
	CHECK(&f);
	teardown(&f);
}

static void test_pop_only(void)
{
	struct fixture f;

	setup(&f, 4, 0, 0, false);
	EXPECT_EQ(f.m.nr_populated, 0);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 0);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 1, 1, true), -1);
	pcpu_chunk_map_populate(&f.m, 2, 4);
	EXPECT_EQ(f.m.nr_populated, 2);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 2);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 8, 1, true), 2 * BLOCK);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 1);
	/* Not populated pages are fine without pop_only. */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 8, 1, false), 0);
	/* Two pages' worth fits only across 2..3, which now holds 8 bits. */
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 2 * BLOCK - 8, 1, true), 2 * BLOCK + 8);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 1, 1, true), -1);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 0);
	pcpu_chunk_map_populate(&f.m, 0, 1);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, BLOCK - 8, 1, true), 8);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 1, 1, true), -1);
	EXPECT_EQ(pcpu_chunk_map_alloc(&f.m, 1, 1, false), BLOCK);
	CHECK(&f);
	teardown(&f);
}

static void test_empty_pages(void)
{
	struct fixture f;
	int a, b;

	setup(&f, 3, 0, 0, true);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 3);
	a = pcpu_chunk_map_alloc(&f.m, 1, 1, false);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 2);
	b = pcpu_chunk_map_alloc(&f.m, 1, BLOCK, false);
	EXPECT_EQ(b, BLOCK);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 1);
	pcpu_chunk_map_depopulate(&f.m, 1, 3);
	EXPECT_EQ(f.m.nr_populated, 1);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 0);
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, b), 1);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 0);	/* page 1 empty, not populated */
	EXPECT(pcpu_chunk_map_page_empty(&f.m, 1));
	pcpu_chunk_map_populate(&f.m, 0, 3);
	pcpu_chunk_map_populate(&f.m, 0, 3);	/* idempotent */
	EXPECT_EQ(f.m.nr_empty_pop_pages, 2);
	EXPECT_EQ(pcpu_chunk_map_free(&f.m, a), 1);
	EXPECT_EQ(f.m.nr_empty_pop_pages, 3);
	EXPECT(!pcpu_chunk_map_page_empty(&f.m, 3));	/* out of range */
	CHECK(&f);
	teardown(&f);
}

static void test_stats(void)
{
	struct fixture f;
	struct pcpu_chunk_map_stats st;
	int a[6];

	setup(&f, 1, 16, 0, true);
	for (int i = 0; i < 6; i++)
		a[i] = pcpu_chunk_map_alloc(&f.m, 10, 1, false);
	EXPECT_EQ(a[0], 4);
	EXPECT_EQ(f.m.max_alloc_size, 40);
	pcpu_chunk_map_free(&f.m, a[1]);	/* hole of 10 bits */
	pcpu_chunk_map_free(&f.m, a[3]);
	pcpu_chunk_map_free(&f.m, a[4]);	/* hole of 20 bits */
	pcpu_chunk_map_stats(&f.m, &st);
	EXPECT_EQ(st.first_bit, 14);
	EXPECT_EQ(st.free_bytes, (size_t)f.m.free_bytes);
	EXPECT_EQ(st.free_bytes, 4096 - 16 - 30 * 4);
	EXPECT_EQ(st.contig_bytes, (BLOCK - 64) * 4);
	EXPECT_EQ(st.sum_frag, 30 * 4);
	EXPECT_EQ(st.max_frag, 20 * 4);
	EXPECT_EQ(pcpu_chunk_map_alloc_bits(&f.m, a[5]), 10);
	EXPECT_EQ(pcpu_chunk_map_alloc_bits(&f.m, a[1]), -1);
	CHECK(&f);
	teardown(&f);
}

/* The self-check must notice a corrupted map. */
static void test_check_detects(void)
{
	struct fixture f;
	char msg[200] = "";

	setup(&f, 2, 0, 0, true);
	pcpu_chunk_map_alloc(&f.m, 100, 1, false);
	f.m.md_blocks[0].contig_hint++;
	EXPECT_EQ(pcpu_chunk_map_check(&f.m, msg, sizeof(msg)), -1);
	EXPECT(msg[0] != '\0');
	f.m.md_blocks[0].contig_hint--;
	f.m.nr_alloc++;
	EXPECT_EQ(pcpu_chunk_map_check(&f.m, NULL, 0), -1);
	f.m.nr_alloc--;
	f.m.alloc_map[0] ^= 1UL << 63;	/* a stray allocated bit */
	EXPECT_EQ(pcpu_chunk_map_check(&f.m, NULL, 0), -1);
	teardown(&f);
}

int main(void)
{
	test_init_and_hidden();
	test_invalid_free();
	test_alignment();
	test_span_blocks();
	test_pop_only();
	test_empty_pages();
	test_stats();
	test_check_detects();
	if (failures) {
		fprintf(stderr, "test_chunk: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_chunk: ok\n");
	return 0;
}
