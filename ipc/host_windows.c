/* host_windows.c - the host-OS layer (host.h) on Windows, built with
 * MinGW-w64 and tested under Wine.
 *
 * Strings cross this interface as UTF-8 and are converted to UTF-16 for the
 * W functions.  Exit statuses mimic Linux where we choose them: a process we
 * kill exits with 128+9, one we terminate with 128+15, and a console event
 * ends a process with 128+signal. */
#define WIN32_LEAN_AND_MEAN
#include <winsock2.h> /* before windows.h */
#include <windows.h>
#include <sddl.h>
#include <psapi.h> /* K32GetProcessMemoryInfo: kernel32 */

#include "host.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIGNAL_EXIT_BASE 128
#define SIG_HUP 1
#define SIG_INT 2
#define SIG_KILL 9
#define SIG_TERM 15

/* ---- helpers ---- */

/* "what: <Windows message> (Windows error N)" into err. */
static void win_error(char *err, size_t errlen, DWORD code, const char *what)
{
	char text[256] = "";
	DWORD len = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0,
				   text, sizeof(text), NULL);
	while (len > 0 && (text[len - 1] == '\r' || text[len - 1] == '\n' || text[len - 1] == ' ' ||
			   text[len - 1] == '.'))
		text[--len] = '\0';
	if (err && errlen)
		snprintf(err, errlen, "%s: %s%s(Windows error %lu)", what, text, len ? " " : "",
			 (unsigned long)code);
}

/* UTF-8 -> newly allocated UTF-16, or NULL if s is not valid UTF-8. */
static wchar_t *utf8_to_wide(const char *s)
{
	int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
	if (n <= 0)
		return NULL;
	wchar_t *w = malloc((size_t)n * sizeof(*w));
	if (w && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
		free(w);
		return NULL;
	}
	return w;
}

/* UTF-16 -> UTF-8 into buf; false if it does not fit. */
static bool wide_to_utf8(const wchar_t *w, char *buf, size_t n)
{
	if (n > INT_MAX)
		n = INT_MAX;
	return WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)n, NULL, NULL) > 0;
}

/* ---- shared memory: named file mappings backed by the paging file ---- */

#define SHM_NAME_PREFIX "Local\\minivm-"
#define SHM_NAME_MAX 128

struct host_shm {
	HANDLE mapping;
	void *ptr;
	uint64_t size;
	char name[SHM_NAME_MAX];
};

/* Names arrive from other processes: accept only what host_shm_create makes. */
static bool shm_name_ok(const char *name)
{
	size_t len = strnlen(name, SHM_NAME_MAX);
	if (len == SHM_NAME_MAX || strncmp(name, SHM_NAME_PREFIX, strlen(SHM_NAME_PREFIX)) != 0)
		return false;
	for (const char *p = name + strlen(SHM_NAME_PREFIX); *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_'))
			return false;
	return true;
}

static host_shm *shm_map(HANDLE mapping, const char *name, uint64_t size, char *err, size_t errlen)
{
	void *ptr = MapViewOfFile(mapping, FILE_MAP_ALL_ACCESS, 0, 0, (SIZE_T)size);
	if (!ptr) {
		win_error(err, errlen, GetLastError(), "MapViewOfFile");
		return NULL;
	}
	/* The view must really be as large as the caller expects: the size may
	 * come from another process. */
	MEMORY_BASIC_INFORMATION info;
	if (!VirtualQuery(ptr, &info, sizeof(info)) || info.RegionSize < size) {
		UnmapViewOfFile(ptr);
		snprintf(err, errlen, "shared memory %s is smaller than %llu bytes", name,
			 (unsigned long long)size);
		return NULL;
	}
	host_shm *s = calloc(1, sizeof(*s));
	if (!s) {
		UnmapViewOfFile(ptr);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->mapping = mapping;
	s->ptr = ptr;
	s->size = size;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

/* The checks both ends make before naming a mapping to Windows; returns the
 * name in UTF-16 (free it) or NULL with the reason in err. */
static wchar_t *shm_wide_name(const char *name, uint64_t size, char *err, size_t errlen)
{
	if (!shm_name_ok(name)) {
		snprintf(err, errlen, "bad shared memory name");
		return NULL;
	}
	if (size == 0 || size > SIZE_MAX) {
		snprintf(err, errlen, "bad shared memory size %llu", (unsigned long long)size);
		return NULL;
	}
	wchar_t *wname = utf8_to_wide(name);
	if (!wname)
		snprintf(err, errlen, "out of memory");
	return wname;
}

host_shm *host_shm_create(const char *tag, uint64_t size, char *err, size_t errlen)
{
	static atomic_uint shm_counter;
	char name[SHM_NAME_MAX];
	int len = snprintf(name, sizeof(name), SHM_NAME_PREFIX "%lu-%s-%u", (unsigned long)GetCurrentProcessId(),
			   tag, atomic_fetch_add(&shm_counter, 1));
	if (len < 0 || (size_t)len >= sizeof(name) || !shm_name_ok(name)) {
		snprintf(err, errlen, "bad shared memory tag '%s'", tag);
		return NULL;
	}
	wchar_t *wname = shm_wide_name(name, size, err, errlen);
	if (!wname)
		return NULL;
	HANDLE mapping = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE, (DWORD)(size >> 32),
					    (DWORD)size, wname);
	DWORD code = GetLastError();
	free(wname);
	if (!mapping) {
		win_error(err, errlen, code, "CreateFileMapping");
		return NULL;
	}
	if (code == ERROR_ALREADY_EXISTS) { /* somebody else's object: never share it */
		CloseHandle(mapping);
		snprintf(err, errlen, "shared memory %s already exists", name);
		return NULL;
	}
	host_shm *s = shm_map(mapping, name, size, err, errlen);
	if (!s)
		CloseHandle(mapping);
	return s;
}

host_shm *host_shm_open(const char *name, uint64_t size, char *err, size_t errlen)
{
	wchar_t *wname = shm_wide_name(name, size, err, errlen);
	if (!wname)
		return NULL;
	HANDLE mapping = OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, wname);
	DWORD code = GetLastError();
	free(wname);
	if (!mapping) {
		char what[SHM_NAME_MAX + 32];
		snprintf(what, sizeof(what), "cannot open shared memory %s", name);
		win_error(err, errlen, code, what);
		return NULL;
	}
	host_shm *s = shm_map(mapping, name, size, err, errlen);
	if (!s)
		CloseHandle(mapping);
	return s;
}

void *host_shm_ptr(const host_shm *s)
{
	return s->ptr;
}

uint64_t host_shm_size(const host_shm *s)
{
	return s->size;
}

const char *host_shm_name(const host_shm *s)
{
	return s->name;
}

void host_shm_close(host_shm *s)
{
	if (!s)
		return;
	UnmapViewOfFile(s->ptr);
	CloseHandle(s->mapping);
	free(s);
}

/* ---- console ---- */

/* What host_term_save keeps in host_term.opaque. */
struct console_modes {
	bool in_console, out_console;
	DWORD in_mode, out_mode;
	UINT out_codepage;
};
_Static_assert(sizeof(struct console_modes) <= sizeof(((struct host_term *)0)->opaque), "host_term too small");

static bool is_console(DWORD std_handle)
{
	DWORD mode;
	return GetConsoleMode(GetStdHandle(std_handle), &mode) != 0;
}

bool host_stdin_is_tty(void)
{
	return is_console(STD_INPUT_HANDLE);
}

bool host_stdout_is_tty(void)
{
	return is_console(STD_OUTPUT_HANDLE);
}

int host_term_save(struct host_term *t)
{
	struct console_modes m = {0};
	m.in_console = GetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), &m.in_mode) != 0;
	m.out_console = GetConsoleMode(GetStdHandle(STD_OUTPUT_HANDLE), &m.out_mode) != 0;
	m.out_codepage = GetConsoleOutputCP();
	memcpy(t->opaque, &m, sizeof(m));
	t->saved = m.in_console || m.out_console;
	return t->saved ? 0 : -1;
}

