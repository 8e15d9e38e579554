/* cli.h - the launcher's command line: `launcher run [vm.conf] [flags]`.
 * Produces a checked struct vmconf without spawning anything, so all of it
 * is unit-testable. */
#ifndef MINIVM_CLI_H
#define MINIVM_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "vmconf.h"

enum cli_action { CLI_RUN, CLI_HELP, CLI_VERSION, CLI_CHECK };

/* Parse argv (argv[0] is the program).  For CLI_RUN, conf holds vm.conf
 * (if one was given) with the flags applied over it, checked by
 * vmconf_check().  On error returns -1 with one line in err.  The flags'
 * names stay referenced from conf (origins): argv must outlive conf. */
int cli_parse(int argc, char **argv, struct vmconf *conf, enum cli_action *action, char *err,
	      size_t errlen);

void cli_usage(FILE *out);

#endif
