"""The layer rules of ``docs/architecture.md#what-may-import-what``, checked on the source (``ast``, no imports).

- ``nn/``, ``diffusion/``, ``mcmc/``, ``losses/``, ``metrics/``, ``flows/`` (the pure-torch core) import no Lightning
  (``lightning``, ``pytorch_lightning``) and no ``lit_gen.models``, neither directly nor through another lit_gen
  module they import;
- ``data/`` imports no ``lit_gen.models``, and ``models/`` no ``lit_gen.data``: they meet only through the
  data-module contract (``lit_gen/contract.py``);
- ``evaluation/`` imports no Lightning, no ``lit_gen.models`` and no ``lit_gen.data`` (evaluators get the module
  as an argument and read data through the contract);
- no module imports a private name (a leading underscore: a function, a class or a module) from another
  ``lit_gen`` subpackage.

Every import counts: at module level, inside functions and ``if TYPE_CHECKING:`` blocks, relative imports
(resolved against the file's package) and ``importlib.import_module("...")`` / ``__import__("...")`` with a
constant name. A failure names the file, the line and the import. Violations older than these tests are listed in
``KNOWN_VIOLATIONS``, to be removed by the refactor.

Two more tests keep the documentation honest: no file under ``lit_gen/``, ``configs/``, ``README.md`` (nor
``BENCHMARKS.md``, ``benchmarks/``, ``notebooks/``, ``scripts/``) cites the internal SPEC/DESIGN documents, and
every ``docs/<page>.md#<section>`` they cite exists.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lit_gen"

#: the pure-torch layers and what they must not import (module-name prefixes)
PURE_LAYERS = ("nn", "diffusion", "mcmc", "losses", "metrics", "flows")
LIGHTNING = ("lightning", "pytorch_lightning")
RULES: dict[str, tuple[str, ...]] = {
    **{layer: (*LIGHTNING, "lit_gen.models") for layer in PURE_LAYERS},
    "data": ("lit_gen.models",),
    "models": ("lit_gen.data",),
    # evaluators are handed the module and read the data through the contract
    "evaluation": (*LIGHTNING, "lit_gen.models", "lit_gen.data"),
}

#: Violations present when this test was written, each ``(file, imported name)``: to be removed by the refactor.
#: Do not add to this set: fix the import instead (make the name public, or move it to the layer that owns it).
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

#: Files that other work still edits and that may cite SPEC/DESIGN until it lands: to be emptied by the refactor.
TEMPORARY_CITATION_ALLOWANCE: set[str] = set()
TEMPORARY_CITATION_ALLOWANCE_DIRS = ("lit_gen/ddaebm/",)

CITATION = re.compile(r"\bSPEC\b|\bDESIGN\b|\.\./shared")  # "SPEC §5", "SPEC.md", "DESIGN.md", "(DESIGN: ...)"


@dataclass(frozen=True)
class Import:
    """One imported name: ``target`` is fully qualified (``lit_gen.mcmc.base._check_positive``)."""

    file: str
    line: int
    target: str
    source: str  # the statement as written, for the message


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: Path) -> str:
    """The package a relative import in ``path`` starts from."""
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(path: Path, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = _package_of(path).split(".")
    if level - 1 > len(base) - 1:
        raise AssertionError(f"{path}: relative import beyond the top-level package")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_of(path: Path, source: str | None = None) -> list[Import]:
    """Every name ``path`` imports, with its line (module level, functions, ``TYPE_CHECKING`` blocks alike).

    ``source`` replaces the file's text (the scanner's own test parses code as if it lived at ``path``).
    """
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=rel)
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(rel, node.lineno, alias.name, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(path, node.module, node.level)
            written = "." * node.level + (node.module or "")
            for alias in node.names:
                # `from a.b import c`: c is an attribute or a submodule of a.b; either way the name is a.b.c
                target = base if alias.name == "*" else f"{base}.{alias.name}"
                found.append(Import(rel, node.lineno, target, f"from {written} import {alias.name}"))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func, name = node.func, node.args[0].value
            dynamic = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
                isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
            )
            if dynamic and isinstance(name, str):
                found.append(Import(rel, node.lineno, name, f"{ast.unparse(func)}({name!r})"))
    return found


def _files(folder: str = "") -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def _matches(target: str, prefix: str) -> bool:
    return target == prefix or target.startswith(prefix + ".")


def _subpackage(module: str) -> str:
    """``lit_gen.<first part>``: the subpackage (or top-level module) a module belongs to."""
    return ".".join(module.split(".")[:2])


def _private_owner(target: str) -> str | None:
    """The subpackage a private ``lit_gen`` name belongs to, or ``None`` when the name is not private to one.

    ``lit_gen.mcmc.base._check_positive`` and ``lit_gen.diffusion._random`` are private to ``lit_gen.mcmc`` and
    ``lit_gen.diffusion``; ``lit_gen._env`` is private to the whole package, so every lit_gen module may use it.
    """
    parts = target.split(".")
    if parts[0] != "lit_gen":
        return None
    for k, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:2]) if k >= 2 else None
    return None


def _report(found: list[Import], why: str) -> str:
    lines = [f"  {imp.file}:{imp.line}: `{imp.source}` ({why(imp)})" for imp in found]
    return "\n".join(lines)


def layer_violations() -> list[Import]:
    """Imports that break :data:`RULES` (known ones included)."""
    bad = []
    for layer, forbidden in RULES.items():
        for path in _files(layer):
            for imp in imports_of(path):
                if any(_matches(imp.target, prefix) for prefix in forbidden):
                    bad.append(imp)
    return bad


def private_violations() -> list[Import]:
    """Imports of a private name owned by another lit_gen subpackage (known ones included)."""
    bad = []
    for path in _files():
        importer = _subpackage(_module_name(path))
        for imp in imports_of(path):
            owner = _private_owner(imp.target)
            if owner is not None and owner != importer:
                bad.append(imp)
    return bad


def _known(imp: Import) -> bool:
    return (imp.file, imp.target) in KNOWN_VIOLATIONS


def test_layers_import_only_what_they_may() -> None:
    new = [imp for imp in layer_violations() if not _known(imp)]

    def why(imp: Import) -> str:
        layer = imp.file.split("/")[1]
        target = next(p for p in RULES[layer] if _matches(imp.target, p))
        return f"lit_gen/{layer}/ must not import {target}; see docs/architecture.md#what-may-import-what"

    assert not new, "imports that break the layer rules:\n" + _report(new, why)


def test_no_private_names_across_subpackages() -> None:
    new = [imp for imp in private_violations() if not _known(imp)]

    def why(imp: Import) -> str:
        return (f"{imp.target} is private to {_private_owner(imp.target)}: make it public there, or move it to "
                "the package that uses it")

    assert not new, "private names imported from another lit_gen subpackage:\n" + _report(new, why)


def test_known_violations_still_exist() -> None:
    """An entry of KNOWN_VIOLATIONS that was fixed must leave the set, so that it cannot come back unnoticed."""
    current = {(imp.file, imp.target) for imp in layer_violations() + private_violations()}
    fixed = sorted(KNOWN_VIOLATIONS - current)
    assert not fixed, f"fixed violations still listed in KNOWN_VIOLATIONS (remove them): {fixed}"


def test_scanner_sees_every_kind_of_import() -> None:
    """The scanner itself: function-level, relative, dynamic and private imports are all found."""
    source = (
        "from . import base\n"
        "from ..models import EBMModule\n"
        "def f():\n"
        "    import lightning.pytorch as pl\n"
        "    from lit_gen.diffusion._random import randn\n"
        "    import importlib\n"
        "    importlib.import_module('pytorch_lightning')\n"
    )
    # parsed as if it lived in lit_gen/mcmc/ (nothing is written into the package)
    targets = {imp.target for imp in imports_of(PACKAGE / "mcmc" / "probe.py", source)}
    assert {"lit_gen.mcmc.base", "lit_gen.models.EBMModule", "lightning.pytorch", "lit_gen.diffusion._random.randn",
            "importlib", "pytorch_lightning"} <= targets
    assert _private_owner("lit_gen.diffusion._random.randn") == "lit_gen.diffusion"
    assert _private_owner("lit_gen._env.relax_cuda_check_without_gpu") is None
    assert _private_owner("lit_gen.models.base.GenerativeModule") is None


#: where the citation rule holds (the brief minimum is lit_gen/, configs/ and README.md)
CITATION_SCOPE = ("lit_gen", "configs", "README.md", "BENCHMARKS.md", "benchmarks", "notebooks", "scripts")
TEXT_SUFFIXES = (".py", ".yaml", ".yml", ".md", ".txt", ".rst", ".ipynb", ".sh", ".sbatch", "")


def _text_files(scope: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for name in scope:
        path = ROOT / name
        files.extend([path] if path.is_file() else sorted(path.rglob("*")))
    return [p for p in files if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts]


def test_no_citations_of_internal_documents() -> None:
    """Docstrings, comments, configs and notes point into docs/ (or cite the paper), never at SPEC/DESIGN documents
    that are not in the repository."""
    found = []
    for path in _text_files(CITATION_SCOPE):
        rel = path.relative_to(ROOT).as_posix()
        if rel in TEMPORARY_CITATION_ALLOWANCE or rel.startswith(TEMPORARY_CITATION_ALLOWANCE_DIRS):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # a binary file (e.g. a plot) cannot cite anything
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if CITATION.search(line):
                found.append(f"  {rel}:{number}: {line.strip()[:120]}")
    assert not found, (
        "citations of documents that are not in the repository (point into docs/ instead, e.g. "
        "docs/algorithms.md#gaussian-noise-kernel, or cite the paper):\n" + "\n".join(found)
    )


def test_markdown_has_no_control_characters() -> None:
    """A LaTeX command written through a non-raw Python string loses its backslash to an escape (``\\theta`` becomes a
    tab and ``heta``, ``\\frac`` a form feed and ``rac``): the rendered maths is then wrong. No markdown file of the
    project holds such characters."""
    bad = re.compile("[\x00-\x09\x0b-\x1f\x7f]")  # all but the newline
    found = []
    for path in sorted([*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("benchmarks/**/*.md")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
            if bad.search(line):
                found.append(f"  {path.relative_to(ROOT).as_posix()}:{number}: {line.strip()[:100]!r}")
    assert not found, "control characters (a lost LaTeX backslash?) in markdown:\n" + "\n".join(found)


# ------------------------------------------------------------------------------------------ transitive reach
def _module_path(name: str) -> Path | None:
    """The file of the longest prefix of ``name`` that is a module (``a.b.c`` may be the attribute ``c`` of ``a.b``)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:k])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return path
    return None


