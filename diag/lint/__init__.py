"""`meshprobe lint`: static findings over a snapshot, with istioctl analyze parity.
"""
