"""Studies: experiments and the multi-run studies built from them."""
