/*
 * Optional C versions of the privacy filter's per-event steps.
 *
 * - signal_key(event): gateway.privacy.signals.signal_key for the usual, well
 *   typed event (plain dicts, exact str/int/bool values). Anything else is
 *   handed to the Python function given to set_signal_key_fallback(), so an
 *   unusual event gets exactly the Python answer.
 * - Selector: the generated selector of one allowlist plan node
 *   (gateway.privacy.allowlist._selector) for a plain dict whose kept values
 *   are plain scalars. Anything else is handed to the node's Python selector.
 * - KeyedHash: the HMAC-SHA256 of gateway.privacy.pseudonyms._Keyed, with the
 *   SHA-256 of _sha256.h (the CPU's SHA extensions where it has them).
 * - IpTruncator: network.truncate_ip for dotted quads and IPv6 text.
 * - CoordinateRounder: geo.round_coordinate with its settings bound.
 * - RowFilter: gateway.privacy.rows.RowFilter, a batch build's loop over stored rows,
 *   with its byte path: rows filtered from their JSON text (_json_scan.h) without
 *   Python objects per field; pseudonyms, address prefixes and short coordinates
 *   computed from the text, the other transforms' results kept as text (TextCache).
 *
 * All compute exactly what the Python code computes (tests compare them on
 * generated events); they only skip the interpreter. Without a compiler the
 * package uses the Python code alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>

#include <arpa/inet.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "_json_scan.h"
#include "_sha256.h"

/* --- Interned key names ------------------------------------------------------------- */

static PyObject *s_consent, *s_gdpr, *s_tcf, *s_gpp, *s_gpp_sid, *s_us_privacy, *s_gpc,
    *s_coppa, *s_geo, *s_country, *s_region, *s_device, *s_lmt, *s_atts, *s_ifa, *s_get;

static PyObject *signal_key_fallback = NULL;

#define MAX_GPP_SID 64

/* A strong reference to dict[key], NULL (no error) when absent. */
static PyObject *
get_item(PyObject *dict, PyObject *key)
{
    PyObject *value = PyDict_GetItemWithError(dict, key);
    Py_XINCREF(value);
    return value;
}

/* Exact int 0 or 1: 0 or 1; anything else: -1. */
static int
zero_or_one(PyObject *value)
{
    if (!PyLong_CheckExact(value)) {
        return -1;
    }
    int overflow = 0;
    long number = PyLong_AsLongAndOverflow(value, &overflow);
    if (overflow || (number != 0 && number != 1)) {
        PyErr_Clear();
        return -1;
    }
    return (int)number;
}

/* A flag read as signals.read_flag does, for the values read without doubt:
 * None, True, False, 0 and 1. 0 or 1; -1 for anything else (the Python code decides). */
static int
plain_flag(PyObject *value)
{
    if (value == NULL || value == Py_None || value == Py_False) {
        return 0;
    }
    if (value == Py_True) {
        return 1;
    }
    return zero_or_one(value);
}

/* A str or None; "" reads as None ("no string"). 1 when usable, 0 when not. */
static int
plain_string(PyObject **value)
{
    if (*value == NULL) {
        Py_INCREF(Py_None);
        *value = Py_None;
        return 1;
    }
    if (*value == Py_None) {
        return 1;
    }
    if (!PyUnicode_CheckExact(*value)) {
        return 0;
    }
    if (PyUnicode_GET_LENGTH(*value) == 0) {
        Py_DECREF(*value);
        Py_INCREF(Py_None);
        *value = Py_None;
    }
    return 1;
}

/* Two characters, each accepted by ``accept``. */
static int
two_ascii(PyObject *value, int (*accept)(Py_UCS4))
{
    if (!PyUnicode_CheckExact(value) || PyUnicode_READY(value) < 0 ||
        PyUnicode_GET_LENGTH(value) != 2) {
        PyErr_Clear();
        return 0;
    }
    int kind = PyUnicode_KIND(value);
    const void *data = PyUnicode_DATA(value);
    return accept(PyUnicode_READ(kind, data, 0)) && accept(PyUnicode_READ(kind, data, 1));
}

static int
upper_letter(Py_UCS4 c)
{
    return c >= 'A' && c <= 'Z';
}

static int
upper_letter_or_digit(Py_UCS4 c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* gpp_sid as a tuple of exact ints (at most MAX_GPP_SID), or NULL (no error) when unusual. */
static PyObject *
plain_sid(PyObject *value)
{
    if (value == NULL || value == Py_None) {
        return PyTuple_New(0);
    }
    if (!PyList_CheckExact(value) && !PyTuple_CheckExact(value)) {
        return NULL;
    }
    Py_ssize_t size = PySequence_Fast_GET_SIZE(value);
    if (size > MAX_GPP_SID) {
        return NULL;
    }
    PyObject **items = PySequence_Fast_ITEMS(value);
    for (Py_ssize_t i = 0; i < size; i++) {
        if (!PyLong_CheckExact(items[i])) {
            return NULL;
        }
    }
    if (PyTuple_CheckExact(value)) {
        Py_INCREF(value);
        return value;
    }
    return PyList_AsTuple(value);
}

static PyObject *
fallback_key(PyObject *event)
{
    if (signal_key_fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "signal_key fallback is not set");
        return NULL;
    }
    return PyObject_CallOneArg(signal_key_fallback, event);
}

#define UNUSUAL -2

/* The signal key of a plain event, NULL with an exception, or NULL without one when
 * something is unusual (the caller then asks the Python code). */
static PyObject *
plain_signal_key(PyObject *event)
{
    PyObject *consent = NULL, *gdpr = NULL, *tcf = NULL, *gpp = NULL, *usp = NULL, *sid = NULL,
             *gpc = NULL, *coppa = NULL, *geo = NULL, *country = NULL, *region = NULL,
             *device = NULL, *lmt = NULL, *atts = NULL, *ifa = NULL, *key = NULL;
    PyObject *sid_tuple = NULL;
    int gpc_flag = 0, coppa_flag = 0, limited = 0, has_ifa = 0;

#define READ(target, dict, name)                          \
    do {                                                  \
        target = get_item(dict, name);                    \
        if (target == NULL && PyErr_Occurred()) goto done; \
    } while (0)

    READ(consent, event, s_consent);
    if (consent != NULL && consent != Py_None) {
        if (!PyDict_CheckExact(consent)) goto done;
        READ(gdpr, consent, s_gdpr);
        READ(tcf, consent, s_tcf);
        READ(gpp, consent, s_gpp);
        READ(usp, consent, s_us_privacy);
        READ(sid, consent, s_gpp_sid);
        READ(gpc, consent, s_gpc);
        READ(coppa, consent, s_coppa);
    }
    if (gdpr == NULL) {
        Py_INCREF(Py_None);
        gdpr = Py_None;
    }
    else if (gdpr != Py_None && zero_or_one(gdpr) < 0) {
        goto done;
    }
    if (!plain_string(&tcf) || !plain_string(&gpp) || !plain_string(&usp)) goto done;
    sid_tuple = plain_sid(sid);
    if (sid_tuple == NULL) goto done;
    gpc_flag = plain_flag(gpc);
    coppa_flag = plain_flag(coppa);
    if (gpc_flag < 0 || coppa_flag < 0) goto done;

    READ(geo, event, s_geo);
    if (geo != NULL && geo != Py_None) {
        if (!PyDict_CheckExact(geo)) goto done;
        READ(country, geo, s_country);
        READ(region, geo, s_region);
        if (country != NULL && country != Py_None && !two_ascii(country, upper_letter)) goto done;
        if (region != NULL && region != Py_None && !two_ascii(region, upper_letter_or_digit))
            goto done;
    }
    if (country == NULL) {
        Py_INCREF(Py_None);
        country = Py_None;
    }
    if (region == NULL) {
        Py_INCREF(Py_None);
        region = Py_None;
    }

    READ(device, event, s_device);
    if (device != NULL && device != Py_None) {
        if (!PyDict_CheckExact(device)) goto done;
        READ(lmt, device, s_lmt);
        limited = plain_flag(lmt);
        if (limited < 0) goto done;
        READ(atts, device, s_atts);
        if (atts != NULL && atts != Py_None) {
            if (!PyLong_CheckExact(atts)) goto done;
            int overflow = 0;
            long status = PyLong_AsLongAndOverflow(atts, &overflow);
            if (overflow || status < 0 || status > 3) {
                PyErr_Clear();
                goto done;
            }
            limited = limited || status <= 2;
        }
        READ(ifa, device, s_ifa);
        if (ifa != NULL && ifa != Py_None) {
            if (!PyUnicode_CheckExact(ifa)) goto done;
            has_ifa = PyUnicode_GET_LENGTH(ifa) > 0;
        }
    }
#undef READ

    key = PyTuple_Pack(
        11, gdpr, tcf, gpp, sid_tuple, usp, gpc_flag ? Py_True : Py_False,
        coppa_flag ? Py_True : Py_False, country, region, limited ? Py_True : Py_False,
        has_ifa ? Py_True : Py_False);

done:
    Py_XDECREF(consent);
    Py_XDECREF(gdpr);
    Py_XDECREF(tcf);
    Py_XDECREF(gpp);
    Py_XDECREF(usp);
    Py_XDECREF(sid);
    Py_XDECREF(sid_tuple);
    Py_XDECREF(gpc);
    Py_XDECREF(coppa);
    Py_XDECREF(geo);
    Py_XDECREF(country);
    Py_XDECREF(region);
    Py_XDECREF(device);
    Py_XDECREF(lmt);
    Py_XDECREF(atts);
    Py_XDECREF(ifa);
    return key;
}

static PyObject *
speedups_signal_key(PyObject *module, PyObject *event)
{
    if (!PyDict_CheckExact(event)) {
        return fallback_key(event);
    }
    PyObject *key = plain_signal_key(event);
    if (key != NULL || PyErr_Occurred()) {
        return key;
    }
    return fallback_key(event);
}

static PyObject *
speedups_set_signal_key_fallback(PyObject *module, PyObject *function)
{
    if (!PyCallable_Check(function)) {
        PyErr_SetString(PyExc_TypeError, "the fallback must be callable");
        return NULL;
    }
    Py_INCREF(function);
    Py_XSETREF(signal_key_fallback, function);
    Py_RETURN_NONE;
}

/* transform._limits_ad_tracking: is device.lmt on (anything but absent, false or 0)? */
static PyObject *
speedups_limits_ad_tracking(PyObject *module, PyObject *event)
{
    PyObject *device = PyObject_GetItem(event, s_device);
    if (device == NULL) {
        return NULL;
    }
    PyObject *lmt;
    if (PyDict_CheckExact(device)) {
        lmt = get_item(device, s_lmt);
        if (lmt == NULL && PyErr_Occurred()) {
            Py_DECREF(device);
            return NULL;
        }
    }
    else {
        lmt = PyObject_CallMethodOneArg(device, s_get, s_lmt);
        if (lmt == NULL) {
            Py_DECREF(device);
            return NULL;
        }
    }
    Py_DECREF(device);
    int off = lmt == NULL || lmt == Py_None || lmt == Py_False;
    if (!off && PyLong_CheckExact(lmt)) {
        int overflow = 0;
        long number = PyLong_AsLongAndOverflow(lmt, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            Py_DECREF(lmt);
            return NULL;
        }
        off = !overflow && number == 0;
    }
    Py_XDECREF(lmt);
    return PyBool_FromLong(!off);
}

/* --- TextCache ----------------------------------------------------------------------- */

/* What one CachedTransform sends, as JSON text, per value as JSON text: the byte path's
 * twin of the transform's cache (allowlist.CachedTransform.text_cache), shared by every
 * selector step of that transform, in two generations (ByteGenerations) of at most half
 * of ``size`` entries each. */
