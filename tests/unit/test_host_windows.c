/* test_host_windows.c - the Windows host layer (ipc/host_windows.c), run
 * under Wine by scripts/test-windows.sh: shared memory between processes,
 * spawning with exact arguments, the kill-on-close job, stdin from a pipe,
 * console keys turned into bytes, library loading, the runtime dir, Winsock
 * started for sockets of the process's own (dev-net's libslirp) and polled
 * with host_poll, and the sandbox (low integrity, no child process).
 * The console test needs a terminal under Wine (it skips without one).
 *
 * The test runs copies of itself as child processes; argv[1] says which. */
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h>
#include <windows.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host.h"

#define SHM_SIZE 65536
#define CHILD_OK 0
#define CHILD_BAD 1

static char self_path[1024];

static host_proc *spawn_self(char *const argv[])
{
	char err[256] = "";
	host_proc *p = host_spawn(self_path, argv, err, sizeof(err));
	if (!p)
		fail_msg("host_spawn: %s", err);
	return p;
}

static int wait_status(host_proc *p, int timeout_ms)
{
	host_proc *const procs[] = {p};
	int status = -1;
	assert_int_equal(host_wait_any(procs, 1, timeout_ms, &status), 0);
	return status;
}

/* ---- children ---- */

/* Enters a device's sandbox, then: starting a program fails (the job allows
 * one active process) and the token is at the low integrity level.  Wine
 * accepts both settings and enforces neither (measured: the spawn succeeds,
 * the level reads back unchanged), so under Wine only entering is checked,
 * and the guest boot of scripts/test-windows.sh runs every process in its
 * sandbox. */
static int child_sandboxed(void)
{
	static const struct host_sandbox_profile device = {.data_limit = 64ull << 20};
	char err[256];
	if (host_sandbox_enter(&device, err, sizeof(err)) != HOST_SANDBOX_ENTERED) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (GetProcAddress(GetModuleHandleA("ntdll.dll"), "wine_get_version")) {
		fprintf(stderr, "under Wine: the job's process limit and the integrity level are not checked\n");
		return CHILD_OK;
	}
	char *sleeper[] = {self_path, "--child-sleep", NULL};
	host_proc *p = host_spawn(self_path, sleeper, err, sizeof(err));
	if (p) {
		host_proc_kill(p);
		fprintf(stderr, "a sandboxed process started a program\n");
		return 5;
	}
	HANDLE token;
	unsigned char buf[64];
	DWORD len;
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token) ||
	    !GetTokenInformation(token, TokenIntegrityLevel, buf, sizeof(buf), &len))
		return 3;
	PSID sid = ((TOKEN_MANDATORY_LABEL *)buf)->Label.Sid;
	DWORD level = *GetSidSubAuthority(sid, *GetSidSubAuthorityCount(sid) - 1);
	if (level != SECURITY_MANDATORY_LOW_RID) {
		fprintf(stderr, "integrity level 0x%lx\n", (unsigned long)level);
		return 4;
	}
	return CHILD_OK;
}

/* Writes a marker into the shared memory named argv[2]. */
static int child_shm(char **argv)
{
	char err[256];
	host_shm *s = host_shm_open(argv[2], SHM_SIZE, err, sizeof(err));
	if (!s)
		return CHILD_BAD;
	uint8_t *mem = host_shm_ptr(s);
	int ok = mem[100] == 0x5a;
	mem[SHM_SIZE - 1] = 0xa5;
	host_shm_close(s);
	return ok ? CHILD_OK : CHILD_BAD;
}

/* Arguments that need quoting on a Windows command line. */
static char *const tricky_args[] = {
	"plain", "with space", "", "q\"uote", "back\\slash\\", "tr\\\\\"x", "tab\there", "\\\\server\\share\\", NULL,
};

static int child_args(int argc, char **argv)
{
	int i = 0;
	for (; tricky_args[i]; i++)
		if (i + 2 >= argc || strcmp(argv[i + 2], tricky_args[i]) != 0)
			return CHILD_BAD;
	return i + 2 == argc ? CHILD_OK : CHILD_BAD;
}

/* Counts stdin's bytes until EOF; exits with the count. */
static int child_cat(void)
{
	char buf[7]; /* small: several reads */
	long n, total = 0;
	while ((n = host_stdin_read(buf, sizeof(buf))) > 0)
		total += n;
	return n == 0 ? (int)total : -1;
}

/* Spawns a sleeping grandchild, publishes its pid in shared memory argv[2],
 * then sleeps: killing us must kill it. */
