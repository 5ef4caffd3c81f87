/* Row log-softmax as beam search scores candidates, in float32 and in PyTorch's order of
 * operations: y = ((x - max) - log(sum(exp(x - max)))) + add, where `add` is the running score
 * of the beam (transformers adds it after the log-softmax). The sum of exponentials is
 * accumulated in double, so the result agrees with torch.log_softmax to an ulp or two.
 * Returns 0, or -1 (x left unnormalised) when x holds a NaN or its maximum is not finite.
 */
#ifndef V2T_OPS_LOGSOFTMAX_H
#define V2T_OPS_LOGSOFTMAX_H

#include <stdint.h>

// x: [n], n >= 1, in place
int v2t_log_softmax_add(float *x, int64_t n, float add);
int v2t_log_softmax_add_ref(float *x, int64_t n, float add);

#endif
