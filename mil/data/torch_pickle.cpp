#include "mil/data/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>

namespace mil {
namespace {

/// Little-endian unsigned integer of `width` bytes at `p`.
uint64_t read_le(const char* p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// Element type of a legacy typed storage class name ("FloatStorage", ...).
at::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"FloatStorage", at::kFloat}, {"DoubleStorage", at::kDouble},
      {"HalfStorage", at::kHalf},   {"BFloat16Storage", at::kBFloat16},
      {"LongStorage", at::kLong},   {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort}, {"CharStorage", at::kChar},
      {"ByteStorage", at::kByte},   {"BoolStorage", at::kBool}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) throw std::runtime_error("unsupported storage type torch." + name);
  return it->second;
}

/// One value on the pickle stack: an IValue, or a reference to a Python global (class or function).
struct Item {
  c10::IValue value;
  std::string global;  ///< "module.name" when this item is a global, else empty.
};

/// A pickle virtual machine for the subset torch.save emits: containers, numbers, strings,
/// OrderedDicts, tensors rebuilt from the archive's storage records. Anything else is an error
/// naming the global.
class TorchUnpickler {
 public:
  TorchUnpickler(std::string program, caffe2::serialize::PyTorchStreamReader& reader)
      : program_(std::move(program)), reader_(reader) {}

