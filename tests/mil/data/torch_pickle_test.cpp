// Our torch.save reader against a file Python wrote (tests/fixtures/state_dict/misc.pt).
#include "mil/data/torch_pickle.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "mil/data/feature_io.h"
#include "tests/support/expect_throw.h"

namespace {

c10::impl::GenericDict load_misc() {
  const auto value = mil::load_torch_save_bytes(
      mil::read_file_bytes(std::string(MIL_SOURCE_DIR) + "/tests/fixtures/state_dict/misc.pt"));
  return value.toGenericDict();
}

c10::IValue at_key(const c10::impl::GenericDict& dict, const std::string& key) {
  auto it = dict.find(c10::IValue(key));
  if (it == dict.end()) throw std::runtime_error("no key " + key);
  return it->value();
}

}  // namespace

TEST(TorchPickle, ReadsNestedContainersNumbersAndStringsAsPythonWroteThem) {
  const auto dict = load_misc();
  const auto ints = at_key(dict, "ints").toList();
  ASSERT_EQ(ints.size(), 5u);
  EXPECT_EQ(ints.get(0).toInt(), 1);
  EXPECT_EQ(ints.get(1).toInt(), -2);
  EXPECT_EQ(ints.get(2).toInt(), 300);
  EXPECT_EQ(ints.get(3).toInt(), 70000);
  EXPECT_EQ(ints.get(4).toInt(), -(int64_t{1} << 40));
  const auto& floats = at_key(dict, "floats").toTupleRef().elements();
  EXPECT_EQ(floats.at(0).toDouble(), 0.5);
  EXPECT_EQ(floats.at(1).toDouble(), -1e-3);
  EXPECT_EQ(at_key(dict, "name").toStringRef(), "slide_001");
  EXPECT_TRUE(at_key(dict, "flag").toBool());
  EXPECT_TRUE(at_key(dict, "nothing").isNone());
}

TEST(TorchPickle, RebuildsViewsWithTheirOffsetsStridesAndDtypes) {
  const auto dict = load_misc();
  const at::Tensor half_t = at_key(dict, "half_t").toTensor();
  EXPECT_EQ(half_t.scalar_type(), at::kHalf);
  EXPECT_TRUE(half_t.to(at::kFloat).equal(at::arange(6, at::kFloat).reshape({2, 3}).t()));
  EXPECT_TRUE(at_key(dict, "tail").toTensor().equal(at::arange(7, 10, at::kDouble)));
  EXPECT_TRUE(at_key(dict, "head").toTensor().equal(at::arange(0, 2, at::kDouble)));
  const at::Tensor wide = at_key(dict, "long").toTensor();
  EXPECT_EQ(wide.scalar_type(), at::kLong);
  EXPECT_EQ(wide[0][0].item<int64_t>(), -(int64_t{1} << 40));
}

TEST(TorchPickle, RejectsBytesThatAreNotAnArchive) {
  const std::vector<char> junk{'n', 'o', 't', ' ', 'a', ' ', 'z', 'i', 'p'};
  EXPECT_ANY_THROW(mil::load_torch_save_bytes(junk));
}
