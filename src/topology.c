/* SPDX-License-Identifier: MIT */
/*
 * Possible and online CPUs and their NUMA nodes: from sysfs, from
 * sched_getaffinity()/sysconf() when sysfs is not there, or from the
 * overrides that let one machine simulate another.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* percpu-info compiles this file right after cpulist.c: include once. */
#include "internal.h"

#define SYSFS_FILE_MAX (1 << 20)	/* 64K sparse ids fit in 400K */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- sysfs --------------------------------------------------------------- */

/* Doubles *buf (of *cap bytes) up to SYSFS_FILE_MAX; -1 if it cannot. */
static int grow(char **buf, size_t *cap)
{
	char *p;

	if (*cap >= SYSFS_FILE_MAX)
		return -1;
	p = realloc(*buf, *cap * 2);
	if (!p)
		return -1;
	*buf = p;
	*cap *= 2;
	return 0;
}

/*
 * Reads root/rel into a fresh NUL-terminated buffer; NULL on failure,
 * including a file too large to be a cpulist (never a truncated list).
 */
static char *read_sysfs(const char *root, const char *rel)
{
	char path[4096];
	size_t got = 0, cap = 4096;
	ssize_t n = 0;
	char *buf;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	while (buf) {
		if (got + 1 == cap && grow(&buf, &cap)) {
			n = -1;
			break;
		}
		n = read(fd, buf + got, cap - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (buf && n < 0) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[got] = '\0';
	return buf;
}

/* Parses the cpulist file root/rel; -1 if missing or malformed. */
static int read_cpulist(const char *root, const char *rel,
			unsigned long **bits, unsigned int *nbits)
{
	char *text = read_sysfs(root, rel);
	int ret;

	if (!text)
		return -1;
	ret = pcpu_cpulist_parse(text, PCPU_MAX_CPUS, bits, nbits);
	free(text);
	return ret;
}

static bool all_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return !*s;
}

/* ---- the fallback: affinity and sysconf ---------------------------------- */

/* Adds the CPUs this thread may run on to b (nbits bits). */
static void add_affinity(unsigned long *b, unsigned int nbits)
{
	size_t size = CPU_ALLOC_SIZE(PCPU_MAX_CPUS);
	cpu_set_t *set = CPU_ALLOC(PCPU_MAX_CPUS);

	if (!set)
		return;
	CPU_ZERO_S(size, set);
	if (sched_getaffinity(0, size, set) == 0) {
		for (unsigned int i = 0; i < nbits; i++)
			if (CPU_ISSET_S(i, size, set))
				pcpu_set_bit(b, i);
	}
	CPU_FREE(set);
}

static unsigned int sysconf_cpus(int name)
{
	long n = sysconf(name);

	if (n < 1)
		return 1;
	return (unsigned int)pcpu_min(n, (long)PCPU_MAX_CPUS);
}

static void add_first(unsigned long *b, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		pcpu_set_bit(b, i);
}

static unsigned int highest_bit_plus_one(const unsigned long *b,
					 unsigned int nbits)
{
	while (nbits && !pcpu_test_bit(b, nbits - 1))
		nbits--;
	return nbits;
}

/* possible = affinity U 0..CONF-1 */
static int fallback_possible(struct pcpu_topology *t)
{
	unsigned long *b = pcpu_bitmap_alloc(PCPU_MAX_CPUS);

	if (!b)
		return -1;
	add_affinity(b, PCPU_MAX_CPUS);
	add_first(b, sysconf_cpus(_SC_NPROCESSORS_CONF));
	t->possible = b;
	t->nr_cpu_ids = highest_bit_plus_one(b, PCPU_MAX_CPUS);
	return 0;
}

/* online = affinity U 0..ONLN-1, within the first n ids */
static void fallback_online(unsigned long *b, unsigned int n)
{
	add_affinity(b, n);
	add_first(b, pcpu_min(sysconf_cpus(_SC_NPROCESSORS_ONLN), n));
}

/* ---- common helpers ------------------------------------------------------ */

static unsigned int count_bits(const unsigned long *b, unsigned int nbits)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < nbits; i++)
		n += pcpu_test_bit(b, i);
	return n;
}

