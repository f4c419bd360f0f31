"""One decorator registers a model, objective, task or dataset under a name.

A new component is one class in one file::

    @MODELS.register("mlp")
    class MLPEncoder(nn.Module): ...

and the spec refers to it by that name. Each component package calls ``discover(__name__)``
in its ``__init__``, which imports every module in the package, so a new file registers
itself without being added to any import list (as timm's model registry does). Constructor
keyword arguments become the component's config keys, validated against the constructor's
type annotations.

A name of the form ``package.module:Class`` is the user's own code, imported because the
user named it in what they passed this time. It must be a class of the registry's kind
(``expects``: an ``nn.Module`` subclass for a model part or objective, a ``Task``, a
``DatasetSource``), never any other callable, and it is checked before anything is called.
A saved folder (a run's config.yaml, a study.json, a tune.json) is data: the names it holds
are imported only with ``trust_code`` (``check_code``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
import pkgutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import GenericAlias
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import pydantic

from replab.errors import ConfigError, UntrustedCodeError

T = TypeVar("T")

TRUST_FIX = (
    "pass --trust-code (command line) or trust_code=True (Python) if you trust whoever made it"
)


# The saved folder the job in this context continues, and whether the user trusts its code;
# None outside one (what the user passed this time: the code it names may be imported).
_FOLDER: ContextVar[tuple[str, bool] | None] = ContextVar("replab_saved_folder", default=None)


@contextlib.contextmanager
def saved_folder(source: str, trust_code: bool) -> Iterator[None]:
    """Within: the job continues ``source``, a saved folder (a study or tune resumed).

    With ``trust_code`` the run folders it reads back may name code. Without, no component
    is imported by import path at all (UntrustedCodeError): the folder's names were checked
    when it was opened, so one turning up later came from somewhere unchecked."""
    token = _FOLDER.set((source, trust_code))
    try:
        yield
    finally:
        _FOLDER.reset(token)


def check_code(names: Sequence[str], source: str, trust_code: bool = False) -> None:
    """Refuse the code ``names`` (``key=package.module:Name``) that ``source`` (a saved folder
    or file) holds, unless the user trusts it (``trust_code``, or a ``saved_folder`` the user
    trusts): UntrustedCodeError names them and the option, and nothing is imported."""
    folder = _FOLDER.get()
    if not names or trust_code or (folder is not None and folder[1]):
        return
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    raise UntrustedCodeError(
        f"{source} holds code that opening it would import or run ({shown}); "
        "a saved folder or file is data, and replab runs no code from one unless told to",
        TRUST_FIX,
    )


def discover(package: str, prefix: str = "") -> list[str]:
    """Import every module of ``package`` (whose name starts with ``prefix``); returns their names.

    Only replab's own packages are walked: a user's code is imported only when a recipe
    names it.
    """
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.iter_modules(root.__path__):
        if info.name.startswith(prefix) and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
            found.append(info.name)
    return found


class Registry:
    """Named entries of one kind. ``expects`` is the base class (``"package.module:Class"``,
    resolved when first needed) that a component named by import path must subclass; None:
    only registered names (functions such as optimizers and schedules, or studies)."""

    def __init__(self, kind: str, expects: str | None = None) -> None:
        self.kind = kind
        self.expects = expects
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str, where: str = "") -> Any:
        """The entry called ``name``; ``where`` (a recipe key) prefixes
        the error for unknown names.

        A name of the form ``package.module:Attribute`` is the user's own code: that module is
        imported (running its code) because the recipe names it, and nothing else is. What it
        names must be a class of this registry's kind (``expects``); nothing is called first.
        """
        if ":" in name and name not in self._entries:
            return self._user_class(name, where or self.kind)
        if name not in self._entries:
            raise ConfigError(
                f"{where + ': ' if where else ''}unknown {self.kind} {name!r}",
                f"use one of: {', '.join(self.names())}",
            )
        return self._entries[name]

    def _user_class(self, name: str, where: str) -> type:
        folder = _FOLDER.get()
        if folder is not None and not folder[1]:
            check_code([f"{where}={name}"], folder[0])
        if self.expects is None:
            raise ConfigError(
                f"{where}: {name!r} names code by import path, and a {self.kind} must be "
                "a registered one",
                f"use one of: {', '.join(self.names())} "
                "(or register yours from an installed replab.plugins plugin)",
            )
        module_name, _, attr = self.expects.partition(":")
        base = getattr(importlib.import_module(module_name), attr)
        wanted = f"a {base.__module__}.{base.__qualname__} subclass"
        obj = import_user_object(name, where)
        if not isinstance(obj, type):
            raise ConfigError(
                f"{where}: {name!r} is a {type(obj).__name__}, not a class; "
                f"a {self.kind} named by import path must be {wanted}",
                f"name a {base.__name__} subclass of your own (package.module:Class)",
            )
        if not issubclass(obj, base):
            raise ConfigError(
                f"{where}: {name!r} is not {wanted}, and only such a class can be a {self.kind}",
                f"name a {base.__name__} subclass of your own (package.module:Class)",
            )
        return obj

    def build(self, name: str, params: Mapping[str, Any], where: str, **context: Any) -> Any:
        """Instantiate ``name`` with user ``params`` (validated) plus internal ``context``.

        ``context`` holds values replab derives itself (input shape, latent size...); a
        user may still set them explicitly in ``params``.
        """
        user = ":" in name and name not in self._entries
        cls = self._user_class(name, where) if user else self.get(name)
        checked = validate_params(cls, params, where=f"{where} ({self.kind} {name!r})")
        accepted = _parameters(cls)
        extra = {k: v for k, v in context.items() if k in accepted and k not in checked}
        try:
            built = cls(**checked, **extra)
        except (RuntimeError, ValueError, TypeError, OverflowError, MemoryError) as err:
            # e.g. a negative width, or a layer too large to allocate: the user's values, not a bug
            raise ConfigError(
                f"{where} ({self.kind} {name!r} with {checked}) "
                f"cannot be built: {(str(err).splitlines() or [type(err).__name__])[0][:300]}",
                "check its sizes: widths and "
                "latent_dim must be positive integers that fit in memory",
            ) from None
        empty = [n for n, p in getattr(built, "named_parameters", lambda: [])() if p.numel() == 0]
        if empty:
            raise ConfigError(
                f"{where} ({self.kind} {name!r} with {checked}) "
                f"has empty layers ({', '.join(empty[:3])})",
                "every width and latent_dim must be at least 1",
            )
        return built

    def signature(self, name: str) -> dict[str, inspect.Parameter]:
        return _parameters(self.get(name))


def _parameters(cls: Any) -> dict[str, inspect.Parameter]:
    target = cls.__init__ if inspect.isclass(cls) else cls
    params = inspect.signature(target).parameters
    return {
        k: p
        for k, p in params.items()
        if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def validate_params(cls: Any, params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Type-check ``params`` against ``cls``'s constructor; unknown keys are errors."""
    accepted = _parameters(cls)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}",
            f"valid keys are: {', '.join(sorted(accepted))}",
        )
    target = cls.__init__ if inspect.isclass(cls) else cls
    hints = get_type_hints(target)
    fields: dict[str, Any] = {
        k: (_recipe_type(hints.get(k, Any)), ... if p.default is p.empty else p.default)
        for k, p in accepted.items()
        if k in params
    }
    model = pydantic.create_model(
        f"{getattr(cls, '__name__', 'params')}Params",
        __config__=pydantic.ConfigDict(strict=False, arbitrary_types_allowed=True),
        **fields,
    )
    try:
        checked = model(**params)
    except pydantic.ValidationError as err:
        raise ConfigError(
            f"{where}: {format_validation_error(err)}",
            "correct the value(s) in the recipe or override",
        ) from None
    return {k: getattr(checked, k) for k in params}


