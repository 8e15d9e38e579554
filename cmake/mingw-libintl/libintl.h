/* libintl.h - the gettext API without translations, for the Windows build
 * of glib (cmake/deps-mingw.cmake).  MinGW-w64 has no libintl and glib
 * requires one; dev-net never shows glib's messages to anybody, so every
 * message stays the untranslated msgid.  glib's own fallback, proxy-libintl,
 * is the same idea but is downloaded by meson, which the build never does. */
#ifndef MINIVM_LIBINTL_H
#define MINIVM_LIBINTL_H

#include <locale.h>

/* GNU gettext's libintl.h gives Windows this category (msvcrt has none). */
#ifndef LC_MESSAGES
#define LC_MESSAGES 1729
#endif

char *gettext(const char *msgid);
char *dgettext(const char *domain, const char *msgid);
char *dcgettext(const char *domain, const char *msgid, int category);
char *ngettext(const char *msgid, const char *plural, unsigned long n);
char *dngettext(const char *domain, const char *msgid, const char *plural, unsigned long n);
char *dcngettext(const char *domain, const char *msgid, const char *plural, unsigned long n, int category);
char *textdomain(const char *domain);
char *bindtextdomain(const char *domain, const char *dir);
char *bind_textdomain_codeset(const char *domain, const char *codeset);

#endif
