/*
 * The row filter's byte path (see RowFilter in _speedups.c): reading a stored payload's
 * JSON text without making Python objects of it, and remembering byte strings by byte
 * strings.
 *
 * - json_scan_value(): the end of the JSON value at a position, or NULL. It accepts only
 *   what orjson.loads reads to the very value the byte path assumes: strict RFC 8259,
 *   no raw control characters, no surrogate escapes (orjson rejects lone ones), integers
 *   of at most 18 digits (orjson makes floats of longer ones), numbers of at most 30
 *   digits with an exponent of at most 2 digits (never infinite), at most
 *   JSON_SCAN_MAX_DEPTH levels. Anything else is NULL, and the row goes to orjson, which
 *   gives the answer (or the error) it always gave.
 * - json_object_members(): an object's members as (key, value) spans, in text order.
 * - ByteTable: a bounded hash table from byte strings to byte strings or Python objects,
 *   which starts over when full (as the filter's Python caches do).
 *
 * Nothing here calls Python; the file is included by _speedups.c only.
 */
#ifndef GATEWAY_JSON_SCAN_H
#define GATEWAY_JSON_SCAN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define JSON_SCAN_MAX_DEPTH 32
#define JSON_SCAN_MAX_INT_DIGITS 18
#define JSON_SCAN_MAX_DIGITS 30
#define JSON_SCAN_MAX_EXPONENT_DIGITS 2

typedef struct {
    const char *start;
    size_t size;
} Span;

typedef struct {
    Span key;   /* without its quotes; never holds an escape */
    Span value; /* the whole JSON value, as written */
} Member;

static int
json_space(char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char *
json_skip_space(const char *p, const char *end)
{
    while (p < end && json_space(*p)) {
        p++;
    }
    return p;
}

static int
json_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

#define JSON_BYTES_OF(byte) (UINT64_C(0x0101010101010101) * (byte))

/* The bytes of ``word`` (8 bytes of text, the first in the lowest bits) that end or
 * interrupt a string's plain run: a quote, a backslash or a control character. The
 * classic "has a zero byte" tests: the lowest flagged byte (its 0x80 bit) is always the
 * first such byte; flags above it may be false, and are not used. */
static inline uint64_t
json_word_special(uint64_t word)
{
    const uint64_t low = JSON_BYTES_OF(0x01), high = JSON_BYTES_OF(0x80);
    uint64_t quote = word ^ JSON_BYTES_OF('"'), backslash = word ^ JSON_BYTES_OF('\\');
    uint64_t zero_in_quote = (quote - low) & ~quote;
    uint64_t zero_in_backslash = (backslash - low) & ~backslash;
    uint64_t below_space = (word - JSON_BYTES_OF(0x20)) & ~word;
    return (zero_in_quote | zero_in_backslash | below_space) & high;
}

/* The first quote, backslash or control character at or after p, or end. */
static const char *
json_string_special(const char *p, const char *end)
{
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* 8 bytes at a time: identifiers, user agents and consent strings are long. */
    while (end - p >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        uint64_t special = json_word_special(word);
        if (special) {
            return p + (__builtin_ctzll(special) >> 3);
        }
        p += 8;
    }
#endif
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) {
        p++;
    }
    return p;
}

/* From the opening quote: the end of the string, or NULL. *escaped is set when it holds
 * a backslash. The text is UTF-8 already (it comes from a Python str). */
static const char *
json_scan_string(const char *p, const char *end, int *escaped)
{
    p++;
    while ((p = json_string_special(p, end)) < end) {
        if (*p == '"') {
            return p + 1;
        }
        if (*p != '\\') {
            return NULL; /* a raw control character */
        }
        *escaped = 1;
        if (p + 1 >= end) {
            return NULL;
        }
        char kind = p[1];
        if (kind == 'u') {
            if (p + 6 > end) {
                return NULL;
            }
            int code = 0;
            for (int i = 2; i < 6; i++) {
                int digit = json_hex(p[i]);
                if (digit < 0) {
                    return NULL;
                }
                code = code * 16 + digit;
            }
            if (code >= 0xD800 && code <= 0xDFFF) {
                return NULL; /* surrogates: orjson's rules, not ours */
            }
            p += 6;
        }
        else if (strchr("\"\\/bfnrt", kind) != NULL && kind != '\0') {
            p += 2;
        }
        else {
            return NULL;
        }
    }
    return NULL;
}

/* Whether ``value`` (a scanned JSON value) is a string written without escapes: its text
 * between the quotes is then the string itself. */
static int
json_plain_string(Span value)
{
    return value.start[0] == '"' && memchr(value.start, '\\', value.size) == NULL;
}