def _loaded_files(name: str) -> list[Path]:
    """Files Python runs to import ``name``: every parent package's ``__init__.py``, then the module itself."""
    parts = name.split(".")
    files = [ROOT.joinpath(*parts[:k], "__init__.py") for k in range(1, len(parts))]
    target = _module_path(name)
    return [p for p in [*files, target] if p is not None and p.is_file()]


def test_pure_layers_do_not_reach_lightning_through_other_modules() -> None:
    """Importing a pure-torch layer must not load Lightning or lit_gen.models indirectly (through lit_gen.callbacks,
    lit_gen.compat, ...): follow every lit_gen import from each pure module and check what the reached files import."""
    forbidden = (*LIGHTNING, "lit_gen.models")
    problems = []
    for layer in PURE_LAYERS:
        for start in _files(layer):
            seen: dict[Path, list[str]] = {start: [_module_name(start)]}
            queue = [start]
            while queue:
                path = queue.pop()
                for imp in imports_of(path):
                    if _known(imp):
                        continue
                    if any(_matches(imp.target, prefix) for prefix in forbidden):
                        if path != start and path.relative_to(PACKAGE).parts[0] not in PURE_LAYERS:
                            chain = " -> ".join(seen[path])
                            problems.append(f"  {start.relative_to(ROOT).as_posix()}: {chain} -> `{imp.source}` "
                                            f"({imp.file}:{imp.line})")
                        continue
                    if not imp.target.startswith("lit_gen"):
                        continue
                    for nxt in _loaded_files(imp.target):
                        if nxt not in seen:
                            seen[nxt] = [*seen[path], _module_name(nxt)]
                            queue.append(nxt)
    # direct imports are reported by test_layers_import_only_what_they_may; here only indirect ones
    assert not problems, "pure-torch layers that load Lightning or lit_gen.models indirectly:\n" + "\n".join(
        sorted(set(problems)))