typedef struct {
    PyObject_HEAD
    ByteGenerations generations; /* made when first used: no slots until then */
    size_t limit;                /* per generation */
} TextCache;

static uint64_t bytes_seed;

/* A generation's entries and bytes at most: a listener's identifiers and addresses for
 * several thousand listenings at once, in a few megabytes. */
#define TEXT_CACHE_GENERATION_MAX 16384
#define TEXT_CACHE_GENERATION_BYTES (4 * 1024 * 1024)

/* The tables, made ready when first used; NULL with MemoryError. */
static ByteGenerations *
text_cache_tables(TextCache *self)
{
    if (self->generations.young.slots == NULL &&
        byte_generations_init(&self->generations, self->limit, TEXT_CACHE_GENERATION_BYTES) < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    return &self->generations;
}

static PyObject *
text_cache_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t size;
    static char *names[] = {"size", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n:TextCache", names, &size)) {
        return NULL;
    }
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "a text cache holds at least one entry");
        return NULL;
    }
    TextCache *self = (TextCache *)type->tp_alloc(type, 0);
    if (self != NULL) {
        /* Two generations of half the size each; smaller still for a large cache: text
         * entries outnumber the Python cache's, which the object path fills alone. */
        size_t half = (size_t)(size + 1) / 2;
        self->limit = half < TEXT_CACHE_GENERATION_MAX ? half : TEXT_CACHE_GENERATION_MAX;
    }
    return (PyObject *)self;
}

static void
text_cache_dealloc(TextCache *self)
{
    byte_generations_free(&self->generations); /* nothing to free if never used */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
text_cache_length(TextCache *self)
{
    return (Py_ssize_t)(self->generations.young.count + self->generations.old.count);
}

static PySequenceMethods text_cache_sequence = {
    .sq_length = (lenfunc)text_cache_length,
};

static PyTypeObject TextCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.TextCache",
    .tp_doc = "A transform's results as JSON text per value as JSON text (the byte path's).",
    .tp_basicsize = sizeof(TextCache),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = text_cache_new,
    .tp_dealloc = (destructor)text_cache_dealloc,
    .tp_as_sequence = &text_cache_sequence,
};

/* --- Selector ------------------------------------------------------------------------ */

/* STEP_REMOVE: allowlist.remove_field, which leaves the field out whatever its value. */
enum { STEP_KEEP = 0, STEP_CACHED = 1, STEP_CALL = 2, STEP_REMOVE = 3 };

typedef struct {
    PyObject *key;
    int kind;
    /* STEP_CACHED */
    PyObject *cache; /* dict */
    PyObject *key_type;
    PyObject *miss;
    PyObject *other;
    PyObject *guard; /* or NULL */
    /* Optional: the miss done here, as CachedTransform.miss does it (compute the value,
     * None becomes REMOVE, the cache starts over when it holds size results), without
     * the Python frames of miss; NULL: miss is called. */
    PyObject *compute;
    Py_ssize_t capacity;
    /* STEP_CALL: transform or child selector, called (value, event, policy) */
    PyObject *call;
    /* STEP_CACHED, optional: the transform's TextCache, for the row filter's byte path
     * (see "Byte path" below), which also needs the key as UTF-8. */
    PyObject *text_cache;
    const char *key_text;
    Py_ssize_t key_size;
} Step;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t size;
    Step *steps;
    PyObject *fallback; /* the node's Python selector */
    PyObject *remove;   /* allowlist.REMOVE */
    int bytes_ready;    /* byte path: 0 not asked yet, 1 can take it, -1 cannot */
} Selector;

static PyTypeObject SelectorType;

static int
plain_scalar(PyObject *value)
{
    return PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyFloat_CheckExact(value) ||
           PyBool_Check(value) || value == Py_None;
}

static PyObject *selector_select(Selector *self, PyObject *value, PyObject *event, PyObject *policy);

static PyObject *
call3(PyObject *function, PyObject *a, PyObject *b, PyObject *c)
{
    if (Py_IS_TYPE(function, &SelectorType)) {
        return selector_select((Selector *)function, a, b, c);
    }
    PyObject *args[3] = {a, b, c};
    return PyObject_Vectorcall(function, args, 3, NULL);
}

/* CachedTransform.miss: the result for ``value`` (not in the cache), now kept. */
static PyObject *
step_miss(Selector *self, Step *step, PyObject *value)
{
    PyObject *result = PyObject_CallOneArg(step->compute, value);
    if (result == NULL) {
        return NULL;
    }
    if (result == Py_None) {
        Py_DECREF(result);
        Py_INCREF(self->remove);
        result = self->remove;
    }
    if (PyDict_GET_SIZE(step->cache) >= step->capacity) {
        PyDict_Clear(step->cache);
    }
    if (PyDict_SetItem(step->cache, value, result) < 0) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* What one transformed step sends for ``value``: a new reference (maybe REMOVE). */
static PyObject *
step_result(Selector *self, Step *step, PyObject *value, PyObject *event, PyObject *policy)
{
    if (step->kind == STEP_CALL) {
        return call3(step->call, value, event, policy);
    }
    if (step->guard != NULL) {
        PyObject *guarded = PyObject_CallOneArg(step->guard, event);
        if (guarded == NULL) {
            return NULL;
        }
        int truth = PyObject_IsTrue(guarded);
        Py_DECREF(guarded);
        if (truth < 0) {
            return NULL;
        }
        if (truth) {
            Py_INCREF(self->remove);
            return self->remove;
        }
    }
    if ((PyObject *)Py_TYPE(value) == step->key_type) {
        PyObject *found = PyDict_GetItemWithError(step->cache, value);
        if (found != NULL) {
            Py_INCREF(found);
            return found;
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
        if (step->compute == NULL) {
            return PyObject_CallOneArg(step->miss, value);
        }
        return step_miss(self, step, value);
    }
    return PyObject_CallOneArg(step->other, value);
}

#define MAX_STACK_STEPS 64

static PyObject *
selector_select(Selector *self, PyObject *value, PyObject *event, PyObject *policy)
{
    if (!PyDict_CheckExact(value) || self->size > MAX_STACK_STEPS) {
        return call3(self->fallback, value, event, policy);
    }
    /* Every value first (strong references), and a hint to the CPU to fetch each one:
     * a listener's identifiers sit far apart in memory, and fetching them together
     * costs about one wait instead of one each. A missing or non-scalar kept value is
     * the Python selector's case. */
    PyObject *items[MAX_STACK_STEPS];
    Py_ssize_t read = 0;
    PyObject *out = NULL;
    for (; read < self->size; read++) {
        Step *step = &self->steps[read];
        PyObject *item = get_item(value, step->key);
        items[read] = item;
        if (item == NULL) {
            if (PyErr_Occurred()) {
                goto error;
            }
            if (step->kind == STEP_KEEP) {
                goto fallback;
            }
            continue;
        }
        if (step->kind == STEP_KEEP) {
            if (!plain_scalar(item)) {
                read++;
                goto fallback;
            }
        }
        else {
            __builtin_prefetch(item);
        }
    }
    /* The cached results, looked up together for the same reason (nothing runs between
     * the lookups and the new references, so none of them can go in between). */
    PyObject *found[MAX_STACK_STEPS];
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Step *step = &self->steps[i];
        found[i] = NULL;
        if (step->kind == STEP_CACHED && step->guard == NULL && items[i] != NULL &&
            (PyObject *)Py_TYPE(items[i]) == step->key_type) {
            found[i] = PyDict_GetItemWithError(step->cache, items[i]);
            if (found[i] != NULL) {
                __builtin_prefetch(found[i], 1);
            }
            else if (PyErr_Occurred()) {
                goto error;
            }
        }
    }
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Py_XINCREF(found[i]);
    }
    out = _PyDict_NewPresized(self->size);
    if (out == NULL) {
        goto error_found;
    }
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Step *step = &self->steps[i];
        PyObject *item = items[i];
        if (item == NULL) {
            continue; /* a missing transformed or nested key is left out */
        }
        PyObject *kept;
        if (step->kind == STEP_REMOVE) {
            continue;
        }
        if (step->kind == STEP_KEEP) {
            kept = item;
            Py_INCREF(kept);
        }
        else if (found[i] != NULL) {
            kept = found[i];
            found[i] = NULL;
        }
        else {
            kept = step_result(self, step, item, event, policy);
            if (kept == NULL) {
                goto error_found;
            }
        }
        if (kept != self->remove && PyDict_SetItem(out, step->key, kept) < 0) {
            Py_DECREF(kept);
            goto error_found;
        }
        Py_DECREF(kept);
    }
    for (Py_ssize_t i = 0; i < read; i++) {
        Py_XDECREF(items[i]);
    }
    if (PyDict_GET_SIZE(out) == 0) {
        Py_DECREF(out);
        Py_INCREF(self->remove);
        return self->remove;
    }
    return out;
fallback:
    for (Py_ssize_t i = 0; i < read; i++) {
        Py_XDECREF(items[i]);
    }
    return call3(self->fallback, value, event, policy);
error_found:
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Py_XDECREF(found[i]);
    }
error:
    for (Py_ssize_t i = 0; i < read; i++) {
        Py_XDECREF(items[i]);
    }
    Py_XDECREF(out);
    return NULL;
}

static PyObject *
selector_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 3 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a selector takes (value, event, policy)");
        return NULL;
    }
    return selector_select((Selector *)callable, args[0], args[1], args[2]);
}

static void
step_clear(Step *step)
{
    Py_CLEAR(step->key);
    Py_CLEAR(step->cache);
    Py_CLEAR(step->key_type);
    Py_CLEAR(step->miss);
    Py_CLEAR(step->other);
    Py_CLEAR(step->guard);
    Py_CLEAR(step->compute);
    Py_CLEAR(step->call);
    Py_CLEAR(step->text_cache);
}

static int
selector_clear(Selector *self)
{
    for (Py_ssize_t i = 0; i < self->size; i++) {
        step_clear(&self->steps[i]);
    }
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->remove);
    return 0;
}

static int
selector_traverse(Selector *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Step *step = &self->steps[i];
        Py_VISIT(step->key);
        Py_VISIT(step->cache);
        Py_VISIT(step->key_type);
        Py_VISIT(step->miss);
        Py_VISIT(step->other);
        Py_VISIT(step->guard);
        Py_VISIT(step->compute);
        Py_VISIT(step->call);
    }
    Py_VISIT(self->fallback);
    Py_VISIT(self->remove);
    return 0;
}

