"""Post-training quantization transforms on any ``nn.Module`` (no tracing for Sequential-built
patterns): BatchNorm folding, cross-layer equalization with bias absorption, bias correction,
AdaRound and GPTQ rounding (also on rate-control steps), calibrated activation ranges, softmax
bias correction, debug report, LayerNorm refit after quantized inputs.

Weight methods return ordinary ``{weight name: QuantizedTensor}`` dicts (the grid is the spec's;
only the rounding differs) and leave the dequantized weights in the model.
"""

from .adaround import AdaRoundConfig, adaround
from .bias_correction import analytic as bias_correction_analytic
from .bias_correction import empirical as bias_correction
from .bn_fold import Fold, fold_batchnorm, unfold_batchnorm
from .cle import absorb_bias, equalize
from .gptq import GPTQConfig, gptq
from .norm_refit import Refit, refit_layernorm
from .patterns import Chain, ClippedReLU, bn_pairs, chains
from .rated import RatedRounding, rated_rounding
from .weights import layer_specs, nearest

__all__ = [
    "AdaRoundConfig",
    "Chain",
    "ClippedReLU",
    "Fold",
    "GPTQConfig",
    "RatedRounding",
    "Refit",
    "absorb_bias",
    "adaround",
    "bias_correction",
    "bias_correction_analytic",
    "bn_pairs",
    "chains",
    "equalize",
    "fold_batchnorm",
    "gptq",
    "layer_specs",
    "nearest",
    "rated_rounding",
    "refit_layernorm",
    "unfold_batchnorm",
]
