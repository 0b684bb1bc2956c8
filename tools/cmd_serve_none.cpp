// llrt serve in a build without cpp-httplib (a cross build): a clear error, not a missing command.
#include "cli_common.h"
#include "llrt/error.h"

namespace llrt::cli {
int cmd_serve(Args&) {
  fail(ErrorCode::InvalidArgument,
       "this llrt was built without the HTTP server (cpp-httplib was not found at build time: install "
       "libcpp-httplib-dev and rebuild)");
}
}  // namespace llrt::cli
