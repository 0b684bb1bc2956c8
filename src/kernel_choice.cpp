// Measured kernel choice (see kernel_choice.h for the rule and the probe).
#include "kernel_choice.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "llrt/cpu.h"
#include "llrt/dtype.h"
#include "llrt/quant.h"
#include "llrt/tensor.h"
#include "nlohmann/json.hpp"
#include "src/bounded_io.h"

namespace llrt {

namespace {

constexpr int kProbeVersion = 1;
constexpr int64_t kProbeK = 2048;
constexpr int64_t kPrefillM = 128, kPrefillN = 256;

bool probed_op(Op op) { return op == Op::Linear; }

const char* g_policy_override = nullptr;

bool measured_policy() {
  const char* p = g_policy_override ? g_policy_override : std::getenv("LLRT_KERNEL_CHOICE");
  if (!p || !*p || std::strcmp(p, "measured") == 0) return true;
  if (std::strcmp(p, "rank") == 0) return false;
  std::fprintf(stderr, "llrt: LLRT_KERNEL_CHOICE=%s is not 'measured' or 'rank': using 'measured'\n", p);
  return true;
}

// LLRT_ACT: "f32" (F32-activation kernels only), "native" (prefer kernels that round the
// activations to the weight dtype, as HF's native-dtype run does), else "auto".
std::string act_policy() {
  const char* p = std::getenv("LLRT_ACT");
  if (!p || !*p || std::strcmp(p, "auto") == 0) return "auto";
  if (std::strcmp(p, "f32") == 0 || std::strcmp(p, "native") == 0) return p;
  std::fprintf(stderr, "llrt: LLRT_ACT=%s is not 'auto', 'f32' or 'native': using 'auto'\n", p);
  return "auto";
}
bool native_activations_allowed() { return act_policy() != "f32"; }

// Preference among near-equal candidates: F32-activation kernels first (rounded ones first
// with LLRT_ACT=native), then ISA rank.
int preference(const KernelEntry& e) {
  const bool f32 = e.atype == DType::F32;
  return ((act_policy() == "native") != f32 ? 100 : 0) + int(e.backend);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string machine_key() {
  const CpuInfo& c = cpu_info();
  std::ostringstream os;
  os << "v" << kProbeVersion << "|" << c.vendor << "|" << c.model << "|";
  for (const auto& f : cpu_flag_names()) os << f << ",";
  os << "|";
  for (const auto& e : KernelRegistry::global().all())
    if (backend_is_cpu(e.backend) && probed_op(e.op)) os << e.name << ",";
  return os.str();
}

std::string cache_path_uncached() {
  if (const char* p = std::getenv("LLRT_KERNEL_CACHE"); p && *p) return p;
  std::filesystem::path dir;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = std::filesystem::path(x) / "llrt";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = std::filesystem::path(h) / ".cache" / "llrt";
  else return "";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(machine_key())));
  return (dir / (std::string("kernels-") + hex + ".json")).string();
}

struct Store {
  std::mutex mu;
  bool loaded = false;
  std::map<std::string, KernelMeasure> m;  // by entry name
};
Store& store() {
  static Store s;
  return s;
}

void load_locked(Store& s) {
  if (s.loaded) return;
  s.loaded = true;
  const std::string path = cache_path_uncached();
  if (path.empty() || path == "off") return;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  try {
    // The one bounded reader (regular file, size cap, depth pre-scan): a damaged or hostile
    // cache file is measured over, never trusted or followed into a hang.
    nlohmann::json j = io::read_json(path, 1 << 20);
    if (j.value("key", std::string()) != machine_key()) return;  // another machine or build
    for (const auto& [name, v] : j.at("measures").items())
      s.m[name] = {v.at("decode_gbs").get<double>(), v.at("prefill_gflops").get<double>()};
  } catch (const std::exception&) {
    s.m.clear();  // unreadable cache: measure again
  }
}

void save_locked(const Store& s) {
  const std::string path = cache_path_uncached();
  if (path.empty() || path == "off") return;
  nlohmann::json j;
  j["key"] = machine_key();
  j["cpu"] = cpu_info().model;
  j["note"] = "llrt kernel measurements for this machine (src/kernel_choice.h); delete to measure again";
  for (const auto& [name, v] : s.m) j["measures"][name] = {{"decode_gbs", v.decode_gbs}, {"prefill_gflops", v.prefill_gflops}};
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  {
    std::ofstream o(tmp);
    if (!o) return;  // read-only home: keep the numbers in memory
    o << j.dump(1) << "\n";
    if (!o) return;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) std::filesystem::remove(tmp, ec);
}

// ---------------------------------------------------------------- the probe

struct ProbeBuffer {
  AlignedBuffer buf;
  size_t bytes = 0;
};

size_t default_probe_bytes() {
  if (const char* p = std::getenv("LLRT_KERNEL_PROBE_MB"); p && *p) {
    const long mb = std::strtol(p, nullptr, 10);
    if (mb >= 1 && mb <= 4096) return size_t(mb) << 20;
  }
  long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  size_t want = std::max<size_t>(size_t(256) << 20, llc > 0 ? size_t(llc) * 3 / 2 : 0);
  want = std::min<size_t>(want, size_t(512) << 20);
  const uint64_t avail = cpu_info().mem_available_bytes;
  if (avail) want = std::min<size_t>(want, size_t(avail / 8));
  return std::max<size_t>(want, size_t(16) << 20);
}

// Every 16-bit word 0x3c00: F16 1.0, BF16 2^-7, F32 words ~0.0078, int8 0 and 60. Finite,
// normal and the same for every dtype, so one buffer serves all kernels.
ProbeBuffer make_buffer(size_t bytes) {
  ProbeBuffer b;
  b.bytes = bytes / (size_t(2) << 20) * (size_t(2) << 20);
  if (b.bytes == 0) b.bytes = size_t(2) << 20;
  b.buf = aligned_alloc_bytes(b.bytes, size_t(2) << 20);
  madvise(b.buf.get(), b.bytes, MADV_HUGEPAGE);
  auto* p = static_cast<uint16_t*>(b.buf.get());
  std::fill(p, p + b.bytes / 2, uint16_t(0x3c00));
  return b;
}

// CPU time of the calling thread: a probe that is descheduled by another process is not
// charged for the time it did not run.
double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::vector<float> probe_x(int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[size_t(i)] = 0.01f * float((i * 7919) % 201 - 100) / 100.0f;
  return x;
}

// One kernel set up to run over the probe buffer: decode (M = 1 over every row that fits)
// or prefill (M = kPrefillM over kPrefillN rows), prep included, as the engine calls it.
struct ProbeRun {
  const KernelEntry* e = nullptr;
  const ProbeBuffer* b = nullptr;
  int64_t K = kProbeK, N = 0;
  size_t es = 1;
  std::vector<float> x, y;
  std::vector<uint16_t> scale;  // I8: BF16 per-channel scales
  AlignedBuffer xp;

