// llrt: model references by name, resolved offline in the Hugging Face cache (as transformers
// does with HF_HUB_OFFLINE=1), for the CLI, the server and any other front end.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace llrt {

// The Hugging Face hub cache folder: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub,
// else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (huggingface_hub's order).
// The folder need not exist.
std::filesystem::path hf_hub_cache_dir();

// True when `ref` has the form of a Hub repository id: "org/name" (letters, digits, '-', '_', '.';
// no "..", no leading '.' or '-').
bool is_hub_repo_id(const std::string& ref);

// A checkpoint folder for `ref`: an existing directory as it is; otherwise, for "org/name",
// <cache>/models--org--name/snapshots/<the commit in refs/main> (or refs/REV for "org/name@REV",
// or the snapshot folder named REV). Nothing is downloaded. Error{Io} when absent, saying what was
// tried and where (the cache folder, the refs file, the snapshots present) and how to fetch it.
std::filesystem::path resolve_model_path(const std::string& ref);

// Every cached model repository: (repo id "org/name", its refs/main snapshot folder, or the empty
// path when refs/main or its snapshot is missing), in name order. Empty when the cache is absent.
std::vector<std::pair<std::string, std::filesystem::path>> hf_cached_models(const std::filesystem::path& cache);

}  // namespace llrt
