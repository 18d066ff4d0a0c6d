/*
 * log.h — one line per event: time, level, worker, then what a person needs
 * to act (peer address, connection id). Lines go to stderr with one write(2)
 * each, so lines from different workers never interleave.
 *
 *   2026-11-22T00:45:04.123Z info  w1 conn=42 peer=127.0.0.1:5555 closed: timeout
 */
#ifndef TS_LOG_H
#define TS_LOG_H

#include <stdarg.h>

enum ts_log_level { TS_LOG_ERROR = 0, TS_LOG_WARN, TS_LOG_INFO, TS_LOG_DEBUG };

/* The current level; changed at run time by SIGHUP. */
void ts_log_set_level(int level);
int ts_log_get_level(void);
/* Parse "error", "warn", "info", "debug"; -1 when unknown. */
int ts_log_level_parse(const char *s);
const char *ts_log_level_name(int level);

/* Worker index shown on each line of the calling thread ("main" when -1). */
void ts_log_set_worker(int worker);

void ts_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ts_log_vwrite(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define ts_log_enabled(lvl) ((lvl) <= ts_log_get_level())
#define ts_log(lvl, ...)                                                                           \
    do {                                                                                           \
        if (ts_log_enabled(lvl))                                                                   \
            ts_log_write((lvl), __VA_ARGS__);                                                      \
    } while (0)
#define ts_log_error(...) ts_log(TS_LOG_ERROR, __VA_ARGS__)
#define ts_log_warn(...)  ts_log(TS_LOG_WARN, __VA_ARGS__)
#define ts_log_info(...)  ts_log(TS_LOG_INFO, __VA_ARGS__)
#define ts_log_debug(...) ts_log(TS_LOG_DEBUG, __VA_ARGS__)

#endif
