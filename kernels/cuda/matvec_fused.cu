// Decode-step Linear (one token) with its input transform fused in:
//   y[n] (+)= sum_k t(x)[k] * W[n, k],  t = identity | rmsnorm | silu(gate) * up
// and, for I8 weights, the dynamic/static activation quantization of t(x) too.
//
// Why: a decode step is 6 dependent launches per layer instead of 9 (13 for w8a8); each
// launch on the critical path costs microseconds of ramp-up and drain, against ~120 us of
// weight streaming per Llama-8B layer (measured: kernels/cuda/NOTES.md). The SiluMul input
// is supported but the engine keeps silu_mul separate: recomputing silu over the whole
// intermediate row in every block of down_proj measured slower than the extra launch.
// Layout:   W row-major [N, K] as stored (F32/F16/BF16/I8); x F32; one warp per output
//           row (rows_per_warp rows in turn when N is large, so the grid fits in one wave
//           and the per-block prologue is amortized), 8 warps per block.
// Prologue: the block stages t(x) in shared memory (and its int8 codes for I8 weights)
//           with the functions of fused_math.cuh, i.e. exactly the bits rmsnorm.cu,
//           elementwise.cu and q8.cu produce. The first 8 chunks of the block's first row
//           are loaded before the prologue (weights do not depend on it), so the
//           prologue overlaps the first memory round trip.
// async_norm (opt-in until measured): the RmsNorm input and its weights are copied to
//           shared memory with cp.async, all chunks in flight at once (the classic prologue
//           loads x, reduces, then loads norm_w: two dependent round trips); same sums in
//           the same order, so the same bits.
// Rounding: the GEMV itself is matvec.cu's (lane c % 32 of every 16-byte chunk c, one F32
//           FMA chain per lane in chunk order, butterfly sum) or q8.cu's (exact int32
//           dp4a, two F32 products): results are bit-identical to the unfused kernels.
#include "fused_math.cuh"

namespace llrt::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kU = 4;  // 16-byte chunks in flight per lane (registers left for the prologue)

struct WI8 { using T = int8_t; };

struct FusedArgs {
  const void* w;
  int64_t N, K, rows_per_warp;
  int input;
  const float* x;
  const void* norm_w;
  int norm_dtype;
  float eps;
  int64_t up_off;
  float* y;
  bool accumulate;
  const void* w_scale;
  int ws_dtype;
  bool per_channel;
  const int32_t* rowsum;
  int mode;
  float static_scale;
  int32_t static_zp;
  int async_norm;  // RmsNorm input staged with cp.async (x and norm_w in one round trip)
};

// 16 bytes global -> shared without registers (sm_80+: every target of this build).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned sa = unsigned(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(sa), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
}
__host__ __device__ __forceinline__ int64_t norm_w_bytes(int64_t K, int dtype) {
  return K * (dtype == int(DType::F32) ? 4 : 2);
}

__device__ __forceinline__ int64_t kpad_of(int64_t K) { return (K + 15) / 16 * 16; }