int host_term_raw(const struct host_term *saved)
{
	struct console_modes m;
	if (!saved->saved)
		return -1;
	memcpy(&m, saved->opaque, sizeof(m));
	int rc = 0;
	if (m.in_console) {
		/* Every key to the guest: no line editing, no echo, Ctrl-C as a
		 * byte; no mouse events; window (buffer-size) events for
		 * host_on_term_resize. */
		DWORD raw = (m.in_mode & ~(DWORD)(ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT | ENABLE_PROCESSED_INPUT |
						  ENABLE_MOUSE_INPUT)) | ENABLE_WINDOW_INPUT;
		HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
		/* Consoles without VT input (older Windows, Wine) still give raw
		 * key events, which host_stdin_read turns into VT sequences. */
		if (!SetConsoleMode(in, raw | ENABLE_VIRTUAL_TERMINAL_INPUT) && !SetConsoleMode(in, raw))
			rc = -1;
	}
	if (m.out_console) {
		/* The guest speaks UTF-8 and VT escape sequences. */
		SetConsoleMode(GetStdHandle(STD_OUTPUT_HANDLE),
			       m.out_mode | ENABLE_PROCESSED_OUTPUT | ENABLE_VIRTUAL_TERMINAL_PROCESSING);
		SetConsoleOutputCP(CP_UTF8);
	}
	return rc;
}

void host_term_restore(const struct host_term *t)
{
	struct console_modes m;
	if (!t->saved)
		return;
	memcpy(&m, t->opaque, sizeof(m));
	if (m.in_console)
		SetConsoleMode(GetStdHandle(STD_INPUT_HANDLE), m.in_mode);
	if (m.out_console) {
		SetConsoleMode(GetStdHandle(STD_OUTPUT_HANDLE), m.out_mode);
		SetConsoleOutputCP(m.out_codepage);
	}
}

/* The VT sequence of a key that arrives as a bare key event (Wine, consoles
 * without VT input), as xterm sends it; NULL for keys we pass over (Shift,
 * Ctrl... alone). */
static const char *vt_sequence(WORD vk)
{
	switch (vk) {
	case VK_UP: return "\x1b[A";
	case VK_DOWN: return "\x1b[B";
	case VK_RIGHT: return "\x1b[C";
	case VK_LEFT: return "\x1b[D";
	case VK_HOME: return "\x1b[H";
	case VK_END: return "\x1b[F";
	case VK_INSERT: return "\x1b[2~";
	case VK_DELETE: return "\x1b[3~";
	case VK_PRIOR: return "\x1b[5~";
	case VK_NEXT: return "\x1b[6~";
	case VK_F1: return "\x1bOP";
	case VK_F2: return "\x1bOQ";
	case VK_F3: return "\x1bOR";
	case VK_F4: return "\x1bOS";
	case VK_F5: return "\x1b[15~";
	case VK_F6: return "\x1b[17~";
	case VK_F7: return "\x1b[18~";
	case VK_F8: return "\x1b[19~";
	case VK_F9: return "\x1b[20~";
	case VK_F10: return "\x1b[21~";
	case VK_F11: return "\x1b[23~";
	case VK_F12: return "\x1b[24~";
	default: return NULL;
	}
}

