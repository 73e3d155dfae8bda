"""`TensorMemory`: the bytes of tensor storage alive at once inside a block, on any device (the CPU included, where
torch keeps no allocator statistics). The kernel tests use it to check that the torch path's extra memory is
bounded by a chunk, never tokens × vocabulary; `obliviate bench kernels` reports it as peak memory on the CPU."""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class TensorMemory(TorchDispatchMode):
    """Bytes of tensor storage allocated inside the block and alive at the same time (any device, CPU included).

    Every op's outputs pass through `__torch_dispatch__`; a storage not shared with an input is new and counted
    until its storage object is freed (weakref finalizer on the storage, so views and tensors saved by autograd
    keep it counted). `peak` is the most bytes alive at once, `largest` the biggest single allocation. Storages
    grown in place by out= ops are not seen (the kernels here preallocate their out= targets).
    """

    def __init__(self):
        super().__init__()
        self.live = self.peak = self.largest = 0
        self._alive = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {_storage_key(t) for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                key = _storage_key(t)
                if key is not None and key not in inputs and key not in self._alive:
                    self._add(t.untyped_storage(), key)
        return out

    def _add(self, storage, key):
        size = storage.nbytes()
        self._alive.add(key)
        self.live += size
        self.peak = max(self.peak, self.live)
        self.largest = max(self.largest, size)
        weakref.finalize(storage, self._free, key, size)

    def _free(self, key, size):
        self._alive.discard(key)
        self.live -= size


def _storage_key(t):
    if t.is_meta or t.layout != torch.strided:
        return None
    storage = t.untyped_storage()
    return (t.device, storage.data_ptr()) if storage.nbytes() else None