static void
selector_dealloc(Selector *self)
{
    PyObject_GC_UnTrack(self);
    selector_clear(self);
    PyMem_Free(self->steps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Selector(steps, fallback, remove): steps is a tuple of
 *   (key, 0)                                        keep a plain scalar
 *   (key, 1, cache, key_type, miss, other, guard)   a cached transform (guard may be None)
 *   (key, 1, cache, key_type, miss, other, guard, compute, size)
 *                                                   the same, its misses done here
 *   (key, 2, function)                              function(value, event, policy)
 * in output order. */
static PyObject *
selector_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *steps, *fallback, *remove;
    static char *names[] = {"steps", "fallback", "remove", NULL};
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "O!OO:Selector", names, &PyTuple_Type, &steps, &fallback, &remove)) {
        return NULL;
    }
    Py_ssize_t size = PyTuple_GET_SIZE(steps);
    Selector *self = (Selector *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = selector_vectorcall;
    self->steps = PyMem_Calloc(size ? size : 1, sizeof(Step));
    if (self->steps == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->size = size;
    Py_INCREF(fallback);
    self->fallback = fallback;
    Py_INCREF(remove);
    self->remove = remove;
    for (Py_ssize_t i = 0; i < size; i++) {
        PyObject *spec = PyTuple_GET_ITEM(steps, i);
        Step *step = &self->steps[i];
        PyObject *key, *cache, *key_type, *miss, *other, *guard, *call;
        int kind;
        if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 2) {
            goto bad;
        }
        key = PyTuple_GET_ITEM(spec, 0);
        kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(spec, 1));
        if (!PyUnicode_CheckExact(key)) {
            goto bad;
        }
        Py_INCREF(key);
        step->key = key;
        step->kind = kind;
        if ((kind == STEP_KEEP || kind == STEP_REMOVE) && PyTuple_GET_SIZE(spec) == 2) {
            continue;
        }
        Py_ssize_t spec_size = PyTuple_GET_SIZE(spec);
        if (kind == STEP_CACHED && (spec_size == 7 || spec_size == 9 || spec_size == 10)) {
            cache = PyTuple_GET_ITEM(spec, 2);
            key_type = PyTuple_GET_ITEM(spec, 3);
            miss = PyTuple_GET_ITEM(spec, 4);
            other = PyTuple_GET_ITEM(spec, 5);
            guard = PyTuple_GET_ITEM(spec, 6);
            if (!PyDict_CheckExact(cache) || !PyType_Check(key_type)) {
                goto bad;
            }
            Py_INCREF(cache);
            step->cache = cache;
            Py_INCREF(key_type);
            step->key_type = key_type;
            Py_INCREF(miss);
            step->miss = miss;
            Py_INCREF(other);
            step->other = other;
            if (guard != Py_None) {
                Py_INCREF(guard);
                step->guard = guard;
            }
            if (spec_size >= 9) {
                PyObject *compute = PyTuple_GET_ITEM(spec, 7);
                Py_ssize_t capacity = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 8));
                if (capacity < 1) {
                    goto bad;
                }
                Py_INCREF(compute);
                step->compute = compute;
                step->capacity = capacity;
            }
            if (spec_size == 10 && PyTuple_GET_ITEM(spec, 9) != Py_None) {
                PyObject *text_cache = PyTuple_GET_ITEM(spec, 9);
                if (!Py_IS_TYPE(text_cache, &TextCacheType)) {
                    goto bad;
                }
                step->text_cache = Py_NewRef(text_cache);
            }
            continue;
        }
        if (kind == STEP_CALL && PyTuple_GET_SIZE(spec) == 3) {
            call = PyTuple_GET_ITEM(spec, 2);
            Py_INCREF(call);
            step->call = call;
            continue;
        }
        goto bad;
    }
    return (PyObject *)self;
bad:
    if (!PyErr_Occurred()) {
        PyErr_SetString(PyExc_ValueError, "malformed selector step");
    }
    Py_DECREF(self);
    return NULL;
}

static PyTypeObject SelectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.Selector",
    .tp_doc = "The selector of one allowlist plan node (see allowlist._selector).",
    .tp_basicsize = sizeof(Selector),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = selector_new,
    .tp_dealloc = (destructor)selector_dealloc,
    .tp_traverse = (traverseproc)selector_traverse,
    .tp_clear = (inquiry)selector_clear,
    .tp_vectorcall_offset = offsetof(Selector, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- Minimiser ---------------------------------------------------------------------- */

/* Minimiser(select, policy, remove)(event): what transform_event returns for a plan
 * whose root is ``select``: select(event, event, policy), {} when it removes everything. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *select;
    PyObject *policy;
    PyObject *remove;
} Minimiser;

static PyObject *
minimiser_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Minimiser *self = (Minimiser *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a minimiser takes (event)");
        return NULL;
    }
    PyObject *kept = call3(self->select, args[0], args[0], self->policy);
    if (kept == self->remove) {
        Py_DECREF(kept);
        return PyDict_New();
    }
    return kept;
}

static int
minimiser_clear(Minimiser *self)
{
    Py_CLEAR(self->select);
    Py_CLEAR(self->policy);
    Py_CLEAR(self->remove);
    return 0;
}

static int
minimiser_traverse(Minimiser *self, visitproc visit, void *arg)
{
    Py_VISIT(self->select);
    Py_VISIT(self->policy);
    Py_VISIT(self->remove);
    return 0;
}

static void
minimiser_dealloc(Minimiser *self)
{
    PyObject_GC_UnTrack(self);
    minimiser_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
minimiser_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *select, *policy, *remove;
    static char *names[] = {"select", "policy", "remove", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO:Minimiser", names, &select, &policy,
                                     &remove)) {
        return NULL;
    }
    Minimiser *self = (Minimiser *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = minimiser_vectorcall;
    Py_INCREF(select);
    self->select = select;
    Py_INCREF(policy);
    self->policy = policy;
    Py_INCREF(remove);
    self->remove = remove;
    return (PyObject *)self;
}

static PyTypeObject MinimiserType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.Minimiser",
    .tp_doc = "transform_event for one compiled plan and policy (see transform._Compiled).",
    .tp_basicsize = sizeof(Minimiser),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = minimiser_new,
    .tp_dealloc = (destructor)minimiser_dealloc,
    .tp_traverse = (traverseproc)minimiser_traverse,
    .tp_clear = (inquiry)minimiser_clear,
    .tp_vectorcall_offset = offsetof(Minimiser, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- KeyedHash ---------------------------------------------------------------------- */

/* KeyedHash(key)(value): the hex HMAC-SHA256 (RFC 2104) of str ``value`` in UTF-8 under
 * ``key``, as pseudonyms._Keyed computes it with hashlib. The padded key's blocks are
 * hashed once; each value then costs two compressions (three past 55 bytes). A value
 * that cannot be UTF-8 (a lone surrogate) raises UnicodeEncodeError, as str.encode does. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    sha256_state inner; /* after the key XOR 0x36 block */
    sha256_state outer; /* after the key XOR 0x5c block */
    /* The pseudonymiser's contract instead of the hash's: None for what has no
     * pseudonym (not a str, empty, not UTF-8) rather than an error. */
    int lenient;
} KeyedHash;

/* The hex HMAC of ``size`` bytes at ``message`` into ``out`` (2 * SHA256_DIGEST chars). */
static void
keyed_hash_hex(const KeyedHash *self, const char *message, size_t size, char *out)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[SHA256_DIGEST];
    sha256_state state = self->inner;
    sha256_update(&state, (const uint8_t *)message, size);
    sha256_final(&state, digest);
    state = self->outer;
    sha256_update(&state, digest, SHA256_DIGEST);
    sha256_final(&state, digest);
    for (int i = 0; i < SHA256_DIGEST; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
}

static PyObject *
keyed_hash_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                      PyObject *kwnames)
{
    KeyedHash *self = (KeyedHash *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a keyed hash takes (value)");
        return NULL;
    }
    if (!PyUnicode_Check(args[0])) {
        if (self->lenient) {
            Py_RETURN_NONE;
        }
        PyErr_SetString(PyExc_TypeError, "a keyed hash takes a str");
        return NULL;
    }
    if (self->lenient && PyUnicode_GET_LENGTH(args[0]) == 0) {
        Py_RETURN_NONE;
    }
    Py_ssize_t size;
    const char *message = PyUnicode_AsUTF8AndSize(args[0], &size);
    if (message == NULL) {
        if (self->lenient && PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        return NULL;
    }
    PyObject *text = PyUnicode_New(2 * SHA256_DIGEST, 127);
    if (text == NULL) {
        return NULL;
    }
    keyed_hash_hex(self, message, (size_t)size, (char *)PyUnicode_1BYTE_DATA(text));
    return text;
}

static PyObject *
keyed_hash_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    Py_buffer key;
    int lenient = 0;
    static char *names[] = {"key", "lenient", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$p:KeyedHash", names, &key, &lenient)) {
        return NULL;
    }
    uint8_t padded[SHA256_BLOCK] = {0};
    if (key.len > SHA256_BLOCK) {
        sha256_state digest_of_key;
        sha256_init(&digest_of_key);
        sha256_update(&digest_of_key, key.buf, (size_t)key.len);
        sha256_final(&digest_of_key, padded);
    }
    else {
        memcpy(padded, key.buf, (size_t)key.len);
    }
    PyBuffer_Release(&key);
    KeyedHash *self = (KeyedHash *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = keyed_hash_vectorcall;
    self->lenient = lenient;
    uint8_t block[SHA256_BLOCK];
    for (int i = 0; i < SHA256_BLOCK; i++) {
        block[i] = padded[i] ^ 0x36;
    }
    sha256_init(&self->inner);
    sha256_update(&self->inner, block, SHA256_BLOCK);
    for (int i = 0; i < SHA256_BLOCK; i++) {
        block[i] = padded[i] ^ 0x5c;
    }
    sha256_init(&self->outer);
    sha256_update(&self->outer, block, SHA256_BLOCK);
    return (PyObject *)self;
}

static PyTypeObject KeyedHashType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.KeyedHash",
    .tp_doc = "Hex HMAC-SHA256 of a str (UTF-8) under one key (see pseudonyms._Keyed).",
    .tp_basicsize = sizeof(KeyedHash),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = keyed_hash_new,
    .tp_vectorcall_offset = offsetof(KeyedHash, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- IpTruncator ------------------------------------------------------------------- */

/* network.uncached_truncator's truncate, for valid settings. A dotted quad keeps its first
 * ``ipv4_bits`` bits, the rest zero ("203.0.113.77" at 24 bits: "203.0.113.0"; 0 bits:
 * None): what _IPV4 accepts only, four decimal octets, 0 to 255, no leading zeros. An IPv6
 * address is read by inet_pton, as socket.inet_pton reads it in network._truncate, and
 * kept as _truncate keeps it: a mapped IPv4 address like IPv4, an address of a network
 * that embeds IPv4 (``embedding``, network._EMBEDDING_IPV4) never beyond the IPv4 bits,
 * written by inet_ntop. Anything else (a value that is not an ASCII exact str, an
 * unusual text form to write) goes to ``fallback``, the Python function, which answers
 * for every value. */
typedef unsigned __int128 uint128;

typedef struct {
    uint128 network;
    int length;
    int offset;
} Embedding;

#define MAX_EMBEDDINGS 16
#define MAX_IP_TEXT 45

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int ipv4_bits;
    int ipv6_bits;
    Py_ssize_t embeddings;
    Embedding embedding[MAX_EMBEDDINGS];
    PyObject *fallback;
} IpTruncator;

/* The address in ``text`` (``size`` ASCII characters), or -1 when it is not a dotted quad
 * _IPV4 would accept. */
static int64_t
dotted_quad(const char *text, Py_ssize_t size)
{
    int64_t number = 0;
    Py_ssize_t at = 0;
    for (int octet = 0; octet < 4; octet++) {
        if (octet > 0) {
            if (at >= size || text[at] != '.') {
                return -1;
            }
            at++;
        }
        Py_ssize_t start = at;
        int value = 0;
        while (at < size && at - start < 3 && text[at] >= '0' && text[at] <= '9') {
            value = value * 10 + (text[at] - '0');
            at++;
        }
        Py_ssize_t digits = at - start;
        if (digits == 0 || (digits > 1 && text[start] == '0') || value > 255) {
            return -1;
        }
        number = (number << 8) | value;
    }
    return at == size ? number : -1;
}

static uint128
prefix_mask(int bits, int width)
{
    if (bits <= 0) {
        return 0;
    }
    uint128 all = ~(uint128)0;
    if (width == 32) {
        return (all << (32 - bits)) & 0xFFFFFFFFu;
    }
    return all << (128 - bits);
}

#define IPV4_TEXT_MAX 16 /* "255.255.255.255" and its NUL */

/* network._ipv4_number_text into ``out``: its length, or 0 when nothing is kept (0 bits). */
static int
ipv4_write(uint32_t number, int bits, char out[IPV4_TEXT_MAX])
{
    if (bits == 0) {
        return 0;
    }
    uint32_t kept = number & (uint32_t)prefix_mask(bits, 32);
    int size = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        unsigned octet = (kept >> shift) & 255;
        if (octet >= 100) out[size++] = (char)('0' + octet / 100);
        if (octet >= 10) out[size++] = (char)('0' + octet / 10 % 10);
        out[size++] = (char)('0' + octet % 10);
        out[size++] = shift ? '.' : '\0';
    }
    return size - 1;
}

