/* sandbox.h - what dev-serial may do once attached (host.h's sandbox). */
#ifndef MINIVM_SERIAL_SANDBOX_H
#define MINIVM_SERIAL_SANDBOX_H

#include "host.h"

extern const struct host_sandbox_profile serial_sandbox;

#endif
