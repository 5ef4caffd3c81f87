/* torch.topk(largest=True, sorted=True) and torch.argmax on CPU, tie order included.
 * The helpers below follow the GNU libstdc++ heap, introselect and introsort algorithms that
 * torch's CPU top-k runs (see topk.h); each comment names the std:: step it mirrors. */
#include "topk.h"

#include <math.h>
#include <string.h>

#include "vec8.h"

typedef v2t_topk_item item;

/* torch's comparator for largest=True: NaN first, then larger values. */
static inline int before(item a, item b) { return (isnan(a.value) && !isnan(b.value)) || a.value > b.value; }

static inline void swap_items(item *a, int64_t i, int64_t j)
{
    item t = a[i];
    a[i] = a[j];
    a[j] = t;
}

static inline int64_t floor_log2(int64_t n) { return 63 - __builtin_clzll((unsigned long long)n); }

/* --- heap (std::__push_heap, __adjust_heap, make_heap, sort_heap, __heap_select) --- */

static void push_heap(item *h, int64_t hole, int64_t top, item v)
{
    int64_t parent = (hole - 1) / 2;
    while (hole > top && before(h[parent], v)) {
        h[hole] = h[parent];
        hole = parent;
        parent = (hole - 1) / 2;
    }
    h[hole] = v;
}

static void adjust_heap(item *h, int64_t hole, int64_t len, item v)
{
    const int64_t top = hole;
    int64_t child = hole;
    while (child < (len - 1) / 2) {
        child = 2 * (child + 1);
        if (before(h[child], h[child - 1]))
            child--;
        h[hole] = h[child];
        hole = child;
    }
    if ((len & 1) == 0 && child == (len - 2) / 2) {
        child = 2 * (child + 1);
        h[hole] = h[child - 1];
        hole = child - 1;
    }
    push_heap(h, hole, top, v);
}

static void make_heap(item *h, int64_t len)
{
    if (len < 2)
        return;
    for (int64_t parent = (len - 2) / 2;; parent--) {
        adjust_heap(h, parent, len, h[parent]);
        if (parent == 0)
            return;
    }
}

static void sort_heap(item *h, int64_t len)
{
    while (len > 1) {
        len--;
        item v = h[len];
        h[len] = h[0];
        adjust_heap(h, 0, len, v);
    }
}

/* Keep the `mid` best of a[0, len) in a heap at the front (std::__heap_select). */
static void heap_select(item *a, int64_t mid, int64_t len)
{
    make_heap(a, mid);
    for (int64_t i = mid; i < len; i++) {
        if (before(a[i], a[0])) {
            item v = a[i];
            a[i] = a[0];
            adjust_heap(a, 0, mid, v);
        }
    }
}

/* --- partitioning and insertion sort (std::__move_median_to_first, __unguarded_partition,
 *     __insertion_sort, __unguarded_linear_insert) --- */

static void move_median_to_first(item *a, int64_t result, int64_t x, int64_t y, int64_t z)
{
    if (before(a[x], a[y])) {
        if (before(a[y], a[z]))
            swap_items(a, result, y);
        else if (before(a[x], a[z]))
            swap_items(a, result, z);
        else
            swap_items(a, result, x);
    } else if (before(a[x], a[z])) {
        swap_items(a, result, x);
    } else if (before(a[y], a[z])) {
        swap_items(a, result, z);
    } else {
        swap_items(a, result, y);
    }
}

static int64_t unguarded_partition(item *a, int64_t first, int64_t last, int64_t pivot)
{
    for (;;) {
        while (before(a[first], a[pivot]))
            first++;
        last--;
        while (before(a[pivot], a[last]))
            last--;
        if (!(first < last))
            return first;
        swap_items(a, first, last);
        first++;
    }
}

static int64_t partition_pivot(item *a, int64_t first, int64_t last)
{
    int64_t mid = first + (last - first) / 2;
    move_median_to_first(a, first, first + 1, mid, last - 1);
    return unguarded_partition(a, first + 1, last, first);
}

static void linear_insert(item *a, int64_t last)
{
    item v = a[last];
    int64_t next = last - 1;
    while (before(v, a[next])) {
        a[last] = a[next];
        last = next;
        next--;
    }
    a[last] = v;
}

static void insertion_sort(item *a, int64_t first, int64_t last)
{
    if (first == last)
        return;
    for (int64_t i = first + 1; i != last; i++) {
        if (before(a[i], a[first])) {
            item v = a[i];
            memmove(a + first + 1, a + first, (size_t)(i - first) * sizeof(item));
            a[first] = v;
        } else {
            linear_insert(a, i);
        }
    }
}

/* --- std::sort (introsort, threshold 16, then the final insertion sort) --- */

enum { SORT_THRESHOLD = 16 };

