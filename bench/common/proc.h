/*
 * proc.h — what the load generators read about processes: the servers' CPU
 * time (utime + stime of every thread, /proc/PID/stat) and VmRSS
 * (/proc/PID/status), one core's busy and softirq ticks (/proc/stat), the
 * generator's own CPU time (getrusage), and the file limit raised to the hard
 * one. They are read at the edges of a measured window, never per message.
 * A server reading that fails ends the run (errx): a figure without it would
 * be wrong. Header-only (static inline).
 */
#ifndef PROC_H
#define PROC_H

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* utime + stime of every PID given, all threads, in clock ticks. */
static inline long proc_cpu_ticks(int npids, char **pids)
{
    char path[64], buf[1024], *p;
    long sum = 0, ut, st;
    ssize_t n;
    int i, fd;

    for (i = 0; i < npids; i++) {
        snprintf(path, sizeof(path), "/proc/%s/stat", pids[i]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            errx(1, "cannot read %s: %s", path, strerror(errno));
        }
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) {
            errx(1, "cannot read %s", path);
        }
        buf[n] = '\0';
        /* After the ")" of comm: state ppid pgrp session tty tpgid flags
         * minflt cminflt majflt cmajflt utime stime. */
        p = strrchr(buf, ')');
        if (p == NULL ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2) {
            errx(1, "cannot parse %s", path);
        }
        sum += ut + st;
    }
    return sum;
}

/* Ticks of CPU cpu: [0] busy (all but idle and iowait), [1] softirq, [2]
 * total; all 0 when cpu < 0 (no core named). */
static inline void proc_core_stat(int cpu, long long out[3])
{
    char line[512], name[16];
    long long v[8];
    FILE *f;

    out[0] = out[1] = out[2] = 0;
    if (cpu < 0 || (f = fopen("/proc/stat", "r")) == NULL) {
        return;
    }
    snprintf(name, sizeof(name), "cpu%d ", cpu);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, name, strlen(name)) != 0) {
            continue;
        }
        memset(v, 0, sizeof(v));
        /* user nice system idle iowait irq softirq steal */
        sscanf(line + strlen(name), "%lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]);
        out[0] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        out[1] = v[6];
        out[2] = out[0] + v[3] + v[4];
        break;
    }
    fclose(f);
}

/* Percent of the ticks between two proc_core_stat readings spent on field k
 * (0 busy, 1 softirq); 0 when no time passed. */
static inline double proc_core_pct(const long long a[3], const long long b[3], int k)
{
    return b[2] > a[2] ? 100.0 * (double)(b[k] - a[k]) / (double)(b[2] - a[2]) : 0.0;
}

/* This process's user + system CPU time, in seconds. */
static inline double proc_self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* What the edges of a measured window read: the servers' CPU ticks, the
 * server core's ticks, this process's CPU time, and when (CLOCK_MONOTONIC). */
typedef struct {
    long server_ticks;
    long long core[3];
    double self_s;
    uint64_t t_ns;
} proc_mark_t;

/* The figures of the window between two marks. */
typedef struct {
    double win_s;            /* its length */
    double server_cpu_s;     /* the servers' utime + stime in it */
    double server_busy_pct;  /* ... over its length (100: one core) */
    double client_busy_pct;  /* this process's CPU time over its length */
    double core_busy_pct;    /* the server core's busy share (everyone's work) */
    double core_softirq_pct; /* ... of which softirq */
} proc_window_t;

static inline void proc_mark(proc_mark_t *m, int npids, char **pids, int cpu)
{
    struct timespec ts;

    m->server_ticks = proc_cpu_ticks(npids, pids);
    proc_core_stat(cpu, m->core);
    m->self_s = proc_self_cpu_s();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m->t_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline proc_window_t proc_window(const proc_mark_t *a, const proc_mark_t *b)
{
    proc_window_t w;

    w.win_s = (double)(b->t_ns - a->t_ns) / 1e9;
    w.server_cpu_s = (double)(b->server_ticks - a->server_ticks) / (double)sysconf(_SC_CLK_TCK);
    w.server_busy_pct = 100.0 * w.server_cpu_s / w.win_s;
    w.client_busy_pct = 100.0 * (b->self_s - a->self_s) / w.win_s;
    w.core_busy_pct = proc_core_pct(a->core, b->core, 0);
    w.core_softirq_pct = proc_core_pct(a->core, b->core, 1);
    return w;
}

/* Summed VmRSS of every PID given, in KiB. */
static inline long proc_rss_kib(int npids, char **pids)
{
    char path[64], line[256];
    long sum = 0, v;
    FILE *f;
    int i;

    for (i = 0; i < npids; i++) {
        snprintf(path, sizeof(path), "/proc/%s/status", pids[i]);
        if ((f = fopen(path, "r")) == NULL) {
            errx(1, "cannot read %s: %s", path, strerror(errno));
        }
        while (fgets(line, sizeof(line), f) != NULL) {
            if (sscanf(line, "VmRSS: %ld kB", &v) == 1) {
                sum += v;
            }
        }
        fclose(f);
    }
    return sum;
}

/* Raise the soft file limit to the hard one (one socket per connection);
 * returns the limit now in force (LONG_MAX: none), -1 when it cannot be read. */
static inline long proc_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -1;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur == RLIM_INFINITY ? LONG_MAX : (long)rl.rlim_cur;
}

/* proc_raise_nofile, and end the run when fewer than need files are
 * allowed (hint: what to do about it, appended to the message). */
static inline void proc_need_nofile(long need, const char *hint)
{
    long limit = proc_raise_nofile();

    if (limit >= 0 && limit < need) {
        errx(1, "need %ld file descriptors, the limit is %ld%s", need, limit, hint);
    }
}

#endif
