// I8 Linear (w8a8) with AMX-INT8 tiles (tdpbssd) for many tokens (prefill); the
// AVX512-VNNI code (linear_q8_vnni512.h) for few tokens and for remainders.
//
// Math:     acc[m, n] = sum_k (q[m, k] - zp[m]) * w[n, k]   (exact int32)
//           y[m, n]   = (float(acc) * s[m]) * w_scale[n]     (two F32 roundings)
// tdpbssd multiplies SIGNED by SIGNED bytes into int32: no offsets at all, -128 exact.
//   C tile [16 weight rows n][16 tokens m] int32  +=  A [16 rows n][64 k] int8
//                                                   . B [16 k-quads][16 m x 4 k] int8
// A tiles load straight from the row-major int8 weights as stored (stride K, zero
// copy). B tiles are the activation codes packed by the prep into 1 KiB blocks,
// block (token block tb, k chunk kc): byte [r*64 + j*4 + i] = q[16*tb + j][64*kc + 4*r + i],
// tokens past M zero. Asymmetric activations: rs[n] = sum_k w[n, k] (vpdpbusd with a
// ones vector, only when some zp != 0); acc = C - zp[m] * rs[n].
// Blocking: 2 A tiles (32 weight rows) x 2 B tiles (32 tokens) -> 4 C tiles; each k
//           chunk loads 2 + 2 tiles and issues 4 tdpbssd.
// When AMX runs: K % 64 == 0 and M >= kAmxMinTokens (the prep packs B only then); rows
//           that do not fill a 16-row tile, and every other case, take the VNNI path.
// Results are bit-identical to the Ref kernel (integer sums are exact; shared prep and
// epilogue).
#include <immintrin.h>

#include <cstring>

#include "../avx512vnni/linear_q8_vnni512.h"
#include "../hooks.h"

namespace llrt::kernels {
namespace {

constexpr int64_t kAmxMinTokens = 8;

bool use_amx(int64_t M, int64_t K) { return K % 64 == 0 && K > 0 && M >= kAmxMinTokens; }
int64_t packed_offset(int64_t M, int64_t K) { return q8_round_up(int64_t(Q8Prep<int8_t>::bytes(M, K)), 64); }

size_t amx_prep_bytes(int64_t M, int64_t K) {
  size_t b = size_t(packed_offset(M, K));
  if (use_amx(M, K)) b += size_t(q8_round_up(M, 16) * K);
  return b;
}

void amx_prep(const LinearPrepArgs& a) {
  q8_prep<int8_t>(a);
  const int64_t M = a.M, K = a.K, m0 = a.m0, m1 = a.m1;
  void* xq = a.xp;
  if (!use_amx(M, K)) return;
  const auto P = Q8Prep<int8_t>::at(xq, M, K);
  int8_t* packed = static_cast<int8_t*>(xq) + packed_offset(M, K);
  const int64_t kchunks = K / 64;
  auto block = [&](int64_t m, int64_t kc) { return packed + ((m / 16) * kchunks + kc) * 1024 + (m % 16) * 4; };
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* q = P.codes + m * P.lda;
    for (int64_t kc = 0; kc < kchunks; ++kc) {
      int8_t* dst = block(m, kc);
      for (int r = 0; r < 16; ++r) std::memcpy(dst + r * 64, q + kc * 64 + r * 4, 4);
    }
  }
  if (m1 == M)  // the range holding the last token zeroes the padding tokens
    for (int64_t m = M; m < q8_round_up(M, 16); ++m)
      for (int64_t kc = 0; kc < kchunks; ++kc)
        for (int r = 0; r < 16; ++r) std::memset(block(m, kc) + r * 64, 0, 4);
}

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Epilogue of one stored C tile c[16 rows n][16 tokens m].
inline void amx_epilogue(const LinearArgs& a, const Q8Prep<int8_t>& P, const int32_t* c, int64_t n0, int64_t m0,
                         const int64_t* rs) {
  const int64_t mend = std::min<int64_t>(16, a.M - m0);
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t n = n0 + i;
    const float ws = q8_w_scale(a, n);
    for (int64_t j = 0; j < mend; ++j) {
      const int64_t m = m0 + j;
      const int32_t s = int32_t(int64_t(c[i * 16 + j]) - int64_t(P.zp[m]) * rs[i]);
      a.y[m * a.ldy + n] = q8_epilogue(s, P.scale[m], ws);
    }
  }
}