/* UTF-8 encoding of code point cp into out (room for 4); returns its length. */
static unsigned utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The bytes of the last console key event not yet returned, repeated
 * `repeat` times.  Only one thread reads stdin (host.h), so this is plain
 * static state. */
static struct {
	char bytes[8];
	unsigned len, off, repeat;
	WCHAR high_surrogate; /* first half of a pair, waiting for the second */
} console_key;

/* ---- the console's size ---- */

static void (*resize_fn)(void *opaque);
static void *resize_opaque;

int host_term_size(unsigned *cols, unsigned *rows)
{
	CONSOLE_SCREEN_BUFFER_INFO info;
	if (!GetConsoleScreenBufferInfo(GetStdHandle(STD_OUTPUT_HANDLE), &info))
		return -1;
	/* The visible window, not the scroll-back buffer. */
	*cols = (unsigned)(info.srWindow.Right - info.srWindow.Left + 1);
	*rows = (unsigned)(info.srWindow.Bottom - info.srWindow.Top + 1);
	return 0;
}

/* Windows reports a resize as a WINDOW_BUFFER_SIZE_EVENT among the input
 * records (ENABLE_WINDOW_INPUT, set by host_term_raw), which console_read
 * sees on the stdin reader's thread: the callback runs there.  Windows
 * Terminal and conhost send one when the window changes size; Wine's
 * console may send none, and then the size stays the one at start. */
void host_on_term_resize(void (*fn)(void *opaque), void *opaque)
{
	resize_opaque = opaque;
	resize_fn = fn;
}

/* Turn one input record into console_key; false if it yields no bytes. */
static bool console_key_from_record(const INPUT_RECORD *rec)
{
	if (rec->EventType == WINDOW_BUFFER_SIZE_EVENT && resize_fn) {
		resize_fn(resize_opaque);
		return false;
	}
	if (rec->EventType != KEY_EVENT || !rec->Event.KeyEvent.bKeyDown)
		return false;
	const KEY_EVENT_RECORD *k = &rec->Event.KeyEvent;
	WCHAR c = k->uChar.UnicodeChar;
	console_key.off = 0;
	console_key.repeat = k->wRepeatCount ? k->wRepeatCount : 1;
	if (c == 0) {
		const char *seq = vt_sequence(k->wVirtualKeyCode);
		if (!seq)
			return false;
		console_key.len = (unsigned)strlen(seq);
		memcpy(console_key.bytes, seq, console_key.len);
		return true;
	}
	if (c >= 0xd800 && c <= 0xdbff) {
		console_key.high_surrogate = c;
		return false;
	}
	uint32_t cp = c;
	if (c >= 0xdc00 && c <= 0xdfff) {
		if (!console_key.high_surrogate)
			return false; /* a lone low surrogate is no character */
		cp = 0x10000 + ((uint32_t)(console_key.high_surrogate - 0xd800) << 10) + (c - 0xdc00);
	}
	console_key.high_surrogate = 0;
	console_key.len = utf8_encode(cp, console_key.bytes);
	return true;
}

static size_t console_key_drain(char *out, size_t n)
{
	size_t got = 0;
	while (console_key.repeat > 0 && got < n) {
		size_t k = console_key.len - console_key.off;
		if (k > n - got)
			k = n - got;
		memcpy(out + got, console_key.bytes + console_key.off, k);
		got += k;
		console_key.off += (unsigned)k;
		if (console_key.off == console_key.len) {
			console_key.off = 0;
			console_key.repeat--;
		}
	}
	return got;
}

static long console_read(HANDLE in, char *out, size_t n)
{
	size_t got = console_key_drain(out, n);
	for (;;) {
		DWORD pending = 0;
		/* Block for the first byte; after that take only what is there. */
		if (got > 0 && (got == n || !GetNumberOfConsoleInputEvents(in, &pending) || pending == 0))
			return (long)got;
		INPUT_RECORD rec;
		DWORD nread = 0;
		if (!ReadConsoleInputW(in, &rec, 1, &nread))
			return got > 0 ? (long)got : -1;
		if (nread == 1 && console_key_from_record(&rec))
			got += console_key_drain(out + got, n - got);
	}
}

long host_stdin_read(void *buf, size_t n)
{
	HANDLE in = GetStdHandle(STD_INPUT_HANDLE);
	DWORD mode;
	if (n == 0)
		return 0;
	if (GetConsoleMode(in, &mode))
		return console_read(in, buf, n);
	/* A pipe or a file. */
	DWORD got = 0;
	if (!ReadFile(in, buf, n > MAXDWORD ? MAXDWORD : (DWORD)n, &got, NULL))
		return GetLastError() == ERROR_BROKEN_PIPE ? 0 : -1;
	return (long)got;
}

