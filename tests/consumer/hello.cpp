// A program using an installed llrt through pkg-config (README "Installing"; scripts/install_check.sh):
//   c++ -std=c++20 hello.cpp $(pkg-config --cflags --libs llrt) && ./a.out MODEL_DIR
#include <cstdio>
#include <llrt/generate.h>
#include <llrt/model.h>
#include <llrt/tokenizer.h>

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]), 2;
  auto model = llrt::Model::load(argv[1]);
  auto tok = llrt::Tokenizer::load(argv[1]);
  llrt::Context ctx(model);
  llrt::GenerateOptions g;
  g.max_new_tokens = 16;
  g.sampling.temperature = 0;  // greedy
  llrt::generate(ctx, &tok, tok.encode("Once upon a time"), g,
                 [](int32_t, std::string_view text) { return std::fwrite(text.data(), 1, text.size(), stdout), true; });
  std::puts("");
}
