"""cnnkit.summary on models that are not a chain of convolutions: two inputs, a transformer
block, a small ViT, token ids through an embedding, keyword inputs.

Oracles: torchinfo for parameters and leaf output shapes; MACs written here as formulae in
the model's dimensions (derived by hand from the rules in docs/summary.md); for the matrix
products alone, torch.utils.flop_counter (FLOPs / 2) with the math attention kernel; and
autograd for the receptive field of each input.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchinfo
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from cnnkit.analysis.summary.core import summary
from cnnkit.core.errors import CnnkitError


class TwoInput(nn.Module):
    """An image and a vector of extra features, joined before the head."""

    def __init__(self, c: int = 3, k: int = 8, f: int = 5, classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, k, 3, padding=1)
        self.meta = nn.Linear(f, k)
        self.head = nn.Linear(2 * k, classes)

    def forward(self, image: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        a = F.adaptive_avg_pool2d(F.relu(self.conv(image)), 1).flatten(1)  # (N, k)
        return self.head(torch.cat([a, self.meta(extra)], dim=1))  # (N, classes)


class Block(nn.Module):
    """A pre-norm transformer encoder block with nn.MultiheadAttention."""

    def __init__(self, d: int = 16, heads: int = 4, ff: int = 32) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, ff)
        self.fc2 = nn.Linear(ff, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    """Patch embedding (a strided conv), class token, position embedding, blocks, head."""

    def __init__(self, img: int = 16, patch: int = 4, d: int = 16, depth: int = 2) -> None:
        super().__init__()
        n = (img // patch) ** 2
        self.patch = nn.Conv2d(3, d, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.zeros(1, n + 1, d))
        self.blocks = nn.Sequential(*[Block(d) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2)  # (N, n, d)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos  # (N, n+1, d)
        return self.head(self.norm(self.blocks(x))[:, 0])


class TinyLM(nn.Module):
    """Token ids -> embedding -> causal attention (F.scaled_dot_product_attention), einsum,
    a matmul and one op without a MAC rule (cumsum)."""

    def __init__(self, vocab: int = 50, d: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.emb = nn.Embedding(vocab, d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(ids)  # (N, L, d)
        n, length, d = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (N, heads, L, d/heads)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        a = a.transpose(1, 2).reshape(n, length, d)
        scores = torch.einsum("bld,bmd->blm", x, x).softmax(-1)  # (N, L, L)
        return self.out(torch.cumsum(a, 1) + scores @ x)


def block_macs(length: int, d: int = 16, ff: int = 32) -> int:
    """Block on (1, L, d): the rules of docs/summary.md, written out."""
    layer_norms = 2 * (2 * length * d)  # two LayerNorms: 2 per element each
    attention = 3 * length * d * d + 2 * length * length * d + length * d * d  # q,k,v; QKᵀ, AV; out
    mlp = length * d * ff + length * ff + length * ff * d  # fc1, gelu, fc2
    residuals = 2 * length * d
    return layer_norms + attention + mlp + residuals


def vit_macs(img: int = 16, patch: int = 4, d: int = 16, depth: int = 2) -> int:
    n = (img // patch) ** 2
    tokens = n + 1
    patch_embed = (d * n) * (3 * patch * patch)  # out_elems · C_in · K_h · K_w
    pos = tokens * d  # the add
    return patch_embed + pos + depth * block_macs(tokens, d) + 2 * tokens * d + d * 10


def two_input_macs(h: int = 8, w: int = 8, c: int = 3, k: int = 8, f: int = 5) -> int:
    conv = k * h * w * c * 9
    relu = pool = k * h * w
    return conv + relu + pool + f * k + 2 * k * 4


def tiny_lm_macs(length: int = 7, vocab: int = 50, d: int = 16) -> int:
    qkv = length * d * 3 * d
    sdpa = length * length * (d + d)  # heads × L × L × (d/heads) × 2 = L·L·2d
    einsum = length * length * d
    softmax = length * length
    matmul = length * length * d
    add = length * d
    out = length * d * vocab
    return qkv + sdpa + einsum + softmax + matmul + add + out  # embedding 0, cumsum not counted


CASES = {
    "two-input": (TwoInput, {"input_size": [(3, 8, 8), (5,)]}, two_input_macs()),
    "block": (Block, {"input_size": (6, 16)}, block_macs(6)),
    "vit": (ViT, {"input_size": (3, 16, 16)}, vit_macs()),
}


def build(name: str) -> tuple[nn.Module, dict, int]:
    cls, kwargs, expected = CASES[name]
    torch.manual_seed(0)
    return cls().eval(), kwargs, expected


def dummy(kwargs: dict) -> list[torch.Tensor]:
    size = kwargs["input_size"]
    shapes = [size] if isinstance(size[0], int) else size
    return [torch.rand(1, *s) for s in shapes]


@pytest.mark.parametrize("name", sorted(CASES))
def test_parameters_and_leaf_shapes_equal_torchinfo(name):
    model, kwargs, _ = build(name)
    ours = summary(model, **kwargs)
    theirs = torchinfo.summary(model, input_data=dummy(kwargs), verbose=0, depth=20)
    assert ours.total_params == theirs.total_params
    assert ours.trainable_params == theirs.trainable_params
    assert ours.unused_params == 0
    names = {id(m): n for n, m in model.named_modules()}
    compared = 0
    for info in theirs.summary_list:
        if isinstance(info.module, nn.Linear | nn.Conv2d | nn.LayerNorm) and info.executed:
            if names[id(info.module)].endswith("out_proj"):
                continue  # used by MultiheadAttention functionally, not called
            row = ours.row(names[id(info.module)])
            assert row.output_shape == tuple(info.output_size), row.name
            assert row.params == info.num_params, row.name
            compared += 1
    assert compared >= 3


@pytest.mark.parametrize("name", sorted(CASES))
def test_macs_equal_the_analytic_count(name):
    model, kwargs, expected = build(name)
    s = summary(model, **kwargs)
    assert s.total_macs == expected
    assert s.macs_complete and s.uncounted == {}
    assert s.total_flops == 2 * expected


def test_multihead_attention_is_one_row_with_projections_and_both_products():
    length, d = 6, 16
    s = summary(Block(d).eval(), (length, d))
    attn = s.row("attn")
    assert attn.type == "MultiheadAttention"
    assert attn.params == 4 * d * d + 4 * d  # in_proj (3d×d + 3d) and out_proj (d×d + d)
    assert attn.macs == 4 * length * d * d + 2 * length * length * d
    assert not any(r.name.startswith("attn.") for r in s.rows)


def test_multihead_attention_with_other_key_and_value_sizes():
    # Cross-attention: L queries of size E, S keys of k_dim and values of v_dim.
    length, source, e, k_dim, v_dim = 3, 5, 8, 6, 4
    mha = nn.MultiheadAttention(e, 2, kdim=k_dim, vdim=v_dim, batch_first=True)
    s = summary(mha, [(length, e), (source, k_dim), (source, v_dim)])
    row = s.rows[0]
    projections = length * e * e + source * k_dim * e + source * v_dim * e
    assert row.macs == projections + 2 * length * source * e + length * e * e


MATMUL_TYPES = {"Linear", "Conv2d", "MultiheadAttention", "scaled_dot_product_attention"}
MATMUL_TYPES |= {"einsum", "matmul"}


@pytest.mark.parametrize("name", ["block", "vit", "tiny-lm"])
def test_matrix_product_macs_equal_torch_flop_counter(name):
    # torch counts 2 FLOPs per multiply-add of mm/bmm/addmm/convolution (not the rest), and
    # sees inside attention with the math kernel.
    if name == "tiny-lm":
        torch.manual_seed(0)
        model, args = TinyLM().eval(), (torch.randint(0, 50, (1, 7)),)
    else:
        model, kwargs, _ = build(name)
        args = tuple(dummy(kwargs))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*args)
    s = summary(model, input_data=args)
    ours = sum(r.macs for r in s.rows if r.type in MATMUL_TYPES)
    assert 2 * ours == counter.get_total_flops()


def test_token_ids_through_an_embedding_and_ops_without_a_rule_are_listed():
    torch.manual_seed(0)
    model = TinyLM().eval()
    s = summary(model, (7,), dtypes=torch.long)
    assert s.inputs[0].dtype == "int64" and s.inputs[0].shape == (1, 7)
    assert s.row("emb").macs == 0 and s.row("emb").params == 50 * 16
    assert s.total_macs == tiny_lm_macs()
    assert s.uncounted == {"cumsum": 1}
    assert not s.macs_complete
    assert any("cumsum ×1" in n and "lower bound" in n for n in s.notes)
    theirs = torchinfo.summary(model, input_data=torch.zeros(1, 7, dtype=torch.long), verbose=0)
    assert s.total_params == theirs.total_params


def test_dummy_token_ids_stay_below_the_smallest_vocabulary():
    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Embedding(3, 4), nn.Embedding(100, 4)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.a(ids) + self.b(ids)

    # 64 ids drawn from [0, 3): any id >= 3 would raise inside nn.Embedding.
    assert summary(Small(), (64,), dtypes=torch.long).rows[-1].output_shape == (1, 64, 4)


def test_an_op_run_several_times_is_counted_with_its_runs():
    class Scan(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cumsum(torch.cumsum(x, 1), 2).cummax(1).values

    s = summary(Scan(), (4, 4))
    assert s.uncounted == {"cumsum": 2, "cummax": 1}
    assert s.notes[-1] == (
        "MACs not counted (no rule) for: cumsum ×2, cummax ×1; the MAC total is a lower bound"
    )


def test_input_data_as_tensor_tuple_and_dict_give_the_same_summary():
    torch.manual_seed(0)
    model = TwoInput().eval()
    image, extra = torch.rand(1, 3, 8, 8), torch.rand(1, 5)
    by_size = summary(model, [(3, 8, 8), (5,)])
    as_tuple = summary(model, input_data=(image, extra))
    as_dict = summary(model, input_data={"image": image, "extra": extra})
    for s in (as_tuple, as_dict):
        assert [(r.name, r.output_shape, r.params, r.macs) for r in s.rows] == [
            (r.name, r.output_shape, r.params, r.macs) for r in by_size.rows
        ]
    assert [i.name for i in as_dict.inputs] == ["image", "extra"]
    assert [i.name for i in by_size.inputs] == ["image", "extra"]  # from forward's signature
    single = summary(nn.Conv2d(3, 4, 3), input_data=image)
    assert single.rows[0].output_shape == (1, 4, 6, 6)


class TwoImages(nn.Module):
    """y = conv3(a) + conv5(b): every unit of the sum sees 3×3 of a and 5×5 of b."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 2, 3, padding=1)
        self.b = nn.Conv2d(1, 2, 5, padding=2)
        self.after = nn.Conv2d(2, 2, 3, stride=2, padding=1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.after(self.a(a) + self.b(b))


def grad_box(model: nn.Module, unit: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Size of the box of non-zero input gradient of output unit `unit`, per input."""
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)  # positive: no cancellation
    a = torch.rand(1, 1, 16, 16, requires_grad=True)
    b = torch.rand(1, 1, 16, 16, requires_grad=True)
    model(a, b)[0, :, unit[0], unit[1]].sum().backward()
    sizes = {}
    for name, x in (("a", a), ("b", b)):
        rows, cols = torch.nonzero(x.grad[0, 0], as_tuple=True)
        sizes[name] = (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    return sizes


def test_receptive_fields_are_given_per_input_and_match_gradients():
    s = summary(TwoImages(), [(1, 16, 16), (1, 16, 16)])
    assert set(s.row("a").rfs) == {"a"} and set(s.row("b").rfs) == {"b"}
    after = s.row("after")
    assert {k: v.size for k, v in after.rfs.items()} == grad_box(TwoImages(), (4, 4))
    assert after.rfs["a"].jump == after.rfs["b"].jump == (2, 2)
    text_cells = [r for r in s.rows if r.name == "add"][0]
    assert text_cells.rfs["a"].size == (3, 3) and text_cells.rfs["b"].size == (5, 5)


def test_non_image_inputs_have_no_spatial_field():
    s = summary(TwoInput(), [(3, 8, 8), (5,)])
    assert s.row("meta").rfs["extra"].status == "not-spatial"
    assert s.row("conv").rfs == {"image": s.row("conv").rf}
    assert s.row("head").rfs["image"].status == "whole-input"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "exactly one of 'input_size'"),
        ({"input_size": (3, 8, 8), "input_data": torch.zeros(1)}, "Got both"),
        ({"input_size": [(3, 8, 8), (0,)]}, "positive ints"),
        ({"input_size": [(3, 8, 8), (5,)], "dtypes": [torch.float32]}, "'dtypes'"),
        ({"input_data": "image"}, "'input_data'"),
        ({"input_data": {"x": 3}}, "holds no tensor"),
    ],
)
def test_bad_inputs_are_cnnkit_errors(kwargs, needle):
    with pytest.raises(CnnkitError, match=needle):
        summary(TwoInput(), **kwargs)


def test_a_failing_two_input_model_names_both_shapes():
    with pytest.raises(CnnkitError, match=r"input shapes \[\(1, 3, 8, 8\), \(1, 6\)\]"):
        summary(TwoInput(), [(3, 8, 8), (6,)])


def fvcore_by_module(model: nn.Module, args: tuple) -> dict:
    import warnings

    from fvcore.nn import FlopCountAnalysis

    flops = FlopCountAnalysis(model, args)
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(flops.by_module())


@pytest.mark.parametrize("name", sorted(CASES))
def test_linear_conv_and_attention_projections_equal_fvcore(name):
    # fvcore counts one multiply-add as one flop for linear and conv (its rules coincide with
    # ours there); for nn.MultiheadAttention it counts the projections only (it has no rule for
    # the attention products), so ours is larger by exactly QKᵀ + attention × V = 2·L·S·E.
    model, kwargs, _ = build(name)
    args = tuple(dummy(kwargs))
    theirs = fvcore_by_module(model, args)
    s = summary(model, input_data=args)
    compared = 0
    for row in s.rows:
        if row.type in ("Linear", "Conv2d"):
            assert row.macs == theirs[row.name], row.name
            compared += 1
        elif row.type == "MultiheadAttention":
            _, length, e = row.output_shape  # batch_first: (N, L, E), self-attention: S = L
            assert row.macs - theirs[row.name] == 2 * length * length * e, row.name
            compared += 1
    assert compared >= 3


@pytest.mark.parametrize("name", sorted(CASES))
def test_linear_and_conv_macs_equal_torchscan(name):
    torchscan = pytest.importorskip("torchscan")
    model, kwargs, _ = build(name)
    args = tuple(dummy(kwargs))
    report = torchscan.crawl_module(model, args=args)
    theirs = {
        layer["path"]: layer["metrics"]["macs"]["value"]
        for layer in report["layers"]
        if layer["type"] in ("Linear", "Conv2d")
    }
    s = summary(model, input_data=args)
    rows = {r.name: r.macs for r in s.rows if r.type in ("Linear", "Conv2d")}
    assert rows == theirs and len(rows) >= 2


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return self.fn(*xs)


# (function, input shapes per sample, MACs by the rule written out)
OP_CASES = {
    "matmul 3-d @ 2-d": (lambda a, b: a @ b[0], [(4, 5), (5, 3)], 4 * 3 * 5),
    "matmul vector": (lambda a, b: torch.matmul(a[0], b[0]), [(5,), (5, 3)], 3 * 5),
    "bmm": (lambda a, b: torch.bmm(a, b), [(4, 5), (5, 6)], 4 * 6 * 5),
    "baddbmm": (lambda a, b: torch.baddbmm(a @ b, a, b), [(4, 5), (5, 4)], 2 * 4 * 4 * 5),
    "einsum ellipsis": (
        lambda a, b: torch.einsum("...ij,...jk->...ik", a, b),
        [(2, 3, 4), (2, 4, 5)],
        2 * 3 * 4 * 5,
    ),
    "einsum three operands": (
        lambda a, b, c: torch.einsum("ij,jk,kl->il", a[0], b[0], c[0]),
        [(3, 4), (4, 5), (5, 6)],
        3 * 4 * 5 + 3 * 5 * 6,  # (ij,jk)->ik, then (ik,kl)->il
    ),
    "linear on 4-d": (lambda a: F.linear(a, torch.ones(7, 5)), [(2, 3, 5)], 2 * 3 * 7 * 5),
    "group_norm": (lambda a: F.group_norm(a, 2), [(4, 3, 3)], 2 * 4 * 3 * 3),
    "instance_norm": (lambda a: F.instance_norm(a), [(4, 3, 3)], 2 * 4 * 3 * 3),
    "bilinear": (
        lambda a: F.interpolate(a, scale_factor=2, mode="bilinear"),
        [(2, 3, 3)],
        4 * 2 * 6 * 6,
    ),
    "nearest": (lambda a: F.interpolate(a, scale_factor=2), [(2, 3, 3)], 0),
    "bicubic": (
        lambda a: F.interpolate(a, size=(5, 4), mode="bicubic"),
        [(2, 3, 3)],
        16 * 2 * 5 * 4,
    ),
    "area": (lambda a: F.interpolate(a, size=(2, 2), mode="area"), [(2, 4, 4)], 2 * 4 * 4),
    "sdpa, other value width": (
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
        [(2, 3, 4), (2, 5, 4), (2, 5, 6)],
        2 * 3 * 5 * (4 + 6),  # heads · L · S · (E + E_v)
    ),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_functional_op_rules(case):
    fn, shapes, expected = OP_CASES[case]
    s = summary(Fn(fn), shapes)
    assert s.uncounted == {}
    assert s.total_macs == expected


@pytest.mark.parametrize(
    "case",
    [
        c
        for c in sorted(OP_CASES)
        if c.split()[0] in ("matmul", "bmm", "baddbmm", "einsum", "linear", "sdpa,")
    ],
)
def test_functional_matrix_products_equal_torch_flop_counter(case):
    fn, shapes, expected = OP_CASES[case]
    args = [torch.rand(1, *shape) for shape in shapes]
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        fn(*args)
    assert counter.get_total_flops() == 2 * expected
