// Clock and PTP calls for the time-sync service: struct timex / clock_adjtime and the
// PTP_SYS_OFFSET ioctl (function-like macros Swift cannot import).
#ifndef CHVCLOCK_H
#define CHVCLOCK_H

#include <stdint.h>

/// clock_adjtime(CLOCK_REALTIME, ADJ_SETOFFSET|ADJ_NANO): adds `nanoseconds` to the clock in
/// one step. Returns 0 or -1 (errno set).
int chv_clock_step_realtime(int64_t nanoseconds);

/// clock_adjtime(CLOCK_REALTIME, ADJ_FREQUENCY): sets the frequency correction in ppm (the
/// kernel limits it to ±500). Returns 0 or -1 (errno set).
int chv_clock_set_frequency_realtime(double ppm);

/// Reads the current frequency correction (ppm) without changing anything. Returns 0 or -1.
int chv_clock_get_frequency_realtime(double *ppm);

/// Maximum samples of one PTP_SYS_OFFSET request (PTP_MAX_SAMPLES).
int chv_ptp_max_samples(void);

/// PTP_SYS_OFFSET on an open /dev/ptpN: `samples` (1…PTP_MAX_SAMPLES) readings, stored in
/// `out` as 2·samples+1 nanosecond timestamps: system, phc, system, phc, …, system.
/// Returns 0 or -1 (errno set).
int chv_ptp_sys_offset(int fd, int samples, int64_t *out);

#endif