/* network._truncate after its dotted-quad case, for ``text`` (NUL-terminated) with a ':',
 * written into ``out``: its length; IPV6_NONE when the address is not kept (None), or
 * IPV6_PYTHON when the Python function must answer. */
#define IPV6_TEXT_MAX (INET6_ADDRSTRLEN + 8) /* room for "::ffff:" and a dotted quad */
enum { IPV6_NONE = 0, IPV6_PYTHON = -1 };

static int
ipv6_truncated_write(const IpTruncator *self, const char *text, char out[IPV6_TEXT_MAX])
{
    unsigned char bytes[16];
    if (inet_pton(AF_INET6, text, bytes) != 1) {
        return IPV6_NONE;
    }
    uint128 number = 0;
    for (int i = 0; i < 16; i++) {
        number = (number << 8) | bytes[i];
    }
    if ((number >> 32) == 0xFFFF) { /* ::ffff:0:0/96, IPv4-mapped */
        static const char mapped[] = "::ffff:";
        int size = ipv4_write((uint32_t)number, self->ipv4_bits, out + sizeof mapped - 1);
        if (size == 0) {
            return IPV6_NONE;
        }
        memcpy(out, mapped, sizeof mapped - 1);
        return size + (int)sizeof mapped - 1;
    }
    if (self->ipv6_bits == 0) {
        return IPV6_NONE;
    }
    int prefix = self->ipv6_bits;
    for (Py_ssize_t i = 0; i < self->embeddings; i++) {
        const Embedding *embedding = &self->embedding[i];
        int shift = 128 - embedding->length;
        if ((number >> shift) == (embedding->network >> shift)) {
            int limit = embedding->offset + self->ipv4_bits;
            prefix = limit < prefix ? limit : prefix;
            break;
        }
    }
    uint128 masked = number & prefix_mask(prefix, 128);
    if ((masked >> 32) == 0 && masked > 1) {
        return IPV6_PYTHON; /* inet_ntop writes a dotted quad here: _ipv6_text does not */
    }
    for (int i = 15; i >= 0; i--) {
        bytes[i] = (unsigned char)(masked & 0xFF);
        masked >>= 8;
    }
    if (inet_ntop(AF_INET6, bytes, out, IPV6_TEXT_MAX) == NULL) {
        return IPV6_PYTHON;
    }
    return (int)strlen(out);
}

/* network._truncate on ``size`` ASCII characters at ``text`` (not NUL-terminated),
 * written into ``out``: its length; IPV6_NONE when nothing is kept (None), or
 * IPV6_PYTHON when the Python function must answer. A dotted quad keeps its prefix; any
 * other text with a ':' is read as IPv6; anything else is not an address. */
static int
ip_text_truncated_write(const IpTruncator *self, const char *text, size_t size,
                        char out[IPV6_TEXT_MAX])
{
    if (size > MAX_IP_TEXT) {
        return IPV6_NONE;
    }
    int64_t number = dotted_quad(text, (Py_ssize_t)size);
    if (number >= 0) {
        return ipv4_write((uint32_t)number, self->ipv4_bits, out);
    }
    if (memchr(text, ':', size) == NULL) {
        return IPV6_NONE;
    }
    if (memchr(text, '\0', size) != NULL) {
        return IPV6_PYTHON; /* an embedded NUL is the Python code's case */
    }
    char address[MAX_IP_TEXT + 1]; /* inet_pton reads a C string */
    memcpy(address, text, size);
    address[size] = '\0';
    return ipv6_truncated_write(self, address, out);
}

static PyObject *
ip_truncator_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                        PyObject *kwnames)
{
    IpTruncator *self = (IpTruncator *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a truncator takes (value)");
        return NULL;
    }
    PyObject *value = args[0];
    if (PyUnicode_CheckExact(value) && PyUnicode_IS_ASCII(value)) {
        char out[IPV6_TEXT_MAX];
        int size = ip_text_truncated_write(self, (const char *)PyUnicode_1BYTE_DATA(value),
                                           (size_t)PyUnicode_GET_LENGTH(value), out);
        if (size == IPV6_NONE) {
            Py_RETURN_NONE;
        }
        if (size != IPV6_PYTHON) {
            return PyUnicode_FromStringAndSize(out, size);
        }
    }
    return PyObject_CallOneArg(self->fallback, value);
}

static int
ip_truncator_clear(IpTruncator *self)
{
    Py_CLEAR(self->fallback);
    return 0;
}

static int
ip_truncator_traverse(IpTruncator *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fallback);
    return 0;
}

static void
ip_truncator_dealloc(IpTruncator *self)
{
    PyObject_GC_UnTrack(self);
    ip_truncator_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* IpTruncator(ipv4_bits, ipv6_bits, embedding, fallback); embedding: a tuple of
 * (network >> 64, network & (2**64 - 1), prefix length, IPv4 bit offset). */
static PyObject *
ip_truncator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    int ipv4_bits, ipv6_bits;
    PyObject *embedding, *fallback;
    static char *names[] = {"ipv4_bits", "ipv6_bits", "embedding", "fallback", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iiO!O:IpTruncator", names, &ipv4_bits,
                                     &ipv6_bits, &PyTuple_Type, &embedding, &fallback)) {
        return NULL;
    }
    if (ipv4_bits < 0 || ipv4_bits > 32 || ipv6_bits < 0 || ipv6_bits > 128) {
        PyErr_SetString(PyExc_ValueError, "bits must be 0 to 32 (IPv4) and 0 to 128 (IPv6)");
        return NULL;
    }
    if (PyTuple_GET_SIZE(embedding) > MAX_EMBEDDINGS) {
        PyErr_SetString(PyExc_ValueError, "too many embedding networks");
        return NULL;
    }
    IpTruncator *self = (IpTruncator *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = ip_truncator_vectorcall;
    self->ipv4_bits = ipv4_bits;
    self->ipv6_bits = ipv6_bits;
    self->fallback = Py_NewRef(fallback);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(embedding); i++) {
        unsigned long long high, low;
        int length, offset;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(embedding, i), "KKii", &high, &low, &length,
                              &offset)) {
            Py_DECREF(self);
            return NULL;
        }
        if (length < 1 || length > 128 || offset < 0 || offset > 96) {
            PyErr_SetString(PyExc_ValueError, "malformed embedding network");
            Py_DECREF(self);
            return NULL;
        }
        self->embedding[i].network = ((uint128)high << 64) | low;
        self->embedding[i].length = length;
        self->embedding[i].offset = offset;
        self->embeddings = i + 1;
    }
    return (PyObject *)self;
}

static PyTypeObject IpTruncatorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.IpTruncator",
    .tp_doc = "network.uncached_truncator's truncate in C (see above).",
    .tp_basicsize = sizeof(IpTruncator),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = ip_truncator_new,
    .tp_traverse = (traverseproc)ip_truncator_traverse,
    .tp_clear = (inquiry)ip_truncator_clear,
    .tp_dealloc = (destructor)ip_truncator_dealloc,
    .tp_vectorcall_offset = offsetof(IpTruncator, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- CoordinateRounder ------------------------------------------------------------ */

/* geo.round_coordinate with its decimals and limit bound: an exact float or int (not a
 * bool) within [-limit, limit] rounded to ``decimals`` places as Python's round() does it,
 * a negative zero made positive; None for anything else (NaN and infinities included).
 *
 * round(x, d) is the double nearest to the exact binary value of x rounded to d decimals,
 * ties to even. Here, on |x|: the product p = |x| * 10**d and its rounding error e (an
 * fma gives it exactly, so p + e is the exact product); p's fraction decides, and only
 * when it is exactly one half does e (above, below, or none: a true tie, to even). The
 * rounded integer r and 10**d are exact doubles, so the division r / 10**d is the double
 * nearest to the decimal r * 10**-d: what round() reads back from its decimal digits.
 * The extension is compiled without floating-point contraction, so each step rounds
 * once. */
#define MAX_COORDINATE_DECIMALS 6

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    double scale; /* 10 ** decimals, exact */
    int decimals;
    double limit;
} CoordinateRounder;

/* |value| * 10**decimals rounded to a whole number as round() rounds it: exact. */
static double
coordinate_rounded_whole(double value, double scale)
{
    /* On the magnitude (ties to even are symmetric): then whole <= product < 2 * whole
     * or whole == 0, and the fraction is computed exactly. */
    double magnitude = fabs(value);
    double product = magnitude * scale;
    double error = fma(magnitude, scale, -product);
    double whole = floor(product);
    double fraction = product - whole;
    double rounded;
    if (fraction > 0.5 || (fraction == 0.5 && error > 0.0)) {
        rounded = whole + 1.0;
    }
    else if (fraction < 0.5 || error < 0.0) {
        rounded = whole;
    }
    else { /* exactly half way: to the even neighbour */
        rounded = fmod(whole, 2.0) == 0.0 ? whole : whole + 1.0;
    }
    return rounded;
}

static double
coordinate_rounded(double value, double scale)
{
    /* + 0.0: -0.0 becomes 0.0 */
    return copysign(coordinate_rounded_whole(value, scale) / scale, value) + 0.0;
}

static PyObject *
coordinate_rounder_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                              PyObject *kwnames)
{
    CoordinateRounder *self = (CoordinateRounder *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "a coordinate rounder takes (value)");
        return NULL;
    }
    PyObject *value = args[0];
    double number;
    if (PyFloat_CheckExact(value)) {
        number = PyFloat_AS_DOUBLE(value);
    }
    else if (PyLong_CheckExact(value)) {
        int overflow = 0;
        long long whole = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (whole == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (overflow != 0) {
            Py_RETURN_NONE;
        }
        number = (double)whole; /* exact within the limit, which the check below applies */
    }
    else {
        Py_RETURN_NONE;
    }
    if (!(number >= -self->limit && number <= self->limit)) { /* NaN fails both */
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(coordinate_rounded(number, self->scale));
}

/* CoordinateRounder(decimals, limit): decimals 0 to 6, limit a whole number of degrees. */
static PyObject *
coordinate_rounder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    int decimals, limit;
    static char *names[] = {"decimals", "limit", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ii:CoordinateRounder", names, &decimals,
                                     &limit)) {
        return NULL;
    }
    if (decimals < 0 || decimals > MAX_COORDINATE_DECIMALS || limit < 0 || limit > 360) {
        PyErr_SetString(PyExc_ValueError, "decimals must be 0 to 6, and limit 0 to 360");
        return NULL;
    }
    CoordinateRounder *self = (CoordinateRounder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->vectorcall = coordinate_rounder_vectorcall;
    double scale = 1.0;
    for (int i = 0; i < decimals; i++) {
        scale *= 10.0;
    }
    self->scale = scale;
    self->decimals = decimals;
    self->limit = (double)limit;
    return (PyObject *)self;
}

