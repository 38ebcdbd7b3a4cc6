/* SPDX-License-Identifier: MIT */
/*
 * pcpu_topology_read() on fake sysfs trees built in a temporary directory,
 * its fallback without sysfs, and the cpus/nodes overrides.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#include "check.h"

static char base[] = "/tmp/percpu-topo-XXXXXX";
static int tree_no;

/* mkdir -p of the directory part of path */
static void make_parents(const char *path)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(tmp, 0755);
		*p = '/';
	}
}

static void put(const char *root, const char *rel, const char *text)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	make_parents(path);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

/* A new empty sysfs root under the temporary directory. */
static const char *new_tree(char *buf, size_t len)
{
	snprintf(buf, len, "%s/sys%d", base, tree_no++);
	mkdir(buf, 0755);
	return buf;
}

static const char *fake_cpus(char *buf, size_t len, const char *possible,
			     const char *online)
{
	const char *root = new_tree(buf, len);

	if (possible)
		put(root, "devices/system/cpu/possible", possible);
	if (online)
		put(root, "devices/system/cpu/online", online);
	return root;
}

static void put_node(const char *root, int node, const char *cpulist)
{
	char rel[128];

	snprintf(rel, sizeof(rel), "devices/system/node/node%d/cpulist", node);
	put(root, rel, cpulist);
}

static bool online(const struct pcpu_topology *t, unsigned int cpu)
{
	return cpu < t->nr_cpu_ids && pcpu_test_bit(t->online, cpu);
}

static bool possible(const struct pcpu_topology *t, unsigned int cpu)
{
	return cpu < t->nr_cpu_ids && pcpu_test_bit(t->possible, cpu);
}

/* Checks the node of every CPU id < nr_cpu_ids against want (-1 if not possible). */
static void check_nodes(const struct pcpu_topology *t, const int *want,
			unsigned int n)
{
	CHECK_EQ(t->nr_cpu_ids, n);
	for (unsigned int cpu = 0; cpu < n && cpu < t->nr_cpu_ids; cpu++) {
		if (t->cpu_node[cpu] != want[cpu]) {
			fprintf(stderr, "cpu %u: node %d, want %d\n", cpu,
				t->cpu_node[cpu], want[cpu]);
			check_failures++;
		}
		CHECK_EQ(possible(t, cpu), want[cpu] >= 0);
	}
}

/* ---- real sysfs trees ---------------------------------------------------- */

static void test_sparse_two_nodes(void)
{
	struct pcpu_topology t;
	char buf[4096];
	const char *root = fake_cpus(buf, sizeof(buf), "0-3,64-67\n", "0-2,64\n");
	int want[68];

	put_node(root, 0, "0-3\n");
	put_node(root, 1, "64-67\n");
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	for (int i = 0; i < 68; i++)
		want[i] = i < 4 ? 0 : i >= 64 ? 1 : -1;
	check_nodes(&t, want, 68);
	CHECK_EQ(t.nr_possible, 8);
	CHECK_EQ(t.nr_nodes, 2);
	CHECK(!t.simulated);
	for (unsigned int i = 0; i < 68; i++)
		CHECK_EQ(online(&t, i), i <= 2 || i == 64);
	pcpu_topology_free(&t);
	CHECK(t.possible == NULL && t.cpu_node == NULL);
}

static void test_three_nodes(void)
{
	struct pcpu_topology t;
	char buf[4096];
	const char *root = fake_cpus(buf, sizeof(buf), "0-11\n", "0-11\n");
	int want[12] = { 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2 };

	/* written out of order: readdir order must not matter */
	put_node(root, 2, "8-11\n");
	put_node(root, 0, "0-3\n");
	put_node(root, 1, "4-7\n");
	put(root, "devices/system/node/possible", "0-2\n");	/* not a node dir */
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	check_nodes(&t, want, 12);
	CHECK_EQ(t.nr_possible, 12);
	CHECK_EQ(t.nr_nodes, 3);
	pcpu_topology_free(&t);
}

/* node1 has no directory: its CPUs fall back to node 0. */
static void test_missing_node_dir(void)
{
	struct pcpu_topology t;
	char buf[4096];
	const char *root = fake_cpus(buf, sizeof(buf), "0-7\n", "0-7\n");
	int want[8] = { 0, 0, 0, 0, 2, 2, 0, 0 };

	put_node(root, 0, "0-1\n");
	put_node(root, 2, "4-5\n");
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	check_nodes(&t, want, 8);
	CHECK_EQ(t.nr_nodes, 3);
	pcpu_topology_free(&t);
}

/* No node directory at all; a memory-only node; a garbage node file. */
static void test_odd_nodes(void)
{
	struct pcpu_topology t;
	char buf[4096];
	const char *root = fake_cpus(buf, sizeof(buf), "0-3\n", "0-3\n");
	int all0[4] = { 0, 0, 0, 0 };
	int want[4] = { 0, 0, 1, 1 };

	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	check_nodes(&t, all0, 4);
	CHECK_EQ(t.nr_nodes, 1);
	pcpu_topology_free(&t);

	put_node(root, 0, "garbage\n");
	put_node(root, 1, "2-3\n");
	put_node(root, 2, "\n");	/* memory-only node: no CPUs */
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	check_nodes(&t, want, 4);
	CHECK_EQ(t.nr_nodes, 3);
	pcpu_topology_free(&t);
}