/* The end of the number at p, or NULL. *is_float is set for a fraction or exponent. */
static const char *
json_scan_number(const char *p, const char *end, int *is_float)
{
    int digits = 0, exponent_digits = 0;
    if (p < end && *p == '-') {
        p++;
    }
    if (p >= end) {
        return NULL;
    }
    if (*p == '0') {
        p++;
        digits = 1;
    }
    else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    else {
        return NULL;
    }
    if (p < end && *p == '.') {
        *is_float = 1;
        p++;
        const char *fraction = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
        if (p == fraction) {
            return NULL;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *is_float = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
            exponent_digits++;
        }
        if (exponent_digits == 0 || exponent_digits > JSON_SCAN_MAX_EXPONENT_DIGITS) {
            return NULL;
        }
    }
    if (digits > JSON_SCAN_MAX_DIGITS || (!*is_float && digits > JSON_SCAN_MAX_INT_DIGITS)) {
        return NULL;
    }
    return p;
}

static const char *json_scan_value(const char *p, const char *end, int depth);

/* From '{': the end of the object, or NULL. With ``members``, its members are written
 * there (at most ``capacity``; more, or a key with an escape, is NULL). */
static const char *
json_scan_object(const char *p, const char *end, int depth, Member *members, int capacity,
                 int *count)
{
    int n = 0;
    p = json_skip_space(p + 1, end);
    if (p < end && *p == '}') {
        if (count != NULL) *count = 0;
        return p + 1;
    }
    for (;;) {
        if (p >= end || *p != '"') {
            return NULL;
        }
        int escaped = 0;
        const char *key_end = json_scan_string(p, end, &escaped);
        if (key_end == NULL) {
            return NULL;
        }
        const char *key = p + 1;
        p = json_skip_space(key_end, end);
        if (p >= end || *p != ':') {
            return NULL;
        }
        p = json_skip_space(p + 1, end);
        const char *value = p;
        p = json_scan_value(p, end, depth + 1);
        if (p == NULL) {
            return NULL;
        }
        if (members != NULL) {
            if (escaped || n >= capacity) {
                return NULL;
            }
            members[n].key.start = key;
            members[n].key.size = (size_t)(key_end - 1 - key);
            members[n].value.start = value;
            members[n].value.size = (size_t)(p - value);
        }
        n++;
        p = json_skip_space(p, end);
        if (p < end && *p == ',') {
            p = json_skip_space(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            if (count != NULL) *count = n;
            return p + 1;
        }
        return NULL;
    }
}

static const char *
json_scan_array(const char *p, const char *end, int depth)
{
    p = json_skip_space(p + 1, end);
    if (p < end && *p == ']') {
        return p + 1;
    }
    for (;;) {
        p = json_scan_value(p, end, depth + 1);
        if (p == NULL) {
            return NULL;
        }
        p = json_skip_space(p, end);
        if (p < end && *p == ',') {
            p = json_skip_space(p + 1, end);
            continue;
        }
        if (p < end && *p == ']') {
            return p + 1;
        }
        return NULL;
    }
}

static const char *
json_scan_value(const char *p, const char *end, int depth)
{
    if (p >= end || depth > JSON_SCAN_MAX_DEPTH) {
        return NULL;
    }
    int flag = 0;
    switch (*p) {
    case '{':
        return json_scan_object(p, end, depth, NULL, 0, NULL);
    case '[':
        return json_scan_array(p, end, depth);
    case '"':
        return json_scan_string(p, end, &flag);
    case 't':
        return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return json_scan_number(p, end, &flag);
    }
}

/* A whole document that is one object: its members, or -1 (see json_scan_value). */
static int
json_document_members(const char *text, size_t size, Member *members, int capacity)
{
    const char *end = text + size;
    const char *p = json_skip_space(text, end);
    if (p >= end || *p != '{') {
        return -1;
    }
    int count = 0;
    p = json_scan_object(p, end, 0, members, capacity, &count);
    if (p == NULL || json_skip_space(p, end) != end) {
        return -1;
    }
    return count;
}

/* The members of an object value already scanned, or -1 (not an object, too many, an
 * escaped key). */
static int
json_object_members(Span value, Member *members, int capacity)
{
    if (value.size == 0 || value.start[0] != '{') {
        return -1;
    }
    int count = 0;
    const char *p = json_scan_object(value.start, value.start + value.size, 1, members,
                                      capacity, &count);
    return p == NULL ? -1 : count;
}

/* The value of the last member named ``key`` (orjson keeps the last of duplicates), or
 * NULL. */
static const Span *
json_member(const Member *members, int count, const char *key, size_t key_size)
{
    for (int i = count - 1; i >= 0; i--) {
        if (members[i].key.size == key_size &&
            (key_size == 0 || members[i].key.start[0] == key[0]) &&
            memcmp(members[i].key.start, key, key_size) == 0) {
            return &members[i].value;
        }
    }
    return NULL;
}

/* --- ByteTable --------------------------------------------------------------------- */

/* Each entry's bytes: a header, the key, then the value bytes. */
typedef struct {
    uint32_t key_size;
    uint32_t value_size; /* BYTE_TABLE_REMOVED: the field is left out */
    void *object;        /* a strong reference owned by the table's user, or NULL */
    void *extra;         /* another one, set by the user after the entry is made */
    uint64_t stamp;      /* the user's, for ``extra`` */
} ByteBlobHeader;

#define BYTE_TABLE_REMOVED UINT32_MAX
#define BYTE_TABLE_PROBES 16

typedef struct {
    uint64_t hash;
    ByteBlobHeader *blob; /* NULL: empty */
} ByteSlot;

/* Entries are carved from chunks of this size, all freed when the table starts over:
 * no allocation per entry, and no free list left fragmented by a million of them. */
#define BYTE_ARENA_CHUNK (256 * 1024)

typedef struct ByteChunk {
    struct ByteChunk *next;
    size_t used;
    size_t size;
    char data[];
} ByteChunk;

typedef struct {
    ByteSlot *slots;
    size_t mask;
    size_t count;
    size_t limit;      /* entries */
    size_t bytes;      /* in its chunks */
    size_t byte_limit; /* ... at most (about: the entry that passes it is kept) */
    void (*release)(void *object); /* frees an entry's object */
    ByteChunk *chunks;             /* the newest first */
} ByteTable;

/* ``size`` bytes, 8-aligned, from the table's chunks; NULL when out of memory. */
static void *
byte_arena_alloc(ByteTable *table, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    ByteChunk *chunk = table->chunks;
    if (chunk == NULL || chunk->size - chunk->used < size) {
        size_t chunk_size = size > BYTE_ARENA_CHUNK ? size : BYTE_ARENA_CHUNK;
        chunk = malloc(sizeof(ByteChunk) + chunk_size);
        if (chunk == NULL) {
            return NULL;
        }
        chunk->next = table->chunks;
        chunk->used = 0;
        chunk->size = chunk_size;
        table->chunks = chunk;
        table->bytes += chunk_size;
    }
    void *memory = chunk->data + chunk->used;
    chunk->used += size;
    return memory;
}

static uint64_t
byte_hash(const char *data, size_t size, uint64_t seed)
{
    /* A multiply-and-rotate mix of 8-byte words: quick, and seeded (by the caller, with a
     * random seed) so that payloads cannot be crafted to collide (probing is bounded
     * besides). */
    const uint64_t m = 0x9E3779B97F4A7C15ULL;
    uint64_t h = seed ^ (size * m);
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, data, 8);
        h = (h ^ (word * m)) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
        data += 8;
        size -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, data, size);
    h = (h ^ (tail * m)) * 0x94D049BB133111EBULL;
    h ^= h >> 31;
    return h | 1; /* never 0 */
}

