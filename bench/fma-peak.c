// FMA peak of this CPU: independent fused multiply-add chains on every core, fp32.
// Built and run by bench/lora-step.ts at bench time:
//   g++ -O2 -mavx2 -mfma [-mavx512f] -fopenmp -x c bench/fma-peak.c -o fma-peak && ./fma-peak [seconds] [threads]
// Each thread keeps 16 independent accumulators (FMA latency 4 × 2 pipes = 8 in flight is the minimum to
// saturate both FMA pipes; 16 leaves margin) and runs bursts of a fixed iteration count. Two widths are
// measured, 256-bit (AVX2) and, when compiled in, 512-bit (AVX-512): MLAS, ORT's GEMM, uses AVX-512 on
// CPUs that have it, so the peak is the larger of the two.
// Printed per width (one JSON line): the best burst's wall-clock GFLOP/s (what the machine gave us, with
// the other processes on it) and the GFLOP/s per thread-CPU-second × threads (what the cores do when not
// shared: a load-independent estimate of the peak).
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define ITERS 2000000L

// One burst of ITERS × 16 FMAs of `lanes` floats. Returns a value so the compiler keeps the work.
// The 16 accumulators are named variables, not an array: at -O2 GCC keeps an array in memory and the
// loop then measures store-to-load forwarding instead of the FMA pipes.
#define FMA16(F)                                                                                         \
  a0 = F(a0, m, c), a1 = F(a1, m, c), a2 = F(a2, m, c), a3 = F(a3, m, c), a4 = F(a4, m, c), a5 = F(a5, m, c), \
  a6 = F(a6, m, c), a7 = F(a7, m, c), a8 = F(a8, m, c), a9 = F(a9, m, c), a10 = F(a10, m, c),               \
  a11 = F(a11, m, c), a12 = F(a12, m, c), a13 = F(a13, m, c), a14 = F(a14, m, c), a15 = F(a15, m, c)
#define SUM16(ADD)                                                                                        \
  ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),                                   \
      ADD(ADD(ADD(a8, a9), ADD(a10, a11)), ADD(ADD(a12, a13), ADD(a14, a15))))

static float burst256(float seed) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  __m256 a0 = _mm256_set1_ps(seed), a1 = _mm256_add_ps(a0, c), a2 = _mm256_add_ps(a1, c), a3 = _mm256_add_ps(a2, c);
  __m256 a4 = _mm256_add_ps(a3, c), a5 = _mm256_add_ps(a4, c), a6 = _mm256_add_ps(a5, c), a7 = _mm256_add_ps(a6, c);
  __m256 a8 = _mm256_add_ps(a7, c), a9 = _mm256_add_ps(a8, c), a10 = _mm256_add_ps(a9, c), a11 = _mm256_add_ps(a10, c);
  __m256 a12 = _mm256_add_ps(a11, c), a13 = _mm256_add_ps(a12, c), a14 = _mm256_add_ps(a13, c), a15 = _mm256_add_ps(a14, c);
  for (long it = 0; it < ITERS; it++) {
    FMA16(_mm256_fmadd_ps);
  }
  __m256 s = SUM16(_mm256_add_ps);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

#ifdef __AVX512F__
static float burst512(float seed) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  __m512 a0 = _mm512_set1_ps(seed), a1 = _mm512_add_ps(a0, c), a2 = _mm512_add_ps(a1, c), a3 = _mm512_add_ps(a2, c);
  __m512 a4 = _mm512_add_ps(a3, c), a5 = _mm512_add_ps(a4, c), a6 = _mm512_add_ps(a5, c), a7 = _mm512_add_ps(a6, c);
  __m512 a8 = _mm512_add_ps(a7, c), a9 = _mm512_add_ps(a8, c), a10 = _mm512_add_ps(a9, c), a11 = _mm512_add_ps(a10, c);
  __m512 a12 = _mm512_add_ps(a11, c), a13 = _mm512_add_ps(a12, c), a14 = _mm512_add_ps(a13, c), a15 = _mm512_add_ps(a14, c);
  for (long it = 0; it < ITERS; it++) {
    FMA16(_mm512_fmadd_ps);
  }
  return _mm512_reduce_add_ps(SUM16(_mm512_add_ps));
}
#endif

static void measure(const char *name, int lanes, float (*fn)(float), double seconds, int threads) {
  double bestWall = 0, bestCpu = 0, sink = 0;
  double flopsPerBurst = (double)ITERS * 16 * lanes * 2;
  double t0 = now(CLOCK_MONOTONIC);
  while (now(CLOCK_MONOTONIC) - t0 < seconds) {
    double cpu[256] = {0};
    double w0 = now(CLOCK_MONOTONIC);
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      double c0 = now(CLOCK_THREAD_CPUTIME_ID);
      sink += fn((float)omp_get_thread_num());
      cpu[omp_get_thread_num()] = now(CLOCK_THREAD_CPUTIME_ID) - c0;
    }
    double wall = now(CLOCK_MONOTONIC) - w0;
    double g = threads * flopsPerBurst / wall / 1e9;
    if (g > bestWall) bestWall = g;
    double perThread = 0;
    for (int i = 0; i < threads; i++) perThread += flopsPerBurst / cpu[i] / 1e9;
    if (perThread > bestCpu) bestCpu = perThread;
  }
  printf("{\"width\":\"%s\",\"threads\":%d,\"wallGflops\":%.1f,\"cpuGflops\":%.1f,\"sink\":%g}\n", name, threads, bestWall,
         bestCpu, sink > 0 ? 0.0 : 1.0);
}

int main(int argc, char **argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0.5;
  int threads = argc > 2 ? atoi(argv[2]) : omp_get_num_procs();
  if (threads > 256) threads = 256;
  measure("avx2", 8, burst256, seconds, threads);
#ifdef __AVX512F__
  measure("avx512", 16, burst512, seconds, threads);
#endif
  return 0;
}
