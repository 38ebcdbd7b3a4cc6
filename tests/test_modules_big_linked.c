/* SPDX-License-Identifier: MIT */
/* Linked with modlib_big; run by test_modules_abort with a small reserved region. */
#include <stdio.h>

#include "modlib.h"

int main(void)
{
	printf("loaded: %d\n", modbig_first(percpu_next_possible(-1)));
	return 0;
}