  c10::IValue run() {
    while (true) {
      if (pos_ >= program_.size()) throw std::runtime_error("pickle program has no STOP");
      const unsigned char op = static_cast<unsigned char>(program_[pos_++]);
      switch (op) {
        case 0x80:
          take(1);
          break;  // PROTO
        case 0x95:
          take(8);
          break;  // FRAME
        case '.':
          return pop().value;  // STOP
        case '(':
          marks_.push_back(stack_.size());
          break;  // MARK
        case ')':
          push(c10::ivalue::Tuple::create(std::vector<c10::IValue>{}));
          break;
        case ']':
          push(c10::impl::GenericList(c10::AnyType::get()));
          break;
        case '}':
          push(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get()));
          break;
        case 'N':
          push(c10::IValue());
          break;
        case 0x88:
          push(true);
          break;
        case 0x89:
          push(false);
          break;
        case 'K':
          push(static_cast<int64_t>(read_le(take(1), 1)));
          break;
        case 'M':
          push(static_cast<int64_t>(read_le(take(2), 2)));
          break;
        case 'J':
          push(static_cast<int64_t>(static_cast<int32_t>(read_le(take(4), 4))));
          break;
        case 0x8a:
          push(read_long(static_cast<std::size_t>(read_le(take(1), 1))));
          break;     // LONG1
        case 'G': {  // BINFLOAT (big-endian)
          const char* p = take(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(p[i]);
          double d;
          std::memcpy(&d, &bits, 8);
          push(d);
          break;
        }
        case 'X':
          push(read_counted(4));
          break;  // BINUNICODE
        case 0x8c:
          push(read_counted(1));
          break;  // SHORT_BINUNICODE
        case 0x8d:
          push(read_counted(8));
          break;  // BINUNICODE8
        case 'U':
          push(read_counted(1));
          break;  // SHORT_BINSTRING
        case 'T':
          push(read_counted(4));
          break;  // BINSTRING
        case 'q':
          memo_[read_le(take(1), 1)] = stack_.at(top());
          break;  // BINPUT
        case 'r':
          memo_[read_le(take(4), 4)] = stack_.at(top());
          break;  // LONG_BINPUT
        case 0x94:
          memo_[memo_.size()] = stack_.at(top());
          break;  // MEMOIZE
        case 'h':
          stack_.push_back(memo_get(read_le(take(1), 1)));
          break;  // BINGET
        case 'j':
          stack_.push_back(memo_get(read_le(take(4), 4)));
          break;     // LONG_BINGET
        case 'c': {  // GLOBAL module\nname\n
          const std::string module = read_line();
          const std::string name = read_line();
          push_global(module + "." + name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const std::string name = pop().value.toStringRef();
          const std::string module = pop().value.toStringRef();
          push_global(module + "." + name);
          break;
        }
        case 't':
          push(c10::ivalue::Tuple::create(values_since(pop_mark())));
          break;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const std::size_t n = op - 0x84;
          std::vector<c10::IValue> items(n);
          for (std::size_t i = n; i-- > 0;) items[i] = pop().value;
          push(c10::ivalue::Tuple::create(std::move(items)));
          break;
        }
        case 'a': {  // APPEND
          c10::IValue v = pop().value;
          list_at(top()).push_back(std::move(v));
          break;
        }
        case 'e': {  // APPENDS
          auto items = values_since(pop_mark());
          auto list = list_at(top());
          for (auto& v : items) list.push_back(std::move(v));
          break;
        }
        case 's': {  // SETITEM
          c10::IValue v = pop().value;
          c10::IValue k = pop().value;
          dict_at(top()).insert_or_assign(std::move(k), std::move(v));
          break;
        }
        case 'u': {  // SETITEMS
          auto items = values_since(pop_mark());
          if (items.size() % 2) throw std::runtime_error("SETITEMS with an odd number of values");
          auto dict = dict_at(top());
          for (std::size_t i = 0; i < items.size(); i += 2)
            dict.insert_or_assign(items[i], items[i + 1]);
          break;
        }
        case 'Q': {  // BINPERSID: ('storage', StorageClass, key, location, numel)
          const c10::IValue id = pop().value;
          push(load_storage(id));
          break;
        }
        case 'R': {  // REDUCE
          const c10::IValue args = pop().value;
          const Item callable = pop();
          push(call(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ
          const c10::IValue args = pop().value;
          const Item cls = pop();
          push(call(cls, args));
          break;
        }
        case 'b': {  // BUILD: only OrderedDict `_metadata` occurs in torch.save output; it is
                     // dropped.
          pop();
          if (!stack_.at(top()).value.isGenericDict()) {
            throw std::runtime_error("BUILD on a " + describe(stack_.at(top())) +
                                     " is not supported");
          }
          break;
        }
        case '0':
          pop();
          break;  // POP
        case '1':
          pop_mark_and_values();
          break;  // POP_MARK
        case '2':
          stack_.push_back(stack_.at(top()));
          break;  // DUP
        default: {
          std::ostringstream message;
          message << "unsupported pickle opcode 0x" << std::hex << static_cast<int>(op) << std::dec
                  << " at byte " << pos_ - 1;
          throw std::runtime_error(message.str());
        }
      }
    }
  }

 private:
  const char* take(std::size_t n) {
    if (pos_ + n > program_.size()) throw std::runtime_error("truncated pickle program");
    const char* p = program_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::string read_counted(int width) {
    const uint64_t n = read_le(take(width), width);
    return std::string(take(n), n);
  }
  std::string read_line() {
    const std::size_t end = program_.find('\n', pos_);
    if (end == std::string::npos) throw std::runtime_error("truncated pickle program");
    std::string line = program_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return line;
  }
  int64_t read_long(std::size_t n) {
    if (n > 8) throw std::runtime_error("pickled integer wider than 64 bits");
    const char* p = take(n);
    uint64_t v = read_le(p, static_cast<int>(n));
    if (n > 0 && n < 8 && (static_cast<unsigned char>(p[n - 1]) & 0x80))
      v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  void push(c10::IValue v) { stack_.push_back(Item{std::move(v), {}}); }
  /// A global also carries its name as a string value, so it survives inside tuples (storage
  /// classes).
  void push_global(const std::string& name) { stack_.push_back(Item{c10::IValue(name), name}); }
  std::size_t top() const {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    return stack_.size() - 1;
  }
  Item pop() {
    Item item = stack_.at(top());
    stack_.pop_back();
    return item;
  }
  std::size_t pop_mark() {
    if (marks_.empty()) throw std::runtime_error("pickle MARK missing");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    return mark;
  }
  void pop_mark_and_values() { stack_.resize(pop_mark()); }
  std::vector<c10::IValue> values_since(std::size_t mark) {
    std::vector<c10::IValue> values;
    for (std::size_t i = mark; i < stack_.size(); ++i) values.push_back(stack_[i].value);
    stack_.resize(mark);
    return values;
  }
  Item memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end())
      throw std::runtime_error("pickle memo entry " + std::to_string(index) + " missing");
    return it->second;
  }
  static std::string describe(const Item& item) {
    return item.global.empty() ? std::string(item.value.tagKind()) : "global " + item.global;
  }
  c10::impl::GenericList list_at(std::size_t index) {
    if (!stack_.at(index).value.isList())
      throw std::runtime_error("APPEND to a " + describe(stack_.at(index)));
    return stack_.at(index).value.toList();
  }
  c10::impl::GenericDict dict_at(std::size_t index) {
    if (!stack_.at(index).value.isGenericDict())
      throw std::runtime_error("SETITEM on a " + describe(stack_.at(index)));
    return stack_.at(index).value.toGenericDict();
  }

  /// A storage record as a flat tensor of its element type; shared by every tensor that views it.
  c10::IValue load_storage(const c10::IValue& id) {
    if (!id.isTuple()) throw std::runtime_error("persistent id is not a tuple");
    const auto& fields = id.toTupleRef().elements();
    if (fields.size() < 5 || !fields[0].isString() || fields[0].toStringRef() != "storage") {
      throw std::runtime_error("unsupported persistent id (expected a storage reference)");
    }
    const std::string type = fields[1].isString() ? fields[1].toStringRef() : std::string();
    if (type.rfind("torch.", 0) != 0)
      throw std::runtime_error("storage reference without a torch storage class");
    const std::string key = fields[2].toStringRef();
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dtype = storage_dtype(type.substr(6));
    const int64_t numel = fields[4].toInt();
    auto [data, size] = reader_.getRecord("data/" + key);
    const std::size_t expected = static_cast<std::size_t>(numel) * at::elementSize(dtype);
    if (size != expected) {
      throw std::runtime_error("storage record data/" + key + " holds " + std::to_string(size) +
                               " bytes, expected " + std::to_string(expected));
    }
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (size) std::memcpy(storage.data_ptr(), data.get(), size);
    storages_.emplace(key, storage);
    return storage;
  }

  c10::IValue call(const Item& callable, const c10::IValue& args) {
    const std::string& name = callable.global;
    if (name.empty())
      throw std::runtime_error("REDUCE on a " + describe(callable) + ", not a global");
    const auto arg = [&](std::size_t i) -> const c10::IValue& {
      const auto& elements = args.toTupleRef().elements();
      if (i >= elements.size()) throw std::runtime_error(name + " called with too few arguments");
      return elements[i];
    };
    if (name == "collections.OrderedDict")
      return c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get());
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      const at::Tensor storage = arg(0).toTensor();
      const int64_t offset = arg(1).toInt();
      std::vector<int64_t> sizes, strides;
      for (const auto& v : arg(2).toTupleRef().elements()) sizes.push_back(v.toInt());
      for (const auto& v : arg(3).toTupleRef().elements()) strides.push_back(v.toInt());
      return storage.as_strided(sizes, strides, offset).clone();
    }
    if (name == "torch._utils._rebuild_parameter") return arg(0);
    // LibTorch's own pickler (torch::pickle_save) tags typed containers; the value is the first
    // argument.
    if (name == "torch.jit._pickle.restore_type_tag" ||
        name.rfind("torch.jit._pickle.build_", 0) == 0)
      return arg(0);
    throw std::runtime_error("unsupported Python object " + name + " in the pickle");
  }

 private:
  std::string program_;
  caffe2::serialize::PyTorchStreamReader& reader_;
  std::size_t pos_ = 0;
  std::vector<Item> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Item> memo_;
  std::map<std::string, c10::IValue> storages_;
};

}  // namespace

c10::IValue load_torch_save_bytes(const std::vector<char>& bytes) {
  std::istringstream in(std::string(bytes.data(), bytes.size()));
  caffe2::serialize::PyTorchStreamReader reader(&in);
  if (!reader.hasRecord("data.pkl")) throw std::runtime_error("archive has no data.pkl record");
  auto [data, size] = reader.getRecord("data.pkl");
  TorchUnpickler unpickler(std::string(static_cast<const char*>(data.get()), size), reader);
  return unpickler.run();
}

}  // namespace mil
