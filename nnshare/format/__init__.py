"""The bitstream: numpy only, never torch (this is the receiver)."""
