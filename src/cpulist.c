/* SPDX-License-Identifier: MIT */
/*
 * The kernel's cpulist syntax, as in /sys/devices/system/cpu/possible:
 * comma-separated items, each "N", "N-M" or "N-M:used/group" (in every
 * group of `group` ids starting at N, the first `used` ones, up to M).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct cpu_range {
	unsigned int start, end;	/* inclusive */
	unsigned int used, group;	/* group == 0: every id */
};

/* Reads a decimal number below limit; NULL on no digits or overflow. */
static const char *parse_id(const char *s, unsigned int limit,
			    unsigned int *out)
{
	unsigned long long v = 0;

	if (!isdigit((unsigned char)*s))
		return NULL;
	while (isdigit((unsigned char)*s)) {
		v = v * 10 + (unsigned int)(*s - '0');
		if (v >= limit)
			return NULL;
		s++;
	}
	*out = (unsigned int)v;
	return s;
}

/* One item; returns the character after it, or NULL if malformed. */
static const char *parse_range(const char *s, unsigned int max_ids,
			       struct cpu_range *r)
{
	s = parse_id(s, max_ids, &r->start);
	if (!s)
		return NULL;
	r->end = r->start;
	r->used = 0;
	r->group = 0;
	if (*s != '-')
		return s;
	s = parse_id(s + 1, max_ids, &r->end);
	if (!s || r->end < r->start)
		return NULL;
	if (*s != ':')
		return s;
	/* used/group: both at least 1 and used <= group; no id bound */
	s = parse_id(s + 1, ~0u, &r->used);
	if (!s || *s != '/')
		return NULL;
	s = parse_id(s + 1, ~0u, &r->group);
	if (!s || r->used == 0 || r->group == 0 || r->used > r->group)
		return NULL;
	return s;
}

static bool range_has(const struct cpu_range *r, unsigned int id)
{
	return !r->group || (id - r->start) % r->group < r->used;
}

/*
 * Walks the list; with bits == NULL only validates it and finds the
 * highest id.  Returns the highest id + 1, or 0 if malformed.
 */
static unsigned int walk_list(const char *s, unsigned int max_ids,
			      unsigned long *bits)
{
	unsigned int top = 0;
	struct cpu_range r;

	for (;;) {
		s = parse_range(s, max_ids, &r);
		if (!s)
			return 0;
		for (unsigned int id = r.start; id <= r.end; id++) {
			if (!range_has(&r, id))
				continue;
			if (bits)
				pcpu_set_bit(bits, id);
			if (id + 1 > top)
				top = id + 1;
		}
		if (*s != ',')
			break;
		s++;
	}
	while (isspace((unsigned char)*s))
		s++;
	return *s ? 0 : top;
}

int pcpu_cpulist_parse(const char *s, unsigned int max_ids,
		       unsigned long **bits, unsigned int *nbits)
{
	unsigned int top;
	unsigned long *b;

	if (!s) {
		errno = EINVAL;
		return -1;
	}
	while (isspace((unsigned char)*s))
		s++;
	top = walk_list(s, max_ids, NULL);
	if (!top) {
		errno = EINVAL;
		return -1;
	}
	b = calloc(BITS_TO_LONGS(top), sizeof(*b));
	if (!b) {
		errno = ENOMEM;
		return -1;
	}
	walk_list(s, max_ids, b);
	*bits = b;
	*nbits = top;
	return 0;
}

/* Appends to buf like snprintf, never past len; tracks the length used. */
static void append(char *buf, size_t len, size_t *used, const char *fmt,
		   unsigned int a, unsigned int b)
{
	int n;

	if (*used + 1 >= len)
		return;
	n = snprintf(buf + *used, len - *used, fmt, a, b);
	if (n < 0)
		return;
	*used += pcpu_min((size_t)n, len - *used - 1);
}

size_t pcpu_cpulist_format(char *buf, size_t len, const unsigned long *bits,
			   unsigned int nbits)
{
	size_t used = 0;
	unsigned int i = 0;

	if (!len)
		return 0;
	buf[0] = '\0';
	while (i < nbits) {
		unsigned int start;

		if (!pcpu_test_bit(bits, i)) {
			i++;
			continue;
		}
		start = i;
		while (i + 1 < nbits && pcpu_test_bit(bits, i + 1))
			i++;
		if (used)
			append(buf, len, &used, ",", 0, 0);
		if (start == i)
			append(buf, len, &used, "%u", start, 0);
		else
			append(buf, len, &used, "%u-%u", start, i);
		i++;
	}
	return used;
}
