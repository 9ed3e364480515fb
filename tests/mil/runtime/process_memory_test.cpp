#include "mil/runtime/process_memory.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace mil {
namespace {

/// Restores an environment variable on scope exit.
class SavedEnv {
 public:
  explicit SavedEnv(const char* name) : name_(name) {
    if (const char* v = std::getenv(name)) value_ = v;
  }
  ~SavedEnv() { value_ ? ::setenv(name_, value_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> value_;
};

TEST(ProcessTuning, RaisesTheOneDnnPrimitiveCacheUnlessTheUserSetIt) {
  SavedEnv onednn("ONEDNN_PRIMITIVE_CACHE_CAPACITY"), dnnl("DNNL_PRIMITIVE_CACHE_CAPACITY");
  ::unsetenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY");
  ::unsetenv("DNNL_PRIMITIVE_CACHE_CAPACITY");
  EXPECT_EQ(keep_compiled_kernels_for_reuse(), "oneDNN primitive cache of 16384 shapes");
  EXPECT_STREQ(std::getenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY"), "16384");
  // A user's setting under either name wins and is reported.
  ::unsetenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY");
  ::setenv("DNNL_PRIMITIVE_CACHE_CAPACITY", "64", 1);
  EXPECT_EQ(keep_compiled_kernels_for_reuse(),
            "oneDNN primitive cache from DNNL_PRIMITIVE_CACHE_CAPACITY=64");
  EXPECT_EQ(std::getenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY"), nullptr);
}

}  // namespace
}  // namespace mil
