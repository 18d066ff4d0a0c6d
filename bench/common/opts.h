/*
 * opts.h — the benchmark programs' command lines as tables: each option is a
 * letter, the type of its value and where the value goes, so a program lists
 * its options once instead of writing a getopt switch. Values are converted
 * as the programs always did (atoi, atol, atof); checking them is the
 * program's. Header-only (static inline).
 */
#ifndef OPTS_H
#define OPTS_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum {
    OPT_STR,    /* const char *: the argument itself */
    OPT_INT,    /* int: atoi */
    OPT_LONG,   /* long: atol */
    OPT_SIZE,   /* size_t: atol */
    OPT_DOUBLE, /* double: atof */
    OPT_FLAG    /* int: set to 1; takes no argument */
} opt_type_t;

typedef struct {
    char flag;
    opt_type_t type;
    void *dst;
} opt_t;

/* The mode word a program takes first (argv[1]): its index in modes (ended
 * by NULL), or -1 when it is missing or not one of them. */
static inline int opts_mode(int argc, char **argv, const char *const *modes)
{
    for (int i = 0; argc >= 2 && modes[i] != NULL; i++) {
        if (strcmp(argv[1], modes[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* Parse argv[first..] with getopt against table (ended by a zero flag);
 * returns the index of the first operand, or -1 on an unknown option or a
 * missing argument. */
static inline int opts_parse(int argc, char **argv, int first, const opt_t *table)
{
    char spec[128];
    size_t n = 0;
    const opt_t *t;
    int o;

    for (t = table; t->flag != 0 && n + 3 < sizeof(spec); t++) {
        spec[n++] = t->flag;
        if (t->type != OPT_FLAG) {
            spec[n++] = ':';
        }
    }
    spec[n] = '\0';
    optind = first;
    while ((o = getopt(argc, argv, spec)) != -1) {
        for (t = table; t->flag != 0 && t->flag != o; t++) {
        }
        if (t->flag == 0) {
            return -1;
        }
        switch (t->type) {
        case OPT_STR:
            *(const char **)t->dst = optarg;
            break;
        case OPT_INT:
            *(int *)t->dst = atoi(optarg);
            break;
        case OPT_LONG:
            *(long *)t->dst = atol(optarg);
            break;
        case OPT_SIZE:
            *(size_t *)t->dst = (size_t)atol(optarg);
            break;
        case OPT_DOUBLE:
            *(double *)t->dst = atof(optarg);
            break;
        case OPT_FLAG:
            *(int *)t->dst = 1;
            break;
        }
    }
    return optind;
}

#endif
