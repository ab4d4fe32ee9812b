"""`apply NAME(k=v)`: the passes a script can call by name, graphdsl's own and installed packages'.

Packages register passes under the entry point group `graphdsl.passes`, each entry naming a `Pass`
subclass (`my_pass = "my_pkg.passes:MyPass"`). A package that fails to import, or names something that
is not a pass, costs a warning naming the package, never the run: one broken plugin must not stop
scripts that do not use it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import warnings
from dataclasses import dataclass

from graphdsl.diagnostics import Diagnostic, Severity, render_text
from graphdsl.pipeline import Pass

GROUP = "graphdsl.passes"
PLUGIN_FAILED = "GDS321"
PLUGIN_SHADOWED = "GDS322"


@dataclass(frozen=True)
class EntryPointPass:
    """A pass contributed by an installed package.

    Args:
        name: what scripts call it (the entry point's name).
        cls: the Pass subclass.
        package: the distribution it came from, e.g. `graphdsl-extra`.
        version: that distribution's version.
        target: the entry point's value, `module:Class`.
    """

    name: str
    cls: type[Pass]
    package: str
    version: str
    target: str


class PluginWarning(UserWarning):
    """A plugin that could not be loaded, when no diagnostics list was given to collect it."""


def builtin_passes() -> dict[str, type[Pass]]:
    """graphdsl's own passes by their `name`, imported here so that a script's `apply` can reach them."""
    from graphdsl.passes.cleanup import Cleanup
    from graphdsl.passes.convert_version import ConvertOpset, SetIRVersion
    from graphdsl.passes.dynamic_batch import DynamicBatch
    from graphdsl.passes.extract import Extract
    from graphdsl.passes.fold_constants import FoldConstants
    from graphdsl.passes.inline_functions import InlineFunctions
    from graphdsl.passes.remove_node import RemoveNodes
    from graphdsl.passes.rename import RenameNode, RenameTensor
    from graphdsl.passes.set_attributes import SetAttributes
    from graphdsl.passes.set_tensor import SetTensor
    from graphdsl.passes.toposort import Toposort

    classes = (Extract, FoldConstants, Cleanup, Toposort, RemoveNodes, RenameTensor, RenameNode,
               SetAttributes, SetTensor, DynamicBatch, ConvertOpset, SetIRVersion, InlineFunctions)
    return {cls.name: cls for cls in classes}


def load_entry_point_passes(diagnostics: list[Diagnostic] | None = None) -> dict[str, EntryPointPass]:
    """Every pass installed packages register, by entry point name; problems become warnings.

    Args:
        diagnostics: where warnings go; without it they are issued as `PluginWarning`s, so that they
            are never silent.
    """
    found: dict[str, EntryPointPass] = {}
    problems: list[Diagnostic] = []
    builtins = builtin_passes()
    for entry in sorted(importlib.metadata.entry_points(group=GROUP), key=_order):
        loaded = _load(entry, problems)
        if loaded is None:
            continue
        if loaded.name in found or loaded.name in builtins:
            problems.append(_shadowed(loaded, found.get(loaded.name)))
            continue
        found[loaded.name] = loaded
    _report(problems, diagnostics)
    return found


def _order(entry: importlib.metadata.EntryPoint) -> tuple[str, str]:
    # deterministic whatever order sys.path lists the packages in: by package, then entry name
    return (_package(entry)[0].lower(), entry.name)


def _package(entry: importlib.metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(entry, "dist", None)
    if dist is None:
        return (entry.module.split(".")[0], "?")
    return (dist.metadata["Name"] or dist.name, dist.version)


def _load(entry: importlib.metadata.EntryPoint, problems: list[Diagnostic]) -> EntryPointPass | None:
    package, version = _package(entry)
    try:
        obj = entry.load()
    except Exception as e:  # noqa: BLE001 - any error while importing a plugin is the plugin's, not ours
        problems.append(_failed(entry, package, version, f"failed to import: {type(e).__name__}: {e}"))
        return None
    if not (isinstance(obj, type) and issubclass(obj, Pass) and dataclasses.is_dataclass(obj)):
        problems.append(_failed(entry, package, version,
                                "does not name a graphdsl Pass dataclass (`@dataclass class X(Pass)`)"))
        return None
    return EntryPointPass(entry.name, obj, package, version, entry.value)


def _failed(entry, package: str, version: str, why: str) -> Diagnostic:
    return Diagnostic(PLUGIN_FAILED, f"pass `{entry.name}` of package `{package}` {version}: {why}",
                      severity=Severity.WARNING,
                      location=f"entry point {GROUP}: {entry.name} = {entry.value}",
                      hints=(f"scripts cannot `apply {entry.name}` until `{package}` is fixed",))


def _shadowed(loaded: EntryPointPass, first: EntryPointPass | None) -> Diagnostic:
    owner = f"package `{first.package}`" if first else "graphdsl itself"
    return Diagnostic(PLUGIN_SHADOWED, f"pass `{loaded.name}` of package `{loaded.package}` is ignored: "
                      f"{owner} already defines a pass of that name", severity=Severity.WARNING,
                      location=f"entry point {GROUP}: {loaded.name} = {loaded.target}",
                      hints=("rename the entry point in the package's pyproject.toml",))


def _report(problems: list[Diagnostic], diagnostics: list[Diagnostic] | None) -> None:
    if diagnostics is not None:
        diagnostics.extend(problems)
        return
    for problem in problems:
        warnings.warn(render_text(problem), PluginWarning, stacklevel=3)


__all__ = ["EntryPointPass", "PluginWarning", "builtin_passes", "load_entry_point_passes", "GROUP"]
