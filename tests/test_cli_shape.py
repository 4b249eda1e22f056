"""One shape for every `cnnlens` command: shared options, hidden old spellings, --quiet, --param
METHOD.KEY=VALUE, --help, and the imaging helpers' file-name rule."""
from __future__ import annotations

import argparse
import json

import pytest

import cnnlens.cli as cli
from cnnlens._imaging import file_stem, method_slug, safe_name
from cnnlens.cli import build_parser, main
from cnnlens.cli.options import LIMIT_ALIASES, QUIET_ALIASES, method_params
from cnnlens.errors import CnnlensError


def _commands() -> dict[str, argparse.ArgumentParser]:
    """Every runnable command (``fold train`` …) → its parser."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(prefix: str, parser: argparse.ArgumentParser) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[prefix] = parser
            return
        for name, child in subs[0].choices.items():
            walk(f"{prefix} {name}".strip(), child)

    walk("", build_parser())
    return found


COMMANDS = _commands()
MODEL = ("--model", "--weights", "--model-kwargs", "--trust-pickle", "--mean", "--std", "--input-shape",
         "--class-names", "--feature-layer", "--device")
MODEL_COMMANDS = ("predict", "explain", "evaluate", "ablate", "represent", "nesy train", "nesy extract",
                  "nesy predict", "nesy justify", "nesy label")
SOURCE_COMMANDS = ("predict", "explain", "evaluate", "ablate", "represent", "nesy train", "nesy extract",
                   "nesy predict", "nesy label")
QUIET_COMMANDS = (*MODEL_COMMANDS, "demo")


def _options(parser: argparse.ArgumentParser, hidden: bool = False) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if hidden or a.help != argparse.SUPPRESS}


def test_every_command_is_listed():
    assert set(COMMANDS) == {"predict", "models", "datasets", "explain", "evaluate", "ablate", "represent",
                             "fold train", "fold predict", "fold explain", "nesy train", "nesy extract",
                             "nesy predict", "nesy justify", "nesy label", "demo", "report"}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_of_each_command_runs(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command.split(), "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: cnnlens {command}")
    for old in (*LIMIT_ALIASES, *QUIET_ALIASES):  # old spellings stay out of --help
        assert f"{old} " not in text and f"{old}," not in text and not text.rstrip().endswith(old)


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_model_commands_share_the_model_and_run_options(command):
    opts = _options(COMMANDS[command])
    assert set(MODEL) <= opts
    assert {"--batch-size", "--quiet"} <= opts
    if command != "predict":
        assert "--seed" in opts


@pytest.mark.parametrize("command", SOURCE_COMMANDS)
def test_image_source_options_and_limit_aliases(command):
    parser = COMMANDS[command]
    assert {"--images", "--dataset", "--split", "--limit"} <= _options(parser)
    assert set(LIMIT_ALIASES) <= _options(parser, hidden=True)
    base = command.split()
    required = {"explain": ["--out", "o"], "evaluate": ["--out", "o"], "ablate": ["--out", "o"],
                "represent": ["--out", "o", "--reference", "mnist"], "nesy train": ["--out", "o"],
                "nesy extract": ["--out", "o"], "nesy predict": ["--rules", "r"],
                "nesy label": ["--rules", "r", "--out", "o"]}.get(command, [])
    for spelling in ("--limit", *LIMIT_ALIASES):
        args = build_parser().parse_args([*base, *required, spelling, "7"])
        assert args.limit == 7, spelling
    default = build_parser().parse_args([*base, *required]).limit
    assert default == (4 if command == "represent" else None)  # represent: images drawn from --dataset


@pytest.mark.parametrize("command", ["explain", "evaluate", "ablate", "represent", "nesy train", "nesy extract",
                                     "nesy label", "fold train", "demo"])
def test_out_option(command):
    assert "--out" in _options(COMMANDS[command])


@pytest.mark.parametrize("command", ["explain", "evaluate", "ablate", "represent"])
def test_report_and_param_options(command):
    assert "--report" in _options(COMMANDS[command])
    if command in ("explain", "evaluate"):
        action = next(a for a in COMMANDS[command]._actions if "--param" in a.option_strings)
        assert action.metavar == "METHOD.KEY=VALUE"


@pytest.mark.parametrize("command", QUIET_COMMANDS)
def test_quiet_runs_the_command_without_progress_bars(command, monkeypatch):
    from cnnlens._progress import silenced

    seen: list[bool] = []
    real = cli.build_parser

    def patched() -> argparse.ArgumentParser:
        parser = real()
        for p in _walk_all(parser):
            p.set_defaults(func=lambda a: seen.append(silenced()) or 0)
        return parser

    monkeypatch.setattr(cli, "build_parser", patched)
    base = command.split()
    need = {"explain": ["--out", "o"], "evaluate": ["--out", "o"], "ablate": ["--out", "o"],
            "represent": ["--out", "o", "--reference", "mnist"], "nesy train": ["--out", "o"],
            "nesy extract": ["--out", "o"], "nesy predict": ["--rules", "r"], "nesy justify": ["--rules", "r"],
            "nesy label": ["--rules", "r", "--out", "o"]}.get(command, [])
    assert main([*base, *need]) == 0
    assert main([*base, *need, "--quiet"]) == 0
    assert main([*base, *need, "--no-progress"]) == 0  # the old demo spelling, everywhere
    assert seen == [False, True, True]


def _walk_all(parser: argparse.ArgumentParser):
    yield parser
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for child in a.choices.values():
                yield from _walk_all(child)


def test_demo_no_progress_alias_is_quiet():
    args = build_parser().parse_args(["demo", "--no-progress"])
    assert args.quiet is True
    assert build_parser().parse_args(["demo"]).quiet is False


# ------------------------------------------------------------------ --param
def test_param_values_are_json_ish():
    got = method_params(["lime.num_samples=500", "lime.alpha=0.5", "scorecam.channel_softmax=false",
                         "lrp.composite=epsilon_alpha2_beta1_flat", "lime.hide_color=null",
                         "rise.grid=[7, 7]", "gradcam.layer=model.20"], ["lime", "scorecam", "lrp", "rise", "gradcam"])
    assert got == {"lime": {"num_samples": 500, "alpha": 0.5, "hide_color": None},
                   "scorecam": {"channel_softmax": False}, "lrp": {"composite": "epsilon_alpha2_beta1_flat"},
                   "rise": {"grid": [7, 7]}, "gradcam": {"layer": "model.20"}}


def test_param_key_dashes_become_underscores():
    assert method_params(["lime.num-samples=5"], ["lime"]) == {"lime": {"num_samples": 5}}


def test_param_without_method_goes_to_the_methods_that_take_it():
    # the old explain spelling --param KEY=VALUE (and --num-samples / --n-masks / --segmenter)
    got = method_params(["num_samples=30"], ["gradcam", "lime", "rise"], shared={"n_masks": 40, "segmenter": None})
    assert got == {"lime": {"num_samples": 30}, "rise": {"n_masks": 40}}
    # da_pos takes its options through **params: no longer refused
    assert method_params(["iterations=50"], ["da_pos"]) == {"da_pos": {"iterations": 50}}
    assert method_params(["iterations=50"], ["gradcam", "da_pos"]) == {"da_pos": {"iterations": 50}}
    # a key no listed method names goes to every method: explain() then names the valid ones
    assert method_params(["n_masks=5"], ["saliency"]) == {"saliency": {"n_masks": 5}}
    # METHOD.KEY wins over KEY for that method
    assert method_params(["lime.num_samples=7", "num_samples=30"], ["lime"]) == {"lime": {"num_samples": 7}}


@pytest.mark.parametrize("item, message", [
    ("lime", "expects METHOD.KEY=VALUE"),
    ("gradcam.layer=x", "not in --methods"),
    ("lime.9x=1", "not a parameter name"),
])
def test_param_errors(item, message):
    with pytest.raises(CnnlensError, match=message):
        method_params([item], ["lime"])


@pytest.mark.parametrize("spelling", ["da_pos.iterations=5", "iterations=5"])
def test_explain_passes_method_options_to_explain(spelling, tmp_path):
    out = tmp_path / "o"
    rc = main(["explain", "--model", "mnist_cnn", "--dataset", "mnist", "--limit", "1", "--method", "da_pos",
               "--param", spelling, "--param", "da_pos.superpixels=0", "--quiet", "--out", str(out)])
    assert rc == 0
    params = json.loads((out / "params.json").read_text())["methods"]["da_pos"]["params"]
    assert params["iterations"] == 5 and params["superpixels"] == 0


def test_evaluate_limit_and_its_old_spelling_n_agree(tmp_path):
    runs = {}
    for spelling in ("--limit", "--n"):
        out = tmp_path / spelling.strip("-")
        rc = main(["evaluate", "--model", "mnist_cnn", "--dataset", "mnist", spelling, "2", "--methods", "saliency",
                   "--metrics", "ad", "--no-random", "--quiet", "--out", str(out)])
        assert rc == 0
        runs[spelling] = json.loads((out / "table.json").read_text())["params"]
    assert runs["--limit"] == runs["--n"] and runs["--n"]["n_images"] == 2


# ------------------------------------------------------------------ imaging helpers
def test_safe_name_rule():
    assert safe_name("digit0") == "digit0"
    assert safe_name("a b/c.png") == "a_b_c_png"
    assert safe_name("café") == "caf_"  # ASCII only
    assert safe_name("x" * 80) == "x" * 50  # at most 50 characters
    assert safe_name("gradcam++") == "gradcam__" and method_slug("gradcam++") == "gradcampp"
    assert file_stem("digit0.png") == "digit0" and file_stem("n01.x") == "n01.x"