static char *
byte_blob_key(ByteBlobHeader *blob)
{
    return (char *)(blob + 1);
}

static void
byte_table_clear(ByteTable *table)
{
    if (table->slots == NULL) {
        return;
    }
    if (table->release == NULL) {
        memset(table->slots, 0, (table->mask + 1) * sizeof(ByteSlot));
    }
    for (size_t i = 0; table->release != NULL && i <= table->mask; i++) {
        ByteBlobHeader *blob = table->slots[i].blob;
        if (blob != NULL) {
            if (blob->object != NULL) table->release(blob->object);
            if (blob->extra != NULL) table->release(blob->extra);
            table->slots[i].blob = NULL;
        }
    }
    while (table->chunks != NULL) {
        ByteChunk *next = table->chunks->next;
        free(table->chunks);
        table->chunks = next;
    }
    table->count = 0;
    table->bytes = 0;
}

static void
byte_table_free(ByteTable *table)
{
    byte_table_clear(table);
    free(table->slots);
    table->slots = NULL;
}

/* 0, or -1 when out of memory. ``limit`` entries at most, in about ``byte_limit`` bytes;
 * the slots are twice as many. */
static int
byte_table_init(ByteTable *table, size_t limit, size_t byte_limit, void (*release)(void *))
{
    size_t capacity = 16;
    while (capacity < limit * 2) {
        capacity *= 2;
    }
    table->slots = calloc(capacity, sizeof(ByteSlot));
    if (table->slots == NULL) {
        return -1;
    }
    table->mask = capacity - 1;
    table->count = 0;
    table->limit = limit;
    table->release = release;
    table->chunks = NULL;
    table->bytes = 0;
    table->byte_limit = byte_limit;
    return 0;
}

static int
byte_table_full(const ByteTable *table)
{
    return table->count >= table->limit || table->bytes >= table->byte_limit;
}