static void introsort_loop(item *a, int64_t first, int64_t last, int64_t depth)
{
    while (last - first > SORT_THRESHOLD) {
        if (depth == 0) {
            heap_select(a + first, last - first, last - first);
            sort_heap(a + first, last - first);
            return;
        }
        depth--;
        int64_t cut = partition_pivot(a, first, last);
        introsort_loop(a, cut, last, depth);
        last = cut;
    }
}

static void sort_range(item *a, int64_t first, int64_t last)
{
    if (first == last)
        return;
    introsort_loop(a, first, last, 2 * floor_log2(last - first));
    if (last - first > SORT_THRESHOLD) {
        insertion_sort(a, first, first + SORT_THRESHOLD);
        for (int64_t i = first + SORT_THRESHOLD; i != last; i++)
            linear_insert(a, i);
    } else {
        insertion_sort(a, first, last);
    }
}

/* --- std::nth_element (introselect) --- */

static void nth_element(item *a, int64_t nth, int64_t n)
{
    int64_t first = 0, last = n;
    if (first == last || nth == last)
        return;
    int64_t depth = 2 * floor_log2(n);
    while (last - first > 3) {
        if (depth == 0) {
            heap_select(a + first, nth + 1 - first, last - first);
            swap_items(a, first, nth);
            return;
        }
        depth--;
        int64_t cut = partition_pivot(a, first, last);
        if (cut <= nth)
            first = cut;
        else
            last = cut;
    }
    insertion_sort(a, first, last);
}

/* std::partial_sort's heap selection streamed over x: the k best sit in a heap h, and an
 * element enters only when it beats the heap top. With skip, blocks of 8 that are all <= the
 * top (no NaN, none larger) are passed over: the top only grows, so none of them could enter. */
static void heap_select_stream(const float *x, int64_t n, int64_t k, item *h, int skip)
{
    for (int64_t i = 0; i < k; i++)
        h[i] = (item){x[i], (int32_t)i};
    make_heap(h, k);
    int64_t i = k;
    if (skip) {
        for (; i + 8 <= n; i += 8) {
            v2t_v8i enters = ~(v2t_load8(x + i) <= v2t_splat8(h[0].value));
            if (!v2t_any8(enters))
                continue;
            for (int64_t j = i; j < i + 8; j++) {
                item v = {x[j], (int32_t)j};
                if (before(v, h[0]))
                    adjust_heap(h, 0, k, v);
            }
        }
    }
    for (; i < n; i++) {
        item v = {x[i], (int32_t)i};
        if (before(v, h[0]))
            adjust_heap(h, 0, k, v);
    }
    sort_heap(h, k);
}

static void topk(const float *x, int64_t n, int64_t k, float *values, int32_t *indices, v2t_topk_item *work,
                 int skip)
{
    item *h = work;
    item small[64];
    if (k * 64 <= n) {
        /* std::partial_sort */
        if (k <= 64)
            h = small;
        heap_select_stream(x, n, k, h, skip);
    } else {
        /* std::nth_element at k-1, then std::sort of the first k-1 pairs */
        for (int64_t i = 0; i < n; i++)
            h[i] = (item){x[i], (int32_t)i};
        nth_element(h, k - 1, n);
        sort_range(h, 0, k - 1);
    }
    for (int64_t i = 0; i < k; i++) {
        values[i] = h[i].value;
        indices[i] = h[i].index;
    }
}

void v2t_topk(const float *x, int64_t n, int64_t k, float *values, int32_t *indices, v2t_topk_item *work)
{
    topk(x, n, k, values, indices, work, 1);
}

void v2t_topk_ref(const float *x, int64_t n, int64_t k, float *values, int32_t *indices, v2t_topk_item *work)
{
    topk(x, n, k, values, indices, work, 0);
}

int64_t v2t_argmax_ref(const float *x, int64_t n)
{
    int64_t best = 0;
    if (isnan(x[0]))
        return 0;
    for (int64_t i = 1; i < n; i++) {
        if (isnan(x[i]))
            return i;
        if (x[i] > x[best])
            best = i;
    }
    return best;
}

int64_t v2t_argmax(const float *x, int64_t n)
{
    /* one vector pass for the maximum and any NaN, then the first index holding it */
    v2t_v8f mx = v2t_splat8(x[0]);
    v2t_v8i nan = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v2t_v8f v = v2t_load8(x + i);
        mx = v2t_select8(v > mx, v, mx);
        nan |= v != v;
    }
    if (v2t_any8(nan))
        return v2t_argmax_ref(x, n);
    float m = mx[0];
    for (int j = 1; j < 8; j++)
        m = mx[j] > m ? mx[j] : m;
    for (; i < n; i++) {
        if (isnan(x[i]))
            return v2t_argmax_ref(x, n);
        m = x[i] > m ? x[i] : m;
    }
    for (i = 0; i < n; i++)
        if (x[i] == m)
            return i;
    return 0; /* unreachable */
}