static unsigned int first_bit(const unsigned long *b, unsigned int nbits)
{
	unsigned int i = 0;

	while (i < nbits && !pcpu_test_bit(b, i))
		i++;
	return i;
}

/* t->online = the possible CPUs in src; the first possible one if none. */
static int set_online(struct pcpu_topology *t, const unsigned long *src,
		      unsigned int src_bits)
{
	unsigned long *on = pcpu_bitmap_alloc(t->nr_cpu_ids);

	if (!on)
		return -1;
	for (unsigned int i = 0; i < t->nr_cpu_ids; i++)
		if (pcpu_test_bit(t->possible, i) && pcpu_bit_in(src, src_bits, i))
			pcpu_set_bit(on, i);
	if (!count_bits(on, t->nr_cpu_ids))
		pcpu_set_bit(on, first_bit(t->possible, t->nr_cpu_ids));
	t->online = on;
	return 0;
}

static int alloc_node_map(struct pcpu_topology *t)
{
	t->cpu_node = malloc(pcpu_max(t->nr_cpu_ids, 1u) * sizeof(int));
	if (!t->cpu_node)
		return -1;
	for (unsigned int i = 0; i < t->nr_cpu_ids; i++)
		t->cpu_node[i] = -1;
	return 0;
}

/* Every possible CPU not placed yet goes to node 0. */
static void unplaced_to_node0(struct pcpu_topology *t)
{
	for (unsigned int i = 0; i < t->nr_cpu_ids; i++)
		if (pcpu_test_bit(t->possible, i) && t->cpu_node[i] < 0)
			t->cpu_node[i] = 0;
	if (!t->nr_nodes)
		t->nr_nodes = 1;
}

/* ---- the real topology --------------------------------------------------- */

static int real_possible(struct pcpu_topology *t, const char *root)
{
	unsigned int nbits;

	if (read_cpulist(root, "devices/system/cpu/possible", &t->possible,
			 &nbits) == 0) {
		t->nr_cpu_ids = nbits;
		return 0;
	}
	return fallback_possible(t);
}

static int real_online(struct pcpu_topology *t, const char *root)
{
	unsigned long *src;
	unsigned int nbits;
	int ret;

	if (read_cpulist(root, "devices/system/cpu/online", &src, &nbits)) {
		nbits = t->nr_cpu_ids;
		src = pcpu_bitmap_alloc(nbits);
		if (!src)
			return -1;
		fallback_online(src, nbits);
	}
	ret = set_online(t, src, nbits);
	free(src);
	return ret;
}

/* "node12" -> 12; -1 for any other name or an id past PCPU_MAX_NODES. */
static int node_dir_id(const char *name)
{
	unsigned long id;
	char *end;

	if (strncmp(name, "node", 4) || !isdigit((unsigned char)name[4]))
		return -1;
	id = strtoul(name + 4, &end, 10);
	if (*end || id >= PCPU_MAX_NODES)
		return -1;
	return (int)id;
}

/* Places the possible CPUs listed in node id's cpulist (first node wins). */
static void read_one_node(struct pcpu_topology *t, const char *root, int id)
{
	char rel[64];
	char *text;
	unsigned long *bits;
	unsigned int nbits;
	int ret;

	snprintf(rel, sizeof(rel), "devices/system/node/node%d/cpulist", id);
	text = read_sysfs(root, rel);
	if (!text)
		return;
	/* A memory-only node has an empty cpulist: it still counts. */
	if (all_space(text)) {
		t->nr_nodes = pcpu_max(t->nr_nodes, (unsigned int)id + 1);
		free(text);
		return;
	}
	ret = pcpu_cpulist_parse(text, PCPU_MAX_CPUS, &bits, &nbits);
	free(text);
	if (ret)
		return;		/* garbage: its CPUs end up on node 0 */
	t->nr_nodes = pcpu_max(t->nr_nodes, (unsigned int)id + 1);
	for (unsigned int i = 0; i < pcpu_min(nbits, t->nr_cpu_ids); i++)
		if (pcpu_test_bit(bits, i) && pcpu_test_bit(t->possible, i) &&
		    t->cpu_node[i] < 0)
			t->cpu_node[i] = id;
	free(bits);
}

