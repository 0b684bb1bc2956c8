// llrt inspect / llrt caps.
#include <cstdio>

#include "cli_common.h"
#include "llrt/inspect.h"
#include "src/run/inspect_json.h"
#include "src/engine/kernel_choice.h"
#include "run_common.h"

namespace llrt::cli {

int cmd_inspect(Args& a) {
  bool as_json = a.flag({"--json"});
  InspectOptions o;
  o.check_weights = a.flag({"--check-weights"});
  ctx_option(a, &o.ctx);
  thread_option(a, &o.threads);
  std::string kv;
  if (a.value({"--kv-type"}, &kv)) o.kv_dtype = parse_kv_type(kv);
  a.number({"--parallel", "-np"}, &o.parallel, 1, 4096, "sequences the batched engine's KV pool holds");
  a.number<int64_t>({"--block-size"}, &o.block_size, 1, 1 << 16, "positions per KV block");
  std::string model_ref;
  auto pos = model_and_positionals(a, "inspect", &model_ref);
  if (!pos.empty()) fail(ErrorCode::InvalidArgument, "inspect: give exactly one MODEL");
  auto r = inspect_model(resolve_model(model_ref), o);
  if (as_json) std::printf("%s\n", r.dump(2).c_str());
  else std::fputs(format_inspect(r).c_str(), stdout);
  return r["runnable"].get<bool>() ? 0 : 1;
}

int cmd_caps(Args& a) {
  bool as_json = a.flag({"--json"});
  if (a.flag({"--retune"})) kernel_choice_retune();  // measure the kernels again (src/engine/kernel_choice.h)
  a.positionals();
  auto c = capability_report();
  if (as_json) std::printf("%s\n", c.dump(2).c_str());
  else std::fputs(format_capabilities(c).c_str(), stdout);
  return 0;
}

}  // namespace llrt::cli
