// Model references by name in the Hugging Face cache (include/llrt/hub.h).
//
// The cache layout (huggingface_hub's file_download.py): <cache>/models--<org>--<name>/
//   refs/<revision>           a file holding the commit hash the revision points to
//   snapshots/<commit>/...    the repository's files at that commit (links into blobs/)
#include "llrt/hub.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "llrt/error.h"

namespace fs = std::filesystem;

namespace llrt {

namespace {
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }
bool valid_part(const std::string& s) {
  if (s.empty() || s.size() > 96 || s[0] == '.' || s[0] == '-' || s.find("..") != std::string::npos) return false;
  return std::all_of(s.begin(), s.end(), name_char);
}
std::string read_ref(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  if (!f || !std::getline(f, s)) return {};
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return valid_part(s) ? s : std::string();
}
fs::path repo_folder(const fs::path& cache, const std::string& org, const std::string& name) {
  return cache / ("models--" + org + "--" + name);
}
}  // namespace

fs::path hf_hub_cache_dir() {
  for (const char* v : {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"})
    if (!env(v).empty()) return env(v);
  if (!env("HF_HOME").empty()) return fs::path(env("HF_HOME")) / "hub";
  if (!env("XDG_CACHE_HOME").empty()) return fs::path(env("XDG_CACHE_HOME")) / "huggingface" / "hub";
  return fs::path(env("HOME").empty() ? "/" : env("HOME")) / ".cache" / "huggingface" / "hub";
}

bool is_hub_repo_id(const std::string& ref) {
  const size_t slash = ref.find('/');
  if (slash == std::string::npos || ref.find('/', slash + 1) != std::string::npos) return false;
  return valid_part(ref.substr(0, slash)) && valid_part(ref.substr(slash + 1));
}

fs::path resolve_model_path(const std::string& ref) {
  std::error_code ec;
  if (!ref.empty() && fs::is_directory(ref, ec)) return ref;
  std::string id = ref, rev = "main";
  if (const size_t at = ref.find('@'); at != std::string::npos) {
    id = ref.substr(0, at);
    rev = ref.substr(at + 1);
  }
  if (!is_hub_repo_id(id) || !valid_part(rev))
    fail(ErrorCode::Io, ref + " is not a directory" +
                            (ref.find('/') == std::string::npos || ref[0] == '/' || ref[0] == '.'
                                 ? std::string(" (expected a Hugging Face checkpoint folder, or a Hub name such as meta-llama/Llama-3.2-1B-Instruct)")
                                 : std::string(" and not a Hub name (org/name[@revision])")));
  const fs::path cache = hf_hub_cache_dir();
  const fs::path repo = repo_folder(cache, id.substr(0, id.find('/')), id.substr(id.find('/') + 1));
  const std::string fetch = " (llrt does not download: fetch it with `huggingface-cli download " + id +
                            "` or `hf download " + id + "`, or set HF_HUB_CACHE / HF_HOME)";
  if (!fs::is_directory(repo, ec))
    fail(ErrorCode::Io, ref + " is not a directory, and the Hugging Face cache has no " + repo.filename().string() + ": looked in " +
                            repo.string() + fetch);
  std::string commit = read_ref(repo / "refs" / rev);
  if (commit.empty() && fs::is_directory(repo / "snapshots" / rev, ec)) commit = rev;  // a commit given as the revision
  std::string present;
  for (const auto& e : fs::directory_iterator(repo / "snapshots", ec)) present += (present.empty() ? "" : ", ") + e.path().filename().string();
  if (commit.empty())
    fail(ErrorCode::Io, id + ": " + (repo / "refs" / rev).string() + " is missing or unreadable, so revision '" + rev +
                            "' is unknown offline (snapshots present: " + (present.empty() ? "none" : present) + ")" + fetch);
  const fs::path snap = repo / "snapshots" / commit;
  if (!fs::is_directory(snap, ec))
    fail(ErrorCode::Io, id + ": refs/" + rev + " names commit " + commit + " but " + snap.string() + " does not exist (snapshots present: " +
                            (present.empty() ? "none" : present) + ")" + fetch);
  if (!fs::exists(snap / "config.json", ec))
    fail(ErrorCode::Io, id + ": the snapshot " + snap.string() + " has no config.json (an incomplete download?)" + fetch);
  return snap;
}

std::vector<std::pair<std::string, fs::path>> hf_cached_models(const fs::path& cache) {
  std::vector<std::pair<std::string, fs::path>> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("models--", 0) != 0 || !e.is_directory(ec)) continue;
    const std::string rest = n.substr(8);
    const size_t sep = rest.find("--");
    if (sep == std::string::npos) continue;
    const std::string id = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
    const std::string commit = read_ref(e.path() / "refs" / "main");
    const fs::path snap = commit.empty() ? fs::path() : e.path() / "snapshots" / commit;
    out.emplace_back(id, !snap.empty() && fs::is_directory(snap, ec) ? snap : fs::path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace llrt
