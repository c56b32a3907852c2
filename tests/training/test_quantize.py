import numpy as np
import pytest
import torch

from chromatize import color
from chromatize.training import quantize
from chromatize.decoder import decode_ab


@pytest.fixture(scope="module")
def bins() -> torch.Tensor:
    return torch.as_tensor(color.ab_bins(), dtype=torch.float32)


def test_soft_encode_sums_to_one_and_peaks_at_nearest(bins):
    ab = torch.tensor([[[[12.0, -33.0]], [[47.0, 0.0]]]])  # (1, 2, 1, 2)
    z = quantize.soft_encode(ab, bins)
    assert z.shape == (1, len(bins), 1, 2)
    assert torch.allclose(z.sum(1), torch.ones(1, 1, 2))
    assert ((z > 0).sum(1) == 5).all()
    nearest = quantize.nearest_bin(ab, bins)
    assert torch.equal(z.argmax(1), nearest)
    assert torch.allclose(bins[nearest[0, 0, 0]], torch.tensor([10.0, 50.0]))


def test_decoding_a_soft_encoded_target_recovers_the_colour(bins):
    ab = torch.tensor([[[[12.0]], [[-33.0]]]])
    logits = torch.log(quantize.soft_encode(ab, bins) + 1e-8)
    assert torch.allclose(decode_ab(logits, bins, temperature=1.0), ab, atol=3.0)
    assert torch.allclose(decode_ab(logits, bins, temperature=0.0), torch.tensor([[[[10.0]], [[-30.0]]]]))


def test_prior_and_rebalancing(bins, tmp_path):
    b = bins.numpy()
    gray = np.full((8, 8, 3), 128, np.uint8)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 200
    prior = quantize.prior_from_photos([gray, gray, gray, red], b)
    assert prior.sum() == pytest.approx(1.0)
    assert prior.argmax() == np.abs(b).sum(1).argmin()  # the neutral bin
    assert prior.max() == pytest.approx(0.75)
    w = quantize.rebalance_weights(prior, b, lam=0.5)
    assert w.shape == prior.shape and (w > 0).all()
    assert w[prior.argmax()] < w[prior > 0].max()  # frequent colours weigh less
    quantize.write_prior(tmp_path / "p.json", prior, b, {"source": "test"})
    assert np.allclose(quantize.read_prior(tmp_path / "p.json", b), prior)
    with pytest.raises(ValueError, match="other ab bins"):
        quantize.read_prior(tmp_path / "p.json", b[:-1])


def test_decoding_boost_lifts_rare_colours():
    from chromatize.models.heads import ClassificationHead

    torch.manual_seed(0)
    head = ClassificationHead(4, boost=0.0)
    chroma = head.bins.norm(dim=1)
    head.class_weights.copy_(1 + chroma / chroma.max())  # rare = saturated, as in photos
    x = torch.randn(1, 4, 8, 8)
    plain = head(x)["ab"].norm(dim=1).mean()
    head.boost = 1.0
    boosted = head(x)
    assert boosted["ab"].norm(dim=1).mean() > plain
    assert torch.equal(boosted["logits"], head.conv(x))  # the loss still sees raw logits
