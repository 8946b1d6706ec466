"""The candidate-prediction studies (intra modes, multiple hypotheses) measure what they say they measure:
their closed loop is the shipped one when the network is the only candidate, the classical modes read the edges
they are named for, a multi-head network starts as the network it copies, and the decoder-side rule finds the
candidate that continues the neighbours."""

from __future__ import annotations

import numpy as np
import torch

from export.networks.int_predictor import IntPredictorNet
from export.studies.intra_modes import CANDIDATES, Recorder, choice_entropies, classical, code_with_candidates
from export.studies.multi_hypothesis import MultiHeadPredictor, boundary_rule, head_candidates
from pillow_blockcnn.codec.closed_loop import code_plain, code_predicted


class _Smooth:
    """A deterministic stand-in predictor: each block the mean of its above and left neighbours' edge pixels."""

    model_ids = ("test-smooth",)

    def predict_neighbours(self, neighbours, available, plane):
        n = neighbours.reshape(-1, 4, 8, 8).astype(np.int64)
        edge = (n[:, 1, 7, :].sum(1) * available[:, 1] + n[:, 3, :, 7].sum(1) * available[:, 3])
        count = 8 * (available[:, 1].astype(int) + available[:, 3])
        mean = np.where(count > 0, edge // np.maximum(count, 1), 128)
        return np.broadcast_to(mean[:, None, None], (len(n), 8, 8)).astype(np.uint8).copy()

    def predict(self, contexts, available, plane):  # pragma: no cover - the loop takes the neighbour path
        raise AssertionError


def _plane() -> np.ndarray:
    y, x = np.mgrid[0:48, 0:64]
    rng = np.random.default_rng(1)
    return np.clip(100 + x * 2 + np.sin(y / 3) * 30 + rng.normal(0, 6, (48, 64)), 0, 255).astype(np.uint8)


def test_the_study_loop_with_only_the_network_is_the_shipped_closed_loop() -> None:
    plane = _plane()
    table = np.asarray([16] * 64).reshape(8, 8)
    plain = code_plain(plane, table)
    shipped = code_predicted(plane, table, _Smooth(), 0, 0, plain=plain)

    def only_net(neighbours, available, index, net):
        return net[None], np.ones((1, len(net)), dtype=bool)

    recorder = Recorder(1)
    study = code_with_candidates(recorder, 0.0, 0, only_net, plane, table, _Smooth(), 0, 0, plain=plain)
    assert np.array_equal(study.recon, shipped.recon)
    assert np.array_equal(study.levels, shipped.levels)
    assert np.array_equal(study.modes, shipped.modes)
    assert recorder.side_bits() == 4  # one kind of symbol: its entropy is 0, only the small header counts


def test_classical_modes_read_the_edges_they_are_named_for() -> None:
    rng = np.random.default_rng(0)
    neighbours = rng.integers(0, 256, (3, 256)).astype(np.uint8)
    available = np.ones((3, 4), dtype=bool)
    preds, usable = classical(neighbours, available)
    n = neighbours.reshape(3, 4, 8, 8)
    mode = {name: preds[i] for i, name in enumerate(CANDIDATES[2:])}
    assert np.array_equal(mode["d90"], np.broadcast_to(n[:, 1, 7][:, None, :], (3, 8, 8)))
    assert np.array_equal(mode["d180"], np.broadcast_to(n[:, 3, :, 7][:, :, None], (3, 8, 8)))
    assert np.array_equal(np.diagonal(mode["d135"], axis1=1, axis2=2), np.repeat(n[:, 0, 7, 7][:, None], 8, axis=1))
    assert mode["d45"][0, 0, 0] == n[0, 1, 7, 1]
    assert mode["d45"][0, 7, 7] == n[0, 2, 7, 7]  # the far end reads the above-right block
    assert usable.all()
    no_top = available.copy()
    no_top[:, :3] = False
    _, usable = classical(neighbours, no_top)
    assert not usable[CANDIDATES[2:].index("d90")].any()
    assert usable[CANDIDATES[2:].index("d180")].all()


def test_every_head_starts_as_the_network_it_copies_up_to_its_noise() -> None:
    torch.manual_seed(0)
    single = IntPredictorNet(64, 2)
    with torch.no_grad():  # a trained-looking output layer (a fresh one predicts the border mean)
        single.layers[-1].linear.weight.normal_(0, 0.05)
    context = torch.rand(40, 24, 24)
    info = torch.cat([torch.ones(40, 4), torch.full((40, 1), 0.3), torch.zeros(40, 1)], dim=1)
    single(context, info)  # calibrates the activation steps
    single.eval()
    multi = MultiHeadPredictor(3, width=64, depth=2)
    multi.start_from(single.state_dict(), 0.0, torch.Generator().manual_seed(0))
    multi.eval()
    with torch.no_grad():
        expected, heads = single(context, info), multi(context, info)
    assert heads.shape == (40, 3, 8, 8)
    for h in range(3):
        assert torch.equal(heads[:, h], expected)
    noisy = MultiHeadPredictor(3, width=64, depth=2)
    noisy.start_from(single.state_dict(), 0.5, torch.Generator().manual_seed(0))
    noisy.eval()
    with torch.no_grad():
        out = noisy(context, info)
    assert torch.equal(out[:, 0], expected)
    assert not torch.equal(out[:, 1], expected)
    cands, usable = head_candidates(noisy, 30)(np.zeros((5, 256), np.uint8), np.ones((5, 4), bool), 0, None)
    assert cands.shape == (3, 5, 8, 8)
    assert cands.dtype == np.uint8
    assert usable.all()


def test_the_boundary_rule_derives_the_candidate_that_continues_the_neighbours() -> None:
    n = np.zeros((1, 4, 8, 8), dtype=np.uint8)
    n[0, 1] = np.arange(8)[:, None] * 4 + 60  # above: rows rising by 4 toward the block
    n[0, 3] = 88  # left: flat at the above's continuation
    truth = np.full((1, 8, 8), 92, dtype=np.uint8)
    wrong = np.full((1, 8, 8), 40, dtype=np.uint8)
    cands = np.stack([wrong, truth])
    residual = np.full((2, 1, 8, 8), 128, dtype=np.uint8)  # a zero residual against either candidate
    derived = boundary_rule(cands, residual, n.reshape(1, 256), np.ones((1, 4), dtype=bool))
    assert derived.tolist() == [[1], [1]]


def test_the_choice_entropy_counts_left_neighbours_and_sees_a_predictable_choice() -> None:
    recorder = Recorder(2)
    chosen = np.array([[0, 0, 1, 1], [1, 1, 0, 0]])
    modes = np.array([[True, True, True, True], [True, False, True, True]])
    recorder.record(chosen, modes)
    assert recorder.choices[0].tolist() == [0, 0, 1, 1, 1, 0, 0]
    # pairs (left, this) where both are predicted: (0,0) (0,1) (1,1) in row 0, (0,0) in row 1
    assert recorder.pairs.tolist() == [[2, 1], [0, 1]]
    alternating = Recorder(2)
    alternating.record(np.array([[0, 1, 0, 1, 0, 1, 0, 1]]), np.ones((1, 8), dtype=bool))
    entropy = choice_entropies(alternating.pairs)
    assert entropy["bits"] > 0.95
    assert entropy["bits_given_left"] == 0.0
