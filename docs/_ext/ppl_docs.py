"""The documentation's own Sphinx extension.

* Before reading, it writes ``docs/api/<module>.rst`` for every public module of
  ``ppl_models`` (every top-level module or package whose name has no leading underscore),
  so that a module added, renamed or removed needs no hand edit of the docs, and none is
  ever left without a page. Packages are documented through their ``__all__``.
* It prepares the environment the tutorial kernels inherit: figures go to the page
  (matplotlib's inline backend, not a file under ``$PPL_MODELS_OUT``).
* It checks cross-references: ``nitpicky`` makes Sphinx report every reference it cannot
  resolve; this extension resolves a reference to a real but undocumented object (a
  submodule's path of a re-exported name, a private helper) to the page that documents it,
  or to plain text, and lets through words of prose types (``array_like``, ``Figure``).
  A reference to a ``ppl_models`` name, or a name of an installed package, that does
  not exist stays an error.
"""

from __future__ import annotations

import builtins
import importlib
import os
import pkgutil
import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

from ppl_models.tour import TOPICS

# The order of the API index: the line of thought as the tour and the tutorials follow it
# (the topics, then the workflow), then the machinery and the tools.
ORDER = (
    *TOPICS,
    "inference",
    "datasets",
    "plots",
    "estimators",
    "persistence",
    "distributed",
    "cli",
    "tour",
)

_MISSING = object()
logger = logging.getLogger(__name__)
# Roles that name a callable, a module or an attribute: a bare name there must resolve.
# (Attributes are not checked: an instance attribute set in __init__ cannot be looked up.)
_STRICT_ROLES = {"func", "meth", "mod", "exc", "data"}


def public_modules() -> list[str]:
    import ppl_models

    names = {
        m.name for m in pkgutil.iter_modules(ppl_models.__path__) if not m.name.startswith("_")
    }
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def _first_line(module_name: str) -> str:
    """The module docstring's first sentence, its roles as literals (no module context)."""
    doc = importlib.import_module(f"ppl_models.{module_name}").__doc__ or ""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    text = re.split(r"(?<=[.:])\s(?=[A-Z])", text)[0].rstrip(".:")
    return re.sub(r":\w+:`~?\.?([^`]+)`", r"``\1``", text)


def _write(path: Path, text: str) -> None:
    # Rewritten only when it changes, so that an incremental build stays incremental.
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_api_pages(srcdir: Path) -> None:
    out = srcdir / "api"
    out.mkdir(exist_ok=True)
    modules = public_modules()
    for name in modules:
        full = f"ppl_models.{name}"
        title = f"``{full}``"
        _write(
            out / f"{name}.rst",
            f"{title}\n{'=' * len(title)}\n\n.. automodule:: {full}\n",
        )
    stale = {p.stem for p in out.glob("*.rst")} - set(modules) - {"index"}
    for stem in stale:
        (out / f"{stem}.rst").unlink()
    rows = "\n".join(f"   * - :mod:`ppl_models.{n}`\n     - {_first_line(n)}" for n in modules)
    toc = "\n".join(f"   {n}" for n in modules)
    _write(
        out / "index.rst",
        "API reference\n=============\n\n"
        ".. automodule:: ppl_models\n   :no-members:\n\n"
        "Every public module of the package has a page; a package's page documents the\n"
        "names in its ``__all__``. The names that ``ppl_models`` re-exports are documented\n"
        "on the page of the module that defines them.\n\n"
        ".. list-table::\n   :header-rows: 1\n   :widths: 30 70\n\n"
        "   * - module\n     - what it holds\n"
        f"{rows}\n\n"
        f".. toctree::\n   :hidden:\n   :maxdepth: 1\n\n{toc}\n",
    )


def _on_config_inited(app, config) -> None:
    # The tutorial kernels inherit this process's environment. Their figures must reach
    # the page: a tutorial shows a figure unless $PPL_MODELS_OUT names a folder to save it
    # in, and CI's MPLBACKEND=Agg would show nothing.
    os.environ.pop("PPL_MODELS_OUT", None)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # Crisp figures at the width of the page (matplotlib's default is 100 dpi).
    os.environ["MATPLOTLIBRC"] = str(Path(app.srcdir) / "_static" / "matplotlibrc")
    # OpenMP threads that spin while they wait starve the kernel's own threads on a small
    # machine: tutorial 05 takes 94 s in smoke mode with the default policy, 10 s with
    # PASSIVE (2 cores). The `ppl-models` command and CI set the same.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Progress bars are noise on a page (and cost time in a kernel).
    os.environ.setdefault("TQDM_DISABLE", "1")
    write_api_pages(Path(app.srcdir))


