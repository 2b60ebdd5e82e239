"""AdaBound and AdaBoundW (Luo et al., 2019) where the authors' code fixes what the paper leaves
open: final_lr follows a changed lr, an added group's own base lr; the whole algorithm against its
transcription is in test_paper_parity.py."""

import pytest
import torch

from optim import AdaBound, AdaBoundW
from tests.optim.parity import assert_same, lr_scaled_midway
from tests.optim.references import ADABOUND_DEFAULTS, ReferenceAdaBound


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("cls, decoupled", [(AdaBound, False), (AdaBoundW, True)], ids=["AdaBound", "AdaBoundW"])
def test_final_lr_follows_a_changed_lr(cls, decoupled, foreach):
    # As in the authors' code: a scheduler lowering lr lowers final_lr (and the bounds) with it.
    kwargs = dict(lr=1e-2, final_lr=0.05, gamma=0.3, weight_decay=1e-3)
    ours = lr_scaled_midway(lambda g: cls(g, foreach=foreach, **kwargs))
    reference = lr_scaled_midway(lambda g: ReferenceAdaBound(g, decoupled, **{**ADABOUND_DEFAULTS, **kwargs}))
    assert_same(ours, reference, 1e-10, "after an lr change")


def test_added_group_gets_its_own_base_lr():
    opt = AdaBound([torch.zeros(2, requires_grad=True)], lr=1e-3)
    opt.add_param_group({"params": [torch.zeros(3, requires_grad=True)], "lr": 4e-3})
    assert [g["base_lr"] for g in opt.param_groups] == [1e-3, 4e-3]
    with pytest.raises(ValueError, match="lr"):
        opt.add_param_group({"params": [torch.zeros(1, requires_grad=True)], "lr": 0.0})
