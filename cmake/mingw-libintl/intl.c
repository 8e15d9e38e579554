/* intl.c - libintl.h's functions: no catalogues, every message is its msgid. */
#include "libintl.h"

char *gettext(const char *msgid)
{
	return (char *)msgid;
}

char *dgettext(const char *domain, const char *msgid)
{
	return (char *)msgid;
}

char *dcgettext(const char *domain, const char *msgid, int category)
{
	return (char *)msgid;
}

char *ngettext(const char *msgid, const char *plural, unsigned long n)
{
	return (char *)(n == 1 ? msgid : plural);
}

char *dngettext(const char *domain, const char *msgid, const char *plural, unsigned long n)
{
	return ngettext(msgid, plural, n);
}

char *dcngettext(const char *domain, const char *msgid, const char *plural, unsigned long n, int category)
{
	return ngettext(msgid, plural, n);
}

/* gettext's answers when nothing was set: the default domain, the
 * directory or codeset just given. */
char *textdomain(const char *domain)
{
	return (char *)"messages";
}

char *bindtextdomain(const char *domain, const char *dir)
{
	return (char *)dir;
}

char *bind_textdomain_codeset(const char *domain, const char *codeset)
{
	return (char *)codeset;
}