def locate(dotted: str):
    """The object a dotted name names, or ``_MISSING``; imports what it needs."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, _MISSING)
            if obj is _MISSING:
                return _MISSING
        return obj
    return _MISSING


def _package_index() -> dict[str, list]:
    """Every name bound in any module of ppl_models, private ones included -> objects."""
    global _INDEX
    if _INDEX is None:
        import ppl_models

        _INDEX = {}
        for info in pkgutil.walk_packages(ppl_models.__path__, "ppl_models."):
            if info.name.endswith("__main__"):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception:
                continue
            for key, value in vars(module).items():
                _INDEX.setdefault(key, []).append(value)
    return _INDEX


_INDEX = None


def _documented(app, env) -> dict[int, tuple[str, object]]:
    """id(object) -> (documented full name, its py-domain entry), built once per build."""
    cache = getattr(env, "_ppl_docs_documented", None)
    if cache is None:
        cache = {}
        for fullname, entry in env.get_domain("py").objects.items():
            if entry.aliased:
                continue
            obj = locate(fullname)
            if obj is not _MISSING:
                cache.setdefault(id(obj), (fullname, entry))
        env._ppl_docs_documented = cache
    return cache


def _on_missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip("~.")
    module, cls = node.get("py:module"), node.get("py:class")
    if any(c.isspace() for c in target):
        return contnode  # prose in a type field: "pyro.optim optimizer"
    candidates = [target]
    if module:
        candidates.insert(0, f"{module}.{target}")
        if cls:
            candidates.insert(0, f"{module}.{cls}.{target}")
    objects = [obj for obj in map(locate, candidates) if obj is not _MISSING]
    if not objects and "." not in target:
        # A package's page documents names defined in its submodules (or in a ground-floor
        # module): a bare name is looked up wherever in ppl_models it is bound.
        objects = _package_index().get(target, [])
    if objects:
        obj = objects[0]
        found = _documented(app, env).get(id(obj))
        if found is not None and node.get("refdoc"):
            fullname, entry = found
            return make_refnode(
                app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, fullname
            )
        return contnode  # real, documented elsewhere (numpy, torch) or private: plain text
    if "." in target:
        root = target.split(".")[0]
        # A dotted name under ppl_models or an installed package that does not exist is a
        # broken reference; other prefixes (``np.``, ``nn.``) are abbreviations in prose.
        if root == "ppl_models" or locate(root) is not _MISSING:
            return None
        return contnode
    if node.get("reftype") in _STRICT_ROLES and not hasattr(builtins, target):
        return None
    return contnode  # a type named in prose: "array_like", "Figure", "Tensor"


def _on_process_docstring(app, what, name, obj, options, lines) -> None:
    if what == "module":
        _CURRENT_MODULE[0] = name
    # NamedTuple fields: "Alias for field number 0" says nothing to a reader.
    if what in ("attribute", "property") and lines and lines[0].startswith("Alias for field"):
        lines.clear()
    _split_attribute_names(lines)


_SECTION = re.compile(r"^\s*-{3,}\s*$")


def _split_attribute_names(lines: list[str]) -> None:
    """In a numpydoc Attributes section, ``a_, b_ : float`` becomes one entry per name.

    napoleon splits such lines in Parameters but not in Attributes, where it would render
    ``b_ (a_,)``.
    """
    i = 0
    while i < len(lines) - 1:
        if lines[i].strip() == "Attributes" and _SECTION.match(lines[i + 1]):
            indent = len(lines[i]) - len(lines[i].lstrip())
            j = i + 2
            while j < len(lines):
                line = lines[j]
                if j + 1 < len(lines) and _SECTION.match(lines[j + 1]):
                    break  # the next section
                at_base = line.strip() and len(line) - len(line.lstrip()) == indent
                names, sep, kind = line.partition(" : ")
                if at_base and "," in names:
                    body = []
                    k = j + 1
                    while k < len(lines) and (
                        not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent
                    ):
                        body.append(lines[k])
                        k += 1
                    while body and not body[-1].strip():
                        body.pop()
                    entries = []
                    for one in (n.strip() for n in names.split(",") if n.strip()):
                        entries += [" " * indent + one + sep + kind, *body]
                    lines[j:k] = entries
                    j += len(entries)
                    continue
                j += 1
            i = j
        else:
            i += 1


_CURRENT_MODULE = [""]


def _on_doctree_read(app, doctree) -> None:
    # A type in a numpydoc section ("path", "mean", "FitResult") becomes a reference that
    # Sphinx resolves by suffix, so "path" finds every attribute called path (ambiguous)
    # and "mean" any field called mean (wrong). Such references are looked up exactly, in
    # the docstring's module and class, and then by missing-reference above. (Explicit
    # roles carry "refwarn"; the type fields' references do not.)
    for node in doctree.findall(addnodes.pending_xref):
        if (
            node.get("refdomain") == "py"
            and node.get("refspecific")
            and "refwarn" not in node.attributes
            and "." not in node["reftarget"]
        ):
            del node["refspecific"]  # Sphinx reads its presence, not its value
    docname = app.env.docname
    if docname.startswith("tutorials/") and not any(
        "jupyter_execute" in image.get("uri", "") for image in doctree.findall(nodes.image)
    ):
        # A tutorial shows its figures unless they went to a file or nowhere (a backend
        # without display): a page without one is a fault of the build, not of the reader.
        logger.warning("%s: the tutorial's page has no figure", docname, location=docname)
    # A tutorial's figure gets its own width in pixels: the page's CSS shrinks it to the
    # column, and Sphinx links a sized image to its full-size file (click to enlarge).
    for image in doctree.findall(nodes.image):
        uri = image.get("uri", "")
        if "jupyter_execute" not in uri or any(k in image for k in ("width", "height", "scale")):
            continue
        path = Path(uri) if Path(uri).is_absolute() else Path(app.srcdir) / uri
        try:
            import imagesize

            width, _ = imagesize.get(path)
        except Exception:
            continue
        if width > 0:
            image["width"] = f"{width}px"


def read_tutorial(text: str):
    """A tutorial script (jupytext percent format) as a notebook with a Python kernel."""
    import jupytext

    nb = jupytext.reads(text, fmt="py:percent")
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata.setdefault("language_info", {"name": "python"})
    return nb


def _on_skip_member(app, what, name, obj, skip, options):
    # scikit-learn's metadata-routing setters (set_fit_request, ...) are made for every
    # estimator class; their docstrings point into scikit-learn's own docs.
    if re.fullmatch(r"set_\w+_request", name):
        return True
    # A name that two public modules export is documented once, on its home's page.
    if what == "module" and name in _elsewhere().get(_CURRENT_MODULE[0], ()):
        return True
    return None


def _elsewhere() -> dict[str, set[str]]:
    """Public module -> names in its __all__ that another public module documents."""
    global _ELSEWHERE
    if _ELSEWHERE is None:
        exports: dict[int, list[tuple[str, str]]] = {}
        for mod in public_modules():
            module = importlib.import_module(f"ppl_models.{mod}")
            for key in getattr(module, "__all__", ()):
                obj = getattr(module, key, None)
                exports.setdefault(id(obj), []).append((f"ppl_models.{mod}", key))
        _ELSEWHERE = {}
        for id_, places in exports.items():
            if len(places) < 2:
                continue
            home = getattr(_by_id(places, id_), "__module__", "") or ""
            # The home: the module the object is defined under, else the first in ORDER.
            keep = next((p for p in places if home.startswith(p[0] + ".") or home == p[0]),
                        places[0])  # fmt: skip
            for place in places:
                if place != keep:
                    _ELSEWHERE.setdefault(place[0], set()).add(place[1])
    return _ELSEWHERE


def _by_id(places, id_):
    module, key = places[0]
    return getattr(importlib.import_module(module), key)


_ELSEWHERE = None


def setup(app):
    app.connect("autodoc-skip-member", _on_skip_member)
    app.connect("doctree-read", _on_doctree_read)
    app.connect("config-inited", _on_config_inited)
    app.connect("missing-reference", _on_missing_reference)
    # Before napoleon (priority 500) turns the numpydoc sections into fields.
    app.connect("autodoc-process-docstring", _on_process_docstring, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
