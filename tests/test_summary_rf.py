"""Receptive fields of whole models in `cnnkit.summary`, checked against gradients.

For every model below and every row with a local receptive field, the box `summary` gives
for interior units must equal the box of non-zero input gradient of that unit
(`gradient_receptive_field`: positive constant weights, identity non-linearities, sum-pools).
The models are also used by tests/test_summary.py (torchinfo, fvcore, ptflops).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnkit
from cnnkit.analysis.summary import gradient_receptive_field
from cnnkit.analysis.summary.core import box_of
from cnnkit.core.errors import CnnkitError


class VGGish(nn.Module):
    """The chapter's VGG-like stack with a classifier: conv-relu ×2, max-pool, twice."""

    def __init__(self) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )  # fmt: skip

        self.features = nn.Sequential(block(3, 8), block(8, 16))
        self.classifier = nn.Linear(16 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetish(nn.Module):
    """ResNet stem and basic blocks with stride-2 1×1 projection shortcuts."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )  # fmt: skip
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 16, 2))
        self.layer2 = BasicBlock(16, 32, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class Inception(nn.Module):
    """Four branches concatenated along channels (1×1, 3×3, 5×5, pool + 1×1)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(c_in, 4, 1)
        self.b3 = nn.Sequential(nn.Conv2d(c_in, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b5 = nn.Sequential(nn.Conv2d(c_in, 2, 1), nn.ReLU(), nn.Conv2d(2, 4, 5, padding=2))
        self.bp = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(x)], 1)


class InceptionNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.mixed1 = Inception(8)
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.mixed2 = Inception(16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mixed2(self.pool(self.mixed1(F.relu(self.stem(x)))))


class Dilated(nn.Module):
    """Context module: 3×3 convolutions with dilation 1, 2, 4 (padding = dilation)."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv2d(4 if d > 1 else 3, 4, 3, padding=d, dilation=d) for d in (1, 2, 4)
        )
        self.head = nn.Conv2d(4, 2, 3, padding="same", dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = F.relu(conv(x))
        return self.head(x)


class NotAligned(nn.Module):
    """Two stride-2 paths whose first units are centred half a pixel apart."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, stride=2, padding=1)  # centres 0, 2, 4, ...
        self.b = nn.Conv2d(3, 4, 2, stride=2)  # centres 0.5, 2.5, ...
        self.after = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.after(self.a(x) + self.b(x))


class Anisotropic(nn.Module):
    """Factorised 7×7: 1×7 then 7×1 (Inception-v3 style), grouped, and a 2×1 stride."""

    def __init__(self) -> None:
        super().__init__()
        self.c17 = nn.Conv2d(3, 8, (1, 7), padding=(0, 3))
        self.c71 = nn.Conv2d(8, 8, (7, 1), padding=(3, 0), groups=4)
        self.down = nn.Conv2d(8, 8, (3, 1), stride=(2, 1), padding=(1, 0))
        self.pool = nn.AvgPool2d((1, 3), stride=(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.relu(self.down(F.relu(self.c71(self.c17(x))))))


MODELS = {
    "vgg": (VGGish, (3, 32, 32)),
    "resnet": (ResNetish, (3, 48, 48)),
    "inception": (InceptionNet, (3, 40, 40)),
    "dilated": (Dilated, (3, 48, 48)),
    "not-aligned": (NotAligned, (3, 32, 32)),
    "anisotropic": (Anisotropic, (3, 40, 40)),
}


def interior_unit(rf, out_hw):
    """The first unit whose receptive field lies inside the image on the left/top."""
    units = []
    for a in range(2):
        u = max(0, math.ceil(((rf.size[a] - 1) / 2 - rf.start[a]) / rf.jump[a]))
        units.append(min(u, out_hw[a] - 1))
    return tuple(units)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_local_row_matches_the_gradient_receptive_field(name):
    cls, shape = MODELS[name]
    torch.manual_seed(0)
    model = cls()
    s = cnnkit.summary(model, shape)
    checked = 0
    for row in s.rows:
        if row.rf.status != "local" or len(row.output_shape) != 4:
            continue
        if row.type in ("BatchNorm2d", "ReLU", "relu"):
            continue  # the row before has the same field; keeps the float64 oracle quick
        unit = interior_unit(row.rf, row.output_shape[2:])
        box = box_of(row.rf, unit, shape[1:], row.name)
        oracle = gradient_receptive_field(model, row.name, unit, shape)
        if box.clipped == (box.top, box.bottom, box.left, box.right):
            assert (oracle.top, oracle.bottom, oracle.left, oracle.right) == box.clipped, row.name
        else:  # a field larger than the image: the gradient can only reach the clipped part
            assert oracle.clipped == box.clipped, row.name
        checked += 1
    assert checked >= 2


def test_not_aligned_paths_are_reported_not_given_a_number():
    s = cnnkit.summary(NotAligned(), (3, 32, 32))
    add = s.row("add")
    assert add.rf.status == "not-aligned"
    assert "a (jump 2, first centre 0)" in add.rf.note
    assert "b (jump 2, first centre 0.5)" in add.rf.note
    assert s.row("after").rf.status == "not-aligned"  # and stays so downstream
    assert s.notes == [f"add: {add.rf.note}"]  # where the paths meet, not every row after
    with pytest.raises(CnnkitError, match="not-aligned"):
        cnnkit.rf_box(NotAligned(), "after", (3, 3), (3, 32, 32))


def test_residual_and_concat_merges_take_the_largest_aligned_field():
    s = cnnkit.summary(ResNetish(), (3, 64, 64))
    add = s.row("layer1.1.add")
    assert add.rf.size == s.row("layer1.1.bn2").rf.size
    assert add.rf.size[0] > s.row("layer1.1.shortcut.1").rf.size[0]
    inc = cnnkit.summary(InceptionNet(), (3, 40, 40))
    cat = inc.row("mixed1.cat")
    assert cat.rf.size == inc.row("mixed1.b5.2").rf.size


def test_flatten_and_linear_make_the_field_the_whole_input():
    model = VGGish()
    s = cnnkit.summary(model, (3, 32, 32))
    assert s.row("flatten").rf.status == "whole-input"
    assert s.row("classifier").rf.status == "whole-input"
    box = gradient_receptive_field(model, "classifier", (0, 0), (3, 32, 32))
    assert box.clipped == (0, 31, 0, 31)
    assert cnnkit.rf_box(model, "classifier", (0, 0), (3, 32, 32)).clipped == (0, 31, 0, 31)


def test_rf_box_gives_clipped_and_unclipped_boxes():
    box = cnnkit.rf_box(VGGish(), "features.1.4", (0, 0), (3, 32, 32))
    # 16×16 field, jump 4, first centre 1.5: unit (0, 0) covers -6..9, clipped to 0..9.
    s = cnnkit.summary(VGGish(), (3, 32, 32))
    rf = s.row("features.1.4").rf
    assert box.size == rf.size
    assert box.top == rf.start[0] - (rf.size[0] - 1) / 2
    assert box.clipped == (0, box.bottom, 0, box.right)
    with pytest.raises(CnnkitError, match="outside"):
        cnnkit.rf_box(VGGish(), "features.1.4", (8, 0), (3, 32, 32))
    with pytest.raises(CnnkitError, match="No layer named"):
        cnnkit.rf_box(VGGish(), "nope", (0, 0), (3, 32, 32))


def test_transposed_conv_stride_1_is_exact_and_stride_2_is_an_upper_bound():
    class Up(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = nn.Conv2d(1, 2, 3, stride=2, padding=1)
            self.t1 = nn.ConvTranspose2d(2, 2, 3, stride=1, padding=1)
            self.t2 = nn.ConvTranspose2d(2, 1, 4, stride=2, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.t2(self.t1(self.down(x)))

    model = Up()
    s = cnnkit.summary(model, (1, 32, 32))
    t1 = s.row("t1")
    assert not t1.rf.approximate
    unit = interior_unit(t1.rf, t1.output_shape[2:])
    box = box_of(t1.rf, unit, (32, 32), "t1")
    oracle = gradient_receptive_field(model, "t1", unit, (1, 32, 32))
    assert oracle.size == box.size == t1.rf.size
    t2 = s.row("t2")
    assert t2.rf.approximate and t2.rf.jump == (1, 1)
    sizes = {gradient_receptive_field(model, "t2", (u, u), (1, 32, 32)).size for u in (10, 11)}
    assert max(sizes)[0] == t2.rf.size[0]  # the largest over output units


def test_upsampling_is_flagged_approximate_and_bounds_the_gradient():
    class Up(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, stride=2, padding=1)
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.out = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.up(self.conv(x)))

    model = Up()
    s = cnnkit.summary(model, (1, 32, 32))
    row = s.row("out")
    assert row.rf.approximate and row.rf.jump == (1, 1)
    sizes = [gradient_receptive_field(model, "out", (u, u), (1, 32, 32)).size[0] for u in (9, 10)]
    assert max(sizes) <= row.rf.size[0]


def test_adaptive_pooling_divisible_is_a_window_and_global_is_whole_input():
    model = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.AdaptiveAvgPool2d(4))
    s = cnnkit.summary(model, (1, 16, 16))
    rf = s.row("1").rf
    assert not rf.approximate and rf.jump == (4, 4)
    unit = (1, 2)
    oracle = gradient_receptive_field(model, "1", unit, (1, 16, 16))
    assert (oracle.top, oracle.bottom, oracle.left, oracle.right) == (3, 8, 7, 12)
    box = box_of(rf, unit, (16, 16), "1")
    assert (box.top, box.bottom, box.left, box.right) == (3, 8, 7, 12)
    s = cnnkit.summary(nn.Sequential(nn.Conv2d(1, 1, 3), nn.AdaptiveMaxPool2d(1)), (1, 9, 9))
    assert s.row("1").rf.status == "whole-input"


def test_gradient_oracle_leaves_the_model_unchanged():
    model = ResNetish()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    gradient_receptive_field(model, "layer1.0.add", (3, 3), (3, 64, 64))
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_module_that_folds_others_has_a_box_too():
    model = ResNetish()
    box = cnnkit.rf_box(model, "layer1.1", (1, 1), (3, 48, 48))
    assert box.size == cnnkit.summary(model, (3, 48, 48)).row("layer1.1.relu#2").rf.size
    oracle = gradient_receptive_field(model, "layer1.1", (1, 1), (3, 48, 48))
    assert oracle.clipped == box.clipped