/* A sysfs file larger than any first read buffer: every even id. */
static void test_long_cpulist(void)
{
	struct pcpu_topology t;
	char buf[4096];
	size_t len = 0, cap = 6 * 32768 + 2;
	char *list = malloc(cap);
	const char *root;

	CHECK(list != NULL);
	if (!list)
		return;
	for (unsigned int i = 0; i < 65536; i += 2)
		len += (size_t)snprintf(list + len, cap - len, "%s%u",
					i ? "," : "", i);
	snprintf(list + len, cap - len, "\n");
	root = fake_cpus(buf, sizeof(buf), list, "0-1\n");
	free(list);
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	CHECK_EQ(t.nr_cpu_ids, 65535);
	CHECK_EQ(t.nr_possible, 32768);
	CHECK(possible(&t, 65534) && !possible(&t, 65533));
	CHECK(online(&t, 0) && !online(&t, 1));
	pcpu_topology_free(&t);
}

/* What the fallback must give: affinity and 0..CONF-1 possible, node 0. */
static void check_fallback(const struct pcpu_topology *t)
{
	long conf = sysconf(_SC_NPROCESSORS_CONF);
	unsigned int nr_online = 0, n = 0;
	cpu_set_t set;

	CHECK(t->nr_possible >= 1);
	CHECK(t->nr_cpu_ids >= 1);
	CHECK_EQ(t->nr_nodes, 1);
	for (long i = 0; i < conf; i++)
		CHECK(possible(t, (unsigned int)i));
	CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
	for (unsigned int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &set))
			CHECK(possible(t, i) && online(t, i));
	for (unsigned int i = 0; i < t->nr_cpu_ids; i++) {
		n += possible(t, i);
		nr_online += online(t, i);
		if (online(t, i))
			CHECK(possible(t, i));
		CHECK_EQ(t->cpu_node[i], possible(t, i) ? 0 : -1);
	}
	CHECK_EQ(n, t->nr_possible);
	CHECK(nr_online >= 1);
	CHECK(possible(t, t->nr_cpu_ids - 1));	/* nr_cpu_ids is tight */
}

static void test_fallback(void)
{
	struct pcpu_topology t;
	char path[4096], buf[4096];
	const char *root;

	/* no sysfs at all */
	snprintf(path, sizeof(path), "%s/does-not-exist", base);
	CHECK(pcpu_topology_read(&t, NULL, NULL, path, NULL, 0) == 0);
	check_fallback(&t);
	pcpu_topology_free(&t);

	/* garbage possible file */
	root = fake_cpus(buf, sizeof(buf), "zzz\n", "0\n");
	put_node(root, 0, "0-3\n");
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	CHECK(t.nr_possible >= 1);
	CHECK(t.online != NULL && t.cpu_node != NULL);
	pcpu_topology_free(&t);

	/* empty possible file */
	root = fake_cpus(buf, sizeof(buf), "", NULL);
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	check_fallback(&t);
	pcpu_topology_free(&t);

	/* a good possible file with a garbage online file: online stays inside */
	root = fake_cpus(buf, sizeof(buf), "0-3\n", "1-\n");
	CHECK(pcpu_topology_read(&t, NULL, NULL, root, NULL, 0) == 0);
	CHECK_EQ(t.nr_cpu_ids, 4);
	CHECK_EQ(t.nr_possible, 4);
	CHECK(online(&t, 0) || online(&t, 1) || online(&t, 2) || online(&t, 3));
	pcpu_topology_free(&t);
}

/* ---- overrides ----------------------------------------------------------- */

static void test_cpus_overrides(const char *root)
{
	struct pcpu_topology t;
	char err[256];
	int want[68];

	/* a count: CPUs 0..4095, all on node 0, online = real online 0-3 */
	CHECK(pcpu_topology_read(&t, "4096", NULL, root, err, sizeof(err)) == 0);
	CHECK_EQ(t.nr_cpu_ids, 4096);
	CHECK_EQ(t.nr_possible, 4096);
	CHECK_EQ(t.nr_nodes, 1);
	CHECK(t.simulated);
	for (unsigned int i = 0; i < 4096; i++) {
		CHECK_EQ(t.cpu_node[i], 0);
		CHECK_EQ(online(&t, i), i < 4);
	}
	pcpu_topology_free(&t);

	/* a sparse list */
	CHECK(pcpu_topology_read(&t, "0-3,64-67", NULL, root, err,
				 sizeof(err)) == 0);
	for (int i = 0; i < 68; i++)
		want[i] = i < 4 || i >= 64 ? 0 : -1;
	check_nodes(&t, want, 68);
	CHECK_EQ(t.nr_possible, 8);
	for (unsigned int i = 0; i < 68; i++)
		CHECK_EQ(online(&t, i), i < 4);
	pcpu_topology_free(&t);

	/* no possible CPU is really online: the first possible one is */
	CHECK(pcpu_topology_read(&t, "100-103", NULL, root, err,
				 sizeof(err)) == 0);
	CHECK_EQ(t.nr_cpu_ids, 104);
	CHECK_EQ(t.nr_possible, 4);
	for (unsigned int i = 0; i < 104; i++)
		CHECK_EQ(online(&t, i), i == 100);
	pcpu_topology_free(&t);
}