static void real_nodes(struct pcpu_topology *t, const char *root)
{
	char path[4096];
	bool *present;
	struct dirent *de;
	DIR *dir;

	snprintf(path, sizeof(path), "%s/devices/system/node", root);
	present = calloc(PCPU_MAX_NODES, sizeof(*present));
	dir = present ? opendir(path) : NULL;
	if (dir) {
		while ((de = readdir(dir)) != NULL) {
			int id = node_dir_id(de->d_name);

			if (id >= 0)
				present[id] = true;
		}
		closedir(dir);
		/* Ascending node order, whatever order readdir gave. */
		for (int id = 0; id < PCPU_MAX_NODES; id++)
			if (present[id])
				read_one_node(t, root, id);
	}
	free(present);
	unplaced_to_node0(t);
}

static int read_real(struct pcpu_topology *t, const char *root)
{
	if (real_possible(t, root) || real_online(t, root) ||
	    alloc_node_map(t))
		return -1;
	t->nr_possible = count_bits(t->possible, t->nr_cpu_ids);
	real_nodes(t, root);
	return 0;
}

/* ---- overrides ----------------------------------------------------------- */

static bool all_digits(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	if (!isdigit((unsigned char)*s))
		return false;
	while (isdigit((unsigned char)*s))
		s++;
	return all_space(s);
}

/* "N" (CPUs 0..N-1) or a cpulist -> t->possible. */
static int parse_cpus(struct pcpu_topology *t, const char *cpus,
		      char *err, size_t errlen)
{
	if (all_digits(cpus)) {
		unsigned long n;

		errno = 0;
		n = strtoul(cpus, NULL, 10);
		if (errno || n < 1 || n > PCPU_MAX_CPUS) {
			set_err(err, errlen, "CPU count must be 1 to %u",
				PCPU_MAX_CPUS);
			errno = EINVAL;
			return -1;
		}
		t->nr_cpu_ids = (unsigned int)n;
		t->possible = pcpu_bitmap_alloc(t->nr_cpu_ids);
		if (!t->possible)
			return -1;
		add_first(t->possible, t->nr_cpu_ids);
		return 0;
	}
	if (pcpu_cpulist_parse(cpus, PCPU_MAX_CPUS, &t->possible,
			       &t->nr_cpu_ids) == 0)
		return 0;
	if (errno == EINVAL)
		set_err(err, errlen,
			"expected a CPU count or a cpulist such as 0-3,64-67 (ids below %u)",
			PCPU_MAX_CPUS);
	return -1;
}

static int node_error(char *err, size_t errlen, const char *fmt,
		      unsigned int a, unsigned int b)
{
	set_err(err, errlen, fmt, a, b);
	errno = EINVAL;
	return -1;
}

/* Places node k's cpulist (one piece of the nodes override). */
static int place_node(struct pcpu_topology *t, const char *piece,
		      unsigned int k, char *err, size_t errlen)
{
	unsigned long *bits;
	unsigned int nbits;

	if (pcpu_cpulist_parse(piece, PCPU_MAX_CPUS, &bits, &nbits)) {
		if (errno != EINVAL)
			return -1;
		return node_error(err, errlen,
				  "node %u: not a cpulist (ids below %u)", k,
				  PCPU_MAX_CPUS);
	}
	for (unsigned int i = 0; i < nbits; i++) {
		if (!pcpu_test_bit(bits, i))
			continue;
		if (!pcpu_bit_in(t->possible, t->nr_cpu_ids, i)) {
			free(bits);
			return node_error(err, errlen,
					  "CPU %u of node %u is not possible",
					  i, k);
		}
		if (t->cpu_node[i] >= 0) {
			free(bits);
			return node_error(err, errlen,
					  "CPU %u is in more than one node (again in node %u)",
					  i, k);
		}
		t->cpu_node[i] = (int)k;
	}
	free(bits);
	return 0;
}