static int child_parent(char **argv)
{
	char err[256];
	host_shm *s = host_shm_open(argv[2], SHM_SIZE, err, sizeof(err));
	if (!s)
		return CHILD_BAD;
	char *sleeper[] = {self_path, "--child-sleep", NULL};
	host_proc *p = host_spawn(self_path, sleeper, err, sizeof(err));
	if (!p)
		return CHILD_BAD;
	*(volatile long *)host_shm_ptr(s) = host_proc_pid(p);
	host_sleep_ms(60000);
	return CHILD_BAD;
}

/* ---- tests ---- */

static void test_shm_between_processes(void **state)
{
	char err[256];
	host_shm *s = host_shm_create("test", SHM_SIZE, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(host_shm_size(s), SHM_SIZE);
	uint8_t *mem = host_shm_ptr(s);
	mem[100] = 0x5a;

	char *argv[] = {self_path, "--child-shm", (char *)host_shm_name(s), NULL};
	assert_int_equal(wait_status(spawn_self(argv), 10000), CHILD_OK);
	assert_int_equal(mem[SHM_SIZE - 1], 0xa5);

	/* A peer may not claim the object is larger than it is. */
	assert_null(host_shm_open(host_shm_name(s), 2 * SHM_SIZE, err, sizeof(err)));
	host_shm_close(s);
}

static void test_sandbox_low_integrity_no_child_processes(void **state)
{
	char *argv[] = {self_path, "--child-sandboxed", NULL};
	assert_int_equal(wait_status(spawn_self(argv), 10000), CHILD_OK);
}

static void test_shm_hostile_names(void **state)
{
	char err[256];
	assert_null(host_shm_open("Global\\something", SHM_SIZE, err, sizeof(err)));
	assert_null(host_shm_open("Local\\minivm-1-x\\..\\y", SHM_SIZE, err, sizeof(err)));
	assert_null(host_shm_open("", SHM_SIZE, err, sizeof(err)));
	assert_null(host_shm_open("Local\\minivm-999999-none-0", SHM_SIZE, err, sizeof(err)));
	assert_non_null(strstr(err, "Windows error"));
	assert_null(host_shm_create("bad/tag", SHM_SIZE, err, sizeof(err)));
	assert_null(host_shm_create("zero", 0, err, sizeof(err)));
}

static void test_spawn_passes_arguments_exactly(void **state)
{
	char *argv[16] = {self_path, "--child-args"};
	for (int i = 0; tricky_args[i]; i++)
		argv[i + 2] = tricky_args[i];
	assert_int_equal(wait_status(spawn_self(argv), 10000), CHILD_OK);
}

static void test_wait_timeout_kill_and_report_once(void **state)
{
	char *argv[] = {self_path, "--child-sleep", NULL};
	host_proc *p = spawn_self(argv);
	host_proc *const procs[] = {NULL, p};
	int status = -1;
	uint64_t t0 = host_now_ns();
	assert_int_equal(host_wait_any(procs, 2, 200, &status), -1);
	assert_true(host_now_ns() - t0 >= 150 * 1000000ull);

	host_proc_kill(p);
	assert_int_equal(host_wait_any(procs, 2, 10000, &status), 1);
	assert_int_equal(status, 128 + 9);
	/* Reported once: now nothing is left to wait for. */
	assert_int_equal(host_wait_any(procs, 2, 0, &status), -1);
	host_proc_free(p);
}

static void test_spawn_missing_program(void **state)
{
	char err[256] = "";
	char *argv[] = {"nothere", NULL};
	assert_null(host_spawn("C:\\minivm-no-such-dir\\nothere.exe", argv, err, sizeof(err)));
	assert_non_null(strstr(err, "nothere.exe"));
}

static void test_children_die_with_their_parent(void **state)
{
	char err[256];
	host_shm *s = host_shm_create("job", SHM_SIZE, err, sizeof(err));
	assert_non_null(s);
	volatile long *pid = host_shm_ptr(s);
	char *argv[] = {self_path, "--child-parent", (char *)host_shm_name(s), NULL};
	host_proc *parent = spawn_self(argv);
	for (int i = 0; i < 1000 && *pid == 0; i++)
		host_sleep_ms(10);
	assert_true(*pid != 0);
	HANDLE grandchild = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)*pid);
	assert_non_null(grandchild);
	assert_int_equal(WaitForSingleObject(grandchild, 0), WAIT_TIMEOUT);

	host_proc_kill(parent);
	assert_int_equal(WaitForSingleObject(grandchild, 10000), WAIT_OBJECT_0);
	CloseHandle(grandchild);
	wait_status(parent, 10000);
	host_proc_free(parent);
	host_shm_close(s);
}

