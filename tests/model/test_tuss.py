import pytest
import torch

from fastuss_fx.model import TUSS
from fastuss_fx.prompts import PROMPTS

VARIANTS = ["tiny", "tiny-causal", "tiny-causal-ta"]


@pytest.fixture(scope="module", params=VARIANTS)
def model(request):
    torch.manual_seed(0)
    return TUSS.from_variant(request.param).eval()


@pytest.mark.parametrize("n_prompts", [1, 2, 3, 4])
@pytest.mark.parametrize("length", [1, 65, 3001])
def test_shapes_and_dtype(model, n_prompts, length):
    prompts = ["speech", "sfx", "drums", "speech"][:n_prompts]
    with torch.no_grad():
        out = model(0.3 * torch.randn(2, length), prompts)
    assert out.shape == (2, n_prompts, length)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_one_dimensional_input(model):
    with torch.no_grad():
        out = model(torch.randn(500), ["speech", "sfx"])
    assert out.shape == (2, 500)


def test_complete_prompt_set_is_finite_and_deterministic(model):
    x = 0.3 * torch.randn(1, 4000)
    prompts = ["speech", "sfx", "sfxbg", "musicbg"]
    with torch.no_grad():
        a, b = model(x, prompts), model(x, prompts)
    assert torch.isfinite(a.sum(dim=1)).all()
    assert torch.equal(a, b)


def test_per_example_prompt_lists(model):
    x = 0.3 * torch.randn(2, 2000)
    with torch.no_grad():
        both = model(x, [["speech", "sfx"], ["drums", "bass"]])
        first = model(x[:1], ["speech", "sfx"])
        second = model(x[1:], ["drums", "bass"])
    assert torch.allclose(both[0], first[0], atol=1e-5)
    assert torch.allclose(both[1], second[0], atol=1e-5)


@pytest.mark.parametrize(
    "prompts, order",
    [
        (["speech", "sfx", "musicbg"], [2, 0, 1]),
        (["speech", "sfx", "speech"], [1, 0, 2]),  # the two talkers keep their occurrence order
        (["drums", "bass", "vocals", "other"], [3, 1, 0, 2]),
    ],
)
def test_prompt_permutation_permutes_outputs(model, prompts, order):
    x = 0.3 * torch.randn(1, 3000)
    with torch.no_grad():
        out = model(x, prompts)
        permuted = model(x, [prompts[i] for i in order])
    assert torch.allclose(permuted, out[:, order], atol=1e-5)


def test_repeated_prompts_give_different_sources(model):
    with torch.no_grad():
        out = model(0.3 * torch.randn(1, 3000), ["speech", "speech"])
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-4


def test_scale_equivariance(model):
    x = 0.3 * torch.randn(1, 3000)
    with torch.no_grad():
        a, b = model(x, ["speech", "sfx"]), model(4 * x, ["speech", "sfx"])
    assert torch.allclose(4 * a, b, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize(
    "prompts, error",
    [
        (["speach"], ValueError),
        ([], ValueError),
        ("speech", TypeError),
        (["speech", 3], TypeError),
        ([["speech"], ["sfx", "speech"]], ValueError),
    ],
)
def test_bad_prompts(model, prompts, error):
    with pytest.raises(error, match="prompt|speach|equal length|list"):
        model(torch.zeros(2, 100), prompts)


def test_unknown_prompt_lists_the_choices(model):
    with pytest.raises(ValueError) as info:
        model(torch.zeros(1, 100), ["speech", "guitar"])
    assert "'guitar'" in str(info.value) and all(p in str(info.value) for p in PROMPTS)


@pytest.mark.parametrize("shape", [(), (1, 1, 100), (2, 1, 1, 100)])
def test_wrong_rank(model, shape):
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(shape), ["speech"])


def test_empty_and_integer_input(model):
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(1, 0), ["speech"])
    with pytest.raises(TypeError, match="floating"):
        model(torch.zeros(1, 100, dtype=torch.int16), ["speech"])


def test_too_many_repeats(model):
    with pytest.raises(ValueError, match="repeat"):
        model(torch.zeros(1, 100), ["speech"] * 5)


def test_non_causal_has_no_streaming():
    with pytest.raises(ValueError, match="not causal"):
        TUSS.from_variant("tiny").initial_state(1, ["speech"])


def test_isolated_prompt_convs_keep_permutation_equivariance_with_time_kernels_of_3():
    import dataclasses

    from fastuss_fx.config import load_variant

    base = load_variant("tiny")
    time = dataclasses.replace(base.cross_prompt.time, kernel=3)
    config = dataclasses.replace(base, cross_prompt=dataclasses.replace(base.cross_prompt, time=time))
    x = 0.3 * torch.randn(1, 3000)
    errors = {}
    for isolate in (False, True):
        torch.manual_seed(0)
        model = TUSS(dataclasses.replace(config, isolate_prompts=isolate)).eval()
        with torch.no_grad():
            out = model(x, ["speech", "sfx", "musicbg"])
            permuted = model(x, ["musicbg", "speech", "sfx"])
        errors[isolate] = (permuted[:, [1, 2, 0]] - out).abs().max().item()
    assert errors[True] <= 1e-5  # each prompt alone through the time convs: a set
    assert errors[False] > 1e-4  # one sequence [prompts, frames]: neighbours leak through kernel 3