// rs[i] = sum_k w[n0 + i, k] for 16 rows (only for asymmetric activations).
inline void row_sums16(const LinearArgs& a, int64_t n0, bool asym, int64_t* rs) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int i = 0; i < 16; ++i) {
    if (!asym) {
      rs[i] = 0;
      continue;
    }
    const int8_t* w = q8_weights(a) + (n0 + i) * a.K;
    __m512i acc = _mm512_setzero_si512();
    for (int64_t k = 0; k < a.K; k += 64) acc = _mm512_dpbusd_epi32(acc, ones, _mm512_loadu_si512(w + k));
    rs[i] = _mm512_reduce_add_epi32(acc);
  }
}

// Rows [n0, n0 + 16*NA) of all tokens, NA = 1 or 2 A tiles.
template <int NA>
void amx_rows(const LinearArgs& a, const Q8Prep<int8_t>& P, const int8_t* packed, int64_t n0, bool asym) {
  const int64_t K = a.K, kchunks = K / 64, Mp = q8_round_up(a.M, 16);
  alignas(64) int32_t c[4][256];
  int64_t rs[2][16];
  for (int t = 0; t < NA; ++t) row_sums16(a, n0 + 16 * t, asym, rs[t]);
  for (int64_t mb = 0; mb < Mp; mb += 32) {
    const bool two_b = mb + 16 < Mp;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const int8_t* b0 = packed + (mb / 16) * kchunks * 1024;
    const int8_t* b1 = b0 + kchunks * 1024;
    const int8_t* a0 = q8_weights(a) + n0 * K;
    const int8_t* a1 = a0 + 16 * K;
    for (int64_t kc = 0; kc < kchunks; ++kc) {
      _tile_loadd(4, a0 + kc * 64, K);
      _tile_loadd(6, b0 + kc * 1024, 64);
      _tile_dpbssd(0, 4, 6);
      if (two_b) {
        _tile_loadd(7, b1 + kc * 1024, 64);
        _tile_dpbssd(1, 4, 7);
      }
      if constexpr (NA == 2) {
        _tile_loadd(5, a1 + kc * 64, K);
        _tile_dpbssd(2, 5, 6);
        if (two_b) _tile_dpbssd(3, 5, 7);
      }
    }
    _tile_stored(0, c[0], 64);
    amx_epilogue(a, P, c[0], n0, mb, rs[0]);
    if (two_b) {
      _tile_stored(1, c[1], 64);
      amx_epilogue(a, P, c[1], n0, mb + 16, rs[0]);
    }
    if constexpr (NA == 2) {
      _tile_stored(2, c[2], 64);
      amx_epilogue(a, P, c[2], n0 + 16, mb, rs[1]);
      if (two_b) {
        _tile_stored(3, c[3], 64);
        amx_epilogue(a, P, c[3], n0 + 16, mb + 16, rs[1]);
      }
    }
  }
}

void linear_q8_run_amx(const LinearArgs& a) {
  const auto P = Q8Prep<int8_t>::at(a.xp, a.M, a.K);
  if (!use_amx(a.M, a.K) || a.n1 - a.n0 < 16) return q8_vnni512_run(a, P);
  const int8_t* packed = static_cast<const int8_t*>(a.xp) + packed_offset(a.M, a.K);
  bool asym = false;
  for (int64_t m = 0; m < a.M; ++m) asym |= P.zp[m] != 0;
  TileConfig cfg;
  for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
  _tile_loadconfig(&cfg);
  int64_t n = a.n0;
  for (; n + 32 <= a.n1; n += 32) amx_rows<2>(a, P, packed, n, asym);
  for (; n + 16 <= a.n1; n += 16) amx_rows<1>(a, P, packed, n, asym);
  _tile_release();
  if (n < a.n1) {  // fewer than 16 rows left
    LinearArgs r = a;
    r.n0 = n;
    q8_vnni512_run(r, P);
  }
}

const LinearKernel k_amx{amx_prep_bytes, amx_prep, linear_q8_run_amx, true};

}  // namespace

void register_linear_q8_amx(KernelRegistry& r) {
  r.add({Op::Linear, DType::I8, DType::F32, Backend::Amx, "linear_i8w_f32a__amx", &k_amx});
}
}  // namespace llrt::kernels