static ByteBlobHeader *
byte_table_get(const ByteTable *table, const char *key, size_t key_size, uint64_t hash)
{
    for (size_t probe = 0; probe < BYTE_TABLE_PROBES; probe++) {
        const ByteSlot *slot = &table->slots[(hash + probe) & table->mask];
        if (slot->blob == NULL) {
            return NULL;
        }
        if (slot->hash == hash && slot->blob->key_size == key_size &&
            memcmp(byte_blob_key(slot->blob), key, key_size) == 0) {
            return slot->blob;
        }
    }
    return NULL;
}

/* Keeps key -> (value, object); the table takes ``object`` (released with the entry).
 * 0 when kept (the entry in *made, if given), 1 when there was no room near the key's
 * slot (nothing kept, ``object`` released), -1 when out of memory (``object``
 * released). A full table starts over first. */
static int
byte_table_put(ByteTable *table, const char *key, size_t key_size, uint64_t hash,
               const char *value, uint32_t value_size, void *object, ByteBlobHeader **made)
{
    if (byte_table_full(table)) {
        byte_table_clear(table); /* start over, as the Python caches do */
    }
    size_t value_bytes = value_size == BYTE_TABLE_REMOVED ? 0 : value_size;
    for (size_t probe = 0; probe < BYTE_TABLE_PROBES; probe++) {
        ByteSlot *slot = &table->slots[(hash + probe) & table->mask];
        if (slot->blob != NULL) {
            continue;
        }
        ByteBlobHeader *blob = byte_arena_alloc(table, sizeof(ByteBlobHeader) + key_size + value_bytes);
        if (blob == NULL) {
            if (object != NULL && table->release != NULL) table->release(object);
            return -1;
        }
        blob->key_size = (uint32_t)key_size;
        blob->value_size = value_size;
        blob->object = object;
        blob->extra = NULL;
        blob->stamp = 0;
        memcpy(byte_blob_key(blob), key, key_size);
        if (value_bytes) {
            memcpy(byte_blob_key(blob) + key_size, value, value_bytes);
        }
        slot->hash = hash;
        slot->blob = blob;
        table->count++;
        if (made != NULL) {
            *made = blob;
        }
        return 0;
    }
    if (object != NULL && table->release != NULL) table->release(object);
    return 1;
}

static const char *
byte_blob_value(ByteBlobHeader *blob)
{
    return byte_blob_key(blob) + blob->key_size;
}

/* --- ByteGenerations ---------------------------------------------------------------- */

/* Two ByteTables, young and old: entries go into the young one; when it is full, the old
 * one is dropped and the young one becomes old. An entry found in the old one is copied
 * back into the young one, so what is in use (a listener's identifiers, for as long as
 * the listening lasts) survives every turn, where a single table starting over would
 * forget it all at once. No callbacks: the entries hold bytes only. */
typedef struct {
    ByteTable young;
    ByteTable old;
} ByteGenerations;

static int
byte_generations_init(ByteGenerations *generations, size_t limit, size_t byte_limit)
{
    if (byte_table_init(&generations->young, limit, byte_limit, NULL) < 0) {
        return -1;
    }
    if (byte_table_init(&generations->old, limit, byte_limit, NULL) < 0) {
        byte_table_free(&generations->young);
        return -1;
    }
    return 0;
}

static void
byte_generations_free(ByteGenerations *generations)
{
    byte_table_free(&generations->young);
    byte_table_free(&generations->old);
}

static void
byte_generations_turn_if_full(ByteGenerations *generations)
{
    if (!byte_table_full(&generations->young)) {
        return;
    }
    byte_table_clear(&generations->old);
    ByteTable emptied = generations->old;
    generations->old = generations->young;
    generations->young = emptied;
}

static ByteBlobHeader *
byte_generations_get(ByteGenerations *generations, const char *key, size_t key_size,
                     uint64_t hash)
{
    ByteBlobHeader *found = byte_table_get(&generations->young, key, key_size, hash);
    if (found != NULL) {
        return found;
    }
    byte_generations_turn_if_full(generations); /* first: the copy below must not turn */
    found = byte_table_get(&generations->old, key, key_size, hash);
    if (found == NULL) {
        return NULL;
    }
    ByteBlobHeader *copy = NULL;
    const char *value = byte_blob_key(found) + found->key_size;
    if (byte_table_put(&generations->young, key, key_size, hash, value, found->value_size, NULL,
                       &copy) != 0) {
        return found; /* not copied (no room, no memory): the old entry still answers */
    }
    return copy;
}

/* 0 when kept (or no room near its slot), -1 when out of memory. */
static int
byte_generations_put(ByteGenerations *generations, const char *key, size_t key_size,
                     uint64_t hash, const char *value, uint32_t value_size)
{
    byte_generations_turn_if_full(generations);
    return byte_table_put(&generations->young, key, key_size, hash, value, value_size, NULL,
                          NULL) < 0
               ? -1
               : 0;
}

#endif
