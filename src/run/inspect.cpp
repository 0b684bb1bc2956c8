#include "llrt/inspect.h"

#include "src/run/inspect_json.h"

#include <cstdio>
#include <sstream>

#include "llrt/batch.h"
#include "llrt/cuda.h"
#include "llrt/error.h"
#include "src/engine/kernel_choice.h"
#include "src/engine/kernels.h"
#include "src/engine/llama.h"
#include "llrt/tokenizer.h"

namespace llrt {

using nlohmann::json;

namespace {
std::string human_bytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(b) / double(1ull << 30));
  else if (b >= (1ull << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", double(b) / double(1ull << 20));
  else if (b >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", double(b) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%llu B", (unsigned long long)b);
  return buf;
}
}  // namespace

json capability_report() {
  const CpuInfo& c = cpu_info();
  // Capabilities include CUDA's: load the CUDA module first (when present), so its Backend::Cuda
  // kernels are in the registry listed below.
  const bool cuda_module = cuda_built();
  json j;
  j["cpu"] = {{"vendor", c.vendor}, {"model", c.model}, {"physical_cores", c.physical_cores},
              {"logical_cores", c.logical_cores}, {"flags", cpu_flag_names()},
              {"mem_total_bytes", c.mem_total_bytes}, {"mem_available_bytes", c.mem_available_bytes}};
  j["isa_cap"] = backend_name(isa_cap());
  json backends = json::array();
  for (int b = 0; b < kNumBackends; ++b) {
    Backend be = Backend(b);
    // Only this build's architecture (x86 levels on aarch64, or ARM ones on x86-64, can never be).
#if defined(__aarch64__)
    if (be != Backend::Ref && be != Backend::Cuda && !backend_is_arm(be)) continue;
#else
    if (backend_is_arm(be)) continue;
#endif
    backends.push_back({{"name", backend_name(be)}, {"hardware", backend_hw_supported(be)}, {"usable", backend_usable(be)}});
  }
  j["backends"] = backends;
  json ks = json::array();
  for (const auto& e : KernelRegistry::global().all())
    ks.push_back({{"name", e.name}, {"op", op_name(e.op)}, {"weight", dtype_name(e.wtype)}, {"activation", dtype_name(e.atype)},
                  {"backend", backend_name(e.backend)},
                  {"usable", backend_usable(e.backend) && (e.backend != Backend::Cuda || e.min_cc <= cuda_device_cc())}});
  {
    size_t i = 0;  // CUDA entries: the compute capability each needs
    for (const auto& e : KernelRegistry::global().all()) {
      if (e.backend == Backend::Cuda) ks[i]["min_compute_capability"] = std::to_string(e.min_cc / 10) + "." + std::to_string(e.min_cc % 10);
      ++i;
    }
  }
  j["kernels"] = ks;
  // Which kernel the engine runs per (op, weight dtype) and phase, and why (src/kernel_choice.h).
  json choice = {{"policy", kernel_choice_policy()}, {"cache", kernel_cache_path()}, {"choices", json::array()}};
  for (DType w : {DType::BF16, DType::F16, DType::F32, DType::I8}) {
    const Op op = Op::Linear;
    for (Phase ph : {Phase::Decode, Phase::Prefill}) {
      const KernelChoice kc = choose_kernel(op, w, ph);
      if (kc.entry)
        choice["choices"].push_back({{"op", op_name(op)}, {"weight", dtype_name(w)}, {"phase", ph == Phase::Decode ? "decode" : "prefill"},
                                     {"kernel", kc.entry->name}, {"why", kc.why}});
    }
  }
  j["kernel_choice"] = choice;
  // CUDA: every device, and for the one the engine uses, which dtypes it can run
  // (a dtype is listed when every op a Llama model needs has a usable Backend::Cuda entry).
  j["cuda_built"] = cuda_module;
  j["cuda_module"] = cuda_module_path();
  j["cuda_status"] = cuda_status();
  json devs = json::array();
  for (const auto& d : cuda_devices()) {
    json dj = {{"index", d.index}, {"name", d.name}, {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
               {"total_bytes", d.total_bytes}, {"free_bytes", d.free_bytes}, {"multiprocessors", d.sm_count},
               {"selected", d.index == cuda_selected_device()}};
    if (d.index == cuda_selected_device()) {
      json dts = json::array();
      const auto& reg = KernelRegistry::global();
      for (DType w : {DType::F32, DType::F16, DType::BF16, DType::I8}) {
        const Op lin = Op::Linear;
        const DType other = w == DType::I8 ? DType::BF16 : w;  // w8a8: norms/embeddings stay BF16
        bool ok = reg.find_best(lin, w, DType::F32, DeviceKind::Cuda) &&
                  reg.find_best(Op::Embedding, other, DType::F32, DeviceKind::Cuda) &&
                  reg.find_best(Op::RmsNorm, other, DType::F32, DeviceKind::Cuda);
        for (Op op : {Op::RopeKvStore, Op::AttentionAllHeads, Op::SiluMul, Op::Add})
          ok = ok && reg.find_best(op, DType::F32, DType::F32, DeviceKind::Cuda);
        if (ok) dts.push_back(dtype_name(w));
      }
      dj["dtypes"] = dts;
    }
    devs.push_back(dj);
  }
  j["cuda_devices"] = devs;
  return j;
}

std::string format_capabilities(const json& j) {
  std::ostringstream os;
  const auto& c = j["cpu"];
  os << "CPU: " << c["model"].get<std::string>() << " (" << c["physical_cores"] << " cores, " << c["logical_cores"] << " threads)\n";
  os << "ISA flags:";
  for (const auto& f : c["flags"]) os << " " << f.get<std::string>();
  os << "\nMemory: " << human_bytes(c["mem_total_bytes"].get<uint64_t>()) << " total, "
     << human_bytes(c["mem_available_bytes"].get<uint64_t>()) << " available\n";
  os << "LLRT_ISA cap: " << j["isa_cap"].get<std::string>() << "\nBackends:";
  for (const auto& b : j["backends"])
    os << " " << b["name"].get<std::string>() << (b["usable"].get<bool>() ? "[usable]" : b["hardware"].get<bool>() ? "[capped]" : "[no]");
  os << "\nKernels (" << j["kernels"].size() << " registered):\n";
  for (const auto& k : j["kernels"])
    os << "  " << k["name"].get<std::string>() << (k["usable"].get<bool>() ? "" : "  (not usable here)") << "\n";
  if (j.contains("kernel_choice")) {
    const auto& kc = j["kernel_choice"];
    os << "Kernel choice (" << kc["policy"].get<std::string>() << "; cache " << kc["cache"].get<std::string>() << "):\n";
    for (const auto& c : kc["choices"])
      os << "  " << c["op"].get<std::string>() << " " << c["weight"].get<std::string>() << " " << c["phase"].get<std::string>() << ": "
         << c["kernel"].get<std::string>() << " [" << c["why"].get<std::string>() << "]\n";
  }
  if (j.value("cuda_built", false)) os << "CUDA module: " << j.value("cuda_module", std::string()) << "\n";
  if (j["cuda_devices"].empty()) os << "CUDA devices: none (" << j.value("cuda_status", std::string()) << ")\n";
  for (const auto& d : j["cuda_devices"]) {
    os << "CUDA device " << d["index"] << ": " << d["name"].get<std::string>() << ", compute capability "
       << d["compute_capability"].get<std::string>() << ", " << human_bytes(d["total_bytes"].get<uint64_t>()) << " ("
       << human_bytes(d["free_bytes"].get<uint64_t>()) << " free), " << d["multiprocessors"] << " SMs";
    if (d.contains("dtypes")) {
      os << "; runs:";
      for (const auto& t : d["dtypes"]) os << " " << t.get<std::string>();
    }
    os << (d["selected"].get<bool>() ? " [selected]" : "") << "\n";
  }
  return os.str();
}

json inspect_model(const std::filesystem::path& dir, const InspectOptions& opt) {
  json r;
  r["path"] = dir.string();
  r["runnable"] = false;
  try {
    Checkpoint ck = Checkpoint::open(dir);
    const ModelConfig& c = ck.config();
    ModelFamily fam = classify_model(ck);
    r["family"] = fam.family;
    r["variant"] = fam.variant;
    r["sharded"] = fam.sharded;
    r["quantized"] = fam.quantized;
    r["evidence"] = fam.evidence;
    json files = json::array();
    for (const auto& s : ck.shards())
      files.push_back({{"file", s.path().filename().string()}, {"tensors", s.tensors().size()}, {"data_bytes", s.data_bytes()}});
    r["weight_files"] = files;
    r["architecture"] = {{"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size}, {"intermediate_size", c.intermediate_size},
                         {"num_hidden_layers", c.num_hidden_layers}, {"num_attention_heads", c.num_attention_heads},
                         {"num_key_value_heads", c.num_key_value_heads}, {"head_dim", c.head_dim},
                         {"max_position_embeddings", c.max_position_embeddings}, {"rms_norm_eps", c.rms_norm_eps},
                         {"rope_theta", c.rope_theta}, {"rope_type", rope_type_name(c.rope_scaling.type)},
                         {"rope_factor", c.rope_scaling.factor}, {"tie_word_embeddings", c.tie_word_embeddings},
                         {"eos_token_ids", c.eos_token_ids}, {"parameters", llama_param_count(c)}};
    if (c.bos_token_id) r["architecture"]["bos_token_id"] = *c.bos_token_id;
    json hist = json::object();
    for (const auto& [dt, b] : ck.bytes_by_dtype()) hist[dtype_name(dt)] = b;
    r["dtype_bytes"] = hist;
    TokenizerFiles tf = find_tokenizer_files(dir);
    json tj = json::array();
    for (const auto& [f, kind] : tf.files) tj.push_back({{"file", f}, {"kind", kind}});
    r["tokenizer_files"] = tj;
    r["chat_template"] = tf.has_chat_template;
    // What stops the model running here besides the checkpoint: the first becomes "error".
    json problems = json::array();
    auto problem = [&](const char* code, const std::string& message) { problems.push_back({{"code", code}, {"message", message}}); };
    try {
      Tokenizer tok = Tokenizer::load(dir);
      r["tokenizer"] = {{"loads", true}, {"vocab_size", tok.vocab_size()}};
    } catch (const Error& e) {
      r["tokenizer"] = {{"loads", false}, {"error", e.what()}};
      problem("Tokenizer", std::string("the tokenizer does not load, so no text can be encoded: ") + e.what());
    }
    if (opt.ctx > c.max_position_embeddings)
      problem("ContextOverflow", "a context of " + std::to_string(opt.ctx) + " positions exceeds the model's max_position_embeddings (" +
                                     std::to_string(c.max_position_embeddings) + "): lower --ctx");
    const int threads = opt.threads > 0 ? opt.threads : cpu_info().physical_cores;
    const int64_t ctx = opt.ctx > 0 ? opt.ctx : std::min<int64_t>(c.max_position_embeddings, 4096);
    MemoryEstimate m = estimate_memory(ck, ctx, std::min(opt.batch, ctx), threads, opt.kv_dtype);
    r["memory"] = {{"weights_bytes", m.weight_bytes}, {"kv_bytes_per_token", m.kv_bytes_per_token}, {"ctx", m.ctx},
                   {"kv_bytes", m.kv_bytes}, {"scratch_bytes", m.scratch_bytes}, {"batch", m.batch},
                   {"total_bytes", m.total()}, {"kv_dtype", dtype_name(opt.kv_dtype)},
                   {"available_bytes", cpu_info().mem_available_bytes},
                   {"fits", cpu_info().mem_available_bytes == 0 || m.total() <= cpu_info().mem_available_bytes}};
    try {  // the batched engine's pool (llrt serve on the CPU, llrt batched-bench): exactly what it reserves
      BatchOptions bo;
      bo.n_ctx = ctx;
      bo.parallel = std::max(opt.parallel, 1);
      bo.block_size = opt.block_size;
      bo.kv_dtype = opt.kv_dtype;
      const KvPoolSize p = kv_pool_size(c, bo);
      r["kv_pool"] = {{"parallel", bo.parallel}, {"ctx", ctx},           {"block_size", p.block_size},
                      {"blocks", p.blocks},      {"block_bytes", p.block_bytes}, {"bytes", p.bytes},
                      {"kv_dtype", dtype_name(opt.kv_dtype)}};
    } catch (const Error&) {
      // A context the model cannot take: the problem above says so; no pool to report.
    }
    if (opt.check_weights) {  // before the contract, which stops at the first bad quantization scale
      // Every tensor of every dtype; integer tensors (I8 codes) cannot hold NaN/Inf, their
      // float scales can and are scanned like any other float tensor.
      json bad = json::array();
      uint64_t scanned = 0;
      std::string names;
      for (const TensorInfo* ti : ck.tensors()) {
        if (ti->dtype != DType::F32 && ti->dtype != DType::F16 && ti->dtype != DType::BF16 && ti->dtype != DType::F64) continue;
        const Tensor t = ck.tensor(ti->name);
        int64_t first = -1;
        const uint64_t n = count_non_finite(ti->dtype, t.data(), t.numel(), &first);
        ++scanned;
        if (n == 0) continue;
        bad.push_back({{"name", ti->name}, {"dtype", dtype_name(ti->dtype)}, {"non_finite", n}, {"numel", t.numel()}, {"first_index", first}});
        if (bad.size() <= 5) names += std::string(names.empty() ? "" : ", ") + ti->name + " (" + std::to_string(n) + " of " +
                                      std::to_string(t.numel()) + ", first at " + std::to_string(first) + ")";
      }
      r["weights_check"] = {{"float_tensors_scanned", scanned}, {"non_finite_tensors", bad}};
      if (!bad.empty())
        problem("NonFinite", std::to_string(bad.size()) + " tensor" + (bad.size() > 1 ? "s hold" : " holds") + " NaN/Inf: " + names +
                                 (bad.size() > 5 ? ", ..." : "") + " - the checkpoint is damaged: re-download or re-convert it");
    }
    // The tensor contract (may throw: reported below, with the rest of the report kept).
    validate_llama_checkpoint(ck);
    r["tensors_ok"] = true;
    json verdicts = json::array();
    bool all_ok = true;
    for (const auto& v : check_kernels(llama_kernel_needs(ck, opt.kv_dtype))) {
      json e = {{"op", op_name(v.need.op)}, {"weight", dtype_name(v.need.wtype)}, {"activation", dtype_name(v.need.atype)},
                {"needed_by", v.need.what}};
      if (v.chosen) {
        e["kernel"] = v.chosen->name;
        e["backend"] = backend_name(v.chosen->backend);
        if (v.need.op == Op::Linear) {  // what the engine runs, per phase
          for (Phase ph : {Phase::Decode, Phase::Prefill}) {
            const KernelChoice kc = choose_kernel(v.need.op, v.need.wtype, ph);
            if (!kc.entry) continue;
            e[ph == Phase::Decode ? "decode" : "prefill"] = {{"kernel", kc.entry->name}, {"why", kc.why}};
          }
          e["kernel"] = e["decode"]["kernel"];
        }
      } else {
        e["kernel"] = nullptr;
        e["message"] = unsupported_kernel_message(v);
        all_ok = false;
      }
      verdicts.push_back(e);
    }
    r["kernels"] = verdicts;
    if (!all_ok) problem("UnsupportedKernel", "a kernel the model needs is missing here (see kernels)");
    if (!r["memory"]["fits"].get<bool>()) problem("Memory", "the estimate exceeds available memory");
    r["problems"] = problems;
    r["runnable"] = problems.empty();
    if (!problems.empty()) r["error"] = problems[0];
  } catch (const Error& e) {
    r["error"] = {{"code", error_code_name(e.code())}, {"message", e.what()}};
  }
  return r;
}

std::string format_inspect(const json& r) {
  std::ostringstream os;
  os << "Model: " << r["path"].get<std::string>() << "\n";
  if (r.contains("family")) {
    os << "Family: " << r["family"].get<std::string>() << "\nVariant: " << r["variant"].get<std::string>() << "\nEvidence:\n";
    for (const auto& e : r["evidence"]) os << "  - " << e.get<std::string>() << "\n";
    const auto& a = r["architecture"];
    os << "Architecture: " << a["num_hidden_layers"] << " layers, hidden " << a["hidden_size"] << ", intermediate "
       << a["intermediate_size"] << ", heads " << a["num_attention_heads"] << " (kv " << a["num_key_value_heads"] << ", head_dim "
       << a["head_dim"] << "), vocab " << a["vocab_size"] << ", rope " << a["rope_type"].get<std::string>() << " theta "
       << a["rope_theta"] << ", max positions " << a["max_position_embeddings"] << ", " << a["parameters"] << " parameters\n";
    os << "Weight files:";
    for (const auto& f : r["weight_files"]) os << " " << f["file"].get<std::string>() << " (" << f["tensors"] << " tensors)";
    os << "\nBytes by dtype:";
    for (auto it = r["dtype_bytes"].begin(); it != r["dtype_bytes"].end(); ++it)
      os << " " << it.key() << " " << human_bytes(it.value().get<uint64_t>());
    os << "\nTokenizer files:";
    if (r["tokenizer_files"].empty()) os << " none";
    for (const auto& f : r["tokenizer_files"]) os << "\n  - " << f["file"].get<std::string>() << ": " << f["kind"].get<std::string>();
    os << "\n";
    if (r.contains("tokenizer")) {
      const auto& t = r["tokenizer"];
      if (t["loads"].get<bool>()) os << "Tokenizer: loads (vocabulary " << t["vocab_size"] << ")\n";
      else os << "Tokenizer: DOES NOT LOAD: " << t["error"].get<std::string>() << "\n";
    }
  }
  if (r.contains("memory")) {
    const auto& m = r["memory"];
    os << "Memory estimate (ctx " << m["ctx"] << ", batch " << m["batch"] << "): weights "
       << human_bytes(m["weights_bytes"].get<uint64_t>()) << " (" << m["weights_bytes"] << " bytes) + KV cache "
       << human_bytes(m["kv_bytes"].get<uint64_t>()) << " (" << human_bytes(m["kv_bytes_per_token"].get<uint64_t>())
       << "/token, " << m["kv_dtype"].get<std::string>() << ") + scratch " << human_bytes(m["scratch_bytes"].get<uint64_t>()) << " = "
       << human_bytes(m["total_bytes"].get<uint64_t>()) << "; available " << human_bytes(m["available_bytes"].get<uint64_t>())
       << (m["fits"].get<bool>() ? " (fits)" : " (DOES NOT FIT)") << "\n";
  }
  if (r.contains("kv_pool")) {
    const auto& p = r["kv_pool"];
    os << "KV pool of the batched engine (--parallel " << p["parallel"] << " x ctx " << p["ctx"] << ", " << p["kv_dtype"].get<std::string>()
       << "): " << p["blocks"] << " blocks x " << p["block_size"] << " positions x " << human_bytes(p["block_bytes"].get<uint64_t>())
       << " = " << human_bytes(p["bytes"].get<uint64_t>()) << " (" << p["bytes"] << " bytes, reserved; touched as used)\n";
  }
  if (r.contains("kernels")) {
    os << "Kernels on this machine:\n";
    for (const auto& k : r["kernels"]) {
      os << "  " << k["op"].get<std::string>() << " " << k["weight"].get<std::string>() << "w/" << k["activation"].get<std::string>()
         << "a -> ";
      if (k["kernel"].is_null()) os << "MISSING: " << k["message"].get<std::string>() << "\n";
      else if (k.contains("prefill"))
        os << "decode " << k["decode"]["kernel"].get<std::string>() << " [" << k["decode"]["why"].get<std::string>() << "]\n"
           << "      prefill " << k["prefill"]["kernel"].get<std::string>() << " [" << k["prefill"]["why"].get<std::string>() << "]\n";
      else os << k["kernel"].get<std::string>() << "\n";
    }
  }
  if (r.contains("weights_check")) {
    const auto& w = r["weights_check"];
    os << "Weights check: " << w["float_tensors_scanned"] << " float tensors scanned, ";
    if (w["non_finite_tensors"].empty()) os << "all finite\n";
    else os << w["non_finite_tensors"].size() << " hold NaN/Inf:\n";
    for (const auto& b : w["non_finite_tensors"])
      os << "  " << b["name"].get<std::string>() << " (" << b["dtype"].get<std::string>() << "): " << b["non_finite"] << " of "
         << b["numel"] << ", first at index " << b["first_index"] << "\n";
  }
  if (r.contains("problems") && r["problems"].size() > 1) {
    os << "Problems:\n";
    for (const auto& p : r["problems"]) os << "  - " << p["code"].get<std::string>() << ": " << p["message"].get<std::string>() << "\n";
  }
  os << "Verdict: " << (r["runnable"].get<bool>() ? "runs here" : "cannot run here");
  if (r.contains("error")) os << " - " << r["error"]["code"].get<std::string>() << ": " << r["error"]["message"].get<std::string>();
  os << "\n";
  return os.str();
}

InspectReport inspect(const std::filesystem::path& dir, const InspectOptions& opt) {
  const json r = inspect_model(dir, opt);
  return {r.value("runnable", false), r.dump(2), format_inspect(r)};
}

CapabilityReport capabilities() {
  const json c = capability_report();
  return {c.dump(2), format_capabilities(c)};
}

}  // namespace llrt
