"""``lit-gen``: the LightningCLI entry point.

``lit-gen fit --config diffusion/toy2d.yaml`` trains; ``validate``, ``test`` and ``predict`` take the same config
plus ``--ckpt_path``. Every method module is a subclass of ``GenerativeModule`` and every data module of
``GenerativeDataModule`` (subclass mode), so a config picks them by ``class_path`` and users can plug in their own
classes. The data module's ``data_shape`` is linked into the model, so no config states a data dimension: the
same toy config trains on a user's ``.npy`` file of any dimension.

- ``--config NAME`` is a file, or, when no such file exists, the config of that name shipped inside the package
  (``diffusion/toy2d.yaml``, ``configs/diffusion/toy2d.yaml`` and ``diffusion/toy2d`` all name it): configs work
  from any folder and from an installed wheel.
- Mistakes in the command line or the config stop with one line saying what was wrong (with "did you mean" for a
  misspelt key); diffusion sampler names are checked before anything is built; keys must be spelt in full.
- ``lit-gen predict`` without a prediction writer in the config writes ``samples.npy`` and ``samples.png`` to
  ``predictions/`` in the checkpoint's run directory (:class:`~lit_gen.callbacks.SampleWriter`).
- ``lit-gen --version`` prints the versions of lit_gen, Lightning and torch.

Set ``LIT_GEN_TRACEBACK=1`` to see the full traceback (and jsonargparse's full message) of an error.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import linecache
import logging
import os
import pickle
import re
import sys
import typing
import warnings
from pathlib import Path
from typing import Any, NoReturn

import torch
from jsonargparse import ActionConfigFile, DefaultHelpFormatter
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback

from lit_gen.callbacks.checkpoint_io import BrokenCheckpointError, broken_checkpoint_message
from lit_gen.compat import check_cli_ckpt_hook
from lit_gen.data import GenerativeDataModule
from lit_gen.models import GenerativeModule
from lit_gen.utils.checkpoints import archive_problem, checkpoint_problem, newest_loadable

check_cli_ckpt_hook()  # LitGenCLI overrides it: fail at import, not silently, if Lightning renames it

SUBCOMMANDS = ("fit", "validate", "test", "predict")
TRACEBACK_ENV = "LIT_GEN_TRACEBACK"
DESCRIPTION = (
    "lit-gen: train (fit), evaluate (validate, test) and sample from (predict) lit_gen's energy-based and diffusion "
    "models. A config is a YAML file or the name of a packaged one, e.g. --config diffusion/toy2d.yaml. Errors are "
    f"one line; set {TRACEBACK_ENV}=1 for the traceback."
)


# ------------------------------------------------------------------------------------------ configs by name
def config_dirs() -> list[Path]:
    """Where configs named without a path are looked up: the copy inside the package (``lit_gen/configs``, which
    in the repository points at ``configs/``), then the repository's ``configs/`` beside the package."""
    here = Path(__file__).resolve().parent
    found = []
    for folder in (here / "configs", here.parent / "configs"):
        if folder.is_dir() and all(folder.resolve() != f.resolve() for f in found):
            found.append(folder)
    return found


def packaged_config_names() -> list[str]:
    """Every config name that ``--config`` resolves, e.g. ``diffusion/toy2d.yaml``."""
    names: set[str] = set()
    for folder in config_dirs():
        names.update(p.relative_to(folder).as_posix() for p in folder.rglob("*.yaml"))
    return sorted(names)


def resolve_config(value: str) -> str:
    """``value`` when it names an existing file (or is not a file name at all, e.g. inline YAML); otherwise the
    packaged config of that name, given with or without a leading ``configs/`` and the ``.yaml`` suffix. A name
    found nowhere is returned as it is, for the parser to report."""
    if not isinstance(value, str) or Path(value).expanduser().exists() or "\n" in value or value.lstrip()[:1] in "{[":
        return value
    name = value.replace("\\", "/").removeprefix("./").removeprefix("configs/")
    wanted = [name] if name.endswith((".yaml", ".yml", ".json")) else [name, f"{name}.yaml"]
    for folder in config_dirs():
        for candidate in wanted:
            path = folder / candidate
            if path.is_file():
                return str(path)
    return value