int host_stdout_write(const void *buf, size_t n)
{
	HANDLE out = GetStdHandle(STD_OUTPUT_HANDLE);
	const char *p = buf;
	while (n > 0) {
		DWORD done = 0;
		if (!WriteFile(out, p, n > MAXDWORD ? MAXDWORD : (DWORD)n, &done, NULL) || done == 0)
			return -1;
		p += done;
		n -= done;
	}
	return 0;
}

/* ---- processes ---- */

struct host_proc {
	HANDLE process;
	DWORD pid;
	bool reported; /* host_wait_any returned it already */
};

/* Every child goes into this job; when the last handle to it closes (the
 * spawning process exits, however it dies) Windows kills them all. */
static HANDLE child_job;
static DWORD child_job_error; /* why child_job is NULL */
static pthread_once_t child_job_once = PTHREAD_ONCE_INIT;

static void child_job_create(void)
{
	HANDLE job = CreateJobObjectW(NULL, NULL);
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits = {0};
	limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
	if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof(limits))) {
		child_job_error = GetLastError();
		if (job)
			CloseHandle(job);
		return;
	}
	child_job = job;
}

/* Append arg to the command line at *pos, quoted so that the C runtime's
 * argument splitter (CommandLineToArgvW rules) gives it back unchanged:
 * backslashes are literal except before a quote. */
static void append_quoted(wchar_t *cmd, size_t *pos, const wchar_t *arg)
{
	size_t p = *pos;
	if (p > 0)
		cmd[p++] = L' ';
	if (*arg && !wcspbrk(arg, L" \t\n\v\"")) {
		wcscpy(cmd + p, arg);
		*pos = p + wcslen(arg);
		return;
	}
	cmd[p++] = L'"';
	for (const wchar_t *a = arg;; a++) {
		size_t backslashes = 0;
		while (*a == L'\\') {
			backslashes++;
			a++;
		}
		/* Before a quote or the closing quote, each backslash doubles. */
		size_t copies = (*a == L'"' || *a == 0) ? 2 * backslashes : backslashes;
		for (size_t i = 0; i < copies; i++)
			cmd[p++] = L'\\';
		if (*a == 0)
			break;
		if (*a == L'"')
			cmd[p++] = L'\\';
		cmd[p++] = *a;
	}
	cmd[p++] = L'"';
	cmd[p] = 0;
	*pos = p;
}

/* The quoted command line of argv, or NULL (bad UTF-8, out of memory). */
static wchar_t *command_line(char *const argv[])
{
	size_t cap = 1;
	for (int i = 0; argv[i]; i++)
		cap += 2 * strlen(argv[i]) + 3; /* every char escaped, quotes, space */
	wchar_t *cmd = malloc(cap * sizeof(*cmd));
	if (!cmd)
		return NULL;
	size_t pos = 0;
	cmd[0] = 0;
	for (int i = 0; argv[i]; i++) {
		wchar_t *warg = utf8_to_wide(argv[i]);
		if (!warg) {
			free(cmd);
			return NULL;
		}
		append_quoted(cmd, &pos, warg);
		free(warg);
	}
	return cmd;
}