static PyTypeObject CoordinateRounderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.CoordinateRounder",
    .tp_doc = "geo.round_coordinate with its decimals and limit bound, in C (see above).",
    .tp_basicsize = sizeof(CoordinateRounder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = coordinate_rounder_new,
    .tp_vectorcall_offset = offsetof(CoordinateRounder, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- Byte path: selectors ------------------------------------------------------------ */

/* What the row filter's byte path writes a partner's record into: JSON text that is
 * exactly orjson.dumps(select(...), option=OPT_SORT_KEYS), made from the stored JSON
 * text without a Python object per field. A selector takes the byte path only when
 * every step is one it knows (bytes_ready), and a row only when its text is one that
 * json_scan reads to exactly what orjson reads; anything else is BYTES_BAIL and the
 * row goes the object path, whose answer is the reference. */

typedef struct {
    char *data;
    size_t size;
    size_t capacity;
} ByteBuffer;

enum { BYTES_ERROR = -1, BYTES_BAIL = -2 };

/* An object with more members than this is the object path's. */
#define BYTES_MAX_MEMBERS 64

static int
buffer_write(ByteBuffer *buffer, const char *text, size_t size)
{
    if (buffer->size + size > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 1024;
        while (capacity < buffer->size + size) {
            capacity *= 2;
        }
        char *data = PyMem_Realloc(buffer->data, capacity);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        buffer->data = data;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, text, size);
    buffer->size += size;
    return 0;
}

static void
buffer_free(ByteBuffer *buffer)
{
    PyMem_Free(buffer->data);
    buffer->data = NULL;
    buffer->size = buffer->capacity = 0;
}

/* The objects a byte path run needs: orjson's functions, the event's top-level members
 * (a guard reads device.lmt there) and the output. */
typedef struct {
    PyObject *loads;
    PyObject *dumps;
    const Member *event;
    int event_size;
    ByteBuffer *out;
} BytesRun;

static void
release_object(void *object)
{
    Py_DECREF((PyObject *)object);
}

/* An error that the object path would meet and handle too (an Exception) becomes
 * BYTES_BAIL: the row goes that way and gets the filter's answer; anything else is
 * BYTES_ERROR. */
static int
bytes_failed(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return BYTES_BAIL;
    }
    return BYTES_ERROR;
}

/* The value whose text is ``value``, as orjson reads it (what the object path's event
 * holds there): a new reference, or NULL with an error. */
static PyObject *
bytes_parsed(BytesRun *run, Span value)
{
    PyObject *text = PyBytes_FromStringAndSize(value.start, (Py_ssize_t)value.size);
    PyObject *parsed = text == NULL ? NULL : PyObject_CallOneArg(run->loads, text);
    Py_XDECREF(text);
    return parsed;
}

/* orjson.dumps(orjson.loads(value)): a value whose text is not already what orjson
 * writes (an escape, a float, -0). */
static int
bytes_write_canonical(BytesRun *run, Span value)
{
    PyObject *parsed = bytes_parsed(run, value);
    PyObject *dumped = parsed == NULL ? NULL : PyObject_CallOneArg(run->dumps, parsed);
    Py_XDECREF(parsed);
    if (dumped == NULL) {
        return bytes_failed();
    }
    if (!PyBytes_Check(dumped)) {
        Py_DECREF(dumped);
        return BYTES_BAIL; /* not orjson's bytes: the object path serialises */
    }
    int failed = buffer_write(run->out, PyBytes_AS_STRING(dumped),
                              (size_t)PyBytes_GET_SIZE(dumped)) < 0;
    Py_DECREF(dumped);
    return failed ? BYTES_ERROR : 1;
}

/* A kept scalar, as orjson writes it; an object or array is the Python selector's. */
static int
bytes_write_kept(BytesRun *run, Span value)
{
    char first = value.start[0];
    if (first == '{' || first == '[') {
        return BYTES_BAIL;
    }
    int plain;
    if (first == '"') {
        plain = json_plain_string(value);
    }
    else if (first == 't' || first == 'f' || first == 'n') {
        plain = 1;
    }
    else {
        /* A number: an integer as written, but for -0; a float as orjson formats it. */
        plain = memchr(value.start, '.', value.size) == NULL &&
                memchr(value.start, 'e', value.size) == NULL &&
                memchr(value.start, 'E', value.size) == NULL &&
                !(value.size == 2 && memcmp(value.start, "-0", 2) == 0);
    }
    if (!plain) {
        return bytes_write_canonical(run, value);
    }
    return buffer_write(run->out, value.start, value.size) < 0 ? BYTES_ERROR : 1;
}

/* transform._limits_ad_tracking on the event's text: 1 on, 0 off, BYTES_BAIL when the
 * device is not an object (the guard would fail; the object path reports it). */
static int
bytes_limits_ad_tracking(BytesRun *run)
{
    const Span *device = json_member(run->event, run->event_size, "device", 6);
    Member members[BYTES_MAX_MEMBERS];
    int count = device == NULL ? -1 : json_object_members(*device, members, BYTES_MAX_MEMBERS);
    if (count < 0) {
        return BYTES_BAIL;
    }
    const Span *lmt = json_member(members, count, "lmt", 3);
    if (lmt == NULL) {
        return 0;
    }
    /* Off: absent, null, false or the integer 0; anything else is on (fail closed). */
    Span v = *lmt;
    int off = (v.size == 4 && memcmp(v.start, "null", 4) == 0) ||
              (v.size == 5 && memcmp(v.start, "false", 5) == 0) ||
              (v.size == 1 && v.start[0] == '0') || (v.size == 2 && memcmp(v.start, "-0", 2) == 0);
    return !off;
}

/* What a STEP_CACHED step sends, found without Python or the cache where the compute is
 * C already and the value is plain: the lenient KeyedHash (any value: a pseudonym of a
 * string, None for anything else), the IpTruncator (ASCII text) and the
 * CoordinateRounder (a short number). A string written without escapes is its str's
 * UTF-8 between the quotes, the payload's text having come from a str. The JSON text to
 * send goes into ``sent`` (*sent_size bytes): 1; 0 when the compute gives None (the
 * field is left out); -1 when the cache and the Python call must answer. */
#define NATIVE_SENT_MAX (2 * SHA256_DIGEST + 2)

/* The number a JSON number's text reads as, where reading it is exact and quick: at most
 * 15 digits and no exponent. Its digits and its power of ten are then exact doubles, so
 * one division rounds their quotient as a correct parser (orjson's) rounds the text.
 * 1 read, 0 for any other text (the cache's). */
#define SHORT_NUMBER_DIGITS 15

static int
json_short_number(Span value, double *number)
{
    static const double powers[SHORT_NUMBER_DIGITS + 1] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    const char *c = value.start, *end = value.start + value.size;
    int negative = c < end && *c == '-';
    uint64_t digits_value = 0;
    int digits = 0, decimals = 0, point = 0;
    for (c += negative; c < end; c++) {
        if (*c >= '0' && *c <= '9') {
            if (++digits > SHORT_NUMBER_DIGITS) {
                return 0;
            }
            digits_value = digits_value * 10 + (uint64_t)(*c - '0');
            decimals += point;
        }
        else if (*c == '.' && !point) {
            point = 1;
        }
        else {
            return 0; /* an exponent; a string or a literal at the first character */
        }
    }
    if (digits == 0) {
        return 0;
    }
    double magnitude = (double)digits_value / powers[decimals];
    *number = negative ? -magnitude : magnitude;
    return 1;
}

/* A CoordinateRounder's result for a coordinate's text, written as orjson writes that
 * float. The result is R / 10**d for a whole R below 10**9; the shortest digits that
 * read back as it (what orjson writes) are R's own, since a double tells apart any two
 * decimals of 15 significant digits or fewer. orjson writes them without an exponent
 * from 1e-5 to 1e16; below 1e-4 the cache answers, to be sure. */
static int
bytes_coordinate(const CoordinateRounder *self, Span value, char sent[NATIVE_SENT_MAX],
                 size_t *sent_size)
{
    double number;
    if (!json_short_number(value, &number)) {
        return -1;
    }
    if (!(number >= -self->limit && number <= self->limit)) {
        return 0; /* None: the field is left out */
    }
    double whole = coordinate_rounded_whole(number, self->scale);
    if (whole != 0.0 && whole / self->scale < 1e-4) {
        return -1;
    }
    uint64_t rounded = (uint64_t)whole, scale = (uint64_t)self->scale;
    uint64_t integer = rounded / scale, fraction = rounded % scale;
    char integer_digits[24];
    int integer_size = 0;
    do {
        integer_digits[integer_size++] = (char)('0' + integer % 10);
        integer /= 10;
    } while (integer != 0);
    size_t size = 0;
    if (number < 0.0 && rounded != 0) {
        sent[size++] = '-'; /* a coordinate rounded to zero loses its sign */
    }
    while (integer_size > 0) {
        sent[size++] = integer_digits[--integer_size];
    }
    sent[size++] = '.';
    char fraction_digits[MAX_COORDINATE_DECIMALS];
    int used = self->decimals;
    for (int i = self->decimals - 1; i >= 0; i--) {
        fraction_digits[i] = (char)('0' + fraction % 10);
        fraction /= 10;
    }
    while (used > 0 && fraction_digits[used - 1] == '0') {
        used--;
    }
    if (used == 0) {
        sent[size++] = '0'; /* a whole number: 65.0 */
    }
    memcpy(sent + size, fraction_digits, (size_t)used);
    *sent_size = size + (size_t)used;
    return 1;
}

_Static_assert(IPV6_TEXT_MAX + 2 <= NATIVE_SENT_MAX, "an address and its quotes fit");

/* Only ASCII: the text of a str the truncator's C call reads (other text is UTF-8). */
static int
ascii(const char *text, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if ((unsigned char)text[i] >= 0x80) {
            return 0;
        }
    }
    return 1;
}

static int
bytes_native_compute(PyObject *compute, Span value, char sent[NATIVE_SENT_MAX], size_t *sent_size)
{
    if (Py_IS_TYPE(compute, &CoordinateRounderType)) {
        return bytes_coordinate((const CoordinateRounder *)compute, value, sent, sent_size);
    }
    int is_string = value.start[0] == '"';
    int plain = json_plain_string(value);
    const char *text = value.start + 1;
    size_t size = value.size - 2; /* between the quotes, when a string */
    if (Py_IS_TYPE(compute, &KeyedHashType) && ((KeyedHash *)compute)->lenient) {
        if (!is_string || size == 0) {
            return 0;
        }
        if (!plain) {
            return -1;
        }
        sent[0] = '"';
        keyed_hash_hex((KeyedHash *)compute, text, size, sent + 1);
        sent[NATIVE_SENT_MAX - 1] = '"';
        *sent_size = NATIVE_SENT_MAX;
        return 1;
    }
    if (Py_IS_TYPE(compute, &IpTruncatorType) && is_string && plain && ascii(text, size)) {
        /* The truncator's C call on the same characters. */
        int written = ip_text_truncated_write((const IpTruncator *)compute, text, size,
                                              sent + 1);
        if (written <= 0) {
            return written; /* IPV6_NONE is 0: left out; IPV6_PYTHON is -1 */
        }
        sent[0] = '"';
        sent[written + 1] = '"';
        *sent_size = (size_t)written + 2;
        return 1;
    }
    return -1;
}

/* Remember what a miss sends for ``value`` (``size`` bytes at ``sent``, or
 * BYTE_TABLE_REMOVED for nothing) and write it: 1 written, 0 left out. */
