/* SPDX-License-Identifier: MIT */
/* dlopen'ed; uses modlib_a's moda_shared (DECLARE_PER_CPU). */
#define MODLIB(x) modb_##x
#define MODLIB_BASE 2000
#include "modlib_body.h"
