"""The table of published U-Trans training recipes (utrans/train/recipes.py).

No network access: the recipes are literals; these tests check that the table
is complete, self-consistent and expressible with the trainer's options.
"""

import dataclasses
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from utrans import data
from utrans.cli.scripts import _train_parser
from utrans.core import registry
from utrans.core.tasks import get_task
from utrans.data import make_lr_schedule
from utrans.labels import ReconstructionLabeller, pick_curve
from utrans.train import recipes
from utrans.train.recipes import RECIPES, Recipe, get_recipe

PICKERS = ("utrans_eqcct_p", "utrans_eqcct_s")

#: Fields describing where a recipe comes from rather than how it trains.
DESCRIPTIVE = {"model", "task", "source", "helper", "notes", "lr_schedule", "split_files",
               "optimizer_learning_rate", "class_weight"}

#: Learning rate per 0-based epoch, transcribed from the ``_lr_schedule`` of
#: each notebook's helper module (reference commit of utrans.train.recipes).
REFERENCE_RATES = {
    "utrans_foundation": {0: 1e-4, 20: 1e-4, 21: 1e-5, 40: 1e-5, 41: 1e-6, 60: 1e-6,
                          61: 1e-7, 90: 1e-7, 91: 5e-8},
    "utrans_convmixer_location": {0: 1e-4, 20: 1e-4, 21: 1e-5, 41: 1e-6, 61: 1e-7, 91: 5e-8},
    "utrans_vit_magnitude": {0: 1e-4, 20: 1e-4, 21: 1e-5, 41: 1e-6, 61: 1e-7, 91: 5e-8},
    "utrans_cct_polarity": {0: 1e-3, 20: 1e-3, 21: 1e-4, 40: 1e-4, 41: 1e-5, 49: 1e-5,
                            61: 1e-6, 91: 5e-7},
    "utrans_eqcct_p": {0: 1e-3, 40: 1e-3, 41: 1e-4, 60: 1e-4, 61: 1e-5, 80: 1e-5, 81: 1e-6,
                       99: 1e-6, 110: 1e-6, 111: 5e-7},
    "utrans_eqcct_s": {0: 1e-3, 40: 1e-3, 41: 1e-4, 61: 1e-5, 81: 1e-6, 99: 1e-6,
                       100: 1e-6, 101: 5e-7},
}


def _utrans_models():
    return sorted(n for n in registry.list_models() if n.startswith("utrans_"))


def test_every_utrans_registry_model_has_a_recipe():
    names = _utrans_models()
    assert len(names) == 6
    assert sorted(RECIPES) == names
    for name in names:
        recipe = get_recipe(name)
        assert isinstance(recipe, Recipe)
        assert recipe.model == name
        assert get_task(recipe.task).quantity == registry.model_quantity(name)
        assert get_task(recipe.task).default_model == name


def test_other_models_have_no_recipe():
    others = [n for n in registry.list_models() if not n.startswith("utrans_")]
    assert others, "the registry lists SeisT and baseline models too"
    assert all(get_recipe(n) is None for n in others)
    assert get_recipe("no_such_model") is None


def test_recipes_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RECIPES["utrans_eqcct_p"].epochs = 3


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_values_in_sensible_ranges(name):
    r = RECIPES[name]
    assert r.batch_size >= 2 and (not r.augmentation or r.batch_size % 2 == 0)
    assert 1 <= r.patience <= r.epochs <= 1000
    assert 1e-6 <= r.learning_rate <= 1e-2
    assert r.optimizer == "adam"
    assert r.optimizer_learning_rate is None or 1e-6 <= r.optimizer_learning_rate <= 1e-2
    assert r.monitor == "val_loss"
    for rate in (r.add_event_r, r.shift_event_r, r.add_noise_r, r.drop_channel_r, r.add_gap_r,
                 r.scale_amplitude_r):
        assert rate is None or 0.0 < rate <= 1.0
    assert r.normalization_mode in ("std", "max")
    assert isinstance(r.pre_emphasis, bool) and isinstance(r.augmentation, bool)
    assert 0.0 < r.train_fraction <= 1.0
    assert len(r.split_files) == 2 and all(f.endswith(".npy") for f in r.split_files)
    assert r.source.startswith(("train/", "examples/downstream/")) and ".ipynb cell" in r.source
    assert r.helper.endswith(".py")
    assert r.notes and all(isinstance(n, str) and n for n in r.notes)
    # No layer is frozen in any notebook (reference MANIFEST: all parameters trainable).
    assert r.freeze_backbone is False


def test_published_values():
    """A few values quoted from the notebooks' trainer1 calls."""
    loc, mag, pol = (RECIPES[n] for n in ("utrans_convmixer_location", "utrans_vit_magnitude",
                                          "utrans_cct_polarity"))
    p, s, f = RECIPES["utrans_eqcct_p"], RECIPES["utrans_eqcct_s"], RECIPES["utrans_foundation"]
    assert {r.batch_size for r in RECIPES.values()} == {40}
    assert (loc.epochs, loc.patience, mag.epochs, pol.epochs, f.epochs) == (50, 10, 50, 50, 50)
    assert (p.epochs, p.patience, s.epochs, s.patience) == (100, 40, 100, 40)
    assert (loc.add_event_r, loc.add_noise_r, loc.drop_channel_r) == (None, 0.5, 0.1)
    assert pol.drop_channel_r is None
    assert (p.add_event_r, p.drop_channel_r, f.add_event_r, f.drop_channel_r) == (0.5, 0.1, 0.5, None)
    assert (loc.max_d, loc.min_d) == (114.5, 1e-5)
    assert (p.train_fraction, s.train_fraction) == (0.01, 0.01)
    assert (f.loss, loc.loss, mag.loss, pol.loss, p.loss) == (
        "mae", "mse", "mse", "binary_crossentropy", "binary_crossentropy")
    assert f.foundation_weights == "random"
    assert all(RECIPES[n].foundation_weights == "preset" for n in RECIPES if n != "utrans_foundation")


