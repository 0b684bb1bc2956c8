// llrt list [DIR ...] [--json]: the checkpoints on this machine. Each DIR is searched (3 levels deep,
// symbolic links followed) for folders holding config.json; a Hugging Face hub cache (a folder of
// models--org--name) lists each repository's refs/main snapshot under its name. Default: ~/models
// and the hub cache (llrt::hf_hub_cache_dir). Per checkpoint: family, dtype, size on disk and
// inspect's verdict here (include/llrt/inspect.h; the default context).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "cli_common.h"
#include "llrt/hub.h"
#include "llrt/inspect.h"
#include "src/run/inspect_json.h"
#include "run_common.h"

namespace fs = std::filesystem;

namespace llrt::cli {

namespace {
struct Found {
  std::string name;
  fs::path dir;
};

void walk(const fs::path& root, const fs::path& dir, int depth, std::vector<Found>& out) {
  std::error_code ec;
  if (fs::exists(dir / "config.json", ec)) {
    std::string rel = fs::relative(dir, root, ec).string();
    out.push_back({rel.empty() || rel == "." ? dir.filename().string() : rel, dir});
    return;
  }
  if (depth == 0) return;
  std::vector<fs::path> subs;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec))
    if (e.is_directory(ec) && e.path().filename().string()[0] != '.') subs.push_back(e.path());
  std::sort(subs.begin(), subs.end());
  for (const auto& s : subs) walk(root, s, depth - 1, out);
}

bool is_hub_cache(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind("models--", 0) == 0) return true;
  return false;
}

uint64_t weights_on_disk(const fs::path& dir) {
  uint64_t b = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".safetensors") b += fs::file_size(e.path(), ec), ec.clear();
  return b;
}
}  // namespace

int cmd_list(Args& a) {
  const bool as_json = a.flag({"--json"});
  auto dirs = a.positionals();
  const bool defaults = dirs.empty();
  if (defaults) {
    const char* home = std::getenv("HOME");
    if (home && *home) dirs.push_back(std::string(home) + "/models");
    dirs.push_back(hf_hub_cache_dir().string());
  }
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  std::string table;
  size_t count = 0;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) {
      if (!defaults) fail(ErrorCode::Io, "list: " + d + " is not a directory");
      std::fprintf(stderr, "llrt list: %s: absent\n", d.c_str());
      continue;
    }
    std::vector<Found> found;
    if (is_hub_cache(d)) {
      for (const auto& [id, snap] : hf_cached_models(d))
        if (snap.empty()) std::fprintf(stderr, "llrt list: %s: no refs/main snapshot in %s\n", id.c_str(), d.c_str());
        else found.push_back({id, snap});
    } else {
      walk(d, d, 3, found);
    }
    for (const Found& f : found) {
      InspectOptions o;
      nlohmann::json r;
      try {
        r = inspect_model(f.dir, o);
      } catch (const Error& e) {
        r = {{"runnable", false}, {"error", {{"code", error_code_name(e.code())}, {"message", e.what()}}}};
      }
      std::string dtype;
      if (r.contains("dtype_bytes") && r["dtype_bytes"].is_object())
        for (auto it = r["dtype_bytes"].begin(); it != r["dtype_bytes"].end(); ++it) dtype += (dtype.empty() ? "" : "+") + it.key();
      const std::string family = r.value("family", std::string("?"));
      const bool runs = r.value("runnable", false);
      const std::string why = !runs && r.contains("error") ? r["error"].value("message", std::string()) : "";
      const uint64_t bytes = weights_on_disk(f.dir);
      all.push_back({{"name", f.name}, {"path", f.dir.string()}, {"family", family}, {"dtype", dtype}, {"size_bytes", bytes},
                     {"runnable", runs}, {"verdict", runs ? "runs here" : "cannot run here: " + why}});
      char line[1024];
      std::snprintf(line, sizeof line, "%-40s %-34s %-10s %8.2f GB  %s\n", f.name.c_str(), family.c_str(), dtype.empty() ? "?" : dtype.c_str(),
                    double(bytes) / 1e9, runs ? "runs here" : ("cannot run here: " + why.substr(0, 160)).c_str());
      table += line;
      ++count;
    }
  }
  if (as_json) {
    std::printf("%s\n", all.dump(2).c_str());
  } else {
    std::printf("%-40s %-34s %-10s %11s  %s\n", "NAME", "FAMILY", "DTYPE", "SIZE", "VERDICT");
    std::fputs(table.c_str(), stdout);
    if (count == 0) std::fprintf(stderr, "llrt list: no checkpoint (a folder with config.json) found\n");
  }
  return 0;
}

}  // namespace llrt::cli
