#include "core/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int ts_log_level = TS_LOG_INFO;
static _Thread_local int ts_log_worker = -1;

static const char *const ts_log_names[] = {"error", "warn", "info", "debug"};

void ts_log_set_level(int level)
{
    __atomic_store_n(&ts_log_level, level, __ATOMIC_RELAXED);
}

int ts_log_get_level(void)
{
    return __atomic_load_n(&ts_log_level, __ATOMIC_RELAXED);
}

int ts_log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(ts_log_names) / sizeof(ts_log_names[0])); i++) {
        if (strcasecmp(s, ts_log_names[i]) == 0)
            return i;
    }
    if (strcasecmp(s, "warning") == 0)
        return TS_LOG_WARN;
    return -1;
}

const char *ts_log_level_name(int level)
{
    if (level < TS_LOG_ERROR || level > TS_LOG_DEBUG)
        return "?";
    return ts_log_names[level];
}

void ts_log_set_worker(int worker)
{
    ts_log_worker = worker;
}

void ts_log_vwrite(int level, const char *fmt, va_list ap)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int r;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    if (ts_log_worker >= 0)
        r = snprintf(line + n, sizeof(line) - n, ".%03dZ %-5s w%d ", (int)(tv.tv_usec / 1000),
                     ts_log_level_name(level), ts_log_worker);
    else
        r = snprintf(line + n, sizeof(line) - n, ".%03dZ %-5s main ", (int)(tv.tv_usec / 1000),
                     ts_log_level_name(level));
    n += (size_t)r;
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (r < 0)
        r = 0;
    n += (size_t)r;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* Control characters from the network never reach the terminal raw. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* stderr is gone: there is nobody left to tell. */
    }
}

void ts_log_write(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ts_log_vwrite(level, fmt, ap);
    va_end(ap);
}
