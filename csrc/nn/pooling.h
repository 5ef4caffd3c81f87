/* Sentence pooling over encoder states, as sentence-transformers computes it:
 *   mean: sum_t mask[b,t] * h[b,t,:] / max(sum_t mask[b,t], 1e-9)   (all-masked row -> zeros)
 *   cls:  h[b,0,:]
 * and L2 normalisation x / max(||x||, 1e-12) (torch.nn.functional.normalize).
 */
#ifndef V2T_NN_POOLING_H
#define V2T_NN_POOLING_H

#include <stdint.h>

typedef enum v2t_pooling { V2T_POOL_MEAN = 0, V2T_POOL_CLS = 1 } v2t_pooling;

// h: [B, T, D] row-major; mask: [B, T] (0 = padding) or NULL (all ones); out: [B, D]
void v2t_pool(v2t_pooling mode, const float *h, const int32_t *mask, int64_t B, int64_t T, int64_t D, float *out);
void v2t_pool_ref(v2t_pooling mode, const float *h, const int32_t *mask, int64_t B, int64_t T, int64_t D,
                  float *out);

// x: [N, D] row-major, normalised in place
void v2t_l2_normalize(float *x, int64_t N, int64_t D);
void v2t_l2_normalize_ref(float *x, int64_t N, int64_t D);

#endif