class ConfigFileByName(ActionConfigFile):
    """``--config``: a path, or the name of a config shipped with lit_gen (:func:`resolve_config`)."""

    def __call__(self, parser: Any, cfg: Any, values: Any, option_string: str | None = None) -> None:
        resolved = resolve_config(values)
        looks_like_a_file = isinstance(values, str) and re.fullmatch(r"[\w./\\~+-]+", values) is not None
        if resolved is values and looks_like_a_file and not Path(values).expanduser().exists():
            raise TypeError(missing_config_message(values))
        super().__call__(parser, cfg, resolved, option_string)


def missing_config_message(value: str) -> str:
    """The parser error for a ``--config`` found neither as a file nor among the packaged configs."""
    name = value.replace("\\", "/").removeprefix("./").removeprefix("configs/")
    close = difflib.get_close_matches(name, packaged_config_names(), n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else (
        "packaged configs are named like diffusion/toy2d.yaml (folders: "
        + ", ".join(sorted({n.split('/')[0] for n in packaged_config_names()})) + ")")
    return f'Parser key "config": File does not exist: {value!r}, nor is it a packaged config; {hint}'


# ----------------------------------------------------------------------------------- help and parse errors
class LitGenHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, with long "known subclasses" lists cut down (a network's type is any
    ``torch.nn.Module``: its list named every module class torch and torchvision define)."""

    max_listed = 12

    def _get_help_string(self, action: Any) -> str:
        text = super()._get_help_string(action)
        match = re.search(r", known subclasses: ([^()]*)\)$", text)
        if match is None:
            return text
        names = [n.strip() for n in match.group(1).split(",")]
        if len(names) <= self.max_listed:
            return text
        networks = [n for n in names if n.startswith(("lit_gen.nn.", "lit_gen.ddaebm."))]
        ours = (networks or [n for n in names if n.startswith("lit_gen.")] or names)[: self.max_listed]
        rest = len(names) - len(ours)
        listed = ", ".join(ours) + f", and {rest} more: any importable class by class_path"
        return text[: match.start()] + f", e.g. {listed})"


class LitGenArgumentParser(LightningArgumentParser):
    """LightningCLI's parser with whole-word options only (no prefix abbreviations), shortened help lists and
    one-line parse errors (:func:`short_parse_error`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", LitGenHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or os.environ.get(TRACEBACK_ENV) or os.environ.get("JSONARGPARSE_DEBUG"):
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        prog = parser.prog.replace(" [options]", "")
        sys.stderr.write(f"{prog}: error: {short_parse_error(message, parser)}\n")
        self.exit(2)


_NOISE = re.compile(
    r"^(- )?(Does not validate against any of the Union subtypes|Subtypes: .*|Errors:|Expected a <class 'NoneType'>"
    r"|Given value type: .*|Given value: .*|Expected a path but .* either not accessible or invalid)$"
)


def short_parse_error(message: str, parser: Any = None) -> str:
    """jsonargparse's multi-line error as one line: the key path and the innermost reason, without the union
    bookkeeping, plus "did you mean ..." for a misspelt key (close matches among the keys it could have been)."""
    lines = [line.strip() for line in message.splitlines()]
    kept = [line.removeprefix("- ") for line in lines if line and not _NOISE.match(line)]
    text = " ".join(kept)
    text = re.sub(r"Problem with given class_path '([^']+)':", r"(\1)", text)
    text = re.sub(r'": \(([^)]+)\)', r'" (\1):', text)
    text = re.sub(r"Type \S.*? expects a function or a callable class: ", "", text)
    text = re.sub(r"\s*Got value: (Namespace|NestedArg)\(.*$", "", text)
    text = re.sub(r"Expected a <class '([\w.]+)'>", r"expected \1", text)
    text = re.sub(r"<class '([\w.]+)'>", r"\1", text).strip()
    hint = did_you_mean(message, parser)
    return f"{text.rstrip('.')}; {hint}" if hint else text


def did_you_mean(message: str, parser: Any = None) -> str:
    """"did you mean X?" for the first unknown key named in ``message``, or ``""``."""
    match = re.search(r"unrecognized arguments: (\S+)", message)
    if match:  # --trainer.max_stepz 3
        key = match.group(1).split("=", 1)[0]
        return _suggest(key, _option_strings(parser))
    match = re.search(r"does not accept option '([^']+)'", message)
    if match:  # a YAML key: trainer.max_stepz
        return _suggest(match.group(1), [o.removeprefix("--") for o in _option_strings(parser)])
    match = re.search(r"Option '([^']+)' is not accepted", message)
    if match:  # an init argument of a class_path
        classes = re.findall(r"class_path[=]?\s*'([^']+)'", message)
        cls = _import(classes[-1]) if classes else None
        return _suggest(match.group(1), init_parameters(cls) if isinstance(cls, type) else [])
    return ""


def _suggest(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.7)
    if not close and "." in key:  # compare the last part only: model.init_args.sampler_stepz
        head, _, tail = key.rpartition(".")
        tails = [c.rpartition(".")[2] for c in candidates if c.rpartition(".")[0] == head]
        close = [f"{head}.{t}" for t in difflib.get_close_matches(tail, tails, n=1, cutoff=0.7)]
    return f"did you mean {close[0]}?" if close else ""


def _option_strings(parser: Any) -> list[str]:
    """Every long option of ``parser`` (and of its subcommands)."""
    found: list[str] = []
    for action in getattr(parser, "_actions", []):
        found.extend(o for o in action.option_strings if o.startswith("--"))
        for sub in (getattr(action, "choices", None) or {}).values() if hasattr(action, "_name_parser_map") else []:
            found.extend(_option_strings(sub))
    return sorted(set(found))


def init_parameters(cls: type) -> list[str]:
    """The keyword arguments a class's constructor takes, following ``**kwargs`` into its base classes."""
    names: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if klass.__module__.split(".")[0] in ("builtins", "torch", "lightning", "pytorch_lightning"):
            break
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            break
        names += [p.name for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return names


# ------------------------------------------------------------------------------------ sampler names
def sampler_name_problem(config: Any) -> str | None:
    """A message when the config gives a diffusion sampler by an unknown name, else ``None``.

    Checked on the parsed config, before any class is built: every init argument of the model whose type accepts a
    :class:`~lit_gen.diffusion.samplers.DiffusionSampler` and that is given as a name must be one of
    ``SAMPLER_CLASSES`` (read now, so shorthands added there count).
    """
    from lit_gen.diffusion.samplers import strategy

    subcommand = config.get("subcommand")
    model = _plain((config.get(subcommand) if subcommand else config).get("model") or {})
    cls = _import(model.get("class_path") or "") if isinstance(model, dict) else None
    if not isinstance(cls, type):
        return None
    names = sorted(strategy.SAMPLER_CLASSES)
    for key, value in (model.get("init_args") or {}).items():
        if isinstance(value, str) and value not in names and _takes_diffusion_sampler(cls, key):
            close = difflib.get_close_matches(value, names, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            return (f"model.init_args.{key}: unknown sampler {value!r}; choose one of {', '.join(names)}, or give a "
                    f"lit_gen.diffusion.samplers.DiffusionSampler subclass by class_path{hint}")
    return None


def _takes_diffusion_sampler(cls: type, key: str) -> bool:
    from lit_gen.diffusion.samplers import DiffusionSampler

    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            hint = typing.get_type_hints(init).get(key)
        except Exception:  # unresolvable annotations: no check
            return False
        if hint is not None:
            return any(isinstance(a, type) and issubclass(a, DiffusionSampler) for a in (hint, *typing.get_args(hint)))
    return False


# ----------------------------------------------------------------------------------------------- the CLI
class LitGenCLI(LightningCLI):
    """LightningCLI with the data shape linked into the model, configs by name, sampler names checked at parse time,
    checked ``--ckpt_path``/``--weights_from``, an optional test after fit, and a default sample writer for
    ``predict``."""

    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        """The parser of the main command and of each subcommand: ``--config`` takes packaged config names too."""
        import lightning

        kwargs.setdefault("dump_header", [f"lit_gen=={_version()}", f"lightning.pytorch=={lightning.__version__}"])
        parser = self.parser_class(**kwargs)
        parser.add_argument("-c", "--config", action=ConfigFileByName,
                            help="Path to a YAML config, or the name of a packaged one (e.g. diffusion/toy2d.yaml).")
        return parser

    def setup_parser(self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
                     ) -> None:
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)
        self.parser.add_argument("--version", action="version", version=version_line(),
                                 help="Print the versions of lit_gen, Lightning and torch and exit.")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then check what the parser cannot: diffusion sampler names (before anything is built)."""
        super().parse_arguments(parser, args)
        problem = sampler_name_problem(self.config)
        if problem is not None:
            subcommand = self.config.get("subcommand")
            getattr(self, "_subcommand_parsers", {}).get(subcommand, parser).error(problem)

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("data.data_shape", "model.init_args.data_shape", apply_on="instantiate")
        # None when the data are unconditional; a model without num_classes is caught in instantiate_classes
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        parser.add_argument("--predict_class", type=int | None, default=None,
                            help="`predict` of a conditional model: draw only this class (default: every class, one "
                                 "grid row each).")
        parser.add_argument("--guidance", type=float | None, default=None,
                            help="`predict` of a conditional model: the guidance weight w (0 unconditional, 1 "
                                 "conditional, > 1 guided; default: the model's guidance_scale).")
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=False,
            help="After `fit`, run `test` on the final weights and print the test report.",
        )
        parser.add_argument(
            "--weights_from",
            type=str | None,
            default=None,
            help="`fit` only: start a new run from this checkpoint's weights (fresh optimizer and step counters). "
            "To continue a run instead, give --ckpt_path.",
        )

    def _parse_ckpt_path(self) -> None:
        """Resolve and check ``--ckpt_path`` before anything is built; the config and command line win on resume.

        - ``--ckpt_path last`` becomes the newest loadable ``last*.ckpt`` under ``trainer.default_root_dir``; with
          none there it is an error (Lightning would warn and silently start a fresh run).
        - A truncated or empty checkpoint is an error naming it and offering the newest loadable one beside it.
        - A checkpoint written by an unrelated module class is refused (LightningCLI would fail deep in the
          parser with "the following arguments are required: net").
        - LightningCLI merges the checkpoint's saved hyper-parameters over the parsed config, so values typed on
          the command line were lost on resume. Here, when the config names a model, the config (files and
          command line) is used as it is and every value that differs from the checkpoint's is printed; the
          restored optimizer and LR scheduler then take the configured settings too
          (:mod:`lit_gen.models.resume`). A config without a model still takes the checkpoint's.
        """
        section = self._subcommand_section()
        if section is None:
            return
        path = section.get("ckpt_path")
        if path == "last":
            section["ckpt_path"] = path = str(resolve_last_checkpoint(section))
        if path and Path(path).exists():
            problem = archive_problem(path)
            if problem is not None:
                raise BrokenCheckpointError(broken_checkpoint_message(path, problem))
        if path and section.get("weights_from"):
            raise ValueError(
                "give either --ckpt_path (resume the run: weights, optimizer, step counters) or --weights_from "
                "(a new run starting from a checkpoint's weights), not both"
            )
        check_checkpoint_module(self.config)
        model = section.get("model")
        if path and Path(path).is_file() and model is not None and model.get("class_path"):
            report_resume_differences(path, model)
            return
        super()._parse_ckpt_path()

    def _subcommand_section(self) -> Any:
        subcommand = self.config.get("subcommand")
        return self.config.get(subcommand) if subcommand else None

    def before_fit(self) -> None:
        """``--weights_from PATH``: a new run that starts from the weights of a checkpoint (fresh optimizer)."""
        self._continue_run_folder()
        path = self._subcommand_section().get("weights_from")
        if not path:
            return
        problem = checkpoint_problem(path)
        if problem is not None:
            raise BrokenCheckpointError(f"--weights_from: {problem}")
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if "state_dict" not in checkpoint:
            raise ValueError(f"--weights_from {path}: the file holds no 'state_dict' (not a Lightning checkpoint)")
        self.model.load_state_dict(checkpoint["state_dict"])
        print(f"starting a new run from the weights of {path} (fresh optimizer, step 0)", file=sys.stderr)

    def instantiate_classes(self) -> None:
        """Build the classes; a constructor's own error reaches the user as it is, not inside a parser error.

        jsonargparse reports a failing ``class_path`` constructor as "Does not validate against any of the Union
        subtypes", with the constructor's message buried in a list; re-raising that cause keeps its clear message
        (e.g. an empty data file, ``sampler_steps`` <= 0) and its traceback into the constructor.
        """
        try:
            super().instantiate_classes()
        except ValueError as err:
            cause = err.__cause__
            if not isinstance(cause, Exception) or "Union subtypes" not in str(err):
                raise
            if hasattr(cause, "add_note"):  # Python >= 3.11
                cause.add_note("(raised while building the classes of the config)")
            raise cause from None
        check_conditioning(self.datamodule, self.model)

    def before_validate(self) -> None:
        self._keep_checkpoint_dirs()

    def before_test(self) -> None:
        self._keep_checkpoint_dirs()

    def before_predict(self) -> None:
        """Without a prediction writer in the config, ``predict`` writes its samples with a :class:`SampleWriter`."""
        from lit_gen.callbacks import SampleWriter

        self._keep_checkpoint_dirs()
        section = self._subcommand_section()
        for option, attribute in (("predict_class", "predict_class"), ("guidance", "predict_guidance")):
            if section.get(option) is not None:
                if getattr(self.model, "num_classes", None) is None:
                    raise ValueError(f"--{option} needs a conditional model (num_classes), but "
                                     f"{type(self.model).__name__} is unconditional")
                setattr(self.model, attribute, section[option])
        if not any(isinstance(cb, BasePredictionWriter) for cb in self.trainer.callbacks):
            self.trainer.callbacks.append(SampleWriter())

    def _continue_run_folder(self) -> None:
        """``fit --ckpt_path``: the resumed run logs into the version folder of the run it continues.

        Lightning's loggers otherwise open a new ``version_N`` for every resume, so one run's curves end up split
        over several folders and its ``ModelCheckpoint`` warns "The dirpath has changed". A logger whose version
        is not set in the config takes the checkpoint's run folder when that folder sits under the logger's own
        ``root_dir``; the resumed config is saved beside the original ``config.yaml`` as
        ``config_resumed_step<N>.yaml`` (the original stays as it was)."""
        path = self._subcommand_section().get("ckpt_path")
        checkpoint = _checkpoint_head(path)
        if checkpoint is None:
            return
        run_dir = None
        for state in (checkpoint.get("callbacks") or {}).values():
            dirpath = state.get("dirpath") if isinstance(state, dict) else None
            if dirpath and Path(dirpath).name == "checkpoints":
                run_dir = Path(dirpath).parent
                break
        if run_dir is None:
            return
        continued = False
        for logger in self.trainer.loggers:
            if getattr(logger, "_version", 0) is None and hasattr(logger, "root_dir") and (
                Path(logger.root_dir).resolve() == run_dir.parent.resolve()
            ):
                logger._version = run_dir.name  # the folder name: log_dir = root_dir / version_N
                continued = True
        if not continued:
            return
        step = int(checkpoint.get("global_step", 0))
        for callback in self.trainer.callbacks:
            if isinstance(callback, SaveConfigCallback):
                callback.config_filename = f"config_resumed_step{step}.yaml"
        print(f"continuing the run in {run_dir} from step {step}", file=sys.stderr)

    def _keep_checkpoint_dirs(self) -> None:
        """``validate``/``test``/``predict`` save no checkpoint, yet Lightning restores every ``ModelCheckpoint``'s
        state from ``--ckpt_path`` and warns "The dirpath has changed" because these runs log to a new version
        folder. The checkpoint callbacks are pointed at the folder saved in the checkpoint (nothing is written)."""
        checkpoint = _checkpoint_head(self._subcommand_section().get("ckpt_path"))
        if checkpoint is None:
            return
        states = checkpoint.get("callbacks") or {}
        for callback in self.trainer.checkpoint_callbacks:
            saved = states.get(callback.state_key) or {}
            if getattr(callback, "dirpath", "") is None and saved.get("dirpath"):
                callback.dirpath = saved["dirpath"]

    def after_fit(self) -> None:
        if self.config.get(self.subcommand, {}).get("test_after_fit"):
            self.trainer.test(self.model, datamodule=self.datamodule)
        self._print_outputs()

    def after_test(self) -> None:
        self._print_outputs()

    def _print_outputs(self) -> None:
        from lit_gen.callbacks import SamplePlotCallback

        log_dir = self.trainer.log_dir  # on every rank: Lightning broadcasts it
        if not self.trainer.is_global_zero:
            return
        lines = [f"run directory: {Path(log_dir or self.trainer.default_root_dir).resolve()}"]
        for cb in self.trainer.callbacks:
            if isinstance(cb, SamplePlotCallback) and cb.last_path is not None:
                lines.append(f"latest sample plot: {cb.last_path}")
        report = getattr(self.model, "last_test_report", {})
        if "sw1" in report and "sw1_floor" in report:
            lines.append(f"SW1 of the samples: {report['sw1']:.4f} (data-vs-data floor {report['sw1_floor']:.4f})")
        print("\n".join(lines))


def _checkpoint_head(path: str | None) -> dict[str, Any] | None:
    """The checkpoint at ``path`` memory-mapped (tensors are not read), or None when there is none or it is
    unreadable (Lightning's own loading then reports it)."""
    if not path or not Path(path).is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    return checkpoint if isinstance(checkpoint, dict) else None


def _import(class_path: str) -> type | None:
    module, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None


def check_checkpoint_module(config: Any) -> None:
    """Raise a ValueError when the config's ``ckpt_path`` was written by a module class unrelated to the config's.

    A subclass of the writer (or the writer's subclass) is accepted: its weights may well fit.
    """
    subcommand = config.get("subcommand")
    section = config.get(subcommand) if subcommand else None
    path = section.get("ckpt_path") if section is not None else None
    if not path or not Path(path).is_file():
        return
    try:
        hparams = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("hyper_parameters") or {}
    except Exception:  # not a zip checkpoint or not loadable safely: Lightning's own loading reports it
        return
    written, wanted = hparams.get("_class_path"), (section.get("model") or {}).get("class_path")
    if not written or not wanted or written == wanted:
        return
    a, b = _import(written), _import(wanted)
    if isinstance(a, type) and isinstance(b, type) and (issubclass(a, b) or issubclass(b, a)):
        return
    raise ValueError(
        f"--ckpt_path {path} was written by {written}, but the config builds {wanted}: a checkpoint only loads "
        f"into the module (and networks) it was trained with; pass that run's config (config.yaml in its run "
        f"directory) or a checkpoint of {wanted.rsplit('.', 1)[-1]}"
    )


def resolve_last_checkpoint(section: Any) -> Path:
    """``--ckpt_path last``: the newest loadable ``last*.ckpt`` below the run's ``default_root_dir``.

    Raises ``FileNotFoundError`` naming the folder searched when there is none (nothing to resume).
    """
    trainer = section.get("trainer") or {}
    root = Path(trainer.get("default_root_dir") or ".")
    candidates = sorted(root.rglob("last*.ckpt")) if root.is_dir() else []
    found = newest_loadable(candidates)
    if found is None:
        broken = f" ({len(candidates)} found, none loadable)" if candidates else ""
        raise FileNotFoundError(
            f"--ckpt_path last: no loadable last*.ckpt under {root.resolve()}{broken}, so there is nothing to "
            "resume. Drop --ckpt_path to start a new run, or set --trainer.default_root_dir to the run's folder."
        )
    print(f"--ckpt_path last: resuming from {found}", file=sys.stderr)
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "as_dict"):
        items = value.as_dict() if hasattr(value, "as_dict") else value
        return {k: _plain(v) for k, v in items.items()}
    return value


def check_conditioning(datamodule: Any, model: Any) -> None:
    """Conditional data need a model that takes ``num_classes`` (jsonargparse drops a link to a missing argument)."""
    k = getattr(datamodule, "num_classes", None)
    if k is not None and getattr(model, "num_classes", None) is None:
        raise ValueError(
            f"the data are conditional (num_classes={k}) but {type(model).__name__} takes no num_classes: use a "
            f"conditional model (DiffusionModule, EBMModule, DCDModule) or set data.init_args.conditional: false"
        )


def report_resume_differences(path: str, model: Any) -> list[str]:
    """Print (and return) the model settings of the config that differ from those saved in checkpoint ``path``."""
    try:
        hparams = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("hyper_parameters") or {}
    except Exception:  # Lightning's own loading reports an unreadable checkpoint
        return []
    init_args = _plain(model.get("init_args") or {})
    lines = []
    for key, saved in hparams.items():
        if key.startswith("_") or key in ("data_shape", "num_classes") or key not in init_args:
            continue
        if _plain(saved) != init_args[key]:
            lines.append(f"model.init_args.{key}: {init_args[key]!r} (checkpoint: {_plain(saved)!r})")
    if lines:
        print(f"resuming from {path} with the configured values where they differ from the checkpoint's:\n  "
              + "\n  ".join(lines), file=sys.stderr)
    return lines


def _version() -> str:
    from lit_gen import __version__

    return __version__


def version_line() -> str:
    """``lit-gen X (lightning Y, torch Z)``: what ``lit-gen --version`` prints."""
    import lightning

    return f"lit-gen {_version()} (lightning {lightning.__version__}, torch {torch.__version__})"


#: errors that say what is wrong with the user's input (config values, data, checkpoints) when a ``raise`` statement of
#: lit_gen's raised them (not when, say, a tensor operation failed inside lit_gen: that is a bug, traceback kept)
_CHECKED_ERRORS = (ValueError, TypeError, FloatingPointError, RuntimeError)
#: errors about the user's input wherever they come from (a file that is missing, a checkpoint cut short, ...)
_INPUT_ERRORS = (OSError, BrokenCheckpointError, pickle.UnpicklingError, MisconfigurationException)


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` reports a mistake in the input rather than a bug: a missing or unreadable file, a broken
    checkpoint, Lightning's configuration errors, and the checks lit_gen raises itself (the innermost frame of the
    traceback is a ``raise`` statement in lit_gen's code, e.g. a constructor refusing ``sampler_steps: 0``)."""
    if isinstance(err, _INPUT_ERRORS):
        return True
    if not isinstance(err, _CHECKED_ERRORS):
        return False
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    filename = tb.tb_frame.f_code.co_filename
    in_lit_gen = str(Path(filename).resolve()).startswith(str(Path(__file__).resolve().parent) + os.sep)
    return in_lit_gen and linecache.getline(filename, tb.tb_lineno).lstrip().startswith("raise ")


def main(args: list[str] | None = None) -> None:
    """Entry point of ``lit-gen`` (``args`` as on the command line; ``None`` reads ``sys.argv``).

    A mistake in the input (:func:`is_user_error`) ends with one line on stderr and exit status 1, without a
    traceback; set ``LIT_GEN_TRACEBACK=1`` to see it.
    """
    try:
        build_cli(args)
    except Exception as err:
        if os.environ.get(TRACEBACK_ENV) or not is_user_error(err):
            raise
        argv = sys.argv[1:] if args is None else args
        subcommand = next((a for a in argv if a in SUBCOMMANDS), None)
        prog = f"lit-gen {subcommand}" if subcommand else "lit-gen"
        message = " ".join(str(err).split()) if not isinstance(err, KeyError) else repr(err)
        print(f"{prog}: error: {message or type(err).__name__} (set {TRACEBACK_ENV}=1 for the traceback)",
              file=sys.stderr)
        raise SystemExit(1) from None


class _DropLightningTips(logging.Filter):
    """Lightning's advertisement for its cloud services ("💡 Tip: ... install litlogger"): nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


_TIP_FILTER = _DropLightningTips()


def quiet_lightning() -> None:
    """Silence what a user cannot act on; called by :func:`build_cli`, not on import.

    - Lightning's own use of a deprecated torch pytree API.
    - The litlogger / litmodels tips, printed on every run without them.
    - "The number of training batches (N) is smaller than the logging interval": Lightning's loggers write every
      ``log_every_n_steps`` *global* steps, across epoch boundaries, so with epochs shorter than the interval the
      curves still get their points (every lit_gen config counts steps); the warning is about per-epoch logging.
    """
    warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller than the logging")
    for name in ("lightning.fabric.utilities.rank_zero", "lightning_fabric.utilities.rank_zero",
                 "lightning.pytorch.utilities.rank_zero", "pytorch_lightning.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_TIP_FILTER)


def build_cli(args: list[str] | None = None) -> LitGenCLI:
    """Parse ``args``, run the subcommand and return the CLI object (its ``trainer``, ``model``, ``datamodule``).

    Errors are raised as they are (parse errors as ``SystemExit`` after the one-line message); :func:`main` turns
    input errors into one line too.
    """
    quiet_lightning()
    return LitGenCLI(
        GenerativeModule,
        GenerativeDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        save_config_kwargs={"overwrite": True},
        parser_class=LitGenArgumentParser,
        parser_kwargs={"description": DESCRIPTION},
        args=args,
    )


if __name__ == "__main__":  # pragma: no cover - use the `lit-gen` entry point instead
    main(sys.argv[1:])
