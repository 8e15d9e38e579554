/* log.h - one-line diagnostics to stderr, prefixed with the process name. */
#ifndef MINIVM_LOG_H
#define MINIVM_LOG_H

#include <stdbool.h>

/* printf-style checking of our own formatting functions.  MinGW's "printf"
 * archetype is msvcrt's, which rejects %zu and %llu; the build uses MinGW's
 * C99 stdio (__USE_MINGW_ANSI_STDIO), so check against GNU's there.  Clang
 * knows only "printf". */
#if defined(__MINGW32__) && !defined(__clang__)
#define MINIVM_PRINTF(fmt_index, first_arg) __attribute__((format(gnu_printf, fmt_index, first_arg)))
#else
#define MINIVM_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#endif

/* Set once at start: "vmm-core", "dev-serial", "launcher". */
void log_init(const char *process_name);
/* "<process>: <message>\n" on stderr, written with one write(). While the
 * terminal is in raw mode, "\n" becomes "\r\n" (log_set_raw). */
void log_msg(const char *fmt, ...) MINIVM_PRINTF(1, 2);
void log_set_raw(bool raw);

/* Log only the first time this call site fires (per process). */
#define log_once(...)                                                          \
	do {                                                                   \
		static int log_once_done_; /* __atomic builtins: clang refuses _Atomic */ \
		if (!__atomic_exchange_n(&log_once_done_, 1, __ATOMIC_RELAXED)) \
			log_msg(__VA_ARGS__);                                  \
	} while (0)

#endif
