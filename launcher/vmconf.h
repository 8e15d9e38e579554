/* vmconf.h - the VM's configuration: vm.conf keys, command-line overrides,
 * and the checks that run before anything is spawned.
 *
 * Every setting is one key of a fixed table (enum vmconf_key).  vm.conf sets
 * keys by [section] name, command-line flags set the same keys through the
 * same setter, so a value means the same thing wherever it comes from.  Each
 * key remembers where it was last set (file and line, or the flag) so that
 * errors found later, after all sources are merged, can still point there. */
#ifndef MINIVM_VMCONF_H
#define MINIVM_VMCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net_config.h"

#define VMCONF_PATH_MAX 4096
/* Linux's x86 COMMAND_LINE_SIZE, the terminating NUL included. */
#define VMCONF_CMDLINE_MAX 2048
#define VMCONF_ERR_MAX 512

#define VMCONF_MEMORY_MIN (2ull << 20)
/* vmm-core's limit; it also refuses more than the host's RAM and swap. */
#define VMCONF_MEMORY_MAX (512ull << 30)
#define VMCONF_CPUS_MAX 8

enum vmconf_key {
	VMCONF_ENGINE,
	VMCONF_MEMORY,
	VMCONF_CPUS,
	VMCONF_KERNEL,
	VMCONF_FLAT,
	VMCONF_FLAT_MODE,
	VMCONF_FLAT_ADDR,
	VMCONF_INITRD,
	VMCONF_CMDLINE,
	VMCONF_STDIO,
	VMCONF_DEBUGCON,
	VMCONF_MMIO_UART,
	VMCONF_HVC0,
	VMCONF_CONSOLE,
	VMCONF_DEBUGCON_MMIO,
	VMCONF_REBOOT,
	VMCONF_SANDBOX,
	VMCONF_JIT,
	VMCONF_KEY_COUNT
};

enum vmconf_flat_mode { VMCONF_FLAT_REAL, VMCONF_FLAT_LONG };

/* [net] and -nic keys as given: dev-net gets each as `--net key=value`. */
#define VMCONF_NET_ARGS_MAX 64

/* Where a key got its value: a vm.conf line, a command-line flag, or the
 * default (line 0, flag NULL). */
struct vmconf_origin {
	int line;
	const char *flag; /* as the user typed it; points into argv */
};

struct vmconf {
	char engine[8]; /* "auto", "kvm", "whpx" or "soft": vmm-core decides "auto" */
	uint64_t memory; /* bytes */
	int cpus;
	char kernel[VMCONF_PATH_MAX]; /* "" when not set; kernel xor flat */
	char flat[VMCONF_PATH_MAX];
	enum vmconf_flat_mode flat_mode;
	uint64_t flat_addr; /* arm64: where the flat image loads and starts; passed on only if set */
	char initrd[VMCONF_PATH_MAX];
	char cmdline[VMCONF_CMDLINE_MAX]; /* passed on only if set (vmconf_is_set) */
	bool stdio;
	int debugcon; /* port, or -1 for none */
	bool has_mmio_uart;
	uint64_t mmio_uart; /* guest physical address of the second 16550 */
	bool hvc0;          /* [serial] hvc0: a virtio-console (default on) */
	bool console_hvc0;  /* [serial] console = hvc0: terminal input to hvc0, not ttyS0 */
	bool has_debugcon_mmio;
	uint64_t debugcon_mmio; /* the debug port at an MMIO address (arm64 boards) */
	bool reboot_exits;  /* [vm] reboot = exit: a guest reset ends the VM */
	bool sandbox;       /* [vm] sandbox = on: every child enters its sandbox (host.h) */
	bool jit;           /* [vm] jit = off: the soft engine interprets instead of translating */

	char conf_path[VMCONF_PATH_MAX]; /* "" when no vm.conf was read */
	struct vmconf_origin origin[VMCONF_KEY_COUNT];

	/* The network: a [net] section or a -nic flag lists dev-net (with
	 * user = on, its default); -nic replaces the file's [net]. */
	bool net_listed;
	struct net_config net; /* the keys applied, not yet net_config_check'ed */
	unsigned n_net_args;
	struct {
		char text[NET_PAIR_MAX]; /* key=value */
		struct vmconf_origin origin;
	} net_args[VMCONF_NET_ARGS_MAX];
};

/* The defaults: engine auto, memory 256M, cpus 1, stdio on, flat-mode real,
 * sandbox on. */
void vmconf_init(struct vmconf *c);

/* Read vm.conf at path into c.  On error returns -1 with one line in err:
 * "vm.conf:7: [vm] memory: "12Q" is not a size (use e.g. 256M or 1G)". */
int vmconf_parse_file(struct vmconf *c, const char *path, char *err, size_t errlen);

/* Set one key from text.  A relative path is prefixed with base_dir, which
 * is "" (the current directory) or ends with a separator.  On error returns -1 with the
 * reason only (e.g. "\"12Q\" is not a size ..."); the caller says where.
 * The key's origin is left to the caller. */
int vmconf_set(struct vmconf *c, enum vmconf_key key, const char *value, const char *base_dir,
	       char *why, size_t whylen);

/* `-nic OPTSTR` (flag: as typed, kept as the keys' origin): the network
 * from QEMU's option string, replacing vm.conf's [net].  -1 with the reason
 * in why. */
int vmconf_set_nic(struct vmconf *c, const char *flag, const char *optstr, char *why, size_t whylen);

/* Was key set by vm.conf or a flag (rather than left at its default)? */
bool vmconf_is_set(const struct vmconf *c, enum vmconf_key key);

/* Back to the default, as if never set: for the guest's files (kernel, flat,
 * flat-mode, initrd, cmdline) when the command line names another guest. */
void vmconf_unset_guest_key(struct vmconf *c, enum vmconf_key key);

/* Checks across keys and of the files named, once every source is merged:
 * a kernel or a flat binary (not both), files readable, the flat binary fits
 * in memory, initrd/cmdline only with a kernel, the MMIO UART outside RAM. */
int vmconf_check(const struct vmconf *c, char *err, size_t errlen);

/* "vm.conf:7: [vm] memory", "-m" or "[vm] memory": where key was set. */
void vmconf_where(const struct vmconf *c, enum vmconf_key key, char *buf, size_t n);

#endif
