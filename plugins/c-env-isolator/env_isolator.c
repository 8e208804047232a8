/*
 * com.example.env_isolator written in C and compiled to a WebAssembly
 * core module with Debian's clang-14 and wasi-libc: the same observable
 * behaviour as plugins/env-isolator (Rust) and
 * plugins/wasm-fixtures/env-isolator.wat, so the contract suite compares
 * them. It speaks the core-module ABI of plugin-api/src/host/wasm/core.rs and
 * encodes its protobuf payloads by hand; it imports nothing (no WASI
 * call is made, so none is linked in).
 *
 *   clang-14 --target=wasm32-wasi --sysroot=/usr -O2 -nostartfiles \
 *     -Wl,--no-entry -o env_isolator.wasm env_isolator.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT(name) __attribute__((export_name(name)))

#define NAME "com.example.env_isolator"
#define API "mesos.plugin.v1"

/* mesos.plugin.v1.Error.Code */
enum { OK = 0, UNIMPLEMENTED = 1, INVALID = 2, INTERNAL = 3 };

/* What every entry returns the address of: status, ptr, len. */
static int32_t answer_record[3];

/* One exchange's buffers (inputs and answers), freed by the next alloc. */
static void *exchange[8];
static size_t exchanged;

static void *take(size_t len) {
    if (exchanged == sizeof exchange / sizeof exchange[0]) {
        return NULL;
    }
    void *p = malloc(len ? len : 1);
    if (p != NULL) {
        exchange[exchanged++] = p;
    }
    return p;
}

static int32_t answer(int32_t status, const void *ptr, size_t len) {
    answer_record[0] = status;
    answer_record[1] = (int32_t)(uintptr_t)ptr;
    answer_record[2] = (int32_t)len;
    return (int32_t)(uintptr_t)answer_record;
}

static int32_t fail(int32_t status, const char *message) {
    return answer(status, message, strlen(message));
}

/* A growing protobuf encoding. */
struct out {
    uint8_t *bytes;
    size_t len;
};

static void put_varint(struct out *o, uint32_t v) {
    while (v >= 0x80) {
        o->bytes[o->len++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    o->bytes[o->len++] = (uint8_t)v;
}

static size_t varint_len(uint32_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Field `field` (length-delimited) holding `len` bytes. */
static void put_bytes(struct out *o, uint32_t field, const void *data, size_t len) {
    put_varint(o, field << 3 | 2);
    put_varint(o, (uint32_t)len);
    memcpy(o->bytes + o->len, data, len);
    o->len += len;
}

static size_t bytes_len(size_t len) {
    return 1 + varint_len((uint32_t)len) + len;
}

/* A {1: a, 2: b} message (EnvVar, Label) as field `field`. */
static void put_pair(struct out *o, uint32_t field, const char *a, size_t a_len,
                     const char *b, size_t b_len) {
    put_varint(o, field << 3 | 2);
    put_varint(o, (uint32_t)(bytes_len(a_len) + bytes_len(b_len)));
    put_bytes(o, 1, a, a_len);
    put_bytes(o, 2, b, b_len);
}

static size_t pair_len(size_t a_len, size_t b_len) {
    return bytes_len(bytes_len(a_len) + bytes_len(b_len));
}

/* Reads a varint of at most 32 bits; NULL past `end`. */
static const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint32_t *value) {
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (p >= end) {
            return NULL;
        }
        uint8_t b = *p++;
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *value = v;
            return p;
        }
    }
    return NULL;
}

static int same(const void *a, size_t a_len, const char *b) {
    return a_len == strlen(b) && memcmp(a, b, a_len) == 0;
}

EXPORT("mesos_plugin_abi") int32_t mesos_plugin_abi(void) { return 1; }

EXPORT("alloc") int32_t plugin_alloc(int32_t len) {
    for (size_t i = 0; i < exchanged; i++) {
        free(exchange[i]);
    }
    exchanged = 0;
    return (int32_t)(uintptr_t)take((size_t)len);
}

EXPORT("describe") int32_t describe(void) {
    static const char *const fields[4] = {NAME, "0.1.0", "isolator", API};
    uint8_t *bytes = take(128);
    if (bytes == NULL) {
        return fail(INTERNAL, "out of memory");
    }
    struct out o = {bytes, 0};
    for (uint32_t i = 0; i < 4; i++) {
        put_bytes(&o, i + 1, fields[i], strlen(fields[i]));
    }
    return answer(OK, o.bytes, o.len);
}

EXPORT("configure") int32_t configure(const char *api, int32_t api_len, const uint8_t *config,
                                      int32_t config_len) {
    (void)config;
    (void)config_len;
    if (!same(api, (size_t)api_len, API)) {
        return fail(INVALID, "the API version is not " API);
    }
    return answer(OK, NULL, 0);
}

/* isolator.prepare: the greeting, the container's ID, a label. */
static int32_t prepare(const uint8_t *request, size_t len) {
    const uint8_t *p = request, *end = request + len;
    const char *id = "";
    size_t id_len = 0;
    while (p < end) {
        uint32_t tag, n;
        if ((p = get_varint(p, end, &tag)) == NULL) {
            return fail(INVALID, "undecodable PrepareRequest");
        }
        switch (tag & 7) {
        case 0:
            p = get_varint(p, end, &n);
            break;
        case 1:
            p = (size_t)(end - p) >= 8 ? p + 8 : NULL;
            break;
        case 5:
            p = (size_t)(end - p) >= 4 ? p + 4 : NULL;
            break;
        case 2:
            if ((p = get_varint(p, end, &n)) == NULL || n > (size_t)(end - p)) {
                return fail(INVALID, "undecodable PrepareRequest");
            }
            if (tag == (1 << 3 | 2)) { /* container_id */
                id = (const char *)p;
                id_len = n;
            }
            p += n;
            break;
        default:
            p = NULL;
        }
        if (p == NULL) {
            return fail(INVALID, "undecodable PrepareRequest");
        }
    }
    static const char greeting[] = "PLUGIN_GREETING", hello[] = "hello-from-plugin";
    static const char container[] = "PLUGIN_CONTAINER_ID", prepared[] = "prepared";
    size_t size = pair_len(sizeof greeting - 1, sizeof hello - 1) +
                  pair_len(sizeof container - 1, id_len) +
                  pair_len(strlen(NAME), sizeof prepared - 1);
    uint8_t *bytes = take(size);
    if (bytes == NULL) {
        return fail(INTERNAL, "out of memory");
    }
    struct out o = {bytes, 0};
    put_pair(&o, 1, greeting, sizeof greeting - 1, hello, sizeof hello - 1);
    put_pair(&o, 1, container, sizeof container - 1, id, id_len);
    put_pair(&o, 2, NAME, strlen(NAME), prepared, sizeof prepared - 1);
    return answer(OK, o.bytes, o.len);
}

EXPORT("call") int32_t call(const char *method, int32_t method_len, const uint8_t *request,
                            int32_t request_len) {
    if (same(method, (size_t)method_len, "isolator.prepare")) {
        return prepare(request, (size_t)request_len);
    }
    if (same(method, (size_t)method_len, "isolator.cleanup")) {
        return answer(OK, NULL, 0);
    }
    /* Unimplemented: the host applies Mesos's default. */
    return answer(UNIMPLEMENTED, method, (size_t)method_len);
}
