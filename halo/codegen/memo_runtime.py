"""C source of the memoization cache used by memoize()d Funcs.

One cache per Func per compiled module (a `static` object: several pipelines
in one library never share or clash). Entries are found by their int64 key;
a lookup pins the entry (reference count) so that eviction, which frees the
least recently used unpinned entries once the cache holds more than
HALO_MEMO_CACHE_BYTES, never frees memory a running call still reads. A
miss computes into a private buffer that becomes an entry only on commit,
after the producer has finished without error: other threads never see
half-computed values. A spin lock (GCC/Clang `__sync` builtins, no pthread
dependency) guards the entry list; the work under it is a few compares.
"""

MEMO_RUNTIME = r"""
#ifndef HALO_MEMO_CACHE_BYTES
#define HALO_MEMO_CACHE_BYTES ((int64_t)256 << 20)
#endif
typedef struct halo_memo_entry {
    struct halo_memo_entry *next;
    int64_t nkey, bytes, last_use;
    int refs, committed;
    void *data;
    int64_t key[1];   /* nkey of them */
} halo_memo_entry;
typedef struct { volatile int lock; halo_memo_entry *head; int64_t bytes, clock; } halo_memo_cache;

static void halo_memo_lock(halo_memo_cache *c) { while (__sync_lock_test_and_set(&c->lock, 1)) { } }
static void halo_memo_unlock(halo_memo_cache *c) { __sync_lock_release(&c->lock); }

static halo_memo_entry *halo_memo_find(halo_memo_cache *c, const int64_t *key, int64_t n,
                                       int64_t bytes) {
    halo_memo_entry *e;
    for (e = c->head; e != NULL; e = e->next)
        if (e->nkey == n && e->bytes == bytes && memcmp(e->key, key, (size_t)n * sizeof *key) == 0)
            return e;
    return NULL;
}

/* The storage for `key`: the cached values (*hit = 1) or a new private buffer. */
static void *halo_memo_acquire(halo_memo_cache *c, const int64_t *key, int64_t n, int64_t count,
                               size_t elem, halo_memo_entry **out, int *hit) {
    halo_memo_entry *e;
    int64_t bytes = count * (int64_t)elem;
    halo_memo_lock(c);
    e = halo_memo_find(c, key, n, bytes);
    if (e != NULL) {
        e->refs++;
        e->last_use = ++c->clock;
        halo_memo_unlock(c);
        *out = e;
        *hit = 1;
        return e->data;
    }
    halo_memo_unlock(c);
    *hit = 0;
    e = (halo_memo_entry *)malloc(sizeof *e + (size_t)n * sizeof *key);
    if (e == NULL) return NULL;
    e->data = halo_malloc(count, elem, 0);
    if (e->data == NULL) { free(e); return NULL; }
    memcpy(e->key, key, (size_t)n * sizeof *key);
    e->next = NULL;
    e->nkey = n;
    e->bytes = bytes;
    e->refs = 1;
    e->committed = 0;
    e->last_use = 0;
    *out = e;
    return e->data;
}

static void halo_memo_free_entry(halo_memo_entry *e) {
    halo_free(e->data);
    free(e);
}

/* Publish a freshly computed entry (unless another thread did first), then
   evict the least recently used unpinned entries while over budget. */
static void halo_memo_commit(halo_memo_cache *c, halo_memo_entry *e) {
    halo_memo_lock(c);
    if (halo_memo_find(c, e->key, e->nkey, e->bytes) == NULL) {
        e->committed = 1;
        e->last_use = ++c->clock;
        e->next = c->head;
        c->head = e;
        c->bytes += e->bytes;
        while (c->bytes > HALO_MEMO_CACHE_BYTES) {
            halo_memo_entry **p, **victim = NULL;
            for (p = &c->head; *p != NULL; p = &(*p)->next)
                if ((*p)->refs == 0 && (victim == NULL || (*p)->last_use < (*victim)->last_use))
                    victim = p;
            if (victim == NULL) break;
            {
                halo_memo_entry *v = *victim;
                *victim = v->next;
                c->bytes -= v->bytes;
                halo_memo_free_entry(v);
            }
        }
    }
    halo_memo_unlock(c);
}

static void halo_memo_release(halo_memo_cache *c, halo_memo_entry *e) {
    int drop;
    halo_memo_lock(c);
    e->refs--;
    drop = !e->committed && e->refs == 0;
    halo_memo_unlock(c);
    if (drop) halo_memo_free_entry(e);
}

/* A 64-bit hash of a CPU tensor's type, shape, strides and contents (rows
   are dense: halo requires a unit innermost stride). */
static int64_t halo_memo_hash_tensor(const DLTensor *t) {
    uint64_t h = 0x9E3779B97F4A7C15ull, idx[32];
    int64_t row, esize = (int64_t)((t->dtype.bits + 7) / 8), n = 1, d;
    int nd = t->ndim;
#define HALO_MIX(v) (h = (h ^ (uint64_t)(v)) * 0xFF51AFD7ED558CCDull, h ^= h >> 32)
    HALO_MIX(t->dtype.code); HALO_MIX(t->dtype.bits); HALO_MIX(nd);
    for (d = 0; d < nd; d++) {
        HALO_MIX(t->shape[d]);
        HALO_MIX(t->strides ? t->strides[d] : 0);
        n *= t->shape[d];
    }
    if (n == 0 || nd > 32) return (int64_t)h;
    row = nd > 0 ? t->shape[nd - 1] * esize : esize;
    memset(idx, 0, sizeof idx);
    for (;;) {
        int64_t off = 0, i;
        const unsigned char *p;
        uint64_t w;
        for (d = 0; d + 1 < nd; d++) {
            int64_t st = t->strides ? t->strides[d] : 1;
            if (!t->strides) { int64_t k; for (k = d + 1; k < nd; k++) st *= t->shape[k]; }
            off += (int64_t)idx[d] * st;
        }
        p = (const unsigned char *)t->data + t->byte_offset + off * esize;
        for (i = 0; i + 8 <= row; i += 8) { memcpy(&w, p + i, 8); HALO_MIX(w); }
        for (; i < row; i++) HALO_MIX(p[i]);
        for (d = nd - 2; d >= 0; d--) {
            if (++idx[d] < (uint64_t)t->shape[d]) break;
            idx[d] = 0;
        }
        if (d < 0) break;
    }
#undef HALO_MIX
    return (int64_t)h;
}
"""
