/* Shared by the fuzz targets: the input bytes as a file the C core can open by path.
 *
 * The parsers under test take paths (they read with pread), so each input is written to an
 * anonymous in-memory file (memfd) and opened as /proc/self/fd/N; the same file is reused,
 * truncated to each input's size, so an execution costs no disk I/O.
 */
#ifndef V2T_FUZZ_COMMON_H
#define V2T_FUZZ_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int fuzz_fd = -1;
static char fuzz_path[64];

static const char *fuzz_as_file(const uint8_t *data, size_t size)
{
    if (fuzz_fd < 0) {
        fuzz_fd = memfd_create("v2t-fuzz", 0);
        if (fuzz_fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(fuzz_path, sizeof fuzz_path, "/proc/self/fd/%d", fuzz_fd);
    }
    if (ftruncate(fuzz_fd, 0) != 0 || (size && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)) {
        perror("fuzz input file");
        abort();
    }
    return fuzz_path;
}

#endif