static int
bytes_cached_sent(BytesRun *run, ByteGenerations *table, Span value, uint64_t hash,
                  const char *sent, uint32_t size)
{
    if (byte_generations_put(table, value.start, value.size, hash, sent, size) < 0 ||
        (size != BYTE_TABLE_REMOVED && buffer_write(run->out, sent, size) < 0)) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return BYTES_ERROR;
    }
    return size != BYTE_TABLE_REMOVED;
}

/* A STEP_CACHED step's value: what CachedTransform gives (compute(value), None leaving
 * the field out), as JSON, remembered per value text. 1 written, 0 left out. */
static int
bytes_write_cached(BytesRun *run, Step *step, Span value)
{
    if (step->guard != NULL) {
        int limited = bytes_limits_ad_tracking(run);
        if (limited != 0) {
            return limited == 1 ? 0 : limited;
        }
    }
    /* A compute done in C costs less than looking its result up: a build's identifiers
     * and addresses are mostly new to the cache, whose lookups miss the CPU's caches. */
    char native[NATIVE_SENT_MAX];
    size_t native_size = 0;
    int computed = bytes_native_compute(step->compute, value, native, &native_size);
    if (computed == 0) {
        return 0;
    }
    if (computed == 1) {
        return buffer_write(run->out, native, native_size) < 0 ? BYTES_ERROR : 1;
    }
    ByteGenerations *table = text_cache_tables((TextCache *)step->text_cache);
    if (table == NULL) {
        return BYTES_ERROR;
    }
    uint64_t hash = byte_hash(value.start, value.size, bytes_seed);
    ByteBlobHeader *found = byte_generations_get(table, value.start, value.size, hash);
    if (found != NULL) {
        if (found->value_size == BYTE_TABLE_REMOVED) {
            return 0;
        }
        return buffer_write(run->out, byte_blob_value(found), found->value_size) < 0 ? BYTES_ERROR
                                                                                   : 1;
    }
    /* The value as orjson reads it, then what the transform sends for it. Its result
     * depends on the value alone, whatever its type (CachedTransform.miss and .other
     * both give compute(value)), so it can be remembered by the value's text. */
    PyObject *parsed = bytes_parsed(run, value);
    PyObject *result = parsed == NULL ? NULL : PyObject_CallOneArg(step->compute, parsed);
    Py_XDECREF(parsed);
    if (result == NULL) {
        return bytes_failed();
    }
    if (result == Py_None) {
        Py_DECREF(result);
        return bytes_cached_sent(run, table, value, hash, NULL, BYTE_TABLE_REMOVED);
    }
    if (!PyUnicode_CheckExact(result) && !PyLong_CheckExact(result) &&
        !PyFloat_CheckExact(result) && !PyBool_Check(result)) {
        Py_DECREF(result);
        return BYTES_BAIL; /* not a scalar: the Python selector copies it */
    }
    PyObject *dumped = PyObject_CallOneArg(run->dumps, result);
    Py_DECREF(result);
    if (dumped == NULL) {
        return bytes_failed();
    }
    if (!PyBytes_Check(dumped) || PyBytes_GET_SIZE(dumped) >= BYTE_TABLE_REMOVED) {
        Py_DECREF(dumped);
        return BYTES_BAIL;
    }
    int written = bytes_cached_sent(run, table, value, hash, PyBytes_AS_STRING(dumped),
                                    (uint32_t)PyBytes_GET_SIZE(dumped));
    Py_DECREF(dumped);
    return written;
}

static int
is_limits_ad_tracking(PyObject *guard)
{
    return PyCFunction_Check(guard) &&
           PyCFunction_GET_FUNCTION(guard) == (PyCFunction)speedups_limits_ad_tracking;
}

/* Can the byte path take this selector (and its children)? Each step must be one it
 * knows, each key plain text in strictly ascending order: the order orjson's
 * OPT_SORT_KEYS writes, and the order the selector builds its dict in. */
static int
selector_bytes_ready(Selector *self)
{
    if (self->bytes_ready != 0) {
        return self->bytes_ready;
    }
    int ready = 1;
    for (Py_ssize_t i = 0; i < self->size && ready == 1; i++) {
        Step *step = &self->steps[i];
        step->key_text = PyUnicode_AsUTF8AndSize(step->key, &step->key_size);
        if (step->key_text == NULL) {
            PyErr_Clear();
            ready = -1;
            break;
        }
        for (Py_ssize_t c = 0; c < step->key_size; c++) {
            unsigned char character = (unsigned char)step->key_text[c];
            if (character < 0x20 || character == '"' || character == '\\') {
                ready = -1;
            }
        }
        if (i > 0) {
            Step *before = &self->steps[i - 1];
            Py_ssize_t common = before->key_size < step->key_size ? before->key_size
                                                                   : step->key_size;
            int order = memcmp(before->key_text, step->key_text, (size_t)common);
            if (order > 0 || (order == 0 && before->key_size >= step->key_size)) {
                ready = -1;
            }
        }
        switch (step->kind) {
        case STEP_KEEP:
        case STEP_REMOVE:
            break;
        case STEP_CACHED:
            if (step->compute == NULL || step->text_cache == NULL ||
                (step->guard != NULL && !is_limits_ad_tracking(step->guard))) {
                ready = -1;
            }
            break;
        case STEP_CALL:
            if (!Py_IS_TYPE(step->call, &SelectorType) ||
                selector_bytes_ready((Selector *)step->call) != 1) {
                ready = -1;
            }
            break;
        default:
            ready = -1;
        }
    }
    self->bytes_ready = ready;
    return ready;
}

/* selector_select on an object's members, written as JSON: 1 written, 0 when nothing
 * is kept (REMOVE: nothing written), BYTES_BAIL or BYTES_ERROR. A missing key is left
 * out, whatever its step, as allowlist._select does. */
static int
selector_write(Selector *self, const Member *members, int count, BytesRun *run)
{
    ByteBuffer *out = run->out;
    size_t start = out->size;
    int written = 0;
    for (Py_ssize_t i = 0; i < self->size; i++) {
        Step *step = &self->steps[i];
        if (step->kind == STEP_REMOVE) {
            continue;
        }
        const Span *value = json_member(members, count, step->key_text, (size_t)step->key_size);
        if (value == NULL) {
            continue;
        }
        size_t mark = out->size;
        if (buffer_write(out, written ? ",\"" : "{\"", 2) < 0 ||
            buffer_write(out, step->key_text, (size_t)step->key_size) < 0 ||
            buffer_write(out, "\":", 2) < 0) {
            return BYTES_ERROR;
        }
        int kept;
        if (step->kind == STEP_KEEP) {
            kept = bytes_write_kept(run, *value);
        }
        else if (step->kind == STEP_CACHED) {
            kept = bytes_write_cached(run, step, *value);
        }
        else {
            /* Not an object: nothing below it can be kept (allowlist._select). */
            kept = 0;
            if (value->start[0] == '{') {
                Member children[BYTES_MAX_MEMBERS];
                int size = json_object_members(*value, children, BYTES_MAX_MEMBERS);
                if (size < 0) {
                    return BYTES_BAIL; /* too many members, an escaped key */
                }
                kept = selector_write((Selector *)step->call, children, size, run);
            }
        }
        if (kept < 0) {
            return kept;
        }
        if (kept == 0) {
            out->size = mark;
            continue;
        }
        written = 1;
    }
    if (!written) {
        out->size = start;
        return 0;
    }
    return buffer_write(out, "}", 1) < 0 ? BYTES_ERROR : 1;
}

/* --- Byte path: rows ----------------------------------------------------------------- */

/* A row whose text json_scan reads, whose signal key is known and whose route's
 * minimiser is a byte-ready selector is filtered without parsing it into objects: the
 * signal key is found by the text of what signals.signal_key reads (its fingerprint,
 * learnt from the object path's key for the same text), the route as the object path
 * finds it, and the record is written by selector_write. Any other row goes the object
 * path. tests/privacy/test_bytes_path.py holds both to the Python RowFilter, with rows
 * in every written form of JSON, mutated text and each signal the key reads. */

#define FINGERPRINT_MAX_BYTES 4096
/* As many signal keys as the filter keeps routes for, in at most 16 MB. */
#define FINGERPRINT_LIMIT 100000
#define FINGERPRINT_BYTES (16 * 1024 * 1024)

static int
fingerprint_add(ByteBuffer *fingerprint, char tag, const Span *value)
{
    uint32_t size = value == NULL ? UINT32_MAX : (uint32_t)value->size;
    if (buffer_write(fingerprint, &tag, 1) < 0 ||
        buffer_write(fingerprint, (const char *)&size, sizeof size) < 0) {
        return -1;
    }
    return value == NULL ? 0 : buffer_write(fingerprint, value->start, value->size);
}

/* The text of everything signals.signal_key reads (consent; geo.country and
 * geo.region; device.lmt, device.atts and whether device.ifa is null, "" or another
 * string), so that two events with the same fingerprint have the same signal key.
 * 0, BYTES_BAIL or BYTES_ERROR. */
static int
signals_fingerprint(ByteBuffer *fingerprint, const Member *event, int count)
{
    static const Span no_string = {"\"\"", 2}, some_string = {"\"?\"", 3};
    const Span *geo = json_member(event, count, "geo", 3);
    const Span *device = json_member(event, count, "device", 6);
    Member members[BYTES_MAX_MEMBERS];
    fingerprint->size = 0;
    if (fingerprint_add(fingerprint, 'C', json_member(event, count, "consent", 7)) < 0) {
        return BYTES_ERROR;
    }
    if (geo != NULL && geo->start[0] == '{') {
        int size = json_object_members(*geo, members, BYTES_MAX_MEMBERS);
        if (size < 0) {
            return BYTES_BAIL;
        }
        if (fingerprint_add(fingerprint, 'c', json_member(members, size, "country", 7)) < 0 ||
            fingerprint_add(fingerprint, 'r', json_member(members, size, "region", 6)) < 0) {
            return BYTES_ERROR;
        }
    }
    else if (fingerprint_add(fingerprint, 'G', geo) < 0) {
        return BYTES_ERROR;
    }
    if (device != NULL && device->start[0] == '{') {
        int size = json_object_members(*device, members, BYTES_MAX_MEMBERS);
        if (size < 0) {
            return BYTES_BAIL;
        }
        const Span *ifa = json_member(members, size, "ifa", 3);
        if (ifa != NULL && ifa->start[0] == '"') {
            ifa = ifa->size == 2 ? &no_string : &some_string;
        }
        if (fingerprint_add(fingerprint, 'l', json_member(members, size, "lmt", 3)) < 0 ||
            fingerprint_add(fingerprint, 'a', json_member(members, size, "atts", 4)) < 0 ||
            fingerprint_add(fingerprint, 'i', ifa) < 0) {
            return BYTES_ERROR;
        }
    }
    else if (fingerprint_add(fingerprint, 'D', device) < 0) {
        return BYTES_ERROR;
    }
    return fingerprint->size > FINGERPRINT_MAX_BYTES ? BYTES_BAIL : 0;
}

/* --- RowFilter ---------------------------------------------------------------------- */