def _recipe_type(hint: Any) -> Any:
    """The type a recipe value is validated as: ``Sequence[X]`` (a parameter whose default is a
    tuple) as ``list[X]``, since recipes give YAML lists and list errors read best."""
    if get_origin(hint) is Sequence:
        return GenericAlias(list, get_args(hint))
    return hint


def format_validation_error(err: pydantic.ValidationError, prefix: str = "") -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
        parts.append(f"{loc or 'value'}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def import_user_object(spec: str, where: str) -> Any:
    """``package.module:Name`` (``Name`` may be dotted) from the user's importable code.

    Errors name the recipe key and what failed; an exception raised by the user's module
    while importing is reported as theirs, with its first line.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr or not all(p.isidentifier() for p in module_name.split(".")):
        raise ConfigError(
            f"{where}: {spec!r} is not of the form package.module:Name",
            "write e.g. mypackage.nets:MyEncoder (the module must be importable: installed, or "
            "on PYTHONPATH)",
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(
            f"{where}: cannot import {module_name!r} ({err})",
            "install the package, or add its folder to PYTHONPATH",
        ) from None
    except Exception as err:  # the user's module raised while it was imported
        first = (str(err).splitlines() or [""])[0][:300]
        raise ConfigError(
            f"{where}: importing {module_name!r} raised {type(err).__name__}: {first}",
            "fix that module; replab imports it only because the recipe names it",
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"{where}: module {module_name!r} has no {attr!r}",
                f"check the name after the colon in {spec!r}",
            )
        obj = getattr(obj, part)
    return obj


PLUGIN_GROUP = "replab.plugins"


def plugins() -> list[tuple[str, str, str]]:
    """(name, target, distribution) of every installed ``replab.plugins`` entry point; read
    from package metadata, nothing is imported."""
    found = []
    for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        found.append((ep.name, ep.value, dist))
    return sorted(found)


def load_plugins(names: str | None) -> list[str]:
    """Import the plugins named in ``names`` (comma-separated, or ``all``), so their modules
    register components. Plugins are third-party code: replab loads one only when the user
    names it (``$REPLAB_PLUGINS`` or ``--plugins``), never just because it is installed."""
    wanted = [n.strip() for n in (names or "").split(",") if n.strip()]
    if not wanted:
        return []
    available = {ep.name: ep for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP)}
    chosen = sorted(available) if wanted == ["all"] else wanted
    missing = [n for n in chosen if n not in available]
    if missing:
        raise ConfigError(
            f"no installed replab plugin called {', '.join(map(repr, missing))}",
            f"installed plugins: {', '.join(sorted(available)) or 'none'} (`replab plugins`)",
        )
    for name in chosen:
        try:
            available[name].load()
        except Exception as err:
            first = (str(err).splitlines() or [""])[0][:300]
            raise ConfigError(
                f"plugin {name!r} failed to load: {type(err).__name__}: {first}",
                f"fix or uninstall it, or leave {name!r} out of REPLAB_PLUGINS",
            ) from None
    return chosen