host_proc *host_spawn(const char *path, char *const argv[], char *err, size_t errlen)
{
	pthread_once(&child_job_once, child_job_create);
	if (!child_job) {
		win_error(err, errlen, child_job_error, "cannot create the job object for child processes");
		return NULL;
	}
	host_proc *p = calloc(1, sizeof(*p));
	wchar_t *wpath = utf8_to_wide(path);
	wchar_t *cmd = command_line(argv);
	if (!p || !wpath || !cmd) {
		snprintf(err, errlen, "cannot start %s: bad UTF-8 or out of memory", path);
		goto fail;
	}

	/* The child shares our console and gets our three standard handles;
	 * they must be inheritable for that when they are pipes or files. */
	STARTUPINFOW si = {.cb = sizeof(si), .dwFlags = STARTF_USESTDHANDLES};
	si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
	si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
	si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
	SetHandleInformation(si.hStdInput, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
	SetHandleInformation(si.hStdOutput, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
	SetHandleInformation(si.hStdError, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);

	/* Suspended until it is in the job, so it cannot outlive us even if we
	 * die right after CreateProcess. */
	PROCESS_INFORMATION pi;
	if (!CreateProcessW(wpath, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi)) {
		char what[300];
		snprintf(what, sizeof(what), "cannot start %s", path);
		win_error(err, errlen, GetLastError(), what);
		goto fail;
	}
	if (!AssignProcessToJobObject(child_job, pi.hProcess)) {
		win_error(err, errlen, GetLastError(), "cannot put the child process into the job object");
		TerminateProcess(pi.hProcess, SIGNAL_EXIT_BASE + SIG_KILL);
		CloseHandle(pi.hThread);
		CloseHandle(pi.hProcess);
		goto fail;
	}
	ResumeThread(pi.hThread);
	CloseHandle(pi.hThread);
	p->process = pi.hProcess;
	p->pid = pi.dwProcessId;
	free(wpath);
	free(cmd);
	return p;
fail:
	free(p);
	free(wpath);
	free(cmd);
	return NULL;
}

int host_wait_any(host_proc *const procs[], int n, int timeout_ms, int *status)
{
	HANDLE handles[MAXIMUM_WAIT_OBJECTS];
	int index[MAXIMUM_WAIT_OBJECTS];
	DWORD count = 0;
	for (int i = 0; i < n && count < MAXIMUM_WAIT_OBJECTS; i++) {
		if (procs[i] && !procs[i]->reported) {
			handles[count] = procs[i]->process;
			index[count++] = i;
		}
	}
	if (count == 0) {
		/* Nothing can exit: wait out a finite timeout, never block forever. */
		if (timeout_ms > 0)
			Sleep((DWORD)timeout_ms);
		return -1;
	}
	DWORD r = WaitForMultipleObjects(count, handles, FALSE, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
	if (r >= WAIT_OBJECT_0 + count)
		return -1;
	int i = index[r - WAIT_OBJECT_0];
	DWORD code = 0;
	GetExitCodeProcess(procs[i]->process, &code);
	procs[i]->reported = true;
	if (status)
		*status = (int)code;
	return i;
}

void host_proc_kill(host_proc *p)
{
	TerminateProcess(p->process, SIGNAL_EXIT_BASE + SIG_KILL);
}

void host_proc_terminate(host_proc *p)
{
	/* Windows has no polite signal for a process without a window. */
	TerminateProcess(p->process, SIGNAL_EXIT_BASE + SIG_TERM);
}

long host_proc_pid(const host_proc *p)
{
	return (long)p->pid;
}

void host_proc_free(host_proc *p)
{
	if (!p)
		return;
	CloseHandle(p->process);
	free(p);
}

void host_child_init(void)
{
	/* Nothing to do: host_spawn put us in the kill-on-close job before we
	 * ran a single instruction. */
}

int host_exe_dir(char *buf, size_t n)
{
	static wchar_t wpath[32768]; /* the longest path Windows allows */
	DWORD len = GetModuleFileNameW(NULL, wpath, sizeof(wpath) / sizeof(wpath[0]));
	if (len == 0 || len >= sizeof(wpath) / sizeof(wpath[0]))
		return -1;
	wchar_t *sep = wcsrchr(wpath, L'\\');
	wchar_t *slash = wcsrchr(wpath, L'/');
	if (slash > sep)
		sep = slash;
	if (!sep)
		return -1;
	*sep = 0;
	return wide_to_utf8(wpath, buf, n) ? 0 : -1;
}

const char *host_exe_suffix(void)
{
	return ".exe";
}

/* ---- runtime directory and ipc addresses ---- */

/* ---- the user's cache ---- */

/* An environment variable as UTF-8 (getenv's is in the ANSI code page);
 * false if unset or too long. */
static bool env_utf8(const wchar_t *name, char *buf, size_t n)
{
	wchar_t value[MAX_PATH + 1];
	DWORD len = GetEnvironmentVariableW(name, value, sizeof(value) / sizeof(value[0]));
	if (len == 0 && GetLastError() == ERROR_ENVVAR_NOT_FOUND)
		return false;
	if (len >= sizeof(value) / sizeof(value[0]))
		return false;
	value[len] = 0;
	return wide_to_utf8(value, buf, n);
}

static bool make_dir(const char *path)
{
	wchar_t *w = utf8_to_wide(path);
	bool ok = w && (CreateDirectoryW(w, NULL) || GetLastError() == ERROR_ALREADY_EXISTS);
	free(w);
	return ok;
}

int host_cache_dir(char *buf, size_t n)
{
	char base[MAX_PATH * 3];
	if (env_utf8(L"MINIVM_CACHE_DIR", buf, n))
		return buf[0] && make_dir(buf) ? 0 : -1;
	if (!env_utf8(L"LOCALAPPDATA", base, sizeof(base)) || !base[0])
		return -1;
	int len = snprintf(buf, n, "%s\\minivm", base);
	return len >= 0 && (size_t)len < n && make_dir(buf) ? 0 : -1;
}

/* Remove all but the `keep` newest files in dir whose names start with
 * prefix (files being written, ".tmp.", are another store's). */
static void cache_prune(const char *dir, const char *prefix, unsigned keep)
{
	char pattern[MAX_PATH * 3];
	snprintf(pattern, sizeof(pattern), "%s\\%s*", dir, prefix);
	wchar_t *wpattern = utf8_to_wide(pattern);
	if (!wpattern)
		return;
	for (;;) {
		WIN32_FIND_DATAW fd;
		HANDLE h = FindFirstFileW(wpattern, &fd);
		if (h == INVALID_HANDLE_VALUE)
			break;
		unsigned count = 0;
		wchar_t oldest[MAX_PATH] = L"";
		FILETIME oldest_time = {0};
		do {
			if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) || wcsstr(fd.cFileName, L".tmp."))
				continue;
			count++;
			if (!oldest[0] || CompareFileTime(&fd.ftLastWriteTime, &oldest_time) < 0) {
				wcsncpy(oldest, fd.cFileName, MAX_PATH - 1);
				oldest_time = fd.ftLastWriteTime;
			}
		} while (FindNextFileW(h, &fd));
		FindClose(h);
		char name[MAX_PATH * 3], path[MAX_PATH * 4];
		wchar_t *wpath = NULL;
		if (count > keep && wide_to_utf8(oldest, name, sizeof(name)) &&
		    snprintf(path, sizeof(path), "%s\\%s", dir, name) > 0)
			wpath = utf8_to_wide(path);
		bool removed = wpath && DeleteFileW(wpath);
		free(wpath);
		if (!removed)
			break;
	}
	free(wpattern);
}

/* Write all of buf to h. */
static bool write_all(HANDLE h, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		DWORD chunk = n > (1u << 30) ? (1u << 30) : (DWORD)n, wrote = 0;
		if (!WriteFile(h, p, chunk, &wrote, NULL) || wrote == 0)
			return false;
		p += wrote;
		n -= wrote;
	}
	return true;
}

