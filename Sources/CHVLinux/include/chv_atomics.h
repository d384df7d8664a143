// Acquire/release loads and stores and a full barrier for the VMBus ring indices, which live in
// memory shared with the host (or the emulator process). Swift has no portable way to express
// these orderings on raw memory without a package dependency; the compiler builtins give the
// right instructions on x86-64 and arm64. Static inline so calls cost nothing on the hot path.
#ifndef CHV_ATOMICS_H
#define CHV_ATOMICS_H

#include <stdint.h>

/// Loads a 32-bit value with acquire ordering (later reads cannot move before it).
static inline uint32_t chv_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }

/// Loads a 32-bit value without ordering, but as one untorn access.
static inline uint32_t chv_load_relaxed_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/// Stores a 32-bit value with release ordering (earlier reads and writes cannot move after it).
static inline void chv_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/// Stores a 32-bit value without ordering, but as one untorn access.
static inline void chv_store_relaxed_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/// A full (sequentially consistent) fence: orders earlier stores before later loads too.
static inline void chv_full_barrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif
