"""Assemble docs/benchmarks.md from the per-benchmark sections in docs/benchmarks/*.md.

    .venv/bin/python bench/make_docs.py
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORDER = [
    "throughput", "decode_speed", "vs_nncodec", "speed", "cli_start", "rdo_rounding", "task_budget",
    "budget_memory",
    "entropy_speed",
    "mixed_precision",
    "quantizers", "quantizers_bits", "ptq", "qat_parameterizations", "wlan", "wlan_mu", "wlan_mu_paired",
    "wlan_ageing",
    "wlan_bandwidth", "wlan_estimation", "link", "mean_estimation", "federated", "ddp",
    "split", "feel", "sflam", "hf_checkpoint", "export", "fuzz", "hostile", "chain_state",
]


def demote(section: str) -> str:
    """Shift headings so the section's top heading is level 2 (code blocks left alone)."""
    lines = section.splitlines()
    levels = [len(ln) - len(ln.lstrip("#")) for ln in lines if ln.startswith("#")]
    shift = max(0, 2 - min(levels)) if levels else 0
    out, fenced = [], False
    for ln in lines:
        if ln.startswith("```"):
            fenced = not fenced
        out.append("#" * shift + ln if ln.startswith("#") and not fenced else ln)
    return "\n".join(out)


def main() -> None:
    parts = sorted((ROOT / "docs/benchmarks").glob("*.md"))
    parts.sort(key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    text = [
        "# Benchmarks",
        "",
        "Each section is written by a script in `bench/` (numbers in `bench/results/*.json`);",
        "rerun a script, then `python bench/make_docs.py`. One thread per process, 2-core machine.",
        "",
    ]
    for p in parts:
        text += [demote(p.read_text().rstrip()), ""]
    (ROOT / "docs/benchmarks.md").write_text("\n".join(text))
    print(f"wrote docs/benchmarks.md from {len(parts)} sections")


if __name__ == "__main__":
    main()
