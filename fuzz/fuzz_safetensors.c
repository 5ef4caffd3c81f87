/* Fuzz target: the safetensors reader (header length, JSON header, dtypes, shapes, byte
 * ranges, data section layout), then every tensor read back raw and, for float dtypes and I8
 * (int8 rows with their `.int8_scale`), as f32 with the finiteness check that loading applies. Any input must give V2T_OK or an error
 * with a message; never a crash, an out-of-bounds access, undefined behaviour or a leak. */
#include <string.h>

#include "fuzz_common.h"
#include "core/alloc.h"
#include "core/status.h"
#include "io/safetensors.h"

#define MAX_READ_BYTES (1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    v2t_st *st = NULL;
    if (v2t_st_open(fuzz_as_file(data, size), &st) != V2T_OK) {
        if (st != NULL || v2t_last_error()[0] == '\0')
            abort(); /* a failure leaves no object and always says why */
        return 0;
    }
    for (int i = 0; i < st->num_tensors; i++) {
        const v2t_st_tensor *t = &st->tensors[i];
        if (v2t_st_find(st, t->name) != t)
            abort(); /* names are unique and the index finds each */
        const uint64_t bytes = t->end - t->begin;
        const int64_t n = v2t_st_numel(t);
        if (n < 0 || (uint64_t)n * v2t_st_dtype_size(t->dtype) != bytes)
            abort(); /* validated: the shape product matches the byte range */
        if (bytes > MAX_READ_BYTES)
            continue;
        void *raw = malloc(bytes ? bytes : 1);
        if (raw == NULL)
            abort();
        (void)v2t_st_read_raw(st, t, raw);
        free(raw);
        if (t->dtype == V2T_ST_F32 || t->dtype == V2T_ST_F16 || t->dtype == V2T_ST_BF16 || t->dtype == V2T_ST_F64 ||
            t->dtype == V2T_ST_I8) {
            float *f = NULL;
            if (v2t_st_load_f32(st, t->name, t->ndim, t->shape, &f) == V2T_OK)
                v2t_free(f);
            else if (f != NULL)
                abort();
        }
    }
    v2t_st_close(st);
    return 0;
}
