// llrt-inspect MODEL_DIR [--json] [--ctx N]: the foundation's diagnostics tool
// (the same as `llrt inspect`). Exit status 1 when the model cannot run here.
#include <cstdio>
#include <string>

#include "cli_common.h"
#include "llrt/error.h"

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::fputs(llrt::cli::command_help("inspect").c_str(), stdout);
      return 0;
    }
  try {
    llrt::cli::Args args(argc, argv, 1);
    return llrt::cli::cmd_inspect(args);
  } catch (const llrt::Error& e) {
    std::fprintf(stderr, "llrt-inspect: error [%s]: %s\n", llrt::error_code_name(e.code()), e.what());
    return 2;
  }
}
