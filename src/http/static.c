/*
 * static.c — files from the web root (--web-root, the repo's web/).
 *
 * Traversal is refused twice: a decoded path with a ".." segment is 404
 * before the file system is asked, and the resolved real path (after every
 * symlink) must still lie inside the root, so a symlink pointing out of web/
 * is 404 as well.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"
#include "core/log.h"
#include "core/server.h"
#include "core/worker.h"
#include "http/response.h"
#include "http/router.h"

#define TS_STATIC_MAX_FILE (16 * 1024 * 1024)

static const struct {
    const char *ext;
    const char *type;
} ts_mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"woff2", "font/woff2"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
};

static const char *ts_mime_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');

    if (dot != NULL && (slash == NULL || dot > slash)) {
        for (size_t i = 0; i < TS_ARRAY_SIZE(ts_mime_types); i++) {
            if (strcasecmp(dot + 1, ts_mime_types[i].ext) == 0)
                return ts_mime_types[i].type;
        }
    }
    return "application/octet-stream";
}

/* Does the decoded path hold a ".." segment (or a NUL, or a backslash)? */
static int ts_path_is_unsafe(const char *p, size_t len)
{
    size_t seg = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '/') {
            if (i - seg == 2 && p[seg] == '.' && p[seg + 1] == '.')
                return 1;
            seg = i + 1;
        } else if (p[i] == '\0' || p[i] == '\\') {
            return 1;
        }
    }
    return 0;
}

/* If-None-Match: "*" or a list of (weak or strong) tags, one equal to etag. */
static int ts_etag_matches(const http_request_t *req, const char *etag)
{
    const http_header_t *h = http_find_header(req, "If-None-Match");
    size_t elen = strlen(etag);
    const char *p, *end;

    if (h == NULL)
        return 0;
    p = h->value.base;
    end = p + h->value.len;
    while (p < end) {
        const char *tok;
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p < end && *p == '*')
            return 1;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        tok = p;
        while (p < end && *p != ',')
            p++;
        {
            const char *te = p;
            while (te > tok && (te[-1] == ' ' || te[-1] == '\t'))
                te--;
            if ((size_t)(te - tok) == elen && memcmp(tok, etag, elen) == 0)
                return 1;
        }
    }
    return 0;
}

static int ts_static_open(const char *root, const char *rel, char *resolved, struct stat *st)
{
    char full[PATH_MAX];
    size_t rootlen = strlen(root);
    int fd;

    if ((size_t)snprintf(full, sizeof(full), "%s/%s", root, rel) >= sizeof(full))
        return -1;
    if (realpath(full, resolved) == NULL)
        return -1;
    /* After every symlink, the file must still lie inside the root. */
    if (strncmp(resolved, root, rootlen) != 0 || (resolved[rootlen] != '/'))
        return -1;
    /* Only files and folders: opening a FIFO or a device could block the
     * worker (O_NONBLOCK covers the race between stat and open). */
    if (stat(resolved, st) < 0 || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)))
        return -1;
    fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return -1;
    if (fstat(fd, st) < 0 || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
        close(fd);
        return -1;
    }
    return fd;
}

void ts_http_static(ts_http_ctx_t *ctx)
{
    const http_request_t *req = ctx->req;
    const ts_config_t *cfg = ts_server_config(ctx->hc->conn.worker->server);
    char path[HTTP_MAX_HEAD + 32], resolved[PATH_MAX], etag[64], headers[256];
    ts_conn_t *c = &ctx->hc->conn;
    struct stat st;
    long n;
    int fd;

    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
        ts_http_respond_405(ctx, "GET, HEAD");
        return;
    }
    n = http_url_decode(req->path.base, req->path.len, path, sizeof(path) - sizeof("index.html"));
    if (n < 0) {
        ts_http_respond_error(ctx, 400, "bad path encoding");
        return;
    }
    path[n] = '\0';
    if (n == 0 || path[0] != '/' || ts_path_is_unsafe(path, (size_t)n)) {
        ts_http_respond_error(ctx, 404, "not found");
        return;
    }
    if (path[n - 1] == '/')
        memcpy(path + n, "index.html", sizeof("index.html"));

    fd = ts_static_open(cfg->web_root, path + 1, resolved, &st);
    if (fd >= 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        if (strlen(path) + sizeof("/index.html") > sizeof(path)) {
            fd = -1;
        } else {
            strcat(path, "/index.html");
            fd = ts_static_open(cfg->web_root, path + 1, resolved, &st);
        }
    }
    if (fd < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        ts_http_respond_error(ctx, 404, "not found");
        return;
    }
    if (st.st_size > TS_STATIC_MAX_FILE) {
        close(fd);
        ts_log_warn("static: %s is larger than %d bytes; not served", resolved,
                    TS_STATIC_MAX_FILE);
        ts_http_respond_error(ctx, 500, "file too large");
        return;
    }
    snprintf(etag, sizeof(etag), "\"%llx-%llx\"", (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec);
    snprintf(headers, sizeof(headers),
             "ETag: %s\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n", etag);
    if (ts_etag_matches(req, etag)) {
        close(fd);
        ts_http_respond(ctx, 304, NULL, headers, NULL, 0);
        return;
    }
    ts_http_respond_head(ctx, 200, ts_mime_type(resolved), headers, (size_t)st.st_size);
    if (ts_http_wants_body(ctx) && st.st_size > 0) {
        size_t want = (size_t)st.st_size, got = 0;
        ts_buf_reserve(&c->out, &c->worker->pool, want);
        while (got < want) {
            ssize_t r = read(fd, ts_buf_tail(&c->out) + got, want - got);
            if (r <= 0) {
                if (r < 0 && errno == EINTR)
                    continue;
                break;
            }
            got += (size_t)r;
        }
        if (got < want) {
            /* The file shrank under us: the promised length cannot be kept. */
            ts_log_error("static: short read on %s", resolved);
            ts_conn_close(c, "static file changed while reading");
        } else {
            c->out.len += (uint32_t)got;
        }
    }
    close(fd);
}