static void test_stdin_from_pipe(void **state)
{
	HANDLE rd, wr;
	SECURITY_ATTRIBUTES sa = {.nLength = sizeof(sa), .bInheritHandle = TRUE};
	assert_true(CreatePipe(&rd, &wr, &sa, 0));
	SetHandleInformation(wr, HANDLE_FLAG_INHERIT, 0);
	HANDLE saved_in = GetStdHandle(STD_INPUT_HANDLE);
	SetStdHandle(STD_INPUT_HANDLE, rd);
	char *argv[] = {self_path, "--child-cat", NULL};
	host_proc *p = spawn_self(argv);
	SetStdHandle(STD_INPUT_HANDLE, saved_in);
	CloseHandle(rd);

	static const char data[] = "hello\r\nworld\x01x\x03 and more than one read";
	DWORD done;
	assert_true(WriteFile(wr, data, sizeof(data) - 1, &done, NULL));
	CloseHandle(wr); /* EOF: the child counts and exits */
	assert_int_equal(wait_status(p, 10000), (int)sizeof(data) - 1);
	host_proc_free(p);
}

static INPUT_RECORD key(WORD vk, WCHAR ch, BOOL down)
{
	INPUT_RECORD r = {.EventType = KEY_EVENT};
	r.Event.KeyEvent.bKeyDown = down;
	r.Event.KeyEvent.wRepeatCount = 1;
	r.Event.KeyEvent.wVirtualKeyCode = vk;
	r.Event.KeyEvent.uChar.UnicodeChar = ch;
	return r;
}

/* Keys as Wine's console delivers them: characters, and bare key events for
 * arrows and function keys, which must come out as xterm's VT sequences. */
static HANDLE open_console_input(void)
{
	return CreateFileW(L"CONIN$", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
			   OPEN_EXISTING, 0, NULL);
}

static void test_console_keys_become_bytes(void **state)
{
	HANDLE in = open_console_input();
	DWORD mode;
	if (in == INVALID_HANDLE_VALUE) {
		AllocConsole();
		in = open_console_input();
	}
	if (in == INVALID_HANDLE_VALUE || !GetConsoleMode(in, &mode))
		skip(); /* Wine without a terminal makes a console that does not work */
	HANDLE saved_in = GetStdHandle(STD_INPUT_HANDLE);
	SetStdHandle(STD_INPUT_HANDLE, in);
	assert_true(host_stdin_is_tty());

	struct host_term term;
	assert_int_equal(host_term_save(&term), 0);
	DWORD before, raw, after;
	GetConsoleMode(in, &before);
	assert_int_equal(host_term_raw(&term), 0);
	GetConsoleMode(in, &raw);
	assert_int_equal(raw & (ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT | ENABLE_PROCESSED_INPUT), 0);

	INPUT_RECORD recs[] = {
		key('A', L'a', TRUE),    key('A', L'a', FALSE),    key(VK_SHIFT, 0, TRUE), key(VK_UP, 0, TRUE),
		key(VK_F5, 0, TRUE),     key(VK_DELETE, 0, TRUE),  key('A', 0x01, TRUE),   key(0, 0x00e9, TRUE),
		key(0, 0xd83d, TRUE),    key(0, 0xde00, TRUE),     key('C', 0x03, TRUE),
	};
	recs[6].Event.KeyEvent.wRepeatCount = 2; /* auto-repeat: two Ctrl-A */
	DWORD written;
	assert_true(WriteConsoleInputW(in, recs, sizeof(recs) / sizeof(recs[0]), &written));
	static const char want[] = "a\x1b[A\x1b[15~\x1b[3~\x01\x01\xc3\xa9\xf0\x9f\x98\x80\x03";
	char got[64];
	size_t n = 0;
	while (n < sizeof(want) - 1) {
		long r = host_stdin_read(got + n, 3); /* small: sequences split across reads */
		assert_true(r > 0);
		n += (size_t)r;
	}
	assert_memory_equal(got, want, sizeof(want) - 1);

	host_term_restore(&term);
	GetConsoleMode(in, &after);
	assert_int_equal(after, before);
	SetStdHandle(STD_INPUT_HANDLE, saved_in);
	CloseHandle(in);
}

static void test_library_loading(void **state)
{
	char err[256] = "";
	void *k32 = host_lib_open_system("kernel32.dll", err, sizeof(err));
	assert_non_null(k32);
	assert_non_null(host_lib_sym(k32, "GetTickCount"));
	assert_null(host_lib_sym(k32, "NoSuchFunction"));

	assert_null(host_lib_open_system("minivm-no-such.dll", err, sizeof(err)));
	assert_non_null(strstr(err, "minivm-no-such.dll could not be loaded"));
	assert_non_null(strstr(err, "(Windows error 126)"));
}

