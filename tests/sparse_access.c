/* Checked by sparse_script.cmake: CASE 0 is clean, the others are reported. */
#include <percpu/linux.h>

DEFINE_PER_CPU(long, hits);

long use(long __percpu *dyn)
{
#if CASE == 0
	return per_cpu(hits, 0) + *per_cpu_ptr(dyn, 0);
#elif CASE == 1
	return hits;			/* direct read of a per-CPU variable */
#else
	return *dyn;			/* dereference of a per-CPU pointer */
#endif
}