// 4 blocks (32 warps) per SM: <= 64 registers, so a 4096-row matrix is one wave.
template <class W>
__global__ void __launch_bounds__(kRowThreads, 4) decode_linear_k(FusedArgs a) {
  extern __shared__ uint4 smem_raw[];
  constexpr bool q8 = sizeof(typename W::T) == 1;
  constexpr int E = 16 / int(sizeof(typename W::T));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t nch = a.K / E;
  const int64_t n_first = (int64_t(blockIdx.x) * kWarps + warp) * a.rows_per_warp;
  const uint4* wb = static_cast<const uint4*>(a.w);
  uint4 wv[kU];
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int64_t c = lane + u * 32;
    wv[u] = n_first < a.N && c < nch ? __ldcs(wb + n_first * nch + c) : make_uint4(0, 0, 0, 0);
  }
  pdl_wait();  // the input (and y) come from the previous kernel; the weights never change
  // ---- prologue: the input row, transformed, in shared memory (16 loads in flight per thread)
  const int64_t kpad = kpad_of(a.K);
  const bool staged = a.input != int(DecodeInput::Plain) || q8;
  float* xs = reinterpret_cast<float*>(smem_raw);
  int8_t* qs = reinterpret_cast<int8_t*>(smem_raw) + (staged ? kpad * 4 : 0);
  const float* xin = a.x;
  constexpr int G = 16;
  if (a.input == int(DecodeInput::RmsNorm) && a.async_norm) {
    // x -> xs and norm_w -> shared memory, every 16-byte chunk in flight at once (one round
    // trip instead of two), then the same sums and products as below, in the same order.
    char* nws = reinterpret_cast<char*>(qs) + (q8 ? kpad : 0);
    const int64_t wch = norm_w_bytes(a.K, a.norm_dtype) / 16;
    for (int64_t c = threadIdx.x; c < a.K / 4; c += kRowThreads) cp_async16(xs + 4 * c, a.x + 4 * c);
    for (int64_t c = threadIdx.x; c < wch; c += kRowThreads)
      cp_async16(nws + 16 * c, static_cast<const char*>(a.norm_w) + 16 * c);
    cp_async_wait_all();
    __syncthreads();
    double ss = 0;
    for (int64_t k = threadIdx.x; k < a.K; k += kRowThreads) ss = fma(double(xs[k]), double(xs[k]), ss);
    const double inv = block_reduce_rms(ss, a.K, a.eps);
    for (int64_t k = threadIdx.x; k < a.K; k += kRowThreads) xs[k] = rms_apply(xs[k], inv, load_any(nws, a.norm_dtype, k));
    xin = xs;
  } else if (a.input == int(DecodeInput::RmsNorm)) {
    double ss = 0;  // rmsnorm.cu's sum: this thread's elements in index order
    int64_t k = threadIdx.x;
    for (; k + (G - 1) * kRowThreads < a.K; k += G * kRowThreads) {
      float v[G];
#pragma unroll
      for (int j = 0; j < G; ++j) v[j] = a.x[k + j * kRowThreads];
#pragma unroll
      for (int j = 0; j < G; ++j) ss = fma(double(v[j]), double(v[j]), ss), xs[k + j * kRowThreads] = v[j];
    }
    for (; k < a.K; k += kRowThreads) {
      const float v = a.x[k];
      ss = fma(double(v), double(v), ss);
      xs[k] = v;
    }
    const double inv = block_reduce_rms(ss, a.K, a.eps);
    k = threadIdx.x;
    for (; k + (G - 1) * kRowThreads < a.K; k += G * kRowThreads) {
      float w[G];
#pragma unroll
      for (int j = 0; j < G; ++j) w[j] = load_any(a.norm_w, a.norm_dtype, k + j * kRowThreads);
#pragma unroll
      for (int j = 0; j < G; ++j) xs[k + j * kRowThreads] = rms_apply(xs[k + j * kRowThreads], inv, w[j]);
    }
    for (; k < a.K; k += kRowThreads) xs[k] = rms_apply(xs[k], inv, load_any(a.norm_w, a.norm_dtype, k));
    xin = xs;
  } else if (a.input == int(DecodeInput::SiluMul)) {
    int64_t k = threadIdx.x;
    for (; k + (G / 2 - 1) * kRowThreads < a.K; k += G / 2 * kRowThreads) {
      float g[G / 2], u[G / 2];
#pragma unroll
      for (int j = 0; j < G / 2; ++j) g[j] = a.x[k + j * kRowThreads], u[j] = a.x[a.up_off + k + j * kRowThreads];
#pragma unroll
      for (int j = 0; j < G / 2; ++j) xs[k + j * kRowThreads] = silu_mul_one(g[j], u[j]);
    }
    for (; k < a.K; k += kRowThreads) xs[k] = silu_mul_one(a.x[k], a.x[a.up_off + k]);
    xin = xs;
  } else if (staged) {  // plain input of I8 weights: staged for the quantization
    int64_t k = threadIdx.x;
    for (; k + (G - 1) * kRowThreads < a.K; k += G * kRowThreads) {
      float v[G];
#pragma unroll
      for (int j = 0; j < G; ++j) v[j] = a.x[k + j * kRowThreads];
#pragma unroll
      for (int j = 0; j < G; ++j) xs[k + j * kRowThreads] = v[j];
    }
    for (; k < a.K; k += kRowThreads) xs[k] = a.x[k];
    xin = xs;
  }
  __syncthreads();
  Q8Params qp{0.0f, 0.0f, 0, false};
  if constexpr (q8) {
    qp = block_q8_params(xin, a.K, a.mode, a.static_scale, a.static_zp);
    for (int64_t k = threadIdx.x; k < kpad; k += kRowThreads) qs[k] = k < a.K ? q8_code(xin[k], qp) : int8_t(0);
    __syncthreads();
  }
  pdl_trigger();  // every block is resident and past its prologue: let the next kernel launch
  // ---- rows
  for (int64_t r = 0; r < a.rows_per_warp; ++r) {
    const int64_t n = n_first + r;
    if (n >= a.N) break;
    float accf = 0.0f;
    int32_t acci = 0;
    for (int64_t c0 = lane; c0 < nch; c0 += 32 * kU) {
      if (r != 0 || c0 != lane) {
#pragma unroll
        for (int u = 0; u < kU; ++u) {
          const int64_t c = c0 + u * 32;
          wv[u] = c < nch ? __ldcs(wb + n * nch + c) : make_uint4(0, 0, 0, 0);
        }
      }
#pragma unroll
      for (int u = 0; u < kU; ++u) {
        const int64_t c = c0 + u * 32;
        if (c < nch) {
          if constexpr (q8) {
            const int4 xv = reinterpret_cast<const int4*>(qs)[c];
            acci = __dp4a(int(wv[u].x), xv.x, acci);
            acci = __dp4a(int(wv[u].y), xv.y, acci);
            acci = __dp4a(int(wv[u].z), xv.z, acci);
            acci = __dp4a(int(wv[u].w), xv.w, acci);
          } else {
            float wf[E];
            widen_chunk(W{}, wv[u], wf);
            const float4* xp = reinterpret_cast<const float4*>(xin + c * E);
#pragma unroll
            for (int e = 0; e < E / 4; ++e) {
              const float4 xv = xp[e];
              accf = fmaf(wf[4 * e + 0], xv.x, accf);
              accf = fmaf(wf[4 * e + 1], xv.y, accf);
              accf = fmaf(wf[4 * e + 2], xv.z, accf);
              accf = fmaf(wf[4 * e + 3], xv.w, accf);
            }
          }
        }
      }
    }
    float v;
    if constexpr (q8) {
      const int32_t s = warp_sum_i(acci);
      v = q8_out(s, qp.zp, a.rowsum ? a.rowsum[n] : 0, qp.s, load_any(a.w_scale, a.ws_dtype, a.per_channel ? n : 0));
    } else {
      v = warp_sum(accf);
    }
    if (lane == 0) a.y[n] = a.accumulate ? __fadd_rn(a.y[n], v) : v;
  }
}

