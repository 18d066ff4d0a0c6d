/*
 * config_reload.c — SIGHUP: build the configuration again and keep, with a
 * line each, the options that cannot change at run time; and --help, both
 * driven by the option table of config.c.
 */
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/config.h"
#include "core/config_internal.h"
#include "core/log.h"

/*
 * Compared as configured, not as in use: once open, a listener given port 0
 * holds the port the kernel chose (the server writes it back into sa).
 */
static int endpoint_equal(const ts_endpoint_t *x, const ts_endpoint_t *y)
{
    ts_endpoint_t px, py;

    if (!x->set || !y->set)
        return x->set == y->set;
    if (ts_endpoint_parse(x->text, &px, NULL) != TS_OK ||
        ts_endpoint_parse(y->text, &py, NULL) != TS_OK)
        return 0;
    return px.len == py.len && memcmp(&px.sa, &py.sa, px.len) == 0;
}

static int option_equal(const ts_config_t *a, const ts_config_t *b, const ts_config_option_t *o)
{
    switch (o->kind) {
    case TS_OPT_ENDPOINT:
        return endpoint_equal(CFIELD(a, o, ts_endpoint_t), CFIELD(b, o, ts_endpoint_t));
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP: {
        const char *x = *CFIELD(a, o, char *), *y = *CFIELD(b, o, char *);
        return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
    }
    case TS_OPT_UINT:
    case TS_OPT_FLAG:
    case TS_OPT_LOG_LEVEL:
        return *CFIELD(a, o, unsigned) == *CFIELD(b, o, unsigned);
    default:
        return 1;
    }
}

static void option_copy(ts_config_t *dst, const ts_config_t *src, const ts_config_option_t *o)
{
    switch (o->kind) {
    case TS_OPT_ENDPOINT:
        *FIELD(dst, o, ts_endpoint_t) = *CFIELD(src, o, ts_endpoint_t);
        break;
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP: {
        const char *s = *CFIELD(src, o, char *);
        ts_config__option_free(dst, o);
        *FIELD(dst, o, char *) = s != NULL ? ts_strdup(s) : NULL;
        break;
    }
    case TS_OPT_UINT:
    case TS_OPT_FLAG:
    case TS_OPT_LOG_LEVEL:
        *FIELD(dst, o, unsigned) = *CFIELD(src, o, unsigned);
        break;
    default:
        break;
    }
}

static const char *option_format(const ts_config_t *cfg, const ts_config_option_t *o, char *buf,
                                 size_t n)
{
    switch (o->kind) {
    case TS_OPT_ENDPOINT: {
        const ts_endpoint_t *ep = CFIELD(cfg, o, ts_endpoint_t);
        return ep->set ? ep->text : "off";
    }
    case TS_OPT_STRING:
    case TS_OPT_PATH:
    case TS_OPT_IP: {
        const char *s = *CFIELD(cfg, o, char *);
        return s != NULL ? s : "none";
    }
    case TS_OPT_FLAG:
        return *CFIELD(cfg, o, int) ? "true" : "false";
    case TS_OPT_LOG_LEVEL:
        return ts_log_level_name(*CFIELD(cfg, o, int));
    default:
        snprintf(buf, n, "%u", *CFIELD(cfg, o, unsigned));
        return buf;
    }
}

int ts_config_reload(const ts_config_t *old, ts_config_t *fresh, int argc, char **argv, FILE *err)
{
    size_t nopt;
    const ts_config_option_t *options = ts_config_options(&nopt);
    char buf[32];

    if (ts_config__build(fresh, argc, argv, NULL, err, old) != TS_CONFIG_RUN) {
        ts_config_free(fresh);
        return TS_ERR_CONFIG;
    }
    for (size_t i = 0; i < nopt; i++) {
        const ts_config_option_t *o = &options[i];
        if (o->flags & (TS_OPT_RELOAD | TS_OPT_CMDLINE))
            continue;
        if (!option_equal(old, fresh, o) && err != NULL)
            fprintf(err, "tsunagi: --%s cannot change at run time; keeping %s\n", o->name,
                    option_format(old, o, buf, sizeof(buf)));
        /* Even an equal value: the running one may hold what the kernel chose (port 0). */
        option_copy(fresh, old, o);
    }
    return TS_OK;
}

void ts_config_usage(FILE *out)
{
    size_t nopt;
    const ts_config_option_t *options = ts_config_options(&nopt);
    char lhs[64];

    fputs("Usage: tsunagi [OPTION]...\n"
          "A self-hosted WebRTC server: HTTP and WebSocket signaling, STUN and TURN.\n"
          "Every option also works in the --config file as a 'name = value' line.\n",
          out);
    for (size_t g = 0; g < TS_ARRAY_SIZE(ts_config__group_names); g++) {
        fprintf(out, "\n%s:\n", ts_config__group_names[g]);
        for (size_t i = 0; i < nopt; i++) {
            const ts_config_option_t *o = &options[i];
            const char *def = o->def != NULL ? o->def : o->def_text;
            if ((size_t)o->group != g)
                continue;
            snprintf(lhs, sizeof(lhs), "--%s%s%s", o->name, o->arg != NULL ? " " : "",
                     o->arg != NULL ? o->arg : "");
            fprintf(out, "  %-28s %s%s", lhs, (o->flags & TS_OPT_RELOAD) ? "* " : "", o->help);
            if (def != NULL)
                fprintf(out, " [default: %s]", def);
            fputc('\n', out);
        }
    }
    fputs("\nRANGE is IP, IP1-IP2 or IP/prefix (IPv4 or IPv6). ADDR:PORT takes [IPv6]:PORT;\n"
          ":PORT or PORT alone listen on 0.0.0.0. ORIGIN is scheme://host[:port] (http or\n"
          "https, no path) or null. A flag takes =false to turn it off: --ws-deflate=false.\n"
          "A repeatable option given on the command line replaces the file's list.\n"
          "* SIGHUP re-reads the --config file and applies a new value of these options;\n"
          "the others keep their value until a restart.\n",
          out);
}
