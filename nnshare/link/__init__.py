"""Delivery over the air: the one 802.11 airtime model, fragments, Block Ack retransmission,
progressive and resumable transfer, and a loopback UDP transport (see docs/link.md)."""

from .airtime import Airtime, Link, Mac, parse_link
from .blockack import Delivery, DeliveryError, PatternLoss, RateLoss, deliver
from .fragment import FragmentError, Reassembler, fragment, reassemble
from .phy import Phy

__all__ = ["Airtime", "Delivery", "DeliveryError", "FragmentError", "Link", "Mac", "PatternLoss", "Phy",
           "RateLoss", "Reassembler", "deliver", "fragment", "parse_link", "reassemble"]
