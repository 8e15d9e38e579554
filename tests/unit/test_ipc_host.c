/* test_ipc_host.c - the Linux host layer: shared memory across processes,
 * spawning and waiting, termination signals, the terminal, the runtime
 * directory. */
#define _GNU_SOURCE /* posix_openpt and friends */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "host.h"

#define SHM_SIZE (1u << 20)

static void test_shm_shared_between_processes(void **state)
{
	(void)state;
	char err[256] = "";
	host_shm *shm = host_shm_create("test-ram", SHM_SIZE, err, sizeof(err));
	assert_non_null(shm);
	assert_int_equal(host_shm_size(shm), SHM_SIZE);
	uint8_t *ram = host_shm_ptr(shm);
	ram[SHM_SIZE - 1] = 0x5a;

	/* Another process opens it by name, sees our byte and answers. */
	pid_t pid = fork();
	if (pid == 0) {
		host_shm *peer = host_shm_open(host_shm_name(shm), SHM_SIZE, err, sizeof(err));
		if (!peer)
			_exit(2);
		uint8_t *p = host_shm_ptr(peer);
		if (p[SHM_SIZE - 1] != 0x5a)
			_exit(3);
		p[0] = 0xa5;
		/* Asking for more than the object holds is refused. */
		_exit(host_shm_open(host_shm_name(shm), SHM_SIZE + 4096, err, sizeof(err)) ? 4 : 0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(ram[0], 0xa5);

	/* The size is sealed: nobody holding the object can shrink it. */
	host_shm *again = host_shm_open(host_shm_name(shm), SHM_SIZE, err, sizeof(err));
	assert_non_null(again);
	char fd_path[64];
	snprintf(fd_path, sizeof(fd_path), "%s", host_shm_name(again));
	assert_int_not_equal(truncate(fd_path, 4096), 0);
	host_shm_close(again);

	/* Names that are not a sealed shared-memory object. */
	assert_null(host_shm_open("/nonexistent/shm", 1, err, sizeof(err)));
	assert_null(host_shm_open("/dev/null", 1, err, sizeof(err)));
	char file[] = "/tmp/minivm-test-XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, SHM_SIZE), 0);
	assert_null(host_shm_open(file, SHM_SIZE, err, sizeof(err)));
	assert_non_null(strstr(err, "sealed"));
	close(fd);
	unlink(file);
	host_shm_close(shm);
}

static void test_spawn_and_wait(void **state)
{
	(void)state;
	char err[256] = "";
	char *const exits3[] = { "sh", "-c", "exit 3", NULL };
	char *const sleeps[] = { "sleep", "10", NULL };
	host_proc *procs[2];
	procs[0] = host_spawn("/bin/sh", exits3, err, sizeof(err));
	procs[1] = host_spawn("/bin/sleep", sleeps, err, sizeof(err));
	assert_non_null(procs[0]);
	assert_non_null(procs[1]);

	int status = -1;
	assert_int_equal(host_wait_any(procs, 2, 5000, &status), 0);
	assert_int_equal(status, 3);
	/* Reported once only: now only the sleeper is left, and it sleeps on. */
	uint64_t t0 = host_now_ns();
	assert_int_equal(host_wait_any(procs, 2, 50, &status), -1);
	assert_true(host_now_ns() - t0 >= 50 * 1000000ull);

	host_proc_kill(procs[1]);
	assert_int_equal(host_wait_any(procs, 2, 5000, &status), 1);
	assert_int_equal(status, 128 + 9);
	/* Nothing left to wait for: no waiting forever. */
	assert_int_equal(host_wait_any(procs, 2, -1, &status), -1);
	host_proc_free(procs[0]);
	host_proc_free(procs[1]);

	assert_null(host_spawn("/nonexistent/program", exits3, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/program"));
}

static void on_term(int sig)
{
	static const char msg[] = "cleanup ran\n";
	ssize_t ignored = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)ignored;
	(void)sig;
}

static void test_terminate_signal(void **state)
{
	(void)state;
	int out[2];
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		host_on_terminate(on_term);
		kill(getpid(), SIGTERM);
		_exit(0); /* not reached */
	}
	close(out[1]);
	char buf[64] = "";
	ssize_t n = read(out[0], buf, sizeof(buf) - 1);
	close(out[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(n > 0);
	assert_string_equal(buf, "cleanup ran\n");
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 128 + SIGTERM);
}

/* Raw mode on a pty standing in for the terminal, and back. */
static void test_terminal_raw_and_restore(void **state)
{
	(void)state;
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	int tty = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(tty >= 0);
	int saved_stdin = dup(STDIN_FILENO);
	dup2(tty, STDIN_FILENO);

	/* Zeroed: the padding inside struct termios is compared too. */
	struct termios before = {0}, raw, after = {0};
	tcgetattr(STDIN_FILENO, &before);
	assert_true(host_stdin_is_tty());
	struct host_term t;
	assert_int_equal(host_term_save(&t), 0);
	assert_int_equal(host_term_raw(&t), 0);
	tcgetattr(STDIN_FILENO, &raw);
	assert_int_equal(raw.c_lflag & (ECHO | ICANON | ISIG | IEXTEN), 0);
	assert_int_equal(raw.c_iflag & (ICRNL | IXON), 0);
	assert_int_equal(raw.c_oflag & OPOST, 0);
	host_term_restore(&t);
	tcgetattr(STDIN_FILENO, &after);
	assert_memory_equal(&before, &after, sizeof(before));

	dup2(saved_stdin, STDIN_FILENO);
	close(saved_stdin);
	close(tty);
	close(master);
}

static void test_runtime_dir(void **state)
{
	(void)state;
	char dir[256], url[300], err[256] = "";
	assert_int_equal(host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(host_ipc_url(dir, "serial", url, sizeof(url)), 0);
	assert_int_equal(strncmp(url, "ipc://", 6), 0);
	assert_non_null(strstr(url, "/serial.sock"));
	assert_int_equal(host_ipc_url(dir, "serial", url, 10), -1);

	char sock[400];
	snprintf(sock, sizeof(sock), "%s/leftover.sock", dir);
	FILE *f = fopen(sock, "w");
	assert_non_null(f);
	fclose(f);
	host_runtime_dir_remove(dir);
	assert_int_not_equal(stat(dir, &st), 0);

	char exe_dir[4096];
	assert_int_equal(host_exe_dir(exe_dir, sizeof(exe_dir)), 0);
	assert_true(exe_dir[0] == '/' && exe_dir[strlen(exe_dir) - 1] != '/');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shm_shared_between_processes),
		cmocka_unit_test(test_spawn_and_wait),
		cmocka_unit_test(test_terminate_signal),
		cmocka_unit_test(test_terminal_raw_and_restore),
		cmocka_unit_test(test_runtime_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