int host_cache_store(const char *dir, const char *name, size_t prefix_len, unsigned keep,
		     const void *data, size_t size, const void *tail, size_t tail_size, char *err,
		     size_t errlen)
{
	char path[MAX_PATH * 4], tmp[MAX_PATH * 4];
	snprintf(path, sizeof(path), "%s\\%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%lu", path, (unsigned long)GetCurrentProcessId());
	wchar_t *wpath = utf8_to_wide(path), *wtmp = utf8_to_wide(tmp);
	HANDLE h = wtmp ? CreateFileW(wtmp, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL)
			: INVALID_HANDLE_VALUE;
	bool ok = h != INVALID_HANDLE_VALUE && wpath && write_all(h, data, size) &&
		  write_all(h, tail, tail_size);
	DWORD code = ok ? 0 : GetLastError();
	if (h != INVALID_HANDLE_VALUE)
		CloseHandle(h);
	if (ok && !MoveFileExW(wtmp, wpath, MOVEFILE_REPLACE_EXISTING)) {
		ok = false;
		code = GetLastError();
	}
	if (!ok) {
		char what[MAX_PATH * 4 + 16];
		snprintf(what, sizeof(what), "cannot store %s", path);
		win_error(err, errlen, code, what);
		if (wtmp)
			DeleteFileW(wtmp);
	}
	free(wpath);
	free(wtmp);
	if (!ok)
		return -1;
	char prefix[MAX_PATH * 3];
	snprintf(prefix, sizeof(prefix), "%.*s", (int)prefix_len, name);
	cache_prune(dir, prefix, keep);
	return 0;
}

int host_runtime_dir_create(char *buf, size_t n, char *err, size_t errlen)
{
	static atomic_uint dir_counter;
	wchar_t temp[MAX_PATH + 1];
	DWORD len = GetTempPathW(sizeof(temp) / sizeof(temp[0]), temp);
	if (len == 0 || len > MAX_PATH) {
		win_error(err, errlen, GetLastError(), "GetTempPath");
		return -1;
	}
	/* Private: full access for the owner (us) and nobody else, protected
	 * from inheriting the permissions of %TEMP%. */
	SECURITY_ATTRIBUTES sa = {.nLength = sizeof(sa)};
	if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(L"D:P(A;OICI;FA;;;OW)", SDDL_REVISION_1,
								  &sa.lpSecurityDescriptor, NULL)) {
		win_error(err, errlen, GetLastError(), "cannot build the runtime directory's permissions");
		return -1;
	}
	/* A directory of that name can be left over from a process that was
	 * killed and had our pid (Windows and Wine reuse pids): take the next
	 * name, never somebody else's directory. */
	wchar_t dir[MAX_PATH + 64];
	BOOL ok = FALSE;
	DWORD code = ERROR_ALREADY_EXISTS;
	for (int attempt = 0; !ok && code == ERROR_ALREADY_EXISTS && attempt < 100; attempt++) {
		swprintf(dir, sizeof(dir) / sizeof(dir[0]), L"%lsminivm-%lu-%u", temp,
			 (unsigned long)GetCurrentProcessId(), atomic_fetch_add(&dir_counter, 1));
		ok = CreateDirectoryW(dir, &sa);
		code = GetLastError();
	}
	LocalFree(sa.lpSecurityDescriptor);
	if (!ok) {
		win_error(err, errlen, code, "cannot create the runtime directory");
		return -1;
	}
	if (!wide_to_utf8(dir, buf, n)) {
		RemoveDirectoryW(dir);
		snprintf(err, errlen, "runtime directory path too long");
		return -1;
	}
	return 0;
}

void host_runtime_dir_remove(const char *path)
{
	wchar_t *wdir = utf8_to_wide(path);
	if (!wdir)
		return;
	/* Remove the plain files we left there, then the directory. */
	size_t dlen = wcslen(wdir);
	wchar_t *file = malloc((dlen + MAX_PATH + 2) * sizeof(*file));
	WIN32_FIND_DATAW fd;
	HANDLE find = INVALID_HANDLE_VALUE;
	if (file) {
		swprintf(file, dlen + MAX_PATH + 2, L"%ls\\*", wdir);
		find = FindFirstFileW(file, &fd);
	}
	if (find != INVALID_HANDLE_VALUE) {
		do {
			if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
				swprintf(file, dlen + MAX_PATH + 2, L"%ls\\%ls", wdir, fd.cFileName);
				DeleteFileW(file);
			}
		} while (FindNextFileW(find, &fd));
		FindClose(find);
	}
	RemoveDirectoryW(wdir);
	free(file);
	free(wdir);
}

int host_ipc_url(const char *dir, const char *name, char *buf, size_t n)
{
	/* nng's ipc:// on Windows is a named pipe \\.\pipe\NAME; pipes live in
	 * one flat namespace, so the launcher's pid keeps VMs apart. */
	(void)dir;
	if (strpbrk(name, "\\/:"))
		return -1;
	int len = snprintf(buf, n, "ipc://minivm-%lu-%s", (unsigned long)GetCurrentProcessId(), name);
	return len < 0 || (size_t)len >= n ? -1 : 0;
}

