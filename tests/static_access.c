/* Compiled by static_access_script.cmake: CASE 0 must compile, the others must not. */
#include <percpu/percpu.h>

PERCPU_DEFINE(long, hits) = 1;

long use(void)
{
#if CASE == 0
	return *percpu_ptr(PERCPU_VAR(hits), 0);	/* through an accessor */
#elif CASE == 1
	return hits;					/* a direct read */
#else
	hits = 2;					/* a direct write */
	return 0;
#endif
}
