/* write_floor — the CPU it costs just to write a copy's bytes: SIZE bytes in 1 MiB pwrite calls
 * (hvguestd's block size) to a new file, which is then removed. Prints one hvguest-bench JSON
 * line (scenario fcopy, daemon "write", metric cpu_s_per_gib). bench/run runs it pinned to the
 * same CPU as the copies, so the null responder's time plus this is the fastest any daemon that
 * actually writes the file could finish (bench/RESULTS.md, "attainable").
 *
 *   write_floor FILE SIZE PARAM
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: write_floor FILE SIZE PARAM\n");
        return 2;
    }
    const size_t block = 1 << 20;
    unsigned long long size = strtoull(argv[2], NULL, 10);
    char *buf = malloc(block);
    if (!buf) return 1;
    memset(buf, 'a', block);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) { perror(argv[1]); return 1; }
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    for (unsigned long long off = 0; off < size; off += block) {
        size_t n = size - off < block ? (size_t)(size - off) : block;
        if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n) { perror("pwrite"); unlink(argv[1]); return 1; }
    }
    close(fd);
    getrusage(RUSAGE_SELF, &after);
    unlink(argv[1]);
    double cpu = (after.ru_utime.tv_sec - before.ru_utime.tv_sec) + (after.ru_utime.tv_usec - before.ru_utime.tv_usec) / 1e6
               + (after.ru_stime.tv_sec - before.ru_stime.tv_sec) + (after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
    double perGiB = size ? cpu * (double)(1ULL << 30) / (double)size : 0;
    printf("{\"scenario\":\"fcopy\",\"daemon\":\"write\",\"param\":\"%s\",\"metric\":\"cpu_s_per_gib\",\"unit\":\"s/GiB\","
           "\"values\":[%.6f],\"min\":%.6f,\"median\":%.6f,\"max\":%.6f}\n", argv[3], perGiB, perGiB, perGiB, perGiB);
    return 0;
}
