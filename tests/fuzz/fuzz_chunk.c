// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for src/chunk.c.  The input is a sequence of operations
 * on two chunk maps; a byte-per-bit model checks every result, and
 * pcpu_chunk_map_check() runs after every operation.  Any mismatch aborts.
 *
 * Built with -DFUZZ_CHUNK_REPLAY_MAIN it gets a main() that runs the
 * target over fixed and pseudo-random inputs, so ctest exercises it with
 * any compiler.
 */
#include "chunk.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK PCPU_BITMAP_BLOCK_BITS
#define MAX_PAGES 3
#define MAX_BITS (MAX_PAGES * BLOCK)
#define LB ((int)(8 * sizeof(unsigned long)))

struct fmap {
	struct pcpu_chunk_map m;
	unsigned long mem[(MAX_BITS * 2 + 256) / LB + 64 * MAX_PAGES];
	unsigned char used[MAX_BITS];
	unsigned char pop[MAX_PAGES];
	int size_at[MAX_BITS];	/* size of the live allocation starting here */
	int nr_bits, head, tail, free_bits, nr_live;
};

struct input {
	const uint8_t *p;
	size_t n;
};

static unsigned next_byte(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static unsigned next_u16(struct input *in)
{
	return next_byte(in) | next_byte(in) << 8;
}

#define FUZZ_ASSERT(c)                                                       \
	do {                                                                 \
		if (!(c)) {                                                  \
			fprintf(stderr, "fuzz_chunk: %s:%d: %s\n", __FILE__, \
				__LINE__, #c);                               \
			abort();                                             \
		}                                                            \
	} while (0)

static void mark(struct fmap *f, int start, int bits, unsigned char v)
{
	memset(f->used + start, v, bits);
	f->free_bits += v ? -bits : bits;
}

static void fmap_init(struct fmap *f, struct input *in)
{
	int pages = 1 + next_byte(in) % MAX_PAGES;
	int head = (next_u16(in) % (pages * BLOCK / 2)) * 4;
	int tail = (next_u16(in) % (pages * BLOCK / 4)) * 4;
	bool pop = next_byte(in) & 1;

	FUZZ_ASSERT(pcpu_chunk_map_mem_size(pages) <= sizeof(f->mem));
	memset(f->used, 0, sizeof(f->used));
	memset(f->size_at, 0, sizeof(f->size_at));
	f->nr_bits = pages * BLOCK;
	f->head = head / 4;
	f->tail = tail / 4;
	f->free_bits = f->nr_bits;
	f->nr_live = 0;
	mark(f, 0, f->head, 1);
	mark(f, f->nr_bits - f->tail, f->tail, 1);
	memset(f->pop, pop, sizeof(f->pop));
	pcpu_chunk_map_init(&f->m, f->mem, pages, head, tail, pop);
}

static bool model_has_fit(const struct fmap *f, int bits, int align, bool pop_only)
{
	int run = 0;

	for (int i = 0; i < f->nr_bits; i++) {
		if (f->used[i] || (pop_only && !f->pop[i / BLOCK])) {
			run = 0;
			continue;
		}
		if (++run >= bits && (i + 1 - bits) % align == 0)
			return true;
	}
	return false;
}

static void op_alloc(struct fmap *f, struct input *in)
{
	unsigned op = next_byte(in);
	int bits = 1 + next_u16(in) % (op & 1 ? f->nr_bits : 64);
	int align = 1 << (next_byte(in) % 11);
	bool pop_only = op & 2;
	int at = pcpu_chunk_map_alloc(&f->m, bits, align, pop_only);

	if (at < 0) {
		FUZZ_ASSERT(!model_has_fit(f, bits, align, pop_only));
		return;
	}
	FUZZ_ASSERT(at % align == 0 && at + bits <= f->nr_bits);
	for (int i = at; i < at + bits; i++)
		FUZZ_ASSERT(!f->used[i] && (!pop_only || f->pop[i / BLOCK]));
	mark(f, at, bits, 1);
	f->size_at[at] = bits;
	f->nr_live++;
}

static void op_free(struct fmap *f, struct input *in)
{
	int bit = (int)next_u16(in) % (f->nr_bits + 8) - 4;
	int want = bit >= 0 && bit < f->nr_bits ? f->size_at[bit] : 0;
	int got;

	/* Mostly aim at a live allocation: the next one at or after bit. */
	if (!want && f->nr_live && (next_byte(in) & 3)) {
		for (int i = bit < 0 ? 0 : bit; i < f->nr_bits; i++)
			if (f->size_at[i]) {
				bit = i;
				want = f->size_at[i];
				break;
			}
	}
	got = pcpu_chunk_map_free(&f->m, bit);
	FUZZ_ASSERT(got == (want ? want : -1));
	if (want) {
		mark(f, bit, want, 0);
		f->size_at[bit] = 0;
		f->nr_live--;
	}
}

static void op_populate(struct fmap *f, struct input *in)
{
	int pages = f->nr_bits / BLOCK;
	int a = next_byte(in) % pages, b = a + 1 + next_byte(in) % (pages - a);
	bool populate = next_byte(in) & 1;

	if (populate)
		pcpu_chunk_map_populate(&f->m, a, b);
	else
		pcpu_chunk_map_depopulate(&f->m, a, b);
	memset(f->pop + a, populate, b - a);
}

static void verify(struct fmap *f)
{
	char msg[200];
	int empty = 0, contig = 0, run = 0;

	if (pcpu_chunk_map_check(&f->m, msg, sizeof(msg))) {
		fprintf(stderr, "fuzz_chunk: check: %s\n", msg);
		abort();
	}
	FUZZ_ASSERT(f->m.free_bytes == f->free_bits * 4);
	FUZZ_ASSERT(f->m.nr_alloc == f->nr_live);
	for (int p = 0; p < f->nr_bits / BLOCK; p++)
		empty += f->pop[p] && !memchr(f->used + p * BLOCK, 1, BLOCK);
	FUZZ_ASSERT(f->m.nr_empty_pop_pages == empty);
	for (int i = 0; i < f->nr_bits; i++) {
		FUZZ_ASSERT(((f->m.alloc_map[i / LB] >> (i % LB)) & 1) == f->used[i]);
		run = f->used[i] ? 0 : run + 1;
		contig = run > contig ? run : contig;
	}
	FUZZ_ASSERT(pcpu_chunk_map_contig_bits(&f->m) == contig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fmap maps[2];
	struct input in = { data, size };

	fmap_init(&maps[0], &in);
	fmap_init(&maps[1], &in);
	while (in.n) {
		unsigned op = next_byte(&in);
		struct fmap *f = &maps[op >> 7];

		switch (op % 8) {
		case 0: case 1: case 2:
			op_alloc(f, &in);
			break;
		case 3: case 4: case 5:
			op_free(f, &in);
			break;
		case 6:
			op_populate(f, &in);
			break;
		default:
			fmap_init(f, &in);
			break;
		}
		verify(f);
	}
	return 0;
}

#ifdef FUZZ_CHUNK_REPLAY_MAIN
int main(void)
{
	static uint8_t buf[8192];
	uint64_t x = 0x243f6a8885a308d3ULL;

	LLVMFuzzerTestOneInput(NULL, 0);
	memset(buf, 0, sizeof(buf));
	LLVMFuzzerTestOneInput(buf, sizeof(buf));
	memset(buf, 0xff, sizeof(buf));
	LLVMFuzzerTestOneInput(buf, sizeof(buf));
	for (int round = 0; round < 300; round++) {
		size_t n = 64 + round * 27 % (sizeof(buf) - 64);

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = (uint8_t)(x >> 24);
		}
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("fuzz_chunk_replay: ok\n");
	return 0;
}
#endif
