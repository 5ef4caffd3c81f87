/* Top-k and argmax with the exact tie order of PyTorch's CPU kernels.
 *
 * Beam search keeps the 2*num_beams best (beam, token) candidates with torch.topk(largest=True,
 * sorted=True). On CPU torch copies the row into (value, index) pairs and, comparing values
 * only (NaN counts as the largest), runs std::partial_sort when 64*k <= n, otherwise
 * std::nth_element on the k-th position followed by std::sort of the first k-1 pairs. Neither is
 * stable, so exactly equal values come out in the order the GNU libstdc++ algorithms leave them
 * (heap selection; introselect / introsort with median-of-three pivots and insertion sort
 * below 16 elements). v2t_topk follows the same algorithms step by step, so ties come out in
 * the same order as torch's CPU build (tests/test_generate.py checks it against torch.topk on
 * rows full of ties).
 *
 * Greedy search uses torch.argmax: the first index of the maximum (a NaN counts as the maximum).
 *
 * The fast versions skip blocks of 8 values that cannot enter the heap (all <= its current
 * k-th best) and find the argmax with a vector max pass; the _ref versions look at every
 * value one at a time. Both give identical results.
 */
#ifndef V2T_OPS_TOPK_H
#define V2T_OPS_TOPK_H

#include <stdint.h>

typedef struct v2t_topk_item {
    float value;
    int32_t index;
} v2t_topk_item;

/* x: [n]; values, indices: [k], best first; 1 <= k <= n < 2^31.
 * work: scratch of v2t_topk_work_items(n, k) items (NULL when that is 0). */
void v2t_topk(const float *x, int64_t n, int64_t k, float *values, int32_t *indices, v2t_topk_item *work);
void v2t_topk_ref(const float *x, int64_t n, int64_t k, float *values, int32_t *indices, v2t_topk_item *work);

/* Scratch needed by v2t_topk: n items on the nth_element path (64*k > n), k items on the
 * partial-sort path when k > 64, none otherwise. */
static inline int64_t v2t_topk_work_items(int64_t n, int64_t k) { return k * 64 > n ? n : (k > 64 ? k : 0); }

/* x: [n], n >= 1 -> index of the first maximum (first NaN if any). */
int64_t v2t_argmax(const float *x, int64_t n);
int64_t v2t_argmax_ref(const float *x, int64_t n);

#endif