def test_loss_is_the_trainer_loss():
    """The notebooks' loss equals the loss the trainer compiles for the task today."""
    for r in RECIPES.values():
        assert keras.losses.get(r.loss) is not None
        assert get_task(r.task).loss == r.loss


def test_schedule_exists_in_data_module():
    for r in RECIPES.values():
        assert callable(getattr(data, r.lr_schedule))
        epochs = [bp for bp, _ in r.lr_breakpoints]
        factors = [f for _, f in r.lr_breakpoints]
        assert epochs == sorted(set(epochs)) and all(e > 0 for e in epochs)
        assert all(0 < f < 1 for f in factors) and factors == sorted(factors, reverse=True)


@pytest.mark.parametrize("name", sorted(REFERENCE_RATES))
def test_schedule_reproduces_reference_rates(name):
    r = RECIPES[name]
    for epoch, expected in REFERENCE_RATES[name].items():
        assert math.isclose(r.lr_at(epoch), expected, rel_tol=1e-12), (name, epoch)
    assert math.isclose(r.lr_at(0), r.learning_rate)


def test_schedule_matches_make_lr_schedule():
    r = RECIPES["utrans_eqcct_s"]
    schedule = make_lr_schedule(r.learning_rate, r.lr_breakpoints)
    assert [schedule(e) for e in range(0, 120, 7)] == [r.lr_at(e) for e in range(0, 120, 7)]
    # The default breakpoints of utrans.data are those of the 20/40/60/90 helpers.
    default = make_lr_schedule(1e-4)
    loc = RECIPES["utrans_convmixer_location"]
    assert [default(e) for e in range(120)] == [loc.lr_at(e) for e in range(120)]


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_plateau_callback(name):
    r = RECIPES[name]
    pl = r.reduce_lr_on_plateau
    assert math.isclose(pl.factor, np.sqrt(0.1))
    assert pl.patience == r.patience - 2
    assert pl.min_lr == 0.5e-6 and pl.cooldown == 0 and pl.monitor == "val_loss"
    assert pl.effective is False


def test_fields_are_all_accounted_for():
    """Every training field maps to a trainer option or is listed as having none."""
    fields = {f.name for f in dataclasses.fields(Recipe)}
    mapped, unmapped = set(recipes.TRAINER_OPTIONS), set(recipes.NO_TRAINER_OPTION)
    assert not mapped & unmapped
    assert (mapped | unmapped) <= fields
    assert fields - DESCRIPTIVE == mapped | unmapped


def _parser(task_name):
    return _train_parser(get_task(task_name))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_trainer_options_fit_the_trainer_parser(name):
    r = RECIPES[name]
    parser = _parser(r.task)
    dests = {a.dest for a in parser._actions}
    options = r.trainer_options()
    assert set(options) <= dests
    assert set(options) >= set(recipes.TRAINER_OPTIONS.values()) - {"max_d", "min_d"}
    parser.set_defaults(**options)
    args = parser.parse_args([])
    for dest, value in options.items():
        assert getattr(args, dest) == value
    # A user option still overrides the recipe.
    assert parser.parse_args(["--epochs", "3", "--add_noise_r", "0.2"]).epochs == 3


def test_location_options_carry_depth_normalisation():
    assert RECIPES["utrans_convmixer_location"].trainer_options()["max_d"] == 114.5
    assert "max_d" not in RECIPES["utrans_vit_magnitude"].trainer_options()


@pytest.mark.parametrize("name", PICKERS)
def test_picker_label_is_the_reference_triangle(name):
    r = RECIPES[name]
    assert (r.label_type, r.phase_window) == ("triangle", 40)
    y = pick_curve(6000, 1000, r.label_type, r.phase_window)
    nonzero = np.flatnonzero(y)
    # Reference: y[P-20:P+21] = linspace triangle, 0 at P-20 and P+20, 1 at P.
    assert (nonzero[0], nonzero[-1]) == (981, 1019)
    assert y[1000] == 1.0 and math.isclose(y[990], 0.5) and math.isclose(y[1015], 0.25)


def test_non_pickers_make_no_pick_label():
    for name in set(RECIPES) - set(PICKERS):
        assert RECIPES[name].label_type is None and RECIPES[name].phase_window is None


def test_foundation_corruptions_are_the_labeller_defaults():
    r = RECIPES["utrans_foundation"]
    defaults = ReconstructionLabeller().corruptions
    assert [type(c).__name__ for c in defaults] == [n for n, _ in r.corruptions]
    assert [list(c.get_config().values())[0] for c in defaults] == [m for _, m in r.corruptions]
    assert all(RECIPES[n].corruptions == () for n in RECIPES if n != "utrans_foundation")


def test_import_has_no_side_effects():
    # The recipes live in the training package now, which imports Keras (utrans.train.engine):
    # what is left to check is that importing them changes no environment variable.
    code = ("import os; before = dict(os.environ); import utrans.train.recipes; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=env)
    assert out.stdout.strip().splitlines()[-1] == "[]"
