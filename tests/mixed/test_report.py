import torch

from nnshare.mixed import Budget, bits_table, pareto_plot, rich_bits_table, search


def test_table_and_plot(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    a = search(model, Budget(bits=1500), "weight", granularity="channel", front_points=6)
    md = bits_table(a)
    assert "| 0.weight | 6×8 |" in md and "| 2.weight | 2×6 |" in md
    assert f"Total {a.exact_bits} bits" in md
    assert rich_bits_table(a).row_count == 2
    path = tmp_path / "front.png"
    pareto_plot(path, a.front, {"mixed": [(p.bits, -p.predicted) for p in a.front]})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