template <class W>
struct Launcher {
  int max_dynamic = -1;  // dynamic shared memory the kernel may use (opt-in limit - static)
  int sms = 0;
  static Launcher& get() {
    static Launcher l;
    return l;
  }
};

// RmsNorm input staged with cp.async: asked for, and the chunks are whole and aligned.
bool use_async_norm(const DecodeLinearCall& c) {
  return c.async_norm && c.input == DecodeInput::RmsNorm && c.K % 4 == 0 && aligned16(c.x) && aligned16(c.norm_w) &&
         norm_w_bytes(c.K, int(c.norm_dtype)) % 16 == 0;
}

size_t smem_bytes(const DecodeLinearCall& c) {
  const size_t kpad = size_t((c.K + 15) / 16 * 16);
  const bool q8 = c.wtype == DType::I8;
  const size_t nw = use_async_norm(c) ? size_t(norm_w_bytes(c.K, int(c.norm_dtype))) : 0;
  return (c.input != DecodeInput::Plain || q8 ? kpad * 4 : 0) + (q8 ? kpad : 0) + nw + 16;
}

int optin_limit() {
  static const int v = [] {
    int dev = 0, x = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&x, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    return x;
  }();
  return v;
}

template <class W>
int init() {
  Launcher<W>& L = Launcher<W>::get();
  if (L.max_dynamic < 0) {
    int dev = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&L.sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
    cudaFuncAttributes fa{};
    check(cudaFuncGetAttributes(&fa, decode_linear_k<W>), "cudaFuncGetAttributes");
    const int dyn = optin_limit() - int(fa.sharedSizeBytes);
    check(cudaFuncSetAttribute(decode_linear_k<W>, cudaFuncAttributeMaxDynamicSharedMemorySize, dyn),
          "cudaFuncSetAttribute(decode linear shared memory)");
    L.max_dynamic = dyn;
  }
  return L.max_dynamic;
}