/* gateway.privacy.rows.RowFilter in C: stored rows (payload JSON, tag) parsed, filtered
 * and serialised one after another, with no interpreter between them. The filter's own
 * route (filter.filter_with_result's first lines) is followed here; any other event goes
 * to filter_with_result itself, so every decision is the filter's. See rows.py for the
 * contract; tests/privacy/test_rows.py compares both versions. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *policy_dict; /* the policy's __dict__, where the filter keeps its routes */
    PyObject *routes_name;
    PyObject *signal_key;
    PyObject *slow;        /* filter_with_result(event, policy) */
    PyObject *policy;
    PyObject *loads;
    PyObject *dumps;
    PyObject *option;      /* dumps(record, option=option) */
    PyObject *option_names;
    PyObject *unspecified; /* the reason counted when a drop has none */
    /* The byte path (see above): on when loads and dumps are orjson's and every line
     * ends in a newline; the signal key per fingerprint; the fingerprint to learn from
     * the object path (learn set), and the line being written. */
    int bytes_path;
    ByteTable *keys; /* fingerprint -> signal key, and its route (extra) while stamp is */
    PyObject *routes_seen;      /* the policy's routes when last looked at */
    uint64_t routes_generation; /* changes with them; 0 never stamps a route */
    int learn;
    uint64_t learn_hash;
    ByteBuffer fingerprint;
    ByteBuffer out;
    Py_ssize_t bytes_rows; /* rows the byte path took, for tests and benchmarks */
    /* In a call: the byte path's buffers and learn state are the call's, and a
     * call can give the interpreter to another thread (loads, the object path). */
    int busy;
} RowFilter;

static PyObject *s_decision, *s_eligible, *s_reason, *s_audit, *one;

/* counts[key] += 1 */
static int
count_one(PyObject *counts, PyObject *key)
{
    PyObject *count = PyDict_GetItemWithError(counts, key);
    if (count == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        return PyDict_SetItem(counts, key, one);
    }
    PyObject *more = PyNumber_Add(count, one);
    if (more == NULL) {
        return -1;
    }
    int failed = PyDict_SetItem(counts, key, more);
    Py_DECREF(more);
    return failed;
}

/* (result, record) for ``event`` as filter_with_result gives them: new references. */
static int
row_filter_event(RowFilter *self, PyObject *event, PyObject **result, PyObject **record)
{
    if (PyDict_CheckExact(event)) {
        /* Held: a fallback signal_key runs Python code. */
        PyObject *routes = get_item(self->policy_dict, self->routes_name);
        PyObject *key = routes == NULL ? NULL : PyObject_CallOneArg(self->signal_key, event);
        if (self->learn && key != NULL && PyTuple_CheckExact(key) &&
            byte_table_put(self->keys, self->fingerprint.data, self->fingerprint.size,
                           self->learn_hash, NULL, 0, Py_NewRef(key), NULL) < 0) {
            Py_DECREF(key);
            Py_DECREF(routes);
            PyErr_NoMemory();
            return -1;
        }
        self->learn = 0;
        PyObject *route = key == NULL ? NULL : PyDict_GetItemWithError(routes, key);
        Py_XINCREF(route);
        Py_XDECREF(key);
        Py_XDECREF(routes);
        if (route != NULL && PyTuple_CheckExact(route) && PyTuple_GET_SIZE(route) == 2) {
            PyObject *minimise = PyTuple_GET_ITEM(route, 0);
            PyObject *found = PyTuple_GET_ITEM(route, 1);
            /* route is held: the routes may start over while minimise runs. */
            PyObject *kept = minimise == Py_None ? Py_NewRef(Py_None)
                                                 : PyObject_CallOneArg(minimise, event);
            if (kept != NULL) {
                *result = Py_NewRef(found);
                *record = kept;
                Py_DECREF(route);
                return 0;
            }
        }
        Py_XDECREF(route);
        /* No route, an unreadable key, a failed minimise: the filter's whole way, which
         * reports and handles each as the filter does (filter_with_result catches
         * Exception there; anything else goes on up). */
        if (PyErr_Occurred()) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                return -1;
            }
            PyErr_Clear();
        }
    }
    PyObject *args[2] = {event, self->policy};
    PyObject *pair = PyObject_Vectorcall(self->slow, args, 2, NULL);
    if (pair == NULL) {
        return -1;
    }
    if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2) {
        Py_DECREF(pair);
        PyErr_SetString(PyExc_TypeError, "the filter must give (result, record)");
        return -1;
    }
    *result = Py_NewRef(PyTuple_GET_ITEM(pair, 0));
    *record = Py_NewRef(PyTuple_GET_ITEM(pair, 1));
    Py_DECREF(pair);
    return 0;
}

/* The drop reason of ``result`` when it must not be sent (a new reference), NULL with no
 * error when it may be, NULL with an error on failure. */
static PyObject *
row_drop_reason(RowFilter *self, PyObject *result, PyObject *record)
{
    PyObject *decision = PyObject_GetAttr(result, s_decision);
    if (decision == NULL) {
        return NULL;
    }
    if (record != Py_None) {
        PyObject *eligible = PyObject_GetAttr(decision, s_eligible);
        int truth = eligible == NULL ? -1 : PyObject_IsTrue(eligible);
        Py_XDECREF(eligible);
        if (truth != 0) {
            Py_DECREF(decision);
            return NULL; /* sent, or an error */
        }
    }
    PyObject *reason = PyObject_GetAttr(decision, s_reason);
    Py_DECREF(decision);
    if (reason == NULL) {
        return NULL;
    }
    int truth = PyObject_IsTrue(reason);
    if (truth < 0) {
        Py_DECREF(reason);
        return NULL;
    }
    if (!truth) {
        Py_SETREF(reason, Py_NewRef(self->unspecified));
    }
    return reason;
}

/* What the byte path reads of a route, made once per known fingerprint: (minimise, the
 * engine's result, the drop reason or None, the audit keys or None). Reading them from
 * the result at every row cost a tenth of a build: tens of thousands of results lie
 * scattered in memory, and each attribute is a lookup in a cold dict. */
static PyObject *
route_view(RowFilter *self, PyObject *route)
{
    PyObject *minimise = PyTuple_GET_ITEM(route, 0), *result = PyTuple_GET_ITEM(route, 1);
    /* As row_drop_reason asks it for a row: no record when dropped, one when minimised. */
    PyObject *reason = row_drop_reason(self, result, minimise == Py_None ? Py_None : Py_True);
    if (reason == NULL && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *audit = reason == NULL ? PyObject_GetAttr(result, s_audit) : Py_NewRef(Py_None);
    PyObject *view = audit == NULL ? NULL
                                   : PyTuple_Pack(4, minimise, result,
                                                  reason == NULL ? Py_None : reason, audit);
    Py_XDECREF(reason);
    Py_XDECREF(audit);
    return view;
}

/* The route_view of a known fingerprint's route (a new reference), or NULL (none yet, or
 * an error). Remembered beside its key while the policy keeps the same routes: a route
 * depends only on the key and the policy, and looking it up by key hashes and compares
 * the consent strings of the key again. */
static PyObject *
row_bytes_view(RowFilter *self, ByteBlobHeader *known)
{
    PyObject *routes = get_item(self->policy_dict, self->routes_name);
    if (routes == NULL) {
        return NULL;
    }
    if (routes != self->routes_seen) {
        Py_XSETREF(self->routes_seen, Py_NewRef(routes));
        self->routes_generation++;
    }
    if (known->extra != NULL && known->stamp == self->routes_generation) {
        Py_DECREF(routes);
        return Py_NewRef((PyObject *)known->extra);
    }
    PyObject *route = PyDict_GetItemWithError(routes, (PyObject *)known->object);
    Py_DECREF(routes);
    if (route == NULL || !PyTuple_CheckExact(route) || PyTuple_GET_SIZE(route) != 2) {
        return NULL;
    }
    PyObject *view = route_view(self, route);
    if (view == NULL) {
        return NULL;
    }
    Py_XSETREF(known->extra, Py_NewRef(view));
    known->stamp = self->routes_generation;
    return view;
}

/* row_bytes after a step that gave nothing: 0 (the object path takes the row, meeting
 * any Exception again and handling it as it does), -1 for any other error. */
static int
row_bytes_declined(void)
{
    return PyErr_Occurred() && bytes_failed() == BYTES_ERROR ? -1 : 0;
}

/* The row's route_view and line by the byte path: 1 when it took the row (line NULL for
 * an event not sent), 0 when the row must go the object path, -1 on an error. */
static int
row_bytes(RowFilter *self, PyObject *payload, PyObject **view, PyObject **line)
{
    Py_ssize_t size;
    const char *text = PyUnicode_CheckExact(payload) ? PyUnicode_AsUTF8AndSize(payload, &size)
                                                     : NULL;
    if (text == NULL) {
        /* Not text, or text with lone surrogates: orjson's to judge. */
        return row_bytes_declined();
    }
    Member event[BYTES_MAX_MEMBERS];
    int count = json_document_members(text, (size_t)size, event, BYTES_MAX_MEMBERS);
    if (count < 0) {
        return 0;
    }
    int state = signals_fingerprint(&self->fingerprint, event, count);
    if (state != 0) {
        return state == BYTES_BAIL ? 0 : -1;
    }
    if (self->keys == NULL) {
        ByteTable *keys = PyMem_Calloc(1, sizeof(ByteTable));
        if (keys == NULL ||
            byte_table_init(keys, FINGERPRINT_LIMIT, FINGERPRINT_BYTES, release_object) < 0) {
            PyMem_Free(keys);
            PyErr_NoMemory();
            return -1;
        }
        self->keys = keys;
    }
    uint64_t hash = byte_hash(self->fingerprint.data, self->fingerprint.size, bytes_seed);
    ByteBlobHeader *known =
        byte_table_get(self->keys, self->fingerprint.data, self->fingerprint.size, hash);
    if (known == NULL) {
        self->learn = 1; /* from the key the object path computes for this event */
        self->learn_hash = hash;
        return 0;
    }
    PyObject *known_view = row_bytes_view(self, known);
    if (known_view == NULL) {
        return row_bytes_declined();
    }
    PyObject *minimise = PyTuple_GET_ITEM(known_view, 0);
    int kept = BYTES_BAIL;
    if (minimise == Py_None) {
        kept = 0; /* dropped */
    }
    else if (Py_IS_TYPE(minimise, &MinimiserType)) {
        PyObject *select = ((Minimiser *)minimise)->select;
        if (Py_IS_TYPE(select, &SelectorType) && selector_bytes_ready((Selector *)select) == 1) {
            BytesRun run = {self->loads, self->dumps, event, count, &self->out};
            self->out.size = 0;
            kept = selector_write((Selector *)select, event, count, &run);
            if (kept == 0 && buffer_write(&self->out, "{}", 2) < 0) {
                kept = BYTES_ERROR;
            }
            else if (kept >= 0) {
                kept = buffer_write(&self->out, "\n", 1) < 0 ? BYTES_ERROR : 1;
            }
        }
    }
    if (kept == 1) {
        *line = PyBytes_FromStringAndSize(self->out.data, (Py_ssize_t)self->out.size);
        if (*line == NULL) {
            kept = BYTES_ERROR;
        }
    }
    if (kept >= 0) {
        *view = Py_NewRef(known_view);
    }
    Py_DECREF(known_view);
    return kept >= 0 ? 1 : (kept == BYTES_BAIL ? 0 : -1);
}

static PyObject *row_filter_run(RowFilter *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames);

/* One call at a time: a second thread (or a call from within the object path) is
 * refused, never given the first one's half-written line. */
static PyObject *
row_filter_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                      PyObject *kwnames)
{
    RowFilter *self = (RowFilter *)callable;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this row filter is in use by another call");
        return NULL;
    }
    self->busy = 1;
    PyObject *result = row_filter_run(self, args, nargsf, kwnames);
    self->busy = 0;
    return result;
}