/* One cpulist per node, split at ';' if there is one, else at ','. */
static int parse_nodes(struct pcpu_topology *t, const char *nodes,
		       char *err, size_t errlen)
{
	char sep = strchr(nodes, ';') ? ';' : ',';
	char *copy = strdup(nodes);
	char *piece = copy;
	unsigned int k = 0;
	int ret = 0;

	if (!copy)
		return -1;
	while (piece && ret == 0) {
		char *next = strchr(piece, sep);

		if (next)
			*next++ = '\0';
		if (k == PCPU_MAX_NODES)
			ret = node_error(err, errlen, "more than %u nodes",
					 PCPU_MAX_NODES, 0);
		else
			ret = place_node(t, piece, k++, err, errlen);
		piece = next;
	}
	free(copy);
	if (ret)
		return ret;
	for (unsigned int i = 0; i < t->nr_cpu_ids; i++)
		if (pcpu_test_bit(t->possible, i) && t->cpu_node[i] < 0)
			return node_error(err, errlen, "CPU %u is in no node",
					  i, 0);
	t->nr_nodes = k;
	return 0;
}

/* Builds t from the overrides, taking what they leave out from real. */
static int apply_overrides(struct pcpu_topology *t,
			   const struct pcpu_topology *real, const char *cpus,
			   const char *nodes, char *err, size_t errlen)
{
	if (cpus) {
		if (parse_cpus(t, cpus, err, errlen))
			return -1;
	} else {
		t->nr_cpu_ids = real->nr_cpu_ids;
		t->possible = pcpu_bitmap_alloc(t->nr_cpu_ids);
		if (!t->possible)
			return -1;
		memcpy(t->possible, real->possible,
		       BITS_TO_LONGS(t->nr_cpu_ids) * sizeof(unsigned long));
	}
	t->nr_possible = count_bits(t->possible, t->nr_cpu_ids);
	if (set_online(t, real->online, real->nr_cpu_ids) || alloc_node_map(t))
		return -1;
	if (nodes) {
		if (parse_nodes(t, nodes, err, errlen))
			return -1;
	} else if (cpus) {
		unplaced_to_node0(t);
	}
	t->simulated = true;
	return 0;
}

/* ---- entry points -------------------------------------------------------- */

int pcpu_topology_read(struct pcpu_topology *t, const char *cpus,
		       const char *nodes, const char *sysfs_root,
		       char *err, size_t errlen)
{
	struct pcpu_topology real;
	int ret, saved;

	memset(t, 0, sizeof(*t));
	memset(&real, 0, sizeof(real));
	if (!sysfs_root)
		sysfs_root = "/sys";
	if (read_real(&real, sysfs_root)) {
		pcpu_topology_free(&real);
		set_err(err, errlen, "out of memory reading the topology");
		errno = ENOMEM;
		return -1;
	}
	if (!cpus && !nodes) {
		*t = real;
		return 0;
	}
	ret = apply_overrides(t, &real, cpus, nodes, err, errlen);
	saved = errno;
	pcpu_topology_free(&real);
	if (ret) {
		if (saved != EINVAL) {
			saved = ENOMEM;
			set_err(err, errlen, "out of memory");
		}
		pcpu_topology_free(t);
		errno = saved;
	}
	return ret;
}

void pcpu_topology_free(struct pcpu_topology *t)
{
	free(t->possible);
	free(t->online);
	free(t->cpu_node);
	memset(t, 0, sizeof(*t));
}
