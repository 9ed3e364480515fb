#include "orchestrator/sweep/file.h"

#include <string>

#include <gtest/gtest.h>

#include "tests/support/expect_throw.h"

namespace mil::orch {
namespace {

using nlohmann::json;

TEST(SweepFile, YamlScalarsAreTypedByTheCoreSchema) {
  const SweepDocument doc = parse_yaml_sweep(R"(
unsigned: 2021
negative: -3
float_exponent: 5e-4
float_dot: 5.0e-4
float_leading_dot: .5
quoted_number: "5"
explicit_string: !!str 7
yes_is_text: yes
flag: true
off: False
nothing: ~
empty:
text: /data/x y
)",
                                             "t.yaml");
  const json& v = doc.value;
  EXPECT_TRUE(v.at("unsigned").is_number_unsigned());  // like JSON: seeds must be unsigned
  EXPECT_EQ(v.at("unsigned"), 2021);
  EXPECT_TRUE(v.at("negative").is_number_integer());
  EXPECT_EQ(v.at("negative"), -3);
  EXPECT_TRUE(v.at("float_exponent").is_number_float());
  EXPECT_EQ(v.at("float_exponent").get<double>(), 5e-4);
  EXPECT_EQ(v.at("float_dot").get<double>(), 5e-4);
  EXPECT_EQ(v.at("float_leading_dot").get<double>(), 0.5);
  EXPECT_EQ(v.at("quoted_number"), "5");
  EXPECT_EQ(v.at("explicit_string"), "7");
  EXPECT_EQ(v.at("yes_is_text"), "yes");  // YAML 1.1 booleans are not the core schema's
  EXPECT_EQ(v.at("flag"), true);
  EXPECT_EQ(v.at("off"), false);
  EXPECT_TRUE(v.at("nothing").is_null());
  EXPECT_TRUE(v.at("empty").is_null());
  EXPECT_EQ(v.at("text"), "/data/x y");
}

TEST(SweepFile, RecordsTheLineOfEveryKeyAndElement) {
  const SweepDocument doc = parse_yaml_sweep(
      "name: x\ndatasets:\n  - name: a\n    root: /a\n  - {name: b}\ngrid:\n  train.lr: [1, 2]\n",
      "t.yaml");
  EXPECT_EQ(doc.lines.at("/name"), 1);
  EXPECT_EQ(doc.lines.at("/datasets/0"), 3);
  EXPECT_EQ(doc.lines.at("/datasets/0/root"), 4);
  EXPECT_EQ(doc.lines.at("/datasets/1/name"), 5);
  EXPECT_EQ(doc.lines.at("/grid/train.lr"), 7);
  EXPECT_EQ(source_location("t.yaml", doc.lines, "/datasets/0/root"), "t.yaml:4");
  EXPECT_EQ(source_location("t.yaml", doc.lines, "/datasets/0/nope"), "t.yaml");
}

TEST(SweepFile, PointerTokensAreEscaped) {
  EXPECT_EQ(pointer_append("/grid", "a/b~c"), "/grid/a~1b~0c");
}

TEST(SweepFile, YamlErrorsNameFileAndLine) {
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep("name: x\ndatasets: [\n  {name: a\n", "bad.yaml"),
                        "bad.yaml:");
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep("name: x\ndatasets: [\n  {name: a\n", "bad.yaml"),
                        "invalid YAML");
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep("name: x\nseeds: [1]\nname: y\n", "dup.yaml"),
                        "dup.yaml:3: duplicate key 'name' (first on line 1)");
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep("train:\n  lr: .inf\n", "inf.yaml"),
                        "inf.yaml:2: .inf is not a number");
  MIL_EXPECT_THROW_WITH(parse_yaml_sweep("train:\n  lr: !!float 1\n", "tag.yaml"),
                        "tag.yaml:2: tag");
}

TEST(SweepFile, JsonValuesComeFromTheJsonParserWithLinesFromYaml) {
  const SweepDocument doc =
      parse_json_sweep("{\n  \"name\": \"x\",\n  \"seeds\": [1, 2]\n}\n", "s.json");
  EXPECT_EQ(doc.value, json::parse(R"({"name": "x", "seeds": [1, 2]})"));
  EXPECT_EQ(doc.lines.at("/seeds"), 3);
  EXPECT_EQ(doc.lines.at("/seeds/1"), 3);
  MIL_EXPECT_THROW_WITH(parse_json_sweep("{\"name\": }", "s.json"), "s.json: invalid JSON");
}

}  // namespace
}  // namespace mil::orch
