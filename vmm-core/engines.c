/* engines.c - the engines built into this vmm-core, best first. */
#include <stddef.h>
#include <string.h>

#include "engine.h"

#ifdef __linux__
extern const struct engine_ops engine_kvm;
#endif
extern const struct engine_ops engine_soft;
#ifdef _WIN32
extern const struct engine_ops engine_whpx;
#endif

const struct engine_ops *const engine_list[] = {
#ifdef __linux__
	&engine_kvm,
#endif
	&engine_soft,
#ifdef _WIN32
	/* After soft until it can run a guest: only its availability probe
	 * exists, and `auto` must not pick it. */
	&engine_whpx,
#endif
	NULL,
};

const struct engine_ops *engine_find(const char *name)
{
	for (size_t i = 0; engine_list[i]; i++)
		if (strcmp(engine_list[i]->name, name) == 0)
			return engine_list[i];
	return NULL;
}
