// llrt: the command-line front end.
//   llrt run MODEL_DIR -p PROMPT | --ids "1 2 3"   generate (streams text)
//   llrt chat MODEL_DIR                           interactive multi-turn chat
//   llrt tokenize MODEL_DIR TEXT                  ids (--pieces, --no-bos, --file F, --stdin)
//   llrt inspect MODEL_DIR [--json] [--ctx N]     diagnostics (also: llrt-inspect)
//   llrt bench MODEL_DIR                          pp/tg throughput like llama-bench
//   llrt batched-bench MODEL_DIR                  many sequences per step like llama-batched-bench
//   llrt caps [--json]                            what this machine can run
//   llrt perplexity MODEL_DIR -f FILE             llama-perplexity's measure
//   llrt list [DIR ...]                           checkpoints found, with inspect's verdict
//   llrt serve MODEL_DIR                          OpenAI-compatible HTTP server
// The help texts: cli_help.cpp.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli_common.h"
#include "llrt/error.h"

using namespace llrt;

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(cli::usage(), argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "version") {
    std::printf("llrt %s\n", LLRT_VERSION);
    return 0;
  }
  for (int i = 2; i < argc; ++i)  // `llrt CMD --help`: that command's options
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::fputs(cli::command_help(cmd).c_str(), stdout);
      return 0;
    }
  try {
    cli::Args args(argc, argv, 2);
    if (cmd == "run") return cli::cmd_run(args);
    if (cmd == "chat") return cli::cmd_chat(args);
    if (cmd == "tokenize") return cli::cmd_tokenize(args);
    if (cmd == "inspect") return cli::cmd_inspect(args);
    if (cmd == "bench") return cli::cmd_bench(args);
    if (cmd == "batched-bench") return cli::cmd_batched_bench(args);
    if (cmd == "caps") return cli::cmd_caps(args);
    if (cmd == "perplexity") return cli::cmd_perplexity(args);
    if (cmd == "list") return cli::cmd_list(args);
    if (cmd == "serve") return cli::cmd_serve(args);
    std::fprintf(stderr, "llrt: unknown command '%s'\n%s", cmd.c_str(), cli::usage());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "llrt %s: error [%s]: %s\n", cmd.c_str(), error_code_name(e.code()), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llrt %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
