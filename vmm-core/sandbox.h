/* sandbox.h - what vmm-core may do once its devices are attached and the
 * guest image is loaded (host.h's sandbox). */
#ifndef MINIVM_CORE_SANDBOX_H
#define MINIVM_CORE_SANDBOX_H

#include "host.h"

/* The profile for the engine named engine_name ("kvm", "soft", ...). */
const struct host_sandbox_profile *core_sandbox(const char *engine_name);

#endif
