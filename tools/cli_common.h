#pragma once
#include "cli_args.h"

namespace llrt::cli {
int cmd_run(Args& a);
int cmd_chat(Args& a);
int cmd_tokenize(Args& a);
int cmd_inspect(Args& a);
int cmd_bench(Args& a);
int cmd_caps(Args& a);
int cmd_perplexity(Args& a);
int cmd_serve(Args& a);
}  // namespace llrt::cli
