#pragma once
// Hand-made torch.save archives for tests of the reader's refusals: pickle programs written opcode
// by opcode, packed with LibTorch's own zip writer (as torch.save packs them).
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mil::testing {

/// A pickle program, opcode by opcode (protocol 2, as torch.save writes).
class Pickle {
 public:
  Pickle() { bytes_ = "\x80\x02"; }  // PROTO 2
  Pickle& global(const std::string& module, const std::string& name) {
    return raw("c" + module + "\n" + name + "\n");
  }
  Pickle& stack_global(const std::string& module, const std::string& name) {
    return text(module).text(name).raw("\x93");
  }
  Pickle& text(const std::string& s) { return raw("X" + le32(std::uint32_t(s.size())) + s); }
  Pickle& integer(std::int32_t v) { return raw("J" + le32(std::uint32_t(v))); }
  /// LONG1: an integer of any size up to 64 bits.
  Pickle& long_int(std::int64_t v) {
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes += char((std::uint64_t(v) >> (8 * i)) & 0xff);
    return raw(std::string("\x8a\x08", 2) + bytes);
  }
  Pickle& none() { return raw("N"); }
  Pickle& mark() { return raw("("); }
  Pickle& tuple() { return raw("t"); }
  Pickle& empty_tuple() { return raw(")"); }
  Pickle& empty_list() { return raw("]"); }
  Pickle& empty_dict() { return raw("}"); }
  Pickle& append() { return raw("a"); }
  Pickle& setitem() { return raw("s"); }
  Pickle& reduce() { return raw("R"); }
  Pickle& put(std::uint8_t slot) { return raw(std::string("q") + char(slot)); }
  Pickle& get(std::uint8_t slot) { return raw(std::string("h") + char(slot)); }
  Pickle& pop() { return raw("0"); }
  /// A tuple of ints, e.g. a tensor's size.
  Pickle& int_tuple(const std::vector<std::int32_t>& values) {
    mark();
    for (std::int32_t v : values) integer(v);
    return tuple();
  }
  /// BINPERSID of ('storage', torch.<type>, key, 'cpu', numel): a storage record.
  Pickle& storage(const std::string& type, const std::string& key, std::int32_t numel) {
    mark().text("storage").global("torch", type).text(key).text("cpu").integer(numel).tuple();
    return raw("Q");
  }
  /// _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()).
  Pickle& tensor(const std::string& type, const std::string& key, std::int32_t numel,
                 std::int32_t offset, const std::vector<std::int32_t>& sizes,
                 const std::vector<std::int32_t>& strides) {
    global("torch._utils", "_rebuild_tensor_v2").mark().storage(type, key, numel).integer(offset);
    int_tuple(sizes).int_tuple(strides).raw("\x89");
    global("collections", "OrderedDict").empty_tuple().reduce();
    return tuple().reduce();
  }
  Pickle& stop() { return raw("."); }
  Pickle& raw(const std::string& bytes) {
    bytes_ += bytes;
    return *this;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  static std::string le32(std::uint32_t v) {
    std::string out(4, '\0');
    for (int i = 0; i < 4; ++i) out[std::size_t(i)] = char((v >> (8 * i)) & 0xff);
    return out;
  }
  std::string bytes_;
};

/// A zip archive as torch.save writes it: "archive/data.pkl" holding `pickle`, and each of
/// `records` (name, bytes) as "archive/<name>".
inline std::vector<char> torch_save_archive(
    const std::string& pickle,
    const std::vector<std::pair<std::string, std::string>>& records = {}) {
  std::vector<char> out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* data, std::size_t size) {
      const char* bytes = static_cast<const char*>(data);
      out.insert(out.end(), bytes, bytes + size);
      return size;
    });
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    for (const auto& [name, bytes] : records) writer.writeRecord(name, bytes.data(), bytes.size());
    writer.writeEndOfFile();
  }
  return out;
}

}  // namespace mil::testing
