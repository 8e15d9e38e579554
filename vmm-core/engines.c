/* engines.c - the engines built into this vmm-core, best first. */
#include <stddef.h>
#include <string.h>

#include "engine.h"

#ifdef __linux__ /* engine_kvm.c on x86-64, engine_kvm_arm64.c on arm64 */
extern const struct engine_ops engine_kvm;
#endif
#ifndef __aarch64__ /* the x86 software CPU comes with the x86 board */
extern const struct engine_ops engine_soft;
#endif
#ifdef _WIN32
extern const struct engine_ops engine_whpx;
#endif

const struct engine_ops *const engine_list[] = {
#ifdef __linux__
	&engine_kvm,
#endif
#ifdef _WIN32
	&engine_whpx,
#endif
#ifndef __aarch64__
	&engine_soft,
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