  ProbeRun(const KernelEntry& entry, const ProbeBuffer& buf) : e(&entry), b(&buf) {
    es = dtype_size(e->wtype);
    N = int64_t(b->bytes / (size_t(K) * es));
    x = probe_x(kPrefillM * K);
    y.resize(size_t(std::max<int64_t>(N, kPrefillM * kPrefillN)));
    if (e->wtype == DType::I8) scale.assign(size_t(N), uint16_t(0x3c00));
    const LinearKernel& k = e->linear();
    const size_t pb = k.prep_bytes ? std::max(k.prep_bytes(1, K), k.prep_bytes(kPrefillM, K)) : 0;
    xp = aligned_alloc_bytes(pb + 64);
  }
  void run(int64_t M, int64_t n1, int64_t ldy) {
    const LinearKernel& k = e->linear();
    LinearArgs a;
    a.w.data = b->buf.get();
    a.w.dtype = e->wtype;
    if (e->wtype == DType::I8) {  // BF16 per-channel scales, dynamic symmetric activations
      a.w.scales = scale.data();
      a.w.scale_dtype = DType::BF16;
      a.w.granularity = ScaleGranularity::Channel;
    }
    if (k.prep) k.prep(LinearPrepArgs{x.data(), K, M, K, 0, M, &a.w.act, xp.get()});
    a.K = K;
    a.x = x.data();
    a.ldx = K;
    a.xp = xp.get();
    a.y = y.data();
    a.ldy = ldy;
    a.M = M;
    a.n0 = 0;
    a.n1 = n1;
    k.run(a);
  }
  double decode_seconds() {
    const double t0 = thread_seconds();
    run(1, N, N);
    return std::max(thread_seconds() - t0, 1e-9);
  }
  double prefill_seconds() {
    const double t0 = thread_seconds();
    run(kPrefillM, kPrefillN, kPrefillN);
    return std::max(thread_seconds() - t0, 1e-9);
  }
};

// Measures kernels side by side: a warm-up pass each, then kRounds rounds that run every
// kernel once in turn (so a burst of load elsewhere touches all of them), best per kernel.
std::vector<KernelMeasure> measure_all(const std::vector<const KernelEntry*>& es, const ProbeBuffer& b) {
  constexpr int kRounds = 3;
  std::vector<std::unique_ptr<ProbeRun>> runs;
  for (auto* e : es) runs.push_back(std::make_unique<ProbeRun>(*e, b));
  std::vector<double> td(es.size(), 1e30), tp(es.size(), 1e30);
  for (auto& r : runs) r->decode_seconds(), r->prefill_seconds();
  for (int round = 0; round < kRounds; ++round)
    for (size_t i = 0; i < runs.size(); ++i) {
      td[i] = std::min(td[i], runs[i]->decode_seconds());
      tp[i] = std::min(tp[i], runs[i]->prefill_seconds());
    }
  std::vector<KernelMeasure> out(es.size());
  for (size_t i = 0; i < es.size(); ++i) {
    out[i].decode_gbs = double(runs[i]->N) * double(runs[i]->K) * double(runs[i]->es) / td[i] / 1e9;
    out[i].prefill_gflops = 2.0 * kPrefillM * kPrefillN * double(runs[i]->K) / tp[i] / 1e9;
  }
  return out;
}

// Measures the candidates of (op, w) that have no numbers yet (with the ones that have, so
// all are measured in one run). Caller holds the lock.
void ensure_measured_locked(Store& s, std::vector<const KernelEntry*> cands) {
  load_locked(s);
  bool missing = false;
  for (auto* e : cands) missing = missing || !s.m.count(e->name);
  if (!missing) return;
  ProbeBuffer b = make_buffer(default_probe_bytes());
  const auto ms = measure_all(cands, b);
  for (size_t i = 0; i < cands.size(); ++i) s.m[cands[i]->name] = ms[i];
  save_locked(s);
}

}  // namespace

