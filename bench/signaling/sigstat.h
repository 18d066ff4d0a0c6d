/*
 * sigstat.h — the measuring half of sigload: a log-linear latency histogram
 * (1/32 of an octave, about 3 %) and the readings from /proc: a process's
 * utime+stime (all threads) and VmRSS, a core's busy and softirq ticks.
 * Header-only (static functions) so sigload builds with one `cc` call.
 */
#ifndef SIGSTAT_H
#define SIGSTAT_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SS_HIST_N 2048

/* Print "sigload: ..." and exit 1; defined by the file that includes this one. */
static void sl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static int ss_hist_idx(uint64_t v)
{
    int mag;

    if (v < 64) {
        return (int)v;
    }
    mag = 63 - __builtin_clzll(v);
    return 64 + (mag - 6) * 32 + (int)((v >> (mag - 5)) & 31);
}

static double ss_hist_val(int i)
{
    int mag;
    uint64_t lo, w;

    if (i < 64) {
        return i;
    }
    mag = (i - 64) / 32 + 6;
    w = 1ull << (mag - 5);
    lo = (1ull << mag) + (uint64_t)((i - 64) % 32) * w;
    return (double)lo + (double)w / 2;
}

static double ss_hist_pct(const uint64_t *hist, double p)
{
    uint64_t total = 0, seen = 0, want;
    int i;

    for (i = 0; i < SS_HIST_N; i++) {
        total += hist[i];
    }
    if (total == 0) {
        return 0;
    }
    want = (uint64_t)(p * (double)total);
    if (want >= total) {
        want = total - 1;
    }
    for (i = 0; i < SS_HIST_N; i++) {
        seen += hist[i];
        if (seen > want) {
            return ss_hist_val(i);
        }
    }
    return 0;
}

/* utime + stime of every PID given, all threads, in clock ticks. */
static long ss_cpu_ticks(int npids, char **pids)
{
    char path[64], buf[1024], *p;
    long sum = 0, ut, st;
    ssize_t n;
    int i, fd;

    for (i = 0; i < npids; i++) {
        snprintf(path, sizeof(path), "/proc/%s/stat", pids[i]);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            sl_die("cannot read %s: %s", path, strerror(errno));
        }
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) {
            sl_die("cannot read %s", path);
        }
        buf[n] = '\0';
        p = strrchr(buf, ')');
        if (p == NULL ||
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2) {
            sl_die("cannot parse %s", path);
        }
        sum += ut + st;
    }
    return sum;
}

/* Ticks of CPU cpu: [0] busy (all but idle and iowait), [1] softirq, [2] total. */
static void ss_cpu_stat(int cpu, long long out[3])
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
        sscanf(line + strlen(name), "%lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7]);
        out[0] = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        out[1] = v[6];
        out[2] = out[0] + v[3] + v[4];
        break;
    }
    fclose(f);
}

static long ss_rss_kib(int npids, char **pids)
{
    char path[64], line[256];
    long sum = 0, v;
    FILE *f;
    int i;

    for (i = 0; i < npids; i++) {
        snprintf(path, sizeof(path), "/proc/%s/status", pids[i]);
        if ((f = fopen(path, "r")) == NULL) {
            sl_die("cannot read %s: %s", path, strerror(errno));
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

static double ss_self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

#endif
