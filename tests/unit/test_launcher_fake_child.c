/* test_launcher_fake_child.c - stands in for vmm-core and dev-serial in
 * test_launcher_supervise: built twice under those names next to a copy of
 * the launcher.  It records each start in $FAKE_LOG ("<name> <pid> <argv>"),
 * then behaves as the environment says, per role (CORE or SERIAL):
 *   FAKE_<ROLE>_MS       run this long, then exit (default: until killed)
 *   FAKE_<ROLE>_EXIT     exit status (default 0)
 *   FAKE_<ROLE>_SIGNAL   die by this signal instead of exiting
 *   FAKE_<ROLE>_DEAF     1: ignore SIGTERM (a process wedged in a join)
 *   FAKE_SERIAL_CRASHES  only the first N starts of dev-serial do the above;
 *                        later ones run until killed */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int env_int(const char *role, const char *what, int fallback)
{
	char name[64];
	snprintf(name, sizeof(name), "FAKE_%s_%s", role, what);
	const char *v = getenv(name);
	return v ? atoi(v) : fallback;
}

/* Earlier starts of role recorded in the log. */
static int previous_starts(const char *log_path, const char *role)
{
	FILE *f = fopen(log_path, "r");
	if (!f)
		return 0;
	int n = 0;
	char line[4096];
	while (fgets(line, sizeof(line), f))
		n += !strncmp(line, role, strlen(role)) && line[strlen(role)] == ' ';
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	const char *role = strstr(argv[0], "vmm-core") ? "CORE" : "SERIAL";
	const char *log_path = getenv("FAKE_LOG");
	int starts = log_path ? previous_starts(log_path, role) : 0;
	if (log_path) {
		FILE *f = fopen(log_path, "a");
		if (f) {
			fprintf(f, "%s %ld", role, (long)getpid());
			for (int i = 1; i < argc; i++)
				fprintf(f, " %s", argv[i]);
			fputc('\n', f);
			fclose(f);
		}
	}

	if (env_int(role, "DEAF", 0))
		signal(SIGTERM, SIG_IGN);
	int ms = env_int(role, "MS", -1);
	if (!strcmp(role, "SERIAL") && starts >= env_int("SERIAL", "CRASHES", 1 << 30))
		ms = -1;
	if (ms < 0)
		for (;;)
			pause();
	usleep((useconds_t)ms * 1000);
	int sig = env_int(role, "SIGNAL", 0);
	if (sig)
		raise(sig);
	return env_int(role, "EXIT", 0);
}