# ----------------------------------------------------------------------------------------------- docs anchors
DOCS = ROOT / "docs"
DOC_REFERENCE = re.compile(r"docs/(\w+\.md)(?:#([\w-]+))?")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    anchors: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6} (.+)", line)
        if match and not fenced:
            slug = _slug(match.group(1))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def _check_reference(doc: str, anchor: str | None, where: str, broken: list[str]) -> None:
    path = DOCS / doc
    if not path.is_file():
        broken.append(f"  {where}: docs/{doc} does not exist")
    elif anchor and anchor not in _anchors(path):
        broken.append(f"  {where}: docs/{doc} has no section #{anchor}")


def test_references_into_docs_resolve() -> None:
    """Every ``docs/<page>.md#<section>`` cited in the code, configs and notes, and every link between the docs pages,
    names a page and a section that exist."""
    broken: list[str] = []
    for path in _text_files((*CITATION_SCOPE, "tests")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            for doc, anchor in DOC_REFERENCE.findall(line):
                _check_reference(doc, anchor or None, f"{path.relative_to(ROOT).as_posix()}:{number}", broken)
    for page in sorted(DOCS.glob("*.md")):
        fenced = False
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            if fenced:
                continue
            for target in MARKDOWN_LINK.findall(line):
                if "://" in target:
                    continue
                doc, _, anchor = target.partition("#")
                doc = doc or page.name
                if doc.endswith(".md") and "/" not in doc:
                    _check_reference(doc, anchor or None, f"docs/{page.name}:{number}", broken)
    assert not broken, "references into docs/ that do not resolve:\n" + "\n".join(broken)
