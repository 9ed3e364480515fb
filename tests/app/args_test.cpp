#include "app/args.h"

#include <gtest/gtest.h>

#include "tests/support/expect_throw.h"

namespace mil::app {

TEST(Args, ReadsSeparateAndInlineValuesFlagsAndPositionals) {
  const Args a(
      {"sweep.json", "--epochs", "5", "--lr=0.001", "--dry-run", "--set", "a=1", "--set", "b=2"},
      {"epochs", "lr", "set"}, {"dry-run"});
  EXPECT_EQ(a.get_int("epochs", 0), 5);
  EXPECT_DOUBLE_EQ(a.get_double("lr", 0), 0.001);
  EXPECT_TRUE(a.has("dry-run"));
  EXPECT_EQ(a.get_all("set"), (std::vector<std::string>{"a=1", "b=2"}));
  EXPECT_EQ(a.positional(), std::vector<std::string>{"sweep.json"});
  EXPECT_EQ(a.get("missing", "default"), "default");
}

TEST(Args, RejectsUnknownOptionsMissingValuesAndBadNumbers) {
  MIL_EXPECT_THROW_WITH(Args({"--bogus", "1"}, {"epochs"}, {}), "unknown option --bogus");
  MIL_EXPECT_THROW_WITH(Args({"--epochs"}, {"epochs"}, {}), "--epochs needs a value");
  MIL_EXPECT_THROW_WITH(Args({"--epochs", "5x"}, {"epochs"}, {}).get_int("epochs", 0),
                        "'5x' is not a valid number");
  MIL_EXPECT_THROW_WITH(Args({}, {"out"}, {}).require("out"), "--out is required");
}

}  // namespace mil::app
