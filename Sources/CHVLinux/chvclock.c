#define _GNU_SOURCE
#include "chvclock.h"

#include <errno.h>
#include <linux/ptp_clock.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timex.h>
#include <time.h>

int chv_clock_step_realtime(int64_t nanoseconds) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_SETOFFSET | ADJ_NANO;
    // The kernel wants 0 <= tv_usec (here nanoseconds) < 1e9, seconds carrying the sign.
    int64_t sec = nanoseconds / 1000000000LL;
    int64_t nsec = nanoseconds % 1000000000LL;
    if (nsec < 0) {
        nsec += 1000000000LL;
        sec -= 1;
    }
    tx.time.tv_sec = sec;
    tx.time.tv_usec = nsec;
    return clock_adjtime(CLOCK_REALTIME, &tx) < 0 ? -1 : 0;
}

int chv_clock_set_frequency_realtime(double ppm) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    tx.modes = ADJ_FREQUENCY;
    // freq is ppm with a 16-bit binary fraction.
    tx.freq = (long)(ppm * 65536.0);
    return clock_adjtime(CLOCK_REALTIME, &tx) < 0 ? -1 : 0;
}

int chv_clock_get_frequency_realtime(double *ppm) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    if (clock_adjtime(CLOCK_REALTIME, &tx) < 0) return -1;
    *ppm = (double)tx.freq / 65536.0;
    return 0;
}

int chv_ptp_max_samples(void) { return PTP_MAX_SAMPLES; }

int chv_ptp_sys_offset(int fd, int samples, int64_t *out) {
    if (samples < 1 || samples > PTP_MAX_SAMPLES) {
        errno = EINVAL;
        return -1;
    }
    struct ptp_sys_offset req;
    memset(&req, 0, sizeof req);
    req.n_samples = (unsigned int)samples;
    if (ioctl(fd, PTP_SYS_OFFSET, &req) < 0) return -1;
    for (int i = 0; i < 2 * samples + 1; i++) {
        out[i] = (int64_t)req.ts[i].sec * 1000000000LL + (int64_t)req.ts[i].nsec;
    }
    return 0;
}
