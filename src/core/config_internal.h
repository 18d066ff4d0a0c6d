/*
 * config_internal.h — what config.c (the table, parsing, checks) shares
 * with config_reload.c (SIGHUP reload and --help). Not for other modules.
 */
#ifndef TS_CONFIG_INTERNAL_H
#define TS_CONFIG_INTERNAL_H

#include <stdio.h>

#include "core/config.h"

/* The field an option row describes, in a configuration. */
#define FIELD(cfg, o, type)  ((type *)(void *)((char *)(cfg) + (o)->offset))
#define CFIELD(cfg, o, type) ((const type *)(const void *)((const char *)(cfg) + (o)->offset))

/* Group headings of --help, indexed by ts_config_option_t.group. */
extern const char *const ts_config__group_names[TS_OPT_NGROUPS];

/* defaults < file < command line; old: the running configuration on reload
 * (NULL at start-up). TS_CONFIG_RUN, TS_CONFIG_EXIT or TS_ERR_CONFIG. */
int ts_config__build(ts_config_t *cfg, int argc, char **argv, FILE *out, FILE *err,
                     const ts_config_t *old);

/* Free what option o owns in cfg and clear it. */
void ts_config__option_free(ts_config_t *cfg, const ts_config_option_t *o);

/* Where a value came from; a later source overrides an earlier one. */
enum { SRC_DEFAULT, SRC_FILE, SRC_CMDLINE };

#define TS_CONFIG_MAX_OPTIONS 64

/* The state of one build of the configuration. */
typedef struct {
    ts_config_t *cfg;
    FILE *err; /* NULL: say nothing */
    int src;
    unsigned nerr;
    unsigned char list_src[TS_CONFIG_MAX_OPTIONS]; /* source of each repeatable option's list */
    unsigned char bad[TS_CONFIG_MAX_OPTIONS];      /* a value was refused: skip checks on it */
} cfg_parse_t;

/* Report one problem as "tsunagi: ..." and count it; returns TS_ERR_CONFIG. */
int ts_config__error(cfg_parse_t *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A formatted string on the heap. */
char *ts_config__sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The table index of the option called name (which must exist). */
size_t ts_config__option_index(const char *name);

/* config_check.c: the defaults that must be computed (threads, realm, web
 * root, secret) and the checks that relate several options. */
void ts_config__defaults(cfg_parse_t *st, const ts_config_t *old);
void ts_config__checks(cfg_parse_t *st);

#endif