static PyObject *
row_filter_run(RowFilter *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 8 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError,
                        "a row filter takes (rows, start, lines, dropped, audits, tags, "
                        "records_left, bytes_left)");
        return NULL;
    }
    PyObject *rows = args[0], *lines = args[2], *dropped = args[3], *audits = args[4],
             *tags = args[5];
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    Py_ssize_t records_left = PyLong_AsSsize_t(args[6]);
    Py_ssize_t bytes_left = PyLong_AsSsize_t(args[7]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_CheckExact(rows) || !PyList_CheckExact(lines) || !PyDict_CheckExact(dropped) ||
        !PyDict_CheckExact(audits) || !PyDict_CheckExact(tags)) {
        PyErr_SetString(PyExc_TypeError, "rows and lines must be lists, the counts dicts");
        return NULL;
    }
    Py_ssize_t index = start < 0 ? 0 : start;
    Py_ssize_t candidates = 0, added = 0;
    for (; index < PyList_GET_SIZE(rows); index++) {
        PyObject *row = PyList_GET_ITEM(rows, index);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 2) {
            PyErr_SetString(PyExc_TypeError, "a row is (payload, tag)");
            return NULL;
        }
        Py_INCREF(row);
        PyObject *event = NULL, *result = NULL, *record = NULL, *reason = NULL, *line = NULL,
                 *audit = NULL, *view = NULL;
        self->learn = 0;
        int by_bytes = self->bytes_path ? row_bytes(self, PyTuple_GET_ITEM(row, 0), &view,
                                                    &line)
                                        : 0;
        if (by_bytes < 0) {
            goto error;
        }
        if (!by_bytes) {
            event = PyObject_CallOneArg(self->loads, PyTuple_GET_ITEM(row, 0));
            if (event == NULL || row_filter_event(self, event, &result, &record) < 0) {
                goto error;
            }
            reason = row_drop_reason(self, result, record);
        }
        else {
            self->bytes_rows++;
            /* The view's reason is the route's; a row the selector wrote is sent. The
             * result itself is not touched: one cold object per row. */
            record = Py_NewRef(line == NULL ? Py_None : line);
            PyObject *route_reason = PyTuple_GET_ITEM(view, 2);
            reason = route_reason == Py_None ? NULL : Py_NewRef(route_reason);
            audit = Py_NewRef(PyTuple_GET_ITEM(view, 3));
            Py_CLEAR(view);
        }
        if (reason != NULL) {
            if (count_one(dropped, reason) < 0) {
                goto error;
            }
            candidates++;
            goto next;
        }
        if (PyErr_Occurred()) {
            goto error;
        }
        if (line == NULL) {
            PyObject *dump_args[2] = {record, self->option};
            line = PyObject_Vectorcall(self->dumps, dump_args, 1, self->option_names);
            if (line == NULL) {
                goto error;
            }
        }
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "dumps must give bytes");
            goto error;
        }
        Py_ssize_t size = PyBytes_GET_SIZE(line);
        if (records_left <= 0 || size > bytes_left) {
            /* Full: this event is the next part's first, filtered again there. */
            Py_DECREF(row);
            Py_XDECREF(event);
            Py_XDECREF(result);
            Py_DECREF(record);
            Py_DECREF(line);
            Py_XDECREF(audit);
            break;
        }
        if (audit == NULL) {
            audit = PyObject_GetAttr(result, s_audit);
        }
        if (audit == NULL || PyList_Append(lines, line) < 0 || count_one(audits, audit) < 0 ||
            count_one(tags, PyTuple_GET_ITEM(row, 1)) < 0) {
            goto error;
        }
        records_left--;
        bytes_left -= size;
        added += size;
        candidates++;
    next:
        Py_DECREF(row);
        Py_XDECREF(event);
        Py_XDECREF(result);
        Py_DECREF(record);
        Py_XDECREF(reason);
        Py_XDECREF(line);
        Py_XDECREF(audit);
        continue;
    error:
        Py_DECREF(row);
        Py_XDECREF(event);
        Py_XDECREF(result);
        Py_XDECREF(record);
        Py_XDECREF(reason);
        Py_XDECREF(line);
        Py_XDECREF(audit);
        return NULL;
    }
    return Py_BuildValue("(nnn)", index, candidates, added);
}

static int
row_filter_clear(RowFilter *self)
{
    Py_CLEAR(self->policy_dict);
    Py_CLEAR(self->routes_name);
    Py_CLEAR(self->signal_key);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->policy);
    Py_CLEAR(self->loads);
    Py_CLEAR(self->dumps);
    Py_CLEAR(self->option);
    Py_CLEAR(self->option_names);
    Py_CLEAR(self->unspecified);
    Py_CLEAR(self->routes_seen);
    return 0;
}

static int
row_filter_traverse(RowFilter *self, visitproc visit, void *arg)
{
    Py_VISIT(self->policy_dict);
    Py_VISIT(self->routes_name);
    Py_VISIT(self->signal_key);
    Py_VISIT(self->slow);
    Py_VISIT(self->policy);
    Py_VISIT(self->loads);
    Py_VISIT(self->dumps);
    Py_VISIT(self->option);
    Py_VISIT(self->option_names);
    Py_VISIT(self->unspecified);
    Py_VISIT(self->routes_seen);
    return 0;
}

static void
row_filter_dealloc(RowFilter *self)
{
    PyObject_GC_UnTrack(self);
    row_filter_clear(self);
    if (self->keys != NULL) {
        byte_table_free(self->keys);
        PyMem_Free(self->keys);
    }
    buffer_free(&self->fingerprint);
    buffer_free(&self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
row_filter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *policy, *routes_name, *signal_key, *slow, *loads, *dumps, *option, *unspecified;
    int bytes_path = 0;
    static char *names[] = {"policy", "routes_name", "signal_key",  "slow",       "loads",
                            "dumps",  "option",      "unspecified", "bytes_path", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OUOOOOOU|p:RowFilter", names, &policy,
                                     &routes_name, &signal_key, &slow, &loads, &dumps, &option,
                                     &unspecified, &bytes_path)) {
        return NULL;
    }
    PyObject *policy_dict = PyObject_GenericGetDict(policy, NULL);
    if (policy_dict == NULL) {
        return NULL;
    }
    RowFilter *self = (RowFilter *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(policy_dict);
        return NULL;
    }
    self->vectorcall = row_filter_vectorcall;
    self->bytes_path = bytes_path;
    self->policy_dict = policy_dict;
    self->routes_name = Py_NewRef(routes_name);
    self->signal_key = Py_NewRef(signal_key);
    self->slow = Py_NewRef(slow);
    self->policy = Py_NewRef(policy);
    self->loads = Py_NewRef(loads);
    self->dumps = Py_NewRef(dumps);
    self->option = Py_NewRef(option);
    self->unspecified = Py_NewRef(unspecified);
    /* Interned: orjson, for one, knows its keyword arguments by identity. */
    PyObject *option_name = PyUnicode_InternFromString("option");
    self->option_names = option_name == NULL ? NULL : PyTuple_Pack(1, option_name);
    Py_XDECREF(option_name);
    if (self->option_names == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static PyMemberDef row_filter_members[] = {
    {"bytes_rows", T_PYSSIZET, offsetof(RowFilter, bytes_rows), READONLY,
     "How many rows the byte path filtered."},
    {NULL},
};

static PyTypeObject RowFilterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "gateway.privacy._speedups.RowFilter",
    .tp_doc = "rows.RowFilter in C (see above).",
    .tp_basicsize = sizeof(RowFilter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = row_filter_new,
    .tp_members = row_filter_members,
    .tp_traverse = (traverseproc)row_filter_traverse,
    .tp_clear = (inquiry)row_filter_clear,
    .tp_dealloc = (destructor)row_filter_dealloc,
    .tp_vectorcall_offset = offsetof(RowFilter, vectorcall),
    .tp_call = PyVectorcall_Call,
};

/* --- Module ------------------------------------------------------------------------- */

static PyObject *
speedups_sha256_accelerate(PyObject *module, PyObject *flag)
{
    int accelerate = PyObject_IsTrue(flag);
    if (accelerate < 0) {
        return NULL;
    }
    return PyBool_FromLong(sha256_select(accelerate));
}

static PyMethodDef speedups_methods[] = {
    {"signal_key", speedups_signal_key, METH_O,
     "signals.signal_key in C; unusual events go to the Python function."},
    {"set_signal_key_fallback", speedups_set_signal_key_fallback, METH_O,
     "The Python signal_key that answers for unusual events."},
    {"limits_ad_tracking", speedups_limits_ad_tracking, METH_O,
     "transform._limits_ad_tracking in C."},
    {"sha256_accelerate", speedups_sha256_accelerate, METH_O,
     "Whether KeyedHash uses the CPU's SHA extensions (when it has them); "
     "returns whether it now does. On at import."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway.privacy._speedups",
    .m_doc = "Optional C versions of the privacy filter's per-event steps.",
    .m_size = -1,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#define INTERN(target, text)                          \
    if ((target = PyUnicode_InternFromString(text)) == NULL) return NULL;
    INTERN(s_consent, "consent");
    INTERN(s_gdpr, "gdpr");
    INTERN(s_tcf, "tcf");
    INTERN(s_gpp, "gpp");
    INTERN(s_gpp_sid, "gpp_sid");
    INTERN(s_us_privacy, "us_privacy");
    INTERN(s_gpc, "gpc");
    INTERN(s_coppa, "coppa");
    INTERN(s_geo, "geo");
    INTERN(s_country, "country");
    INTERN(s_region, "region");
    INTERN(s_device, "device");
    INTERN(s_lmt, "lmt");
    INTERN(s_atts, "atts");
    INTERN(s_ifa, "ifa");
    INTERN(s_get, "get");
    INTERN(s_decision, "decision");
    INTERN(s_eligible, "eligible");
    INTERN(s_reason, "reason");
    INTERN(s_audit, "audit");
    if ((one = PyLong_FromLong(1)) == NULL) return NULL;
    /* The byte path's tables hash payload text: seeded, so it cannot be made to collide. */
    if (getrandom(&bytes_seed, sizeof bytes_seed, GRND_NONBLOCK) != sizeof bytes_seed) {
        bytes_seed = (uint64_t)(uintptr_t)&bytes_seed ^ (uint64_t)time(NULL);
    }
#undef INTERN
    sha256_select(1);
    if (PyType_Ready(&SelectorType) < 0 || PyType_Ready(&MinimiserType) < 0 ||
        PyType_Ready(&KeyedHashType) < 0 || PyType_Ready(&IpTruncatorType) < 0 ||
        PyType_Ready(&RowFilterType) < 0 || PyType_Ready(&TextCacheType) < 0 ||
        PyType_Ready(&CoordinateRounderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&speedups_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&SelectorType);
    if (PyModule_AddObject(module, "Selector", (PyObject *)&SelectorType) < 0) {
        Py_DECREF(&SelectorType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&MinimiserType);
    if (PyModule_AddObject(module, "Minimiser", (PyObject *)&MinimiserType) < 0) {
        Py_DECREF(&MinimiserType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&KeyedHashType);
    if (PyModule_AddObject(module, "KeyedHash", (PyObject *)&KeyedHashType) < 0) {
        Py_DECREF(&KeyedHashType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&IpTruncatorType);
    if (PyModule_AddObject(module, "IpTruncator", (PyObject *)&IpTruncatorType) < 0) {
        Py_DECREF(&IpTruncatorType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&RowFilterType);
    if (PyModule_AddObject(module, "RowFilter", (PyObject *)&RowFilterType) < 0) {
        Py_DECREF(&RowFilterType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&TextCacheType);
    if (PyModule_AddObject(module, "TextCache", (PyObject *)&TextCacheType) < 0) {
        Py_DECREF(&TextCacheType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&CoordinateRounderType);
    if (PyModule_AddObject(module, "CoordinateRounder", (PyObject *)&CoordinateRounderType) < 0) {
        Py_DECREF(&CoordinateRounderType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
