#include "mil/data/torch_pickle.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mil/core/reader_limits.h"
#include "mil/data/zip_archive.h"

namespace mil {
namespace {

/// Little-endian unsigned integer of `width` bytes at `p`.
uint64_t read_le(const char* p, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

/// What an allowed global is, when the pickle calls it or names it as a storage class.
enum class Global {
  kOrderedDict,
  kRebuildTensor,
  kRebuildParameter,
  kStorage,
  kFirstArgument,  ///< torch.jit._pickle's type tags and typed-list builders: the value is arg 0.
};

/// The allow-list (see torch_pickle.h): (module, name) -> what it is. Compared as a pair, so that
/// no split of "a.b.c" into module and name can smuggle in another global.
const std::map<std::pair<std::string_view, std::string_view>, Global>& allowed_globals() {
  static const std::map<std::pair<std::string_view, std::string_view>, Global> kAllowed = {
      {{"collections", "OrderedDict"}, Global::kOrderedDict},
      {{"torch._utils", "_rebuild_tensor_v2"}, Global::kRebuildTensor},
      {{"torch._utils", "_rebuild_tensor"}, Global::kRebuildTensor},
      {{"torch._utils", "_rebuild_parameter"}, Global::kRebuildParameter},
      {{"torch", "FloatStorage"}, Global::kStorage},
      {{"torch", "DoubleStorage"}, Global::kStorage},
      {{"torch", "HalfStorage"}, Global::kStorage},
      {{"torch", "BFloat16Storage"}, Global::kStorage},
      {{"torch", "LongStorage"}, Global::kStorage},
      {{"torch", "IntStorage"}, Global::kStorage},
      {{"torch", "ShortStorage"}, Global::kStorage},
      {{"torch", "CharStorage"}, Global::kStorage},
      {{"torch", "ByteStorage"}, Global::kStorage},
      {{"torch", "BoolStorage"}, Global::kStorage},
      {{"torch.jit._pickle", "restore_type_tag"}, Global::kFirstArgument},
      {{"torch.jit._pickle", "build_intlist"}, Global::kFirstArgument},
      {{"torch.jit._pickle", "build_doublelist"}, Global::kFirstArgument},
      {{"torch.jit._pickle", "build_boollist"}, Global::kFirstArgument},
      {{"torch.jit._pickle", "build_tensorlist"}, Global::kFirstArgument},
  };
  return kAllowed;
}

/// Element type of a storage class name inside a persistent id ("torch.FloatStorage", ...).
at::ScalarType storage_dtype(const std::string& name) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"torch.FloatStorage", at::kFloat}, {"torch.DoubleStorage", at::kDouble},
      {"torch.HalfStorage", at::kHalf},   {"torch.BFloat16Storage", at::kBFloat16},
      {"torch.LongStorage", at::kLong},   {"torch.IntStorage", at::kInt},
      {"torch.ShortStorage", at::kShort}, {"torch.CharStorage", at::kChar},
      {"torch.ByteStorage", at::kByte},   {"torch.BoolStorage", at::kBool}};
  auto it = kTypes.find(name);
  if (it == kTypes.end()) throw std::runtime_error("unsupported storage type " + name);
  return it->second;
}

/// One value on the pickle stack: an IValue, or an allowed global (class or function).
struct Item {
  c10::IValue value;
  std::string global;                  ///< "module.name" when this item is a global, else empty.
  Global kind = Global::kOrderedDict;  ///< What the global is; meaningful only with `global`.
};

