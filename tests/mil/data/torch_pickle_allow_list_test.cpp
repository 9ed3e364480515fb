// The unpickler's allow-list (mil/data/torch_pickle.h) against a pickle for every other global a
// torch.save file could name: code execution (os.system, builtins.eval, subprocess.Popen, ...),
// PyTorch's other rebuild functions and modules, numpy, and near-misses of the allowed names. Each
// is refused when the pickle names it, whether or not it would be called.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "mil/data/torch_pickle.h"
#include "tests/support/expect_throw.h"
#include "tests/support/pickle_builder.h"

namespace {

using mil::testing::Pickle;
using mil::testing::torch_save_archive;

c10::IValue load(const Pickle& pickle,
                 const std::vector<std::pair<std::string, std::string>>& records = {}) {
  return mil::load_torch_save_bytes(torch_save_archive(pickle.bytes(), records));
}

/// (module, name) of every global tried; none is on the allow-list.
const std::vector<std::pair<std::string, std::string>> kRefused = {
    // Running code or touching the system.
    {"os", "system"},
    {"posix", "system"},
    {"nt", "system"},
    {"os", "popen"},
    {"os", "execv"},
    {"os", "remove"},
    {"builtins", "eval"},
    {"builtins", "exec"},
    {"builtins", "compile"},
    {"builtins", "getattr"},
    {"builtins", "setattr"},
    {"builtins", "__import__"},
    {"builtins", "open"},
    {"__builtin__", "eval"},
    {"__builtin__", "file"},
    {"subprocess", "Popen"},
    {"subprocess", "call"},
    {"subprocess", "check_output"},
    {"subprocess", "run"},
    {"pty", "spawn"},
    {"socket", "create_connection"},
    {"shutil", "rmtree"},
    {"importlib", "import_module"},
    {"runpy", "run_path"},
    {"webbrowser", "open"},
    {"sys", "exit"},
    {"code", "InteractiveConsole"},
    // Unpicklers and code objects inside the pickle.
    {"pickle", "loads"},
    {"_pickle", "loads"},
    {"marshal", "loads"},
    {"types", "FunctionType"},
    {"types", "CodeType"},
    {"functools", "partial"},
    {"operator", "attrgetter"},
    {"operator", "itemgetter"},
    {"operator", "methodcaller"},
    {"copyreg", "_reconstructor"},
    {"copy_reg", "_reconstructor"},
    {"__main__", "Model"},
    {"argparse", "Namespace"},
    // Loaders that would read other files.
    {"torch", "load"},
    {"torch.serialization", "load"},
    {"torch.hub", "load"},
    {"torch.jit", "load"},
    {"torch.storage", "_load_from_bytes"},
    // What torch.save writes for objects other than dense CPU tensors and dicts.
    {"torch._utils", "_rebuild_parameter_with_state"},
    {"torch._utils", "_rebuild_qtensor"},
    {"torch._utils", "_rebuild_sparse_tensor"},
    {"torch._utils", "_rebuild_sparse_csr_tensor"},
    {"torch._utils", "_rebuild_device_tensor_from_numpy"},
    {"torch._utils", "_rebuild_meta_tensor_no_storage"},
    {"torch._utils", "_rebuild_wrapper_subclass"},
    {"torch._utils", "_rebuild_nested_tensor"},
    {"torch._utils", "_rebuild_xla_tensor"},
    {"torch._utils", "_rebuild_typed_storage"},
    {"torch._tensor", "_rebuild_from_type_v2"},
    {"torch._tensor", "_rebuild_from_type"},
    {"torch.serialization", "_get_layout"},
    {"torch.jit._pickle", "build_tensor_from_id"},
    {"torch.nn.parameter", "Parameter"},
    {"torch.nn.modules.linear", "Linear"},
    {"torch.nn.modules.container", "Sequential"},
    {"torch.nn.modules.module", "Module"},
    {"torch", "Tensor"},
    {"torch", "Size"},
    {"torch", "device"},
    {"torch", "float32"},
    {"torch", "strided"},
    {"torch", "UntypedStorage"},
    {"torch.storage", "TypedStorage"},
    {"torch", "ComplexFloatStorage"},
    {"torch", "QInt8Storage"},
    {"torch.cuda", "FloatStorage"},
    {"torch.optim.adam", "Adam"},
    // numpy scalars and arrays (often in Python checkpoints, e.g. a best AUC).
    {"numpy.core.multiarray", "_reconstruct"},
    {"numpy.core.multiarray", "scalar"},
    {"numpy", "ndarray"},
    {"numpy", "dtype"},
    {"numpy.core.numeric", "_frombuffer"},
    {"_codecs", "encode"},
    // Other containers, and near-misses of the allowed names.
    {"builtins", "set"},
    {"builtins", "frozenset"},
    {"builtins", "bytearray"},
    {"builtins", "slice"},
    {"builtins", "dict"},
    {"collections", "defaultdict"},
    {"collections", "Counter"},
    {"collections", "namedtuple"},
    {"collections", "OrderedDict "},
    {"collections ", "OrderedDict"},
    {"Collections", "OrderedDict"},
    {"typing", "OrderedDict"},
    {"collections", "OrderedDict.fromkeys"},
    {"collections.OrderedDict", "fromkeys"},
    {"collections.OrderedDict", ""},
    {"collections", "OrderedDict.__init__.__globals__"},
    {"torch._utils", "_rebuild_tensor_v2.__globals__"},
    {"torch", "_utils._rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_tensor_v3"},
    {"torch.jit._pickle", "restore_type_tag "},
    {"torch.jit", "_pickle.restore_type_tag"},
    {"", "eval"},
    {"os", ""},
};

std::string qualified(const std::pair<std::string, std::string>& global) {
  return "'" + global.first + "." + global.second + "'";
}

}  // namespace

