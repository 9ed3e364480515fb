#pragma once
// Reading what Python's torch.save writes (zip format) with our own unpickler: LibTorch's rejects
// the BUILD opcode that every state_dict carries (Python pickles OrderedDict `_metadata` through
// BUILD), and neither it nor Python's own unpickler limits what a hostile file may do.
//
// Only data comes out: containers, numbers, strings and tensors. A pickle may name no global but
// those of the allow-list below, checked when GLOBAL or STACK_GLOBAL names it (not when it is
// called), so that `os.system` or `builtins.eval` is refused even where it would never be called.
//
//   collections.OrderedDict             called with no arguments: an empty dict
//   torch._utils._rebuild_tensor_v2     a tensor from a storage record, offset, sizes, strides
//   torch._utils._rebuild_tensor        the same, as older PyTorch wrote it
//   torch._utils._rebuild_parameter     an nn.Parameter: its tensor, only without backward hooks
//   torch.{Float,Double,Half,BFloat16,Long,Int,Short,Char,Byte,Bool}Storage
//                                       only as the storage class inside a persistent id
//   torch.jit._pickle.restore_type_tag, build_intlist, build_doublelist, build_boollist,
//   build_tensorlist                    LibTorch's own pickler (torch::pickle_save): the value
//
// Opcodes (protocol 2, which torch.save uses, plus those of protocols 3-5 that carry data):
// PROTO, FRAME, STOP, MARK, POP, POP_MARK, DUP; NONE, NEWTRUE, NEWFALSE, BININT, BININT1, BININT2,
// LONG1, BINFLOAT, BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, SHORT_BINSTRING, BINSTRING;
// EMPTY_TUPLE, TUPLE, TUPLE1-3, EMPTY_LIST, APPEND, APPENDS, EMPTY_DICT, SETITEM, SETITEMS;
// BINPUT, LONG_BINPUT, MEMOIZE, BINGET, LONG_BINGET; GLOBAL, STACK_GLOBAL (allow-list), REDUCE and
// NEWOBJ (allowed globals only), BUILD (only on a dict: OrderedDict's `_metadata`, dropped),
// BINPERSID (storage records). Every other opcode (INST, OBJ, NEWOBJ_EX, EXT1-4, PERSID, the text
// forms INT/LONG/FLOAT/STRING/UNICODE/GET/PUT, LONG4, byte strings, sets, buffers) is refused.
//
// A container may not be changed once it is inside another, which rules out cycles (a list that
// holds itself would leak and recurse forever); containers nest at most kMaxPickleDepth levels.
// The limits of mil/core/reader_limits.h bound the archive, the pickle and every tensor.
#include <vector>

#include <ATen/core/ivalue.h>

namespace mil {

/// Unpickles a torch.save zip archive held in `bytes`: tensors, dicts (OrderedDicts become plain
/// dicts, their `_metadata` dropped), lists, tuples, numbers and strings. Throws std::runtime_error
/// when the bytes are not such an archive, name a global outside the allow-list, or exceed a limit;
/// the message says which (the caller adds the file's name).
c10::IValue load_torch_save_bytes(const std::vector<char>& bytes);

}  // namespace mil
