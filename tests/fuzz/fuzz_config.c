/*
 * fuzz_config.c — the config-file parser on arbitrary bytes: every line kind,
 * quoting, comments, over-long lines, NUL bytes, and through it the endpoint,
 * address-range and origin parsers. Short inputs also go to those directly.
 */
#include "core/addr.h"
#include "core/common.h"
#include "core/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ts_config_t cfg;
    ts_endpoint_t ep;
    ts_ip_range_t r;
    char s[512];
    char *origin;
    const char *why;

    memset(&cfg, 0, sizeof(cfg));
    ts_config_parse_text(&cfg, (const char *)data, size, "fuzz.conf", NULL);
    /* Applying the same text twice exercises replacing values already held. */
    ts_config_parse_text(&cfg, (const char *)data, size, "fuzz.conf", NULL);
    ts_config_free(&cfg);

    if (size < sizeof(s)) {
        memcpy(s, data, size);
        s[size] = '\0';
        ts_endpoint_parse(s, &ep, &why);
        if (ts_ip_range_parse(s, &r, &why) == TS_OK)
            free(r.text);
        if (ts_origin_parse(s, &origin, &why) == TS_OK) {
            /* What it stores is itself an origin, and stores as itself. */
            char *again;
            if (ts_origin_parse(origin, &again, &why) != TS_OK || strcmp(origin, again) != 0)
                abort();
            free(again);
            free(origin);
        }
    }
    return 0;
}