template <class W>
void launch(const DecodeLinearCall& c, cudaStream_t s) {
  init<W>();
  Launcher<W>& L = Launcher<W>::get();
  const size_t smem = smem_bytes(c);
  int per_sm = 0;
  check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_linear_k<W>, kRowThreads, smem), "occupancy");
  const int64_t capacity = int64_t(std::max(per_sm, 1)) * L.sms;
  const int64_t blocks_1 = ceil_div(c.N, kWarps);
  // Rows per warp: enough that the grid is one wave, at most 8 (longer per-warp row chains
  // stall between rows; a huge N such as lm_head runs in several waves instead).
  const int64_t rpw = std::clamp<int64_t>(ceil_div(blocks_1, capacity), 1, 8);
  FusedArgs a{c.w, c.N, c.K, rpw, int(c.input), c.x, c.norm_w, int(c.norm_dtype), c.eps, c.up_off, c.y, c.accumulate,
              c.w_scale, int(c.w_scale_dtype), c.per_channel, c.w_rowsum, int(c.mode), c.static_scale, c.static_zp,
              int(use_async_norm(c))};
  launch_kernel(decode_linear_k<W>, dim3(unsigned(ceil_div(c.N, kWarps * rpw))), dim3(kRowThreads), smem, s, c.pdl, a);
  check_launch("decode_linear");
}

}  // namespace

bool decode_linear_supported(const DecodeLinearCall& c) {
  size_t esize = 0;
  switch (c.wtype) {
    case DType::F32: esize = 4; break;
    case DType::F16: case DType::BF16: esize = 2; break;
    case DType::I8: esize = 1; break;
    default: return false;
  }
  if (c.N <= 0 || c.K <= 0 || (c.K * int64_t(esize)) % 16 != 0 || !aligned16(c.w)) return false;
  if (c.input == DecodeInput::Plain && c.wtype != DType::I8 && !aligned16(c.x)) return false;
  int limit = 0;
  switch (c.wtype) {
    case DType::F32: limit = init<WF32>(); break;
    case DType::F16: limit = init<WF16>(); break;
    case DType::BF16: limit = init<WBF16>(); break;
    default: limit = init<WI8>(); break;
  }
  return int(smem_bytes(c)) <= limit;
}

void decode_linear_init() {
  init<WF32>();
  init<WF16>();
  init<WBF16>();
  init<WI8>();
}

void decode_linear(const DecodeLinearCall& c, cudaStream_t s) {
  if (!decode_linear_supported(c)) check(cudaErrorInvalidValue, "decode_linear: unsupported shape or alignment");
  switch (c.wtype) {
    case DType::F32: return launch<WF32>(c, s);
    case DType::F16: return launch<WF16>(c, s);
    case DType::BF16: return launch<WBF16>(c, s);
    default: return launch<WI8>(c, s);
  }
}

}  // namespace llrt::cuda
