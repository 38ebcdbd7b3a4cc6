/* SPDX-License-Identifier: MIT */
/* dlopen'ed (also in the load/unload loop); uses moda_shared too. */
#define MODLIB(x) modc_##x
#define MODLIB_BASE 3000
#include "modlib_body.h"
