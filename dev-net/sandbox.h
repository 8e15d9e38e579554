/* sandbox.h - what dev-net may do once attached (host.h's sandbox).  Its
 * main sets dev_ops.sandbox = &net_sandbox; the device library enters it. */
#ifndef MINIVM_NET_SANDBOX_H
#define MINIVM_NET_SANDBOX_H

#include "host.h"

extern const struct host_sandbox_profile net_sandbox;

#endif