static void test_runtime_dir_and_urls(void **state)
{
	char dir[512], err[256], file[600], url[128];
	assert_int_equal(host_runtime_dir_create(dir, sizeof(dir), err, sizeof(err)), 0);
	snprintf(file, sizeof(file), "%s\\leftover.txt", dir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	host_runtime_dir_remove(dir);
	assert_int_equal(GetFileAttributesA(dir), INVALID_FILE_ATTRIBUTES);

	assert_int_equal(host_ipc_url(dir, "serial", url, sizeof(url)), 0);
	char want[64];
	snprintf(want, sizeof(want), "ipc://minivm-%lu-serial", (unsigned long)GetCurrentProcessId());
	assert_string_equal(url, want);
	assert_int_equal(host_ipc_url(dir, "a\\b", url, sizeof(url)), -1);
	assert_int_equal(host_ipc_url(dir, "serial", url, 8), -1);
}

static void test_exe_dir_and_time(void **state)
{
	char dir[1024];
	assert_int_equal(host_exe_dir(dir, sizeof(dir)), 0);
	assert_int_equal(strncmp(self_path, dir, strlen(dir)), 0);
	assert_int_equal(self_path[strlen(dir)], '\\');
	assert_string_equal(host_exe_suffix(), ".exe");

	uint64_t t0 = host_now_ns();
	host_sleep_ms(20);
	uint64_t t1 = host_now_ns();
	assert_true(t1 - t0 >= 15 * 1000000ull && t1 - t0 < 5000 * 1000000ull);
}

/* First in the list: nothing in this process has started Winsock before. */
static void test_sockets_init_listen_and_poll(void **state)
{
	char err[256];
	assert_int_equal(socket(AF_INET, SOCK_STREAM, IPPROTO_TCP), INVALID_SOCKET);
	assert_int_equal(WSAGetLastError(), WSANOTINITIALISED);
	assert_int_equal(host_sockets_init(err, sizeof(err)), 0);
	assert_int_equal(host_sockets_init(err, sizeof(err)), 0); /* idempotent */

	SOCKET server = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	assert_true(server != INVALID_SOCKET);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int len = sizeof(addr);
	assert_int_equal(bind(server, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(listen(server, 1), 0);
	host_listen_deepen((host_pollable)server);
	assert_int_equal(getsockname(server, (struct sockaddr *)&addr, &len), 0);

	struct host_pollfd pfd = {.fd = (host_pollable)server, .events = HOST_POLLIN};
	assert_int_equal(host_poll(&pfd, 1, 0), 0); /* no connection yet */
	SOCKET client = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	assert_int_equal(connect(client, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(host_poll(&pfd, 1, 5000), 1);
	assert_true(pfd.revents & HOST_POLLIN);
	closesocket(client);
	closesocket(server);
}

int main(int argc, char **argv)
{
	if (GetModuleFileNameA(NULL, self_path, sizeof(self_path)) >= sizeof(self_path))
		return CHILD_BAD;
	if (argc >= 2 && !strcmp(argv[1], "--child-shm"))
		return child_shm(argv);
	if (argc >= 2 && !strcmp(argv[1], "--child-args"))
		return child_args(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "--child-sandboxed"))
		return child_sandboxed();
	if (argc >= 2 && !strcmp(argv[1], "--child-cat"))
		return child_cat();
	if (argc >= 2 && !strcmp(argv[1], "--child-parent"))
		return child_parent(argv);
	if (argc >= 2 && !strcmp(argv[1], "--child-sleep")) {
		host_sleep_ms(60000);
		return CHILD_BAD;
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockets_init_listen_and_poll),
		cmocka_unit_test(test_shm_between_processes),
		cmocka_unit_test(test_shm_hostile_names),
		cmocka_unit_test(test_spawn_passes_arguments_exactly),
		cmocka_unit_test(test_wait_timeout_kill_and_report_once),
		cmocka_unit_test(test_spawn_missing_program),
		cmocka_unit_test(test_children_die_with_their_parent),
		cmocka_unit_test(test_stdin_from_pipe),
		cmocka_unit_test(test_console_keys_become_bytes),
		cmocka_unit_test(test_library_loading),
		cmocka_unit_test(test_runtime_dir_and_urls),
		cmocka_unit_test(test_exe_dir_and_time),
		cmocka_unit_test(test_sandbox_low_integrity_no_child_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