/* ---- termination ---- */

static void (*terminate_fn)(int sig);

static BOOL WINAPI console_ctrl_handler(DWORD event)
{
	int sig;
	switch (event) {
	case CTRL_C_EVENT:
	case CTRL_BREAK_EVENT: sig = SIG_INT; break;
	case CTRL_CLOSE_EVENT: sig = SIG_HUP; break;
	default: sig = SIG_TERM; break; /* logoff, shutdown */
	}
	if (terminate_fn)
		terminate_fn(sig);
	ExitProcess(SIGNAL_EXIT_BASE + sig);
}

void host_on_terminate(void (*fn)(int sig))
{
	terminate_fn = fn;
	SetConsoleCtrlHandler(console_ctrl_handler, TRUE);
}

/* ---- sandbox ----
 * Windows has no system-call filter a process can put on itself; what it
 * can still do to itself once running:
 * - a job object of its own (nested in the launcher's kill-on-close job,
 *   Windows 8 and later) that allows one active process, so it cannot
 *   start another program (CreateProcess fails), bounds its committed
 *   memory, dies on an unhandled exception instead of showing a dialog,
 *   and has no access to the desktop, clipboard, global atoms or other
 *   processes' USER handles;
 * - the low integrity level on its own token: from then on it cannot open
 *   for writing any file, registry key, pipe or process of the user's
 *   (medium) level.  Not for a process that creates named-pipe instances
 *   for devices that (re)connect (HOST_SANDBOX_SERVES_PIPES: vmm-core), since
 *   a new instance of the medium pipe would be a write up.
 * What Windows only offers at CreateProcess time and the launcher does not
 * use yet: a restricted token (deny-only SIDs), an AppContainer,
 * PROC_THREAD_ATTRIBUTE_CHILD_PROCESS_POLICY and mitigation policies
 * through PROC_THREAD_ATTRIBUTE_MITIGATION_POLICY (docs/ARCHITECTURE.md). */
static int lower_integrity(char *err, size_t errlen)
{
	HANDLE token;
	PSID low = NULL;
	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_DEFAULT | TOKEN_QUERY, &token)) {
		win_error(err, errlen, GetLastError(), "sandbox: OpenProcessToken");
		return -1;
	}
	TOKEN_MANDATORY_LABEL label = {0};
	BOOL ok = ConvertStringSidToSidW(L"S-1-16-4096", &low); /* Mandatory Label\Low */
	if (ok) {
		label.Label.Attributes = SE_GROUP_INTEGRITY;
		label.Label.Sid = low;
		ok = SetTokenInformation(token, TokenIntegrityLevel, &label,
					 sizeof(label) + GetLengthSid(low));
	}
	DWORD e = GetLastError();
	if (low)
		LocalFree(low);
	CloseHandle(token);
	if (!ok) {
		win_error(err, errlen, e, "sandbox: lowering the integrity level");
		return -1;
	}
	return 0;
}

static int enter_own_job(const struct host_sandbox_profile *p, char *err, size_t errlen)
{
	HANDLE job = CreateJobObjectW(NULL, NULL);
	JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits = {0};
	limits.BasicLimitInformation.LimitFlags =
		JOB_OBJECT_LIMIT_ACTIVE_PROCESS | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
	limits.BasicLimitInformation.ActiveProcessLimit = 1;
	PROCESS_MEMORY_COUNTERS now;
	if (p->data_limit && K32GetProcessMemoryInfo(GetCurrentProcess(), &now, sizeof(now))) {
		limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
		limits.ProcessMemoryLimit = now.PagefileUsage + (SIZE_T)p->data_limit;
	}
	JOBOBJECT_BASIC_UI_RESTRICTIONS ui = {
		.UIRestrictionsClass = JOB_OBJECT_UILIMIT_DESKTOP | JOB_OBJECT_UILIMIT_DISPLAYSETTINGS |
				       JOB_OBJECT_UILIMIT_EXITWINDOWS | JOB_OBJECT_UILIMIT_GLOBALATOMS |
				       JOB_OBJECT_UILIMIT_HANDLES | JOB_OBJECT_UILIMIT_READCLIPBOARD |
				       JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS | JOB_OBJECT_UILIMIT_WRITECLIPBOARD,
	};
	if (!job || !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof(limits)) ||
	    !SetInformationJobObject(job, JobObjectBasicUIRestrictions, &ui, sizeof(ui)) ||
	    !AssignProcessToJobObject(job, GetCurrentProcess())) {
		win_error(err, errlen, GetLastError(), "sandbox: a job object of its own");
		if (job)
			CloseHandle(job);
		return -1;
	}
	/* The handle stays open: the job lives as long as the process. */
	return 0;
}

bool host_can_listen_anew(void)
{
	return true;
}

enum host_sandbox_result host_sandbox_enter(const struct host_sandbox_profile *p, char *err, size_t errlen)
{
	const char *env = getenv(HOST_SANDBOX_ENV);
	if (env && !strcmp(env, "off"))
		return HOST_SANDBOX_OFF;
	if (enter_own_job(p, err, errlen) || (!(p->flags & HOST_SANDBOX_SERVES_PIPES) && lower_integrity(err, errlen)))
		return HOST_SANDBOX_FAILED;
	return HOST_SANDBOX_ENTERED;
}