std::vector<const KernelEntry*> kernel_candidates(Op op, DType w) {
  std::vector<const KernelEntry*> out;
  const bool ref_ok = ref_kernels_allowed();
  const bool native_ok = native_activations_allowed() && w != DType::F32 && w != DType::I8;
  for (const auto& e : KernelRegistry::global().all()) {
    if (e.op != op || e.wtype != w || !backend_is_cpu(e.backend) || !backend_usable(e.backend)) continue;
    if (e.backend == Backend::Ref && !ref_ok) continue;
    if (e.atype == DType::F32 || (native_ok && e.atype == w)) out.push_back(&e);
  }
  return out;
}

const KernelEntry* choose_by_measure(const std::vector<const KernelEntry*>& cands, const std::vector<double>& measure,
                                     std::string* why) {
  if (cands.empty()) return nullptr;
  double mx = 0;
  for (double v : measure) mx = std::max(mx, v);
  const KernelEntry* best = nullptr;
  size_t bi = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    const bool close = mx <= 0 || measure[i] * kChoiceMargin >= mx;
    if (close && (!best || preference(*cands[i]) > preference(*best))) best = cands[i], bi = i;
  }
  if (why) {
    std::ostringstream os;
    if (cands.size() == 1) {
      os << "the only usable kernel";
    } else if (mx <= 0) {
      os << "ISA rank (not measured)";
    } else {
      os << (measure[bi] >= mx ? "fastest measured" : "within 5% of the fastest, preferred by rank") << ":";
      os.precision(3);
      for (size_t i = 0; i < cands.size(); ++i) {
        os << (i ? ", " : " ") << backend_name(cands[i]->backend);
        if (cands[i]->atype != DType::F32) os << "/" << dtype_name(cands[i]->atype) << "-act";
        os << " " << measure[i];
      }
    }
    *why = os.str();
  }
  return best;
}

KernelChoice choose_kernel(Op op, DType w, Phase phase) {
  KernelChoice c;
  auto cands = kernel_candidates(op, w);
  if (cands.empty()) return c;
  std::vector<double> m(cands.size(), 0.0);
  if (probed_op(op) && cands.size() > 1 && measured_policy()) {
    Store& s = store();
    std::lock_guard<std::mutex> lk(s.mu);
    ensure_measured_locked(s, cands);
    for (size_t i = 0; i < cands.size(); ++i) {
      const KernelMeasure& km = s.m[cands[i]->name];
      m[i] = phase == Phase::Decode ? km.decode_gbs : km.prefill_gflops;
    }
  }
  c.entry = choose_by_measure(cands, m, &c.why);
  if (*std::max_element(m.begin(), m.end()) > 0)
    c.why += phase == Phase::Decode ? " GB/s (decode, 1 thread)" : " GFLOP/s (prefill, 1 thread)";
  return c;
}

bool kernel_choice_pending(Op op, DType w) {
  if (!probed_op(op) || !measured_policy()) return false;
  const auto cands = kernel_candidates(op, w);
  if (cands.size() < 2) return false;
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  load_locked(s);
  for (auto* e : cands)
    if (!s.m.count(e->name)) return true;
  return false;
}

KernelMeasure kernel_measure(const KernelEntry& e) {
  if (!measured_policy() || !probed_op(e.op) || !backend_is_cpu(e.backend)) return {};
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  auto cands = kernel_candidates(e.op, e.wtype);
  if (std::find(cands.begin(), cands.end(), &e) == cands.end()) cands.push_back(&e);
  ensure_measured_locked(s, cands);
  return s.m[e.name];
}

std::string kernel_choice_policy() { return measured_policy() ? "measured" : "rank"; }
std::string kernel_cache_path() { return cache_path_uncached(); }

void kernel_choice_retune() {
  Store& s = store();
  std::lock_guard<std::mutex> lk(s.mu);
  s.m.clear();
  s.loaded = true;  // ignore the file: it is about to be replaced
  const std::string path = cache_path_uncached();
  std::error_code ec;
  if (!path.empty() && path != "off") std::filesystem::remove(path, ec);
}

KernelMeasure measure_kernel_for_testing(const KernelEntry& e, size_t bytes) {
  ProbeBuffer b = make_buffer(bytes);
  return measure_all({&e}, b)[0];
}

void set_kernel_choice_for_testing(const char* policy) { g_policy_override = policy; }

}  // namespace llrt
