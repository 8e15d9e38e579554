/* engine_whpx.c - the Windows Hypervisor Platform engine.  For now only
 * its availability probe: the engine itself is a later issue, so create()
 * says so.
 *
 * WinHvPlatform.dll is loaded at run time, never linked: it exists only
 * where the "Windows Hypervisor Platform" feature is enabled, and a missing
 * import would stop vmm-core.exe before main() with no useful message (Wine
 * has no such DLL at all). */
#include <stdio.h>

#include <windows.h>
#include <winhvplatform.h>

#include "engine.h"
#include "host.h"

#define WHP_DLL "WinHvPlatform.dll"
#define WHAT_TO_DO "enable the Windows Hypervisor Platform feature, or use -accel soft"

typedef HRESULT(WINAPI *whv_get_capability_fn)(WHV_CAPABILITY_CODE code, VOID *buf, UINT32 size,
					       UINT32 *written);

static bool whpx_available(char *why, size_t n)
{
	char err[256];
	/* Stays loaded: the process that asks is the one that will use it. */
	void *lib = host_lib_open_system(WHP_DLL, err, sizeof(err));
	if (!lib) {
		snprintf(why, n, "%s: %s", err, WHAT_TO_DO);
		return false;
	}
	whv_get_capability_fn get_capability =
		(whv_get_capability_fn)host_lib_sym(lib, "WHvGetCapability");
	if (!get_capability) {
		snprintf(why, n, "%s has no WHvGetCapability: %s", WHP_DLL, WHAT_TO_DO);
		return false;
	}
	WHV_CAPABILITY cap = {0};
	UINT32 written = 0;
	HRESULT hr = get_capability(WHvCapabilityCodeHypervisorPresent, &cap, sizeof(cap), &written);
	if (FAILED(hr)) {
		snprintf(why, n, "WHvGetCapability failed (HRESULT 0x%08lx): %s", (unsigned long)hr,
			 WHAT_TO_DO);
		return false;
	}
	if (!cap.HypervisorPresent) {
		snprintf(why, n, "no hypervisor is running: enable virtualization in the firmware and "
				 "the Windows Hypervisor Platform feature, or use -accel soft");
		return false;
	}
	return true;
}

static struct engine *whpx_create(const struct engine_config *cfg, char *err, size_t n)
{
	snprintf(err, n, "the WHP engine is not implemented yet; use -accel soft");
	return NULL;
}

/* create() never succeeds yet, so nothing else is ever called. */
const struct engine_ops engine_whpx = {
	.name = "whpx",
	.available = whpx_available,
	.create = whpx_create,
};
