#pragma once
#include <string>

#include "cli_args.h"

namespace llrt::cli {
int cmd_run(Args& a);
int cmd_chat(Args& a);
int cmd_tokenize(Args& a);
int cmd_inspect(Args& a);
int cmd_bench(Args& a);
int cmd_batched_bench(Args& a);
int cmd_caps(Args& a);
int cmd_perplexity(Args& a);
int cmd_list(Args& a);
// Help texts (cli_help.cpp): the global usage, and one command's (the usage for an unknown one).
const char* usage();
std::string command_help(const std::string& cmd);
int cmd_serve(Args& a);
}  // namespace llrt::cli