/* ---- time ---- */

/* WSAPoll needs Winsock started: nng, which every caller uses, starts it. */
int host_poll(struct host_pollfd *fds, size_t n, int timeout_ms)
{
	if (n == 0) {
		Sleep(timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
		return 0;
	}
	WSAPOLLFD pfd[n];
	for (size_t i = 0; i < n; i++) {
		pfd[i] = (WSAPOLLFD){.fd = (SOCKET)fds[i].fd};
		pfd[i].events = (SHORT)((fds[i].events & HOST_POLLIN ? POLLRDNORM : 0) |
					(fds[i].events & HOST_POLLOUT ? POLLWRNORM : 0));
	}
	int rc = WSAPoll(pfd, (ULONG)n, timeout_ms);
	if (rc == SOCKET_ERROR)
		return -1;
	for (size_t i = 0; i < n; i++) {
		SHORT r = pfd[i].revents;
		fds[i].revents = (r & (POLLRDNORM | POLLRDBAND) ? HOST_POLLIN : 0) |
				 (r & POLLWRNORM ? HOST_POLLOUT : 0) |
				 (r & (POLLERR | POLLNVAL) ? HOST_POLLERR : 0) | (r & POLLHUP ? HOST_POLLHUP : 0);
	}
	return rc;
}

uint64_t host_memory_bytes(void)
{
	MEMORYSTATUSEX ms = {.dwLength = sizeof(ms)};
	return GlobalMemoryStatusEx(&ms) ? ms.ullTotalPageFile : 0; /* RAM + page file */
}

uint64_t host_now_ns(void)
{
	static LARGE_INTEGER freq; /* fixed at boot; racing first calls agree */
	LARGE_INTEGER now;
	if (!freq.QuadPart)
		QueryPerformanceFrequency(&freq);
	QueryPerformanceCounter(&now);
	uint64_t f = (uint64_t)freq.QuadPart, t = (uint64_t)now.QuadPart;
	/* Split so that t * 1e9 cannot overflow. */
	return t / f * 1000000000u + t % f * 1000000000u / f;
}

void host_sleep_ms(unsigned ms)
{
	Sleep(ms);
}

/* ---- waiting on a word of shared memory ---- */

/* WaitOnAddress wakes only threads of the same process (host.h). */
bool host_shared_wait_supported(void)
{
	return false;
}

void host_shared_wait(_Atomic uint32_t *word, uint32_t expected, unsigned timeout_us)
{
	Sleep((timeout_us + 999) / 1000);
}

void host_shared_wake(_Atomic uint32_t *word)
{
}

/* ---- run-time library loading ---- */

void *host_lib_open_system(const char *name, char *err, size_t errlen)
{
	wchar_t *wname = utf8_to_wide(name);
	if (!wname) {
		snprintf(err, errlen, "bad library name");
		return NULL;
	}
	/* Only from System32: never a DLL planted next to us or in the cwd. */
	HMODULE lib = LoadLibraryExW(wname, NULL, LOAD_LIBRARY_SEARCH_SYSTEM32);
	DWORD code = GetLastError();
	free(wname);
	if (!lib) {
		char what[128];
		snprintf(what, sizeof(what), "%s could not be loaded", name);
		win_error(err, errlen, code, what);
	}
	return lib;
}

void *host_lib_sym(void *lib, const char *sym)
{
	return (void *)GetProcAddress(lib, sym);
}

int host_sockets_init(char *err, size_t errlen)
{
	/* Once; Winsock then stays started until exit.  WSAStartup counts its
	 * callers, so nng's own WSAStartup/WSACleanup pair is not disturbed. */
	static bool started;
	WSADATA wsa;
	if (started)
		return 0;
	int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
	if (rc) {
		win_error(err, errlen, (DWORD)rc, "WSAStartup");
		return -1;
	}
	started = true;
	return 0;
}

void host_listen_deepen(host_pollable s)
{
	BOOL listening = FALSE;
	int len = sizeof(listening);
	if (getsockopt((SOCKET)s, SOL_SOCKET, SO_ACCEPTCONN, (char *)&listening, &len) == 0 && listening)
		listen((SOCKET)s, SOMAXCONN);
}

/* ---- executable memory ---- */

int host_exec_alloc(struct host_exec *x, size_t size, char *err, size_t errlen)
{
	*x = (struct host_exec){0};
	HANDLE h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_EXECUTE_READWRITE, (DWORD)((uint64_t)size >> 32),
				      (DWORD)size, NULL);
	if (!h) {
		win_error(err, errlen, GetLastError(), "jit code cache: CreateFileMapping");
		return -1;
	}
	void *rw = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, size);
	void *rx = rw ? MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_EXECUTE, 0, 0, size) : NULL;
	DWORD code = GetLastError();
	CloseHandle(h); /* the views keep the section */
	if (!rx) {
		if (rw)
			UnmapViewOfFile(rw);
		win_error(err, errlen, code, "jit code cache: MapViewOfFile");
		return -1;
	}
	*x = (struct host_exec){.rw = rw, .rx = rx, .size = size};
	return 0;
}

void host_exec_free(struct host_exec *x)
{
	if (x->rw) {
		UnmapViewOfFile(x->rw);
		UnmapViewOfFile(x->rx);
	}
	*x = (struct host_exec){0};
}