/// `a * b`, or false when it overflows int64.
bool multiply(int64_t a, int64_t b, int64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool add(int64_t a, int64_t b, int64_t& out) { return !__builtin_add_overflow(a, b, &out); }

/// A pickle virtual machine for the subset torch.save emits (see torch_pickle.h).
class TorchUnpickler {
 public:
  TorchUnpickler(std::string_view program, const ZipArchive& archive)
      : program_(program), archive_(archive) {}

  c10::IValue run() {
    for (std::size_t executed = 0;; ++executed) {
      if (executed >= kMaxPickleOpcodes) {
        throw std::runtime_error(
            over_limit("the pickle's opcode count", kMaxPickleOpcodes, "kMaxPickleOpcodes"));
      }
      if (pos_ >= program_.size()) throw std::runtime_error("pickle program has no STOP");
      const unsigned char op = static_cast<unsigned char>(program_[pos_++]);
      switch (op) {
        case 0x80:  // PROTO
          take(1);
          break;
        case 0x95:  // FRAME
          take(8);
          break;
        case '.':  // STOP
          return pop().value;
        case '(':  // MARK
          marks_.push_back(stack_.size());
          break;
        case ')':  // EMPTY_TUPLE
          push(make_tuple({}));
          break;
        case ']':  // EMPTY_LIST
          push(fresh(c10::impl::GenericList(c10::AnyType::get())));
          break;
        case '}':  // EMPTY_DICT
          push(fresh(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get())));
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
        case 0x8a:  // LONG1
          push(read_long(static_cast<std::size_t>(read_le(take(1), 1))));
          break;
        case 'G': {  // BINFLOAT (big-endian)
          const char* p = take(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(p[i]);
          double d;
          std::memcpy(&d, &bits, 8);
          push(d);
          break;
        }
        case 'X':  // BINUNICODE
          push(read_counted(4));
          break;
        case 0x8c:  // SHORT_BINUNICODE
          push(read_counted(1));
          break;
        case 0x8d:  // BINUNICODE8
          push(read_counted(8));
          break;
        case 'U':  // SHORT_BINSTRING
          push(read_counted(1));
          break;
        case 'T':  // BINSTRING
          push(read_counted(4));
          break;
        case 'q':  // BINPUT
          memo_[read_le(take(1), 1)] = stack_.at(top());
          break;
        case 'r':  // LONG_BINPUT
          memo_[read_le(take(4), 4)] = stack_.at(top());
          break;
        case 0x94:  // MEMOIZE
          memo_[memo_.size()] = stack_.at(top());
          break;
        case 'h':  // BINGET
          stack_.push_back(memo_get(read_le(take(1), 1)));
          break;
        case 'j':  // LONG_BINGET
          stack_.push_back(memo_get(read_le(take(4), 4)));
          break;
        case 'c': {  // GLOBAL module\nname\n
          const std::string module = read_line();
          const std::string name = read_line();
          push_global(module, name);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Item name = pop();
          const Item module = pop();
          if (!name.value.isString() || !module.value.isString())
            throw std::runtime_error("STACK_GLOBAL needs two strings");
          push_global(module.value.toStringRef(), name.value.toStringRef());
          break;
        }
        case 't':  // TUPLE
          push(make_tuple(values_since(pop_mark())));
          break;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const std::size_t n = op - 0x84;
          std::vector<c10::IValue> items(n);
          for (std::size_t i = n; i-- > 0;) items[i] = pop().value;
          push(make_tuple(std::move(items)));
          break;
        }
        case 'a': {  // APPEND
          c10::IValue v = pop().value;
          auto target = list_at(top());
          insert(stack_[top()].value, {v});
          target.push_back(std::move(v));
          break;
        }
        case 'e': {  // APPENDS
          auto items = values_since(pop_mark());
          auto target = list_at(top());
          insert(stack_[top()].value, items);
          for (auto& v : items) target.push_back(std::move(v));
          break;
        }
        case 's': {  // SETITEM
          c10::IValue v = pop().value;
          c10::IValue k = pop().value;
          const std::size_t dict = top();
          auto target = dict_at(dict);
          insert(stack_[dict].value, {k, v});
          target.insert_or_assign(std::move(k), std::move(v));
          break;
        }
        case 'u': {  // SETITEMS
          auto items = values_since(pop_mark());
          if (items.size() % 2) throw std::runtime_error("SETITEMS with an odd number of values");
          const std::size_t dict = top();
          auto target = dict_at(dict);
          insert(stack_[dict].value, items);
          for (std::size_t i = 0; i < items.size(); i += 2)
            target.insert_or_assign(items[i], items[i + 1]);
          break;
        }
        case 'Q': {  // BINPERSID: ('storage', StorageClass, key, location, numel)
          const c10::IValue id = pop().value;
          push(load_storage(id));
          break;
        }
        case 'R':     // REDUCE
        case 0x81: {  // NEWOBJ
          const c10::IValue args = pop().value;
          const Item callable = pop();
          push(call(callable, args));
          break;
        }
        case 'b': {  // BUILD: only OrderedDict `_metadata` occurs in torch.save output; dropped.
          pop();
          if (!stack_.at(top()).value.isGenericDict()) {
            throw std::runtime_error("BUILD on a " + describe(stack_.at(top())) +
                                     " is not supported");
          }
          break;
        }
        case '0':  // POP
          pop();
          break;
        case '1':  // POP_MARK
          stack_.resize(pop_mark());
          break;
        case '2':  // DUP
          stack_.push_back(stack_.at(top()));
          break;
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
  const char* take(uint64_t n) {
    if (n > program_.size() - pos_) throw std::runtime_error("truncated pickle program");
    const char* p = program_.data() + pos_;
    pos_ += n;
    return p;
  }
  std::string read_counted(int width) {
    const uint64_t n = read_le(take(width), width);
    const char* p = take(n);  // checks n against what is left before anything is allocated
    return std::string(p, n);
  }
  std::string read_line() {
    const std::size_t end = program_.find('\n', pos_);
    if (end == std::string_view::npos) throw std::runtime_error("truncated pickle program");
    std::string line(program_.substr(pos_, end - pos_));
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
  void push_global(const std::string& module, const std::string& name) {
    const auto& allowed = allowed_globals();
    const auto it = allowed.find({module, name});
    if (it == allowed.end()) {
      throw std::runtime_error("the pickle names the global '" + module + "." + name +
                               "', which is not on the allow-list of data a torch.save file may "
                               "hold (tensors, dicts, lists, numbers, strings)");
    }
    stack_.push_back(Item{c10::IValue(module + "." + name), module + "." + name, it->second});
  }
  std::size_t top() const {
    if (stack_.empty()) throw std::runtime_error("pickle stack underflow");
    return stack_.size() - 1;
  }
  Item pop() {
    Item item = std::move(stack_.at(top()));
    stack_.pop_back();
    return item;
  }
  std::size_t pop_mark() {
    if (marks_.empty()) throw std::runtime_error("pickle MARK missing");
    const std::size_t mark = marks_.back();
    marks_.pop_back();
    if (mark > stack_.size()) throw std::runtime_error("pickle MARK above the stack");
    return mark;
  }
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

  // Containers: their nesting depth, and whether they are inside another one (then frozen). Every
  // container made is kept alive until the end, so no address is reused while it is in these maps.

  static bool is_container(const c10::IValue& v) {
    return v.isList() || v.isGenericDict() || v.isTuple();
  }
  c10::IValue fresh(c10::IValue container) {
    depth_[container.internalToPointer()] = 1;
    containers_.push_back(container);
    return container;
  }
  int depth_of(const c10::IValue& v) const {
    if (!is_container(v)) return 0;
    const auto it = depth_.find(v.internalToPointer());
    return it == depth_.end() ? 1 : it->second;
  }
  void check_depth(int depth) const {
    if (depth > kMaxPickleDepth) {
      throw std::runtime_error(
          over_limit("the nesting of the pickle's containers", kMaxPickleDepth, "kMaxPickleDepth"));
    }
  }
  /// A tuple of `items`, which are now inside it.
  c10::IValue make_tuple(std::vector<c10::IValue> items) {
    int depth = 0;
    for (const auto& v : items) {
      depth = std::max(depth, depth_of(v));
      if (is_container(v)) frozen_.insert(v.internalToPointer());
    }
    check_depth(depth + 1);
    c10::IValue tuple = fresh(c10::ivalue::Tuple::create(std::move(items)));
    depth_[tuple.internalToPointer()] = depth + 1;
    return tuple;
  }
  /// Before `values` go into `container`: refuses changing a container that is inside another (no
  /// cycles) and nesting deeper than kMaxPickleDepth; then freezes the values.
  void insert(const c10::IValue& container, const std::vector<c10::IValue>& values) {
    const void* target = container.internalToPointer();
    if (frozen_.count(target) != 0)
      throw std::runtime_error("the pickle changes a container after placing it in another");
    int depth = depth_of(container);
    for (const auto& v : values) {
      if (!is_container(v)) continue;
      if (v.internalToPointer() == target)
        throw std::runtime_error("the pickle places a container inside itself");
      depth = std::max(depth, depth_of(v) + 1);
    }
    check_depth(depth);
    depth_[target] = depth;
    for (const auto& v : values) {
      if (is_container(v)) frozen_.insert(v.internalToPointer());
    }
  }

  /// A storage record as a flat tensor of its element type; shared by every tensor that views it.
  c10::IValue load_storage(const c10::IValue& id) {
    if (!id.isTuple()) throw std::runtime_error("persistent id is not a tuple");
    const auto& fields = id.toTupleRef().elements();
    if (fields.size() < 5 || !fields[0].isString() || fields[0].toStringRef() != "storage") {
      throw std::runtime_error("unsupported persistent id (expected a storage reference)");
    }
    if (!fields[1].isString() || !fields[2].isString() || !fields[4].isInt())
      throw std::runtime_error("malformed storage reference");
    const std::string key = fields[2].toStringRef();
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const at::ScalarType dtype = storage_dtype(fields[1].toStringRef());
    const int64_t numel = fields[4].toInt();
    const ZipMember* member = archive_.find("data/" + key);
    if (member == nullptr) throw std::runtime_error("no storage record data/" + key);
    const std::uint64_t element = at::elementSize(dtype);
    if (numel < 0 || member->size % element != 0 || member->size / element != uint64_t(numel)) {
      throw std::runtime_error("storage record data/" + key + " holds " +
                               std::to_string(member->size) + " bytes, expected " +
                               std::to_string(numel) + " elements of " + std::to_string(element));
    }
    const std::string_view data = archive_.data(*member);
    at::Tensor storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    if (dtype == at::kBool) {
      // Any byte but 0 or 1 is not a bool; normalised here so that no later read is undefined.
      bool* out = storage.data_ptr<bool>();
      for (std::size_t i = 0; i < data.size(); ++i) out[i] = data[i] != 0;
    } else if (!data.empty()) {
      std::memcpy(storage.data_ptr(), data.data(), data.size());
    }
    storages_.emplace(key, storage);
    storage_impls_.insert(storage.unsafeGetTensorImpl());
    return storage;
  }

  static std::vector<int64_t> int_tuple(const c10::IValue& v, const char* what) {
    if (!v.isTuple()) throw std::runtime_error(std::string(what) + " is not a tuple");
    std::vector<int64_t> out;
    for (const auto& e : v.toTupleRef().elements()) {
      if (!e.isInt()) throw std::runtime_error(std::string(what) + " holds a non-integer");
      out.push_back(e.toInt());
    }
    return out;
  }
  static void require_no_hooks(const c10::IValue& hooks, const std::string& name) {
    if (!hooks.isNone() && !(hooks.isGenericDict() && hooks.toGenericDict().empty())) {
      throw std::runtime_error(name + " with backward hooks (code, not data) is not supported");
    }
  }

  /// A view (offset, sizes, strides) of a storage record, copied, after checking that it stays
  /// inside the storage and within the tensor limits.
  at::Tensor rebuild_tensor(const c10::IValue& storage_value, const c10::IValue& offset_value,
                            const c10::IValue& sizes_value, const c10::IValue& strides_value) {
    if (!storage_value.isTensor() ||
        storage_impls_.count(storage_value.toTensor().unsafeGetTensorImpl()) == 0) {
      throw std::runtime_error("a tensor is rebuilt from something other than a storage record");
    }
    const at::Tensor& storage = storage_value.toTensor();
    if (!offset_value.isInt()) throw std::runtime_error("a tensor's storage offset is not an int");
    const int64_t offset = offset_value.toInt();
    const std::vector<int64_t> sizes = int_tuple(sizes_value, "a tensor's size");
    const std::vector<int64_t> strides = int_tuple(strides_value, "a tensor's stride");
    if (sizes.size() != strides.size())
      throw std::runtime_error("a tensor has " + std::to_string(sizes.size()) + " sizes but " +
                               std::to_string(strides.size()) + " strides");
    if (sizes.size() > kMaxTensorDims) {
      throw std::runtime_error(
          over_limit("a tensor's dimension count", sizes.size(), kMaxTensorDims, "kMaxTensorDims"));
    }
    int64_t numel = 1;
    bool overflow = false;
    for (std::size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] < 0 || strides[d] < 0)
        throw std::runtime_error("a tensor has a negative size or stride");
      overflow |= !multiply(numel, sizes[d], numel);
    }
    if (overflow || uint64_t(numel) > kMaxTensorElements) {
      throw std::runtime_error(overflow ? over_limit("a tensor's element count", kMaxTensorElements,
                                                     "kMaxTensorElements")
                                        : over_limit("a tensor's element count", uint64_t(numel),
                                                     kMaxTensorElements, "kMaxTensorElements"));
    }
    if (offset < 0) throw std::runtime_error("a tensor has a negative storage offset");
    if (numel > 0) {
      // The last element it reads: offset + sum((size - 1) * stride) must lie inside the storage.
      int64_t last = offset;
      for (std::size_t d = 0; d < sizes.size(); ++d) {
        int64_t step = 0;
        overflow |= !multiply(sizes[d] - 1, strides[d], step) || !add(last, step, last);
      }
      if (overflow || last >= storage.numel()) {
        throw std::runtime_error("a tensor view reaches past its storage of " +
                                 std::to_string(storage.numel()) + " elements");
      }
      if (numel > storage.numel() && uint64_t(numel) > kMaxExpandedTensorElements) {
        throw std::runtime_error(over_limit("a tensor with more elements than its storage has " +
                                                std::to_string(numel) + " elements, which",
                                            kMaxExpandedTensorElements,
                                            "kMaxExpandedTensorElements"));
      }
    }
    if (numel == 0) return at::empty(sizes, storage.options());
    return storage.as_strided(sizes, strides, offset).clone();
  }

  c10::IValue call(const Item& callable, const c10::IValue& args) {
    const std::string& name = callable.global;
    if (name.empty())
      throw std::runtime_error("REDUCE on a " + describe(callable) + ", not a global");
    if (!args.isTuple()) throw std::runtime_error(name + " called without an argument tuple");
    const auto& elements = args.toTupleRef().elements();
    const auto arg = [&](std::size_t i) -> const c10::IValue& {
      if (i >= elements.size()) throw std::runtime_error(name + " called with too few arguments");
      return elements[i];
    };
    switch (callable.kind) {
      case Global::kOrderedDict:
        if (!elements.empty())
          throw std::runtime_error(name + " called with arguments is not supported");
        return fresh(c10::impl::GenericDict(c10::AnyType::get(), c10::AnyType::get()));
      case Global::kRebuildTensor:
        // (storage, offset, size, stride[, requires_grad, backward_hooks[, metadata]])
        if (elements.size() > 5) require_no_hooks(arg(5), name);
        return rebuild_tensor(arg(0), arg(1), arg(2), arg(3));
      case Global::kRebuildParameter:  // (data, requires_grad, backward_hooks)
        if (!arg(0).isTensor()) throw std::runtime_error(name + " of a non-tensor");
        if (elements.size() > 2) require_no_hooks(arg(2), name);
        return arg(0);
      case Global::kFirstArgument:
        return arg(0);
      case Global::kStorage:
        break;
    }
    throw std::runtime_error("calling " + name + " is not supported");
  }

  std::string_view program_;
  const ZipArchive& archive_;
  std::size_t pos_ = 0;
  std::vector<Item> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Item> memo_;
  std::map<std::string, c10::IValue> storages_;
  std::unordered_set<const c10::TensorImpl*> storage_impls_;
  std::unordered_map<const void*, int> depth_;  ///< Container -> nesting depth (1 = flat).
  std::unordered_set<const void*> frozen_;      ///< Containers inside another container.
  std::vector<c10::IValue> containers_;         ///< Keeps every container's address unique.
};

}  // namespace

c10::IValue load_torch_save_bytes(const std::vector<char>& bytes) {
  const ZipArchive archive(std::string_view(bytes.data(), bytes.size()));
  const ZipMember* pickle = archive.find("data.pkl");
  if (pickle == nullptr) throw std::runtime_error("archive has no data.pkl record");
  if (pickle->size > kMaxPickleBytes) {
    throw std::runtime_error(over_limit("its pickle (data.pkl)'s size", pickle->size,
                                        kMaxPickleBytes, "kMaxPickleBytes"));
  }
  TorchUnpickler unpickler(archive.data(*pickle), archive);
  return unpickler.run();
}

}  // namespace mil
