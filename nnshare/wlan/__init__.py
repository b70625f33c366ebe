"""The 802.11 flagship scenario: share a quantized CSI-feedback encoder, measure the PER.

Modules: ``channels`` (TGn/TGax models D/B, i.i.d. fallback), ``ofdm`` (HE 20 MHz tone plan),
``beamforming`` (sounding, SVD, Givens report, interpolation, SGCS), ``autoencoder`` (the
64->40->16 encoder and its decoder), ``sharing`` / ``qat_encoder`` (the encoder through nnshare),
``link`` (MMSE SINR), ``abstraction`` / ``per_tables`` (RBIR ESM over the AWGN LDPC tables),
``fading`` (MPDU loss on a fading channel, for ``nnshare.link`` delivery), ``ldpc_code`` / ``qam`` /
``awgn_sim`` / ``bitlevel`` (bit-level simulation), ``experiment``, ``baselines`` (every
standard SU report, the verdict at equal bits), ``sounding`` (the sounding exchange in airtime),
``overhead`` (bits and airtime by ``nnshare.link``), ``doppler`` / ``ageing`` (TGn Doppler, CSI
age, goodput vs sounding interval), ``wideband`` (20-160 MHz), ``report`` / ``report_fair`` /
``report_ageing`` and ``demo`` / ``demo_full`` / ``progress`` (``run_demo``, behind ``nnshare demo``).
Import the submodules directly; this package imports nothing heavy.
"""