static void test_nodes_overrides(const char *root)
{
	struct pcpu_topology t;
	char err[256];
	int want[68];

	/* ',' separated: one range per node */
	CHECK(pcpu_topology_read(&t, "1024", "0-511,512-1023", root, err,
				 sizeof(err)) == 0);
	CHECK_EQ(t.nr_nodes, 2);
	CHECK_EQ(t.nr_possible, 1024);
	for (unsigned int i = 0; i < 1024; i++)
		CHECK_EQ(t.cpu_node[i], i < 512 ? 0 : 1);
	pcpu_topology_free(&t);

	/* ';' separated sparse nodes */
	CHECK(pcpu_topology_read(&t, "0-3,64-67", "0-1,64-65;2-3,66-67", root,
				 err, sizeof(err)) == 0);
	for (int i = 0; i < 68; i++)
		want[i] = -1;
	want[0] = want[1] = want[64] = want[65] = 0;
	want[2] = want[3] = want[66] = want[67] = 1;
	check_nodes(&t, want, 68);
	CHECK_EQ(t.nr_nodes, 2);
	pcpu_topology_free(&t);

	/* nodes alone apply to the real possible CPUs (0-7 in this tree) */
	CHECK(pcpu_topology_read(&t, NULL, "0-3;4-7", root, err,
				 sizeof(err)) == 0);
	for (int i = 0; i < 8; i++)
		want[i] = i < 4 ? 0 : 1;
	check_nodes(&t, want, 8);
	CHECK(t.simulated);
	for (unsigned int i = 0; i < 8; i++)
		CHECK_EQ(online(&t, i), i < 4);
	pcpu_topology_free(&t);

	/* three nodes, whitespace tolerated around each list */
	CHECK(pcpu_topology_read(&t, "12", "0-3; 4-7 ;8-11\n", root, err,
				 sizeof(err)) == 0);
	CHECK_EQ(t.nr_nodes, 3);
	CHECK_EQ(t.cpu_node[7], 1);
	CHECK_EQ(t.cpu_node[8], 2);
	pcpu_topology_free(&t);
}

static void check_bad(const char *root, const char *cpus, const char *nodes)
{
	struct pcpu_topology t;
	char err[256] = "";

	errno = 0;
	if (pcpu_topology_read(&t, cpus, nodes, root, err, sizeof(err)) == 0) {
		fprintf(stderr, "override cpus=%s nodes=%s accepted\n",
			cpus ? cpus : "-", nodes ? nodes : "-");
		check_failures++;
		pcpu_topology_free(&t);
		return;
	}
	CHECK_EQ(errno, EINVAL);
	CHECK(err[0] != '\0');
	CHECK(strchr(err, '\n') == NULL);	/* one line */
	CHECK(t.possible == NULL && t.online == NULL && t.cpu_node == NULL);
}

static void test_bad_overrides(const char *root)
{
	static const char *const bad_cpus[] = {
		"", " ", "0", "a", "3-1", "1,,2", "1-", "4x", "65537",
		"99999999999999999999", "0-70000", "-4",
	};

	for (size_t i = 0; i < sizeof(bad_cpus) / sizeof(bad_cpus[0]); i++)
		check_bad(root, bad_cpus[i], NULL);
	check_bad(root, "8", "0-3");		/* 4-7 in no node */
	check_bad(root, "8", "0-3;0-7");	/* 0-3 twice */
	check_bad(root, "8", "0-3;4-8");	/* 8 is not possible */
	check_bad(root, "8", "0-3;;4-7");	/* empty node */
	check_bad(root, "8", "0-3;4-7;");	/* trailing separator */
	check_bad(root, "8", "0-3,,4-7");
	check_bad(root, "8", "x");
	check_bad(root, "8", "");
	check_bad(root, "8", "0-3:4-7");
	check_bad(root, NULL, "0-3");		/* real possible is 0-7 */
	check_bad(root, "0-3,64-67", "0-3;64-66");
}

int main(void)
{
	char buf[4096];
	const char *root;

	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	test_sparse_two_nodes();
	test_three_nodes();
	test_missing_node_dir();
	test_odd_nodes();
	test_long_cpulist();
	test_fallback();

	root = fake_cpus(buf, sizeof(buf), "0-7\n", "0-3\n");
	test_cpus_overrides(root);
	test_nodes_overrides(root);
	test_bad_overrides(root);

	/* best effort cleanup of the fake trees */
	snprintf(buf, sizeof(buf), "rm -rf '%s'", base);
	if (system(buf) != 0)
		fprintf(stderr, "could not remove %s\n", base);
	if (check_failures) {
		fprintf(stderr, "test_topology: %lu failure(s)\n", check_failures);
		return 1;
	}
	printf("test_topology: ok\n");
	return 0;
}