TEST(TorchPickleAllowList, RefusesEveryOtherGlobalWhenCalled) {
  for (const auto& [module, name] : kRefused) {
    SCOPED_TRACE(module + "." + name);
    // GLOBAL module name; ("ls",); REDUCE: what pickle.dumps writes for a call.
    MIL_EXPECT_THROW_WITH(
        load(Pickle().global(module, name).mark().text("ls").tuple().reduce().stop()),
        qualified({module, name}) + ", which is not on the allow-list");
  }
}

TEST(TorchPickleAllowList, RefusesEveryOtherGlobalNamedThroughStackGlobal) {
  for (const auto& [module, name] : kRefused) {
    SCOPED_TRACE(module + "." + name);
    MIL_EXPECT_THROW_WITH(
        load(Pickle().stack_global(module, name).mark().text("ls").tuple().reduce().stop()),
        qualified({module, name}) + ", which is not on the allow-list");
  }
}

TEST(TorchPickleAllowList, RefusesEveryOtherGlobalEvenWhenNeverCalled) {
  for (const auto& [module, name] : kRefused) {
    SCOPED_TRACE(module + "." + name);
    // {"x": <the global>}: data that merely names it.
    MIL_EXPECT_THROW_WITH(
        load(Pickle().empty_dict().text("x").global(module, name).setitem().stop()),
        qualified({module, name}) + ", which is not on the allow-list");
  }
}

TEST(TorchPickleAllowList, RefusesAParameterWithBackwardHooks) {
  const float values[2] = {1, 2};
  const std::string storage(reinterpret_cast<const char*>(values), sizeof values);
  // _rebuild_parameter(tensor, True, OrderedDict({0: 0})): torch.save keeps hooks, which are code.
  Pickle hooked;
  hooked.global("torch._utils", "_rebuild_parameter").mark();
  hooked.tensor("FloatStorage", "0", 2, 0, {2}, {1}).raw("\x88");
  hooked.global("collections", "OrderedDict")
      .empty_tuple()
      .reduce()
      .integer(0)
      .integer(0)
      .setitem();
  hooked.tuple().reduce().stop();
  MIL_EXPECT_THROW_WITH(load(hooked, {{"data/0", storage}}),
                        "torch._utils._rebuild_parameter with backward hooks (code, not data)");
  // Without hooks it is the tensor.
  Pickle plain;
  plain.global("torch._utils", "_rebuild_parameter").mark();
  plain.tensor("FloatStorage", "0", 2, 0, {2}, {1}).raw("\x88");
  plain.global("collections", "OrderedDict").empty_tuple().reduce().tuple().reduce().stop();
  EXPECT_TRUE(load(plain, {{"data/0", storage}}).toTensor().equal(at::tensor({1.0f, 2.0f})));
}

TEST(TorchPickleAllowList, RefusesAnOrderedDictCalledWithArguments) {
  // OrderedDict([...]) would be fine in Python; torch.save never writes it, so we do not read it.
  MIL_EXPECT_THROW_WITH(load(Pickle()
                                 .global("collections", "OrderedDict")
                                 .mark()
                                 .empty_list()
                                 .tuple()
                                 .reduce()
                                 .stop()),
                        "collections.OrderedDict called with arguments is not supported");
}

TEST(TorchPickleAllowList, RefusesCallingAStorageClass) {
  MIL_EXPECT_THROW_WITH(
      load(Pickle().global("torch", "FloatStorage").empty_tuple().reduce().stop()),
      "calling torch.FloatStorage is not supported");
}

TEST(TorchPickleAllowList, RefusesOpcodesOutsideTheList) {
  // INST, OBJ, NEWOBJ_EX, EXT1, PERSID, text INT, LONG4, BINBYTES, EMPTY_SET, NEXT_BUFFER.
  for (const std::string op : {"i", "o", "\x92", "\x82", "P", "I", "\x8b", "B", "\x8f", "\x97"}) {
    SCOPED_TRACE(int(static_cast<unsigned char>(op[0])));
    MIL_EXPECT_THROW_WITH(load(Pickle().raw(op).stop()), "unsupported pickle opcode");
  }
}
