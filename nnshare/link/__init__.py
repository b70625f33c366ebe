"""Delivery over the air: the one 802.11 airtime model, fragments, Block Ack retransmission,
progressive and resumable transfer, and a loopback UDP transport."""

from .airtime import Airtime, Link, Mac, parse_link
from .fragment import FragmentError, Reassembler, fragment, reassemble
from .phy import Phy

__all__ = ["Airtime", "FragmentError", "Link", "Mac", "Phy", "Reassembler", "fragment", "parse_link",
           "reassemble"]
