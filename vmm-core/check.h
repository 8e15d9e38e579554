/* check.h - `vmm-core --check`: the engines on this host, for bug reports. */
#ifndef MINIVM_CHECK_H
#define MINIVM_CHECK_H

#include <stdio.h>

/* Print, for each engine built in: available or why not, what it finds on
 * this host, and a run of s001 (at most 1 s) where it is available.  0 if
 * every available engine ran s001 correctly, 1 otherwise. */
int core_check(FILE *out);

#endif
