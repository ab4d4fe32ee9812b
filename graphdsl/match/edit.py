"""Editing graphsurgeon's producer/consumer links by identity.

graphsurgeon keeps `tensor.inputs`/`tensor.outputs` in step with `node.inputs`/`node.outputs` through
lists that remove by equality, and `Node.__eq__` compares names, attributes and tensors: on a tensor read
by thousands of nodes (an attention mask) one removal costs thousands of such comparisons. Rewrites do
these edits by identity instead, at the cost of one scan of the list.
"""

from __future__ import annotations


def _drop(items: list, obj) -> None:
    for index, item in enumerate(items):
        if item is obj:
            list.__delitem__(items, index)
            return


def set_input(node, index: int, tensor) -> None:
    """`node.inputs[index] = tensor`, keeping both tensors' consumer lists right."""
    old = node.inputs[index]
    _drop(old.outputs, node)
    list.__setitem__(node.inputs, index, tensor)
    list.append(tensor.outputs, node)


def set_output(node, index: int, tensor) -> None:
    """`node.outputs[index] = tensor`, keeping both tensors' producer lists right."""
    old = node.outputs[index]
    _drop(old.inputs, node)
    list.__setitem__(node.outputs, index, tensor)
    list.append(tensor.inputs, node)


def detach(node) -> None:
    """Disconnect a node from every tensor (before it leaves the graph)."""
    for tensor in node.inputs:
        _drop(tensor.outputs, node)
    for tensor in node.outputs:
        _drop(tensor.inputs, node)
    list.clear(node.inputs)
    list.clear(node.outputs)


def replace_uses(old, new) -> None:
    """Every node reading `old` reads `new` instead (nodes of subgraphs included)."""
    for consumer in list(old.outputs):
        for index, tensor in enumerate(consumer.inputs):
            if tensor is old:
                set_input(consumer, index, new)
